"""The Stripe mapping: rows -> Stripe objects -> the same rows, for every table.

Also: the variants of Stripe's API shape the reader accepts, expanded objects, and
errors that name the object and the rule it broke.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import paymodel.model.stripe as stripe
from paymodel.model.oltp import OLTP
from paymodel.model.stripe import (
    OBJECT_TABLES,
    StripeObjectError,
    UnknownObjectType,
    from_stripe_object,
    object_key,
    row_problems,
    to_stripe_object,
)

T0 = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)


def at(days: float) -> datetime:
    """An instant ``days`` after T0, whole seconds."""
    return datetime.fromtimestamp(int(T0.timestamp() + days * 86400), UTC)


CUSTOMER = {
    "id": "cus_Ra1", "email": "ana@example.com", "name": "Ana Lima", "phone": "+351210000000",
    "currency": "eur", "balance": -500, "delinquent": False, "preferred_locale": "pt",
    "created": T0, "metadata": {"crm_id": "42"},
}  # fmt: skip
ADDRESS = {
    "customer_id": "cus_Ra1", "line1": "Rua Augusta 1", "line2": None, "city": "Lisboa",
    "state": None, "postal_code": "1100-048", "country": "PT",
}  # fmt: skip
PAYMENT_METHOD = {
    "id": "pm_Ra1", "customer_id": "cus_Ra1", "type": "card", "card_brand": "visa",
    "card_funding": "credit", "card_country": "PT", "card_last4": "4242", "card_exp_month": 8,
    "card_exp_year": 2030, "card_fingerprint": "AOB934RVNwzk6xtn", "created": at(0.01),
}  # fmt: skip
SEPA_METHOD = {
    "id": "pm_Ra2", "customer_id": None, "type": "sepa_debit", "card_brand": None,
    "card_funding": None, "card_country": None, "card_last4": None, "card_exp_month": None,
    "card_exp_year": None, "card_fingerprint": None, "created": at(0.02),
}  # fmt: skip
PRODUCT = {"id": "prod_Ra1", "name": "Team plan", "description": "Seats for teams",
           "active": True, "created": at(-30), "metadata": {}}  # fmt: skip
PRICE = {
    "id": "price_Ra1", "product_id": "prod_Ra1", "currency": "eur", "unit_amount": 1200,
    "type": "recurring", "billing_scheme": "per_unit", "recurring_interval": "month",
    "recurring_interval_count": 1, "recurring_usage_type": "licensed", "nickname": "Monthly",
    "lookup_key": "team_monthly_eur", "active": True, "created": at(-30), "metadata": {},
}  # fmt: skip
ONE_TIME_PRICE = {
    **PRICE, "id": "price_Ra2", "type": "one_time", "recurring_interval": None,
    "recurring_interval_count": None, "recurring_usage_type": None, "lookup_key": None,
    "nickname": None, "unit_amount": 5000,
}  # fmt: skip
COUPON = {
    "id": "WELCOME25", "name": "25.5% off", "percent_off": Decimal("25.5"), "amount_off": None,
    "currency": None, "duration": "repeating", "duration_in_months": 3, "valid": True,
    "created": at(-10), "metadata": {},
}  # fmt: skip
AMOUNT_COUPON = {
    "id": "FIVE", "name": None, "percent_off": None, "amount_off": 500, "currency": "eur",
    "duration": "once", "duration_in_months": None, "valid": False, "created": at(-9),
    "metadata": {},
}  # fmt: skip
SUBSCRIPTION = {
    "id": "sub_Ra1", "customer_id": "cus_Ra1", "status": "canceled", "currency": "eur",
    "collection_method": "charge_automatically", "default_payment_method_id": "pm_Ra1",
    "start_date": T0, "billing_cycle_anchor": T0, "trial_start": None, "trial_end": None,
    "cancel_at_period_end": False, "cancel_at": None, "canceled_at": at(40), "ended_at": at(40),
    "cancellation_reason": "payment_failed", "created": T0, "metadata": {},
}  # fmt: skip
ITEM = {
    "id": "si_Ra1", "subscription_id": "sub_Ra1", "price_id": "price_Ra1", "quantity": 3,
    "current_period_start": at(31), "current_period_end": at(59), "created": T0,
    "metadata": {},
}  # fmt: skip
DISCOUNT = {"id": "di_Ra1", "coupon_id": "WELCOME25", "customer_id": "cus_Ra1",
            "subscription_id": "sub_Ra1", "starts_at": T0, "ends_at": at(92)}  # fmt: skip
INVOICE = {
    "id": "in_Ra1", "customer_id": "cus_Ra1", "subscription_id": "sub_Ra1", "number": "RA1-0001",
    "status": "paid", "billing_reason": "subscription_create",
    "collection_method": "charge_automatically", "currency": "eur", "subtotal": 3600,
    "discount_amount": 918, "tax": 617, "total": 3299, "starting_balance": 0, "amount_due": 3299,
    "amount_paid": 3299, "amount_remaining": 0, "attempt_count": 1, "period_start": T0,
    "period_end": T0, "due_date": None, "finalized_at": at(0.04), "paid_at": at(0.05),
    "voided_at": None, "created": at(0.03), "metadata": {},
}  # fmt: skip
LINE = {
    "id": "il_Ra1", "invoice_id": "in_Ra1", "subscription_item_id": "si_Ra1",
    "price_id": "price_Ra1", "currency": "eur", "amount": 3600, "discount_amount": 918,
    "quantity": 3, "description": "3 x Team plan", "proration": False, "period_start": T0,
    "period_end": at(31),
}  # fmt: skip
ONE_OFF_LINE = {
    **LINE, "id": "il_Ra2", "subscription_item_id": None, "price_id": None, "amount": -100,
    "discount_amount": 0, "quantity": None, "description": "Goodwill credit", "proration": True,
}  # fmt: skip
PAYMENT_INTENT = {
    "id": "pi_Ra1", "customer_id": "cus_Ra1", "payment_method_id": "pm_Ra1", "currency": "eur",
    "amount": 3299, "amount_capturable": 0, "amount_received": 3299, "status": "succeeded",
    "capture_method": "automatic", "last_payment_error_code": "card_declined",
    "last_payment_error_decline_code": "insufficient_funds",
    "cancellation_reason": None, "canceled_at": None, "description": "Subscription creation",
    "created": at(0.04), "metadata": {},
}  # fmt: skip
INVOICE_PAYMENT = {
    "id": "inpay_Ra1", "invoice_id": "in_Ra1", "payment_intent_id": "pi_Ra1", "currency": "eur",
    "amount_requested": 3299, "amount_paid": 3299, "status": "paid", "is_default": True,
    "paid_at": at(0.05), "canceled_at": None, "created": at(0.04),
}  # fmt: skip
CHARGE = {
    "id": "ch_Ra1", "payment_intent_id": "pi_Ra1", "customer_id": "cus_Ra1",
    "payment_method_id": "pm_Ra1", "currency": "eur", "amount": 3299, "amount_captured": 3299,
    "amount_refunded": 1000, "status": "succeeded", "paid": True, "captured": True,
    "refunded": False, "disputed": True, "failure_code": None, "failure_message": None,
    "outcome_type": "authorized", "outcome_reason": None,
    "outcome_network_status": "approved_by_network",
    "outcome_risk_level": "normal", "outcome_risk_score": 12,
    "three_d_secure_result": "authenticated", "created": at(0.05), "metadata": {},
}  # fmt: skip
CHARGE_TXN = {
    "id": "txn_Ra1", "type": "charge", "reporting_category": "charge", "amount": 3571, "fee": 134,
    "net": 3437, "currency": "usd", "exchange_rate": Decimal("1.0825"), "status": "available",
    "available_on": at(2), "description": "Subscription creation", "charge_id": "ch_Ra1",
    "refund_id": None, "dispute_id": None, "source_payout_id": None, "payout_id": "po_Ra1",
    "created": at(0.05),
}  # fmt: skip
CHARGE_FEES = [
    {"balance_transaction_id": "txn_Ra1", "line": 0, "type": "stripe_fee", "amount": 104,
     "currency": "usd", "description": "Stripe processing fees"},
    {"balance_transaction_id": "txn_Ra1", "line": 1, "type": "tax", "amount": 30,
     "currency": "usd", "description": None},
]  # fmt: skip
REFUND = {
    "id": "re_Ra1", "charge_id": "ch_Ra1", "payment_intent_id": "pi_Ra1", "currency": "eur",
    "amount": 1000, "status": "succeeded", "reason": "requested_by_customer",
    "failure_reason": None, "created": at(5), "metadata": {"ticket": "T-9"},
}  # fmt: skip
REFUND_TXN = {
    **CHARGE_TXN, "id": "txn_Ra2", "type": "refund", "reporting_category": "refund",
    "amount": -1083, "fee": 0, "net": -1083, "charge_id": None, "refund_id": "re_Ra1",
    "available_on": at(5), "created": at(5), "description": None,
}  # fmt: skip
DISPUTE = {
    "id": "dp_Ra1", "charge_id": "ch_Ra1", "payment_intent_id": "pi_Ra1", "currency": "eur",
    "amount": 2299, "status": "needs_response", "reason": "fraudulent",
    "evidence_due_by": at(20), "is_charge_refundable": False, "created": at(9),
    "metadata": {},
}  # fmt: skip
DISPUTE_TXN = {
    **CHARGE_TXN, "id": "txn_Ra3", "type": "adjustment", "reporting_category": "dispute",
    "amount": -2489, "fee": 1500, "net": -3989, "charge_id": None, "dispute_id": "dp_Ra1",
    "available_on": at(9), "created": at(9), "description": "Chargeback withdrawal",
}  # fmt: skip
DISPUTE_FEES = [{"balance_transaction_id": "txn_Ra3", "line": 0, "type": "stripe_fee",
                 "amount": 1500, "currency": "usd", "description": "Dispute fee"}]  # fmt: skip
PAYOUT_TXN = {
    **CHARGE_TXN, "id": "txn_Ra4", "type": "payout", "reporting_category": "payout",
    "amount": -3437, "fee": 0, "net": -3437, "charge_id": None, "exchange_rate": None,
    "source_payout_id": "po_Ra1", "payout_id": "po_Ra1", "available_on": at(3),
    "created": at(3), "description": "STRIPE PAYOUT",
}  # fmt: skip
PAYOUT = {
    "id": "po_Ra1", "amount": 3437, "currency": "usd", "status": "failed",
    "arrival_date": at(4), "method": "standard", "automatic": True,
    "failure_code": "account_closed", "failure_message": "The bank account has been closed.",
    "description": "STRIPE PAYOUT", "created": at(3), "metadata": {},
}  # fmt: skip
PAYOUT_FAILURE_TXN = {
    **PAYOUT_TXN, "id": "txn_Ra5", "type": "payout_failure", "reporting_category": "payout_reversal",
    "amount": 3437, "net": 3437, "payout_id": None, "available_on": at(4), "created": at(4),
}  # fmt: skip
EVENT = {
    "id": "evt_Ra1", "type": "charge.refunded", "api_version": "2025-09-30.clover",
    "object_type": "charge", "object_id": "ch_Ra1",
    "data_object": {"id": "ch_Ra1", "object": "charge", "amount_refunded": 1000},
    "previous_attributes": {"amount_refunded": 0}, "request_id": "req_Ra1",
    "idempotency_key": "7f0c-refund", "livemode": False, "pending_webhooks": 1,
    "created": at(5),
}  # fmt: skip

CASES: list[tuple[str, dict[str, Any], dict[str, list[dict[str, Any]]]]] = [
    ("customers", CUSTOMER, {"customer_addresses": [ADDRESS]}),
    (
        "customers",
        {**CUSTOMER, "id": "cus_Ra2", "currency": None, "preferred_locale": None, "metadata": {}},
        {},
    ),
    ("payment_methods", PAYMENT_METHOD, {}),
    ("payment_methods", SEPA_METHOD, {}),
    ("products", PRODUCT, {}),
    ("prices", PRICE, {}),
    ("prices", ONE_TIME_PRICE, {}),
    ("coupons", COUPON, {}),
    ("coupons", AMOUNT_COUPON, {}),
    ("discounts", DISCOUNT, {}),
    ("subscriptions", SUBSCRIPTION, {"subscription_items": [ITEM]}),
    ("subscription_items", ITEM, {}),
    ("invoices", INVOICE, {"invoice_line_items": [LINE, ONE_OFF_LINE]}),
    (
        "invoices",
        {
            **INVOICE,
            "id": "in_Ra2",
            "subscription_id": None,
            "number": None,
            "status": "draft",
            "billing_reason": "manual",
            "discount_amount": 0,
            "tax": 0,
            "total": 3600,
            "amount_due": 3600,
            "amount_paid": 0,
            "amount_remaining": 3600,
            "attempt_count": 0,
            "finalized_at": None,
            "paid_at": None,
        },
        {},
    ),
    ("invoice_line_items", LINE, {}),
    ("payment_intents", PAYMENT_INTENT, {}),
    ("invoice_payments", INVOICE_PAYMENT, {}),
    (
        "charges",
        CHARGE,
        {"balance_transactions": [CHARGE_TXN], "balance_transaction_fee_details": CHARGE_FEES},
    ),
    (
        "charges",
        {
            **CHARGE,
            "id": "ch_Ra2",
            "status": "failed",
            "paid": False,
            "captured": False,
            "amount_captured": 0,
            "amount_refunded": 0,
            "disputed": False,
            "failure_code": "card_declined",
            "failure_message": "Your card was declined.",
            "outcome_type": None,
            "outcome_reason": "generic_decline",
            "outcome_network_status": None,
            "outcome_risk_level": None,
            "outcome_risk_score": None,
            "three_d_secure_result": None,
        },
        {},
    ),
    ("refunds", REFUND, {"balance_transactions": [REFUND_TXN]}),
    (
        "disputes",
        DISPUTE,
        {"balance_transactions": [DISPUTE_TXN], "balance_transaction_fee_details": DISPUTE_FEES},
    ),
    ("balance_transactions", CHARGE_TXN, {"balance_transaction_fee_details": CHARGE_FEES}),
    ("balance_transactions", PAYOUT_TXN, {}),
    (
        "payouts",
        PAYOUT,
        {
            "balance_transactions": [PAYOUT_TXN, PAYOUT_FAILURE_TXN, CHARGE_TXN],
            "balance_transaction_fee_details": CHARGE_FEES,
        },
    ),
    (
        "payouts",
        {**PAYOUT, "id": "po_Ra2", "status": "pending", "failure_code": None, "failure_message": None},
        {},
    ),
    ("events", EVENT, {}),
    (
        "events",
        {
            **EVENT,
            "id": "evt_Ra2",
            "previous_attributes": None,
            "request_id": None,
            "idempotency_key": None,
            "api_version": None,
        },
        {},
    ),
]


def expected_rows(table: str, row: dict, related: dict) -> list[tuple[str, dict]]:
    """The rows a round trip gives back, in the model's dependency order."""
    pairs = [(table, row)] + [(t, r) for t, rows in related.items() for r in rows]
    order = {name: i for i, name in enumerate(OLTP.table_names)}
    return sorted(pairs, key=lambda p: order[p[0]])


