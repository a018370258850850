"""The dataset invariants (DOMAIN.md) hold on generated data and catch planted violations.

Every invariant runs on DuckDB and on PostgreSQL. Generated data is loaded with every
constraint on; to show that each check catches what it claims, a valid dataset is
loaded into tables WITHOUT constraints, one violation is planted with an UPDATE or
INSERT, and the named invariant must report the planted row.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from paymodel.model.oltp import OLTP
from paymodel.model.sql import sqlalchemy_type
from paymodel.oltp.invariants import (
    INVARIANTS,
    InvariantViolation,
    assert_invariants,
    check_invariants,
)
from paymodel.oltp.schema import create_schema
from paymodel.synthetic import TABLES, generate
from paymodel.synthetic.load import load_into_oltp


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny")
    generate(out, scale=0.01, seed=11, months=6, progress=False, events=False, documents=False)
    return out


@pytest.mark.parametrize(("scale", "seed"), [(0.01, 1), (0.03, 2)])
def test_generated_data_satisfies_every_invariant(
    engine: sa.Engine, tmp_path: Path, scale: float, seed: int
) -> None:
    generate(tmp_path, scale=scale, seed=seed, progress=False, events=False, documents=False)
    create_schema(engine)  # every constraint on
    counts = load_into_oltp(tmp_path, engine)
    assert counts["charges"] > 0
    assert counts["disputes"] > 0
    assert counts["payouts"] > 0
    results = assert_invariants(engine)
    assert [r.name for r in results] == [i.name for i in INVARIANTS]
    assert all(r.violations == 0 for r in results)


def _unconstrained(engine: sa.Engine, data_dir: Path) -> None:
    """The OLTP tables with columns only (no key, no check), loaded from ``data_dir``."""
    md = sa.MetaData()
    for t in OLTP.tables:
        sa.Table(t.name, md, *(sa.Column(c.name, sqlalchemy_type(c.type)) for c in t.columns))
    md.create_all(engine)
    load_into_oltp(data_dir, engine, tables=TABLES)


def _one(conn: sa.Connection, sql: str) -> str:
    return str(conn.execute(sa.text(sql)).scalars().first())


Plant = Callable[[sa.Connection], str]
"""Plants one violation and returns the example id the invariant must report."""


def _dup_customer(c: sa.Connection) -> str:
    cid = _one(c, "SELECT MIN(id) FROM customers")
    c.execute(sa.text("INSERT INTO customers SELECT * FROM customers WHERE id = :id"), {"id": cid})
    return cid


def _dangling_charge_customer(c: sa.Connection) -> str:
    ch = _one(c, "SELECT MIN(id) FROM charges")
    c.execute(sa.text("UPDATE charges SET customer_id = :cus WHERE id = :id"),
              {"cus": "cus_doesnotexist00", "id": ch})  # fmt: skip
    return f"charges.customer_id {ch} -> cus_doesnotexist00"


def _dup_event(c: sa.Connection) -> str:
    for _ in range(2):
        c.execute(
            sa.text(
                "INSERT INTO events (id, type, object_type, object_id, data_object, livemode, "
                "pending_webhooks, created) VALUES (:id, 'customer.created', 'customer', 'cus_1', "
                ":obj, false, 0, TIMESTAMP '2024-01-01 00:00:00')"
            ),
            {"id": "evt_dup", "obj": '{"id": "cus_1"}'},
        )
    return "evt_dup"


def _update(table: str, set_sql: str, pick: str, example: str | None = None) -> Plant:
    def plant(c: sa.Connection) -> str:
        row_id = _one(c, pick)
        c.execute(sa.text(f"UPDATE {table} SET {set_sql} WHERE id = :id"), {"id": row_id})
        return row_id if example is None else _one(c, example.replace(":id", f"'{row_id}'"))

    return plant


def _fee_detail(c: sa.Connection) -> str:
    bt = _one(c, "SELECT MIN(balance_transaction_id) FROM balance_transaction_fee_details")
    c.execute(
        sa.text(
            "UPDATE balance_transaction_fee_details SET amount = amount + 1 "
            "WHERE balance_transaction_id = :id AND line = 0"
        ),
        {"id": bt},
    )
    return bt


def _line_amount(c: sa.Connection) -> str:
    line, invoice = c.execute(
        sa.text("SELECT id, invoice_id FROM invoice_line_items ORDER BY id LIMIT 1")
    ).one()
    c.execute(sa.text("UPDATE invoice_line_items SET amount = amount + 1 WHERE id = :id"), {"id": line})
    return str(invoice)


def _unpay_invoice_payment(c: sa.Connection) -> str:
    ip, invoice = c.execute(
        sa.text("SELECT id, invoice_id FROM invoice_payments ORDER BY id LIMIT 1")
    ).one()
    c.execute(sa.text("UPDATE invoice_payments SET status = 'open' WHERE id = :id"), {"id": ip})
    return str(invoice)


def _fail_charge(c: sa.Connection) -> str:
    ch, pi = c.execute(
        sa.text("SELECT id, payment_intent_id FROM charges WHERE status = 'succeeded' ORDER BY id LIMIT 1")
    ).one()
    c.execute(sa.text("UPDATE charges SET status = 'failed' WHERE id = :id"), {"id": ch})
    return str(pi)


def _refund_amount(c: sa.Connection) -> str:
    re_, ch = c.execute(sa.text("SELECT id, charge_id FROM refunds ORDER BY id LIMIT 1")).one()
    c.execute(sa.text("UPDATE refunds SET amount = amount + 10 WHERE id = :id"), {"id": re_})
    return str(ch)


def _orphan_event(c: sa.Connection) -> str:
    c.execute(
        sa.text(
            "INSERT INTO events (id, type, object_type, object_id, data_object, livemode, "
            "pending_webhooks, created) VALUES ('evt_orphan', 'charge.succeeded', 'charge', "
            "'ch_doesnotexist00', :obj, false, 0, TIMESTAMP '2024-01-01 00:00:00')"
        ),
        {"obj": '{"id": "ch_doesnotexist00", "object": "charge"}'},
    )
    return "evt_orphan"


def _move_settled_transaction(c: sa.Connection) -> str:
    """A charge's transaction moved from its payout to another paid one: both break."""
    bt, payout = c.execute(
        sa.text(
            "SELECT bt.id, bt.payout_id FROM balance_transactions bt JOIN payouts p "
            "ON p.id = bt.payout_id WHERE bt.type = 'charge' AND p.status = 'paid' "
            "ORDER BY bt.id LIMIT 1"
        )
    ).one()
    c.execute(sa.text("UPDATE balance_transactions SET payout_id = NULL WHERE id = :id"), {"id": bt})
    return str(payout)


