"""Status history replayed from the event log: how many objects were in each status, when.

Each ``customer.subscription.*`` (or ``invoice.*``, ``charge.*``...) event carries the
object's snapshot after the change, so the status an object had at any instant is the
status of its latest event up to that instant. :func:`status_changes` reads those from
Stripe Event objects; :func:`status_at` counts statuses at given instants (month ends,
typically) as an Ibis expression, so the OLAP layer can run the same replay on its own
engine.

Example:
    >>> import datetime as dt, ibis
    >>> events = [
    ...     {"type": "customer.subscription.created", "created": 100,
    ...      "data": {"object": {"id": "sub_1", "status": "trialing"}}},
    ...     {"type": "customer.subscription.updated", "created": 200,
    ...      "data": {"object": {"id": "sub_1", "status": "active"}}},
    ... ]
    >>> con = ibis.duckdb.connect()
    >>> changes = con.create_table("changes", status_changes(events, "customer.subscription."))
    >>> at = [dt.datetime.fromtimestamp(s, dt.UTC) for s in (150, 250)]
    >>> status_at(changes, at).to_pandas()[["status", "objects"]].values.tolist()
    [['trialing', 1], ['active', 1]]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import ibis
import pandas as pd
from ibis import _

__all__ = ["month_ends", "status_at", "status_changes"]


def status_changes(events: Iterable[Mapping[str, Any]], type_prefix: str) -> pd.DataFrame:
    """One row per event whose type starts with ``type_prefix``, in stream order.

    Columns: ``seq`` (position in the stream, breaks ties of ``created``), ``created``
    (UTC), ``object_id`` and ``status`` of the snapshot.
    """
    rows = [
        (seq, e["created"], e["data"]["object"]["id"], e["data"]["object"]["status"])
        for seq, e in enumerate(events)
        if e["type"].startswith(type_prefix)
    ]
    frame = pd.DataFrame(rows, columns=["seq", "created", "object_id", "status"])
    frame["created"] = pd.to_datetime(frame["created"], unit="s", utc=True)
    return frame


def month_ends(first: dt.datetime, last: dt.datetime) -> list[dt.datetime]:
    """The last instant (23:59:59 UTC) of each month from ``first``'s to the last full one."""
    ends = pd.date_range(pd.Timestamp(first).normalize(), last, freq="ME", tz="UTC")
    return [(end + pd.Timedelta(days=1, seconds=-1)).to_pydatetime() for end in ends]


def status_at(changes: ibis.Table, instants: Sequence[dt.datetime]) -> ibis.Table:
    """Objects per status at each instant: one row per ``at`` and ``status``, ``objects``.

    Args:
        changes: a table with ``seq``, ``created``, ``object_id`` and ``status`` (see
            :func:`status_changes`).
        instants: when to read the statuses; an object counts from its first event on.
    """
    at = ibis.memtable({"at": list(instants)}, schema={"at": "timestamp('UTC')"})
    upto = changes.join(at, changes.created <= at.at)
    latest = ibis.window(group_by=[upto.at, upto.object_id], order_by=[ibis.desc(upto.created),
                                                                       ibis.desc(upto.seq)])  # fmt: skip
    return (
        upto.mutate(rank=ibis.row_number().over(latest))
        .filter(_.rank == 0)
        .group_by(["at", "status"])
        .agg(objects=_.count())
        .order_by(["at", "status"])
    )
