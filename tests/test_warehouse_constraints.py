"""Generated from the model: one case per check and per foreign key of the warehouse, on both engines.

The OLTP models are covered by ``tests/test_model_constraints.py``; the warehouse's tables
live in the warehouse, so its rules are tested here the same way. Nobody writes a case by
hand: the parameters are the model's own checks and foreign keys. For each one, a valid
row of a small built warehouse (the exemplar), copied under a fresh key, is accepted by
the database, and the same copy made to break the rule is refused (PostgreSQL names the
constraint; DuckDB names the table, or the foreign key it checks first).

The star and the snowflake (``STAR``, ``SNOWFLAKE``) are views of the warehouse's tables:
their checks and foreign keys are the warehouse's (the snowflake's facts refer to
``dim_customer_snowflake`` and ``dim_price_snowflake`` by the keys the warehouse's facts
hold), so the warehouse's cases cover them; the marts declare no check or foreign key.

Cost: one tiny warehouse built per session, one schema per engine (DDL from
:func:`paymodel.model.sql.ddl`) loaded with its rows, each case one rolled-back transaction.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy as sa
import sqlglot
from filelock import FileLock
from sqlglot import exp

from paymodel.model import Model
from paymodel.model.core import Check, ForeignKey, Table
from paymodel.model.marts import MARTS
from paymodel.model.sql import ddl, metadata
from paymodel.model.warehouse import SNOWFLAKE, STAR, WAREHOUSE
from paymodel.olap import build_warehouse, resolve_pii_key
from paymodel.oltp.engines import duckdb_engine
from paymodel.oltp.schema import create_schema, dialect_name
from paymodel.synthetic import generate
from paymodel.synthetic.load import load_into_oltp

MODELS: tuple[Model, ...] = (WAREHOUSE, STAR, SNOWFLAKE, MARTS)
"""Every model whose tables live in the warehouse (``tests/test_model_constraints.py``
checks that each model is in its MODELS or in this one)."""

PHYSICAL: tuple[Model, ...] = (WAREHOUSE, MARTS)
"""The models whose tables are created; the star and the snowflake are views of WAREHOUSE."""

TABLES = {t.name: t for m in PHYSICAL for t in m.tables}
CHECKS = [(t, ck) for t in TABLES.values() for ck in t.all_checks]
FOREIGN_KEYS = [(t, fk) for t in TABLES.values() for fk in t.all_foreign_keys]
SNOWFLAKED = {"dim_customer": "dim_customer_snowflake", "dim_price": "dim_price_snowflake"}
"""The snowflake's facts refer to these dimensions' snowflaked twins, by the same key."""

def _fk_id(fk: ForeignKey) -> str:
    return f"{'_'.join(fk.columns)}->{fk.table}"


# --------------------------------------------------------------------------------------
# The model's rules in Python (the evaluator ingestion uses), to choose the breaking value


@cache
def _compiled(table: str) -> tuple[tuple[Check, Any], ...]:
    from paymodel.model.stripe import _compile

    return tuple(
        (ck, _compile(sqlglot.parse_one(ck.sql, read="postgres"))) for ck in TABLES[table].all_checks
    )


def _failing(table: str, row: Mapping[str, Any]) -> set[str]:
    return {ck.name for ck, test in _compiled(table) if test(row) is False}


def _check_columns(check: Check) -> list[str]:
    tree = sqlglot.parse_one(check.sql, read="postgres")
    return list(dict.fromkeys(c.name for c in tree.find_all(exp.Column)))


def _literals(check: Check) -> list[Any]:
    tree = sqlglot.parse_one(check.sql, read="postgres")
    return [lit.this if lit.is_string else int(lit.this) for lit in tree.find_all(exp.Literal)]


def _candidates(table: Table, column: str, check: Check, value: Any) -> list[Any]:
    """Values worth trying in ``column`` to break ``check``: around its literals, off its patterns."""
    col = table.column(column)
    out: list[Any] = []
    if col.type.json_type == "integer":
        ints = [v for v in _literals(check) if isinstance(v, int)]
        out += [v + d for v in ints for d in (-1, 1)] + [-1, 0]
    elif col.type.json_type == "string" and isinstance(value, str | None):
        out += ["zz_not_accepted", "USD", "us", "ZZ", "zzzz", ""]
    if col.nullable:
        out.append(None)
    return out


def _fresh_values(column: str, value: Any, present: set[Any]) -> Iterator[Any]:
    """Values of ``column`` no row has, shaped like ``value`` (a key, a code, a day)."""
    if isinstance(value, str):
        options: list[Any] = [f"{value}_x14", "zzz", "qqq", "xxx", "ZZ", "QQ", f"{column}_missing14"]
    elif isinstance(value, bool):
        options = []
    elif isinstance(value, int):
        options = [value + 100_000_000, 1, 987_654]
    elif isinstance(value, dt.datetime | dt.date):
        options = [value + dt.timedelta(days=40_000)]
    else:
        options = []
    yield from (v for v in options if v not in present)


# --------------------------------------------------------------------------------------
# The exemplars: a tiny warehouse, built once


def _read_warehouse(path: Path) -> dict[str, list[dict[str, Any]]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        out = {}
        for t in TABLES.values():
            cols = ", ".join(f'"{c}"' for c in t.column_names)
            pk = ", ".join(f'"{c}"' for c in t.primary_key)
            rows = con.execute(f'SELECT {cols} FROM "{t.name}" ORDER BY {pk}').fetchall()
            out[t.name] = [dict(zip(t.column_names, r, strict=True)) for r in rows]
        return out
    finally:
        con.close()


@pytest.fixture(scope="session")
def warehouse_rows(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """Rows of a warehouse built from a tiny generated dataset (seed 3: refunds, disputes).

    Built once per test run: the first xdist worker builds it under a file lock in the
    run's shared temporary directory, the others read it.
    """
    root = tmp_path_factory.getbasetemp().parent / "warehouse-constraints"
    built = root / "warehouse.duckdb"
    with FileLock(f"{root}.lock"):
        if not built.exists():
            root.mkdir(exist_ok=True)
            generate(root / "data", scale=0.006, seed=3, months=4, progress=False,
                     documents=False, events=False)  # fmt: skip
            engine = duckdb_engine(root / "oltp.duckdb")
            create_schema(engine)
            load_into_oltp(root / "data", engine)
            engine.dispose()
            build_warehouse(root / "oltp.duckdb", root / "building.duckdb",
                            pii_key=resolve_pii_key(demo=True))  # fmt: skip
            (root / "building.duckdb").rename(built)
        return _sample(_read_warehouse(built))


def _sample(rows: Mapping[str, list[dict[str, Any]]], n: int = 24) -> dict[str, list[dict[str, Any]]]:
    """The first ``n`` rows of each table, the first that sets each of its foreign keys, and
    every row they refer to (a small schema to load)."""
    wanted: dict[str, dict[tuple[str, ...], set[tuple]]] = {t.name: {} for t in WAREHOUSE.tables}
    out: dict[str, list[dict[str, Any]]] = {}
    for t in reversed(WAREHOUSE.tables):  # facts before the dimensions they refer to
        first = {
            id(next(r for r in rows[t.name] if all(r[c] is not None for c in fk.columns)))
            for fk in t.all_foreign_keys
            if any(all(r[c] is not None for c in fk.columns) for r in rows[t.name])
        }
        out[t.name] = [
            r
            for i, r in enumerate(rows[t.name])
            if i < n
            or id(r) in first
            or any(tuple(r[c] for c in cols) in keys for cols, keys in wanted[t.name].items())
        ]
        for fk in t.all_foreign_keys:
            keys = wanted[fk.table].setdefault(fk.referred, set())
            keys |= {tuple(r[c] for c in fk.columns) for r in out[t.name]}
    return {t.name: out[t.name] for t in WAREHOUSE.tables}


def _statements(script: str) -> list[str]:
    body = "\n".join(line for line in script.splitlines() if not line.startswith("--"))
    return [s.strip() for s in body.split(";\n") if s.strip().rstrip(";")]


class Schema:
    """The warehouse's DDL on one engine, loaded with the exemplars; cases roll back."""

    def __init__(self, engine: sa.Engine, rows: Mapping[str, list[dict[str, Any]]]) -> None:
        self.engine = engine
        self.dialect = dialect_name(engine)
        self.rows = rows
        md = metadata(WAREHOUSE, self.dialect)
        self.tables = dict(md.tables)
        with engine.begin() as conn:
            for statement in _statements(ddl(WAREHOUSE, self.dialect)):
                conn.exec_driver_sql(statement)
            for t in WAREHOUSE.tables:  # dimensions first: the model's order
                if rows[t.name]:
                    conn.execute(sa.insert(self.tables[t.name]), rows[t.name])

    def fk_name(self, table: str, fk: ForeignKey) -> str:
        (name,) = (
            c.name
            for c in self.tables[table].foreign_key_constraints
            if tuple(c.column_keys) == fk.columns
        )
        return str(name)

    def try_row(self, table: str, row: Mapping[str, Any]) -> sa.exc.DBAPIError | None:
        """Insert ``row`` in a transaction rolled back after; the database's refusal, if any."""
        with self.engine.connect() as conn:
            tx = conn.begin()
            try:
                conn.execute(sa.insert(self.tables[table]), [dict(row)])
            except sa.exc.DBAPIError as error:
                return error
            finally:
                tx.rollback()
        return None


