"""Generated from the model: one test per check and per foreign key of every model, on both engines.

Nobody writes a case by hand: the parameters are the model's own checks and foreign keys,
so a constraint added to the model is tested the next time the suite runs. For each one:

* **the database refuses a row that breaks it** (PostgreSQL names the constraint; DuckDB
  names the table), and accepts the row it was made from. A rule the model declares on
  PostgreSQL only (``Check.dialects``, ``ForeignKey.dialects``) is accepted by DuckDB, and
  the code that enforces it there must refuse it: ingestion's row checks for a check, the
  pending area for a reference.
* **ingestion's row checks refuse it by name**: the bad row, rendered as the Stripe object
  that carries it, is quarantined with the constraint's name in its error; an orphan child
  waits in ``ingest_pending`` for its parent (or, when the parent is reference data that
  never arrives, is quarantined as an ``unknown_reference``).

The breaking row comes from the check itself: its SQL is parsed, candidate values are
taken from its literals, the column's declared values and bounds, and the row's other
columns, and the smallest change (one column, then two, then three) that makes this check
false while every other rule of the table still holds is the case. The rows it starts
from are the generator's (one tiny dataset per worker); tables the generator does not
write get a row built from their column declarations, repaired by the same search.

Cost: one schema per engine per worker, each case one transaction rolled back (its
parents, then the row), so the few hundred cases run in seconds.
"""

from __future__ import annotations

import datetime as dt
import importlib
import itertools
import json
import pkgutil
from collections.abc import Iterator, Mapping
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
import sqlglot
from sqlglot import exp

import paymodel.model as model_package
from paymodel.model import OLTP, Model
from paymodel.model.core import (
    AMOUNT,
    BIGINT,
    BOOLEAN,
    COUNTRY,
    CURRENCY,
    DATE,
    ID,
    INTEGER,
    JSON,
    RATE,
    SIGNED_AMOUNT,
    SMALLINT,
    TEXT,
    TIMESTAMP,
    Check,
    Column,
    ForeignKey,
    Table,
)
from paymodel.model.sql import metadata
from paymodel.model.stripe import from_stripe_object, row_problems, to_stripe_object
from paymodel.oltp.ingest import ingest
from paymodel.oltp.schema import create_schema, dialect_name
from paymodel.synthetic import generate
from paymodel.synthetic.load import load_into_oltp, parquet_files

MODELS: tuple[Model, ...] = (OLTP,)
"""Every model whose tables live in an OLTP engine (a test finds any model left out)."""

ELSEWHERE: dict[str, str] = {
    "warehouse": "the star schema, built by paymodel.olap: tests/test_olap.py",
    "warehouse_star": "a view of the warehouse model (its diagram)",
    "warehouse_snowflake": "a view of the warehouse model (its diagram)",
    "marts": "the marts, built from the star: tests/test_marts.py",
}
"""Models whose tables do not live in the OLTP engine, and where they are tested."""

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def _tables() -> dict[str, Table]:
    return {t.name: t for m in MODELS for t in m.tables}


TABLES = _tables()


def _owner(table: Table) -> str | None:
    """The Stripe object's table a row without an object of its own belongs to (an address)."""
    if table.stripe_object is not None:
        return None
    for fk in table.all_foreign_keys:
        parent = TABLES[fk.table]
        if parent.stripe_object is not None and set(fk.columns) <= set(table.primary_key):
            return fk.table
    return None


def _ingested(table: Table) -> bool:
    """Whether ingestion receives rows of ``table`` (as an object, or inside its owner's)."""
    return table.stripe_object is not None or _owner(table) is not None


CHECKS = [(t, ck) for t in TABLES.values() for ck in t.all_checks]
FOREIGN_KEYS = [(t, fk) for t in TABLES.values() for fk in t.all_foreign_keys]


def _fk_id(fk: ForeignKey) -> str:
    return f"{'_'.join(fk.columns)}->{fk.table}"


def _check_params() -> list[Any]:
    return [pytest.param(t.name, ck.name, id=ck.name) for t, ck in CHECKS]


