"""Constraints at work: valid rows, one bad row per constraint kind, and engine differences.

Used by notebook 03 and ``tests/test_constraints.py``, so that what the notebook shows is
what the tests check. Everything runs through SQLAlchemy on either OLTP engine; errors are
the engine's own (``duckdb.ConstraintException``, ``psycopg.errors.CheckViolation``...),
unwrapped from SQLAlchemy's wrapper.

Example:
    >>> from paymodel.oltp.engines import duckdb_engine
    >>> from paymodel.oltp.schema import create_schema
    >>> engine = duckdb_engine()
    >>> create_schema(engine)
    >>> insert_valid_rows(engine)
    >>> case = case_named("check: net = amount - fee")
    >>> outcome = try_insert(engine, case.table, case.row())
    >>> outcome.accepted, outcome.error_type
    (False, 'duckdb.ConstraintException')
    >>> engine.dispose()
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from paymodel.model.oltp import OLTP
from paymodel.model.sql import metadata
from paymodel.oltp.backend import backend
from paymodel.oltp.schema import dialect_name

__all__ = [
    "CASCADE_DDL",
    "CASES",
    "DEFERRABLE_DDL",
    "POSTGRES_ONLY_CASE",
    "CaseResult",
    "ConstraintCase",
    "Outcome",
    "case_named",
    "declared_constraints",
    "expected_error",
    "insert_valid_rows",
    "oltp_tables",
    "run_case",
    "try_ddl",
    "try_insert",
    "try_statement",
    "update_key_to_same_value",
    "valid_rows",
]


@functools.cache
def _tables_for(dialect: str) -> dict[str, sa.Table]:
    return dict(metadata(OLTP, dialect).tables)


def oltp_tables(engine: sa.Engine | sa.Connection) -> dict[str, sa.Table]:
    """The model's tables for ``engine``'s dialect, built once per dialect (checks transpiled)."""
    return dict(_tables_for(dialect_name(engine)))


_T0 = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)


def valid_rows() -> dict[str, list[dict[str, Any]]]:
    """One small valid story, parents first: a customer pays an invoice by card.

    Every row satisfies every constraint of the model; the cases below each break one.
    """
    t = _T0
    return {
        "customers": [
            {"id": "cus_demo1", "email": "ada@example.com", "name": "Ada Lovelace", "phone": None,
             "currency": "usd", "balance": 0, "delinquent": False, "preferred_locale": "en",
             "created": t, "metadata": {}},
        ],
        "payment_methods": [
            {"id": "pm_demo1", "customer_id": "cus_demo1", "type": "card", "card_brand": "visa",
             "card_funding": "credit", "card_country": "US", "card_last4": "4242",
             "card_exp_month": 12, "card_exp_year": 2030, "card_fingerprint": "fp_demo1",
             "created": t},
        ],
        "products": [
            {"id": "prod_demo1", "name": "Team plan", "description": None, "active": True,
             "created": t, "metadata": {}},
        ],
        "prices": [
            {"id": "price_demo1", "product_id": "prod_demo1", "currency": "usd",
             "unit_amount": 4900, "type": "one_time", "billing_scheme": "per_unit",
             "recurring_interval": None, "recurring_interval_count": None,
             "recurring_usage_type": None, "nickname": "Team", "lookup_key": "team",
             "active": True, "created": t, "metadata": {}},
        ],
        "invoices": [
            {"id": "in_demo1", "customer_id": "cus_demo1", "subscription_id": None,
             "number": "DEMO-0001", "status": "paid", "billing_reason": "manual",
             "collection_method": "charge_automatically", "currency": "usd", "subtotal": 4900,
             "discount_amount": 0, "tax": 0, "total": 4900, "starting_balance": 0,
             "amount_due": 4900, "amount_paid": 4900, "amount_remaining": 0,
             "attempt_count": 1, "period_start": t, "period_end": t, "due_date": None,
             "finalized_at": t, "paid_at": t, "voided_at": None, "created": t,
             "metadata": {}},
        ],
        "payment_intents": [
            {"id": "pi_demo1", "customer_id": "cus_demo1", "payment_method_id": "pm_demo1",
             "currency": "usd", "amount": 4900, "amount_capturable": 0,
             "amount_received": 4900, "status": "succeeded", "capture_method": "automatic",
             "last_payment_error_code": None, "cancellation_reason": None,
             "canceled_at": None, "description": None, "created": t, "metadata": {}},
        ],
        "invoice_payments": [
            {"id": "inpay_demo1", "invoice_id": "in_demo1", "payment_intent_id": "pi_demo1",
             "currency": "usd", "amount_requested": 4900, "amount_paid": 4900,
             "status": "paid", "is_default": True, "paid_at": t, "canceled_at": None,
             "created": t},
        ],
        "charges": [
            {"id": "ch_demo1", "payment_intent_id": "pi_demo1", "customer_id": "cus_demo1",
             "payment_method_id": "pm_demo1", "currency": "usd", "amount": 4900,
             "amount_captured": 4900, "amount_refunded": 0, "status": "succeeded",
             "paid": True, "captured": True, "refunded": False, "disputed": False,
             "failure_code": None, "failure_message": None, "outcome_type": "authorized",
             "outcome_network_status": "approved_by_network", "outcome_risk_level": "normal",
             "outcome_risk_score": 12, "three_d_secure_result": None, "created": t,
             "metadata": {}},
        ],
        "balance_transactions": [
            {"id": "txn_demo1", "type": "charge", "reporting_category": "charge",
             "amount": 4900, "fee": 172, "net": 4728, "currency": "usd",
             "exchange_rate": None, "status": "available",
             "available_on": t + dt.timedelta(days=2), "description": None,
             "charge_id": "ch_demo1", "refund_id": None, "dispute_id": None, "created": t},
        ],
    }  # fmt: skip


def insert_valid_rows(engine: sa.Engine) -> None:
    """Insert :func:`valid_rows` in one transaction (the schema must exist, seeded)."""
    tables = oltp_tables(engine)
    with engine.begin() as conn:
        for name, rows in valid_rows().items():
            conn.execute(sa.insert(tables[name]), rows)


@dataclass(frozen=True)
class Outcome:
    """What an engine did with one statement, which was rolled back either way.

    Attributes:
        accepted: the statement ran without error.
        error: the engine's own exception (DB-API level), or ``None``.
    """

    accepted: bool
    error: BaseException | None = None

    @property
    def error_type(self) -> str | None:
        """``module.Class`` of the error as users import it (``duckdb.ConstraintException``)."""
        if self.error is None:
            return None
        module = type(self.error).__module__
        module = "duckdb" if module.startswith("_duckdb") else module
        return f"{module}.{type(self.error).__name__}"

    @property
    def message(self) -> str | None:
        """The first line of the engine's message."""
        return None if self.error is None else str(self.error).strip().splitlines()[0]


