"""Every constraint kind refuses a bad row, on DuckDB and on PostgreSQL, with the engine's error.

Also: where the two engines differ (cascades, deferrable keys, key updates of referenced
rows), the model holds no card number or CVC, personal data is classified, and
``metadata(OLTP).create_all`` builds the same PostgreSQL schema as the generated DDL.
"""

from __future__ import annotations

import re

import duckdb
import psycopg
import pytest
import sqlalchemy as sa

from paymodel.model import OLTP, PII, metadata
from paymodel.oltp.constraints_demo import (
    CASCADE_DDL,
    CASES,
    DEFERRABLE_DDL,
    POSTGRES_ONLY_CASE,
    declared_constraints,
    expected_error,
    insert_valid_rows,
    run_case,
    try_ddl,
    try_insert,
    update_key_to_same_value,
    valid_rows,
)
from paymodel.oltp.engines import (
    drop_postgres_database,
    dsn_database,
    fresh_postgres_database,
    postgres_engine,
)
from paymodel.oltp.schema import create_schema, dialect_name, oltp_tables

KINDS = {"not_null", "primary_key", "unique", "foreign_key", "check"}


@pytest.fixture
def schema(engine: sa.Engine) -> sa.Engine:
    """The OLTP schema with the valid story inserted."""
    create_schema(engine)
    insert_valid_rows(engine)
    return engine


def test_the_cases_cover_every_kind_and_the_money_rules_of_the_model():
    assert {case.kind for case in CASES} == KINDS
    checks = OLTP.checks()
    for case in CASES:
        if case.kind == "check":
            assert case.constraint in checks, case.name
    rules = {checks[case.constraint][1].sql for case in CASES if case.kind == "check"}
    assert "net = amount - fee" in rules
    assert "amount_remaining = amount_due - amount_paid" in rules
    assert "amount_refunded <= amount_captured AND amount_captured <= amount" in rules


def test_valid_rows_are_accepted_and_readable(schema):
    tables = oltp_tables(schema)
    with schema.connect() as conn:
        for name, rows in valid_rows().items():
            count = conn.execute(sa.select(sa.func.count()).select_from(tables[name])).scalar()
            assert count == len(rows), name


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name.split(":")[0] + ":" + case.table)
def test_each_constraint_refuses_its_bad_row_and_accepts_the_valid_one(schema, case):
    result = run_case(schema, case)
    assert result.valid.accepted, f"{case.name}: valid row refused: {result.valid.message}"
    assert not result.bad.accepted, f"{case.name}: bad row accepted"
    dialect = dialect_name(schema)
    assert isinstance(result.bad.error, expected_error(dialect, case.kind)), result.bad.error_type
    message = str(result.bad.error)
    if dialect == "postgresql":
        diag = result.bad.error.diag
        if case.kind == "not_null":
            assert diag.column_name == next(c for c, v in case.changes.items() if v is None)
        else:
            assert diag.constraint_name == case.constraint
    else:
        expected = {
            "not_null": "NOT NULL constraint failed",
            "primary_key": "violates primary key constraint",
            "unique": "violates unique constraint",
            "foreign_key": "Violates foreign key constraint",
            "check": f"CHECK constraint failed on table {case.table}",
        }[case.kind]
        assert expected in message
    # Both attempts were rolled back: neither row is there.
    t = oltp_tables(schema)[case.table]
    key = t.primary_key.columns.values()[0]
    with schema.connect() as conn:
        ids = {r[0] for r in conn.execute(sa.select(key))}
    assert case.valid_row()[key.name] not in ids


_CATALOG = {
    "postgresql": "select case contype when 'p' then 'PRIMARY KEY' when 'u' then 'UNIQUE' "
    "when 'f' then 'FOREIGN KEY' when 'c' then 'CHECK' end, c.conrelid::regclass::text "
    "from pg_constraint c join pg_namespace n on n.oid = c.connamespace "
    "where n.nspname = 'public' and contype in ('p', 'u', 'f', 'c')",
    "duckdb": "select constraint_type, table_name from duckdb_constraints() "
    "where constraint_type in ('PRIMARY KEY', 'UNIQUE', 'FOREIGN KEY', 'CHECK')",
}


