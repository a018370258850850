"""Ingest Stripe API objects and events into the OLTP database, DuckDB or PostgreSQL.

:func:`ingest` reads records exactly as Stripe's API returns them (JSON Lines, a JSON
array, or a list response ``{"object": "list", "data": [...]}``; Event objects or plain
objects) and writes the rows :func:`paymodel.model.stripe.from_stripe_object` gives.
``paymodel ingest FILE... --db TARGET`` is the same function on the command line.

What happens to each record (the counts of :class:`IngestReport`, where
``read == applied + duplicate + pending + quarantined``):

* **applied**: written. For an event, the event is recorded in ``events``; its snapshot
  is applied unless a newer snapshot of the same object is already there (then only
  the event is recorded: counted ``applied`` and also ``superseded``).
* **duplicate**: nothing new. An event whose id is already in ``events`` (at-least-once
  delivery), or a plain object older than the stored snapshot or identical to it.
* **pending**: a parent is missing (a charge before its customer). The record waits in
  ``ingest_pending`` and is applied as soon as the parent arrives, in this run or a
  later one (a later run reports it as ``released``). Foreign keys stay enforced.
* **quarantined**: malformed or invalid (not JSON, not an object, an unknown object
  type, a broken rule of the model, an unknown currency), or refused by the input guard
  (:mod:`paymodel.oltp.ingest_guard`: card data, an id not of Stripe's shape, metadata
  over Stripe's limits, a version later than the clock, a record over the size limit, a
  repeated key). It is kept in ``ingest_quarantine`` with the raw record (card data
  redacted), the rule, the error and when; nothing is raised and nothing is silently
  dropped.

Ordering: every Stripe object has the instant of the snapshot applied in
``ingest_versions``, objects nested in a snapshot (subscription items, invoice lines,
expanded balance transactions) each their own; rows without an id of their own (a
customer's address, fee lines) follow their object's snapshot, and are removed when it no
longer has them. An event's snapshot is as of the event's ``created``; a plain
object (not inside an event) is as of its own ``updated`` if it has one, else its own
``created`` (a line item or discount without either: 1970-01-01). A snapshot is applied
when it is not older than the applied one (a tie goes to the later arrival), so a plain
object fetched from the API never overwrites an event snapshot taken after it was
created, and an older event never overwrites a newer one.

Atomicity: each file is one transaction (files are committed in turn; one that cannot
be read to its end stops the run, the files before it staying committed). A crash in the middle of a file leaves the
database as it was before that file, and a rerun finishes it: events are deduplicated by
id, snapshots by version, quarantined records by digest. A record the database refuses
(a rule Python did not foresee, such as a unique key) rolls its file back; the file is
then replayed with that record quarantined (rule ``database_constraint``). Runs on one
database take turns: an advisory lock on PostgreSQL (DuckDB lets one process at a time
write a database file).

Two paths, one outcome: a file of events whose records are each acceptable on their
own is decided set-based (:mod:`paymodel.oltp.ingest_set`): staged in the engine and
decided for the whole file by a few statements (duplicates, when each snapshot is
applied, the newest snapshot per object, the writes), which gives the tables, counts
and pending records this record-at-a-time path gives, faster (:attr:`IngestReport.set_based`
names the files decided so). Any other file (plain objects, a record to quarantine, a
row that could break a cross-row rule) is decided one record at a time, as below.

Reads follow the batch, not the database: before each batch of :data:`FLUSH_EVERY`
records, the steps that depend on a record alone run ahead (the input guard, the mapping
to rows), the batch's event ids are looked up in ``events`` in one statement (so a
redelivered event never has its snapshot mapped), and one statement per table reads the
stored rows and versions the mapped rows name (their keys and references, joined against
a key table staged in the engine), so a small file costs the same in a large database as
in an empty one. Outcomes are still decided record by record, in order. The rows a file
touches are kept in memory and their difference with the database is written at each
flush as one bulk statement per table (:meth:`paymodel.oltp.backend.Backend.insert_rows`,
``update_rows``): new rows inserted parents first, and for existing rows only the changed
non-key columns updated (DuckDB refuses updates of key columns of referenced rows).
Memory grows with the objects one file touches (rows untouched for
:data:`KEEP_RECENT` records are dropped): split very large exports.

Example:
    >>> from paymodel.oltp.engines import duckdb_engine
    >>> engine = duckdb_engine()
    >>> create_schema(engine)
    >>> product = {"object": "product", "id": "prod_1", "name": "Pro", "active": True,
    ...            "created": 1735689600, "metadata": {}}
    >>> report = ingest([product, product, {"object": "product"}], engine)
    >>> report.read, report.applied, report.duplicate, report.pending, report.quarantined
    (3, 1, 1, 0, 1)
    >>> report.exit_code
    3
    >>> engine.dispose()
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import operator
import os
import re
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from tqdm import tqdm

from paymodel.model.oltp import OLTP
from paymodel.model.rules import CROSS_ROW_RULES, rules_for
from paymodel.model.sql import metadata
from paymodel.model.stripe import (
    TABLE_OBJECTS,
    StripeObjectError,
    UnknownObjectType,
    from_stripe_object,
    object_key,
    sql_predicate,
)
from paymodel.oltp import ingest_guard as guard
from paymodel.oltp.backend import backend
from paymodel.oltp.ingest_stage import collector_paused, problem_of
from paymodel.oltp.invariants import InvariantResult, check_invariants
from paymodel.oltp.schema import create_schema, create_tables, dialect_name, seed_reference_data

__all__ = [
    "EXIT_OK",
    "EXIT_QUARANTINED",
    "EXIT_USAGE",
    "IngestReport",
    "ensure_schema",
    "ingest",
    "main_ingest",
    "open_target",
    "read_records",
]

EXIT_OK = 0
"""Exit status: every record was applied, a duplicate, or is pending."""
EXIT_USAGE = 2
"""Exit status: usage error (unreadable file, unusable ``--db``)."""
EXIT_QUARANTINED = 3
"""Exit status: at least one record was quarantined (see ``ingest_quarantine``)."""

MAX_JSON_DEPTH = 64
"""Records nested deeper than this are quarantined (Stripe objects nest about 8 deep)."""

RECORDS_SOURCE = "<records>"
"""The ``source`` of records passed in memory rather than read from a file."""

_REFERENCE_TABLES = frozenset({"currencies", "fx_rates"})
"""Parents that are reference data, not Stripe objects: a missing one never arrives."""

_OWNED_TABLES = frozenset({"customer_addresses", "balance_transaction_fee_details"})
"""Tables whose rows belong to another object's snapshot (no id of their own)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------
# The report


_COUNTS = ("read", "applied", "duplicate", "pending", "quarantined")


