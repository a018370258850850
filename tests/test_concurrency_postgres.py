"""Concurrency on a real PostgreSQL, with threads that each hold their own connection.

1. 50 concurrent confirmations of one payment intent sharing an idempotency key give
   exactly one charge.
2. 100 concurrent partial refunds of one charge never refund more than it captured, and
   the refunded total equals the sum of the refunds that reported success (the
   conserved-total check of Jepsen's bank test).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from paymodel.oltp.engines import postgres_engine
from paymodel.oltp.flows import AmountExceeded, IdempotencyConflict, IllegalTransition, Payments
from paymodel.oltp.flows.concurrency import run_concurrently, summary
from paymodel.oltp.flows.inspect import count_rows, rows
from paymodel.oltp.schema import create_schema

CONFIRMATIONS = 50
REFUNDS = 100


@pytest.fixture
def pg(pg_dsn: str) -> Iterator[sa.Engine]:
    engine = postgres_engine(pg_dsn)
    create_schema(engine)
    yield engine
    engine.dispose()


def intent_ready_to_confirm(engine: sa.Engine, amount: int = 4_200) -> str:
    pay = Payments(engine)
    cus = pay.create_customer(email="race@example.com")["id"]
    pm = pay.create_payment_method("visa")["id"]
    pay.attach_payment_method(pm, customer_id=cus)
    return pay.create_payment_intent(amount, "usd", customer_id=cus, payment_method_id=pm)["id"]


def test_50_concurrent_confirmations_sharing_a_key_make_one_charge(pg: sa.Engine) -> None:
    pi = intent_ready_to_confirm(pg)
    outcomes = run_concurrently(
        pg, CONFIRMATIONS,
        lambda pay, i: pay.confirm_payment_intent(pi, idempotency_key=f"confirm-{pi}"),
    )  # fmt: skip
    counts = summary(outcomes)
    assert set(counts) <= {"succeeded", "IdempotencyConflict"}, counts
    assert counts.get("succeeded", 0) >= 1
    assert sum(counts.values()) == CONFIRMATIONS
    charges = rows(pg, "charges", payment_intent_id=pi)
    assert len(charges) == 1
    assert charges[0]["status"] == "succeeded"
    # Every success is the same stored result: the one charge, the one succeeded intent.
    results = [o.result for o in outcomes if o.ok]
    assert all(r == results[0] for r in results)
    assert results[0]["latest_charge"] == charges[0]["id"]
    assert count_rows(pg, "balance_transactions", charge_id=charges[0]["id"]) == 1
    assert count_rows(pg, "events", object_id=pi, type="payment_intent.succeeded") == 1
    key = rows(pg, "idempotency_keys", idempotency_key=f"confirm-{pi}")[0]
    assert (key["recovery_point"], key["locked_at"], key["response_status"]) == (
        "finished",
        None,
        200,
    )
    assert all(isinstance(o.error, IdempotencyConflict) for o in outcomes if not o.ok)


def test_50_concurrent_confirmations_without_a_key_still_make_one_charge(pg: sa.Engine) -> None:
    """Without a key, the payment intent's row lock serialises them: one wins, the rest see it succeeded."""
    pi = intent_ready_to_confirm(pg)
    outcomes = run_concurrently(pg, CONFIRMATIONS, lambda pay, i: pay.confirm_payment_intent(pi))
    assert summary(outcomes) == {"succeeded": 1, "IllegalTransition": CONFIRMATIONS - 1}
    assert all(isinstance(o.error, IllegalTransition) for o in outcomes if not o.ok)
    assert count_rows(pg, "charges", payment_intent_id=pi) == 1


def test_100_concurrent_partial_refunds_conserve_the_total(pg: sa.Engine) -> None:
    amount, each = 10_000, 150
    pay = Payments(pg)
    pi = intent_ready_to_confirm(pg, amount)
    charge = pay.confirm_payment_intent(pi)["latest_charge"]
    outcomes = run_concurrently(
        pg, REFUNDS,
        lambda pay, i: pay.refund_charge(charge, amount=each, idempotency_key=f"refund-{charge}-{i}"),
    )  # fmt: skip
    succeeded = [o.result for o in outcomes if o.ok]
    assert all(isinstance(o.error, AmountExceeded) for o in outcomes if not o.ok)
    reported = sum(r["amount"] for r in succeeded)
    row = rows(pg, "charges", id=charge)[0]
    # Never more than captured...
    assert row["amount_refunded"] <= row["amount_captured"] == amount
    # ...and the total is conserved: the charge, the refund rows and the ledger agree with
    # what the clients were told.
    assert row["amount_refunded"] == reported
    refunds = rows(pg, "refunds", charge_id=charge)
    assert sorted(r["id"] for r in refunds) == sorted(r["id"] for r in succeeded)
    assert sum(r["amount"] for r in refunds) == reported
    ledger = sum(t["amount"] for t in rows(pg, "balance_transactions", type="refund"))
    assert ledger == -reported
    # Serialised by the charge's row lock, every refund that fits succeeds.
    assert len(succeeded) == amount // each


def test_concurrent_finalisations_number_invoices_uniquely(pg: sa.Engine) -> None:
    pay = Payments(pg)
    cus = pay.create_customer(email="numbers@example.com")["id"]
    product = pay.create_product("Widget")["id"]
    price = pay.create_price(product, 1_000, "usd")["id"]
    drafts = [pay.create_invoice(cus, [{"price": price}])["id"] for _ in range(20)]
    outcomes = run_concurrently(pg, len(drafts), lambda p, i: p.finalize_invoice(drafts[i]))
    assert summary(outcomes) == {"succeeded": len(drafts)}
    numbers = sorted(r["number"] for r in rows(pg, "invoices"))
    assert [n.rsplit("-", 1)[1] for n in numbers] == [f"{i:04d}" for i in range(1, 21)]
