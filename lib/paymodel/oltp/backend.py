"""What differs between DuckDB and PostgreSQL, owned by one object per engine.

The flows, the loader and the ingester run one code path on both engines; each place
where the engines behave differently asks the engine's :class:`Backend` instead of
testing the dialect's name:

* **Row locks.** PostgreSQL takes ``SELECT ... FOR UPDATE``; DuckDB does not parse
  locking clauses, and claims rows by writing them (a write-write conflict then makes
  the second of two claimers retry): :meth:`Backend.lock` and :meth:`Backend.claim`.
* **Advisory locks.** Ingestion runs take turns on one database: a transaction-level
  advisory lock on PostgreSQL; DuckDB lets one process at a time write a database file,
  so it needs none (:meth:`Backend.advisory_lock`).
* **Bulk load.** DuckDB reads Parquet and the event log itself (``read_parquet``,
  ``read_json``); PostgreSQL is fed by ``COPY ... FROM STDIN`` in Arrow batches or line
  by line (:meth:`Backend.bulk_load`, :meth:`Backend.bulk_load_events`).
* **Results.** A JSON column comes back as text from DuckDB and as data from
  PostgreSQL; timestamps come back in the session's time zone: :meth:`Backend.value`
  gives JSON as data and instants in UTC on both.
* **Rules the DDL cannot declare.** DuckDB refuses a few checks and foreign keys the
  model has (see :class:`paymodel.model.core.ForeignKey`): the code that writes
  enforces them; :meth:`Backend.undeclared_checks` and
  :meth:`Backend.undeclared_foreign_keys` name them.
* **Writers of one DuckDB database take turns** (:meth:`Backend.writer_turn`): the
  flows' transactions hold a per-database lock instead of starving in write conflicts.
* **Connection slots** and the **constraint error** classes of each engine.

Example:
    >>> from paymodel.oltp.engines import duckdb_engine
    >>> b = backend(duckdb_engine())
    >>> b.name, b.row_locks
    ('duckdb', False)
    >>> str(backend("postgresql").lock(sa.select(sa.literal(1)))).endswith("FOR UPDATE")
    True
    >>> sorted(b.undeclared_foreign_keys("payment_methods"))
    ['customer_id']
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import orjson
import sqlalchemy as sa

from paymodel.model.core import JSON, RATE, Check
from paymodel.model.oltp import OLTP
from paymodel.model.stripe import at_rate_scale

__all__ = ["Backend", "DuckDBBackend", "PostgresBackend", "backend"]


class Backend:
    """The behaviour of one OLTP engine where DuckDB and PostgreSQL differ."""

    set_based_ingest: ClassVar[bool] = True
    """Whether ingestion decides files of events set-based by default
    (:mod:`paymodel.oltp.ingest_set`; ``PAYMODEL_INGEST_SET=1`` or ``0`` forces it)."""

    flattens_json: ClassVar[bool] = False
    """Whether staged snapshots are flattened by SQL in the engine
    (:mod:`paymodel.oltp.ingest_engine`, in DuckDB's SQL: its JSON functions read a list
    of paths in one pass over a document; ``PAYMODEL_INGEST_ENGINE=0`` maps every
    snapshot in Python)."""

    name: ClassVar[str] = ""
    row_locks: ClassVar[bool] = False
    """Whether ``SELECT ... FOR UPDATE`` takes row locks."""

    # --- locking ---------------------------------------------------------------
    def lock(self, statement: sa.Select, *, nowait: bool = False) -> sa.Select:
        """``statement`` with ``FOR UPDATE`` where the engine takes row locks."""
        return statement

    def claim(
        self, conn: sa.Connection, table: sa.Table, where: Sequence[Any], touch: str
    ) -> None:
        """Make the rows ``where`` selects this transaction's before reading them."""

    def advisory_lock(self, conn: sa.Connection, key: int) -> None:
        """Wait for the lock ``key`` until the transaction ends (one holder at a time)."""

    @contextmanager
    def writer_turn(self, engine: sa.Engine) -> Iterator[None]:
        """Hold this database's writer turn around one transaction (nothing by default)."""
        yield

    # --- loading ---------------------------------------------------------------
    def bulk_load(
        self, conn: sa.Connection, table: str, columns: Sequence[str], files: Sequence[Path]
    ) -> None:
        """Append the rows of Parquet ``files`` (``columns``) to ``table``."""
        raise NotImplementedError

    def bulk_load_events(
        self, conn: sa.Connection, path: Path, columns: Sequence[str], rows: Iterable[tuple]
    ) -> None:
        """Append a newline-delimited event log to ``events``: ``rows`` are its lines as
        ``columns`` values, made lazily (DuckDB reads the file itself and ignores them)."""
        raise NotImplementedError

    def insert_rows(self, conn: sa.Connection, table: str, rows: Sequence[dict[str, Any]]) -> None:
        """Insert ``rows`` (every column of the model's ``table``) in one bulk statement.

        Raises:
            sqlalchemy.exc.DBAPIError: the database refused the batch (a key, a check).
        """
        raise NotImplementedError

    def create_stage(
        self, conn: sa.Connection, name: str, like: str | None, extra: dict[str, Any]
    ) -> None:
        """Create temporary table ``name``: the ``extra`` columns (name -> model type),
        then every column of OLTP table ``like`` (if any), without constraints."""
        casts = [f"CAST(NULL AS {_SQL_TYPES[t]}) AS {c}" for c, t in extra.items()]
        if like is None:
            columns = ", ".join(f"{c} {_SQL_TYPES[t]}" for c, t in extra.items())
            conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {name} ({columns})")
        else:
            q = conn.dialect.identifier_preparer.quote
            conn.exec_driver_sql(
                f"CREATE TEMPORARY TABLE {name} AS SELECT {', '.join(casts)}, t.* "
                f"FROM {q(like)} AS t LIMIT 0"
            )

    def analyze(self, conn: sa.Connection, tables: Sequence[str]) -> None:
        """Gather the planner's statistics of ``tables`` (staged, just filled), if the
        engine plans by them."""

    def stage_rows(
        self, conn: sa.Connection, name: str, types: dict[str, Any], rows: Sequence[dict[str, Any]]
    ) -> None:
        """Append ``rows`` (dicts holding every column of ``types``, or an Arrow table of
        them from :func:`arrow_table`) to staged table ``name``."""
        raise NotImplementedError

    def update_rows(
        self,
        conn: sa.Connection,
        table: str,
        keys: Sequence[str],
        columns: Sequence[str],
        rows: Sequence[dict[str, Any]],
    ) -> None:
        """Set ``columns`` of the rows of ``table`` whose ``keys`` match, in one statement.

        ``rows`` hold the key and the new values; only the named columns are written
        (DuckDB refuses an update of an indexed column of a referenced row).
        """
        raise NotImplementedError

    @contextmanager
    def key_table(self, conn: sa.Connection, keys: Sequence[str]) -> Iterator[sa.TableClause]:
        """A one-column table ``id`` of ``keys`` in the engine, for joins, while in use."""
        raise NotImplementedError
        yield  # pragma: no cover

    @contextmanager
    def key_lookups(self, conn: sa.Connection) -> Iterator[None]:
        """Inside the block, the planner costs an index lookup as a read of fast storage,
        for queries that look up a few hundred keys in big tables (engines that plan by
        such costs; the setting the block found is back after it)."""
        yield

    # --- results ---------------------------------------------------------------
    def value(self, column_type: Any, value: Any) -> Any:
        """A value as read back, in the model's terms: JSON as data, instants in UTC."""
        if column_type is JSON and isinstance(value, str):
            return json.loads(value)
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            return value.astimezone(dt.UTC)
        return value

    def row(self, table: str, row: Any) -> dict[str, Any]:
        """A result row of ``table`` through :meth:`value`."""
        types = _column_types(table)
        return {k: self.value(types.get(k), v) for k, v in row.items()}

    # --- rules -----------------------------------------------------------------
    def declares(self, dialects: tuple[str, ...] | None) -> bool:
        """Whether a rule declared for ``dialects`` (``None``: all) is in this engine's DDL."""
        return dialects is None or self.name in dialects

    def undeclared_checks(self, table: str) -> list[Check]:
        """Checks of ``table`` this engine's DDL leaves out (enforced by the writers)."""
        return [c for c in OLTP.table(table).all_checks if not self.declares(c.dialects)]

    def undeclared_foreign_keys(self, table: str) -> list[str]:
        """First columns of the foreign keys of ``table`` this engine's DDL leaves out."""
        return [
            fk.columns[0]
            for fk in OLTP.table(table).all_foreign_keys
            if not self.declares(fk.dialects)
        ]

    # --- capacity and errors -----------------------------------------------------
    def connection_slots(self, engine: sa.Engine, *, margin: int = 2) -> int:
        """How many more connections the server accepts now, less a margin."""
        return 1_000_000

    def constraint_error(self, kind: str) -> type[Exception]:
        """The exception class the driver raises for a constraint ``kind``."""
        raise NotImplementedError