@pytest.mark.parametrize(
    ("table", "row", "related"), CASES, ids=[f"{c[0]}-{c[1].get('id', '')}" for c in CASES]
)
def test_round_trip(table: str, row: dict, related: dict) -> None:
    obj = to_stripe_object(table, row, related)
    text = json.dumps(obj)  # a Stripe object is plain JSON
    assert from_stripe_object(json.loads(text)) == expected_rows(table, row, related)


def test_every_stripe_table_has_a_round_trip_case() -> None:
    assert {t for t in OBJECT_TABLES.values()} <= {c[0] for c in CASES}


def test_the_sample_rows_satisfy_the_model() -> None:
    for table, row, related in CASES:
        for t, r in expected_rows(table, row, related):
            assert row_problems(t, r) == [], (t, r)


def test_rendered_objects_have_the_current_api_shape() -> None:
    invoice = to_stripe_object("invoices", INVOICE, {"invoice_line_items": [LINE]})
    assert "charge" not in invoice
    assert "subscription" not in invoice
    assert invoice["parent"]["subscription_details"]["subscription"] == "sub_Ra1"
    assert invoice["lines"]["object"] == "list"
    assert invoice["lines"]["has_more"] is False
    sub = to_stripe_object("subscriptions", SUBSCRIPTION, {"subscription_items": [ITEM]})
    assert "current_period_end" not in sub
    assert sub["items"]["data"][0]["current_period_end"] == int(at(59).timestamp())
    charge = to_stripe_object("charges", CHARGE, {"balance_transactions": [CHARGE_TXN]})
    assert charge["balance_transaction"]["object"] == "balance_transaction"
    assert charge["balance_transaction"]["exchange_rate"] == 1.0825
    assert to_stripe_object("products", PRODUCT)["metadata"] == {}


