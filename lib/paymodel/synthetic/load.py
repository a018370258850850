"""Bulk-load generated Parquet and the event log into an OLTP database, constraints on.

Tables are loaded parents first. DuckDB reads the files itself (``INSERT INTO t SELECT
... FROM read_parquet(?)``); PostgreSQL gets them through ``COPY ... FROM STDIN``
(psycopg), streamed in record batches so memory stays bounded. ``events.jsonl``, when
the folder has one, fills ``events`` the same way: DuckDB reads it with ``read_json``,
PostgreSQL gets it through ``COPY`` line by line; each row is what ``paymodel ingest``
records for the same event (the replay test compares the two column by column).

Example:
    >>> import tempfile, pathlib
    >>> from paymodel.synthetic import generate
    >>> from paymodel.oltp.engines import duckdb_engine
    >>> from paymodel.oltp.schema import create_schema
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = generate(d, scale=0.002, seed=3, months=2, progress=False, events=False,
    ...                  documents=False)
    ...     engine = duckdb_engine()
    ...     create_schema(engine)
    ...     counts = load_into_oltp(d, engine)
    ...     engine.dispose()
    >>> counts["customers"]
    20
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import sqlalchemy as sa
from psycopg import sql

from paymodel.model.oltp import OLTP
from paymodel.oltp.schema import dialect_name
from paymodel.synthetic import TABLES

__all__ = ["EVENT_LOG", "LOADED", "load_into_oltp", "parquet_files"]

EVENT_LOG = "events.jsonl"
"""The event log of a generated folder, loaded into ``events``."""

LOADED = (*TABLES, "events")
"""What :func:`load_into_oltp` loads by default: every generated table, then the event log."""

_EVENT_COLUMNS = tuple(c.name for c in OLTP.table("events").columns)


def parquet_files(data_dir: Path | str, table: str) -> list[Path]:
    """The Parquet parts of ``table`` in a generated folder, in order."""
    return sorted((Path(data_dir) / table).glob("part-*.parquet"))


def _count(conn: sa.Connection, table: sa.Table) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def load_into_oltp(
    data_dir: Path | str, engine: sa.Engine, *, tables: tuple[str, ...] = LOADED
) -> dict[str, int]:
    """Insert every generated table into an OLTP database made by ``create_schema``.

    Tables are loaded parents first in one transaction: a row that breaks a key or a
    check fails the load with the database's error naming the constraint. The
    reference ``currencies`` rows that ``create_schema`` seeds are kept (not loaded
    twice).

    Args:
        data_dir: a folder written by :func:`paymodel.synthetic.generate`.
        engine: a DuckDB or PostgreSQL engine holding the (empty) OLTP schema.
        tables: the tables to load (default: all, in dependency order, and ``events``
            from ``events.jsonl``; a folder generated without events loads none).

    Returns:
        Rows in each loaded table afterwards.
    """
    order = [t for t in OLTP.table_names if t in tables]
    dialect = dialect_name(engine)
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        for name in order:
            if name == "events":
                counts[name] = _load_events(conn, Path(data_dir) / EVENT_LOG, dialect)
                continue
            files = parquet_files(data_dir, name)
            if not files:
                raise FileNotFoundError(f"{data_dir}: no Parquet files for table {name}")
            cols = [c.name for c in OLTP.table(name).columns]
            target = sa.table(name, *(sa.column(c) for c in cols))
            if name == "currencies" and _count(conn, target) > 0:
                counts[name] = _count(conn, target)
                continue
            if dialect == "duckdb":
                prep = conn.dialect.identifier_preparer
                col_sql = ", ".join(prep.quote(c) for c in cols)
                for f in files:
                    conn.exec_driver_sql(
                        f"INSERT INTO {prep.quote(name)} ({col_sql}) "  # identifiers quoted by SQLAlchemy
                        f"SELECT {col_sql} FROM read_parquet(?)",
                        (str(f),),
                    )
            else:
                _copy_postgres(conn, name, cols, files)
            counts[name] = _count(conn, target)
    return counts


def _copy_postgres(conn: sa.Connection, name: str, cols: list[str], files: list[Path]) -> None:
    raw = conn.connection.driver_connection  # a psycopg connection
    stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(name), sql.SQL(", ").join(sql.Identifier(c) for c in cols)
    )
    with raw.cursor() as cur, cur.copy(stmt) as copy:
        for f in files:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=50_000, columns=cols):
                for row in zip(*(batch.column(c).to_pylist() for c in cols), strict=True):
                    copy.write_row(row)


def _load_events(conn: sa.Connection, path: Path, dialect: str) -> int:
    """``events.jsonl`` into ``events``, in bulk; 0 when the folder has no event log."""
    if not path.exists():
        return 0
    if dialect == "duckdb":
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
    else:
        raw = conn.connection.driver_connection  # a psycopg connection
        stmt = sql.SQL("COPY events ({}) FROM STDIN").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in _EVENT_COLUMNS)
        )
        with raw.cursor() as cur, cur.copy(stmt) as copy, path.open("rb") as f:
            for line in f:
                if line.strip():
                    copy.write_row(_event_row(orjson.loads(line)))
    return _count(conn, sa.table("events"))


def _event_row(event: dict) -> tuple:
    data = event["data"]
    obj = data["object"]
    previous = data.get("previous_attributes")
    request = event.get("request") or {}
    return (
        event["id"],
        event["type"],
        event.get("api_version"),
        obj["object"],
        obj["id"],
        orjson.dumps(obj).decode(),
        None if previous is None else orjson.dumps(previous).decode(),
        request.get("id"),
        request.get("idempotency_key"),
        event["livemode"],
        event["pending_webhooks"],
        datetime.fromtimestamp(event["created"], UTC),
    )