class DuckDBBackend(Backend):
    """DuckDB: optimistic concurrency, one writer process per file, Parquet built in."""

    name = "duckdb"
    row_locks = False
    flattens_json = True

    def claim(
        self, conn: sa.Connection, table: sa.Table, where: Sequence[Any], touch: str
    ) -> None:
        # DuckDB registers a write conflict only for a value that changes: move the
        # timestamp one second and back. The row ends as it was, but it was written.
        second = sa.text("INTERVAL 1 SECOND")
        column = table.c[touch]
        conn.execute(sa.update(table).where(*where).values({touch: column + second}))
        conn.execute(sa.update(table).where(*where).values({touch: column - second}))

    @contextmanager
    def writer_turn(self, engine: sa.Engine) -> Iterator[None]:
        # Optimistic concurrency starves N writers of one row (each round commits one);
        # DuckDB lets one process write a file, so its writers take turns in-process.
        # Per database, not per engine: run_concurrently gives each thread its engine.
        database = engine.url.database or ":memory:"
        key = f"memory:{id(engine)}" if database == ":memory:" else os.path.realpath(database)
        with _WRITERS_GUARD:
            lock = _WRITERS.setdefault(key, threading.RLock())
        with lock:
            yield

    def bulk_load(
        self, conn: sa.Connection, table: str, columns: Sequence[str], files: Sequence[Path]
    ) -> None:
        prep = conn.dialect.identifier_preparer
        col_sql = ", ".join(prep.quote(c) for c in columns)
        for f in files:
            conn.exec_driver_sql(
                f"INSERT INTO {prep.quote(table)} ({col_sql}) "  # identifiers quoted by SQLAlchemy
                f"SELECT {col_sql} FROM read_parquet(?)",
                (str(f),),
            )

    def bulk_load_events(
        self, conn: sa.Connection, path: Path, columns: Sequence[str], rows: Iterable[tuple]
    ) -> None:
        # read_json with declared columns: one pass over the file, no Python per row
        conn.exec_driver_sql(
            "INSERT INTO events (id, type, api_version, object_type, object_id, data_object, "
            "previous_attributes, request_id, idempotency_key, livemode, pending_webhooks, "
            "created) "
            "SELECT id, type, api_version, data->'object'->>'object', data->'object'->>'id', "
            "data->'object', data->'previous_attributes', request->>'id', "
            "request->>'idempotency_key', livemode, pending_webhooks, to_timestamp(created) "
            "FROM read_json(?, format = 'newline_delimited', columns = {id: 'VARCHAR', "
            "type: 'VARCHAR', api_version: 'VARCHAR', created: 'BIGINT', data: 'JSON', "
            "livemode: 'BOOLEAN', pending_webhooks: 'INTEGER', request: 'JSON'})",
            (str(path),),
        )

    def insert_rows(self, conn: sa.Connection, table: str, rows: Sequence[dict[str, Any]]) -> None:
        """One ``INSERT ... SELECT`` from an Arrow table registered on the connection.

        Measured against SQLAlchemy's executemany, which duckdb-engine runs row by row.
        """
        columns = list(OLTP.table(table).column_names)
        prep = conn.dialect.identifier_preparer
        col_sql = ", ".join(prep.quote(c) for c in columns)
        self._from_batch(conn, table, columns, rows,
                         f"INSERT INTO {prep.quote(table)} ({col_sql}) SELECT {col_sql} FROM {{batch}}")  # fmt: skip

    def stage_rows(
        self, conn: sa.Connection, name: str, types: dict[str, Any], rows: Sequence[dict[str, Any]]
    ) -> None:
        columns = list(types)
        self._from_batch(conn, name, columns, rows,
                         f"INSERT INTO {name} ({', '.join(columns)}) SELECT {', '.join(columns)} "
                         "FROM {batch}", types=types)  # fmt: skip

    def update_rows(
        self,
        conn: sa.Connection,
        table: str,
        keys: Sequence[str],
        columns: Sequence[str],
        rows: Sequence[dict[str, Any]],
    ) -> None:
        q = conn.dialect.identifier_preparer.quote
        sets, match = _update_clauses(q, keys, columns)
        self._from_batch(conn, table, [*keys, *columns], rows,
                         f"UPDATE {q(table)} AS t SET {sets} FROM {{batch}} AS b WHERE {match}")  # fmt: skip

    @contextmanager
    def key_table(self, conn: sa.Connection, keys: Sequence[str]) -> Iterator[sa.TableClause]:
        import pyarrow as pa

        # A temporary table, not a registered view: see _from_batch. Made and dropped
        # through the connection, so that both are in its transaction (begun here if
        # none is): made on the raw connection outside one, it had outlived a rollback.
        conn.exec_driver_sql(f"CREATE OR REPLACE TEMPORARY TABLE {_KEYS} (id VARCHAR)")
        raw = conn.connection.driver_connection
        raw.from_arrow(pa.table({"id": pa.array(list(keys), type=pa.string())})).insert_into(_KEYS)
        try:
            yield sa.table(_KEYS, sa.column("id"))
        finally:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {_KEYS}")

    @staticmethod
    def _from_batch(
        conn: sa.Connection,
        table: str,
        columns: Sequence[str],
        rows: Sequence[dict[str, Any]],
        statement: str,
        types: dict[str, Any] | None = None,
    ) -> None:
        """Run ``statement`` over ``rows`` as an Arrow table named ``{batch}``.

        The statement reads the Arrow table through DuckDB's replacement scan (a Python
        variable of this frame named in the SQL), not through a registered view: a view
        registered and unregistered inside a transaction keeps its Arrow table alive
        until the transaction ends (the dropped catalog entry is kept for the
        transaction), so a file staged in one transaction held every chunk it had sent
        (measured: 121 MB of a 68 MB file's chunks still referenced at the end of
        staging). Read this way, DuckDB copies the rows and lets the table go.
        """
        import duckdb
        import pyarrow as pa

        types = types or _column_types(table)
        paymodel_batch = rows
        if not isinstance(rows, pa.Table):
            paymodel_batch = arrow_table(rows, {c: types[c] for c in columns})  # noqa: F841
        # duckdb-engine's wrapper hands out the connection's own execute: the replacement
        # scan then looks in this frame, where paymodel_batch is
        raw = conn.connection.driver_connection
        sql_text = statement.format(batch="paymodel_batch")  # identifiers quoted by SQLAlchemy
        try:
            raw.execute(sql_text)
        except duckdb.Error as e:
            raise sa.exc.DBAPIError(sql_text, None, e) from e  # type: ignore[arg-type]

    def constraint_error(self, kind: str) -> type[Exception]:
        import duckdb

        return duckdb.ConstraintException


