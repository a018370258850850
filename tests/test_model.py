"""The model's own rules: it refuses an inconsistent schema before anything is rendered."""

from __future__ import annotations

import pytest

from paymodel.model import OLTP, PII, Column, Model, Table
from paymodel.model.core import AMOUNT, CURRENCY, ID, TEXT
from paymodel.model.sql import check_sql


def _table(name, *columns, **kw):
    return Table(name, f"One row per {name}.", None, [Column("id", ID, "Id."), *columns], **kw)


def test_tables_are_in_dependency_order():
    seen: set[str] = set()
    for table in OLTP.tables:
        assert set(table.parents) <= seen, table.name
        seen.add(table.name)


def test_a_reference_cycle_is_refused_naming_the_tables():
    a = _table("a", Column("b_id", ID, "B.", references="b"))
    b = _table("b", Column("a_id", ID, "A.", references="a"))
    with pytest.raises(ValueError, match="cycle among: a, b"):
        Model("m", "cyclic", [a, b])


def test_a_reference_to_an_unknown_table_is_refused():
    with pytest.raises(ValueError, match="table a: references unknown table nowhere"):
        Model("m", "dangling", [_table("a", Column("x_id", ID, "X.", references="nowhere"))])


def test_a_reference_to_a_non_key_column_is_refused():
    parent = _table("p", Column("label", TEXT, "Label."))
    child = _table("c", Column("label", TEXT, "Label.", references="p.label"))
    with pytest.raises(ValueError, match="not a primary or unique key"):
        Model("m", "bad fk", [parent, child])


def test_a_nullable_primary_key_and_a_missing_description_are_refused():
    with pytest.raises(ValueError, match="primary key column id is nullable"):
        Table("t", "One row per t.", None, [Column("id", ID, "Id.", nullable=True)])
    with pytest.raises(ValueError, match="description is required"):
        Column("x", TEXT, " ")


def test_grain_must_be_stated():
    with pytest.raises(ValueError, match="grain must read"):
        Table("t", "Charges.", None, [Column("id", ID, "Id.")])


def test_amount_columns_are_bounded_and_currency_columns_reference_currencies():
    t = _table("t", Column("amount", AMOUNT, "Amount."), Column("currency", CURRENCY, "Cur."))
    checks = {c.name: c.sql for c in t.all_checks}
    assert checks["ck_t_amount_range"] == "amount >= 0"
    assert checks["ck_t_currency_iso"] == "currency ~ '^[a-z]{3}$'"
    assert [(fk.columns, fk.table) for fk in t.all_foreign_keys] == [(("currency",), "currencies")]


def test_check_names_are_unique_and_fit_postgresql():
    checks = OLTP.checks()  # raises on a duplicate name
    assert all(len(name) <= 63 for name in checks)


def test_checks_transpile_to_duckdb_regular_expressions():
    assert (
        check_sql("currency ~ '^[a-z]{3}$'", "duckdb") == "REGEXP_MATCHES(currency, '^[a-z]{3}$')"
    )


def test_personal_data_columns_are_classified():
    customers = OLTP.table("customers")
    for col in ("email", "name", "phone"):
        assert customers.column(col).pii is PII.DIRECT
    addresses = OLTP.table("customer_addresses")
    assert addresses.column("line1").pii is PII.DIRECT
    assert addresses.column("postal_code").pii is PII.QUASI
    assert OLTP.table("payment_methods").column("card_fingerprint").pii is PII.QUASI


def test_unknown_column_error_names_the_table():
    with pytest.raises(KeyError, match="table charges has no column charge_id"):
        OLTP.table("charges").column("charge_id")


def test_every_derived_value_names_guards_that_exist() -> None:
    """The dictionary's 'guarded by' column names real checks and invariants."""
    import re

    from paymodel.model.oltp import DENORMALISED
    from paymodel.oltp.invariants import INVARIANTS

    checks = set(OLTP.checks())
    invariants = {i.name for i in INVARIANTS}
    assert {(d.table, d.column) for d in DENORMALISED} >= {
        ("invoices", "amount_remaining"), ("invoices", "subtotal"), ("invoices", "total"),
        ("charges", "amount_refunded"), ("charges", "refunded"), ("charges", "disputed"),
        ("payment_intents", "amount_received"), ("customers", "balance"),
    }  # fmt: skip
    for d in DENORMALISED:
        named = re.findall(r"(check|invariant) ([a-z_]+)", d.guard)
        assert named or d.guard.startswith("none"), d
        for kind, name in named:
            assert name in (checks if kind == "check" else invariants), (d.column, name)