def test_each_engine_holds_every_constraint_declared_for_it(engine):
    create_schema(engine)
    dialect = dialect_name(engine)
    with engine.connect() as conn:
        found = sorted(tuple(r) for r in conn.execute(sa.text(_CATALOG[dialect])))
    assert found == sorted((kind, table) for table, _, kind in declared_constraints(dialect))


def test_a_postgresql_only_reference_is_checked_by_postgresql_only(schema):
    pg_only = set(declared_constraints("postgresql")) - set(declared_constraints("duckdb"))
    assert ("payment_methods", POSTGRES_ONLY_CASE.constraint, "FOREIGN KEY") in pg_only
    result = run_case(schema, POSTGRES_ONLY_CASE)
    assert result.valid.accepted
    if dialect_name(schema) == "duckdb":
        assert result.bad.accepted
    else:
        assert isinstance(result.bad.error, psycopg.errors.ForeignKeyViolation)
        assert result.bad.error.diag.constraint_name == POSTGRES_ONLY_CASE.constraint


def test_cascades_and_deferrable_keys_are_postgresql_only(engine):
    cascade, deferrable = try_ddl(engine, CASCADE_DDL), try_ddl(engine, DEFERRABLE_DDL)
    if dialect_name(engine) == "duckdb":
        assert isinstance(cascade.error, duckdb.ParserException)
        assert "CASCADE" in cascade.message
        assert isinstance(deferrable.error, duckdb.NotImplementedException)
    else:
        assert cascade.accepted
        assert deferrable.accepted


def test_duckdb_refuses_a_same_value_key_update_of_a_referenced_row(schema):
    outcome = update_key_to_same_value(schema, "customers", "id", "cus_demo1")
    if dialect_name(schema) == "duckdb":
        assert isinstance(outcome.error, duckdb.ConstraintException)
        assert "still referenced by a foreign key" in outcome.message
    else:
        assert outcome.accepted, outcome.message
    # A row nobody references can have its key rewritten on both.
    assert update_key_to_same_value(schema, "balance_transactions", "id", "txn_demo1").accepted


# --- security and privacy ------------------------------------------------------------

_CARD_SECRET = re.compile(r"(^|_)(pan|cvc2?|cvv2?|cid|pin|card_number|number)($|_)")


def test_no_column_can_hold_a_full_card_number_or_cvc():
    card_tables = [t for t in OLTP.tables if any(c.startswith("card_") for c in t.column_names)]
    assert [t.name for t in card_tables] == ["payment_methods"]
    for table in card_tables:
        secrets = [c for c in table.column_names if _CARD_SECRET.search(c)]
        assert not secrets, f"{table.name}: card secret columns {secrets}"
    for table in OLTP.tables:
        for column in table.column_names:
            assert not re.search(r"(^|_)(pan|cvc2?|cvv2?|card_number)($|_)", column), (
                f"{table.name}.{column}: looks like a card number or security code"
            )
    assert "card_last4 ~ '^[0-9]{4}$'" in OLTP.checks()["ck_payment_methods_last4"][1].sql


@pytest.mark.parametrize("last4", ["4242424242424242", "42a2", "424", "42424"])
def test_card_last4_is_exactly_four_digits_on_both_engines(schema, last4):
    row = dict(valid_rows()["payment_methods"][0], id="pm_demo9", card_last4=last4)
    outcome = try_insert(schema, "payment_methods", row)
    assert not outcome.accepted
    assert isinstance(outcome.error, expected_error(dialect_name(schema), "check"))
    assert try_insert(schema, "payment_methods", {**row, "card_last4": "0005"}).accepted


def test_personal_data_columns_are_direct_pii():
    direct = {
        ("customers", "email"),
        ("customers", "name"),
        ("customers", "phone"),
        ("customer_addresses", "line1"),
        ("customer_addresses", "line2"),
    }
    for table, column in direct:
        assert OLTP.table(table).column(column).pii is PII.DIRECT, f"{table}.{column}"
    personal = re.compile(r"(^|_)(email|phone|line[12])$")
    for table in OLTP.tables:
        for column in table.columns:
            if personal.search(column.name):
                assert column.pii is PII.DIRECT, f"{table.name}.{column.name}"
    quasi = [("customer_addresses", "postal_code"), ("payment_methods", "card_fingerprint"),
             ("payment_methods", "card_last4")]  # fmt: skip
    for table, column in quasi:
        assert OLTP.table(table).column(column).pii is not PII.NONE, f"{table}.{column}"


