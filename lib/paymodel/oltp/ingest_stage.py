"""A file of events mapped to staged rows, chunk by chunk, in worker processes on big files.

The set-based path (:mod:`paymodel.oltp.ingest_set`) stages a whole file before it
decides anything. Everything it needs from one record depends on that record alone: its
text parsed, the input guard, the mapping of the event and of its snapshot to rows, the
parents those rows name that the snapshot does not hold. That work is :func:`map_records`,
and it returns Arrow tables (:class:`MappedChunk`), which cost little to send between
processes (dicts of rows cost more to pickle than to map: measured 1.8 s against 3.1 s
for 12,000 events).

What depends on the rest of the file or on the database (an event id seen before, a
reference to a currency, the decisions) stays in the process that holds the connection.

On a JSON Lines file of at least :data:`PARALLEL_MIN_BYTES`, the lines are mapped by
:func:`worker_count` forked processes (:func:`_in_workers` says why forked), a few chunks
ahead of the staging, so that memory stays bounded by the chunks in flight. Smaller files, records in memory and
records left waiting by earlier runs are mapped in the process itself, by the same
function.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import gc
import itertools
import multiprocessing
import os
import sys
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from paymodel.model.core import BIGINT, TEXT, TIMESTAMP
from paymodel.model.oltp import OLTP
from paymodel.model.stripe import (
    StripeObjectError,
    UnknownObjectType,
    from_stripe_object,
    object_key,
)
from paymodel.oltp import ingest_guard as guard
from paymodel.oltp.backend import arrow_table
from paymodel.oltp.ingest_engine import eligible

__all__ = ["MappedChunk", "map_records", "mapped_chunks", "worker_count"]

PK = {t.name: t.primary_key for t in OLTP.tables}
PARENTS = {
    t.name: tuple((fk.table, fk.columns[0]) for fk in t.all_foreign_keys if len(fk.columns) == 1)
    for t in OLTP.tables
}  # fmt: skip
REFERENCE_TABLES = frozenset({"currencies", "fx_rates"})

REC_TYPES: dict[str, Any] = {
    "ord": BIGINT, "line": BIGINT, "event_id": TEXT, "kind": TEXT, "object_type": TEXT,
    "object_id": TEXT, "version": TIMESTAMP, "raw": TEXT, "pending_id": TEXT, "engine": BIGINT,
}  # fmt: skip
"""One row per record (the staged table adds ``dup``, decided by the staging process).
``engine`` is 1 for a record whose snapshot is left to the engine's flattener
(:mod:`paymodel.oltp.ingest_engine`): it has no rows here."""
REF_TYPES: dict[str, Any] = {"ord": BIGINT, "pos": BIGINT, "k": BIGINT, "gtype": TEXT,
                             "gid": TEXT, "ptable": TEXT, "pid": TEXT}  # fmt: skip
"""A parent a staged row names that its own snapshot does not hold."""
ROW_EXTRA: dict[str, Any] = {"ord": BIGINT, "pos": BIGINT, "gtype": TEXT, "gid": TEXT}
"""Before the table's own columns in a staged table of rows: the snapshot and the object."""

CHUNK = 2500
"""Records per chunk: a chunk is mapped, sent and staged as one. Against 5,000 (both
with ``workers + 1`` in flight), the peak Python heap of a 68 MB file was 62 MB against
114 MB; the replay's time did not change beyond this machine's noise. The staging holds
small chunks together before it writes them (:meth:`paymodel.oltp.ingest_set._SetRun.hold`)."""
PARALLEL_MIN_BYTES = 8 << 20
"""Files smaller than this (about 6,000 events, under a second to map) are mapped
in-process: the chunk of a small file would keep one worker busy and the other idle."""


def row_types(table: str) -> dict[str, Any]:
    """The columns of the staged table of ``table``'s rows, in order, with their types."""
    return {**ROW_EXTRA, **{c.name: c.type for c in OLTP.table(table).columns}}


def worker_count() -> int:
    """Processes that map a big file: ``PAYMODEL_INGEST_WORKERS``, else the usable cores
    (at most 4: beyond, the staging process is the bottleneck). 1 maps in-process, and
    so does any platform but Linux (workers are forked there: see :func:`_in_workers`)."""
    if not sys.platform.startswith("linux"):
        return 1
    forced = os.environ.get("PAYMODEL_INGEST_WORKERS")
    if forced:
        return max(1, int(forced))
    return max(1, min(4, len(os.sched_getaffinity(0))))