class PostgresBackend(Backend):
    """PostgreSQL: row and advisory locks, COPY, a connection limit, one error per SQLSTATE."""

    name = "postgresql"
    row_locks = True
    # set-based by default too (the base class's True). Measured at scale 0.1: 20.9 s in
    # order and 24.8 s shuffled, against 30 s and 43.8 s one record at a time, once the
    # staged tables had statistics (:meth:`analyze`; without them: 275 s)

    def lock(self, statement: sa.Select, *, nowait: bool = False) -> sa.Select:
        return statement.with_for_update(nowait=nowait)

    def advisory_lock(self, conn: sa.Connection, key: int) -> None:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    def bulk_load(
        self, conn: sa.Connection, table: str, columns: Sequence[str], files: Sequence[Path]
    ) -> None:
        import pyarrow.parquet as pq
        from psycopg import sql

        raw = conn.connection.driver_connection  # a psycopg connection
        stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        )
        with raw.cursor() as cur, cur.copy(stmt) as copy:
            for f in files:
                for batch in pq.ParquetFile(f).iter_batches(batch_size=50_000, columns=columns):
                    for row in zip(*(batch.column(c).to_pylist() for c in columns), strict=True):
                        copy.write_row(row)

    def bulk_load_events(
        self, conn: sa.Connection, path: Path, columns: Sequence[str], rows: Iterable[tuple]
    ) -> None:
        from psycopg import sql

        raw = conn.connection.driver_connection  # a psycopg connection
        stmt = sql.SQL("COPY events ({}) FROM STDIN").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        )
        with raw.cursor() as cur, cur.copy(stmt) as copy:
            for row in rows:
                copy.write_row(row)

    def insert_rows(self, conn: sa.Connection, table: str, rows: Sequence[dict[str, Any]]) -> None:
        """``COPY ... FROM STDIN`` of the rows (JSON as text)."""

        self._copy(conn, table, table, list(OLTP.table(table).column_names), rows)

    def stage_rows(
        self, conn: sa.Connection, name: str, types: dict[str, Any], rows: Sequence[dict[str, Any]]
    ) -> None:
        self._copy(conn, name, name, list(types), rows, types=types)

    def analyze(self, conn: sa.Connection, tables: Sequence[str]) -> None:
        # temporary tables are never analysed by autovacuum: without statistics the
        # planner took a staged table of 100,000 rows for a few and chose nested loops
        for name in tables:
            conn.exec_driver_sql(f"ANALYZE {name}")  # names made by the staging, not input

    @staticmethod
    def _copy(
        conn: sa.Connection, table: str, target: str, columns: Sequence[str], rows: Sequence[dict],
        types: dict[str, Any] | None = None,
    ) -> None:
        import psycopg
        from psycopg import sql

        types = types or _column_types(table)
        json_columns = {c for c in columns if types[c] is JSON}
        names = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        raw = conn.connection.driver_connection  # a psycopg connection
        if isinstance(rows, Sequence) and len(rows) >= _CSV_MIN_ROWS:
            # a value Arrow does not take as its column's type: row by row (Arrow's errors
            # subclass these)
            with suppress(OverflowError, TypeError, ValueError):
                rows = arrow_table(rows, {c: types[c] for c in columns})
        arrow = not isinstance(rows, Sequence)  # an Arrow table (arrow_table): JSON as text
        stmt = sql.SQL("COPY {} ({}) FROM STDIN" + (" WITH (FORMAT csv)" if arrow else "")).format(
            sql.Identifier(target), names
        )
        try:
            with raw.cursor() as cur, cur.copy(stmt) as copy:
                if arrow:
                    for block in _csv_blocks(rows.select(list(columns))):
                        copy.write(block)
                    return
                for r in rows:
                    copy.write_row([
                        _json_text(r[c]) if c in json_columns and r[c] is not None else r[c]
                        for c in columns
                    ])  # fmt: skip
        except psycopg.Error as e:
            raise sa.exc.DBAPIError(f"COPY {target}", None, e) from e  # type: ignore[arg-type]

    @contextmanager
    def key_table(self, conn: sa.Connection, keys: Sequence[str]) -> Iterator[sa.TableClause]:
        from psycopg import sql

        conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {_KEYS} (id TEXT) ON COMMIT DROP")
        raw = conn.connection.driver_connection
        try:
            with raw.cursor() as cur, cur.copy(sql.SQL("COPY {} (id) FROM STDIN").format(
                sql.Identifier(_KEYS))) as copy:  # fmt: skip
                for key in keys:
                    copy.write_row((key,))
            yield sa.table(_KEYS, sa.column("id"))
        finally:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {_KEYS}")

    @contextmanager
    def key_lookups(self, conn: sa.Connection) -> Iterator[None]:
        # PostgreSQL's default cost of a random page (4.0, for spinning disks) made it scan
        # every table of a scale-1 account once per invariant instead of looking up the
        # 562 object ids a 1,000-event run touched: the scoped invariants took 428 ms,
        # against 116 ms at 1.1, the usual figure for SSDs (EXPLAIN ANALYZE, one run each).
        # Set for this transaction only; a big key table still gets hash joins.
        before = conn.exec_driver_sql("SHOW random_page_cost").scalar_one()
        conn.exec_driver_sql("SELECT set_config('random_page_cost', '1.1', true)")
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT set_config('random_page_cost', :v, true)"), {"v": before})

    def update_rows(
        self,
        conn: sa.Connection,
        table: str,
        keys: Sequence[str],
        columns: Sequence[str],
        rows: Sequence[dict[str, Any]],
    ) -> None:
        """COPY into a temporary table, then one ``UPDATE ... FROM`` it."""
        q = conn.dialect.identifier_preparer.quote
        batch = "paymodel_batch"
        wanted = ", ".join(q(c) for c in (*keys, *columns))
        sets, match = _update_clauses(q, keys, columns)
        # identifiers quoted by SQLAlchemy's preparer; values travel by COPY
        conn.exec_driver_sql(
            f"CREATE TEMPORARY TABLE {batch} ON COMMIT DROP AS "
            f"SELECT {wanted} FROM {q(table)} WITH NO DATA"
        )
        try:
            self._copy(conn, table, batch, [*keys, *columns], rows)
            conn.exec_driver_sql(f"UPDATE {q(table)} AS t SET {sets} FROM {batch} AS b WHERE {match}")
        finally:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {batch}")

    def connection_slots(self, engine: sa.Engine, *, margin: int = 2) -> int:
        with engine.connect() as conn:
            limit = int(conn.exec_driver_sql("SHOW max_connections").scalar_one())
            reserved = int(conn.exec_driver_sql("SHOW superuser_reserved_connections").scalar_one())
            in_use = conn.exec_driver_sql("SELECT count(*) FROM pg_stat_activity").scalar_one()
        return max(1, limit - reserved - in_use - margin)

    def constraint_error(self, kind: str) -> type[Exception]:
        import psycopg

        return {
            "not_null": psycopg.errors.NotNullViolation,
            "primary_key": psycopg.errors.UniqueViolation,
            "unique": psycopg.errors.UniqueViolation,
            "foreign_key": psycopg.errors.ForeignKeyViolation,
            "check": psycopg.errors.CheckViolation,
        }[kind]