def test_numpy_and_pandas_scalars_render_as_plain_json() -> None:
    import numpy as np
    import pandas as pd

    row = {**PRICE, "unit_amount": np.int64(1200), "recurring_interval_count": np.int16(1),
           "active": np.bool_(True), "created": pd.Timestamp(PRICE["created"]),
           "nickname": pd.NA, "lookup_key": None}  # fmt: skip
    obj = to_stripe_object("prices", row)
    assert json.loads(json.dumps(obj))["unit_amount"] == 1200
    assert from_stripe_object(obj)[0][1] == {**PRICE, "nickname": None, "lookup_key": None}


def test_a_rate_a_float_cannot_carry_is_refused() -> None:
    with pytest.raises(ValueError, match=r"exchange_rate 1\.12345678901234567"):
        to_stripe_object(
            "balance_transactions", {**CHARGE_TXN, "exchange_rate": Decimal("1.12345678901234567")}
        )


def test_unknown_table_is_refused() -> None:
    with pytest.raises(KeyError, match="currencies holds no Stripe object type"):
        to_stripe_object("currencies", {"code": "eur"})


# --- variants of the API shape ------------------------------------------------------


def test_invoice_subscription_at_top_level_and_legacy_tax() -> None:
    obj = to_stripe_object("invoices", INVOICE)
    legacy = {k: v for k, v in obj.items() if k not in ("parent", "total_taxes")}
    legacy["subscription"] = "sub_Ra1"
    legacy["tax"] = 617
    assert from_stripe_object(legacy) == [("invoices", INVOICE)]