@dataclass(frozen=True)
class Problem:
    """Why a record's snapshot is quarantined, as the record-at-a-time path words it."""

    rule: str
    error: str
    object_type: str | None
    object_id: str | None
    event_id: str


def problem_of(event_id: str, error: StripeObjectError) -> Problem:
    """The quarantine of event ``event_id`` whose snapshot the mapping refused with
    ``error``: the rule, words and object the record-at-a-time path records
    (:meth:`paymodel.oltp.ingest._FileRun._event` builds its quarantine with this too)."""
    rule = "unknown_object_type" if isinstance(error, UnknownObjectType) else "invalid_object"
    return Problem(rule, f"event {event_id}: {error}", error.object_type, error.object_id,
                   event_id)  # fmt: skip


def snapshot_problem(event_id: str, snapshot: dict[str, Any]) -> Problem | None:
    """The quarantine of an event whose snapshot, checks included, cannot be mapped
    (``None``: it can)."""
    try:
        from_stripe_object(snapshot)
    except StripeObjectError as e:
        return problem_of(event_id, e)
    return None


@dataclass
class MappedChunk:
    """What a chunk of records maps to, before anything in it is compared with the file."""

    recs: Any = None
    """Arrow table of :data:`REC_TYPES`, one row per record, in order."""
    events: Any = None
    """Arrow table of ``events`` rows, one per record (none for records from
    ``ingest_pending``, whose events are stored)."""
    refs: Any = None
    """Arrow table of :data:`REF_TYPES` (references to reference data excluded)."""
    rows: dict[str, Any] = field(default_factory=dict)
    """Per OLTP table, an Arrow table of :func:`row_types`."""
    reference: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    """``(reference table, key)`` -> the records naming it."""
    problems: dict[int, Problem] = field(default_factory=dict)
    """Records whose snapshot cannot be mapped: quarantined unless the event is a
    duplicate (whose snapshot the record-at-a-time path never maps)."""
    fatal: str | None = None
    """Why the whole file needs the record-at-a-time path (the first record that does)."""
    count: int = 0


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector held off while a chunk is read and mapped.

    Mapping a record allocates a few hundred dicts, lists and strings, none of them in a
    reference cycle: reference counting frees each as soon as it is dropped. The
    collector's automatic passes (one every 700 allocations, and from time to time one
    over every object the process holds) found next to nothing to free (25 objects in
    16 full passes over a 48,559-event file). Paused per chunk, mapping that file took
    7.2-8.1 s in one process against 8.3-8.6 s (three runs each, alternately) and
    8.1-8.2 against 8.6-8.8 CPU seconds in two workers. Anything left in a cycle is
    collected by the first pass after the chunk, when the collector is on again.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def map_records(
    records: Sequence[guard.Record], first: int, now: datetime, limits: guard.Limits,
    pending: Sequence[str] | None = None, engine: bool = False,
) -> MappedChunk:  # fmt: skip
    """Map ``records`` (numbered from ordinal ``first``) as the set-based path stages them.

    ``pending``: the ``ingest_pending`` ids of records left waiting by earlier runs (they
    passed the guard when first read, and their events are stored). ``engine``: leave
    the snapshots the engine can flatten (:func:`paymodel.oltp.ingest_engine.eligible`)
    unmapped, marked ``engine`` in ``recs``.
    """
    with collector_paused():
        return _map_records(records, first, now, limits, pending, engine)