_KEYS = "paymodel_keys"
_WRITERS: dict[str, threading.RLock] = {}  # DuckDB database -> its writers' turn
_WRITERS_GUARD = threading.Lock()

_BACKENDS: dict[str, Backend] = {b.name: b for b in (DuckDBBackend(), PostgresBackend())}


def backend(target: sa.Engine | sa.Connection | str) -> Backend:
    """The :class:`Backend` of an engine, a connection or a dialect name.

    Raises:
        ValueError: the engine is neither DuckDB nor PostgreSQL.
    """
    name = target if isinstance(target, str) else target.dialect.name
    try:
        return _BACKENDS[name]
    except KeyError:
        raise ValueError(f"unsupported dialect {name!r}: paymodel runs on duckdb or postgresql") from None


_CSV_BLOCK_ROWS = 20_000
_CSV_MIN_ROWS = 50
"""Rows (dicts) from which a PostgreSQL ``COPY`` goes through Arrow's CSV rather than
row by row: converting costs a fixed few hundred microseconds."""


def _csv_blocks(table: Any) -> Iterator[bytes]:
    """An Arrow table as the CSV that ``COPY ... WITH (FORMAT csv)`` reads, in blocks.

    Written by Arrow's CSV writer in C++: every string quoted (an empty string is
    ``""``), a null left empty (what PostgreSQL's CSV format reads as NULL), timestamps
    in ISO 8601 with a ``Z``, booleans ``true``/``false``. Measured on a scale-0.1
    replay in order (48,559 events): the staged tables' writes took 6.4 s row by row
    through ``Copy.write_row`` over ``to_pylist()``, 4.4 s this way (the rest is the
    server's: 63 MB of JSON into ``events``, 74 MB of raw text into the staged records).
    """
    import pyarrow.csv as pacsv

    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    for start in range(0, table.num_rows, _CSV_BLOCK_ROWS):
        out = io.BytesIO()
        pacsv.write_csv(table.slice(start, _CSV_BLOCK_ROWS), out, options)
        yield out.getvalue()