def _fk_params(only_ingested: bool = False) -> list[Any]:
    return [
        pytest.param(t.name, fk.columns, id=f"{t.name}.{_fk_id(fk)}")
        for t, fk in FOREIGN_KEYS
        if not only_ingested or (_ingested(t) and fk.table != _owner(t))
    ]


def _check(table: str, name: str) -> Check:
    return next(ck for ck in TABLES[table].all_checks if ck.name == name)


def _fk(table: str, columns: tuple[str, ...]) -> ForeignKey:
    return next(fk for fk in TABLES[table].all_foreign_keys if fk.columns == tuple(columns))


# --------------------------------------------------------------------------------------
# The model's rules in Python (the evaluator ingestion uses), per check


@cache
def _compiled(table: str) -> tuple[tuple[Check, Any], ...]:
    from paymodel.model.stripe import _compile

    return tuple(
        (ck, _compile(sqlglot.parse_one(ck.sql, read="postgres")))
        for ck in TABLES[table].all_checks
    )


def _valid(table: str, row: Mapping[str, Any]) -> bool:
    return not row_problems(table, row)


def _only_broken(table: str, row: Mapping[str, Any], check: Check) -> bool:
    """``row`` has well-typed columns, breaks ``check``, and keeps every other check."""
    for ck, test in _compiled(table):  # the cheap part first: the search calls this a lot
        if (test(row) is False) != (ck.name == check.name):
            return False
    return row_problems(table, row) == [f"{check.description} ({check.name})"]


@cache
def _literals(table: str) -> dict[str, list[Any]]:
    """Per column, the literals its table's checks compare it with (``status = 'paid'``...)."""
    out: dict[str, list[Any]] = {}
    for ck in TABLES[table].all_checks:
        tree = sqlglot.parse_one(ck.sql, read="postgres")
        columns = [c.name for c in tree.find_all(exp.Column)]
        values: list[Any] = []
        for lit in tree.find_all(exp.Literal):
            if lit.is_string:
                values.append(lit.this)
            else:
                values.append(Decimal(lit.this) if "." in lit.this else int(lit.this))
        for c in columns:
            out.setdefault(c, []).extend(values)
    return out


def _check_columns(check: Check) -> list[str]:
    tree = sqlglot.parse_one(check.sql, read="postgres")
    return list(dict.fromkeys(c.name for c in tree.find_all(exp.Column)))


def _candidates(
    table: Table, column: Column, row: Mapping[str, Any], parents: Mapping[str, list[Any]]
) -> list[Any]:
    """Values worth trying in ``column``: from the checks, the declaration and the row."""
    name, kind, value = column.name, column.type, row.get(column.name)
    out: list[Any] = [None] if column.nullable else []
    literals = _literals(table.name).get(name, [])
    same_kind = [
        row[c.name] for c in table.columns if c.type.json_type == kind.json_type and c.name != name
    ]
    if name in parents:  # a foreign key column: keys that exist first
        out += parents[name][:6]
    if kind in (AMOUNT, SIGNED_AMOUNT, BIGINT, INTEGER, SMALLINT):
        base = [v for v in (value, column.minimum, column.maximum, *literals) if isinstance(v, int)]
        base += [v for v in same_kind if isinstance(v, int) and not isinstance(v, bool)]
        out += [b + d for b in base for d in (-1, 0, 1)] + [0, 1, -1, 10]
    elif kind is RATE:
        base = [Decimal(v) for v in literals if isinstance(v, int | Decimal)]
        out += [b + d for b in base for d in (Decimal(-1), 0, Decimal(1))] + [Decimal(0), Decimal(-1)]
    elif kind is BOOLEAN:
        out += [True, False]
    elif kind is TIMESTAMP:
        base = [v for v in (value, *same_kind) if isinstance(v, dt.datetime)] or [T0]
        out += [b + dt.timedelta(seconds=d) for b in base for d in (-86_400, -1, 0, 1, 86_400)]
    elif kind is DATE:
        base = value if isinstance(value, dt.date) else T0.date()
        out += [base + dt.timedelta(days=d) for d in (-1, 1)]
    elif kind is JSON:
        out += [{}]
    else:  # text-like
        accepted = list(column.accepted or ())
        texts = [v for v in literals if isinstance(v, str)]
        out += [*accepted, "zz_not_accepted", "ZZ", "USD", "12345", "x", "", "k" * 256, *texts]
        if kind in (ID, TEXT) and isinstance(value, str):
            out.append(value + "_x")
        if kind is CURRENCY:
            out += ["usd", "kwd", "jpy", "USD"]
        if kind is COUNTRY:
            out += ["US", "us"]
    seen, unique = set(), []
    for v in out:
        k = (type(v).__name__, repr(v))
        if k not in seen:
            seen.add(k)
            unique.append(v)
    return unique