@pytest.fixture(scope="session", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def schema(
    request: pytest.FixtureRequest,
    warehouse_rows: dict[str, list[dict[str, Any]]],
    new_database: Callable[[str], sa.Engine],
) -> Schema:
    return Schema(new_database(request.param), warehouse_rows)


# --------------------------------------------------------------------------------------
# Building the cases


def valid_copy(rows: Mapping[str, list[dict[str, Any]]], table: str, keep: tuple[str, ...] = ()) -> dict:
    """An exemplar of ``table`` under a key no row has (its unique columns fresh too).

    The row has every column of ``keep`` set; a key column that is also a foreign key
    is never the one changed, so every reference of the copy still resolves.
    """
    t = TABLES[table]
    with_keep = [r for r in rows[table] if all(r[c] is not None for c in keep)]
    assert with_keep, f"{table}: no exemplar with {keep} set"
    row = dict(with_keep[0])
    referring = {c for fk in t.all_foreign_keys for c in fk.columns}
    for key in (t.primary_key, *t.unique):
        free = [c for c in key if c not in referring and c not in keep]
        assert free, f"{table}: every column of the key {key} is a foreign key"
        column = free[0]
        present = {r[column] for r in rows[table]}
        row[column] = next(
            v for v in _fresh_values(column, row[column], present) if not _failing(table, {**row, column: v})
        )
    return row


def bad_row(rows: Mapping[str, list[dict[str, Any]]], table: str, check: Check) -> tuple[dict, dict]:
    """A valid copy, and it with one column of ``check`` changed to break ``check`` alone."""
    t = TABLES[table]
    for exemplar in rows[table][:24]:
        good = valid_copy({**rows, table: [exemplar, *rows[table]]}, table)
        for column in _check_columns(check):
            for value in _candidates(t, column, check, good[column]):
                candidate = {**good, column: value}
                if value is None and not t.column(column).nullable:
                    continue
                if _failing(table, candidate) == {check.name}:
                    return good, candidate
    raise AssertionError(f"{check.name}: no one-column change breaks it alone ({check.sql})")


def orphan_row(rows: Mapping[str, list[dict[str, Any]]], table: str, fk: ForeignKey) -> tuple[dict, dict]:
    """A valid copy, and it with ``fk`` naming a parent that does not exist, every check kept."""
    (column,), (referred,) = fk.columns, fk.referred
    good = valid_copy(rows, table, keep=fk.columns)
    present = {r[referred] for r in rows[fk.table]}
    for value in _fresh_values(column, good[column], present):
        if not _failing(table, {**good, column: value}):
            return good, {**good, column: value}
    raise AssertionError(f"{table}.{column}: no missing value keeps the row valid")


# --------------------------------------------------------------------------------------
# The tests


def test_the_star_and_the_snowflake_are_views_of_the_warehouse() -> None:
    """Their rules are the warehouse's: the warehouse's cases cover them."""
    physical = {t.name: t for t in WAREHOUSE.tables}
    for view in (STAR, SNOWFLAKE):
        for t in view.tables:
            assert t.name in physical, f"{view.name}.{t.name} is no warehouse table"
            assert set(t.all_checks) <= set(physical[t.name].all_checks), (view.name, t.name)
            for fk in t.all_foreign_keys:
                twin = ForeignKey(
                    fk.columns,
                    next((d for d, s in SNOWFLAKED.items() if s == fk.table), fk.table),
                    fk.referred,
                )
                held = {(f.columns, f.table, f.referred) for f in physical[t.name].all_foreign_keys}
                assert (fk.columns, fk.table, fk.referred) in held or (
                    (twin.columns, twin.table, twin.referred) in held
                ), (view.name, t.name, fk)
    for dim, twin in SNOWFLAKED.items():
        assert physical[dim].primary_key == physical[twin].primary_key


def test_the_marts_declare_no_check_or_foreign_key() -> None:
    """Should a mart declare one, this fails until its cases are generated here as well."""
    assert [ck.name for t in MARTS.tables for ck in t.all_checks] == []
    assert [_fk_id(fk) for t in MARTS.tables for fk in t.all_foreign_keys] == []


def test_every_table_has_exemplars(warehouse_rows: dict[str, list[dict[str, Any]]]) -> None:
    for t in WAREHOUSE.tables:
        assert warehouse_rows[t.name], f"{t.name}: the tiny warehouse has no row to start from"
        assert not _failing(t.name, warehouse_rows[t.name][0]), t.name
    assert len(CHECKS) >= 72
    assert len(FOREIGN_KEYS) >= 54


@pytest.mark.parametrize(("table", "name"), [pytest.param(t.name, ck.name, id=ck.name) for t, ck in CHECKS])
def test_the_warehouse_refuses_a_row_breaking_the_check(schema: Schema, table: str, name: str) -> None:
    check = next(ck for ck in TABLES[table].all_checks if ck.name == name)
    good, bad = bad_row(schema.rows, table, check)
    assert schema.try_row(table, good) is None, f"{name}: the {schema.dialect} warehouse refused {good}"
    error = schema.try_row(table, bad)
    assert error is not None, f"{name}: the {schema.dialect} warehouse accepted {bad}"
    if schema.dialect == "postgresql":
        assert error.orig.diag.constraint_name == name, (error.orig.diag.constraint_name, name)
    else:
        message = str(error)
        # DuckDB checks foreign keys first: a code off the ISO pattern is no currency either.
        orphaned = any(
            bad[c] is not None and bad[c] not in {r[ref] for r in schema.rows[fk.table]}
            for fk in TABLES[table].all_foreign_keys
            for c, ref in zip(fk.columns, fk.referred, strict=True)
        )
        assert f"CHECK constraint failed on table {table}" in message or (
            orphaned and "foreign key constraint" in message.lower()
        ), message


@pytest.mark.parametrize(
    ("table", "columns"),
    [pytest.param(t.name, fk.columns, id=f"{t.name}.{_fk_id(fk)}") for t, fk in FOREIGN_KEYS],
)
def test_the_warehouse_refuses_an_orphan(schema: Schema, table: str, columns: tuple[str, ...]) -> None:
    fk = next(fk for fk in TABLES[table].all_foreign_keys if fk.columns == columns)
    assert fk.dialects is None, f"{table}.{columns}: a warehouse key on some engines only"
    good, orphan = orphan_row(schema.rows, table, fk)
    assert schema.try_row(table, good) is None, f"{table}.{columns}: refused {good}"
    error = schema.try_row(table, orphan)
    assert error is not None, f"{table}.{columns}: the {schema.dialect} warehouse accepted {orphan}"
    if schema.dialect == "postgresql":
        assert error.orig.diag.constraint_name == schema.fk_name(table, fk)
    else:
        assert "foreign key constraint" in str(error).lower(), str(error)


# --------------------------------------------------------------------------------------
# No rule disappears unnoticed

INVENTORY = Path(__file__).parent / "data" / "warehouse_constraints.txt"
"""Every check and foreign key of the warehouse and the marts when last reviewed.

Written after a review by ``python tests/test_warehouse_constraints.py >
tests/data/warehouse_constraints.txt``, never by the suite (see ``constraints.txt``).
"""


def _rule_lines(tables: list[Table]) -> list[str]:
    """The inventory's lines, written as ``tests/test_model_constraints.py`` writes them."""
    path = Path(__file__).with_name("test_model_constraints.py")
    spec = importlib.util.spec_from_file_location("_model_constraints", path)
    assert spec is not None, path
    assert spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.rule_lines(tables))


def inventory() -> list[str]:
    """Per physical model, a header line, then its checks and foreign keys, sorted."""
    out = []
    for model in PHYSICAL:
        lines = _rule_lines(list(model.tables))
        out += [f"# {model.name}: {len(lines)} rules", *lines]
    return out


def test_no_reviewed_warehouse_rule_was_deleted_or_changed() -> None:
    reviewed = [line for line in INVENTORY.read_text().splitlines() if line.strip()]
    current = set(inventory())
    gone = [line for line in reviewed if line not in current and not line.startswith("# ")]
    assert not gone, (
        "rules of the reviewed inventory missing from the model (deleted, weakened or "
        f"moved to fewer engines); if on purpose, update {INVENTORY.name}:\n" + "\n".join(gone)
    )
    assert [m.name for m in PHYSICAL] == [line[2:].split(":")[0] for line in reviewed if line.startswith("# ")]


if __name__ == "__main__":
    print("\n".join(inventory()))