def _json_text(value: Any) -> str:
    """JSON text of a column value for a bulk write.

    orjson where it can (measured: stdlib ``json.dumps`` was about 3% of a replay);
    the stdlib for what orjson refuses (integers beyond 64 bits, non-string keys).
    """
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value)


def arrow_table(rows: Sequence[dict[str, Any]], types: dict[str, Any]) -> Any:
    """``rows`` (dicts holding every column of ``types``, model types) as an Arrow table
    with those columns in order; JSON values become their text.

    ``Table.from_pylist`` reads the dicts in C++ (measured: 0.26 s against 0.70 s for a
    list per column built in Python, on the rows of 10,000 generated events).
    """
    import pyarrow as pa

    schema = _arrow_schema(tuple(types.items()))
    json_columns = [c for c, t in types.items() if t is JSON]
    if json_columns:
        rows = [
            {**r, **{c: None if r[c] is None else _json_text(r[c]) for c in json_columns}}
            for r in rows
        ]
    rate_columns = [c for c, t in types.items() if t is RATE]
    if rate_columns:  # as the databases round a NUMERIC(20, 10) (Arrow refuses finer values)
        rows = [{**r, **{c: _at_scale(r[c]) for c in rate_columns}} for r in rows]
    return pa.Table.from_pylist(rows, schema=schema)