def try_statement(
    engine: sa.Engine,
    statement: sa.Executable | str,
    parameters: Mapping[str, Any] | None = None,
) -> Outcome:
    """Run one statement in its own transaction, roll it back, and report the outcome.

    Args:
        engine: a DuckDB or PostgreSQL engine.
        statement: a SQLAlchemy statement, or SQL text (parameters as ``:name``).
        parameters: bound parameters (never formatted into the SQL).

    Returns:
        Accepted, or the engine's own exception (SQLAlchemy's wrapper removed).
    """
    stmt = sa.text(statement) if isinstance(statement, str) else statement
    with engine.connect() as conn:
        try:
            with conn.begin() as tx:
                conn.execute(stmt, dict(parameters or {}))
                tx.rollback()
        except sa.exc.DBAPIError as exc:
            return Outcome(False, exc.orig)
    return Outcome(True)


def try_insert(engine: sa.Engine, table: str, row: Mapping[str, Any]) -> Outcome:
    """Try to insert ``row`` into model table ``table``; rolled back either way."""
    return try_statement(engine, sa.insert(oltp_tables(engine)[table]).values(**row))


@dataclass(frozen=True)
class ConstraintCase:
    """One constraint and a row that breaks it.

    Attributes:
        name: what is broken, as the notebook titles it.
        kind: ``not_null``, ``primary_key``, ``unique``, ``foreign_key`` or ``check``.
        table: the table inserted into.
        changes: the columns changed to break the constraint.
        constraint: the constraint's name in the DDL (``None`` for NOT NULL).
        valid: the valid row it starts from; by default the table's row of
            :func:`valid_rows` with new ids (see :meth:`valid_row`).
    """

    name: str
    kind: str
    table: str
    changes: Mapping[str, Any]
    constraint: str | None
    valid: Mapping[str, Any] | None = None

    def valid_row(self) -> dict[str, Any]:
        """A valid row for the table that is not yet in the database (a new id)."""
        if self.valid is not None:
            return dict(self.valid)
        row = dict(valid_rows()[self.table][0])
        if "id" in row:
            row["id"] = row["id"].replace("demo1", "demo9")
        for unique in ("lookup_key", "number"):
            if row.get(unique) is not None:
                row[unique] = f"{row[unique]}-2"
        if self.table == "invoice_payments":
            row["invoice_id"] = "in_demo2"
        return row

    def row(self) -> dict[str, Any]:
        """The valid row with :attr:`changes` applied: the row the engine must refuse."""
        return {**self.valid_row(), **self.changes}

    def setup(self) -> dict[str, list[dict[str, Any]]]:
        """Rows that :meth:`valid_row` needs besides :func:`valid_rows` (parents)."""
        if self.table == "invoice_payments":
            invoice = dict(valid_rows()["invoices"][0], id="in_demo2", number="DEMO-0002")
            return {"invoices": [invoice]}
        return {}