def _map_records(
    records: Sequence[guard.Record], first: int, now: datetime, limits: guard.Limits,
    pending: Sequence[str] | None, engine: bool,
) -> MappedChunk:  # fmt: skip
    from paymodel.oltp.ingest import _json_problem, _plain_text, _storable

    recs: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    refs: list[dict[str, Any]] = []
    rows_by_table: dict[str, list[dict[str, Any]]] = defaultdict(list)
    reference: dict[tuple[str, str], list[int]] = defaultdict(list)
    problems: dict[int, str] = {}
    for i, record in enumerate(records):
        n = first + i
        value = record.value
        if pending is None:
            if record.error is not None or not isinstance(value, dict):
                return MappedChunk(fatal=f"line {record.line}: not a JSON object")
            if value.get("object") != "event":
                return MappedChunk(fatal=f"line {record.line}: not an event")
            data = value.get("data")
            if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
                return MappedChunk(fatal=f"line {record.line}: an event without data.object")
            text = record.raw if record.parsed else None  # in memory: the walk decides
            if not (text is not None and _plain_text(text)) and _json_problem(value) is not None:
                return MappedChunk(fatal=f"line {record.line}: not storable JSON")
            if guard.check_record(value, now, limits, raw=text) is not None:
                return MappedChunk(fatal=f"line {record.line}: refused by the input guard")
        try:
            ((_, event),) = from_stripe_object(value)
        except (StripeObjectError, ValueError) as e:
            return MappedChunk(fatal=f"line {record.line}: {e}")
        snapshot = value["data"]["object"]
        in_engine = engine and pending is None and eligible(snapshot.get("object"), text)
        recs.append({"ord": n, "line": record.line, "event_id": event["id"],
                     "kind": guard.printable(str(snapshot.get("object")))[:200],
                     "object_type": event["object_type"], "object_id": event["object_id"],
                     "version": event["created"], "raw": _storable(record.raw),
                     "pending_id": None if pending is None else pending[i],
                     "engine": int(in_engine)})  # fmt: skip
        if pending is None:
            events.append(event)
        if in_engine:
            continue
        try:  # the checks are evaluated in SQL over the staged rows (ingest_set)
            if snapshot.get("object") == "event":
                raise StripeObjectError("event", event["id"], "data.object is itself an event")
            rows = from_stripe_object(snapshot, checks=False)
        except StripeObjectError as e:
            problems[n] = problem_of(event["id"], e)
            continue
        except ValueError as e:  # not a refusal the record-at-a-time path words
            return MappedChunk(fatal=f"line {record.line}: {e}")
        present = {(t, r[PK[t][0]]) for t, r in rows if len(PK[t]) == 1}
        for pos, (table, row) in enumerate(rows):
            gtype, gid = object_key(table, row)
            rows_by_table[table].append({**row, "ord": n, "pos": pos, "gtype": gtype,
                                         "gid": gid})  # fmt: skip
            for k, (parent, column) in enumerate(PARENTS[table]):
                v = row[column]
                if v is None or (parent, v) in present:
                    continue
                if parent in REFERENCE_TABLES:
                    reference[(parent, str(v))].append(n)
                    continue
                refs.append({"ord": n, "pos": pos, "k": k, "gtype": gtype, "gid": gid,
                             "ptable": parent, "pid": str(v)})  # fmt: skip
    events_types = {c.name: c.type for c in OLTP.table("events").columns}
    return MappedChunk(
        recs=arrow_table(recs, REC_TYPES),
        events=arrow_table(events, events_types),
        refs=arrow_table(refs, REF_TYPES),
        rows={t: arrow_table(r, row_types(t)) for t, r in rows_by_table.items()},
        reference=dict(reference),
        problems=problems,
        count=len(records),
    )


# -- in-process and in workers -----------------------------------------------------------


def mapped_chunks(
    source: str,
    records: Callable[[], Iterator[guard.Record]],
    now: datetime,
    limits: guard.Limits,
    progress: Callable[[int], None] = lambda n: None,
    engine: bool = False,
) -> Iterator[MappedChunk]:
    """The file's records mapped, chunk by chunk, in order (``progress(n)`` per chunk).

    A JSON Lines file of at least :data:`PARALLEL_MIN_BYTES` is mapped by worker
    processes when :func:`worker_count` is above 1; anything else by ``records()`` here.
    ``engine``: as :func:`map_records`.
    """
    workers = worker_count()
    lines = _json_lines(source, limits) if workers > 1 else None
    if lines is None:
        stream = iter(records())
        first = 0
        while True:
            with collector_paused():  # the records are parsed as they are read
                chunk = list(itertools.islice(stream, CHUNK))
                mapped = map_records(chunk, first, now, limits, engine=engine) if chunk else None
            if mapped is None:
                return
            yield mapped
            progress(len(chunk))
            first += len(chunk)
    yield from _in_workers(source, lines, now, limits, workers, progress, engine)