# --- create_all and the generated DDL build the same PostgreSQL schema ------------------

_COLUMNS = """
select table_name, column_name, ordinal_position, data_type, udt_name, is_nullable,
       numeric_precision, numeric_scale, column_default
from information_schema.columns where table_schema = 'public'
order by table_name, ordinal_position
"""
_CONSTRAINTS = """
select c.conrelid::regclass::text, c.conname, c.contype, pg_get_constraintdef(c.oid)
from pg_constraint c join pg_namespace n on n.oid = c.connamespace
where n.nspname = 'public' order by 1, 2
"""
_INDEXES = "select tablename, indexname, indexdef from pg_indexes where schemaname = 'public' order by 1, 2"
_COMMENTS = """
select c.relname, a.attname, d.description
from pg_description d
join pg_class c on c.oid = d.objoid and d.classoid = 'pg_class'::regclass
join pg_namespace n on n.oid = c.relnamespace
left join pg_attribute a on a.attrelid = c.oid and a.attnum = d.objsubid and d.objsubid > 0
where n.nspname = 'public' order by 1, 2 nulls first
"""


def _catalog(dsn: str) -> dict[str, list[tuple]]:
    with psycopg.connect(dsn) as conn:
        return {
            name: conn.execute(sql).fetchall()
            for name, sql in (("columns", _COLUMNS), ("constraints", _CONSTRAINTS),
                              ("indexes", _INDEXES), ("comments", _COMMENTS))
        }  # fmt: skip


def test_create_all_builds_the_same_postgresql_schema_as_the_generated_ddl(pg_dsn, pg_server_dsn):
    engine = postgres_engine(pg_dsn)
    metadata(OLTP, "postgresql").create_all(engine)
    engine.dispose()
    other = fresh_postgres_database(pg_server_dsn)
    try:
        engine = postgres_engine(other)
        create_schema(engine, seed=False)
        engine.dispose()
        from_metadata, from_ddl = _catalog(pg_dsn), _catalog(other)
    finally:
        drop_postgres_database(pg_server_dsn, dsn_database(other))
    assert {r[0] for r in from_ddl["columns"]} == set(OLTP.table_names)
    kinds = {r[2] for r in from_ddl["constraints"]}
    assert {"p", "u", "f", "c"} <= kinds  # PostgreSQL 18 also lists NOT NULL ("n")
    # The grain of each table and the description of each column travel as comments.
    assert len(from_ddl["comments"]) == sum(1 + len(t.columns) for t in OLTP.tables)
    for part in ("columns", "constraints", "indexes", "comments"):
        assert from_metadata[part] == from_ddl[part], part


# --- agreement keys: a redundant reference must agree with the path it repeats ------------


def _agreement_story(engine: sa.Engine) -> None:
    """The valid story, plus what a disagreeing row can point at instead."""
    insert_valid_rows(engine)
    rows = valid_rows()
    t = rows["customers"][0]["created"]
    other = {**rows["customers"][0], "id": "cus_demo2", "email": "grace@example.com"}
    pi2 = {**rows["payment_intents"][0], "id": "pi_demo2"}
    sub = {
        "id": "sub_demo1", "customer_id": "cus_demo1", "status": "active", "currency": "usd",
        "collection_method": "charge_automatically", "default_payment_method_id": None,
        "start_date": t, "billing_cycle_anchor": t, "trial_start": None, "trial_end": None,
        "cancel_at_period_end": False, "cancel_at": None, "canceled_at": None,
        "ended_at": None, "cancellation_reason": None, "created": t, "metadata": {},
    }  # fmt: skip
    coupon = {"id": "DEMO10", "name": None, "percent_off": 10, "amount_off": None,
              "currency": None, "duration": "forever", "duration_in_months": None,
              "valid": True, "created": t, "metadata": {}}  # fmt: skip
    tables = oltp_tables(engine)
    with engine.begin() as conn:
        for name, row in (("customers", other), ("payment_intents", pi2),
                          ("subscriptions", sub), ("coupons", coupon)):  # fmt: skip
            conn.execute(sa.insert(tables[name]), [row])