CASES: tuple[ConstraintCase, ...] = (
    ConstraintCase("not null: a customer without a creation time", "not_null", "customers",
                   {"created": None}, None),
    ConstraintCase("primary key: a second charge ch_demo1", "primary_key", "charges",
                   {"id": "ch_demo1"}, "pk_charges"),
    ConstraintCase("unique: the same payment intent paying the same invoice twice", "unique",
                   "invoice_payments", {"invoice_id": "in_demo1"},
                   "uq_invoice_payments_invoice_id_payment_intent_id"),
    ConstraintCase("unique: a second price with the lookup key 'team'", "unique", "prices",
                   {"lookup_key": "team"}, "uq_prices_lookup_key"),
    ConstraintCase("foreign key: a charge of an unknown payment intent", "foreign_key",
                   "charges", {"payment_intent_id": "pi_missing"},
                   "fk_charges_payment_intent_id"),
    ConstraintCase("check: status is an accepted value", "check", "balance_transactions",
                   {"status": "settled"}, "ck_balance_transactions_status_accepted"),
    ConstraintCase("check: amounts are not negative", "check", "balance_transactions",
                   {"fee": -1, "net": 4901}, "ck_balance_transactions_fee_range"),
    ConstraintCase("check: currency is a lowercase 3-letter code", "check", "currencies",
                   {"code": "XTS"}, "ck_currencies_code_iso",
                   valid={"code": "xts", "name": "Testing code", "exponent": 2}),
    ConstraintCase("check: amount_refunded <= amount_captured <= amount", "check", "charges",
                   {"amount_captured": 5000}, "ck_charges_amounts"),
    ConstraintCase("check: net = amount - fee", "check", "balance_transactions",
                   {"net": 4900}, "ck_balance_transactions_net"),
    ConstraintCase("check: amount_remaining = amount_due - amount_paid", "check", "invoices",
                   {"status": "open", "paid_at": None, "amount_paid": 1000,
                    "amount_remaining": 0}, "ck_invoices_remaining"),
)  # fmt: skip
"""One bad row per constraint kind and per money rule, in the notebook's order."""


@dataclass(frozen=True)
class CaseResult:
    """A constraint case run on one engine: its valid row, then its bad row (both rolled back)."""

    case: ConstraintCase
    valid: Outcome
    bad: Outcome


def run_case(engine: sa.Engine, case: ConstraintCase) -> CaseResult:
    """Insert the case's parents if missing, then try its valid row and its bad row.

    The database must hold :func:`valid_rows`. Parents from :meth:`ConstraintCase.setup`
    stay (committed); both tried rows are rolled back.
    """
    tables = oltp_tables(engine)
    with engine.begin() as conn:
        for name, rows in case.setup().items():
            t = tables[name]
            for row in rows:
                if conn.execute(sa.select(t.c.id).where(t.c.id == row["id"])).first() is None:
                    conn.execute(sa.insert(t).values(**row))
    return CaseResult(
        case,
        try_insert(engine, case.table, case.valid_row()),
        try_insert(engine, case.table, case.row()),
    )