def _search(
    table: Table,
    rows: list[dict[str, Any]],
    columns: list[str],
    parents: Mapping[str, list[Any]],
    goal: Any,
    max_changes: int = 3,
) -> dict[str, Any] | None:
    """The first row (of ``rows``) changed in the fewest ``columns`` that satisfies ``goal``."""
    for k in range(0, max_changes + 1):
        for row in rows:
            options = {c: _candidates(table, table.column(c), row, parents) for c in columns}
            for combo in itertools.combinations(columns, k):
                for values in itertools.product(*(options[c] for c in combo)):
                    candidate = {**row, **dict(zip(combo, values, strict=True))}
                    if goal(candidate):
                        return candidate
    return None


# --------------------------------------------------------------------------------------
# Rows to start from: the generator's, or built from the declarations


def _plain(column: Column, value: Any) -> Any:
    if value is None:
        return None
    if column.type is JSON:
        return json.loads(value) if isinstance(value, str) else value
    if column.type is TIMESTAMP and isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _declared_row(table: Table, parents: Mapping[str, list[Any]]) -> dict[str, Any] | None:
    """A row of ``table`` from its column declarations alone, repaired until it is valid."""
    row: dict[str, Any] = {}
    for c in table.columns:
        if c.name in parents:
            row[c.name] = parents[c.name][0] if parents[c.name] else None
        elif c.nullable:
            row[c.name] = None
        elif c.accepted:
            row[c.name] = c.accepted[0]
        elif c.type is CURRENCY:
            row[c.name] = "usd"
        elif c.type is COUNTRY:
            row[c.name] = "US"
        elif c.type in (AMOUNT, SIGNED_AMOUNT, BIGINT, INTEGER, SMALLINT):
            row[c.name] = c.minimum if c.minimum is not None else 1
        elif c.type is RATE:
            row[c.name] = Decimal(1)
        elif c.type is BOOLEAN:
            row[c.name] = False
        elif c.type is TIMESTAMP:
            row[c.name] = T0
        elif c.type is DATE:
            row[c.name] = T0.date()
        elif c.type is JSON:
            row[c.name] = {}
        else:
            row[c.name] = f"{table.id_prefix or ''}{table.name}_{c.name}_1"
    if _valid(table.name, row):
        return row
    broken = {c for ck in _failing(table.name, row) for c in _check_columns(ck)}
    return _search(table, [row], sorted(broken), parents, lambda r: _valid(table.name, r))


def _failing(table: str, row: Mapping[str, Any]) -> list[Check]:
    return [ck for ck, test in _compiled(table) if test(row) is False]


_OPERATIONAL = {
    "idempotency_keys": [
        {"idempotency_key": "key-1", "operation": "refund_charge", "request_fingerprint": "f" * 64,
         "request_params": {"charge": "ch_1"}, "recovery_point": "finished", "locked_at": None,
         "locked_by": None, "response_status": 200, "response_body": {"id": "re_1"},
         "created": T0, "last_run_at": T0},
        {"idempotency_key": "key-2", "operation": "refund_charge", "request_fingerprint": "e" * 64,
         "request_params": {"charge": "ch_1"}, "recovery_point": "started", "locked_at": T0,
         "locked_by": "req_1", "response_status": None, "response_body": None,
         "created": T0, "last_run_at": T0},
    ],
}  # fmt: skip
"""Rows of a state the declarations alone do not reach (a request in flight holds a lock)."""


