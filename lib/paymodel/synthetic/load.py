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

import sqlalchemy as sa

from paymodel.model.oltp import OLTP
from paymodel.oltp.backend import backend
from paymodel.synthetic import TABLES

__all__ = ["load_into_oltp", "parquet_files"]


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
    bulk = backend(engine)
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
            bulk.bulk_load(conn, name, cols, files)
            counts[name] = _count(conn, target)
    return counts
