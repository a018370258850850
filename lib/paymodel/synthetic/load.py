"""Bulk-load generated Parquet into an OLTP database, every constraint on, parents first.

DuckDB reads the files itself (``INSERT INTO t SELECT ... FROM read_parquet(?)``);
PostgreSQL gets them through ``COPY ... FROM STDIN`` (psycopg), streamed in record
batches so memory stays bounded.

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

from pathlib import Path

import orjson
import pyarrow.parquet as pq
import sqlalchemy as sa
from psycopg import sql

from paymodel.model.oltp import OLTP
from paymodel.model.sql import metadata
from paymodel.model.stripe import from_stripe_object
from paymodel.oltp.schema import dialect_name
from paymodel.synthetic import TABLES

__all__ = ["load_events_into_oltp", "load_into_oltp", "parquet_files"]


def parquet_files(data_dir: Path | str, table: str) -> list[Path]:
    """The Parquet parts of ``table`` in a generated folder, in order."""
    return sorted((Path(data_dir) / table).glob("part-*.parquet"))


def _count(conn: sa.Connection, table: sa.Table) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def load_into_oltp(
    data_dir: Path | str, engine: sa.Engine, *, tables: tuple[str, ...] = TABLES
) -> dict[str, int]:
    """Insert every generated table into an OLTP database made by ``create_schema``.

    Tables are loaded parents first in one transaction: a row that breaks a key or a
    check fails the load with the database's error naming the constraint. The
    reference ``currencies`` rows that ``create_schema`` seeds are kept (not loaded
    twice).

    Args:
        data_dir: a folder written by :func:`paymodel.synthetic.generate`.
        engine: a DuckDB or PostgreSQL engine holding the (empty) OLTP schema.
        tables: the tables to load (default: all, in dependency order).

    Returns:
        Rows in each loaded table afterwards.
    """
    order = [t for t in OLTP.table_names if t in tables]
    dialect = dialect_name(engine)
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        for name in order:
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


def load_events_into_oltp(data_dir: Path | str, engine: sa.Engine) -> int:
    """Insert the generated ``events.jsonl`` into the OLTP ``events`` table, if it is empty.

    These are the rows ``paymodel ingest`` records for the same events; the warehouse's
    history (SCD2 customers, subscription item months) and the MRR recomputation of the
    marts' tests read them. Returns the rows inserted (0 when the table held events).
    """
    events = metadata(OLTP, dialect_name(engine)).tables["events"]
    with engine.begin() as conn:
        if _count(conn, events):
            return 0
        with (Path(data_dir) / "events.jsonl").open("rb") as f:
            rows = [from_stripe_object(orjson.loads(line))[0][1] for line in f]
        if rows:
            conn.execute(sa.insert(events), rows)
    return len(rows)
