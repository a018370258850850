"""Create the OLTP schema on an engine, from the same DDL that ``schemas/`` holds.

Example:
    >>> from paymodel.oltp.engines import duckdb_engine
    >>> engine = duckdb_engine()
    >>> create_schema(engine)
    >>> import sqlalchemy as sa
    >>> with engine.connect() as c:
    ...     c.execute(sa.text("select count(*) from currencies")).scalar() > 10
    True
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from paymodel.model.core import Model
from paymodel.model.oltp import OLTP
from paymodel.model.reference import currency_rows
from paymodel.model.sql import metadata, table_statements
from paymodel.oltp.engines import connection

__all__ = [
    "create_schema",
    "create_tables",
    "dialect_name",
    "oltp_tables",
    "primary_keys",
    "seed_reference_data",
]


def dialect_name(engine: sa.Engine | sa.Connection) -> str:
    """``duckdb`` or ``postgresql``: the model's name for the engine's dialect."""
    name = engine.dialect.name
    if name not in ("duckdb", "postgresql"):
        raise ValueError(f"engine {engine!r}: unsupported dialect {name!r}")
    return name


def oltp_tables(engine: sa.Engine | sa.Connection, model: Model = OLTP) -> dict[str, sa.Table]:
    """SQLAlchemy tables of the model, with checks rendered for ``engine``'s dialect."""
    return dict(metadata(model, dialect_name(engine)).tables)


def seed_reference_data(conn: sa.Connection) -> None:
    """Insert the reference rows (currencies) that every other table needs."""
    conn.execute(sa.insert(oltp_tables(conn)["currencies"]), currency_rows())


def create_tables(
    conn: sa.Connection, names: Iterable[str] | None = None, *, model: Model = OLTP
) -> None:
    """Run the generated DDL of the tables ``names`` (default: all), parents first.

    Each table gets its ``CREATE TABLE`` and the ``COMMENT ON`` statements that carry its
    grain and column descriptions. The DBAPI cursor runs the text verbatim: without
    parameters, no driver rewrites the ``%`` of a modulo check into a placeholder.
    """
    wanted = set(model.table_names if names is None else names)
    unknown = wanted - set(model.table_names)
    if unknown:
        raise KeyError(f"model {model.name} has no table(s) {sorted(unknown)}")
    cursor = conn.connection.cursor()
    for table, stmts in table_statements(model, dialect_name(conn)).items():
        if table in wanted:
            for statement in stmts:
                cursor.execute(statement)


def create_schema(engine: sa.Engine, *, model: Model = OLTP, seed: bool = True) -> None:
    """Create every table of ``model`` on ``engine`` in one transaction.

    Runs the generated DDL statements (the ones in ``schemas/``), parents first,
    then inserts the reference data unless ``seed`` is false. Fails if a table
    already exists.
    """
    with engine.begin() as conn:
        create_tables(conn, model=model)
        if seed and "currencies" in model.table_names:
            seed_reference_data(conn)


_PRIMARY_KEYS = sa.text(
    """
    SELECT tc.table_name, kcu.column_name
    FROM information_schema.table_constraints AS tc
    JOIN information_schema.key_column_usage AS kcu
      ON kcu.constraint_name = tc.constraint_name
     AND kcu.table_name = tc.table_name
     AND kcu.table_schema = tc.table_schema
    WHERE tc.constraint_type = 'PRIMARY KEY'
      AND tc.table_schema = current_schema()
    ORDER BY tc.table_name, kcu.ordinal_position
    """
)


def primary_keys(engine: sa.Engine | sa.Connection) -> dict[str, tuple[str, ...]]:
    """Primary-key columns of every table, read from the engine's information_schema.

    Portable across DuckDB and PostgreSQL (SQLAlchemy's inspector cannot reflect
    keys through duckdb-engine). DuckDB names constraints itself and ignores the
    names in the DDL, so only columns are compared, never names.
    """
    keys: dict[str, tuple[str, ...]] = {}
    with connection(engine) as conn:
        for table, column in conn.execute(_PRIMARY_KEYS):
            keys[table] = (*keys.get(table, ()), column)
    return keys