def test_line_item_legacy_fields_and_expanded_price() -> None:
    obj = to_stripe_object("invoice_line_items", LINE)
    price = to_stripe_object("prices", PRICE)
    legacy = {k: v for k, v in obj.items() if k not in ("parent", "pricing")}
    legacy.update(price=price, proration=False, subscription_item="si_Ra1")
    assert from_stripe_object(legacy) == [("prices", PRICE), ("invoice_line_items", LINE)]


def test_discount_with_legacy_expanded_coupon() -> None:
    obj = to_stripe_object("discounts", DISCOUNT)
    del obj["source"]
    obj["coupon"] = to_stripe_object("coupons", COUPON)
    assert from_stripe_object(obj) == [("coupons", COUPON), ("discounts", DISCOUNT)]


def test_coupon_percent_off_float_becomes_exact_decimal() -> None:
    obj = to_stripe_object("coupons", {**COUPON, "percent_off": Decimal("33.3")})
    ((_table, row),) = from_stripe_object(obj)
    assert row["percent_off"] == Decimal("33.3")
    assert isinstance(row["percent_off"], Decimal)


def test_expanded_customer_in_charge_comes_first_with_its_address() -> None:
    obj = to_stripe_object("charges", CHARGE)
    obj["customer"] = to_stripe_object("customers", CUSTOMER, {"customer_addresses": [ADDRESS]})
    tables = [t for t, _ in from_stripe_object(obj)]
    assert tables == ["customers", "customer_addresses", "charges"]
    assert from_stripe_object(obj)[2][1]["customer_id"] == "cus_Ra1"