def _json_lines(source: str, limits: guard.Limits) -> Iterator[tuple[int, bytes, int, bool]] | None:
    """The raw lines of ``source`` if it is a big enough JSON Lines file (its first line
    a JSON object, as :func:`paymodel.oltp.ingest_guard.read_file` recognises it)."""
    try:
        f = guard.open_regular(source)
    except OSError:
        return None  # records() raises it, as the record-at-a-time path would
    if os.fstat(f.fileno()).st_size < PARALLEL_MIN_BYTES:
        f.close()
        return None
    lines = guard._lines(f, limits)
    head = next(lines, None)
    if head is None or head[3]:
        f.close()
        return None
    value, error, _ = guard._parse_error(guard._text(head[1], first=True))
    if error is not None or not isinstance(value, dict):
        f.close()
        return None

    def stream() -> Iterator[tuple[int, bytes, int, bool]]:
        with f:
            yield head
            yield from lines

    return stream()


def _in_workers(
    source: str,
    lines: Iterator[tuple[int, bytes, int, bool]],
    now: datetime,
    limits: guard.Limits,
    workers: int,
    progress: Callable[[int], None],
    engine: bool,
) -> Iterator[MappedChunk]:
    """The chunks mapped by ``workers`` forked processes, ``workers + 1`` in flight.

    What is in flight bounds the ingesting process's memory (a chunk received is held
    twice for a moment: its pickle and the tables it becomes), so it is kept to one
    chunk per worker and one being received (with chunks of 5,000, two per worker had put
    the peak Python heap of a 68 MB file at 1.35x that of its first quarter, against
    1.25x this way).

    Forked, not spawned: a spawned worker imports the caller's ``__main__`` again, which
    runs a script without an ``if __name__ == "__main__"`` guard a second time (a library
    must not ask that of its callers), and starts in 0.6 s where a fork takes
    milliseconds. A forked worker runs only the mapping (pure Python, no connection, no
    lock another thread could hold: glibc's malloc is fork-safe) and ends with
    ``os._exit``, so it never touches the parent's connections; the parent's objects are
    frozen out of its garbage collector (``gc.freeze``) for the fork, so that nothing the
    parent still holds can be finalised in a worker.
    """
    ctx = multiprocessing.get_context("fork")
    with cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_start,
                                initargs=(source, now, limits, engine)) as pool:  # fmt: skip
        in_flight: deque[cf.Future[MappedChunk]] = deque()
        first = 0
        try:
            while True:
                while len(in_flight) < workers + 1:
                    chunk = list(itertools.islice(lines, CHUNK))
                    if not chunk:
                        break
                    if first == 0:  # the workers are forked at the first submit
                        gc.freeze()
                    in_flight.append(pool.submit(_map_lines, first, chunk, first == 0))
                    if first == 0:
                        gc.unfreeze()
                    first += len(chunk)
                if not in_flight:
                    return
                mapped = in_flight.popleft().result()
                yield mapped
                progress(mapped.count)
        finally:
            for future in in_flight:
                future.cancel()


_WORKER: dict[str, Any] = {}


WORKER_NICENESS = 10
"""How much lower the workers' scheduling priority is than the ingesting process's: that
process, which stages what the workers send, is the replay's bottleneck, and on a machine
with as many workers as cores it had to share a core with them. Measured on a scale-1
replay in order, two pairs of runs side by side: 56.7 s and 53.9 s against 71.2 s and
69.9 s at the same priority."""


def _start(source: str, now: datetime, limits: guard.Limits, engine: bool) -> None:
    _WORKER.update(source=source, now=now, limits=limits, engine=engine)
    with contextlib.suppress(OSError):  # not permitted: the same priority, as before
        os.nice(WORKER_NICENESS)


def _map_lines(first: int, lines: list[tuple[int, bytes, int, bool]], head: bool) -> MappedChunk:
    """A worker's chunk: the lines read as :func:`paymodel.oltp.ingest_guard.read_file`
    reads them, then :func:`map_records`."""
    with collector_paused():
        return _read_and_map(first, lines, head)


def _read_and_map(first: int, lines: list[tuple[int, bytes, int, bool]], head: bool) -> MappedChunk:
    source, now, limits = _WORKER["source"], _WORKER["now"], _WORKER["limits"]
    records = []
    for i, (number, raw, _size, too_large) in enumerate(lines):
        if too_large:
            return MappedChunk(fatal=f"line {number}: over {limits.max_record_bytes:,} bytes")
        text = guard._text(raw, first=head and i == 0)
        value, error, rule = guard._parse_error(text)
        records.append(guard.Record(source, number, text, value, error, rule or "malformed_json",
                                    parsed=True))  # fmt: skip
    return map_records(records, first, now, limits, engine=_WORKER["engine"])