PLANTS: dict[str, Plant] = {
    "event_objects_exist": _orphan_event,
    "payout_balance_transaction": _update(
        "payouts", "amount = amount + 1", "SELECT MIN(id) FROM payouts"
    ),
    "payout_settles_net": _move_settled_transaction,
    "ids_unique": _dup_customer,
    "foreign_keys_resolve": _dangling_charge_customer,
    "event_ids_unique": _dup_event,
    "balance_transaction_net": _update(
        "balance_transactions", "net = net + 1", "SELECT MIN(id) FROM balance_transactions"
    ),
    "balance_transaction_fee_details": _fee_detail,
    "charge_captured_within_amount": _update(
        "charges", "amount_captured = amount + 1",
        "SELECT MIN(id) FROM charges WHERE status = 'succeeded'",
    ),
    "charge_refunded_within_captured": _update(
        "charges", "amount_refunded = amount_captured + 1",
        "SELECT MIN(id) FROM charges WHERE status = 'succeeded'",
    ),
    "charge_refunds_sum": _refund_amount,
    "invoice_amount_remaining": _update(
        "invoices", "amount_remaining = amount_remaining + 1", "SELECT MIN(id) FROM invoices"
    ),
    "invoice_subtotal_is_sum_of_lines": _line_amount,
    "invoice_total": _update("invoices", "tax = tax + 1", "SELECT MIN(id) FROM invoices"),
    "invoice_paid_in_full": _update(
        "invoices", "amount_paid = amount_paid - 1",
        "SELECT MIN(id) FROM invoices WHERE status = 'paid' AND amount_due > 0",
    ),
    "invoice_paid_by_succeeded_payments": _unpay_invoice_payment,
    "payment_intent_succeeded_iff_one_charge": _fail_charge,
    "payment_intent_amount_received": _update(
        "payment_intents", "amount_received = amount_received - 1",
        "SELECT MIN(id) FROM payment_intents WHERE status = 'succeeded'",
    ),
    "disputed_charge_has_dispute": _update(
        "charges", "disputed = NOT disputed", "SELECT MIN(id) FROM charges"
    ),
}


def test_every_invariant_has_a_planted_violation() -> None:
    assert sorted(PLANTS) == sorted(i.name for i in INVARIANTS)


@pytest.mark.parametrize("name", sorted(PLANTS))
def test_invariant_catches_planted_violation(engine: sa.Engine, tiny: Path, name: str) -> None:
    _unconstrained(engine, tiny)
    before = {r.name: r for r in check_invariants(engine)}
    assert before[name].violations == 0
    with engine.begin() as conn:
        example = PLANTS[name](conn)
    after = {r.name: r for r in check_invariants(engine)}
    assert after[name].violations >= 1
    assert example in after[name].examples
    with pytest.raises(InvariantViolation, match=name):
        assert_invariants(engine)