class Exemplars:
    """Valid rows of every table (the generator's, else built), and lookups over them."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.generated: set[str] = set()
        for table in (t for m in MODELS for t in m.tables):
            files = parquet_files(data_dir, table.name)
            if files:
                rows = [r for f in files for r in pq.read_table(f).to_pylist()]
                self.rows[table.name] = [
                    {c.name: _plain(c, r[c.name]) for c in table.columns} for r in rows
                ]
                self.generated.add(table.name)
        events = (data_dir / "events.jsonl").read_text().splitlines()[:200]
        self.rows["events"] = [from_stripe_object(json.loads(e))[0][1] for e in events]
        self.generated.add("events")
        for table in (t for m in MODELS for t in m.tables):
            if table.name not in self.rows:
                built = [dict(r) for r in _OPERATIONAL.get(table.name, [])]
                declared = _declared_row(table, self.parent_keys(table))
                self.rows[table.name] = built + ([declared] if declared else [])

    def diverse(self, table: str, n: int = 24) -> list[dict[str, Any]]:
        """Up to ``n`` rows, one per combination of statuses and flags first."""
        t = TABLES[table]
        kinds = [c.name for c in t.columns if c.accepted or c.type is BOOLEAN]
        first: dict[tuple, dict[str, Any]] = {}
        for r in self.rows[table]:
            first.setdefault(tuple(r[c] is None or r[c] for c in kinds), r)
        picked = list(first.values())[:n]
        return picked + [r for r in self.rows[table][: n - len(picked)] if r not in picked]

    def parent_keys(self, table: Table) -> dict[str, list[Any]]:
        """Existing parent values per single-column foreign key column of ``table``."""
        out: dict[str, list[Any]] = {}
        for fk in table.all_foreign_keys:
            if len(fk.columns) == 1:
                (col,), (ref,) = fk.columns, fk.referred
                out[col] = list(dict.fromkeys(r[ref] for r in self.rows.get(fk.table, [])))
        return out

    def find(self, table: str, columns: tuple[str, ...], values: tuple[Any, ...]) -> dict | None:
        for r in self.rows.get(table, []):
            if tuple(r[c] for c in columns) == values:
                return r
        return None

    def ancestors(self, table: str, row: Mapping[str, Any], skip: ForeignKey | None = None) -> list:
        """``(table, row)`` of every parent ``row`` needs, recursively, parents first."""
        found: dict[tuple[str, tuple], dict[str, Any]] = {}

        def visit(name: str, r: Mapping[str, Any], skipped: ForeignKey | None) -> None:
            for fk in TABLES[name].all_foreign_keys:
                if fk == skipped:
                    continue
                values = tuple(r[c] for c in fk.columns)
                if any(v is None for v in values):
                    continue
                parent = self.find(fk.table, fk.referred, values)
                if parent is None:  # a bad value in a checked column: the check must say so
                    continue
                key = (fk.table, tuple(parent[c] for c in TABLES[fk.table].primary_key))
                if key not in found:
                    visit(fk.table, parent, None)
                    found[key] = parent

        visit(table, row, skip)
        order = {t: i for i, t in enumerate(TABLES)}
        return sorted(((t, r) for (t, _), r in found.items()), key=lambda tr: order[tr[0]])


@pytest.fixture(scope="session")
def exemplars(tmp_path_factory: pytest.TempPathFactory) -> Exemplars:
    out = tmp_path_factory.mktemp("exemplars")
    generate(out, scale=0.01, seed=3, months=6, progress=False, documents=False)
    return Exemplars(out)


# --------------------------------------------------------------------------------------
# One schema per engine per worker; each case is rolled back


class Schema:
    """An OLTP schema on one engine, with what ``create_schema`` seeded (currencies)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.dialect = dialect_name(engine)
        self.tables = dict(metadata(OLTP, self.dialect).tables)
        self.seeded: set[tuple[str, tuple]] = set()
        with engine.connect() as conn:
            for name, t in self.tables.items():
                pk = [t.c[c] for c in TABLES[name].primary_key]
                self.seeded |= {(name, tuple(r)) for r in conn.execute(sa.select(*pk))}

    def declares_check(self, table: str, name: str) -> bool:
        return any(
            isinstance(c, sa.CheckConstraint) and c.name == name
            for c in self.tables[table].constraints
        )

    def fk_name(self, table: str, fk: ForeignKey) -> str | None:
        """The name of ``fk``'s constraint in this engine's DDL, or ``None`` when not declared."""
        for c in self.tables[table].constraints:
            if isinstance(c, sa.ForeignKeyConstraint) and tuple(c.column_keys) == fk.columns:
                return str(c.name)
        return None

    def try_rows(self, rows: list[tuple[str, Mapping[str, Any]]]) -> BaseException | None:
        """Insert ``rows`` in one transaction, rolled back; the engine's error, if any.

        Parents already seeded (currencies) are not inserted again; the last row, the
        case, replaces a seeded row of the same key (deleted first, in the transaction).
        """
        with self.engine.connect() as conn:
            tx = conn.begin()
            try:
                for i, (name, row) in enumerate(rows):
                    pk = TABLES[name].primary_key
                    key = (name, tuple(row[c] for c in pk))
                    if key in self.seeded and i == len(rows) - 1:
                        t = self.tables[name]
                        conn.execute(sa.delete(t).where(*(t.c[c] == row[c] for c in pk)))
                    elif key in self.seeded:
                        continue
                    conn.execute(sa.insert(self.tables[name]), [dict(row)])
            except sa.exc.DBAPIError as error:
                return error.orig
            finally:
                tx.rollback()
        return None


