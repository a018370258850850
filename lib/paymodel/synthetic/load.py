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

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import sqlalchemy as sa

from paymodel.model.oltp import OLTP
from paymodel.oltp.backend import backend
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
    bulk = backend(engine)
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        for name in order:
            if name == "events":
                counts[name] = _load_events(conn, Path(data_dir) / EVENT_LOG)
                continue
            files = parquet_files(data_dir, name)
            if not files:
                raise FileNotFoundError(f"{data_dir}: no Parquet files for table {name}")
            cols = [c.name for c in OLTP.table(name).columns]
            target = sa.table(name, *(sa.column(c) for c in cols))
            if name == "currencies" and _count(conn, target) > 0:
                counts[name] = _count(conn, target)
                continue
            bulk.bulk_load(conn, name, cols, files)
            counts[name] = _count(conn, target)
    return counts


def _load_events(conn: sa.Connection, path: Path) -> int:
    """``events.jsonl`` into ``events``, in bulk; 0 when the folder has no event log."""
    if not path.exists():
        return 0
    backend(conn).bulk_load_events(conn, path, _EVENT_COLUMNS, _event_rows(path))
    return _count(conn, sa.table("events"))


def _event_rows(path: Path) -> Iterator[tuple]:
    with path.open("rb") as f:
        for line in f:
            if line.strip():
                yield _event_row(orjson.loads(line))


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
