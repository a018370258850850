"""Read back what the flows wrote: whole-database snapshots, row counts, event trails.

Used by the tests and the notebook to show each flow's rows and to prove that a refused
operation wrote nothing (the database state before equals the state after).

Example:
    >>> from paymodel.oltp.engines import duckdb_engine
    >>> from paymodel.oltp.schema import create_schema
    >>> engine = duckdb_engine(); create_schema(engine)
    >>> count_rows(engine, "charges")
    0
    >>> database_state(engine) == database_state(engine)
    True
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from paymodel.model.oltp import OLTP
from paymodel.oltp.flows._tx import tables_for
from paymodel.oltp.schema import dialect_name

__all__ = ["count_rows", "database_state", "event_types", "rows"]


def _t(engine: sa.Engine, table: str) -> sa.Table:
    return tables_for(dialect_name(engine))[table]


def database_state(engine: sa.Engine, *, skip: tuple[str, ...] = ()) -> dict[str, list[tuple]]:
    """Every row of every table of the model, in key order; equal states mean nothing changed."""
    state = {}
    with engine.connect() as conn:
        for table in OLTP.tables:
            if table.name in skip:
                continue
            t = _t(engine, table.name)
            result = conn.execute(sa.select(t).order_by(*t.primary_key.columns))
            state[table.name] = [tuple(r) for r in result]
    return state


def rows(engine: sa.Engine, table: str, **equals: Any) -> list[dict[str, Any]]:
    """Rows of ``table`` whose columns equal ``equals``, in key order."""
    t = _t(engine, table)
    stmt = sa.select(t).where(*(t.c[k] == v for k, v in equals.items()))
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt.order_by(*t.primary_key.columns)).mappings()]


def count_rows(engine: sa.Engine, table: str, **equals: Any) -> int:
    """How many rows of ``table`` have columns equal to ``equals``."""
    t = _t(engine, table)
    stmt = sa.select(sa.func.count()).select_from(t)
    stmt = stmt.where(*(t.c[k] == v for k, v in equals.items()))
    with engine.connect() as conn:
        return conn.execute(stmt).scalar_one()


def event_types(engine: sa.Engine, object_id: str) -> list[str]:
    """Types of the events about ``object_id``, oldest first (ties: in id order)."""
    t = _t(engine, "events")
    stmt = sa.select(t.c.type).where(t.c.object_id == object_id).order_by(t.c.created, t.c.id)
    with engine.connect() as conn:
        return list(conn.execute(stmt).scalars())