@dataclass
class IngestReport:
    """What one :func:`ingest` run did; ``read == applied + duplicate + pending + quarantined``.

    Attributes:
        read: records read (an item of a JSON array or list response is one record).
        applied: records written (see the module docstring).
        duplicate: records that carried nothing new.
        pending: records still waiting for a parent at the end of the run.
        quarantined: records refused, kept in ``ingest_quarantine``.
        superseded: applied events whose snapshot was older than the one stored (the
            event was recorded, the object left as it was). Part of ``applied``.
        released: records left pending by earlier runs and applied in this one (not
            part of ``read``).
        by_type: the five counts per object type (``charge``, ``invoice``...; ``?`` when
            the record has no readable type).
        sources: the files read, in order.
        set_based: the files decided set-based (:mod:`paymodel.oltp.ingest_set`); the
            others were decided one record at a time.
        invariants: the dataset invariants (:mod:`paymodel.oltp.invariants`) broken by
            objects this run wrote, evaluated once at the end of the run; examples are
            the touched objects that break them. Arrival order can break one for a
            while (refunds before their ``charge.refunded``): reported, not refused.
        strict: whether a broken invariant makes :attr:`exit_code` non-zero.
        touched: ids of the objects the run wrote (what the invariants look at).
    """

    read: int = 0
    applied: int = 0
    duplicate: int = 0
    pending: int = 0
    quarantined: int = 0
    superseded: int = 0
    released: int = 0
    by_type: dict[str, dict[str, int]] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    set_based: list[str] = field(default_factory=list)
    invariants: list[InvariantResult] = field(default_factory=list)
    strict: bool = False
    touched: set[str] = field(default_factory=set, repr=False, compare=False)

    def count(self, object_type: str, outcome: str, n: int = 1) -> None:
        """Add ``n`` records of ``object_type`` with ``outcome`` (applied, duplicate...)."""
        counts = self.by_type.setdefault(object_type, dict.fromkeys(_COUNTS, 0))
        for key in ("read", outcome):
            counts[key] += n
            setattr(self, key, getattr(self, key) + n)

    def merge(self, other: IngestReport) -> None:
        """Add the counts of ``other`` (one file) to these."""
        for key in (*_COUNTS, "superseded", "released"):
            setattr(self, key, getattr(self, key) + getattr(other, key))
        for kind, counts in other.by_type.items():
            mine = self.by_type.setdefault(kind, dict.fromkeys(_COUNTS, 0))
            for key, n in counts.items():
                mine[key] += n
        self.sources.extend(other.sources)
        self.set_based.extend(other.set_based)
        self.touched |= other.touched

    @property
    def exit_code(self) -> int:
        """:data:`EXIT_QUARANTINED` if anything was quarantined (or, when ``strict``, an
        invariant of the touched objects is broken), else :data:`EXIT_OK`."""
        if self.quarantined or (self.strict and self.invariants):
            return EXIT_QUARANTINED
        return EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        """The report as a JSON-serialisable dict (what ``--json`` prints)."""
        return {
            **{key: getattr(self, key) for key in _COUNTS},
            "superseded": self.superseded,
            "released": self.released,
            "by_type": {k: dict(v) for k, v in sorted(self.by_type.items())},
            "sources": list(self.sources),
            "set_based": list(self.set_based),
            "invariants": [
                {"name": r.name, "description": r.description, "violations": r.violations,
                 "examples": list(r.examples)}
                for r in self.invariants
            ],
        }  # fmt: skip

    def summary(self) -> str:
        """The report for people: totals, then one line per object type."""
        lines = [
            f"read {self.read}: applied {self.applied}, duplicate {self.duplicate}, "
            f"pending {self.pending}, quarantined {self.quarantined}"
        ]
        if self.superseded or self.released:
            lines.append(
                f"  ({self.superseded} applied event(s) older than the stored snapshot; "
                f"{self.released} record(s) from earlier runs released from pending)"
            )
        shown = {k: guard.printable(k) for k in self.by_type}
        width = max((len(k) for k in shown.values()), default=0)
        for kind, c in sorted(self.by_type.items()):
            lines.append(
                f"  {shown[kind]:<{width}}  read {c['read']:>6}  applied {c['applied']:>6}  "
                f"duplicate {c['duplicate']:>6}  pending {c['pending']:>6}  "
                f"quarantined {c['quarantined']:>6}"
            )
        if self.quarantined:
            lines.append("quarantined records: SELECT rule, error, raw FROM ingest_quarantine")
        for r in self.invariants:
            lines.append(
                f"invariant broken by {r.violations} touched object(s): {r.name} "
                f"({r.description}), e.g. {', '.join(r.examples)}"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


# --------------------------------------------------------------------------------------
# Reading records


_Record = guard.Record
"""One record as read (see :class:`paymodel.oltp.ingest_guard.Record`)."""


def read_records(
    path: str | os.PathLike[str], limits: guard.Limits = guard.DEFAULT_LIMITS
) -> Iterator[_Record]:
    """The records of one file: JSON Lines, a JSON array, or a list response.

    Read by :func:`paymodel.oltp.ingest_guard.read_file`: the format is recognised from
    the content, a record over ``limits.max_record_bytes`` or that is not acceptable JSON
    comes back as a rejection carrying its rule.

    Raises:
        OSError: the file cannot be read, or is not a regular file.
    """
    return guard.read_file(path, limits)


_dump = guard.dump


def _storable(text: str) -> str:
    """``text`` without what PostgreSQL cannot store in TEXT (NUL, lone surrogates)."""
    text = text.replace("\x00", "\\x00")
    return text.encode("utf-8", errors="backslashreplace").decode("utf-8")


def _json_problem(value: Any) -> str | None:
    """Why ``value`` is not plain, storable JSON (iterative: safe on deep nesting)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"nested deeper than {MAX_JSON_DEPTH} levels"
        if v is None or isinstance(v, bool | int):
            continue
        if isinstance(v, str):
            if "\x00" in v:
                return "a string holds a NUL character"
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                return "a string is not valid UTF-8 (lone surrogate)"
        elif isinstance(v, float):
            if not math.isfinite(v):
                return "a number is NaN or infinite"
        elif isinstance(v, dict):
            for k, item in v.items():
                if not isinstance(k, str):
                    return f"a key is not a string: {type(k).__name__}"
                stack.append((k, depth + 1))
                stack.append((item, depth + 1))
        elif isinstance(v, list):
            stack.extend((item, depth + 1) for item in v)
        else:
            return f"a value is not JSON: {type(v).__name__}"
    return None


_SUSPECT_TEXT = re.compile(r"\\u(?:0000|[dD][89abcdefABCDEF])|[\ud800-\udfff]")
"""In JSON text: an escaped NUL or surrogate, or a lone surrogate (bytes not UTF-8)."""


def _plain_text(raw: str) -> bool:
    """Whether JSON text that :func:`paymodel.oltp.ingest_guard.parse` accepted surely
    parses to storable JSON, so :func:`_json_problem` need not walk the value.

    The parser already refused NaN and Infinity and made every key a string; what is
    left (NUL, lone surrogates, depth) shows in the text: fewer brackets than
    :data:`MAX_JSON_DEPTH` bound the depth, and without the escapes above no string
    holds a NUL or a surrogate. Any doubt falls back to the walk (measured: the walk
    was about 8% of a replay). ASCII text without ``\\u`` is decided by two C-level
    string methods; the regex (slow: its surrogate class) only sees the rest.
    """
    if raw.count("{") + raw.count("[") > MAX_JSON_DEPTH:
        return False
    if raw.isascii() and "\\u" not in raw:
        return True
    return not _SUSPECT_TEXT.search(raw)


# --------------------------------------------------------------------------------------
# The database side


@cache
def _tables(dialect: str) -> dict[str, sa.Table]:
    return dict(metadata(OLTP, dialect).tables)


def ensure_schema(engine: sa.Engine) -> list[str]:
    """Create the model's tables that ``engine``'s database lacks; return their names.

    An empty database gets the whole schema and the reference data (currencies). A
    database created before some tables existed (such as the ingestion bookkeeping)
    gets the missing ones, parents first.
    """
    existing = set(sa.inspect(engine).get_table_names())
    _check_existing_tables(engine, existing)
    missing = [t.name for t in OLTP.tables if t.name not in existing]
    if not missing:
        return []
    if len(missing) == len(OLTP.tables):
        create_schema(engine)
        return missing
    with engine.begin() as conn:
        create_tables(conn, missing)
        if "currencies" in missing:
            seed_reference_data(conn)
    return missing


class ForeignTable(ValueError):
    """The database holds a table of a model table's name without that table's columns."""


def _check_existing_tables(engine: sa.Engine, existing: set[str]) -> None:
    """Refuse a database whose tables of the model's names lack the model's columns.

    Ingestion reads and writes those columns; a ``products`` table of another
    application would otherwise fail deep inside a query with the engine's error.
    (One ``information_schema`` query, which DuckDB and PostgreSQL both answer:
    duckdb-engine's inspector cannot list columns.)

    Raises:
        ForeignTable: naming the table and the columns it lacks.
    """
    names = [t.name for t in OLTP.tables if t.name in existing]
    if not names:
        return
    c = sa.table("columns", sa.column("table_name"), sa.column("column_name"),
                 sa.column("table_schema"), schema="information_schema")  # fmt: skip
    query = sa.select(c.c.table_name, c.c.column_name).where(
        c.c.table_name.in_(names), c.c.table_schema == sa.func.current_schema()
    )
    have: dict[str, set[str]] = defaultdict(set)
    with engine.connect() as conn:
        for table, column in conn.execute(query):
            have[table].add(column)
    for table in OLTP.tables:
        if table.name not in existing:
            continue
        lacking = [col.name for col in table.columns if col.name not in have[table.name]]
        if lacking:
            raise ForeignTable(
                f"table {guard.printable(table.name)} has no column "
                f"{', '.join(lacking[:5])}{' ...' if len(lacking) > 5 else ''}: it is not "
                "paymodel's; use another database, or drop or rename that table"
            )


class _DatabaseRefused(Exception):
    """The database refused a write made for ``culprit`` (a record or a pending entry)."""

    def __init__(self, culprit: str, error: sa.exc.DBAPIError) -> None:
        self.culprit = culprit
        self.error = error
        self.span: tuple[int, int] | None = None  # records of a refused flush, if no culprit
        super().__init__(f"{culprit}: {str(error.orig or error).splitlines()[0][:500]}")


def _key(table: str, row: Mapping[str, Any]) -> tuple[Any, ...]:
    return _KEY_OF[table](row)


def _key_getter(columns: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """The primary key of a row as a tuple (measured: a generator per call was 4% of a
    replay; ``itemgetter`` gives a bare value for one column, hence the wrapper)."""
    if len(columns) == 1:
        (column,) = columns
        return lambda row: (row[column],)
    return operator.itemgetter(*columns)


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, str) and isinstance(b, dict):  # a JSON column read back as text
        try:
            return json.loads(a) == b
        except ValueError:
            return False
    return a == b


@dataclass
class _Pending:
    id: str
    object_type: str
    object_id: str
    event_id: str | None
    version: datetime
    waiting_for_table: str
    waiting_for_id: str
    raw: str
    source: str
    source_line: int | None
    received_at: datetime
    origin: str | None = None  # culprit key of the record of this run that left it pending
    rows: list[tuple[str, dict[str, Any]]] | None = field(default=None, repr=False)
    """The snapshot's rows, for a record left pending by this run: its release applies
    them instead of parsing and mapping the raw text again (measured: releases were
    about a third of a shuffled replay). ``None`` for rows read from ``ingest_pending``."""


class _FileRun:
    """One attempt at one file (or one batch of records) inside one transaction."""

    def __init__(
        self,
        conn: sa.Connection,
        now: datetime,
        forced: dict[str, str],
        *,
        deferred: bool = True,
        limits: guard.Limits = guard.DEFAULT_LIMITS,
    ) -> None:
        self.conn = conn
        self.limits = limits
        self.deferred = deferred  # flush once at the end, else after every record
        self.now = now
        self.forced = forced  # culprit -> database error, from an earlier attempt
        self.t = _tables(dialect_name(conn))
        self.report = IngestReport()
        self.outcomes: dict[str, tuple[str, str]] = {}  # record culprit -> (type, outcome)
        self.culprit = ""
        self.since = -1  # the first record not flushed yet (-1: the release of earlier pending)
        self.known: dict[str, _KnownKeys] = {}
        self.state: dict[tuple[str, tuple[Any, ...]], dict[str, Any] | None] = {}
        self.stored: dict[tuple[str, tuple[Any, ...]], dict[str, Any] | None] = {}
        self.dirty: set[tuple[str, tuple[Any, ...]]] = set()
        self.clock = 0  # records processed, to forget rows not touched for a while
        self.touched: dict[tuple[str, tuple[Any, ...]], int] = {}
        self.new_events: list[dict[str, Any]] = []
        self.version_rows: dict[tuple[str, str], dict[str, Any]] = {}
        self.versions = _Versions(self._version_of)
        self.events = _KnownKeys(self._event_exists)
        self.prepared: dict[int, _Prepared] = {}  # id(record) -> its steps done ahead
        self.pending: dict[str, _Pending] = {}
        self.waiting: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.by_object: dict[tuple[str, str], set[str]] = defaultdict(set)
        self._queue: set[str] = set()
        for r in conn.execute(sa.select(self.t["ingest_pending"])):
            self._index(
                _Pending(
                    **{k: getattr(r, k) for k in _PENDING_COLUMNS}
                )
            )
        # what ingest_pending holds: id -> the parent the stored row waits for
        self.pending_stored = {
            p.id: (p.waiting_for_table, p.waiting_for_id) for p in self.pending.values()
        }

    # -- small helpers ------------------------------------------------------------
    def _index(self, p: _Pending) -> None:
        self.pending[p.id] = p
        self.waiting[(p.waiting_for_table, p.waiting_for_id)].add(p.id)
        self.by_object[(p.object_type, p.object_id)].add(p.id)

    def _unindex(self, p: _Pending) -> None:
        self.pending.pop(p.id, None)
        self.waiting[(p.waiting_for_table, p.waiting_for_id)].discard(p.id)
        self.by_object[(p.object_type, p.object_id)].discard(p.id)

    def execute(self, statement: sa.Executable, params: Any = None) -> sa.CursorResult:
        try:
            return self.conn.execute(statement, params)
        except sa.exc.DBAPIError as e:
            raise _DatabaseRefused(self.culprit, e) from e

    def exists(self, table: str, key: tuple[Any, ...]) -> bool:
        return key in self._keys(table)

    def _keys(self, table: str) -> _KnownKeys:
        keys = self.known.get(table)
        if keys is None:
            pk = [self.t[table].c[c] for c in _PK[table]]
            if table in _REFERENCE_TABLES:  # reference data: small, read once
                keys = _KnownKeys(lambda key: False)
                keys.learn({tuple(r) for r in self.execute(sa.select(*pk))}, None)
            else:
                keys = _KnownKeys(lambda key, t=table: self._row_exists(t, key))
            self.known[table] = keys
        return keys

    def _row_exists(self, table: str, key: tuple[Any, ...]) -> bool:
        t = self.t[table]
        where = sa.and_(*(t.c[c] == v for c, v in zip(_PK[table], key, strict=True)))
        return self.execute(sa.select(sa.literal(1)).where(where)).first() is not None

    def _event_exists(self, event_id: str) -> bool:
        t = self.t["events"]
        return self.execute(sa.select(t.c.id).where(t.c.id == event_id)).first() is not None

    def _version_of(self, key: tuple[str, str]) -> tuple[datetime, str | None] | None:
        t = self.t["ingest_versions"]
        where = sa.and_(t.c.object_type == key[0], t.c.object_id == key[1])
        found = self.execute(sa.select(t.c.version, t.c.event_id).where(where)).first()
        return None if found is None else (found[0], found[1])

    def event_known(self, event_id: str) -> bool:
        return event_id in self.events

    def prepare(self, records: Sequence[_Record]) -> set[str]:
        """Run the steps of each record that depend on the record alone, ahead of its turn;
        return the ids the batch's writes can look up.

        The guard's answer and the rows of the event and of its snapshot are kept for the
        record's turn (:attr:`prepared`), where they are used exactly as if computed then
        (a mapping error is raised then). The batch's event ids are looked up in
        ``events`` in one statement first, so a redelivery of a stored event never has
        its snapshot mapped; a second copy within the batch is mapped only if the first
        was not recorded. The ids come from the mapped rows' keys and references, which
        are what applying them looks up (measured: walking every string of every record
        was about 7% of a replay). A record whose text is not plain (escapes, deep
        nesting: rare) is left to its turn and its strings are walked as before.
        """
        self.prepared = {}
        ids: set[str] = set()
        events: list[tuple[_Prepared, str, dict[str, Any]]] = []
        for record in records:
            value = record.value
            if record.error is not None or not isinstance(value, dict):
                continue
            if not (record.parsed and _plain_text(record.raw)):
                _strings(value, ids)
                continue
            p = self.prepared[id(record)] = _Prepared()
            p.refused = guard.check_record(value, self.now, self.limits, raw=record.raw)
            if p.refused is not None:
                continue
            if value.get("object") != "event":
                p.snapshot = _mapping(value)
                if not isinstance(p.snapshot, StripeObjectError):
                    _row_keys(p.snapshot, ids)
                continue
            p.event = _mapping(value)
            if isinstance(p.event, StripeObjectError):
                continue
            events.append((p, p.event[0][1]["id"], value))
        named = {event_id for _, event_id, _ in events}
        sent = sorted(i for i in named if _storable(i) == i)  # no TEXT holds the others
        found: set[str] = set()
        if sent:
            t = self.t["events"]
            with backend(self.conn).key_table(self.conn, sent) as keys:
                selected = self.execute(sa.select(t.c.id).where(t.c.id.in_(sa.select(keys.c.id))))
                found = {r[0] for r in selected.all()}
        self.events.learn(found, named)
        mapped: set[str] = set()
        for p, event_id, value in events:
            ids.add(event_id)
            snapshot = value["data"]["object"]
            if event_id in mapped or event_id in self.events or snapshot.get("object") == "event":
                continue  # stored, or a copy within the batch: mapped at its turn if needed
            mapped.add(event_id)
            p.snapshot = _mapping(snapshot)
            if not isinstance(p.snapshot, StripeObjectError):
                _row_keys(p.snapshot, ids)
        return ids

    def _prepared(self, record: _Record) -> _Prepared:
        """What :meth:`prepare` kept for ``record`` (nothing: an empty one), taken once."""
        return self.prepared.pop(id(record), None) or _Prepared()

    def prefetch(self, records: Sequence[_Record]) -> None:
        """Read, in one statement per table, what the next records can touch.

        Only the keys the records name (the keys and references of the rows they map to,
        and the event ids, from :meth:`prepare`) are read: stored versions, event ids,
        and the rows themselves, so the cost follows the batch, not the database. A key
        not read here (none should be) is looked up on its own when needed.
        """
        ids = self.prepare(records)
        # Pending records the batch can release (it names their parent or their object)
        # are read ahead too: what the run knows of keys is dropped after each batch, and
        # without them each release looked its parents and versions up one SELECT at a
        # time (measured: a shuffled replay ran 5.5x slower than one in order).
        # A release can release others in turn: repeated until no more is named.
        waiting = list(self.pending.values())
        while waiting:
            woken = [p for p in waiting if p.waiting_for_id in ids or p.object_id in ids]
            for p in woken:
                if p.rows is None:
                    _strings(guard.parse(p.raw), ids)
                else:  # the keys its release can look up: those its rows name
                    _row_keys(p.rows, ids)
            done = {p.id for p in woken}
            waiting = [p for p in waiting if p.id not in done] if woken else []
        # A string no TEXT column can hold (NUL, a lone surrogate: hostile records) is no
        # stored key: it is covered (absent) without being sent, which PostgreSQL refuses.
        sent = sorted(i for i in ids if _storable(i) == i)
        if not sent:
            return
        with backend(self.conn).key_table(self.conn, sent) as keys:
            within = sa.select(keys.c.id)
            t = self.t["events"]
            # .all(): one fetch of the driver per statement (row by row was 4% of a replay)
            found = {r[0] for r in self.execute(sa.select(t.c.id).where(t.c.id.in_(within))).all()}
            self.events.learn(found, ids)
            t = self.t["ingest_versions"]
            rows = self.execute(sa.select(t.c.object_type, t.c.object_id, t.c.version, t.c.event_id)
                                .where(t.c.object_id.in_(within))).all()  # fmt: skip
            self.versions.learn({(r[0], r[1]): (r[2], r[3]) for r in rows}, ids)
            for table in _PREFETCHED:
                t = self.t[table]
                first = _PK[table][0]
                found_keys = set()
                selected = self.execute(sa.select(t).where(t.c[first].in_(within)))
                for row in selected.mappings().all():
                    key = tuple(row[c] for c in _PK[table])
                    found_keys.add(key)
                    k = (table, key)
                    if k not in self.state:
                        self.state[k] = self.stored[k] = dict(row)
                    self.touched[k] = self.clock
                self._keys(table).learn(found_keys, ids)

    # -- writing rows: kept in memory, flushed as the difference with the database ----
    def current(self, table: str, key: tuple[Any, ...]) -> dict[str, Any] | None:
        """The row as the run sees it (written in this run, else read once), or ``None``."""
        k = (table, key)
        self.touched[k] = self.clock
        if k in self.state:
            return self.state[k]
        row = None
        if self.exists(table, key):
            t = self.t[table]
            pk = _PK[table]
            where = sa.and_(*(t.c[c] == v for c, v in zip(pk, key, strict=True)))
            found = self.execute(sa.select(t).where(where)).mappings().first()
            row = dict(found) if found is not None else None
        self.state[k] = self.stored[k] = row
        return row

    def write_row(self, table: str, row: dict[str, Any]) -> bool:
        """Set ``row`` (insert, or update its changed non-key columns); whether it changed."""
        key = _key(table, row)
        before = self.current(table, key)
        self.report.touched.add(object_key(table, row)[1])
        self.state[(table, key)] = row
        self.dirty.add((table, key))
        self.known[table].add(key)
        if before is None:
            return True
        if before == row:  # the same values (one C comparison): unchanged
            return False
        return any(not _same(before.get(c), v) for c, v in row.items())

    def remove_row(self, table: str, key: tuple[Any, ...]) -> bool:
        if self.current(table, key) is None:
            return False
        self.state[(table, key)] = None
        self.dirty.add((table, key))
        self.known[table].discard(key)
        return True

    def delete_owned(self, object_type: str, object_id: str, kept: list[dict[str, Any]]) -> bool:
        """Remove rows the snapshot no longer has: an address, fee lines past the end."""
        if object_type == "customer":
            return not kept and self.remove_row("customer_addresses", (object_id,))
        if object_type == "balance_transaction":
            removed, line = False, len(kept)
            while self.exists("balance_transaction_fee_details", (object_id, line)):
                removed |= self.remove_row("balance_transaction_fee_details", (object_id, line))
                line += 1
            return removed
        return False

    def set_version(
        self, object_type: str, object_id: str, version: datetime, event_id: str | None
    ) -> None:
        self.versions[(object_type, object_id)] = version
        self.versions.events[(object_type, object_id)] = event_id
        self.version_rows[(object_type, object_id)] = {
            "object_type": object_type,
            "object_id": object_id,
            "version": version,
            "event_id": event_id,
            "applied_at": self.now,
        }

    def insert_many(self, table: str, rows: list[dict[str, Any]]) -> None:
        """Insert rows in one bulk statement of the engine (Arrow on DuckDB, COPY on PostgreSQL).

        Measured: SQLAlchemy's executemany ran about a third of a replay's time.
        """
        try:
            backend(self.conn).insert_rows(self.conn, table, rows)
        except sa.exc.DBAPIError as e:
            raise _DatabaseRefused(self.culprit, e) from e

    def update_many(
        self, table: str, keys: Sequence[str], columns: Sequence[str], rows: list[dict[str, Any]]
    ) -> None:
        """Set ``columns`` of the rows matching ``keys`` in one bulk statement of the engine."""
        try:
            backend(self.conn).update_rows(self.conn, table, keys, columns, rows)
        except sa.exc.DBAPIError as e:
            raise _DatabaseRefused(self.culprit, e) from e

    def forget(self, keep_recent: int) -> None:
        """Drop kept rows untouched for ``keep_recent`` records (the database has them)."""
        assert not self.dirty, "forget() before flush()"
        horizon = self.clock - keep_recent
        for k in [k for k, seen in self.touched.items() if seen < horizon]:
            del self.state[k], self.stored[k], self.touched[k]
        # What the run learnt of keys, versions and event ids is written by now: the next
        # batch's prefetch reads again what it names, so these stay the size of a batch
        # (they held every id the file named: peak memory grew with the file).
        self.known = {t: k for t, k in self.known.items() if t in _REFERENCE_TABLES}
        self.versions = _Versions(self._version_of)
        self.events = _KnownKeys(self._event_exists)

    def flush_pending(self) -> None:
        """Bring ``ingest_pending`` in line with the records still waiting."""
        t = self.t["ingest_pending"]
        waiting = {i: (p.waiting_for_table, p.waiting_for_id) for i, p in self.pending.items()}
        gone = [i for i, w in self.pending_stored.items() if waiting.get(i) != w]
        new = [self.pending[i] for i, w in waiting.items() if self.pending_stored.get(i) != w]
        if gone:
            self.execute(sa.delete(t).where(t.c.id.in_(gone)))
        if new:  # one bulk statement (measured: executemany was a fifth of a shuffled replay)
            self.insert_many("ingest_pending",
                             [{k: getattr(p, k) for k in _PENDING_COLUMNS} for p in new])  # fmt: skip
        self.pending_stored = waiting

    def flush(self) -> None:
        """Write what changed since the last flush: deletes, inserts parents first, updates."""
        order = {name: i for i, name in enumerate(OLTP.table_names)}
        inserts: dict[str, list[dict[str, Any]]] = defaultdict(list)
        updates: dict[tuple[str, tuple[str, ...]], list[dict[str, Any]]] = defaultdict(list)
        for table, key in sorted(self.dirty, key=lambda k: order[k[0]]):
            now, before = self.state[(table, key)], self.stored[(table, key)]
            t = self.t[table]
            pk = _PK[table]
            if now is None:
                if before is not None:  # owned rows only: nothing references them
                    where = sa.and_(*(t.c[c] == v for c, v in zip(pk, key, strict=True)))
                    self.execute(sa.delete(t).where(where))
            elif before is None:
                inserts[table].append(now)
            else:
                changes = {
                    c: v for c, v in now.items() if c not in pk and not _same(before.get(c), v)
                }
                if changes:
                    params = dict(zip(pk, key, strict=True)) | changes
                    updates[(table, tuple(sorted(changes)))].append(params)
            self.stored[(table, key)] = now
        self.dirty.clear()
        for table in sorted(inserts, key=order.__getitem__):
            self.insert_many(table, inserts[table])
        for (table, columns), params in updates.items():
            self.update_many(table, _PK[table], columns, params)
        if self.new_events:
            self.insert_many("events", self.new_events)
            self.new_events = []
        self.flush_pending()
        if self.version_rows:
            fresh = [r for k, r in self.version_rows.items() if k not in self.versions.stored]
            known = [r for k, r in self.version_rows.items() if k in self.versions.stored]
            if fresh:
                self.insert_many("ingest_versions", fresh)
            if known:
                self.update_many("ingest_versions", ("object_type", "object_id"),
                                 ("version", "event_id", "applied_at"), known)  # fmt: skip
            self.versions.stored.update(self.version_rows)
            self.version_rows = {}

    # -- bookkeeping tables -------------------------------------------------------
    def quarantine(self, record: _Record, rule: str, error: str, object_type: str | None = None,
                   object_id: str | None = None, event_id: str | None = None) -> str:  # fmt: skip
        row = quarantine_row(record, rule, error, self.now, object_type, object_id, event_id)
        t = self.t["ingest_quarantine"]
        found = self.execute(sa.select(t.c.times_seen).where(t.c.id == row["id"])).scalar()
        if found is not None:
            self.execute(
                sa.update(t)
                .where(t.c.id == row["id"])
                .values(last_seen_at=self.now, times_seen=found + 1)
            )
        else:
            self.execute(sa.insert(t), row)
        return "quarantined"

    def add_pending(self, record: _Record, snapshot: _Snapshot, parent: tuple[str, str]) -> str:
        raw = _storable(guard.stored_raw(record))
        digest = hashlib.sha256(raw.encode()).hexdigest()[:32]
        if digest in self.pending:
            return "duplicate"
        p = _Pending(digest, snapshot.object_type, snapshot.object_id, snapshot.event_id,
                     snapshot.version, parent[0], parent[1], raw, _storable(record.source),
                     record.line, self.now, origin=self.culprit, rows=snapshot.rows)  # fmt: skip
        self._index(p)  # written by the next flush, unless released before it
        return "pending"

    # -- one record ---------------------------------------------------------------
    def record(self, record: _Record, culprit: str) -> None:
        """Process one record and count it."""
        self.culprit = culprit
        self.clock += 1
        kind = "?"
        value = record.value
        if isinstance(value, dict) and isinstance(value.get("object"), str):
            kind = value["object"]
            data = value.get("data")
            if kind == "event" and isinstance(data, dict) and isinstance(data.get("object"), dict):
                inner = data["object"].get("object")
                kind = inner if isinstance(inner, str) else kind
        kind = _short(kind) or "?"
        if culprit in self.forced:
            outcome = self.quarantine(
                record, "database_constraint", self.forced[culprit], kind, _obj_id(value)
            )
        else:
            outcome = self._record(record, value)
        if outcome == "pending":  # a release later in the run decides what it counts as
            self.outcomes[culprit] = (kind, outcome)
        else:  # counted now: the run keeps only the records still waiting (bounded memory)
            self.report.count(kind, outcome)
        if not self.deferred:
            self.flush()
        self.resolve()

    def _record(self, record: _Record, value: Any) -> str:
        if record.error is not None:
            return self.quarantine(
                record, record.rule, f"{record.source}:{record.line}: {record.error}"
            )
        if not isinstance(value, dict):
            return self.quarantine(
                record, "not_an_object",
                f"{record.source}:{record.line}: a record must be a JSON object, got {type(value).__name__}",
            )  # fmt: skip
        problem = None if record.parsed and _plain_text(record.raw) else _json_problem(value)
        if problem is not None:
            return self.quarantine(record, "invalid_object", f"{_name(value)}: {problem}",
                                   _short(value.get("object")), _obj_id(value))  # fmt: skip
        prepared = self._prepared(record)
        refused = prepared.refused
        if refused is _UNSET:  # the text a record was parsed from lets the guard decide most
            text = record.raw if record.parsed else None
            refused = guard.check_record(value, self.now, self.limits, raw=text)
        record.checked = refused is None
        if refused is not None:
            kind, oid, event_id = _short(value.get("object")), _obj_id(value), None
            inner = value.get("data", {}).get("object") if kind == "event" else None
            if isinstance(value.get("data"), dict) and isinstance(inner, dict):
                kind, oid, event_id = _short(inner.get("object")), _obj_id(inner), oid
            return self.quarantine(record, *refused, kind, oid, event_id)
        if value.get("object") == "event":
            return self._event(record, value, prepared)
        try:
            rows = _mapped(value, prepared.snapshot)
        except UnknownObjectType as e:
            return self.quarantine(
                record, "unknown_object_type", str(e), e.object_type, e.object_id
            )
        except StripeObjectError as e:
            return self.quarantine(record, "invalid_object", str(e), e.object_type, e.object_id)
        if value.get("object") == "list":  # pragma: no cover - lists are unpacked when read
            raise AssertionError("list records are unpacked before processing")
        snapshot = _Snapshot.plain(value, rows)
        outcome = self.apply(record, snapshot)
        return "duplicate" if outcome in ("unchanged", "superseded") else outcome

    def _event(self, record: _Record, value: dict[str, Any], prepared: _Prepared) -> str:
        try:
            ((_, event),) = _mapped(value, prepared.event)
        except StripeObjectError as e:
            return self.quarantine(record, "invalid_event", str(e), e.object_type, e.object_id)
        if self.event_known(event["id"]):
            return "duplicate"
        snapshot_obj = value["data"]["object"]
        try:
            if snapshot_obj.get("object") == "event":
                raise StripeObjectError("event", event["id"], "data.object is itself an event")
            rows = _mapped(snapshot_obj, prepared.snapshot)
        except StripeObjectError as e:  # worded as the set-based path words it
            p = problem_of(event["id"], e)
            return self.quarantine(record, p.rule, p.error, p.object_type, p.object_id,
                                   p.event_id)  # fmt: skip
        snapshot = _Snapshot(
            event["object_type"], event["object_id"], event["created"], event["id"], rows
        )
        outcome = self.apply(record, snapshot)
        if outcome == "quarantined":  # not recorded: a corrected redelivery will be applied
            return outcome
        self.new_events.append(event)
        self.events.add(event["id"])
        if outcome == "superseded":
            self.report.superseded += 1
        return "applied" if outcome in ("applied", "unchanged", "superseded") else outcome

    # -- applying a snapshot --------------------------------------------------------
    def apply(self, record: _Record, snapshot: _Snapshot) -> str:
        """Apply a snapshot: applied, unchanged, superseded, pending or quarantined."""
        groups: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}
        for table, row in snapshot.rows:
            groups.setdefault(object_key(table, row), []).append((table, row))
        fresh = {
            k: g
            for k, g in groups.items()
            if k not in self.versions or self.versions[k] <= snapshot.version
        }
        if not fresh:
            return "superseded"
        present = {(t, _key(t, r)) for t, r in snapshot.rows}
        for group in fresh.values():
            for table, row in group:
                missing = self.missing_parent(table, row, present)
                if missing is None:
                    continue
                parent_table, parent_key = missing
                if parent_table in _REFERENCE_TABLES:
                    kind, oid = object_key(table, row)
                    return self.quarantine(
                        record, "unknown_reference",
                        f"{kind} {oid}: {parent_table} has no {parent_key}",
                        kind, oid, snapshot.event_id,
                    )  # fmt: skip
                return self.add_pending(record, snapshot, (parent_table, parent_key))
        in_snapshot = {(t, _key(t, r)): r for t, r in snapshot.rows}
        for group in fresh.values():
            for table, row in group:
                problem = self.disagreement(table, row, in_snapshot)
                if problem is not None:
                    kind, oid = object_key(table, row)
                    return self.quarantine(record, "invalid_object", f"{kind} {oid}: {problem}",
                                           kind, oid, snapshot.event_id)  # fmt: skip
        broken = self.broken_rule(fresh, in_snapshot)
        if broken is not None:
            rule, error, (kind, oid) = broken
            return self.quarantine(record, rule, error, kind, oid, snapshot.event_id)
        changed = False
        for (object_type, object_id), group in fresh.items():
            for table, row in group:
                changed |= self.write_row(table, row)
            owned = [r for t, r in group if t in _OWNED_TABLES]
            changed |= self.delete_owned(object_type, object_id, owned)
            key = (object_type, object_id)
            # A tie (same instant) is applied too: the version row then names its event.
            if self.versions.get(key) != snapshot.version or (
                snapshot.event_id is not None and self.versions.event_of(key) != snapshot.event_id
            ):
                self.set_version(object_type, object_id, snapshot.version, snapshot.event_id)
            self.wake(object_type, object_id, snapshot.version, group)
        if len(fresh) < len(groups) and not changed:
            return "superseded"
        return "applied" if changed else "unchanged"

    def broken_rule(
        self, fresh: Mapping[tuple[str, str], list[tuple[str, dict[str, Any]]]],
        inside: dict[tuple[str, tuple[Any, ...]], dict[str, Any]],
    ) -> tuple[str, str, tuple[str, str]] | None:
        """The first cross-row rule a row of the snapshot breaks against its parent.

        The parent is the one in the same snapshot (an expanded object), else the row
        as this run sees it. Returns (rule name, error naming both rows, object key).
        """
        for group in fresh.values():
            for table, row in group:
                for rule in _RULES.get(table, ()):
                    ref = row[rule.column]
                    if ref is None:
                        continue
                    parent = inside.get((rule.parent, (ref,)))
                    if parent is None:
                        parent = self.current(rule.parent, (ref,))
                    if parent is None:
                        continue
                    values = {**row, **{f"parent.{k}": v for k, v in parent.items()}}
                    if sql_predicate(rule.sql)(values) is not False:
                        continue
                    mine, theirs = _RULE_COLUMNS[rule.name]
                    kind, oid = object_key(table, row)
                    shown = ", ".join(f"{c} {row[c]}" for c in mine)
                    parents = ", ".join(f"{c} {parent[c]}" for c in theirs)
                    error = (f"{kind} {oid}: {rule.description} ({shown}; "
                             f"{TABLE_OBJECTS[rule.parent]} {ref}: {parents})")  # fmt: skip
                    return rule.name, error, (kind, oid)
        return None

    def missing_parent(
        self, table: str, row: Mapping[str, Any], present: set
    ) -> tuple[str, str] | None:
        """The first parent ``row`` references that neither the snapshot nor the database has."""
        for parent, column in _PARENTS[table]:
            value = row[column]
            if value is None:
                continue
            key = (value,)
            if (parent, key) in present or self.exists(parent, key):
                continue
            return parent, str(value)
        return None

    def disagreement(self, table: str, row: Mapping[str, Any], in_snapshot: dict) -> str | None:
        """The agreement key ``row`` breaks (a refund's payment intent not its charge's), if any.

        Checked here on every engine, before the database (which declares some of these
        keys on PostgreSQL only), so the error names the object and the columns.
        """
        for fk in _AGREE[table]:
            values = [row[c] for c in fk.columns]
            if any(v is None for v in values):
                continue
            key = (values[0],)
            parent = in_snapshot.get((fk.table, key))
            if parent is None:
                parent = self.current(fk.table, key)
            if parent is None:
                continue
            for c, r in zip(fk.columns[1:], fk.referred[1:], strict=True):
                if parent[r] != row[c]:
                    return (
                        f"{c} {row[c]} disagrees with {fk.table} {values[0]}, whose {r} is "
                        f"{parent[r]} ({fk.why})"
                    )
        return None

    # -- the pending area -------------------------------------------------------------
    def wake(self, object_type: str, object_id: str, version: datetime, group: list) -> None:
        """Queue the pending records this write may release."""
        for table, row in group:
            if table not in _OWNED_TABLES:
                self._queue.update(self.waiting.get((table, str(row["id"])), ()))
        for pid in self.by_object.get((object_type, object_id), ()):
            p = self.pending.get(pid)
            if p is not None and p.version <= version:
                self._queue.add(pid)

    def resolve(self) -> None:
        """Apply queued pending records until none makes progress."""
        while self._queue:
            batch = sorted((self.pending[i] for i in self._queue if i in self.pending),
                           key=lambda p: (p.version, p.id))  # fmt: skip
            self._queue.clear()
            for p in batch:
                if p.id in self.pending:
                    self.release(p)

    def release(self, p: _Pending) -> None:
        culprit = f"pending:{p.id}"
        saved, self.culprit = self.culprit, culprit
        try:
            # A pending record passed the guard when it was read (so holds no card data).
            value = guard.parse(p.raw) if p.rows is None else None
            record = _Record(p.source, p.source_line, p.raw, value, parsed=True, checked=True)
            self._unindex(p)
            if culprit in self.forced:
                outcome = self.quarantine(record, "database_constraint", self.forced[culprit],
                                          p.object_type, p.object_id, p.event_id)  # fmt: skip
            else:
                rows = p.rows
                if rows is None:
                    obj = value["data"]["object"] if p.event_id is not None else value
                    rows = from_stripe_object(obj)
                snapshot = _Snapshot(p.object_type, p.object_id, p.version, p.event_id, rows)
                outcome = self.apply(record, snapshot)
            if not self.deferred:
                self.flush()
            if outcome == "pending":  # waits for another parent now: keep its history
                self.pending[p.id].origin = p.origin
                self.pending[p.id].received_at = p.received_at
                return
            if outcome == "superseded" and p.event_id is not None:
                self.report.superseded += 1
            if p.origin is not None and p.origin in self.outcomes:
                kind, _ = self.outcomes.pop(p.origin)
                final = "applied"
                if outcome == "quarantined":
                    final = "quarantined"
                elif p.event_id is None and outcome in ("unchanged", "superseded"):
                    final = "duplicate"
                self.report.count(kind, final)
            elif outcome != "quarantined":
                self.report.released += 1
        finally:
            self.culprit = saved

    def release_ready(self) -> None:
        """Release pending records of earlier runs whose parent is there now."""
        for p in list(self.pending.values()):
            if self.exists(p.waiting_for_table, (p.waiting_for_id,)):
                self._queue.add(p.id)
        self.resolve()

    def finish(self) -> IngestReport:
        for kind, outcome in self.outcomes.values():
            self.report.count(kind, outcome)
        return self.report


class _KnownKeys:
    """Which keys of one table exist, as far as this run has learnt (never a whole table).

    A key is known present or absent after :meth:`learn` (a batch's keys read in one
    statement) or after one lookup of its own; the run's own writes keep it current.
    """

    def __init__(self, lookup: Callable[[Any], bool]) -> None:
        self.present: set[Any] = set()
        self.covered: set[str] | None = set()  # first key values read: the rest is absent
        self.absent: set[Any] = set()
        self.lookup = lookup

    def learn(self, present: set[Any], covered: set[str] | None) -> None:
        """``present`` exist; any other key whose first value is in ``covered`` does not.

        ``covered=None``: ``present`` is every key of the table.
        """
        self.present |= present
        if covered is None:
            self.covered = None
        elif self.covered is not None:
            self.covered |= covered

    def __contains__(self, key: Any) -> bool:
        if key in self.present:
            return True
        first = key[0] if isinstance(key, tuple) else key
        if key in self.absent or self.covered is None or first in self.covered:
            return False
        found = self.lookup(key)
        (self.present if found else self.absent).add(key)
        return found

    def add(self, key: Any) -> None:
        self.present.add(key)
        self.absent.discard(key)

    def discard(self, key: Any) -> None:
        self.present.discard(key)
        self.absent.add(key)


class _Versions:
    """The stored snapshot instant of each object the run looks at, and the event that
    wrote it (a same-instant tie goes to the later arrival), read on demand."""

    def __init__(
        self, lookup: Callable[[tuple[str, str]], tuple[datetime, str | None] | None]
    ) -> None:
        self.known: dict[tuple[str, str], datetime] = {}
        self.events: dict[tuple[str, str], str | None] = {}
        self.stored: set[tuple[str, str]] = set()  # keys that have a row in ingest_versions
        self.absent: set[tuple[str, str]] = set()
        self.covered: set[str] = set()
        self.lookup = lookup

    def learn(
        self, found: dict[tuple[str, str], tuple[datetime, str | None]], covered: set[str]
    ) -> None:
        for k, (version, event_id) in found.items():
            if k not in self.known:
                self.known[k] = version
                self.events[k] = event_id
                self.stored.add(k)
        self.covered |= covered

    def _load(self, k: tuple[str, str]) -> None:
        if k in self.known or k in self.absent:
            return
        if k[1] in self.covered:
            self.absent.add(k)
            return
        found = self.lookup(k)
        if found is None:
            self.absent.add(k)
        else:
            self.known[k], self.events[k] = found
            self.stored.add(k)

    def __contains__(self, k: tuple[str, str]) -> bool:
        self._load(k)
        return k in self.known

    def __getitem__(self, k: tuple[str, str]) -> datetime:
        self._load(k)
        return self.known[k]

    def get(self, k: tuple[str, str], default: Any = None) -> Any:
        self._load(k)
        return self.known.get(k, default)

    def event_of(self, k: tuple[str, str]) -> str | None:
        """The event whose snapshot the stored version is (``None``: a plain object)."""
        self._load(k)
        return self.events.get(k)

    def __setitem__(self, k: tuple[str, str], v: datetime) -> None:
        self._load(k)
        self.known[k] = v
        self.absent.discard(k)


_UNSET: Any = object()
"""A step :meth:`_FileRun.prepare` did not run for a record (it runs at the record's turn)."""


@dataclass
class _Prepared:
    """What :meth:`_FileRun.prepare` made of one record before its turn: the guard's
    answer, the event's rows and the snapshot's rows (or the mapping error), each
    :data:`_UNSET` when not computed ahead."""

    refused: Any = _UNSET
    event: Any = _UNSET
    snapshot: Any = _UNSET


def _mapping(obj: Any) -> Any:
    """``from_stripe_object(obj)``, or the :class:`StripeObjectError` it raised."""
    try:
        return from_stripe_object(obj)
    except StripeObjectError as e:
        return e


def _mapped(obj: Any, ahead: Any) -> list[tuple[str, dict[str, Any]]]:
    """The rows of ``obj``: mapped ahead (its error raised again), else mapped now."""
    if ahead is _UNSET:
        return from_stripe_object(obj)
    if isinstance(ahead, StripeObjectError):
        raise ahead
    return ahead


def _row_keys(rows: Iterable[tuple[str, dict[str, Any]]], out: set[str]) -> None:
    """The ids ``rows`` name in a key or a reference: all a snapshot's apply looks up
    (rows, versions, parents). Measured: a shuffled replay parsed and walked each
    pending record again at every batch that named it, about a tenth of its time."""
    for table, row in rows:
        for column in _ID_COLUMNS[table]:
            v = row[column]
            if isinstance(v, str):
                out.add(v)


def _strings(value: Any, out: set[str]) -> None:
    """Every short string in a parsed record (the ids it can name), iteratively."""
    stack = [value]
    while stack:
        v = stack.pop()
        kind = type(v)  # parsed JSON: exact types (measured: isinstance was half the walk)
        if kind is str:
            if len(v) <= 255:
                out.add(v)
        elif kind is dict:
            stack.extend(v.values())
        elif kind is list:
            stack.extend(v)
        elif isinstance(v, str):
            if len(v) <= 255:
                out.add(v)
        elif isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)


_PREFETCHED = tuple(
    t.name for t in OLTP.tables
    if (t.stripe_object is not None and t.name != "events") or t.name in _OWNED_TABLES
)  # fmt: skip
"""Tables whose rows a batch reads ahead, by the keys its records name."""

_RULES = {t.name: rules_for(t.name) for t in OLTP.tables}
_RULE_COLUMNS = {r.name: r.columns() for r in CROSS_ROW_RULES}
_PENDING_COLUMNS = tuple(c.name for c in OLTP.table("ingest_pending").columns)
_PK = {t.name: t.primary_key for t in OLTP.tables}
_KEY_OF = {t.name: _key_getter(t.primary_key) for t in OLTP.tables}
_PARENTS = {
    t.name: tuple((fk.table, fk.columns[0]) for fk in t.all_foreign_keys if len(fk.columns) == 1)
    for t in OLTP.tables
}  # fmt: skip
"""Per table, ``(parent table, column)`` of its one-column foreign keys: an agreement key
(several columns) is covered by its first column's own key."""
_ID_COLUMNS = {
    t.name: tuple(dict.fromkeys([*t.primary_key, *(c for fk in t.all_foreign_keys for c in fk.columns)]))
    for t in OLTP.tables
}  # fmt: skip
_AGREE = {t.name: t.agreement_keys for t in OLTP.tables}


@dataclass
class _Snapshot:
    """The rows of one object as of one instant, and the event that carried it."""

    object_type: str
    object_id: str
    version: datetime
    event_id: str | None
    rows: list[tuple[str, dict[str, Any]]]

    @classmethod
    def plain(cls, value: Mapping[str, Any], rows: list[tuple[str, dict[str, Any]]]) -> _Snapshot:
        stamp = value.get("updated")
        if isinstance(stamp, bool) or not isinstance(stamp, int):
            stamp = value.get("created")
        version = _EPOCH
        if isinstance(stamp, int) and not isinstance(stamp, bool):
            try:
                version = datetime.fromtimestamp(stamp, UTC)
            except (OverflowError, OSError, ValueError):
                version = _EPOCH
        return cls(value["object"], value["id"], version, None, rows)


def quarantine_row(
    record: _Record, rule: str, error: str, now: datetime, object_type: str | None = None,
    object_id: str | None = None, event_id: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The ``ingest_quarantine`` row of a record seen for the first time (its id is the
    digest of the rule and the stored text: the same record refused again is counted in
    ``times_seen``)."""
    raw = _storable(guard.stored_raw(record))
    return {
        "id": hashlib.sha256(f"{rule}\x00{raw}".encode()).hexdigest()[:32],
        "rule": rule,
        "error": _storable(error)[:2000],
        "object_type": _short(object_type),
        "object_id": _short(object_id),
        "event_id": _short(event_id),
        "raw": raw,
        "source": _storable(record.source),
        "source_line": record.line,
        "first_seen_at": now,
        "last_seen_at": now,
        "times_seen": 1,
    }


def _short(v: Any) -> str | None:
    if not isinstance(v, str):
        return None
    return _storable(v)[:200]


def _obj_id(value: Any) -> str | None:
    return _short(value.get("id")) if isinstance(value, dict) else None


def _name(value: Mapping[str, Any]) -> str:
    return f"{_short(value.get('object')) or '?'} {_short(value.get('id')) or '?'}"


# --------------------------------------------------------------------------------------
# The entry points


def _batches(
    items: str | os.PathLike[str] | Iterable[Any], limits: guard.Limits
) -> Iterator[tuple[str, Callable[[], Iterator[_Record]]]]:
    """(source, a function giving its records) per file, then one batch for records in memory.

    The function reads the file again when called again (a replay after a refusal).
    """
    if isinstance(items, str | os.PathLike):
        items = [items]
    in_memory: list[_Record] = []
    for item in items:
        if isinstance(item, str | os.PathLike):
            yield os.fspath(item), lambda path=item: read_records(path, limits)
        else:
            in_memory.append(guard.record_in_memory(RECORDS_SOURCE, len(in_memory) + 1, item, limits))
    if in_memory:
        yield RECORDS_SOURCE, lambda: guard.unpack(iter(in_memory), limits)


class IngestInterrupted(OSError):
    """A file could not be read to its end: the files before it are committed, it is not.

    Attributes:
        source: the file that could not be read.
        report: the :class:`IngestReport` of the files committed before it.
    """

    def __init__(self, source: str, error: OSError, report: IngestReport) -> None:
        super().__init__(error.errno, f"{source}: {error.strerror or error}")
        self.source = source
        self.error = error
        self.report = report


def ingest(
    paths_or_records: str | os.PathLike[str] | Iterable[Any],
    engine: sa.Engine,
    *,
    progress: bool = False,
    strict: bool = False,
    limits: guard.Limits = guard.DEFAULT_LIMITS,
    set_based: bool | None = None,
) -> IngestReport:
    """Ingest Stripe objects and events into the OLTP database on ``engine``.

    Args:
        paths_or_records: a file path, or an iterable of file paths and/or records
            (dicts as Stripe returns them). In an iterable, a ``str`` or ``Path`` is a
            file name and anything else a record. Files are read and committed one by
            one; records passed in memory form one batch (one transaction) after them.
        engine: a DuckDB or PostgreSQL engine whose database has the schema (create it
            with :func:`ensure_schema`).
        progress: show a progress bar per file.
        strict: a broken invariant of the objects the run touched makes the exit code
            :data:`EXIT_QUARANTINED` (see :attr:`IngestReport.invariants`).
        limits: the bounds on records (:class:`paymodel.oltp.ingest_guard.Limits`).
        set_based: decide each file of events set-based where it can be
            (:mod:`paymodel.oltp.ingest_set`; the same outcome), else one record at a
            time. ``None``: :func:`default_set_based` (yes on both engines).

    Returns:
        The :class:`IngestReport` of the run.

    Raises:
        IngestInterrupted: a file cannot be read (not a regular file, an I/O error):
            nothing of that file is written, the files before it are committed (their
            counts are in the exception's ``report``), the files after it are not read.
    """
    report = IngestReport(strict=strict)
    now = datetime.now(UTC).replace(microsecond=0)
    for source, records in _batches(paths_or_records, limits):
        try:
            report.merge(_ingest_batch(engine, source, records, now, progress, limits,
                                       set_based=default_set_based(engine) if set_based is None
                                       else set_based))  # fmt: skip
        except OSError as e:
            raise IngestInterrupted(source, e, report) from e
    if report.touched:
        report.invariants = [r for r in check_invariants(engine, only=report.touched) if not r.ok]
    return report


def _ingest_batch(
    engine: sa.Engine,
    source: str,
    records: Callable[[], Iterator[_Record]],
    now: datetime,
    progress: bool,
    limits: guard.Limits = guard.DEFAULT_LIMITS,
    set_based: bool = True,
) -> IngestReport:
    """One file in one transaction, replayed with refused records quarantined if needed.

    A file of events is first decided set-based if ``set_based``
    (:func:`_ingest_set_based`); the rest of this function is the record-at-a-time path.

    Records are written in batches (one flush every :data:`FLUSH_EVERY` records). A
    flush the database refuses names no record, only its span of records: the file is
    rolled back and replayed with that span split (:func:`_narrow`), until the span is a
    few records, which are then replayed flushing after each write, and so name the
    refused record (or released pending record). The next replay quarantines it (rule
    ``database_constraint``). Every replay runs at batch speed up to the refusal.
    Attempts are bounded: each either commits, narrows a span, or names one more
    refused record (named once each).
    """
    if set_based:
        report = _ingest_set_based(engine, source, records, now, progress, limits)
        if report is not None:
            return report
    forced: dict[str, str] = {}
    plan = _FlushPlan()
    while True:
        try:
            with engine.begin() as conn:
                _lock_ingestion(conn)
                run = _FileRun(conn, now, forced, deferred=not plan.fine(-1), limits=limits)
                run.release_ready()
                run.deferred = True
                bar = tqdm(records(), desc=guard.printable(Path(source).name), unit="record",
                           disable=not progress, file=sys.stderr)  # fmt: skip
                stream, index = iter(bar), 0
                if plan.splits_at(0):
                    _flush(run, 0)
                while True:
                    with collector_paused():  # on again between chunks
                        chunk = list(itertools.islice(stream, max(FLUSH_EVERY, 1)))
                        if not chunk:
                            break
                        run.culprit = ""
                        run.prefetch(chunk)
                        for record in chunk:
                            run.deferred = not plan.fine(index)
                            _process(run, record, f"{index}:{record.line}")
                            run.deferred = True
                            index += 1
                            if index % FLUSH_EVERY == 0:
                                _flush(run, index)
                                run.forget(KEEP_RECENT)
                            elif plan.splits_at(index):
                                _flush(run, index)
                _flush(run, index)
                report = run.finish()
                report.sources.append(source)
                return report
        except _DatabaseRefused as refused:
            if refused.culprit:
                if refused.culprit in forced:
                    raise
                forced[refused.culprit] = (
                    f"database refused the record: {str(refused).split(': ', 1)[1]}"
                )
            elif refused.span is None or not plan.narrow(*refused.span):
                raise


class _RecordAtATime(Exception):
    """The set-based path left the file to the record-at-a-time path (the reason)."""


def default_set_based(engine: sa.Engine) -> bool:
    """Whether files of events are first tried set-based (:mod:`paymodel.oltp.ingest_set`).

    ``PAYMODEL_INGEST_SET=1`` or ``0`` decides (the benchmark and the tests run both paths
    on the same files that way; ``ingest(..., set_based=...)`` in code); unset, the
    engine's default (:attr:`paymodel.oltp.backend.Backend.set_based_ingest`: yes on
    both).
    """
    forced = os.environ.get("PAYMODEL_INGEST_SET")
    if forced in ("0", "1"):
        return forced == "1"
    return backend(engine).set_based_ingest


def _ingest_set_based(
    engine: sa.Engine,
    source: str,
    records: Callable[[], Iterator[_Record]],
    now: datetime,
    progress: bool,
    limits: guard.Limits,
) -> IngestReport | None:
    """The file decided set-based in one transaction, or ``None`` (nothing written) when
    it needs the record-at-a-time path (what it holds, or the database refused a write:
    that path then finds the record to quarantine)."""
    from paymodel.oltp.ingest_set import ingest_events

    bar = tqdm(desc=guard.printable(Path(source).name), unit="record", disable=not progress,
               file=sys.stderr)  # fmt: skip
    try:
        with bar, engine.begin() as conn:
            _lock_ingestion(conn)
            result = ingest_events(conn, source, records, now, limits, progress=bar.update)
            if result.reason is not None:  # roll back what was staged or written
                raise _RecordAtATime(result.reason)
    except _RecordAtATime as e:
        _log.info("%s: record at a time: %s", source, e)
        return None
    except sa.exc.DBAPIError as e:
        _log.info("%s: record at a time: the database refused a set-based write: %s", source, e)
        return None
    report = IngestReport()
    for kind, outcome, n in result.counts:
        report.count(kind, outcome, n)
    report.superseded = result.superseded
    report.released = result.released
    report.touched = result.touched
    report.sources.append(source)
    report.set_based.append(source)
    return report


def _flush(run: _FileRun, upto: int) -> None:
    """Flush what the records since the last flush wrote; a refusal carries their span."""
    run.culprit = ""
    try:
        run.flush()
    except _DatabaseRefused as refused:
        if not refused.culprit:
            refused.span = (run.since, upto)
        raise
    run.since = upto


@dataclass
class _FlushPlan:
    """Where a file's replay flushes besides every :data:`FLUSH_EVERY` records.

    Record ``-1`` stands for the release of records left pending by earlier runs (done
    before the file's first record). ``splits`` are record indexes before which a flush
    happens; ``fine`` are spans of records processed flushing after every write.
    """

    splits: set[int] = field(default_factory=set)
    fine_spans: list[tuple[int, int]] = field(default_factory=list)

    def splits_at(self, index: int) -> bool:
        return index in self.splits

    def fine(self, index: int) -> bool:
        return any(lo <= index < hi for lo, hi in self.fine_spans)

    def narrow(self, lo: int, hi: int) -> bool:
        """Plan the next replay after a refused flush of records ``[lo, hi)``.

        A span of more than :data:`FINE_SPAN` records is split in parts of √n records
        (the next replay finds the part); a shorter span is processed flushing after
        each write, which names the refused record. So a batch of :data:`FLUSH_EVERY`
        records is narrowed in two replays with about √n extra flushes each, where
        halving would replay the file log2 n times and flushing after every record
        made the whole replay run row by row. Returns ``False`` when the span was fine
        already (nothing left to narrow).
        """
        if self.fine(lo) and all(self.fine(i) for i in range(lo, hi)):
            return False
        if hi - lo <= FINE_SPAN:
            self.fine_spans.append((lo, hi))
            return True
        step = max(1, math.isqrt(hi - lo))
        self.splits.update(range(lo + step, hi, step))
        if lo == -1:  # the release of earlier pending records is a part of its own
            self.splits.add(0)
        return True


FINE_SPAN = 100
"""A refused span of at most this many records is replayed flushing after each write
(at least √:data:`FLUSH_EVERY`, so a refused batch is found in two replays)."""


FLUSH_EVERY = 5000
"""Records between two flushes of a file's transaction."""

KEEP_RECENT = 2 * FLUSH_EVERY
"""Rows touched within this many records stay in memory after a flush; older ones are
dropped. Dropping costs no read: each batch's prefetch reads the rows its records name
anyway (and keeps those already held), so this only bounds memory (it was 50,000, more
than a scale-0.1 account's whole event log: peak heap grew with the file)."""


_ADVISORY_LOCK = 0x7061796D6F64  # "paymod": one ingestion at a time per database


def _lock_ingestion(conn: sa.Connection) -> None:
    """Serialise ingestion runs on one database (until the file's transaction ends).

    Two ingesters reading the same events would both find an event new and one would be
    refused by the events table's key. PostgreSQL takes a transaction-level advisory
    lock; DuckDB needs nothing, since one process at a time may write a database file
    (:meth:`paymodel.oltp.backend.Backend.advisory_lock`).
    """
    backend(conn).advisory_lock(conn, _ADVISORY_LOCK)


def _process(run: _FileRun, record: _Record, culprit: str) -> None:
    """Process one record (a separate function so tests can inject a crash here)."""
    run.record(record, culprit)


def open_target(db: str) -> sa.Engine:
    """An engine for ``--db``: a PostgreSQL DSN, or a DuckDB file (created if missing).

    PostgreSQL is named by a URI (``postgresql://``, ``postgres://``) or a libpq keyword
    string (``host=/tmp/sock dbname=shop user=me``); anything else with ``://`` is refused,
    and anything else is a DuckDB file. The database gets the schema if it has none
    (:func:`ensure_schema`).

    Raises:
        ValueError: the target is unusable (a directory, a missing parent folder, a
            keyword DSN libpq refuses, another database's URL, a foreign table); the
            message shows the target with its password masked.
    """
    from paymodel.oltp.engines import duckdb_engine, is_keyword_dsn, postgres_engine, redact_dsn

    shown = guard.printable(redact_dsn(db))
    if db.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")) or is_keyword_dsn(
        db
    ):
        engine = postgres_engine(db)
    elif "://" in db:
        raise ValueError(f"--db {shown}: not a PostgreSQL URL (postgresql://...) nor a DuckDB file")
    else:
        path = Path(db)
        if path.is_dir():
            raise ValueError(f"--db {shown}: is a directory, not a DuckDB file")
        if not path.parent.is_dir():
            raise ValueError(
                f"--db {shown}: folder {guard.printable(path.parent)} does not exist"
            )
        engine = duckdb_engine(path)
    try:
        ensure_schema(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def main_ingest(
    files: Sequence[str],
    db: str,
    as_json: bool = False,
    max_record_bytes: int = guard.DEFAULT_LIMITS.max_record_bytes,
    strict: bool = False,
) -> int:
    """``paymodel ingest FILE... --db TARGET [--json]``: print the report, return the exit status.

    Prints the human summary, or one JSON object with ``--json``. Returns
    :data:`EXIT_OK` (0) when nothing was quarantined, :data:`EXIT_QUARANTINED` (3)
    when some record was (or, with ``strict``, an invariant of the objects the run
    touched is broken), :data:`EXIT_USAGE` (2) for a usage error.

    Every file is checked first (it exists, is a regular file and can be opened): if one
    is not, nothing is written. Then each file is its own transaction, committed in
    turn: a file that fails while being read (an I/O error) is not written, the files
    before it stay committed and their counts are printed, the files after it are not
    read, and the status is 2. What is printed never shows a password, and control
    characters in it are escaped.
    """
    from paymodel.oltp.engines import dsn_password, redact_dsn

    def mask(text: str) -> str:
        secret = dsn_password(db)
        text = redact_dsn(text)
        return guard.printable(text.replace(secret, "***") if secret else text)

    for f in files:
        try:
            guard.open_regular(f).close()
        except OSError as e:
            reason = e.strerror or str(e)
            print(f"paymodel ingest: cannot read {guard.printable(f)}: {reason}", file=sys.stderr)
            return EXIT_USAGE
    try:
        limits = guard.Limits(max_record_bytes=max_record_bytes)
        engine = open_target(db)
    except (ValueError, sa.exc.SQLAlchemyError, OSError) as e:
        message = mask(str(e).splitlines()[0] if str(e) else type(e).__name__)
        prefix = "" if message.startswith("--db ") else f"--db {mask(db)}: "
        print(f"paymodel ingest: {prefix}{message}", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = ingest(
            list(files), engine, progress=not as_json and sys.stderr.isatty(), limits=limits,
            strict=strict,
        )
    except IngestInterrupted as e:
        done = e.report
        print(json.dumps(done.as_dict(), sort_keys=True) if as_json else done.summary())
        print(
            f"paymodel ingest: {guard.printable(e.source)}: "
            f"{guard.printable(e.error.strerror or e.error)}; "
            f"stopped there: the {len(done.sources)} file(s) before it are committed (counts "
            "above), it and the files after it were not written",
            file=sys.stderr,
        )
        return EXIT_USAGE
    finally:
        engine.dispose()
    print(json.dumps(report.as_dict(), sort_keys=True) if as_json else report.summary())
    return report.exit_code