def _disagreeing_rows() -> dict[str, tuple[dict, str]]:
    """Per agreement key: a row whose redundant column disagrees, and the key's name."""
    rows = valid_rows()
    t = rows["customers"][0]["created"]
    refund = {"id": "re_bad", "charge_id": "ch_demo1", "payment_intent_id": "pi_demo2",
              "currency": "usd", "amount": 100, "status": "succeeded", "reason": None,
              "failure_reason": None, "created": t, "metadata": {}}  # fmt: skip
    dispute = {"id": "dp_bad", "charge_id": "ch_demo1", "payment_intent_id": "pi_demo2",
               "currency": "usd", "amount": 100, "status": "needs_response",
               "reason": "general", "evidence_due_by": None, "is_charge_refundable": False,
               "created": t, "metadata": {}}  # fmt: skip
    invoice = {**rows["invoices"][0], "id": "in_bad", "number": None,
               "subscription_id": "sub_demo1", "customer_id": "cus_demo2"}  # fmt: skip
    discount = {"id": "di_bad", "coupon_id": "DEMO10", "customer_id": "cus_demo2",
                "subscription_id": "sub_demo1", "starts_at": t, "ends_at": None}  # fmt: skip
    charge = {**rows["charges"][0], "id": "ch_bad", "customer_id": "cus_demo2"}
    return {
        "refunds": (refund, "fk_refunds_charge_id_payment_intent_id"),
        "disputes": (dispute, "fk_disputes_charge_id_payment_intent_id"),
        "invoices": (invoice, "fk_invoices_subscription_id_customer_id"),
        "discounts": (discount, "fk_discounts_subscription_id_customer_id"),
        "charges": (charge, "fk_charges_payment_intent_id_customer_id"),
    }


def test_every_agreement_key_has_a_disagreeing_row() -> None:
    keys = {t.name for t in OLTP.tables if t.agreement_keys}
    assert keys == set(_disagreeing_rows())


@pytest.mark.parametrize("table", sorted(_disagreeing_rows()))
def test_the_database_refuses_a_disagreeing_reference(engine: sa.Engine, table: str) -> None:
    """Each engine that declares an agreement key refuses the row; the invariant reports it."""
    from paymodel.oltp.invariants import check_invariants

    create_schema(engine)
    _agreement_story(engine)
    row, name = _disagreeing_rows()[table]
    (fk,) = OLTP.table(table).agreement_keys
    declared = fk.dialects is None or dialect_name(engine) in fk.dialects
    agreeing = {**row, **{c: valid for c, valid in _agreeing_values(table).items()}}
    assert try_insert(engine, table, agreeing).accepted  # only the disagreement is wrong
    outcome = try_insert(engine, table, row)
    if declared:
        assert not outcome.accepted
        assert isinstance(outcome.error, expected_error(dialect_name(engine), "foreign_key"))
        if dialect_name(engine) == "postgresql":
            assert name in str(outcome.error)
    else:  # DuckDB leaves this one to the writers and the invariants
        assert outcome.accepted
        with engine.begin() as conn:
            conn.execute(sa.insert(oltp_tables(engine)[table]), [row])
        (result,) = [r for r in check_invariants(engine) if r.name == "references_agree"]
        assert result.violations == 1
        assert result.examples[0].startswith(f"{table} ({', '.join(fk.columns)}) {row['id']}")


def _agreeing_values(table: str) -> dict[str, str]:
    return {
        "refunds": {"payment_intent_id": "pi_demo1"},
        "disputes": {"payment_intent_id": "pi_demo1"},
        "invoices": {"customer_id": "cus_demo1"},
        "discounts": {"customer_id": "cus_demo1"},
        "charges": {"customer_id": "cus_demo1"},
    }[table]
