"""SQL renderings of a model: SQLAlchemy Core tables and DDL per engine.

The model's check constraints are written in PostgreSQL's dialect; sqlglot
transpiles them for each engine. SQLAlchemy compiles the ``CREATE TABLE``
statements, so quoting and type names come from a library, not from string glue.

Example:
    >>> from paymodel.model.oltp import OLTP
    >>> md = metadata(OLTP, "duckdb")
    >>> "customers" in md.tables
    True
    >>> "REGEXP_MATCHES" in ddl(OLTP, "duckdb")
    True
"""

from __future__ import annotations

from functools import cache

import sqlalchemy as sa
import sqlglot
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import CreateTable, SetColumnComment, SetTableComment

from paymodel.model.core import LogicalType, Model, Table

__all__ = [
    "DIALECTS",
    "create_table_statement",
    "ddl",
    "dialect",
    "metadata",
    "sqlalchemy_type",
    "statements",
    "table_statements",
]

DIALECTS = ("duckdb", "postgresql")
"""Engines the model renders to."""

_SQLGLOT = {"duckdb": "duckdb", "postgresql": "postgres"}


@cache
def dialect(name: str) -> Dialect:
    """The SQLAlchemy dialect object for ``name`` (``duckdb`` or ``postgresql``)."""
    if name == "postgresql":
        return postgresql.dialect(paramstyle="named")
    if name == "duckdb":
        from duckdb_engine import Dialect as DuckDBDialect

        return DuckDBDialect(paramstyle="named")
    raise ValueError(f"unknown dialect {name!r}; expected one of {DIALECTS}")


def sqlalchemy_type(t: LogicalType) -> sa.types.TypeEngine:
    """The SQLAlchemy type of a logical type (JSON becomes JSONB on PostgreSQL)."""
    if t.sql == "text":
        return sa.Text()
    if t.sql == "bigint":
        return sa.BigInteger()
    if t.sql == "integer":
        return sa.Integer()
    if t.sql == "smallint":
        return sa.SmallInteger()
    if t.sql == "boolean":
        return sa.Boolean()
    if t.sql == "timestamptz":
        return sa.TIMESTAMP(timezone=True)
    if t.sql == "date":
        return sa.Date()
    if t.sql == "json":
        # none_as_null: Python None is SQL NULL. SQLAlchemy's default stores it as the JSON
        # value null, which IS NOT NULL: `metadata IS NULL` missed empty metadata, and a
        # check such as ck_idempotency_keys_finished judged the row unlike ingestion's
        # Python checks (found by the generated constraint tests of issue 14).
        return sa.JSON(none_as_null=True).with_variant(
            postgresql.JSONB(none_as_null=True), "postgresql"
        )
    if t.sql == "decimal":
        return sa.Numeric(t.precision, t.scale)
    raise ValueError(f"logical type {t.name}: no SQL type for {t.sql!r}")


def check_sql(sql: str, dialect_name: str) -> str:
    """A check expression, written for PostgreSQL, in ``dialect_name``'s SQL."""
    return sqlglot.transpile(sql, read="postgres", write=_SQLGLOT[dialect_name])[0]