def test_balance_transaction_source_by_prefix_and_expanded_source() -> None:
    for prefix, column in (("py_", "charge_id"), ("pyr_", "refund_id"), ("du_", "dispute_id"),
                           ("po_", "source_payout_id"), ("tr_", None)):  # fmt: skip
        obj = to_stripe_object("balance_transactions", {**PAYOUT_TXN, "payout_id": None})
        obj["source"] = f"{prefix}Ra9"
        ((_, row),) = from_stripe_object(obj)
        for c in ("charge_id", "refund_id", "dispute_id", "source_payout_id"):
            assert row[c] == (f"{prefix}Ra9" if c == column else None)
    obj = to_stripe_object("balance_transactions", REFUND_TXN)
    obj["source"] = to_stripe_object("refunds", REFUND)
    assert [t for t, _ in from_stripe_object(obj)] == ["refunds", "balance_transactions"]


def test_list_response_and_address_of_nulls() -> None:
    obj = to_stripe_object("customers", CUSTOMER)
    obj["address"] = dict.fromkeys(("city", "country", "line1", "line2", "postal_code", "state"))
    assert [t for t, _ in from_stripe_object(obj)] == ["customers"]


def test_the_official_sample_objects_map_or_fail_with_a_named_rule() -> None:
    """Stripe's own samples (placeholder values) either map or fail naming their object."""
    path = Path(__file__).parent / "data" / "stripe_fixtures3_samples.json"
    resources = json.loads(path.read_text())["resources"]
    outcomes: dict[str, str] = {}
    for kind in OBJECT_TABLES:
        try:
            rows = from_stripe_object(resources[kind])
        except StripeObjectError as e:
            outcomes[kind] = f"{e.object_type}: {e.rule}"
        else:
            assert all(row_problems(t, r) == [] for t, r in rows)
            outcomes[kind] = "mapped"
    assert outcomes["payout"] == "mapped"
    assert outcomes["product"] == "mapped"
    assert outcomes["balance_transaction"] == "mapped"
    # the sample coupon is 'forever' with duration_in_months 3, which the model refuses
    assert outcomes["coupon"] == (
        "coupon: duration_in_months is set exactly when duration is repeating "
        "(ck_coupons_duration_months)"
    )
    assert sum(v == "mapped" for v in outcomes.values()) >= 5