POSTGRES_ONLY_CASE = ConstraintCase(
    "foreign key (PostgreSQL only): a payment method of an unknown customer",
    "foreign_key",
    "payment_methods",
    {"customer_id": "cus_missing"},
    "fk_payment_methods_customer_id",
)
"""A reference the model declares on PostgreSQL only: DuckDB accepts the bad row."""

_KINDS = (
    (sa.PrimaryKeyConstraint, "PRIMARY KEY"),
    (sa.UniqueConstraint, "UNIQUE"),
    (sa.ForeignKeyConstraint, "FOREIGN KEY"),
    (sa.CheckConstraint, "CHECK"),
)


def declared_constraints(dialect: str) -> list[tuple[str, str, str]]:
    """``(table, constraint name, kind)`` of every key and check the DDL declares on ``dialect``.

    Read from the SQLAlchemy tables the DDL is compiled from, so that constraints the model
    declares for PostgreSQL only (``ForeignKey.dialects``, ``Check.dialects``) are left out
    on DuckDB. NOT NULL is a column property and is not listed.

    Example:
        >>> pg, duck = declared_constraints("postgresql"), declared_constraints("duckdb")
        >>> ("payment_methods", "fk_payment_methods_customer_id", "FOREIGN KEY") in set(pg) - set(duck)
        True
    """
    out = []
    for table in _tables_for(dialect).values():
        for constraint in table.constraints:
            kind = next(k for cls, k in _KINDS if isinstance(constraint, cls))
            out.append((table.name, str(constraint.name), kind))
    return sorted(out)


def case_named(name: str) -> ConstraintCase:
    """The case whose name starts with ``name``."""
    for case in CASES:
        if case.name.startswith(name):
            return case
    raise KeyError(f"no constraint case named {name!r}")


def expected_error(dialect: str, kind: str) -> type[Exception]:
    """The exception class each engine raises for a constraint kind.

    DuckDB raises one class for every kind (``duckdb.ConstraintException``); PostgreSQL
    raises one per SQLSTATE (``psycopg.errors.CheckViolation`` is 23514, ...).

    Example:
        >>> expected_error("postgresql", "foreign_key").__name__
        'ForeignKeyViolation'
    """
    try:
        engine = backend(dialect)
    except ValueError:
        raise ValueError(f"unknown dialect {dialect!r}") from None
    return engine.constraint_error(kind)


# --- where the engines differ --------------------------------------------------------

CASCADE_DDL = (
    "CREATE TABLE demo_parent (id TEXT PRIMARY KEY)",
    "CREATE TABLE demo_child (id TEXT PRIMARY KEY, "
    "parent_id TEXT REFERENCES demo_parent (id) ON DELETE CASCADE)",
)
"""A foreign key with ``ON DELETE CASCADE``: PostgreSQL accepts it, DuckDB's parser refuses."""

DEFERRABLE_DDL = (
    "CREATE TABLE demo_parent (id TEXT PRIMARY KEY)",
    "CREATE TABLE demo_child (id TEXT PRIMARY KEY, "
    "parent_id TEXT REFERENCES demo_parent (id) DEFERRABLE INITIALLY DEFERRED)",
)
"""A deferrable foreign key: PostgreSQL accepts it, DuckDB does not implement it."""


def try_ddl(engine: sa.Engine, statements: tuple[str, ...]) -> Outcome:
    """Run DDL statements in one transaction, rolled back; the outcome of the first failure."""
    with engine.connect() as conn:
        try:
            with conn.begin() as tx:
                for statement in statements:
                    conn.exec_driver_sql(statement)
                tx.rollback()
        except sa.exc.DBAPIError as exc:
            return Outcome(False, exc.orig)
    return Outcome(True)


def update_key_to_same_value(engine: sa.Engine, table: str, key: str, value: Any) -> Outcome:
    """``UPDATE table SET key = key WHERE key = :value``: change nothing, touch the key.

    On a row that another table references, DuckDB refuses it with a foreign-key error
    (it rewrites indexed columns as delete + insert); PostgreSQL accepts it.
    """
    t = oltp_tables(engine)[table]
    column = t.c[key]
    return try_statement(engine, sa.update(t).where(column == value).values({key: column}))