def _table(
    table: Table,
    md: sa.MetaData,
    dialect_name: str,
    implied: tuple[tuple[tuple[str, ...], tuple[str, ...] | None], ...] = (),
) -> sa.Table:
    cols = [
        # autoincrement=False: an integer key is a value of the model (a date key), never SERIAL.
        sa.Column(
            c.name,
            sqlalchemy_type(c.type),
            nullable=c.nullable,
            comment=c.description,
            autoincrement=False,
        )
        for c in table.columns
    ]
    constraints: list[sa.schema.Constraint] = [
        sa.PrimaryKeyConstraint(*table.primary_key, name=f"pk_{table.name}")
    ]
    for key in table.unique_keys:
        constraints.append(sa.UniqueConstraint(*key, name=f"uq_{table.name}_{'_'.join(key)}"))
    for key, dialects in implied:  # the targets of other tables' agreement keys
        if dialects is None or dialect_name in dialects:
            constraints.append(sa.UniqueConstraint(*key, name=f"uq_{table.name}_{'_'.join(key)}"))
    for fk in table.all_foreign_keys:
        if fk.dialects is not None and dialect_name not in fk.dialects:
            continue
        constraints.append(
            sa.ForeignKeyConstraint(
                list(fk.columns),
                [f"{fk.table}.{c}" for c in fk.referred],
                name=f"fk_{table.name}_{'_'.join(fk.columns)}",
            )
        )
    for ck in table.all_checks:
        if ck.dialects is not None and dialect_name not in ck.dialects:
            continue
        constraints.append(sa.CheckConstraint(check_sql(ck.sql, dialect_name), name=ck.name))
    return sa.Table(table.name, md, *cols, *constraints, comment=table.grain)


def metadata(model: Model, dialect_name: str = "postgresql") -> sa.MetaData:
    """SQLAlchemy Core tables of the model, with every key and check.

    Check constraints are rendered for ``dialect_name``; everything else is the same
    for every engine. Use it as any SQLAlchemy metadata:
    ``metadata(OLTP).create_all(engine)``.
    """
    md = sa.MetaData()
    for table in model.tables:
        _table(table, md, dialect_name, model.implied_unique_keys(table.name))
    return md


def table_statements(model: Model, dialect_name: str) -> dict[str, list[str]]:
    """Per table, parents first: its ``CREATE TABLE``, then ``COMMENT ON`` its grain and columns.

    The comments carry the data dictionary into the database, where SQL clients show it.
    Statements have no trailing ';'. Compiled once per model and dialect.
    """
    return {table: list(stmts) for table, stmts in _compiled(model, dialect_name)}


@cache
def _compiled(model: Model, dialect_name: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    md = metadata(model, dialect_name)
    d = dialect(dialect_name)
    out = []
    for table in model.tables:
        sa_table = md.tables[table.name]
        elements = [
            CreateTable(sa_table),
            SetTableComment(sa_table),
            *(SetColumnComment(column) for column in sa_table.columns),
        ]
        stmts = tuple(
            "\n".join(line.rstrip() for line in str(e.compile(dialect=d)).strip().splitlines())
            for e in elements
        )
        out.append((table.name, stmts))
    return tuple(out)


def statements(model: Model, dialect_name: str) -> list[str]:
    """Every statement of the model's DDL, in order (see :func:`table_statements`)."""
    return [s for stmts in table_statements(model, dialect_name).values() for s in stmts]


def ddl(model: Model, dialect_name: str) -> str:
    """The model's DDL for one engine, as one script (deterministic)."""
    head = (
        f"-- Generated by `paymodel schemas` from paymodel.model ({model.name}); do not edit.\n"
        f"-- Engine: {dialect_name}. {model.description}\n"
    )
    body = "\n\n".join(
        f"-- {t.name}: {t.grain}\n" + ";\n".join(stmts) + ";"
        for t, stmts in zip(
            model.tables, table_statements(model, dialect_name).values(), strict=True
        )
    )
    return head + "\n" + body + "\n"


def create_table_statement(ddl_text: str, table: str) -> str:
    """The ``CREATE TABLE`` statement of ``table`` in a DDL file such as ``schemas/oltp.duckdb.sql``.

    Example:
        >>> from paymodel.model.oltp import OLTP
        >>> statement = create_table_statement(ddl(OLTP, "duckdb"), "currencies")
        >>> statement.splitlines()[0], statement.splitlines()[-1]
        ('CREATE TABLE currencies (', ');')
    """
    import re

    match = re.search(rf"^CREATE TABLE {re.escape(table)} \(\n.*?^\);$", ddl_text, re.M | re.S)
    if match is None:
        raise KeyError(f"no CREATE TABLE {table} in this DDL")
    return match.group(0)