@pytest.fixture(scope="session", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def schema(request: pytest.FixtureRequest, new_database: Any) -> Schema:
    engine = new_database(request.param)
    create_schema(engine)
    return Schema(engine)


@pytest.fixture(scope="session", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def ingest_db(request: pytest.FixtureRequest, exemplars: Exemplars, new_database: Any) -> sa.Engine:
    """A database holding the exemplar rows, written by a load (not by ingestion)."""
    engine = new_database(request.param)
    create_schema(engine)
    load_into_oltp(exemplars.data_dir, engine)
    tables = dict(metadata(OLTP, dialect_name(engine)).tables)
    with engine.begin() as conn:
        for name in TABLES:
            if name not in exemplars.generated and _ingested(TABLES[name]):
                conn.execute(sa.insert(tables[name]), exemplars.rows[name])
    return engine


def _clear_ingestion(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for name in ("ingest_pending", "ingest_quarantine", "ingest_versions"):
            conn.execute(sa.text(f"DELETE FROM {name}"))  # fixed names, no input


def _one_column(engine: sa.Engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql))]


# --------------------------------------------------------------------------------------
# Building the cases


@cache
def _bad_row_cache() -> dict:
    return {}


def bad_row(exemplars: Exemplars, table: str, check: Check) -> tuple[dict[str, Any], set[str]]:
    """A row of ``table`` that breaks ``check``, made from the check's SQL, and what it breaks.

    First the fewest changes of the check's own columns that make it false; then, if other
    checks broke too, the fewest changes of their other columns that mend them. A check
    that other checks imply (``amount_captured >= 0`` follows from ``amount_refunded >= 0``
    and ``amount_refunded <= amount_captured``) cannot break alone: the row that breaks it
    with the fewest others is the case.
    """
    cache_ = _bad_row_cache()
    if (table, check.name) not in cache_:
        cache_[(table, check.name)] = _bad_row(exemplars, table, check)
    bad, broken = cache_[(table, check.name)]
    return dict(bad), set(broken)


def _bad_row(exemplars: Exemplars, table: str, check: Check) -> tuple[dict[str, Any], set[str]]:
    t = TABLES[table]
    parents = exemplars.parent_keys(t)
    own = _check_columns(check)
    target = dict(_compiled(table))[check]
    best: tuple[dict[str, Any], set[str]] | None = None
    mends = 0  # each costs a search: a check that cannot break alone must not cost seconds
    for row in exemplars.diverse(table):
        for k in (1, 2, 3):
            options = {c: _candidates(t, t.column(c), row, parents) for c in own}
            for combo in itertools.combinations(own, k):
                for values in itertools.product(*(options[c] for c in combo)):
                    candidate = {**row, **dict(zip(combo, values, strict=True))}
                    if target(candidate) is not False or _column_problems(t, candidate):
                        continue
                    others = {ck.name for ck in _failing(table, candidate)} - {check.name}
                    if not others:
                        return candidate, {check.name}
                    mends += 1
                    mended = _mend(t, candidate, check, own, parents) if mends <= 12 else None
                    if mended is not None:
                        return mended, {check.name}
                    if best is None or len(others) + 1 < len(best[1]):
                        best = candidate, others | {check.name}
    assert best is not None, f"{check.name}: no row breaks it ({check.sql})"
    return best


def _column_problems(t: Table, row: Mapping[str, Any]) -> bool:
    """Whether a column of ``row`` is of the wrong type or NULL where it may not be."""
    return any(not p.endswith(")") or "(ck_" not in p for p in row_problems(t.name, row))


def _mend(
    t: Table, row: dict[str, Any], check: Check, own: list[str], parents: Mapping[str, list[Any]]
) -> dict[str, Any] | None:
    """``row`` with the other checks it breaks mended, leaving ``check``'s columns alone."""
    broken = [ck for ck in _failing(t.name, row) if ck.name != check.name]
    free = sorted({c for ck in broken for c in _check_columns(ck)} - set(own))
    return _search(t, [row], free, parents, lambda r: _only_broken(t.name, r, check), 2)


def orphan_row(exemplars: Exemplars, table: str, fk: ForeignKey) -> dict[str, Any]:
    """A valid row of ``table`` whose ``fk`` points at a parent that does not exist."""
    t = TABLES[table]
    rows = exemplars.rows[table]
    with_parent = [r for r in rows if all(r[c] is not None for c in fk.columns)] or rows
    row = dict(with_parent[0])
    parents = exemplars.parent_keys(t)
    for i, col in enumerate(fk.columns):
        others = [v for v in parents.get(col, []) if v is not None]
        if len(fk.columns) > 1 and others:  # keep the single-column keys resolving
            for v in others:
                trial = {**row, col: v}
                if exemplars.find(fk.table, fk.referred, tuple(trial[c] for c in fk.columns)) is None:
                    return trial
        if i == len(fk.columns) - 1:
            ref = TABLES[fk.table].column(fk.referred[i])
            rows_ = exemplars.rows.get(fk.table, [])
            for value in _missing_values(TABLES[fk.table], ref, rows_):
                trial = {**row, col: value}
                if _valid(table, trial):
                    return trial
    raise AssertionError(f"{table}.{fk.columns}: no orphan value keeps the row valid")


def _missing_values(parent: Table, column: Column, rows: list[Mapping[str, Any]]) -> Iterator[Any]:
    """Values of ``parent.column`` that no row has, shaped like real ones (Stripe prefixes)."""
    present = {p[column.name] for p in rows}
    if column.type is CURRENCY:
        options: list[Any] = ["zzz", "qqq", "xxx"]
    elif column.type.json_type == "integer":
        options = [987_654, 987_655]
    else:
        options = [f"{parent.id_prefix or ''}missing14", f"{column.name}_missing_14"]
    yield from (v for v in options if v not in present)


# --------------------------------------------------------------------------------------
# The tests


def test_every_model_is_tested() -> None:
    """A new Model anywhere in paymodel.model joins MODELS, or this fails."""
    found = set()
    for info in pkgutil.iter_modules(model_package.__path__):
        module = importlib.import_module(f"paymodel.model.{info.name}")
        found |= {v.name for v in vars(module).values() if isinstance(v, Model)}
    assert found <= {m.name for m in MODELS} | set(ELSEWHERE)
    assert set(ELSEWHERE) <= found  # no stale entry
    assert len(CHECKS) >= 128
    assert len(FOREIGN_KEYS) >= 44


def test_every_table_has_valid_rows_to_start_from(exemplars: Exemplars) -> None:
    for name in TABLES:
        assert exemplars.rows.get(name), f"{name}: no valid row (generator or declarations)"
        for row in exemplars.rows[name]:
            assert row_problems(name, row) == [], (name, row)


@pytest.mark.parametrize(("table", "name"), _check_params())
def test_the_database_refuses_a_row_breaking_the_check(
    schema: Schema, exemplars: Exemplars, table: str, name: str
) -> None:
    check = _check(table, name)
    bad, broken = bad_row(exemplars, table, check)
    good = next(r for r in exemplars.rows[table] if _valid(table, r))
    assert schema.try_rows([*exemplars.ancestors(table, good), (table, good)]) is None
    error = schema.try_rows([*exemplars.ancestors(table, bad), (table, bad)])
    if schema.declares_check(table, name):
        assert error is not None, f"{name}: the database accepted {bad}"
        if schema.dialect == "postgresql":
            assert error.diag.constraint_name in broken, (error.diag.constraint_name, broken)
        else:
            message = str(error)
            # DuckDB checks foreign keys first: a code that breaks a currency's ISO check
            # is no currency either.
            orphaned = any(
                exemplars.find(fk.table, fk.referred, tuple(bad[c] for c in fk.columns)) is None
                for fk in TABLES[table].all_foreign_keys
                if all(bad[c] is not None for c in fk.columns)
            )
            assert f"CHECK constraint failed on table {table}" in message or (
                orphaned and "Violates foreign key constraint" in message
            ), message
    else:  # declared on other engines only: the code that writes must refuse it here
        assert error is None, f"{name}: declared for {check.dialects}, yet {schema.dialect} refused"
        assert f"({name})" in "; ".join(row_problems(table, bad))


def test_most_checks_break_alone(exemplars: Exemplars) -> None:
    """The search is sharp: a check broken with others is one that other checks imply."""
    together = sorted(ck.name for t, ck in CHECKS if len(bad_row(exemplars, t.name, ck)[1]) > 1)
    assert len(together) <= len(CHECKS) // 10, together


@pytest.mark.parametrize(("table", "columns"), _fk_params())
def test_the_database_refuses_an_orphan(
    schema: Schema, exemplars: Exemplars, table: str, columns: tuple[str, ...]
) -> None:
    fk = _fk(table, columns)
    orphan = orphan_row(exemplars, table, fk)
    ancestors = exemplars.ancestors(table, orphan, skip=fk)
    error = schema.try_rows([*ancestors, (table, orphan)])
    name = schema.fk_name(table, fk)
    if name is None:  # PostgreSQL only: ingestion's pending area enforces it (next test)
        assert fk.dialects is not None
        assert schema.dialect not in fk.dialects
        assert error is None
        return
    assert error is not None, f"{name}: the database accepted an orphan {orphan}"
    if schema.dialect == "postgresql":
        assert error.diag.constraint_name == name
    else:
        assert "foreign key constraint" in str(error).lower()


def _as_stripe_object(exemplars: Exemplars, table: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """The Stripe object that carries ``row``: its own, or its owner's with it nested."""
    owner = _owner(TABLES[table])
    if owner is None:
        return to_stripe_object(table, row)
    fk = next(fk for fk in TABLES[table].all_foreign_keys if fk.table == owner)
    parent = exemplars.find(owner, fk.referred, tuple(row[c] for c in fk.columns))
    return to_stripe_object(owner, parent, {table: [row]})


def _ingestion_check_params() -> list[Any]:
    return [p for p in _check_params() if _ingested(TABLES[p.values[0]])]


@pytest.mark.parametrize(("table", "name"), _ingestion_check_params())
def test_ingestion_quarantines_a_row_breaking_the_check_by_name(
    ingest_db: sa.Engine, exemplars: Exemplars, table: str, name: str
) -> None:
    check = _check(table, name)
    bad, _ = bad_row(exemplars, table, check)
    record = _as_stripe_object(exemplars, table, bad)
    carried = {c: v for t, r in _unchecked_rows(record) if t == table for c, v in r.items()}
    if any(carried.get(c) != bad[c] for c in _check_columns(check)):
        # The object cannot carry the bad value (a fee line's position is its index):
        # ingestion's row checks still name the rule on the row itself.
        assert f"({name})" in "; ".join(row_problems(table, bad))
        return
    _clear_ingestion(ingest_db)
    report = ingest([record], ingest_db)
    assert (report.read, report.quarantined) == (1, 1), report.as_dict()
    (rule, error), = _one_column(ingest_db, "SELECT rule, error FROM ingest_quarantine")
    assert rule == ("invalid_event" if table == "events" else "invalid_object")
    assert f"({name})" in error, error
    _clear_ingestion(ingest_db)


def _unchecked_rows(record: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The rows ingestion reads from ``record``, before its row checks run."""
    from paymodel.model.stripe import _Rows

    rows = _Rows()
    rows.add_object(record, 0)
    return rows.ordered()


@pytest.mark.parametrize(("table", "columns"), _fk_params(only_ingested=True))
def test_ingestion_keeps_an_orphan_pending_until_its_parent_exists(
    ingest_db: sa.Engine, exemplars: Exemplars, table: str, columns: tuple[str, ...]
) -> None:
    fk = _fk(table, columns)
    orphan = orphan_row(exemplars, table, fk)
    if "id" in orphan and TABLES[table].primary_key == ("id",):
        orphan["id"] = f"{orphan['id']}orphan"  # Stripe ids: prefix_, then letters and digits
    record = _as_stripe_object(exemplars, table, orphan)
    _clear_ingestion(ingest_db)
    report = ingest([record], ingest_db)
    missing = str(orphan[fk.columns[0]])
    if fk in TABLES[table].agreement_keys:  # both parents exist but disagree: never valid
        assert (report.quarantined, report.pending) == (1, 0), report.as_dict()
        (rule, error), = _one_column(ingest_db, "SELECT rule, error FROM ingest_quarantine")
        assert rule == "invalid_object", (rule, error)
        assert "disagrees with" in error, error
        assert fk.table in error, error
        assert f"disagrees with {fk.table} {missing}" in error, error
    elif TABLES[fk.table].stripe_object is None:  # reference data: it never arrives
        assert report.quarantined == 1, report.as_dict()
        (rule, error), = _one_column(ingest_db, "SELECT rule, error FROM ingest_quarantine")
        assert rule == "unknown_reference"
        assert fk.table in error
    else:
        assert (report.read, report.pending) == (1, 1), report.as_dict()
        waiting = _one_column(
            ingest_db, "SELECT object_id, waiting_for_table, waiting_for_id FROM ingest_pending"
        )
        assert waiting == [(str(record["id"]), fk.table, missing)]
    _clear_ingestion(ingest_db)


# --------------------------------------------------------------------------------------
# No rule disappears unnoticed

INVENTORY = Path(__file__).parent / "data" / "constraints.txt"
"""Every check and foreign key the model had when last reviewed, one per line.

Written by hand (or by ``python tests/test_model_constraints.py > tests/data/constraints.txt``
after a review), never by the suite: the tests above are generated from the model, so a
rule deleted from the model, schemas regenerated, would leave no failing test. A line
missing from the model fails here; a rule added to the model is tested at once and
joins the file at the next review.
"""


def inventory() -> list[str]:
    """The model's checks and foreign keys, one line each, in a stable order."""
    lines = []
    for t in TABLES.values():
        for ck in t.all_checks:
            where = f" [{', '.join(ck.dialects)}]" if ck.dialects else ""
            lines.append(f"check {t.name}.{ck.name}{where}: {ck.sql}")
        for fk in t.all_foreign_keys:
            where = f" [{', '.join(fk.dialects)}]" if fk.dialects else ""
            lines.append(
                f"foreign key {t.name}({', '.join(fk.columns)}) -> "
                f"{fk.table}({', '.join(fk.referred)}){where}"
            )
    return sorted(lines)


def test_no_reviewed_rule_was_deleted_or_changed() -> None:
    reviewed = [line for line in INVENTORY.read_text().splitlines() if line.strip()]
    current = set(inventory())
    gone = [line for line in reviewed if line not in current]
    assert not gone, (
        "rules of the reviewed inventory missing from the model (deleted, weakened or "
        f"moved to fewer engines); if on purpose, update {INVENTORY.name}:\n" + "\n".join(gone)
    )


if __name__ == "__main__":
    print("\n".join(inventory()))