# --- errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda o: o.update(amount="3299"),
            "charge ch_Ra1: amount must be an integer, got str '3299'",
        ),
        (lambda o: o.update(amount=True), "amount must be an integer, got bool True"),
        (lambda o: o.update(amount=-1), "amount is between 0 and 99999999"),
        (
            lambda o: o.update(amount=10**30),
            "amount 1000000000000000000000000000000 is out of range",
        ),
        (lambda o: o.update(status="won"), "status is one of: pending, succeeded, failed"),
        (lambda o: o.update(currency="EUR"), "currency is a lowercase 3-letter ISO 4217 code"),
        (lambda o: o.update(amount_refunded=5000), "amount_refunded <= amount_captured <= amount"),
        (lambda o: o.update(created="yesterday"), "created must be a unix timestamp in seconds"),
        (
            lambda o: o.update(created=10**20),
            "created 100000000000000000000 is not a unix timestamp",
        ),
        (lambda o: o.pop("paid"), "paid is required"),
        (
            lambda o: o.update(customer={"object": "invoice", "id": "in_1"}),
            "customer must be a customer, got a str 'invoice' object",
        ),
        (
            lambda o: o.update(customer=["cus_1"]),
            "customer must be an id or an expanded object, got list",
        ),
        (lambda o: o.update(outcome="approved"), "outcome must be an object, got str"),
        (lambda o: o.update(metadata=[1]), "metadata must be an object"),
    ],
)
def test_errors_name_the_object_and_the_rule(mutate: Any, message: str) -> None:
    obj = to_stripe_object("charges", CHARGE)
    mutate(obj)
    with pytest.raises(StripeObjectError, match=None) as caught:
        from_stripe_object(obj)
    assert message in str(caught.value)
    assert str(caught.value).startswith("charge ch_Ra1: ")


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([1, 2], "? ?: a Stripe object must be a JSON object, got list"),
        ({"id": "ch_1"}, "? ch_1: object must be a non-empty string, got null"),
        ({"object": "charge"}, "charge ?: id must be a non-empty string, got null"),
        ({"object": "charge", "id": ""}, "charge ?: id must be a non-empty string"),
        (
            {"object": "event", "id": "evt_1", "data": {"object": {"id": "x"}}},
            "event evt_1: data.object: object must be",
        ),
        (
            {
                "object": "invoice_payment",
                "id": "inpay_1",
                "payment": {"type": "charge", "charge": "ch_1"},
            },
            "invoice_payment inpay_1: payment is a str 'charge', not a payment intent",
        ),
        (
            {
                "object": "subscription",
                "id": "sub_1",
                "items": {"object": "list", "data": [], "has_more": True},
            },
            "sub_1: items is a partial list (has_more is true)",
        ),
    ],
)
def test_malformed_objects(obj: Any, message: str) -> None:
    with pytest.raises(StripeObjectError) as caught:
        from_stripe_object(obj)
    assert message in str(caught.value)


