"""The same code path on DuckDB under concurrent writers (threads of one process, one file).

DuckDB has no row locks: of two transactions writing the same row, one fails with a
TransactionException. Retrying alone starves under contention (24 writers of one charge:
a thread lost up to 17 of its 20 attempts on an idle machine, and on a loaded one ran out
of them, which made ``test_concurrent_refunds_conserve_the_total`` flaky), so
:func:`paymodel.oltp.transactions.run_transaction` makes the writers of one DuckDB
database take turns. The guarantees of the PostgreSQL tests must still hold, and no
transaction of the flows conflicts with another.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from paymodel.oltp import transactions
from paymodel.oltp.engines import duckdb_engine
from paymodel.oltp.flows import IdempotencyConflict, Payments
from paymodel.oltp.flows.concurrency import run_concurrently, summary
from paymodel.oltp.flows.inspect import count_rows, rows
from paymodel.oltp.schema import create_schema

THREADS = 24


@pytest.fixture
def duck_file(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = duckdb_engine(tmp_path / "oltp.duckdb")
    create_schema(engine)
    yield engine
    engine.dispose()


def card_holder(engine: sa.Engine) -> tuple[Payments, str, str]:
    pay = Payments(engine)
    cus = pay.create_customer(email="duck@example.com")["id"]
    pm = pay.create_payment_method("visa")["id"]
    pay.attach_payment_method(pm, customer_id=cus)
    return pay, cus, pm


def test_concurrent_confirmations_sharing_a_key_make_one_charge(duck_file: sa.Engine) -> None:
    pay, cus, pm = card_holder(duck_file)
    pi = pay.create_payment_intent(1_000, "usd", customer_id=cus, payment_method_id=pm)["id"]
    outcomes = run_concurrently(
        duck_file, THREADS, lambda p, i: p.confirm_payment_intent(pi, idempotency_key="one")
    )
    assert set(summary(outcomes)) <= {"succeeded", "IdempotencyConflict"}
    assert all(isinstance(o.error, IdempotencyConflict) for o in outcomes if not o.ok)
    assert count_rows(duck_file, "charges", payment_intent_id=pi) == 1


def test_concurrent_refunds_conserve_the_total(duck_file: sa.Engine) -> None:
    pay, cus, pm = card_holder(duck_file)
    amount, each = 3_000, 200
    pi = pay.create_payment_intent(
        amount, "usd", customer_id=cus, payment_method_id=pm, confirm=True
    )
    charge = pi["latest_charge"]
    outcomes = run_concurrently(
        duck_file, THREADS,
        lambda p, i: p.refund_charge(charge, amount=each, idempotency_key=f"refund-{i}"),
    )  # fmt: skip
    reported = sum(o.result["amount"] for o in outcomes if o.ok)
    row = rows(duck_file, "charges", id=charge)[0]
    assert row["amount_refunded"] == reported == amount  # 15 of 24 fit exactly
    assert sum(r["amount"] for r in rows(duck_file, "refunds", charge_id=charge)) == reported
    assert summary(outcomes)["succeeded"] == amount // each


def test_concurrent_finalisations_number_invoices_uniquely(duck_file: sa.Engine) -> None:
    """Numbering reads a count without writing it: the customer claim (lock_rows) serialises it."""
    pay, cus, _ = card_holder(duck_file)
    product = pay.create_product("Widget")["id"]
    price = pay.create_price(product, 1_000, "usd")["id"]
    drafts = [pay.create_invoice(cus, [{"price": price}])["id"] for _ in range(12)]
    outcomes = run_concurrently(duck_file, len(drafts), lambda p, i: p.finalize_invoice(drafts[i]))
    assert summary(outcomes) == {"succeeded": len(drafts)}
    numbers = sorted(r["number"] for r in rows(duck_file, "invoices"))
    assert [n.rsplit("-", 1)[1] for n in numbers] == [f"{i:04d}" for i in range(1, 13)]


def test_concurrent_writers_of_one_row_never_conflict(
    duck_file: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cause of the old flakiness: conflicts that a bounded retry could not absorb."""
    conflicts: list[BaseException] = []
    retryable = transactions.is_retryable

    def counting(error: BaseException) -> bool:
        if retryable(error):
            conflicts.append(error)
            return True
        return False

    monkeypatch.setattr(transactions, "is_retryable", counting)
    pay, cus, pm = card_holder(duck_file)
    charge = pay.create_payment_intent(
        3_000, "usd", customer_id=cus, payment_method_id=pm, confirm=True
    )["latest_charge"]
    outcomes = run_concurrently(
        duck_file, THREADS,
        lambda p, i: p.refund_charge(charge, amount=200, idempotency_key=f"refund-{i}"),
    )  # fmt: skip
    assert summary(outcomes) == {"succeeded": 15, "IllegalTransition": THREADS - 15}
    assert conflicts == []
