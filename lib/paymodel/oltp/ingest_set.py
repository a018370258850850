"""Set-based ingestion of a file of Stripe events: decided in SQL over the staged file.

The record-at-a-time path (:class:`paymodel.oltp.ingest._FileRun`) decides each record
in arrival order. For a file of events that are each acceptable on their own (plain
JSON, passed by the input guard, mappable to rows) the outcome of that sequence follows
from a few facts about the whole file, which SQL computes in one statement each:

* **Duplicates**: an event whose id is stored already, or came earlier in the file.
* **When each snapshot is applied** (:meth:`_SetRun.apply_times`): on arrival if every
  parent its rows name is in the database, in the snapshot itself or written earlier;
  else right after the record that brings the last of them; never if one never comes
  (it waits in ``ingest_pending``). A fixed point, computed from "never" down by one
  ``UPDATE`` a round until no time moves (as many rounds as the longest chain of
  releases).
* **The newest snapshot wins, per object** (and per object nested in a snapshot: an
  invoice's lines, a subscription's items): the applied snapshot with the latest
  version, a tie going to the one applied last (a window function).
* **Writes**: new rows inserted, changed rows updated (only the changed columns, one
  statement per set of them), owned rows (an address, fee lines) the winning snapshot
  no longer has deleted; ``events``, ``ingest_versions`` and ``ingest_pending`` likewise.

Staged: one row per record (its event id, object, version and raw text), the rows each
snapshot maps to (one temporary table per OLTP table) and the parents those rows name
that neither the database nor the snapshot holds. Reads follow the staged keys. The
mapping of each record (parse, guard, rows) is :func:`paymodel.oltp.ingest_stage.map_records`,
run by worker processes on a big file; on DuckDB the snapshots of most object types are
flattened instead by SQL over the staged file (:meth:`_SetRun.flatten_in_engine`,
:mod:`paymodel.oltp.ingest_engine`); the model's check constraints are evaluated here,
in SQL over the staged rows (:meth:`_SetRun.check_constraints`).

**Quarantined here, as the record-at-a-time path quarantines them** (same rule, words and
``times_seen``): an event whose snapshot the mapping refuses, and one with a row that
breaks a check constraint. Their rows and events leave the file; later copies of their
event are decided again.

**Left to the record-at-a-time path** (:func:`ingest_events` gives the reason, and the
caller rolls back whatever was staged): a record that is not an event, that the input
guard refuses (card data, an invalid id, metadata over Stripe's limits, a future
version), a reference to reference data that does not exist, a row that could break a
cross-row rule or an agreement key against some version of its parent, records from
earlier runs that are not events, two snapshots of one object and version applied at
moments that do not settle which came last, a record that would wait only for parents
of rows whose object is newer elsewhere (that path may or may not have applied it,
depending on the order of arrival), and a quarantined event that comes again changed.

**One count follows a model** (:meth:`_SetRun.count_superseded`): ``superseded`` (an
applied event that changed nothing) depends on the order of releases, and records
released by one record's turn are released in rounds, each sorted by version, that a
release earlier in the same round can feed. Here a release comes :data:`_STEP` after
the release that brought its parent. The two paths can differ by a few on shuffled
files (2 of 116 in a test, 16 of 5,002 at scale 0.1 split in three runs); every other
count, every table and every pending record are the same (``tests/test_ingest_set.py``).
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import sqlglot
from sqlglot import expressions as exp

from paymodel.model.core import BIGINT, TEXT
from paymodel.model.oltp import OLTP
from paymodel.model.rules import rules_for
from paymodel.model.sql import check_sql
from paymodel.model.stripe import OWNED_ROWS, TABLE_OBJECTS
from paymodel.oltp import ingest_guard as guard
from paymodel.oltp import ingest_stage as stage
from paymodel.oltp.backend import backend
from paymodel.oltp.ingest_engine import engine_mapping

__all__ = ["SetResult", "ingest_events"]

_PK = stage.PK
_ORDER = {name: i for i, name in enumerate(OLTP.table_names)}
_PARENTS = stage.PARENTS
_REFERENCE_TABLES = stage.REFERENCE_TABLES
_GUARDED = {t.name for t in OLTP.tables if rules_for(t.name) or t.agreement_keys}
"""Tables with a cross-row rule or an agreement key: a file whose rows of these could
break one against a version of their parent is left to the record-at-a-time path."""

_REC = "paymodel_set_records"
_REF = "paymodel_set_refs"
_GRP = "paymodel_set_groups"
_ALIVE = "paymodel_set_applied"
_OUTDATED = "paymodel_set_outdated"
_TIME = "paymodel_set_time"
_WIN = "paymodel_set_winners"
_STALE = "paymodel_set_stale"
_PREV = "paymodel_set_previous"
_WRT = "paymodel_set_writers"
_FLUSH_BYTES = 1 << 20
"""Staged rows are written once a table's held chunks reach this size (:meth:`_SetRun.hold`)."""
_STEP = 0.001
"""How much later than the record that brings its parent a waiting record is applied:
a chain of releases stays shorter than one record (chains are a few links long)."""
_LIVE, _DUPLICATE, _QUARANTINED = 0, 1, 2
"""``dup`` of a staged record: decided with the file, a duplicate, quarantined."""


@dataclass
class SetResult:
    """What the set-based path decided for one file."""

    counts: list[tuple[str, str, int]]
    """``(object type, outcome, records)`` for outcomes applied, duplicate, pending."""
    superseded: int
    touched: set[str]
    reason: str | None = None
    released: int = 0
    """Records left pending by earlier runs and applied by this one."""


class _NotSetBased(Exception):
    """The file needs the record-at-a-time path (the reason is the message)."""


def ingest_events(
    conn: sa.Connection,
    source: str,
    records: Callable[[], Iterator[guard.Record]],
    now: datetime,
    limits: guard.Limits,
    progress: Callable[[int], None] = lambda n: None,
) -> SetResult:
    """Decide and write one file of events set-based, inside the caller's transaction.

    ``records()`` gives the file's records (a big JSON Lines file is read and mapped by
    worker processes instead: :func:`paymodel.oltp.ingest_stage.mapped_chunks`);
    ``progress(n)`` is called as records are staged.

    Returns a :class:`SetResult`; when the file needs the record-at-a-time path its
    ``reason`` says why, and the caller must roll the transaction back (events are
    recorded while the file is staged).
    """
    run = _SetRun(conn, source, now, limits)
    try:
        run.stage(stage.mapped_chunks(source, records, now, limits, progress, run.engine))
        run.decide()
        return run.write()
    except _NotSetBased as e:
        return SetResult([], 0, set(), reason=str(e))
    finally:
        run.drop()


