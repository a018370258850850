"""Every payment flow and every illegal transition, on DuckDB and on PostgreSQL.

Each flow test checks the rows the operation implies (charge, balance transaction, fee
details, refunds, invoices...) and its events; each refusal checks the error names the
object and the rule, and that the database is exactly as before (nothing written).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from paymodel.model.stripe import to_stripe_object
from paymodel.oltp.engines import duckdb_engine
from paymodel.oltp.flows import (
    PAYMENT_INTENT,
    AmountExceeded,
    CardBehaviour,
    IllegalTransition,
    InvalidRequest,
    ManualClock,
    NotFound,
    Payments,
    SequentialIds,
)
from paymodel.oltp.flows.inspect import count_rows, database_state, event_types, rows
from paymodel.oltp.ingest import ingest
from paymodel.oltp.invariants import check_invariants
from paymodel.oltp.schema import create_schema, oltp_tables

START = dt.datetime(2026, 1, 1, 9, 0, tzinfo=dt.UTC)
"""The clock starts here: January has 31 days, which makes proration checkable by hand."""


def assert_dataset_invariants(engine: sa.Engine) -> None:
    """The dataset invariants (paymodel.oltp.invariants) hold on what the flows wrote."""
    broken = [r for r in check_invariants(engine) if not r.ok]
    assert not broken, broken


@pytest.fixture
def pay(engine: sa.Engine) -> Iterator[Payments]:
    """Payments on a fresh schema; after the test, the dataset invariants must hold."""
    create_schema(engine)
    yield Payments(engine, clock=ManualClock(START), ids=SequentialIds())
    assert_dataset_invariants(engine)


def refused(
    engine: sa.Engine, action: Callable[[], Any], error: type[Exception], match: str
) -> Exception:
    """``action`` raises ``error`` whose message contains ``match``; every table is as it was."""
    before = database_state(engine)
    with pytest.raises(error, match=re.escape(match)) as info:
        action()
    assert database_state(engine) == before
    return info.value


def customer_with_card(pay: Payments, card: str = "visa") -> tuple[str, str]:
    cus = pay.create_customer(email="ada@example.com", name="Ada Lovelace")
    pm = pay.create_payment_method(card)
    pay.attach_payment_method(pm["id"], customer_id=cus["id"])
    return cus["id"], pm["id"]


def paid_charge(pay: Payments, amount: int = 10_000, card: str = "visa") -> str:
    cus, pm = customer_with_card(pay, card)
    pi = pay.create_payment_intent(
        amount, "usd", customer_id=cus, payment_method_id=pm, confirm=True
    )
    assert pi["status"] == "succeeded"
    return pi["latest_charge"]


def one(engine: sa.Engine, table: str, **equals: Any) -> dict[str, Any]:
    found = rows(engine, table, **equals)
    assert len(found) == 1, f"{table} {equals}: {len(found)} rows"
    return found[0]


def add_fx_rate(engine: sa.Engine, currency: str, usd_per_unit: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.insert(oltp_tables(engine)["fx_rates"]),
            {
                "rate_date": START.date(),
                "currency": currency,
                "usd_per_unit": Decimal(usd_per_unit),
            },
        )


# --------------------------------------------------------------------- customers, cards
def test_create_customer_writes_customer_address_and_event(
    engine: sa.Engine, pay: Payments
) -> None:
    cus = pay.create_customer(
        email="grace@example.com",
        name="Grace Hopper",
        address={"city": "Arlington", "country": "US"},
    )
    row = one(engine, "customers", id=cus["id"])
    assert (row["email"], row["balance"], row["delinquent"]) == ("grace@example.com", 0, False)
    assert one(engine, "customer_addresses", customer_id=cus["id"])["city"] == "Arlington"
    assert event_types(engine, cus["id"]) == ["customer.created"]
    event = one(engine, "events", object_id=cus["id"])
    assert event["data_object"]["id"] == cus["id"]
    assert event["object_type"] == "customer"


def test_attach_and_detach_payment_method(engine: sa.Engine, pay: Payments) -> None:
    cus, pm = customer_with_card(pay)
    assert one(engine, "payment_methods", id=pm)["customer_id"] == cus
    pay.detach_payment_method(pm)
    assert one(engine, "payment_methods", id=pm)["customer_id"] is None
    assert event_types(engine, pm) == ["payment_method.attached", "payment_method.detached"]


def test_payment_method_refusals_write_nothing(engine: sa.Engine, pay: Payments) -> None:
    cus, pm = customer_with_card(pay)
    other = pay.create_customer(email="other@example.com")["id"]
    refused(engine, lambda: pay.attach_payment_method(pm, customer_id=other), IllegalTransition,
            f"payment_method {pm}: is already attached to customer {cus}")  # fmt: skip
    loose = pay.create_payment_method("mastercard")["id"]
    refused(engine, lambda: pay.detach_payment_method(loose), IllegalTransition,
            f"payment_method {loose}: is not attached to a customer")  # fmt: skip
    pay.detach_payment_method(pm)
    refused(engine, lambda: pay.attach_payment_method(pm, customer_id=cus), IllegalTransition,
            "was detached and cannot be attached again")  # fmt: skip
    refused(engine, lambda: pay.attach_payment_method("pm_missing", customer_id=cus), NotFound,
            "payment_method pm_missing: does not exist")  # fmt: skip


# --------------------------------------------------------------------- payment intents
def test_confirm_charges_card_with_fees_and_balance_transaction(
    engine: sa.Engine, pay: Payments
) -> None:
    cus, pm = customer_with_card(pay)
    pi = pay.create_payment_intent(2_000, "usd", customer_id=cus, payment_method_id=pm)
    assert pi["status"] == "requires_confirmation"
    pi = pay.confirm_payment_intent(pi["id"])
    assert (pi["status"], pi["amount_received"]) == ("succeeded", 2_000)
    charge = one(engine, "charges", payment_intent_id=pi["id"])
    assert (charge["status"], charge["paid"], charge["captured"], charge["amount_captured"]) == (
        "succeeded", True, True, 2_000,
    )  # fmt: skip
    txn = one(engine, "balance_transactions", charge_id=charge["id"])
    # 2.9% of 2000 = 58, plus 30: domestic card, no conversion.
    assert (txn["amount"], txn["fee"], txn["net"], txn["currency"]) == (2_000, 88, 1_912, "usd")
    assert txn["available_on"] - txn["created"] == dt.timedelta(days=2)
    fees = rows(engine, "balance_transaction_fee_details", balance_transaction_id=txn["id"])
    assert [f["amount"] for f in fees] == [88]
    assert event_types(engine, pi["id"]) == [
        "payment_intent.created", "payment_intent.succeeded",
    ]  # fmt: skip
    assert event_types(engine, charge["id"]) == ["charge.succeeded"]


def test_international_card_pays_the_international_fee(engine: sa.Engine, pay: Payments) -> None:
    charge = paid_charge(pay, 10_000, card="visa_gb")
    txn = one(engine, "balance_transactions", charge_id=charge)
    fees = rows(engine, "balance_transaction_fee_details", balance_transaction_id=txn["id"])
    assert [f["amount"] for f in fees] == [320, 150]  # 2.9% + 30, then 1.5%
    assert txn["fee"] == 470


def test_converted_charge_settles_in_usd_with_rate_and_conversion_fee(
    engine: sa.Engine, pay: Payments
) -> None:
    add_fx_rate(engine, "eur", "1.1")
    cus, pm = customer_with_card(pay)
    pi = pay.create_payment_intent(
        1_000, "eur", customer_id=cus, payment_method_id=pm, confirm=True
    )
    txn = one(engine, "balance_transactions", charge_id=pi["latest_charge"])
    assert (txn["amount"], txn["currency"], Decimal(txn["exchange_rate"])) == (
        1_100,
        "usd",
        Decimal("1.1"),
    )
    fees = rows(engine, "balance_transaction_fee_details", balance_transaction_id=txn["id"])
    assert [f["amount"] for f in fees] == [62, 11]  # 2.9% of 1100 + 30; 1% conversion


def test_charge_without_fx_rate_is_refused(engine: sa.Engine, pay: Payments) -> None:
    cus, pm = customer_with_card(pay)
    pi = pay.create_payment_intent(1_000, "eur", customer_id=cus, payment_method_id=pm)
    refused(engine, lambda: pay.confirm_payment_intent(pi["id"]), InvalidRequest,
            "no fx_rates row for eur")  # fmt: skip


def test_decline_then_retry_with_another_card(engine: sa.Engine, pay: Payments) -> None:
    cus, declined = customer_with_card(pay, "insufficient_funds")
    pi = pay.create_payment_intent(
        5_000, "usd", customer_id=cus, payment_method_id=declined, confirm=True
    )
    assert (pi["status"], pi["amount_received"]) == ("requires_payment_method", 0)
    failed = one(engine, "charges", payment_intent_id=pi["id"])
    # Stripe's places: the error code card_declined, the issuer's reason beside it
    assert (failed["status"], failed["failure_code"], failed["outcome_type"]) == (
        "failed", "card_declined", "issuer_declined",
    )  # fmt: skip
    assert failed["outcome_reason"] == "insufficient_funds"
    stored = one(engine, "payment_intents", id=pi["id"])
    assert (stored["last_payment_error_code"], stored["last_payment_error_decline_code"]) == (
        "card_declined", "insufficient_funds",
    )  # fmt: skip
    assert count_rows(engine, "balance_transactions") == 0
    good = pay.create_payment_method("visa")["id"]
    pay.attach_payment_method(good, customer_id=cus)
    pi = pay.confirm_payment_intent(pi["id"], payment_method_id=good)
    assert pi["status"] == "succeeded"
    charges = rows(engine, "charges", payment_intent_id=pi["id"])
    assert sorted(c["status"] for c in charges) == ["failed", "succeeded"]
    assert pi["latest_charge"] == next(c["id"] for c in charges if c["status"] == "succeeded")
    stored = one(engine, "payment_intents", id=pi["id"])
    assert (stored["last_payment_error_code"], stored["last_payment_error_decline_code"]) == (None, None)


def test_radar_block_is_not_sent_to_the_network(engine: sa.Engine, pay: Payments) -> None:
    cus, pm = customer_with_card(pay, "radar_block")
    pi = pay.create_payment_intent(900, "usd", customer_id=cus, payment_method_id=pm, confirm=True)
    charge = one(engine, "charges", payment_intent_id=pi["id"])
    assert (charge["outcome_type"], charge["outcome_network_status"], charge["outcome_risk_level"]) == (
        "blocked", "not_sent_to_network", "highest",
    )  # fmt: skip


def test_card_behaviour_in_the_request_overrides_the_card(engine: sa.Engine, pay: Payments) -> None:
    cus, pm = customer_with_card(pay, "visa")
    pi = pay.create_payment_intent(900, "usd", customer_id=cus, payment_method_id=pm)
    pi = pay.confirm_payment_intent(pi["id"], card_behaviour=CardBehaviour("expired_card"))
    assert pi["status"] == "requires_payment_method"
    assert one(engine, "charges", payment_intent_id=pi["id"])["failure_code"] == "expired_card"


def test_three_d_secure_then_success(engine: sa.Engine, pay: Payments) -> None:
    cus, pm = customer_with_card(pay, "three_d_secure")
    pi = pay.create_payment_intent(
        3_000, "usd", customer_id=cus, payment_method_id=pm, confirm=True
    )
    assert pi["status"] == "requires_action"
    assert count_rows(engine, "charges") == 0
    pi = pay.authenticate_payment_intent(pi["id"])
    assert pi["status"] == "succeeded"
    assert (
        one(engine, "charges", payment_intent_id=pi["id"])["three_d_secure_result"]
        == "authenticated"
    )
    assert event_types(engine, pi["id"]) == [
        "payment_intent.created", "payment_intent.requires_action", "payment_intent.succeeded",
    ]  # fmt: skip


def test_three_d_secure_failed_makes_no_charge(engine: sa.Engine, pay: Payments) -> None:
    cus, pm = customer_with_card(pay, "three_d_secure")
    pi = pay.create_payment_intent(
        3_000, "usd", customer_id=cus, payment_method_id=pm, confirm=True
    )
    pi = pay.authenticate_payment_intent(pi["id"], succeed=False)
    assert pi["status"] == "requires_payment_method"
    row = one(engine, "payment_intents", id=pi["id"])
    assert row["last_payment_error_code"] == "payment_intent_authentication_failure"
    assert count_rows(engine, "charges") == 0


def test_three_d_secure_then_declined(engine: sa.Engine, pay: Payments) -> None:
    cus, pm = customer_with_card(pay, "three_d_secure_insufficient_funds")
    pi = pay.create_payment_intent(
        3_000, "usd", customer_id=cus, payment_method_id=pm, confirm=True
    )
    pi = pay.authenticate_payment_intent(pi["id"])
    assert pi["status"] == "requires_payment_method"
    charge = one(engine, "charges", payment_intent_id=pi["id"])
    assert (charge["status"], charge["three_d_secure_result"]) == ("failed", "authenticated")


def test_manual_capture_of_part_of_the_authorisation(engine: sa.Engine, pay: Payments) -> None:
    cus, pm = customer_with_card(pay)
    pi = pay.create_payment_intent(
        2_000, "usd", customer_id=cus, payment_method_id=pm, capture_method="manual", confirm=True
    )
    assert (pi["status"], pi["amount_capturable"]) == ("requires_capture", 2_000)
    charge = one(engine, "charges", payment_intent_id=pi["id"])
    assert (charge["paid"], charge["captured"], charge["amount_captured"]) == (True, False, 0)
    assert count_rows(engine, "balance_transactions") == 0
    refused(engine, lambda: pay.capture_payment_intent(pi["id"], amount_to_capture=2_001), AmountExceeded,
            f"payment_intent {pi['id']}: capture of 2001 exceeds the 2000 capturable")  # fmt: skip
    pi = pay.capture_payment_intent(pi["id"], amount_to_capture=1_500)
    assert (pi["status"], pi["amount_received"], pi["amount_capturable"]) == ("succeeded", 1_500, 0)
    charge = one(engine, "charges", payment_intent_id=pi["id"])
    assert (charge["captured"], charge["amount_captured"], charge["amount"]) == (True, 1_500, 2_000)
    assert one(engine, "balance_transactions", charge_id=charge["id"])["amount"] == 1_500
    assert event_types(engine, charge["id"]) == ["charge.succeeded", "charge.captured"]


def test_cancel_then_capture_is_refused(engine: sa.Engine, pay: Payments) -> None:
    cus, pm = customer_with_card(pay)
    pi = pay.create_payment_intent(
        2_000, "usd", customer_id=cus, payment_method_id=pm, capture_method="manual", confirm=True
    )
    pi = pay.cancel_payment_intent(pi["id"])
    row = one(engine, "payment_intents", id=pi["id"])
    assert (row["status"], row["canceled_at"] is not None, row["amount_capturable"]) == (
        "canceled",
        True,
        0,
    )
    refused(engine, lambda: pay.capture_payment_intent(pi["id"]), IllegalTransition,
            f"payment_intent {pi['id']}: cannot capture in status canceled")  # fmt: skip
    refused(engine, lambda: pay.cancel_payment_intent(pi["id"]), IllegalTransition,
            "cannot cancel in status canceled")  # fmt: skip
    refused(engine, lambda: pay.confirm_payment_intent(pi["id"]), IllegalTransition,
            "cannot confirm in status canceled")  # fmt: skip


def test_succeeded_intent_cannot_be_confirmed_canceled_or_authenticated(
    engine: sa.Engine, pay: Payments
) -> None:
    charge = paid_charge(pay)
    pi = one(engine, "charges", id=charge)["payment_intent_id"]
    for action, verb in [
        (pay.confirm_payment_intent, "confirm"),
        (pay.cancel_payment_intent, "cancel"),
        (pay.authenticate_payment_intent, "authenticate"),
        (pay.capture_payment_intent, "capture"),
    ]:
        refused(engine, lambda action=action: action(pi), IllegalTransition,
                f"payment_intent {pi}: cannot {verb} in status succeeded")  # fmt: skip


def test_payment_intent_parameter_errors(engine: sa.Engine, pay: Payments) -> None:
    cus, pm = customer_with_card(pay)
    refused(
        engine,
        lambda: pay.create_payment_intent(0, "usd"),
        InvalidRequest,
        "amount 0 is not between 1",
    )
    refused(
        engine, lambda: pay.create_payment_intent(1_005, "kwd"), InvalidRequest, "multiple of 10"
    )
    refused(
        engine, lambda: pay.create_payment_intent(100, "xxx"), InvalidRequest, "unknown currency"
    )
    pi = pay.create_payment_intent(100, "usd", customer_id=cus)
    refused(engine, lambda: pay.confirm_payment_intent(pi["id"]), InvalidRequest,
            "cannot be confirmed without a payment method")  # fmt: skip
    stranger = pay.create_customer(email="s@example.com")["id"]
    refused(engine, lambda: pay.create_payment_intent(100, "usd", customer_id=stranger, payment_method_id=pm),
            InvalidRequest, f"belongs to customer {cus}")  # fmt: skip


# --------------------------------------------------------------------- refunds
def test_partial_then_full_refund(engine: sa.Engine, pay: Payments) -> None:
    charge = paid_charge(pay, 10_000)
    first = pay.refund_charge(charge, amount=3_000, reason="requested_by_customer")
    assert (first["status"], first["amount"]) == ("succeeded", 3_000)
    rest = pay.refund_charge(charge)  # the rest
    assert rest["amount"] == 7_000
    row = one(engine, "charges", id=charge)
    assert (row["amount_refunded"], row["refunded"]) == (10_000, True)
    assert (
        sum(r["amount"] for r in rows(engine, "refunds", charge_id=charge))
        == row["amount_refunded"]
    )
    for refund in (first, rest):
        txn = one(engine, "balance_transactions", refund_id=refund["id"])
        assert (txn["amount"], txn["fee"], txn["type"]) == (-refund["amount"], 0, "refund")
    assert event_types(engine, charge) == ["charge.succeeded", "charge.refunded", "charge.refunded"]


def test_refund_refusals(engine: sa.Engine, pay: Payments) -> None:
    charge = paid_charge(pay, 1_000)
    pay.refund_charge(charge, amount=700)
    err = refused(engine, lambda: pay.refund_charge(charge, amount=500), AmountExceeded, "exceeds")
    assert str(err) == f"charge {charge}: refund of 500 exceeds the 300 left to refund"
    # A negative amount is refused as such while the charge still has something to refund
    # (checked after the full refund, it met "fully refunded" and proved nothing).
    refused(engine, lambda: pay.refund_charge(charge, amount=-5), InvalidRequest,
            "amount -5 is not between 1")  # fmt: skip
    pay.refund_charge(charge)
    refused(
        engine, lambda: pay.refund_charge(charge), IllegalTransition, "the charge is fully refunded"
    )
    refused(
        engine, lambda: pay.refund_charge("ch_nope"), NotFound, "charge ch_nope: does not exist"
    )


def test_refund_of_a_failed_or_uncaptured_charge_is_refused(
    engine: sa.Engine, pay: Payments
) -> None:
    cus, pm = customer_with_card(pay, "declined")
    pi = pay.create_payment_intent(
        1_000, "usd", customer_id=cus, payment_method_id=pm, confirm=True
    )
    failed = pi["latest_charge"]
    refused(engine, lambda: pay.refund_charge(failed), IllegalTransition,
            f"charge {failed}: cannot refund in status failed (refund needs status succeeded)")  # fmt: skip
    good = pay.create_payment_method("visa")["id"]
    pay.attach_payment_method(good, customer_id=cus)
    auth = pay.create_payment_intent(
        1_000, "usd", customer_id=cus, payment_method_id=good, capture_method="manual", confirm=True
    )
    refused(engine, lambda: pay.refund_charge(auth["latest_charge"]), IllegalTransition,
            "cannot refund a charge that was not captured")  # fmt: skip
    charge = paid_charge(pay, 1_000)
    refused(engine, lambda: pay.refund_charge(charge, amount=0), InvalidRequest,
            "amount 0 is not between 1")  # fmt: skip


def test_refunds_of_a_converted_charge_settle_to_its_total(
    engine: sa.Engine, pay: Payments
) -> None:
    add_fx_rate(engine, "eur", "1.0873")
    cus, pm = customer_with_card(pay)
    pi = pay.create_payment_intent(
        1_001, "eur", customer_id=cus, payment_method_id=pm, confirm=True
    )
    charge = pi["latest_charge"]
    for amount in (333, 333, 335):
        pay.refund_charge(charge, amount=amount)
    settled = one(engine, "balance_transactions", charge_id=charge)["amount"]
    refunded = sum(
        one(engine, "balance_transactions", refund_id=r["id"])["amount"]
        for r in rows(engine, "refunds", charge_id=charge)
    )
    assert refunded == -settled


# --------------------------------------------------------------------- disputes
def test_dispute_lost_withdraws_amount_and_fee(engine: sa.Engine, pay: Payments) -> None:
    charge = paid_charge(pay, 5_000)
    dispute = pay.open_dispute(charge, reason="product_not_received")
    assert (dispute["status"], dispute["amount"]) == ("needs_response", 5_000)
    assert one(engine, "charges", id=charge)["disputed"] is True
    txn = one(engine, "balance_transactions", dispute_id=dispute["id"])
    assert (txn["amount"], txn["fee"], txn["net"], txn["reporting_category"]) == (
        -5_000,
        1_500,
        -6_500,
        "dispute",
    )
    refused(engine, lambda: pay.refund_charge(charge), IllegalTransition,
            f"cannot refund while dispute {dispute['id']} is needs_response")  # fmt: skip
    pay.submit_dispute_evidence(dispute["id"])
    closed = pay.close_dispute(dispute["id"], won=False)
    assert closed["status"] == "lost"
    assert count_rows(engine, "balance_transactions", dispute_id=dispute["id"]) == 1
    refused(engine, lambda: pay.close_dispute(dispute["id"], won=True), IllegalTransition,
            f"dispute {dispute['id']}: cannot close in status lost")  # fmt: skip
    refused(engine, lambda: pay.refund_charge(charge), IllegalTransition, "is lost")
    assert event_types(engine, dispute["id"]) == [
        "charge.dispute.created", "charge.dispute.funds_withdrawn",
        "charge.dispute.updated", "charge.dispute.closed",
    ]  # fmt: skip


def test_dispute_won_reinstates_the_amount_not_the_fee(engine: sa.Engine, pay: Payments) -> None:
    charge = paid_charge(pay, 5_000)
    pay.refund_charge(charge, amount=1_000)
    dispute = pay.open_dispute(charge)
    assert dispute["amount"] == 4_000  # what was not refunded
    pay.close_dispute(dispute["id"], won=True)
    txns = rows(engine, "balance_transactions", dispute_id=dispute["id"])
    assert sorted((t["reporting_category"], t["amount"], t["fee"]) for t in txns) == [
        ("dispute", -4_000, 1_500), ("dispute_reversal", 4_000, 0),
    ]  # fmt: skip
    assert pay.refund_charge(charge, amount=500)["status"] == "succeeded"  # refundable again


def test_dispute_refusals(engine: sa.Engine, pay: Payments) -> None:
    charge = paid_charge(pay, 5_000)
    refused(engine, lambda: pay.open_dispute(charge, amount=5_001), AmountExceeded,
            f"charge {charge}: dispute of 5001 exceeds the 5000 not refunded")  # fmt: skip
    dispute = pay.open_dispute(charge)
    refused(engine, lambda: pay.open_dispute(charge), IllegalTransition,
            f"is disputed already (dispute {dispute['id']})")  # fmt: skip
    pay.submit_dispute_evidence(dispute["id"])
    refused(engine, lambda: pay.submit_dispute_evidence(dispute["id"]), IllegalTransition,
            "cannot submit_evidence in status under_review")  # fmt: skip
    cus, pm = customer_with_card(pay, "declined")
    failed = pay.create_payment_intent(
        100, "usd", customer_id=cus, payment_method_id=pm, confirm=True
    )
    refused(engine, lambda: pay.open_dispute(failed["latest_charge"]), IllegalTransition,
            "cannot dispute in status failed")  # fmt: skip


# --------------------------------------------------------------------- invoices
def catalogue(pay: Payments, amount: int = 1_000, currency: str = "usd") -> tuple[str, str]:
    prod = pay.create_product("Seats")["id"]
    monthly = pay.create_price(prod, amount, currency, recurring_interval="month")["id"]
    return prod, monthly


def test_one_off_invoice_finalise_and_pay(engine: sa.Engine, pay: Payments) -> None:
    cus, pm = customer_with_card(pay)
    prod = pay.create_product("Setup")["id"]
    once = pay.create_price(prod, 2_500, "usd")["id"]
    inv = pay.create_invoice(
        cus, [{"price": once, "quantity": 2}, {"amount": 500, "description": "Rush"}]
    )
    assert inv["status"] == "draft"
    row = one(engine, "invoices", id=inv["id"])
    assert (row["subtotal"], row["total"], row["amount_due"], row["number"]) == (
        5_500,
        5_500,
        5_500,
        None,
    )
    refused(engine, lambda: pay.pay_invoice(inv["id"], payment_method_id=pm), IllegalTransition,
            f"invoice {inv['id']}: cannot pay in status draft")  # fmt: skip
    pay.finalize_invoice(inv["id"])
    row = one(engine, "invoices", id=inv["id"])
    assert row["status"] == "open"
    assert row["number"].endswith("-0001")
    refused(engine, lambda: pay.finalize_invoice(inv["id"]), IllegalTransition,
            "cannot finalize in status open")  # fmt: skip
    refused(
        engine,
        lambda: pay.pay_invoice(inv["id"]),
        InvalidRequest,
        "has no payment method to charge",
    )
    paid = pay.pay_invoice(inv["id"], payment_method_id=pm)
    assert paid["status"] == "paid"
    row = one(engine, "invoices", id=inv["id"])
    assert (row["amount_paid"], row["amount_remaining"], row["attempt_count"]) == (5_500, 0, 1)
    payment = one(engine, "invoice_payments", invoice_id=inv["id"])
    assert (payment["status"], payment["amount_paid"]) == ("paid", 5_500)
    assert one(engine, "payment_intents", id=payment["payment_intent_id"])["status"] == "succeeded"
    refused(engine, lambda: pay.pay_invoice(inv["id"], payment_method_id=pm), IllegalTransition,
            "cannot pay in status paid")  # fmt: skip
    second = pay.create_invoice(cus, [{"price": once}])
    pay.finalize_invoice(second["id"])
    assert one(engine, "invoices", id=second["id"])["number"].endswith("-0002")


def test_invoice_refusals(engine: sa.Engine, pay: Payments) -> None:
    cus, _ = customer_with_card(pay)
    _, monthly = catalogue(pay, currency="usd")
    pay.create_invoice(cus, [{"price": monthly}])
    _, eur = catalogue(pay, currency="eur")
    refused(engine, lambda: pay.create_invoice(cus, [{"price": eur}]), InvalidRequest,
            f"customer {cus}: is billed in usd, not eur")  # fmt: skip
    refused(engine, lambda: pay.create_invoice(cus, []), InvalidRequest, "at least one item")
    refused(
        engine,
        lambda: pay.finalize_invoice("in_missing"),
        NotFound,
        "invoice in_missing: does not exist",
    )


# --------------------------------------------------------------------- subscriptions
def test_subscription_charged_at_creation_is_active(engine: sa.Engine, pay: Payments) -> None:
    cus, pm = customer_with_card(pay)
    _, monthly = catalogue(pay, 1_000)
    sub = pay.create_subscription(
        cus, [{"price": monthly, "quantity": 3}], default_payment_method_id=pm
    )
    assert sub["status"] == "active"
    inv = one(engine, "invoices", id=sub["latest_invoice"])
    assert (inv["status"], inv["billing_reason"], inv["amount_paid"]) == (
        "paid",
        "subscription_create",
        3_000,
    )
    item = one(engine, "subscription_items", subscription_id=sub["id"])
    assert item["current_period_end"] == dt.datetime(2026, 2, 1, 9, 0, tzinfo=dt.UTC)
    payment = one(engine, "invoice_payments", invoice_id=inv["id"])
    charge = one(engine, "charges", payment_intent_id=payment["payment_intent_id"])
    assert (charge["amount_captured"], one(engine, "customers", id=cus)["currency"]) == (
        3_000,
        "usd",
    )
    assert event_types(engine, sub["id"]) == [
        "customer.subscription.created",
        "customer.subscription.updated",
    ]


def test_subscription_with_trial_starts_trialing_with_a_zero_invoice(
    engine: sa.Engine, pay: Payments
) -> None:
    cus, pm = customer_with_card(pay)
    _, monthly = catalogue(pay)
    sub = pay.create_subscription(
        cus, [{"price": monthly}], default_payment_method_id=pm, trial_period_days=14
    )
    assert sub["status"] == "trialing"
    inv = one(engine, "invoices", id=sub["latest_invoice"])
    assert (inv["status"], inv["total"]) == ("paid", 0)
    assert count_rows(engine, "payment_intents") == 0
    row = one(engine, "subscriptions", id=sub["id"])
    assert row["trial_end"] - row["trial_start"] == dt.timedelta(days=14)


def test_subscription_sent_invoice_is_active_with_an_open_invoice(
    engine: sa.Engine, pay: Payments
) -> None:
    cus = pay.create_customer(email="b@example.com")["id"]
    _, monthly = catalogue(pay)
    sub = pay.create_subscription(
        cus, [{"price": monthly}], collection_method="send_invoice", days_until_due=10
    )
    assert sub["status"] == "active"
    inv = one(engine, "invoices", id=sub["latest_invoice"])
    assert (inv["status"], inv["due_date"] - inv["created"]) == ("open", dt.timedelta(days=10))


def test_subscription_declined_is_incomplete_then_paid(engine: sa.Engine, pay: Payments) -> None:
    cus, bad = customer_with_card(pay, "declined")
    _, monthly = catalogue(pay)
    sub = pay.create_subscription(cus, [{"price": monthly}], default_payment_method_id=bad)
    assert sub["status"] == "incomplete"
    inv_id = sub["latest_invoice"]
    assert (
        one(engine, "invoices", id=inv_id)["status"],
        one(engine, "customers", id=cus)["delinquent"],
    ) == ("open", True)
    good = pay.create_payment_method("visa")["id"]
    pay.attach_payment_method(good, customer_id=cus)
    inv = pay.pay_invoice(inv_id, payment_method_id=good)
    assert inv["status"] == "paid"
    assert one(engine, "subscriptions", id=sub["id"])["status"] == "active"
    assert one(engine, "customers", id=cus)["delinquent"] is False
    assert one(engine, "invoices", id=inv_id)["attempt_count"] == 2
    # The declined attempt's payment intent was reused: one invoice payment, two charges.
    payment = one(engine, "invoice_payments", invoice_id=inv_id)
    assert count_rows(engine, "charges", payment_intent_id=payment["payment_intent_id"]) == 2


def test_subscription_needing_three_d_secure_activates_after_authentication(
    engine: sa.Engine, pay: Payments
) -> None:
    cus, pm = customer_with_card(pay, "three_d_secure")
    _, monthly = catalogue(pay)
    sub = pay.create_subscription(cus, [{"price": monthly}], default_payment_method_id=pm)
    assert sub["status"] == "incomplete"
    inv_id = sub["latest_invoice"]
    refused(engine, lambda: pay.pay_invoice(inv_id), IllegalTransition, "awaits 3-D Secure")
    payment = one(engine, "invoice_payments", invoice_id=inv_id)
    pay.authenticate_payment_intent(payment["payment_intent_id"])
    assert one(engine, "invoices", id=inv_id)["status"] == "paid"
    assert one(engine, "subscriptions", id=sub["id"])["status"] == "active"


def _prorated(amount: int, remaining: dt.timedelta, period: dt.timedelta) -> int:
    share = (
        Decimal(amount)
        * Decimal(int(remaining.total_seconds()))
        / Decimal(int(period.total_seconds()))
    )
    return int(share.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def test_quantity_upgrade_invoices_the_prorated_difference(
    engine: sa.Engine, pay: Payments
) -> None:
    cus, pm = customer_with_card(pay)
    _, monthly = catalogue(pay, 3_100)
    sub = pay.create_subscription(
        cus, [{"price": monthly, "quantity": 1}], default_payment_method_id=pm
    )
    pay.clock.advance(days=10)  # 21 of 31 days left
    updated = pay.update_subscription(sub["id"], quantity=3)
    inv = one(engine, "invoices", id=updated["latest_invoice"])
    lines = sorted(
        rows(engine, "invoice_line_items", invoice_id=inv["id"]), key=lambda line: line["amount"]
    )
    left, period = dt.timedelta(days=21), dt.timedelta(days=31)
    assert [line["amount"] for line in lines] == [
        -_prorated(3_100, left, period),
        _prorated(9_300, left, period),
    ]
    assert [line["amount"] for line in lines] == [-2_100, 6_300]
    assert all(line["proration"] for line in lines)
    assert (inv["billing_reason"], inv["total"], inv["status"], inv["amount_paid"]) == (
        "subscription_update", 4_200, "paid", 4_200,
    )  # fmt: skip
    assert one(engine, "subscription_items", subscription_id=sub["id"])["quantity"] == 3


def test_downgrade_credits_the_customer_balance_used_by_the_next_invoice(
    engine: sa.Engine, pay: Payments
) -> None:
    cus, pm = customer_with_card(pay)
    prod, premium = catalogue(pay, 6_200)
    basic = pay.create_price(prod, 3_100, "usd", recurring_interval="month")["id"]
    sub = pay.create_subscription(cus, [{"price": premium}], default_payment_method_id=pm)
    pay.clock.advance(days=10)
    updated = pay.update_subscription(sub["id"], price_id=basic)
    inv = one(engine, "invoices", id=updated["latest_invoice"])
    assert (inv["total"], inv["amount_due"], inv["status"]) == (-4_200 + 2_100, 0, "paid")
    assert one(engine, "customers", id=cus)["balance"] == -2_100
    assert one(engine, "subscription_items", subscription_id=sub["id"])["price_id"] == basic
    extra = pay.create_invoice(
        cus, [{"amount": 5_000, "description": "Consulting"}], currency="usd"
    )
    pay.finalize_invoice(extra["id"])
    row = one(engine, "invoices", id=extra["id"])
    assert (row["starting_balance"], row["amount_due"]) == (-2_100, 2_900)
    assert one(engine, "customers", id=cus)["balance"] == 0


def test_update_without_proration(engine: sa.Engine, pay: Payments) -> None:
    cus, pm = customer_with_card(pay)
    _, monthly = catalogue(pay)
    sub = pay.create_subscription(cus, [{"price": monthly}], default_payment_method_id=pm)
    invoices = count_rows(engine, "invoices")
    updated = pay.update_subscription(sub["id"], quantity=5, proration_behavior="none")
    assert "latest_invoice" not in updated
    assert count_rows(engine, "invoices") == invoices
    assert one(engine, "subscription_items", subscription_id=sub["id"])["quantity"] == 5


def test_cancel_at_period_end_then_now(engine: sa.Engine, pay: Payments) -> None:
    cus, pm = customer_with_card(pay)
    _, monthly = catalogue(pay)
    sub = pay.create_subscription(cus, [{"price": monthly}], default_payment_method_id=pm)
    pay.cancel_subscription(sub["id"], at_period_end=True)
    row = one(engine, "subscriptions", id=sub["id"])
    assert (row["status"], row["cancel_at_period_end"], row["cancel_at"]) == (
        "active", True, dt.datetime(2026, 2, 1, 9, 0, tzinfo=dt.UTC),
    )  # fmt: skip
    refused(engine, lambda: pay.cancel_subscription(sub["id"], at_period_end=True), IllegalTransition,
            "already set to cancel")  # fmt: skip
    pay.cancel_subscription(sub["id"])
    row = one(engine, "subscriptions", id=sub["id"])
    assert (row["status"], row["ended_at"] is not None) == ("canceled", True)
    refused(engine, lambda: pay.cancel_subscription(sub["id"]), IllegalTransition,
            f"subscription {sub['id']}: cannot cancel in status canceled")  # fmt: skip
    refused(engine, lambda: pay.update_subscription(sub["id"], quantity=2), IllegalTransition,
            "cannot update in status canceled")  # fmt: skip
    assert event_types(engine, sub["id"])[-1] == "customer.subscription.deleted"


def test_subscription_refusals(engine: sa.Engine, pay: Payments) -> None:
    cus, pm = customer_with_card(pay)
    prod, monthly = catalogue(pay)
    yearly = pay.create_price(prod, 10_000, "usd", recurring_interval="year")["id"]
    once = pay.create_price(prod, 10_000, "usd")["id"]
    refused(engine, lambda: pay.create_subscription(cus, [{"price": once}]), InvalidRequest,
            "is not a licensed recurring price")  # fmt: skip
    refused(engine, lambda: pay.create_subscription(cus, [{"price": monthly}, {"price": yearly}]),
            InvalidRequest, "one currency and billing interval")  # fmt: skip
    sub = pay.create_subscription(cus, [{"price": monthly}], default_payment_method_id=pm)
    refused(engine, lambda: pay.update_subscription(sub["id"], price_id=yearly), InvalidRequest,
            "changing the billing cycle is not supported")  # fmt: skip
    refused(engine, lambda: pay.update_subscription(sub["id"]), InvalidRequest, "nothing to change")
    refused(engine, lambda: pay.detach_payment_method(pm), IllegalTransition,
            f"is the default payment method of subscription {sub['id']}")  # fmt: skip


# --------------------------------------------------------------------- cross-cutting
def test_every_event_snapshots_its_object(engine: sa.Engine, pay: Payments) -> None:
    charge = paid_charge(pay)
    pay.refund_charge(charge, amount=100)
    events = rows(engine, "events")
    assert events
    for event in events:
        assert event["data_object"]["id"] == event["object_id"]
        assert event["data_object"]["object"] == event["object_type"]
        assert event["request_id"].startswith("req_")


def test_state_machine_renders_every_payment_intent_transition() -> None:
    diagram = PAYMENT_INTENT.mermaid()
    assert diagram.startswith("stateDiagram-v2")
    for t in PAYMENT_INTENT.transitions:
        assert f"{t.source} --> {t.target}: {t.operation}" in diagram
    assert "succeeded --> " not in diagram  # a succeeded payment intent is final


def test_invariants_hold_after_the_flows(engine: sa.Engine, pay: Payments) -> None:
    """The dataset invariants, checked on what a mix of flows wrote."""
    charge = paid_charge(pay, 10_000)
    pay.refund_charge(charge, amount=2_500)
    other = paid_charge(pay, 4_000)
    dispute = pay.open_dispute(other)
    pay.close_dispute(dispute["id"], won=True)
    cus, pm = customer_with_card(pay)
    _, monthly = catalogue(pay)
    sub = pay.create_subscription(
        cus, [{"price": monthly, "quantity": 2}], default_payment_method_id=pm
    )
    pay.clock.advance(days=3)
    pay.update_subscription(sub["id"], quantity=4)
    for c in rows(engine, "charges"):
        refunded = sum(
            r["amount"]
            for r in rows(engine, "refunds", charge_id=c["id"])
            if r["status"] == "succeeded"
        )
        assert c["amount_refunded"] == refunded
    for txn in rows(engine, "balance_transactions"):
        fees = rows(engine, "balance_transaction_fee_details", balance_transaction_id=txn["id"])
        assert txn["fee"] == sum(f["amount"] for f in fees)
    for pi in rows(engine, "payment_intents"):
        succeeded = [
            c
            for c in rows(engine, "charges", payment_intent_id=pi["id"])
            if c["status"] == "succeeded"
        ]
        assert (pi["status"] == "succeeded") == (len(succeeded) == 1)
        if pi["status"] == "succeeded":
            assert pi["amount_received"] == succeeded[0]["amount_captured"]
    for inv in rows(engine, "invoices"):
        lines = rows(engine, "invoice_line_items", invoice_id=inv["id"])
        assert inv["subtotal"] == sum(line["amount"] for line in lines)
        if inv["status"] == "paid":
            paid = sum(
                p["amount_paid"] for p in rows(engine, "invoice_payments", invoice_id=inv["id"])
            )
            assert inv["amount_paid"] == inv["amount_due"] == paid
    assert_dataset_invariants(engine)  # and the generator's SQL checks of the same rules


def test_event_log_replayed_by_ingestion_rebuilds_every_table(
    engine: sa.Engine, pay: Payments
) -> None:
    """Events are 'the append-only log of state changes; replaying it rebuilds the other tables'."""
    charge = paid_charge(pay, 10_000)
    pay.refund_charge(charge, amount=1_000)
    dispute = pay.open_dispute(charge)
    pay.close_dispute(dispute["id"], won=True)
    cus, pm = customer_with_card(pay, "three_d_secure")
    _, monthly = catalogue(pay)
    sub = pay.create_subscription(
        cus, [{"price": monthly, "quantity": 2}], default_payment_method_id=pm
    )
    payment = one(engine, "invoice_payments", invoice_id=sub["latest_invoice"])
    pay.authenticate_payment_intent(payment["payment_intent_id"])
    pay.clock.advance(days=4)
    pay.update_subscription(sub["id"], quantity=1)
    pay.cancel_subscription(sub["id"], at_period_end=True)
    log = [to_stripe_object("events", event) for event in rows(engine, "events")]
    replica = duckdb_engine()
    create_schema(replica)
    report = ingest(log, replica)
    assert (report.applied, report.quarantined, report.pending) == (len(log), 0, 0)
    bookkeeping = ("idempotency_keys", "ingest_versions", "ingest_pending", "ingest_quarantine")
    assert database_state(replica, skip=bookkeeping) == database_state(engine, skip=bookkeeping)
    replica.dispose()


def test_reasons_outside_the_model_are_refused(engine: sa.Engine, pay: Payments) -> None:
    charge = paid_charge(pay)
    pi = one(engine, "charges", id=charge)["payment_intent_id"]
    refused(engine, lambda: pay.refund_charge(charge, reason="changed_mind"), InvalidRequest,
            f"charge {charge}: reason 'changed_mind' is not one of: duplicate")  # fmt: skip
    refused(engine, lambda: pay.open_dispute(charge, reason="whatever"), InvalidRequest,
            "reason 'whatever' is not one of")  # fmt: skip
    refused(engine, lambda: pay.cancel_payment_intent(pi, cancellation_reason="bored"), InvalidRequest,
            f"payment_intent {pi}: cancellation_reason 'bored' is not one of")  # fmt: skip