def _at_scale(value: Any) -> Any:
    return at_rate_scale(value) if isinstance(value, Decimal) and value.is_finite() else value


@cache
def _arrow_schema(types: tuple[tuple[str, Any], ...]) -> Any:
    import pyarrow as pa

    return pa.schema([(c, _arrow_type(t)) for c, t in types])


def _update_clauses(
    q: Callable[[str], str], keys: Sequence[str], columns: Sequence[str]
) -> tuple[str, str]:
    """``SET`` and ``WHERE`` of ``UPDATE t ... FROM batch b``: columns from b, keys matched."""
    sets = ", ".join(f"{q(c)} = b.{q(c)}" for c in columns)
    return sets, " AND ".join(f"t.{q(k)} = b.{q(k)}" for k in keys)


def _arrow_type(t: Any) -> Any:
    """The Arrow type that carries a model type into DuckDB unchanged."""
    import pyarrow as pa

    from paymodel.model.core import BOOLEAN, DATE, RATE, TIMESTAMP

    if t is BOOLEAN:
        return pa.bool_()
    if t is TIMESTAMP:
        return pa.timestamp("us", tz="UTC")
    if t is DATE:
        return pa.date32()
    if t is RATE:
        return pa.decimal128(t.precision, t.scale)
    if t.json_type == "integer":
        return pa.int64()
    return pa.string()


def _sql_type_names() -> dict[Any, str]:
    from paymodel.model.core import BIGINT, TEXT, TIMESTAMP

    return {BIGINT: "BIGINT", TEXT: "TEXT", TIMESTAMP: "TIMESTAMP WITH TIME ZONE"}


_SQL_TYPES = _sql_type_names()
"""The SQL of the model types a staged table's extra columns use (the same on both engines)."""


@cache
def _column_types(table: str) -> dict[str, Any]:
    try:
        return {c.name: c.type for c in OLTP.table(table).columns}
    except KeyError:
        return {}