class _SetRun:
    def __init__(self, conn: sa.Connection, source: str, now: datetime, limits: guard.Limits):
        self.conn = conn
        self.source = source
        self.now = now
        self.limits = limits
        self.backend = backend(conn)
        self.q = conn.dialect.identifier_preparer.quote
        self.staged: set[str] = set()  # OLTP tables with staged rows
        self.created: list[str] = []
        self.types: dict[str, dict[str, Any]] = {}  # staged table -> column -> model type
        self.seen_events: set[str] = set()
        self.quarantined: dict[int, stage.Problem] = {}  # ord -> why
        self.reference: dict[str, set[str]] = {}
        self.held: dict[tuple[bool, str], list[Any]] = {}  # see hold()
        self.held_bytes: dict[tuple[bool, str], int] = {}
        forced = os.environ.get("PAYMODEL_INGEST_ENGINE")
        self.engine = self.backend.flattens_json and forced != "0"

    # -- helpers ----------------------------------------------------------------------
    def sql(self, text: str, params: dict[str, Any] | None = None) -> sa.CursorResult:
        return self.conn.execute(sa.text(text), params or {})

    def stage_table(self, name: str, like: str | None, extra: dict[str, Any]) -> None:
        if name in self.created:
            return
        self.backend.create_stage(self.conn, name, like, extra)
        self.created.append(name)
        like_types = {} if like is None else {c.name: c.type for c in OLTP.table(like).columns}
        self.types[name] = {**extra, **like_types}

    def made(self, name: str) -> None:
        """A temporary table just created from a query: dropped at the end, and its
        statistics gathered where the engine plans by them (PostgreSQL: a tie check
        joined to a table it took for empty ran for minutes)."""
        self.created.append(name)
        self.backend.analyze(self.conn, [name])

    def drop(self) -> None:
        try:
            for name in reversed(self.created):
                self.sql(f"DROP TABLE IF EXISTS {name}")
        except sa.exc.DBAPIError:  # the transaction failed: its rollback drops them
            pass
        self.created = []

    def rows_table(self, table: str) -> str:
        return f"paymodel_set_t_{table}"

    def reference_keys(self, table: str) -> set[str]:
        keys = self.reference.get(table)
        if keys is None:
            pk = self.q(_PK[table][0])
            keys = self.reference[table] = {
                str(r[0]) for r in self.sql(f"SELECT {pk} FROM {self.q(table)}")
            }
        return keys

    # -- staging ----------------------------------------------------------------------
    def stage(self, chunks: Iterator[stage.MappedChunk]) -> None:
        self.stage_table(_REC, None, {**stage.REC_TYPES, "dup": BIGINT})
        self.stage_table(_REF, None, stage.REF_TYPES)
        self.stage_waiting()
        for chunk in chunks:
            self.stage_chunk(chunk)
        for key in list(self.held):
            self.flush(key)
        if self.engine:
            self.flatten_in_engine()
            for key in list(self.held):
                self.flush(key)

    def flatten_in_engine(self) -> None:
        """The snapshots the workers left to the engine (``engine = 1``), flattened by
        SQL over the whole file (:mod:`paymodel.oltp.ingest_engine`), duplicates left
        out; their references staged as the mapping in Python stages them. A record the
        SQL cannot flatten exactly is mapped in Python here; one Python refuses is
        quarantined, with the copies of its event (:meth:`quarantine`)."""
        kinds = [r[0] for r in self.sql(
            f"SELECT DISTINCT kind FROM {_REC} WHERE engine = 1 AND dup = {_LIVE} ORDER BY kind")]  # fmt: skip
        left: list[int] = []
        for kind in kinds:
            m = engine_mapping(kind, _REC, self.rows_table)
            for table in m.tables:
                self.stage_table(self.rows_table(table), table, stage.ROW_EXTRA)
                self.staged.add(table)
            try:
                for statement in m.statements:
                    self.sql(statement)
                left += [r[0] for r in self.sql(f"SELECT ord FROM {m.checked} WHERE ok IS NOT TRUE")]
                self.stage_references(m.tables, f"(SELECT ord FROM {m.checked} WHERE ok)")
            finally:
                for name in m.temporary:
                    self.sql(f"DROP TABLE IF EXISTS {name}")
        if left:
            self.map_left(sorted(left))

    def stage_references(self, tables: tuple[str, ...], done: str) -> None:
        """The parents named by the rows the engine flattened (records ``done``, SQL), as
        :func:`paymodel.oltp.ingest_stage.map_records` stages them: a parent in reference
        data must exist (else the file needs the record-at-a-time path); any other is
        staged unless the same snapshot holds it."""
        q = self.q
        for table in tables:
            rows = self.rows_table(table)
            for k, (parent, column) in enumerate(_PARENTS[table]):
                col = q(column)
                if parent in _REFERENCE_TABLES:
                    pk = q(_PK[parent][0])
                    bad = self.sql(
                        f"SELECT r.line, CAST(s.{col} AS TEXT) FROM {rows} AS s JOIN {_REC} AS r "
                        f"ON r.ord = s.ord WHERE s.ord IN {done} AND s.{col} IS NOT NULL AND "
                        f"NOT EXISTS (SELECT 1 FROM {q(parent)} AS p WHERE CAST(p.{pk} AS TEXT) "
                        f"= CAST(s.{col} AS TEXT)) "
                        "ORDER BY r.ord LIMIT 1").first()  # fmt: skip
                    if bad is not None:
                        raise _NotSetBased(f"line {bad[0]}: {parent} has no {bad[1]}")
                    continue
                present = ""
                if parent in tables:
                    ppk = q(_PK[parent][0])
                    present = (f" AND NOT EXISTS (SELECT 1 FROM {self.rows_table(parent)} AS p "
                               f"WHERE p.ord = s.ord AND CAST(p.{ppk} AS TEXT) = CAST(s.{col} AS TEXT))")  # fmt: skip
                self.sql(
                    f"INSERT INTO {_REF} (ord, pos, k, gtype, gid, ptable, pid) SELECT s.ord, "
                    f"s.pos, {k}, s.gtype, s.gid, '{parent}', CAST(s.{col} AS TEXT) FROM {rows} AS s "
                    f"WHERE s.ord IN {done} AND s.{col} IS NOT NULL{present}")  # fmt: skip

    def map_left(self, ords: list[int], events: bool = False) -> None:
        """Records the engine left to Python, mapped here one by one (rare: a value of a
        type the column does not take, an expanded object where an id is expected)."""
        with self.backend.key_table(self.conn, [str(o) for o in ords]) as keys:
            found = self.sql(f"SELECT ord, line, event_id, raw FROM {_REC} WHERE CAST(ord AS TEXT) "
                             f"IN (SELECT id FROM {keys.name}) ORDER BY ord").all()  # fmt: skip
        for n, line, event_id, raw in found:
            value = guard.parse(raw)
            record = guard.Record(self.source, line, raw, value, parsed=True, checked=True)
            chunk = stage.map_records([record], n, self.now, self.limits)
            if chunk.fatal is not None:
                raise _NotSetBased(chunk.fatal)
            if n in chunk.problems:  # quarantined as stage_chunk quarantines a refused mapping
                self.quarantine(n, line, event_id, raw, chunk.problems[n], revive=True)
                continue
            if events:  # a copy decided again: its event was counted a duplicate
                self.hold("events", chunk.events, oltp=True)
            for parent, key in chunk.reference:
                if key not in self.reference_keys(parent):
                    raise _NotSetBased(f"line {line}: {parent} has no {key}")
            self.stage_rows_of(chunk, None)

    def hold(self, name: str, rows: Any, *, oltp: bool = False) -> None:
        """Append Arrow table ``rows`` to staged table ``name`` (``oltp``: to OLTP table
        ``name``) soon: chunks are held until they make :data:`_FLUSH_BYTES`, because an
        INSERT costs 2-4 ms whatever its size (measured on DuckDB, 100 rows of 10
        columns), and a small chunk of each of 20 tables per 2,500 records spent 3 s of
        a 15 s replay on that alone. Nothing reads a staged table before the file is
        staged, and a duplicate within the file is found by ``seen_events``, not in
        ``events``."""
        key = (oltp, name)
        self.held.setdefault(key, []).append(rows)
        self.held_bytes[key] = self.held_bytes.get(key, 0) + rows.nbytes
        if self.held_bytes[key] >= _FLUSH_BYTES:
            self.flush(key)

    def flush(self, key: tuple[bool, str]) -> None:
        import pyarrow as pa

        held = self.held.pop(key, [])
        self.held_bytes.pop(key, None)
        if not held:
            return
        oltp, name = key
        rows = held[0] if len(held) == 1 else pa.concat_tables(held)
        del held
        if oltp:
            self.backend.insert_rows(self.conn, name, rows)
        else:
            self.backend.stage_rows(self.conn, name, self.types[name], rows)

    def stage_waiting(self) -> None:
        """Records left in ``ingest_pending`` by earlier runs take part as snapshots
        that arrived before the file, in the order the record-at-a-time path releases
        them (version, then id). They passed the guard when they were read, and their
        events are stored already."""
        waiting = self.sql(
            "SELECT id, event_id, raw, source, source_line FROM ingest_pending "
            "ORDER BY version, id"
        ).all()  # fmt: skip
        if not waiting:
            return
        if any(event_id is None for _, event_id, *_ in waiting):
            raise _NotSetBased("a plain object waits in ingest_pending")
        records = []
        for _, _, raw, source, line in waiting:
            value = guard.parse(raw)
            records.append(guard.Record(source, line, raw, value, parsed=True, checked=True))
        self.stage_chunk(stage.map_records(records, -len(records), self.now, self.limits,
                                           [w[0] for w in waiting]))  # fmt: skip

    def stage_chunk(self, chunk: stage.MappedChunk) -> None:
        """Stage one mapped chunk: its duplicates decided (an event id stored, or seen
        earlier in the file), then the rows of the others."""
        import pyarrow as pa

        if chunk.fatal is not None:
            raise _NotSetBased(chunk.fatal)
        recs = chunk.recs
        ids = recs.column("event_id").to_pylist()
        waiting = recs.column("pending_id").is_valid().to_pylist()
        stored: set[str] = set()
        if not all(waiting):  # event ids already stored: their snapshots need no mapping
            with self.backend.key_table(self.conn, sorted(set(ids))) as keys:
                found = self.conn.execute(sa.text(
                    f"SELECT id FROM events WHERE id IN (SELECT id FROM {keys.name})"))  # fmt: skip
                stored = {r[0] for r in found}
        ords = recs.column("ord").to_pylist()
        dups: list[int] = []  # _LIVE, _DUPLICATE or _QUARANTINED
        for n, event_id, is_waiting in zip(ords, ids, waiting, strict=True):
            if not is_waiting and (event_id in stored or event_id in self.seen_events):
                dups.append(_DUPLICATE)
            elif n in chunk.problems:
                if is_waiting:  # it was mapped when first read
                    raise _NotSetBased(f"record {n}: a waiting record no longer maps")
                # not recorded as seen: a later copy is decided again (a corrected one applies)
                dups.append(_QUARANTINED)
                self.quarantined[n] = chunk.problems[n]
            else:
                dups.append(_LIVE)
                self.seen_events.add(event_id)
        dup_ords = pa.array([n for n, d in zip(ords, dups, strict=True) if d], pa.int64())
        lines = dict(zip(ords, recs.column("line").to_pylist(), strict=True))
        dropped = set(dup_ords.to_pylist())
        for (parent, key), naming in chunk.reference.items():
            if key not in self.reference_keys(parent):
                live = [n for n in naming if n not in dropped]
                if live:
                    raise _NotSetBased(f"line {lines[live[0]]}: {parent} has no {key}")

        recs = recs.append_column("dup", pa.array(dups, pa.int64()))
        self.hold(_REC, recs)
        if chunk.events.num_rows:  # recorded whatever becomes of them (a fallback rolls back)
            events = chunk.events.filter(pa.array([d == _LIVE for d in dups]))
            self.hold("events", events, oltp=True)
        self.stage_rows_of(chunk, dup_ords if len(dup_ords) else None)

    def stage_rows_of(self, chunk: stage.MappedChunk, dropped: Any) -> None:
        """Stage a mapped chunk's rows and references, but those of records ``dropped``
        (an Arrow array of ordinals, or ``None``)."""
        import pyarrow.compute as pc

        def kept(table: Any) -> Any:
            if dropped is None:
                return table
            return table.filter(pc.invert(pc.is_in(table.column("ord"), value_set=dropped)))

        refs = kept(chunk.refs)
        if refs.num_rows:
            self.hold(_REF, refs)
        for table, rows in chunk.rows.items():
            rows = kept(rows)
            if not rows.num_rows:
                continue
            name = self.rows_table(table)
            self.stage_table(name, table, stage.ROW_EXTRA)
            self.staged.add(table)
            self.hold(name, rows)

    # -- deciding ---------------------------------------------------------------------
    def decide(self) -> None:
        q = self.q
        self.backend.analyze(self.conn, self.created)
        self.check_constraints()
        if self.staged & _GUARDED:
            self.check_rules()
        groups = " UNION ".join(
            f"SELECT DISTINCT ord, gtype, gid FROM {self.rows_table(t)}" for t in sorted(self.staged)
        ) or f"SELECT ord, object_type AS gtype, object_id AS gid FROM {_REC} WHERE 1 = 0"
        # Every (snapshot, object) pair, with its version and the stored version.
        self.sql(f"CREATE TEMPORARY TABLE {_GRP} AS SELECT g.ord, g.gtype, g.gid, r.version, "
                 f"v.version AS stored FROM ({groups}) AS g JOIN {_REC} AS r ON r.ord = g.ord "
                 "LEFT JOIN ingest_versions AS v ON v.object_type = g.gtype "
                 "AND v.object_id = g.gid")  # fmt: skip
        self.made(_GRP)
        # Parents the database holds need nothing from the file.
        for parent in sorted({r[0] for r in self.sql(f"SELECT DISTINCT ptable FROM {_REF}")}):
            pk = q(_PK[parent][0])
            self.sql(f"DELETE FROM {_REF} WHERE ptable = :p AND pid IN "
                     f"(SELECT CAST({pk} AS TEXT) FROM {q(parent)})", {"p": parent})  # fmt: skip
        writers = " UNION ALL ".join(
            f"SELECT '{t}' AS ptable, CAST({q(_PK[t][0])} AS TEXT) AS pid, ord "
            f"FROM {self.rows_table(t)}"
            for t in sorted(self.staged) if len(_PK[t]) == 1
        ) or f"SELECT ptable, pid, ord FROM {_REF} WHERE 1 = 0"  # fmt: skip
        # Only the writers of a parent some row names matter from here on: made once, not
        # a union over every staged table in each round of apply_times and in the reads
        # that follow (a scale-1 replay on PostgreSQL: its 8 rounds took 16.7 s over the
        # union, 9.8 s over this table, made in 0.7 s; DuckDB's took 1.6 s either way).
        # A semi-naive version, each round recomputing only the records that name a
        # parent whose writer moved in the round before, was slower on both (12 s and
        # 2.6 s): the early rounds move most records, and it pays for finding them.
        self.sql(f"CREATE TEMPORARY TABLE {_WRT} AS SELECT w.ptable, w.pid, w.ord FROM "
                 f"({writers}) AS w JOIN (SELECT DISTINCT ptable, pid FROM {_REF}) AS k "
                 "ON k.ptable = w.ptable AND k.pid = w.pid")  # fmt: skip
        self.made(_WRT)
        self.apply_times()
        self.woken_stale()
        self.sql(f"CREATE TEMPORARY TABLE {_ALIVE} AS SELECT ord FROM {_TIME} WHERE t IS NOT NULL")
        self.made(_ALIVE)
        self.make_outdated()
        # A record left waiting here must lack a parent of a row still to be written (its
        # object newer nowhere). If it lacks only parents of rows whose object is newer
        # elsewhere, the record-at-a-time path may have applied it (it looks at the rows
        # still to be written when it tries), depending on arrival order: that path decides.
        doubt = self.sql(
            f"SELECT c.ord FROM {_REC} AS c WHERE c.dup = 0 AND {_not_alive('c')} "
            f"AND NOT EXISTS (SELECT 1 FROM {_REF} AS r "
            f"WHERE r.ord = c.ord AND {self.fresh('r')} AND NOT EXISTS "
            f"(SELECT 1 FROM {_WRT} AS w JOIN {_ALIVE} AS b ON b.ord = w.ord "
            "WHERE w.ptable = r.ptable AND w.pid = r.pid)) LIMIT 1"
        ).first()  # fmt: skip
        if doubt is not None:
            raise _NotSetBased(f"record {doubt[0]}: lacks only parents of rows newer elsewhere")
        self.winners()
        self.superseded = self.count_superseded()

    def count_superseded(self) -> int:
        """Applied events that changed nothing, as the record-at-a-time path counts them:
        none of their objects was still to be written when they were applied (a newer
        version was applied before, or stored), or some were not and their rows equal
        what was there (the snapshot of that object applied just before, else the
        database's row, read before the writes)."""
        q = self.q
        self.sql(
            f"CREATE TEMPORARY TABLE {_STALE} AS SELECT g.ord, g.gtype, g.gid, g.version, t.t, "
            "CASE WHEN g.stored > g.version OR MAX(g.version) OVER (PARTITION BY g.gtype, g.gid "
            "ORDER BY t.t, g.version ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) "
            "> g.version THEN 1 ELSE 0 END AS stale FROM "
            f"{_GRP} AS g JOIN {_TIME} AS t ON t.ord = g.ord WHERE t.t IS NOT NULL"
        )  # fmt: skip
        self.made(_STALE)
        whole = {r[0] for r in self.sql(f"SELECT ord FROM {_STALE} GROUP BY ord "
                                        "HAVING MIN(stale) = 1")}  # fmt: skip
        self.superseded_ords = whole
        # Partly stale: the fresh objects' rows against the state before them (rare).
        partly = self.sql(
            f"SELECT s.ord, s.gtype, s.gid, s.version, s.t FROM {_STALE} AS s WHERE s.stale = 0 "
            f"AND s.ord IN (SELECT ord FROM {_STALE} GROUP BY ord HAVING MAX(stale) = 1)"
        ).all()  # fmt: skip
        if not partly:
            return len(whole)
        keys = {(g, i) for _, g, i, _, _ in partly}
        history: dict[tuple[str, str], list[tuple[Any, float, int]]] = defaultdict(list)
        for o, g, i, v, t in self.sql(f"SELECT ord, gtype, gid, version, t FROM {_STALE}").all():
            if (g, i) in keys:
                history[(g, i)].append((v, t, o))
        prev = []
        for o, g, i, v, t in partly:
            before = [(hv, ht, ho) for hv, ht, ho in history[(g, i)] if (ht, hv) < (t, v)]
            prev.append({"ord": o, "gtype": g, "gid": i,
                         "prev": max(before)[2] if before else None})  # fmt: skip
        self.stage_table(_PREV, None, {"ord": BIGINT, "gtype": TEXT, "gid": TEXT, "prev": BIGINT})
        self.backend.stage_rows(self.conn, _PREV, self.types[_PREV], prev)
        changed: set[int] = set()
        for table in sorted(self.staged):
            cols = list(OLTP.table(table).column_names)
            pk = _PK[table]
            rows = self.rows_table(table)
            same = " AND ".join(f"o.{q(c)} IS NOT DISTINCT FROM r.{q(c)}" for c in cols)
            keyed = " AND ".join(f"o.{q(c)} = r.{q(c)}" for c in pk)
            # a row that is new, or differs from the state before it
            # (two anti-joins on the key, not a NOT EXISTS under an OR, which PostgreSQL
            # runs again for every row: see _not_alive)
            pairs = (f"FROM {rows} AS r JOIN {_PREV} AS p ON p.ord = r.ord AND "
                     "p.gtype = r.gtype AND p.gid = r.gid")  # fmt: skip
            found = self.sql(
                f"SELECT r.ord {pairs} WHERE p.prev IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "
                f"{rows} AS o WHERE o.ord = p.prev AND {keyed} AND {same}) "
                f"UNION SELECT r.ord {pairs} WHERE p.prev IS NULL AND NOT EXISTS "
                f"(SELECT 1 FROM {q(table)} AS o WHERE {keyed} AND {same})"
            ).all()  # fmt: skip
            changed |= {r[0] for r in found}
            if table in OWNED_ROWS:  # an owned row the snapshot no longer has
                _, owner, _ = OWNED_ROWS[table]
                gone = self.sql(
                    f"SELECT DISTINCT p.ord FROM {_PREV} AS p JOIN (SELECT o.ord AS prev, "
                    f"CAST(o.{q(owner)} AS TEXT) AS gid, {', '.join(f'o.{q(c)}' for c in pk)} "
                    f"FROM {rows} AS o) AS r ON r.prev = p.prev AND r.gid = p.gid "
                    f"WHERE NOT EXISTS (SELECT 1 FROM {rows} AS o WHERE o.ord = p.ord AND {keyed}) "
                    f"UNION SELECT DISTINCT p.ord FROM {_PREV} AS p JOIN {q(table)} AS r "
                    f"ON p.prev IS NULL AND CAST(r.{q(owner)} AS TEXT) = p.gid WHERE NOT EXISTS "
                    f"(SELECT 1 FROM {rows} AS o WHERE o.ord = p.ord AND {keyed})"
                ).all()  # fmt: skip
                changed |= {r[0] for r in gone}
        self.superseded_ords = whole | ({o for o, *_ in partly} - changed)
        return len(self.superseded_ords)

    def make_outdated(self) -> None:
        """The groups (ord, gtype, gid) that would not be written: an applied snapshot
        or the stored version of their object is newer (once the applied records are
        known)."""
        self.sql(
            f"CREATE TEMPORARY TABLE {_OUTDATED} AS SELECT g.ord, g.gtype, g.gid FROM {_GRP} "
            f"AS g JOIN {_GRP} AS h ON h.gtype = g.gtype AND h.gid = g.gid JOIN {_ALIVE} AS c "
            "ON c.ord = h.ord WHERE h.version > g.version UNION "
            f"SELECT ord, gtype, gid FROM {_GRP} WHERE stored > version"
        )  # fmt: skip
        self.made(_OUTDATED)

    def fresh(self, alias: str) -> str:
        """SQL: the group of ``alias`` (ord, gtype, gid) would still be written (an
        anti-join in a ``WHERE``; :meth:`write_pending` joins :data:`_OUTDATED` instead)."""
        return (
            f"NOT EXISTS (SELECT 1 FROM {_OUTDATED} AS o WHERE o.ord = {alias}.ord "
            f"AND o.gtype = {alias}.gtype AND o.gid = {alias}.gid)"
        )

    def apply_times(self) -> None:
        """When each snapshot is applied, as the record-at-a-time path would: on arrival
        if the database, the snapshot itself or an earlier snapshot holds every parent it
        names, else right after the record that brings the last of them (:data:`_STEP`
        later per link of a chain of releases, so a chain ends before the next record);
        never (NULL: it waits in ``ingest_pending``) if one never comes.

        Computed from "never" down, one statement a round, until no time moves (as many
        rounds as the longest chain): a snapshot gets a time once every parent it names
        has a writer with a time. Parents of rows whose object is newer by then count
        too, which that path skips: such a snapshot is released here at a newer
        snapshot of its object if that makes every row of it stale
        (:meth:`woken_stale`), and a file where it would matter otherwise is left to
        that path (:meth:`decide`).
        """
        self.sql(f"CREATE TEMPORARY TABLE {_TIME} AS SELECT c.ord, CASE WHEN f.ord IS NULL "
                 f"THEN CAST(c.ord AS DOUBLE PRECISION) END AS t FROM {_REC} AS c LEFT JOIN "
                 f"(SELECT DISTINCT ord FROM {_REF}) AS f ON f.ord = c.ord "
                 "WHERE c.dup = 0")  # fmt: skip
        self.made(_TIME)
        for _ in range(10_000):
            moved = self.sql(
                f"UPDATE {_TIME} SET t = x.t FROM (SELECT r.ord, GREATEST(CAST(r.ord AS DOUBLE "
                f"PRECISION), MAX(m.t) + {_STEP}) AS t FROM {_REF} AS r LEFT JOIN "
                f"(SELECT w.ptable, w.pid, MIN(tw.t) AS t FROM {_WRT} AS w JOIN {_TIME} "
                "AS tw ON tw.ord = w.ord WHERE tw.t IS NOT NULL GROUP BY w.ptable, w.pid) AS m "
                "ON m.ptable = r.ptable AND m.pid = r.pid GROUP BY r.ord "
                "HAVING COUNT(m.t) = COUNT(*)) AS x "
                f"WHERE {_TIME}.ord = x.ord AND ({_TIME}.t IS NULL OR x.t < {_TIME}.t) "
                f"RETURNING {_TIME}.ord"  # DuckDB's cursor gives no rowcount: count them
            ).first()  # fmt: skip
            if moved is None:
                return
        raise _NotSetBased("the order of releases does not settle")  # pragma: no cover

    def woken_stale(self) -> None:
        """A snapshot every object of which has a newer version applied, on its arrival
        or when a newer snapshot of its object is applied (the record-at-a-time path
        tries a waiting snapshot again then), is applied as superseded: it writes
        nothing, so its parents do not matter."""
        # "every object of the snapshot has a newer version applied before x.t" as joins
        # and a count, not as a NOT EXISTS within a NOT EXISTS, which PostgreSQL runs
        # again for every candidate (see _not_alive)
        for _ in range(100):
            woken = self.sql(
                f"UPDATE {_TIME} SET t = z.t FROM (SELECT ord, t FROM (SELECT x.ord, x.t, "
                "CASE WHEN g.ord IS NULL OR MAX(n.t) IS NOT NULL THEN 1 ELSE 0 END AS covered "
                "FROM (SELECT c.ord, GREATEST(CAST(c.ord AS DOUBLE "
                f"PRECISION), MIN(tw.t) + {_STEP}) AS t "
                f"FROM {_REC} AS c JOIN {_TIME} AS tc ON tc.ord = c.ord JOIN {_GRP} AS h "
                "ON h.gtype = c.object_type AND h.gid = c.object_id AND h.version >= c.version "
                f"AND h.ord <> c.ord JOIN {_TIME} AS tw ON tw.ord = h.ord WHERE tc.t IS NULL "
                "AND tw.t IS NOT NULL GROUP BY c.ord) AS x "
                f"LEFT JOIN {_GRP} AS g ON g.ord = x.ord LEFT JOIN (SELECT n.gtype, n.gid, "
                f"n.version, tn.t FROM {_GRP} AS n JOIN {_TIME} AS tn ON tn.ord = n.ord "
                "WHERE tn.t IS NOT NULL) AS n ON n.gtype = g.gtype AND n.gid = g.gid "
                "AND n.version > g.version AND n.t < x.t "
                "GROUP BY x.ord, x.t, g.ord, g.gtype, g.gid) AS y "
                "GROUP BY ord, t HAVING MIN(covered) = 1) AS z "
                f"WHERE {_TIME}.ord = z.ord AND {_TIME}.t IS NULL RETURNING {_TIME}.ord"
            ).first()  # fmt: skip
            if woken is None:
                return

    def winners(self) -> None:
        """The snapshot each object ends as: latest version, then latest applied."""
        self.sql(
            f"CREATE TEMPORARY TABLE {_WIN} AS SELECT gtype, gid, ord, version, t, event_id FROM "
            f"(SELECT g.gtype, g.gid, g.ord, g.version, g.stored, t.t, r.event_id, "
            "ROW_NUMBER() OVER (PARTITION BY g.gtype, g.gid ORDER BY g.version DESC, t.t DESC) "
            "AS n "
            f"FROM {_GRP} AS g JOIN {_TIME} AS t ON t.ord = g.ord JOIN {_REC} AS r "
            "ON r.ord = g.ord WHERE t.t IS NOT NULL) AS x WHERE n = 1 AND (stored IS NULL OR version >= stored)"
        )  # fmt: skip
        self.made(_WIN)
        # Two applied snapshots of one object and version: the later applied wins, which
        # is exact when neither waited (arrival order) and guessed otherwise.
        tie = self.sql(
            f"SELECT g.gtype, g.gid FROM {_GRP} AS g JOIN {_TIME} AS t ON t.ord = g.ord "
            f"JOIN {_WIN} AS w ON w.gtype = g.gtype AND w.gid = g.gid AND w.version = g.version "
            "AND w.ord <> g.ord WHERE t.t IS NOT NULL AND (t.t <> g.ord OR w.t <> w.ord) "
            "LIMIT 1"
        ).first()  # fmt: skip
        if tie is not None:
            raise _NotSetBased(f"{tie[0]} {tie[1]}: two snapshots of one version applied together")

    def check_constraints(self) -> None:
        """Every check constraint of the model, over every staged row, one statement a
        table (the mapping left them out: :func:`paymodel.model.stripe.row_problems` in
        Python was a sixth of the mapping).

        A record with a row that breaks one is quarantined as the record-at-a-time path
        quarantines it: its snapshot mapped again with the checks, for the same words
        (the check's description and name). Its rows and its event are taken out of the
        file, and so are later copies of its event that were counted as duplicates: that
        path decides them again (the same text is quarantined again; another falls back).
        """
        bad: set[int] = set()
        for table in sorted(self.staged):
            checks = OLTP.table(table).all_checks
            if not checks:
                continue
            tests = " OR ".join(f"NOT COALESCE(({check_sql(ck.sql, self.backend.name)}), TRUE)"
                                for ck in checks)  # fmt: skip
            bad |= {r[0] for r in self.sql(f"SELECT DISTINCT ord FROM {self.rows_table(table)} "
                                           f"WHERE {tests}")}  # fmt: skip
        for n in sorted(bad):
            line, event_id, raw, waiting = self.sql(
                f"SELECT line, event_id, raw, pending_id FROM {_REC} WHERE ord = :o", {"o": n}
            ).one()  # fmt: skip
            problem = None if waiting else stage.snapshot_problem(
                event_id, guard.parse(raw)["data"]["object"])  # fmt: skip
            if problem is None:
                raise _NotSetBased(f"line {line}: a row breaks a check in SQL only")
            self.quarantine(n, line, event_id, raw, problem)

    def quarantine(self, n: int, line: int, event_id: str, raw: str, problem: stage.Problem,
                   revive: bool = False) -> None:  # fmt: skip
        """Take staged record ``n`` out of the file as quarantined, with the later copies
        of its event counted as duplicates: the record-at-a-time path decides each copy
        again, and quarantines the same text again. A changed copy is left to that path,
        unless ``revive`` (the staging is still open: :meth:`map_left`): then it is
        decided as that path decides it, mapped in Python, and the copies after it stay
        duplicates (of it)."""
        self.quarantined[n] = problem
        for table in sorted(self.staged):
            self.sql(f"DELETE FROM {self.rows_table(table)} WHERE ord = :o", {"o": n})
        self.sql(f"DELETE FROM {_REF} WHERE ord = :o", {"o": n})
        self.sql("DELETE FROM events WHERE id = :e", {"e": event_id})
        self.sql(f"UPDATE {_REC} SET dup = {_QUARANTINED} WHERE ord = :o", {"o": n})
        copies = self.sql(f"SELECT ord, raw FROM {_REC} WHERE event_id = :e AND ord > :o "
                          f"AND dup = {_DUPLICATE} ORDER BY ord", {"e": event_id, "o": n}).all()  # fmt: skip
        for copy, text in copies:
            if text != raw:
                if not revive:
                    raise _NotSetBased(f"line {line}: quarantined, and its event comes again changed")
                self.sql(f"UPDATE {_REC} SET dup = {_LIVE} WHERE ord = :o", {"o": copy})
                self.map_left([copy], events=True)
                return
            self.quarantined[copy] = problem
            self.sql(f"UPDATE {_REC} SET dup = {_QUARANTINED} WHERE ord = :o", {"o": copy})

    def write_quarantine(self) -> None:
        """The quarantined records, one row per rule and text (``times_seen`` counts the
        copies, and adds to a row an earlier run wrote)."""
        if not self.quarantined:
            return
        from paymodel.oltp.ingest import quarantine_row

        found = {n: (line, raw) for n, line, raw in self.sql(
            f"SELECT ord, line, raw FROM {_REC} WHERE dup = {_QUARANTINED}")}  # fmt: skip
        rows: dict[str, dict[str, Any]] = {}
        for n in sorted(self.quarantined):
            p = self.quarantined[n]
            record = guard.Record(self.source, *found[n], checked=True)
            row = quarantine_row(record, p.rule, p.error, self.now, p.object_type, p.object_id,
                                 p.event_id)  # fmt: skip
            if row["id"] in rows:
                rows[row["id"]]["times_seen"] += 1
            else:
                rows[row["id"]] = row
        with self.backend.key_table(self.conn, sorted(rows)) as keys:
            stored = dict(self.sql(f"SELECT id, times_seen FROM ingest_quarantine "
                                   f"WHERE id IN (SELECT id FROM {keys.name})").all())  # fmt: skip
        for digest, times in stored.items():
            self.sql("UPDATE ingest_quarantine SET last_seen_at = :now, times_seen = :n "
                     "WHERE id = :id", {"now": self.now, "n": times + rows.pop(digest)["times_seen"],
                                        "id": digest})  # fmt: skip
        if rows:
            self.backend.insert_rows(self.conn, "ingest_quarantine", list(rows.values()))

    def check_rules(self) -> None:
        """Leave the file to the record-at-a-time path if a row of it could break a
        cross-row rule or an agreement key against any version of its parent (from the
        file or the database): that path decides against the version it holds then."""
        from paymodel.model.rules import CROSS_ROW_RULES

        q = self.q
        for table in sorted(self.staged & _GUARDED):
            child = self.rows_table(table)
            checks: list[tuple[str, str, str]] = []  # (parent table, join column, predicate)
            for rule in CROSS_ROW_RULES:
                if rule.table == table:
                    checks.append((rule.parent, rule.column, _qualify(rule.sql, self.backend.name)))
            t = OLTP.table(table)
            for fk in t.agreement_keys:
                pred = " AND ".join(f"c.{q(c)} = parent.{q(r)}"
                                    for c, r in zip(fk.columns[1:], fk.referred[1:], strict=True))  # fmt: skip
                nulls = " OR ".join(f"c.{q(c)} IS NULL" for c in fk.columns)
                checks.append((fk.table, fk.columns[0], f"({nulls}) OR ({pred})"))
            for parent, column, predicate in checks:
                pk = q(_PK[parent][0])
                # one join per source of parent versions, so that the stored parents are
                # found by their key's index (a join to a union of both scanned the table)
                sources = [q(parent)] + ([self.rows_table(parent)] if parent in self.staged else [])
                bad = self.sql(" UNION ALL ".join(
                    f"SELECT c.ord FROM {child} AS c JOIN {source} AS parent "
                    f"ON parent.{pk} = c.{q(column)} WHERE NOT COALESCE(({predicate}), TRUE)"
                    for source in sources) + " LIMIT 1").first()  # fmt: skip
                if bad is not None:
                    raise _NotSetBased(f"record {bad[0]}: may break a rule against {parent}")

    # -- writing ----------------------------------------------------------------------
    def write(self) -> SetResult:
        q = self.q
        for table in sorted(OWNED_ROWS, key=_ORDER.__getitem__):
            # rows the winning snapshot of their owner no longer has (none staged: all)
            _, owner_column, _ = OWNED_ROWS[table]
            kind = TABLE_OBJECTS[OWNED_ROWS[table][0]]
            kept = ""
            if table in self.staged:
                match = " AND ".join(f"t.{q(c)} = s.{q(c)}" for c in _PK[table])
                kept = f" AND NOT EXISTS (SELECT 1 FROM {self.winning(table)} AS s WHERE {match})"
            self.sql(f"DELETE FROM {q(table)} AS t WHERE CAST(t.{q(owner_column)} AS TEXT) IN "
                     f"(SELECT gid FROM {_WIN} WHERE gtype = :kind){kept}", {"kind": kind})  # fmt: skip
        for table in sorted(self.staged, key=_ORDER.__getitem__):
            src = self.winning(table)
            cols = list(OLTP.table(table).column_names)
            pk = _PK[table]
            match = " AND ".join(f"t.{q(c)} = s.{q(c)}" for c in pk)
            others = [c for c in cols if c not in pk]
            if others:
                self.update_changed(table, src, match, others)
            col_sql = ", ".join(q(c) for c in cols)
            self.sql(f"INSERT INTO {q(table)} ({col_sql}) SELECT {col_sql} FROM {src} AS s "
                     f"WHERE NOT EXISTS (SELECT 1 FROM {q(table)} AS t WHERE {match})")  # fmt: skip
        self.write_versions()
        self.write_pending()
        self.write_quarantine()
        return self.report()

    def winning(self, table: str) -> str:
        """SQL: the staged rows of ``table`` that belong to their object's winning snapshot."""
        return (f"(SELECT s.* FROM {self.rows_table(table)} AS s JOIN {_WIN} AS w "
                "ON w.ord = s.ord AND w.gtype = s.gtype AND w.gid = s.gid)")  # fmt: skip

    def update_changed(self, table: str, src: str, match: str, columns: list[str]) -> None:
        """Update the rows of ``table`` that differ from ``src``, setting only the columns
        that changed: one statement per set of changed columns (few). DuckDB rewrites a
        row whose indexed column is set (even to its value) as a delete and an insert,
        which a row other tables reference refuses; so does the record-at-a-time path."""
        q = self.q
        flags = " || ".join(
            f"CASE WHEN t.{q(c)} IS DISTINCT FROM s.{q(c)} THEN '1' ELSE '0' END" for c in columns
        )  # fmt: skip
        masks = [r[0] for r in self.sql(
            f"SELECT DISTINCT {flags} FROM {q(table)} AS t JOIN {src} AS s ON {match}"
        )]  # fmt: skip
        for mask in masks:
            changed = [c for c, bit in zip(columns, mask, strict=True) if bit == "1"]
            if not changed:
                continue
            sets = ", ".join(f"{q(c)} = s.{q(c)}" for c in changed)
            self.sql(f"UPDATE {q(table)} AS t SET {sets} FROM {src} AS s WHERE {match} "
                     f"AND ({flags}) = :mask", {"mask": mask})  # fmt: skip

    def write_versions(self) -> None:
        params = {"now": self.now}
        self.sql(
            "UPDATE ingest_versions AS v SET version = w.version, event_id = w.event_id, "
            f"applied_at = :now FROM {_WIN} AS w WHERE v.object_type = w.gtype "
            "AND v.object_id = w.gid AND (v.version <> w.version "
            "OR v.event_id IS DISTINCT FROM w.event_id)", params
        )  # fmt: skip
        self.sql(
            "INSERT INTO ingest_versions (object_type, object_id, version, event_id, applied_at) "
            f"SELECT gtype, gid, version, event_id, :now FROM {_WIN} AS w WHERE NOT EXISTS "
            "(SELECT 1 FROM ingest_versions AS v WHERE v.object_type = w.gtype "
            "AND v.object_id = w.gid)", params
        )  # fmt: skip

    def write_pending(self) -> None:
        """The records held back wait for the first parent (in row order) still missing."""
        waiting = self.sql(
            "SELECT ord, ptable, pid FROM (SELECT r.ord, r.ptable, r.pid, ROW_NUMBER() OVER "
            "(PARTITION BY r.ord ORDER BY CASE WHEN o.ord IS NULL THEN 0 ELSE 1 END, "
            f"r.pos, r.k) AS n FROM {_REF} AS r LEFT JOIN {_OUTDATED} AS o ON o.ord = r.ord "
            "AND o.gtype = r.gtype AND o.gid = r.gid WHERE r.ord IN (SELECT c.ord FROM "
            f"{_REC} "
            f"AS c WHERE c.dup = 0 AND {_not_alive('c')}) AND NOT EXISTS "
            f"(SELECT 1 FROM {_WRT} AS w JOIN {_ALIVE} AS b ON b.ord = w.ord "
            "WHERE w.ptable = r.ptable AND w.pid = r.pid)) AS x WHERE n = 1"
        ).all()  # fmt: skip
        held = {r[0]: (r[1], r[2]) for r in waiting}
        # Records of earlier runs: released ones leave, the others wait for what they
        # lack now (their source, line and arrival stay).
        self.sql(f"DELETE FROM ingest_pending WHERE id IN (SELECT pending_id FROM {_REC} "
                 f"WHERE ord IN (SELECT ord FROM {_ALIVE}))")  # fmt: skip
        rows = []
        for ord_, pending_id in self.sql(
            f"SELECT c.ord, c.pending_id FROM {_REC} AS c WHERE c.pending_id IS NOT NULL "
            f"AND {_not_alive('c')}"
        ).all():  # fmt: skip
            ptable, pid = held.pop(ord_)
            self.sql("UPDATE ingest_pending SET waiting_for_table = :t, waiting_for_id = :i "
                     "WHERE id = :id AND (waiting_for_table <> :t OR waiting_for_id <> :i)",
                     {"t": ptable, "i": pid, "id": pending_id})  # fmt: skip
        if not held:
            return
        with self.backend.key_table(self.conn, [str(o) for o in held]) as keys:
            found = self.sql(
                f"SELECT ord, line, event_id, object_type, object_id, version, raw FROM {_REC} "
                f"WHERE CAST(ord AS TEXT) IN (SELECT id FROM {keys.name})"
            )  # fmt: skip
            for ord_, line, event_id, otype, oid, version, raw in found:
                ptable, pid = held[ord_]
                rows.append({
                    "id": hashlib.sha256(raw.encode()).hexdigest()[:32], "object_type": otype,
                    "object_id": oid, "event_id": event_id, "version": version,
                    "waiting_for_table": ptable, "waiting_for_id": pid, "raw": raw,
                    "source": self.source, "source_line": line, "received_at": self.now,
                })  # fmt: skip
        self.backend.insert_rows(self.conn, "ingest_pending", rows)

    def report(self) -> SetResult:
        counts = [
            (kind, outcome, n)
            for kind, outcome, n in self.sql(
                f"SELECT r.kind, CASE WHEN r.dup = {_DUPLICATE} THEN 'duplicate' "
                f"WHEN r.dup = {_QUARANTINED} THEN 'quarantined' WHEN a.ord IS NOT NULL "
                "THEN 'applied' ELSE 'pending' END AS outcome, "
                f"COUNT(*) FROM {_REC} AS r LEFT JOIN {_ALIVE} AS a ON a.ord = r.ord "
                "WHERE r.pending_id IS NULL GROUP BY 1, 2"
            )
        ]
        released = self.sql(f"SELECT COUNT(*) FROM {_REC} WHERE pending_id IS NOT NULL "
                            f"AND ord IN (SELECT ord FROM {_ALIVE})").scalar()  # fmt: skip
        # the objects whose rows were written (as the record-at-a-time path counts them)
        touched = {r[0] for r in self.sql(f"SELECT DISTINCT gid FROM {_STALE} WHERE stale = 0")}
        return SetResult(counts, self.superseded, touched, released=int(released or 0))


def _not_alive(alias: str) -> str:
    """Record ``alias`` is not applied by this run (not in the table of applied records).

    ``NOT EXISTS``, never ``NOT IN (SELECT ...)``, and never ``IN (SELECT ...)`` inside a
    ``CASE``: PostgreSQL plans both as a subplan, hashed only while the subquery's rows fit
    in ``work_mem`` (4 MB by default) and otherwise run again for every row, quadratic in
    the file. A scale-1 replay (458,469 events) spent over 15 minutes in one such
    statement; at scale 0.1 the hash fits and nothing showed. ``NOT EXISTS`` is an anti-join
    on both engines."""
    return f"NOT EXISTS (SELECT 1 FROM {_ALIVE} AS a WHERE a.ord = {alias}.ord)"


def _qualify(predicate: str, dialect: str) -> str:
    """A rule's SQL names the child's columns bare and the parent's as ``parent.x``:
    the child's become ``c.x`` (the child's alias in :meth:`_SetRun.check_rules`)."""
    tree = sqlglot.parse_one(predicate, read="postgres")
    for col in tree.find_all(exp.Column):
        if not col.table:
            col.set("table", exp.to_identifier("c"))
    return tree.sql(dialect="postgres" if dialect == "postgresql" else dialect)