def test_a_deletion_marker_is_refused_with_its_own_rule() -> None:
    with pytest.raises(StripeObjectError, match="customer cus_1: a deletion marker"):
        from_stripe_object({"id": "cus_1", "object": "customer", "deleted": True})


def test_unknown_object_type_nested_or_top_level() -> None:
    with pytest.raises(
        UnknownObjectType, match="transfer tr_1: object type 'transfer' is not in the model"
    ):
        from_stripe_object({"object": "transfer", "id": "tr_1"})
    obj = to_stripe_object("balance_transactions", PAYOUT_TXN)
    obj["source"] = {
        "object": "charge",
        "id": "ch_1",
        "customer": {"object": "customer", "id": "cus_1", "x": []},
    }
    with pytest.raises(StripeObjectError, match="customer cus_1: balance is required"):
        from_stripe_object(obj)


def test_deeply_nested_expansion_is_refused() -> None:
    obj: dict[str, Any] = to_stripe_object("balance_transactions", REFUND_TXN)
    inner = obj
    for i in range(20):
        refund = copy.deepcopy(to_stripe_object("refunds", {**REFUND, "id": f"re_{i}"}))
        txn = to_stripe_object(
            "balance_transactions", {**REFUND_TXN, "id": f"txn_{i}", "refund_id": f"re_{i}"}
        )
        refund["balance_transaction"] = txn
        inner["source"] = refund
        inner = txn
    with pytest.raises(StripeObjectError, match="expanded objects nest deeper than 8"):
        from_stripe_object(obj)


def test_object_key_of_owned_rows() -> None:
    assert object_key("balance_transaction_fee_details", CHARGE_FEES[0]) == (
        "balance_transaction",
        "txn_Ra1",
    )
    assert object_key("invoice_line_items", LINE) == ("line_item", "il_Ra1")


def test_row_problems_evaluates_checks_with_sql_null_logic() -> None:
    # NULL in a check is not a failure (SQL CHECK passes on NULL)
    assert (
        row_problems("subscriptions", {**SUBSCRIPTION, "trial_start": None, "trial_end": at(3)})
        == []
    )
    assert row_problems(
        "subscriptions", {**SUBSCRIPTION, "trial_start": at(5), "trial_end": at(3)}
    ) == ["trial_end is not before trial_start (ck_subscriptions_trial_end_after_trial_start)"]
    assert "at most one source (charge, refund, dispute or payout) (ck_balance_transactions_one_source)" in row_problems(
        "balance_transactions", {**CHARGE_TXN, "refund_id": "re_1"}
    )
    assert row_problems("charges", {**CHARGE, "bogus": 1}) == ["bogus: not columns of charges"]
    assert row_problems("payment_methods", {**PAYMENT_METHOD, "card_last4": "42424"}) == [
        "card_last4 is exactly four digits (never more of the card number) (ck_payment_methods_last4)"
    ]
    problems = row_problems("invoices", {**INVOICE, "amount_due": 3295, "currency": "kwd",
                                         "amount_remaining": -4})  # fmt: skip
    assert problems[:2] == [
        "amount_remaining >= 0 (ck_invoices_amount_remaining_range)",
        "a paid invoice has nothing remaining and a paid_at (ck_invoices_paid)",
    ]
    # declared on PostgreSQL only, but checked in Python for every engine
    assert problems[2].startswith("in a three-decimal currency, amount_due, amount_paid end in 0")


def test_plainly_valid_values_are_what_the_full_check_accepts() -> None:
    """row_problems skips the column check for values its fast path calls plainly valid:
    each of them must be one the full check accepts, on every column of the model."""
    samples = [None, "", "x", "\x00", "\U0010ffff" * 300, 0, 1, -1, 2**31, 2**63, -(2**63) - 1,
               True, False, 1.5, datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 1),
               date(2025, 1, 1), {}, {"a": 1}, [], Decimal("1.5"), Decimal("NaN")]  # fmt: skip
    decided = 0
    for columns in stripe._PLAIN_VALUES.values():
        for name, column, exact, lo, hi in columns:
            for value in samples:
                plain = value is not None and type(value) is exact and (
                    lo is None or lo <= value <= hi
                )
                if plain:
                    decided += 1
                    assert stripe._column_problem(column, value) is None, (name, value)
    assert decided > 100  # the fast path decides most columns' ordinary values
