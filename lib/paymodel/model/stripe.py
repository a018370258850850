"""Stripe API objects <-> rows of the OLTP tables, both directions in one place.

The generator renders rows as Stripe objects with :func:`to_stripe_object`; the
ingester flattens Stripe objects into rows with :func:`from_stripe_object`. One
module holds both directions so the mapping has one source of truth, and a
round-trip test (``from_stripe_object(to_stripe_object(...)) == rows``) guards it.

The shape is Stripe's current API (2025-03-31 "basil" and later): an invoice has no
``charge``; ``invoice_payment`` links an invoice to the payment intents that pay it;
billing periods live on subscription items; an invoice's subscription sits in
``parent.subscription_details.subscription``. :func:`from_stripe_object` also reads
the common older variants (top-level ``invoice.subscription``, ``invoice.tax``,
``line_item.price``/``proration``/``subscription_item``, ``discount.coupon``) and
expanded objects wherever an id is expected (``charge.customer`` as a full customer:
the customer's rows are emitted too, parents first).

Conventions of the rows (both directions):

* TIMESTAMP columns are tz-aware UTC ``datetime`` values with whole seconds (Stripe
  sends unix seconds); DATE columns are ``datetime.date``.
* RATE columns (``coupons.percent_off``, ``balance_transactions.exchange_rate``) are
  ``Decimal``. Stripe sends them as JSON numbers, so :func:`to_stripe_object` renders
  a float and refuses a rate a float cannot carry exactly (more than 15 significant
  digits).
* ``metadata``: empty is ``{}``, as Stripe sends it, in the objects and in the rows
  (the column is NOT NULL); an object without ``metadata`` or with ``null`` reads as
  ``{}``.
* A customer's address is a row of ``customer_addresses`` when Stripe's ``address``
  is an object with at least one non-null field; ``address: null`` (or all fields
  null) means no row.
* Fee details carry their position in ``fee_details`` as ``line`` (0, 1, ...).
* ``preferred_locale`` is the first of Stripe's ``preferred_locales``.

Every row :func:`from_stripe_object` returns has been checked against the model
(types, NOT NULL, accepted values, ranges, ISO codes and every table check, evaluated
in Python from the same SQL the database enforces), so an error names the object and
the rule it broke instead of surfacing as a database exception.

Example:
    >>> from datetime import UTC, datetime
    >>> row = {"id": "prod_1", "name": "Pro plan", "description": None, "active": True,
    ...        "created": datetime(2025, 1, 2, tzinfo=UTC), "metadata": {}}
    >>> obj = to_stripe_object("products", row)
    >>> obj["object"], obj["created"], obj["metadata"]
    ('product', 1735776000, {})
    >>> from_stripe_object(obj) == [("products", row)]
    True
    >>> coupon = {"object": "coupon", "id": "SAVE120", "percent_off": 120, "duration": "once",
    ...           "valid": True, "created": 1735689600}
    >>> from_stripe_object(coupon)
    Traceback (most recent call last):
    ...
    paymodel.model.stripe.StripeObjectError: coupon SAVE120: percent_off is in (0, 100]
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

import sqlglot
from sqlglot import exp

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
    Table,
)
from paymodel.model.oltp import OLTP

__all__ = [
    "OBJECT_TABLES",
    "TABLE_OBJECTS",
    "StripeObjectError",
    "UnknownObjectType",
    "from_stripe_object",
    "object_key",
    "row_problems",
    "to_stripe_object",
]

OBJECT_TABLES: dict[str, str] = {
    t.stripe_object: t.name for t in OLTP.tables if t.stripe_object is not None
}
"""Stripe object type -> table (``"charge" -> "charges"``)."""

TABLE_OBJECTS: dict[str, str] = {table: obj for obj, table in OBJECT_TABLES.items()}

_TABLES: dict[str, Table] = {t.name: t for t in OLTP.tables}
"""Table -> Stripe object type (``"charges" -> "charge"``)."""

_OWNED_ROWS: dict[str, tuple[str, str]] = {
    "customer_addresses": ("customer", "customer_id"),
    "balance_transaction_fee_details": ("balance_transaction", "balance_transaction_id"),
}
"""Tables without a Stripe object of their own: the object their rows belong to."""

MAX_EXPANSION_DEPTH = 8
"""How deep expanded objects may nest inside one another before the record is refused."""

_SQL_INT_RANGE = {
    "smallint": (-(2**15), 2**15 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "bigint": (-(2**63), 2**63 - 1),
}


class StripeObjectError(ValueError):
    """A Stripe object that cannot become rows: names the object and the rule it broke.

    Attributes:
        object_type: the object's ``object`` (``charge``), or ``"?"`` when unknown.
        object_id: its ``id``, or ``"?"``.
        rule: the rule in words (``amount_refunded <= amount_captured <= amount``).
    """

    def __init__(self, object_type: str, object_id: str, rule: str) -> None:
        self.object_type = object_type
        self.object_id = object_id
        self.rule = rule
        super().__init__(f"{object_type} {object_id}: {rule}")


class UnknownObjectType(StripeObjectError):
    """A well-formed Stripe object of a type the model does not hold (``transfer``...)."""


# --------------------------------------------------------------------------------------
# Plain values: what a generator's rows may hold (numpy, pandas) -> JSON values.


def _is_null(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    return type(v).__name__ in ("NAType", "NaTType")


def _int(v: Any) -> int | None:
    return None if _is_null(v) else operator.index(v)


def _bool(v: Any) -> bool | None:
    return None if _is_null(v) else bool(v)


def _str(v: Any) -> str | None:
    return None if _is_null(v) else str(v)


def _unix(v: Any) -> int | None:
    """A TIMESTAMP value as unix seconds (a naive datetime is taken as UTC)."""
    if _is_null(v):
        return None
    if isinstance(v, datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=UTC)
        return int(v.timestamp())
    return operator.index(v)


def _rate(v: Any, what: str) -> float | None:
    if _is_null(v):
        return None
    d = Decimal(str(v)) if not isinstance(v, Decimal) else v
    f = float(d)
    if Decimal(repr(f)) != d:
        raise ValueError(
            f"{what} {d}: a JSON number (float) cannot carry it exactly; use at most 15 "
            "significant digits"
        )
    return f


def _json(v: Any) -> dict[str, Any]:
    if _is_null(v):
        return {}
    if isinstance(v, str):
        return json.loads(v)
    return dict(v)


def _get(row: Mapping[str, Any], key: str) -> Any:
    v = row.get(key)
    return None if _is_null(v) else v


# --------------------------------------------------------------------------------------
# Rows -> Stripe objects


def _list(data: list[dict[str, Any]], url: str) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": False, "total_count": len(data), "url": url}


def _customer(row: Mapping[str, Any], related: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict:
    addresses = related.get("customer_addresses") or []
    address = None
    if addresses:
        a = addresses[0]
        address = {
            k: _str(a.get(k)) for k in ("city", "country", "line1", "line2", "postal_code", "state")
        }
    locale = _str(row.get("preferred_locale"))
    return {
        "id": row["id"],
        "object": "customer",
        "address": address,
        "balance": _int(row["balance"]),
        "created": _unix(row["created"]),
        "currency": _str(row.get("currency")),
        "delinquent": _bool(row["delinquent"]),
        "email": _str(row.get("email")),
        "livemode": False,
        "metadata": _json(row.get("metadata")),
        "name": _str(row.get("name")),
        "phone": _str(row.get("phone")),
        "preferred_locales": [locale] if locale else [],
    }


_CARD_FIELDS = ("brand", "funding", "country", "last4", "exp_month", "exp_year", "fingerprint")


def _payment_method(row: Mapping[str, Any], related: Mapping) -> dict:
    card = {f: _get(row, f"card_{f}") for f in _CARD_FIELDS}
    for f in ("exp_month", "exp_year"):
        card[f] = _int(card[f])
    kind = row["type"]
    obj: dict[str, Any] = {
        "id": row["id"],
        "object": "payment_method",
        "created": _unix(row["created"]),
        "customer": _str(row.get("customer_id")),
        "livemode": False,
        "metadata": {},
        "type": kind,
    }
    if kind == "card" or any(v is not None for v in card.values()):
        obj["card"] = card
    if kind != "card":
        obj[kind] = {}
    return obj


def _product(row: Mapping[str, Any], related: Mapping) -> dict:
    return {
        "id": row["id"],
        "object": "product",
        "active": _bool(row["active"]),
        "created": _unix(row["created"]),
        "description": _str(row.get("description")),
        "livemode": False,
        "metadata": _json(row.get("metadata")),
        "name": row["name"],
    }


def _price(row: Mapping[str, Any], related: Mapping) -> dict:
    interval = _str(row.get("recurring_interval"))
    count = _int(row.get("recurring_interval_count"))
    usage = _str(row.get("recurring_usage_type"))
    recurring = None
    if interval is not None or count is not None or usage is not None:
        recurring = {
            "interval": interval,
            "interval_count": count,
            "meter": None,
            "trial_period_days": None,
            "usage_type": usage,
        }
    unit_amount = _int(row.get("unit_amount"))
    return {
        "id": row["id"],
        "object": "price",
        "active": _bool(row["active"]),
        "billing_scheme": row["billing_scheme"],
        "created": _unix(row["created"]),
        "currency": row["currency"],
        "livemode": False,
        "lookup_key": _str(row.get("lookup_key")),
        "metadata": _json(row.get("metadata")),
        "nickname": _str(row.get("nickname")),
        "product": row["product_id"],
        "recurring": recurring,
        "type": row["type"],
        "unit_amount": unit_amount,
        "unit_amount_decimal": None if unit_amount is None else str(unit_amount),
    }


def _coupon(row: Mapping[str, Any], related: Mapping) -> dict:
    return {
        "id": row["id"],
        "object": "coupon",
        "amount_off": _int(row.get("amount_off")),
        "created": _unix(row["created"]),
        "currency": _str(row.get("currency")),
        "duration": row["duration"],
        "duration_in_months": _int(row.get("duration_in_months")),
        "livemode": False,
        "metadata": _json(row.get("metadata")),
        "name": _str(row.get("name")),
        "percent_off": _rate(row.get("percent_off"), f"coupon {row['id']}: percent_off"),
        "valid": _bool(row["valid"]),
    }


def _discount(row: Mapping[str, Any], related: Mapping) -> dict:
    return {
        "id": row["id"],
        "object": "discount",
        "customer": row["customer_id"],
        "end": _unix(row.get("ends_at")),
        "invoice": None,
        "invoice_item": None,
        "promotion_code": None,
        "source": {"coupon": row["coupon_id"], "type": "coupon"},
        "start": _unix(row["starts_at"]),
        "subscription": _str(row.get("subscription_id")),
        "subscription_item": None,
    }


def _subscription_item(row: Mapping[str, Any], related: Mapping) -> dict:
    return {
        "id": row["id"],
        "object": "subscription_item",
        "created": _unix(row["created"]),
        "current_period_end": _unix(row["current_period_end"]),
        "current_period_start": _unix(row["current_period_start"]),
        "metadata": _json(row.get("metadata")),
        "price": row["price_id"],
        "quantity": _int(row.get("quantity")),
        "subscription": row["subscription_id"],
    }


def _subscription(row: Mapping[str, Any], related: Mapping) -> dict:
    items = [_subscription_item(i, {}) for i in related.get("subscription_items") or []]
    return {
        "id": row["id"],
        "object": "subscription",
        "billing_cycle_anchor": _unix(row["billing_cycle_anchor"]),
        "cancel_at": _unix(row.get("cancel_at")),
        "cancel_at_period_end": _bool(row["cancel_at_period_end"]),
        "canceled_at": _unix(row.get("canceled_at")),
        "cancellation_details": {
            "comment": None,
            "feedback": None,
            "reason": _str(row.get("cancellation_reason")),
        },
        "collection_method": row["collection_method"],
        "created": _unix(row["created"]),
        "currency": row["currency"],
        "customer": row["customer_id"],
        "default_payment_method": _str(row.get("default_payment_method_id")),
        "ended_at": _unix(row.get("ended_at")),
        "items": _list(items, f"/v1/subscription_items?subscription={row['id']}"),
        "livemode": False,
        "metadata": _json(row.get("metadata")),
        "start_date": _unix(row["start_date"]),
        "status": row["status"],
        "trial_end": _unix(row.get("trial_end")),
        "trial_start": _unix(row.get("trial_start")),
    }


def _amounts(amount: int | None, key: str) -> list[dict[str, Any]]:
    """Stripe's list of amounts (``discount_amounts``...) for one total; [] when 0."""
    if not amount:
        return []
    return [{"amount": amount, key: None}]


def _line_item(row: Mapping[str, Any], related: Mapping, subscription: str | None = None) -> dict:
    si = _str(row.get("subscription_item_id"))
    proration = _bool(row["proration"])
    if si is not None:
        parent = {
            "type": "subscription_item_details",
            "subscription_item_details": {
                "invoice_item": None,
                "proration": proration,
                "subscription": subscription,
                "subscription_item": si,
            },
        }
    else:
        parent = {
            "type": "invoice_item_details",
            "invoice_item_details": {
                "invoice_item": None,
                "proration": proration,
                "subscription": subscription,
            },
        }
    price = _str(row.get("price_id"))
    return {
        "id": row["id"],
        "object": "line_item",
        "amount": _int(row["amount"]),
        "currency": row["currency"],
        "description": _str(row.get("description")),
        "discount_amounts": _amounts(_int(row["discount_amount"]), "discount"),
        "invoice": row["invoice_id"],
        "livemode": False,
        "metadata": {},
        "parent": parent,
        "period": {"end": _unix(row["period_end"]), "start": _unix(row["period_start"])},
        "pricing": None
        if price is None
        else {"price_details": {"price": price, "product": None}, "type": "price_details"},
        "quantity": _int(row.get("quantity")),
    }


def _invoice(row: Mapping[str, Any], related: Mapping) -> dict:
    sub = _str(row.get("subscription_id"))
    lines = [_line_item(li, {}, sub) for li in related.get("invoice_line_items") or []]
    tax = _int(row["tax"])
    taxes = []
    if tax:
        taxes = [{"amount": tax, "tax_behavior": "exclusive", "taxable_amount": None,
                  "taxability_reason": None, "type": "tax_rate_details",
                  "tax_rate_details": None}]  # fmt: skip
    attempts = _int(row["attempt_count"])
    return {
        "id": row["id"],
        "object": "invoice",
        "amount_due": _int(row["amount_due"]),
        "amount_paid": _int(row["amount_paid"]),
        "amount_remaining": _int(row["amount_remaining"]),
        "attempt_count": attempts,
        "attempted": bool(attempts),
        "billing_reason": row["billing_reason"],
        "collection_method": row["collection_method"],
        "created": _unix(row["created"]),
        "currency": row["currency"],
        "customer": row["customer_id"],
        "due_date": _unix(row.get("due_date")),
        "lines": _list(lines, f"/v1/invoices/{row['id']}/lines"),
        "livemode": False,
        "metadata": _json(row.get("metadata")),
        "number": _str(row.get("number")),
        "parent": None
        if sub is None
        else {
            "quote_details": None,
            "subscription_details": {"metadata": None, "subscription": sub},
            "type": "subscription_details",
        },
        "period_end": _unix(row["period_end"]),
        "period_start": _unix(row["period_start"]),
        "starting_balance": _int(row["starting_balance"]),
        "status": row["status"],
        "status_transitions": {
            "finalized_at": _unix(row.get("finalized_at")),
            "marked_uncollectible_at": None,
            "paid_at": _unix(row.get("paid_at")),
            "voided_at": _unix(row.get("voided_at")),
        },
        "subtotal": _int(row["subtotal"]),
        "total": _int(row["total"]),
        "total_discount_amounts": _amounts(_int(row["discount_amount"]), "discount"),
        "total_taxes": taxes,
    }


def _payment_intent(row: Mapping[str, Any], related: Mapping) -> dict:
    code = _str(row.get("last_payment_error_code"))
    return {
        "id": row["id"],
        "object": "payment_intent",
        "amount": _int(row["amount"]),
        "amount_capturable": _int(row["amount_capturable"]),
        "amount_received": _int(row["amount_received"]),
        "canceled_at": _unix(row.get("canceled_at")),
        "cancellation_reason": _str(row.get("cancellation_reason")),
        "capture_method": row["capture_method"],
        "created": _unix(row["created"]),
        "currency": row["currency"],
        "customer": _str(row.get("customer_id")),
        "description": _str(row.get("description")),
        "last_payment_error": None
        if code is None
        else {
            "code": code,
            "decline_code": _str(row.get("last_payment_error_decline_code")),
            "type": "card_error",
        },
        "livemode": False,
        "metadata": _json(row.get("metadata")),
        "payment_method": _str(row.get("payment_method_id")),
        "status": row["status"],
    }


def _invoice_payment(row: Mapping[str, Any], related: Mapping) -> dict:
    return {
        "id": row["id"],
        "object": "invoice_payment",
        "amount_paid": _int(row.get("amount_paid")),
        "amount_requested": _int(row["amount_requested"]),
        "created": _unix(row["created"]),
        "currency": row["currency"],
        "invoice": row["invoice_id"],
        "is_default": _bool(row["is_default"]),
        "livemode": False,
        "payment": {"payment_intent": row["payment_intent_id"], "type": "payment_intent"},
        "status": row["status"],
        "status_transitions": {
            "canceled_at": _unix(row.get("canceled_at")),
            "paid_at": _unix(row.get("paid_at")),
        },
    }


def _fee_details(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    ordered = sorted(rows, key=lambda r: _int(r["line"]))
    return [
        {
            "amount": _int(f["amount"]),
            "application": None,
            "currency": f["currency"],
            "description": _str(f.get("description")),
            "type": f["type"],
        }
        for f in ordered
    ]


def _balance_transaction(row: Mapping[str, Any], related: Mapping) -> dict:
    fees = [
        f
        for f in related.get("balance_transaction_fee_details") or []
        if f["balance_transaction_id"] == row["id"]
    ]
    source = (
        _str(row.get("charge_id"))
        or _str(row.get("refund_id"))
        or _str(row.get("dispute_id"))
        or _str(row.get("source_payout_id"))
    )
    return {
        "id": row["id"],
        "object": "balance_transaction",
        "amount": _int(row["amount"]),
        "available_on": _unix(row["available_on"]),
        "created": _unix(row["created"]),
        "currency": row["currency"],
        "description": _str(row.get("description")),
        "exchange_rate": _rate(
            row.get("exchange_rate"), f"balance_transaction {row['id']}: exchange_rate"
        ),
        "fee": _int(row["fee"]),
        "fee_details": _fee_details(fees),
        "net": _int(row["net"]),
        "payout": _str(row.get("payout_id")),
        "reporting_category": row["reporting_category"],
        "source": source,
        "status": row["status"],
        "type": row["type"],
    }


def _expanded_transactions(related: Mapping) -> list[dict[str, Any]]:
    return [_balance_transaction(bt, related) for bt in related.get("balance_transactions") or []]


def _charge(row: Mapping[str, Any], related: Mapping) -> dict:
    outcome_fields = {
        "network_status": _str(row.get("outcome_network_status")),
        "risk_level": _str(row.get("outcome_risk_level")),
        "risk_score": _int(row.get("outcome_risk_score")),
        "type": _str(row.get("outcome_type")),
    }
    outcome = None
    if any(v is not None for v in outcome_fields.values()) or row.get("outcome_reason"):
        outcome = {
            "reason": _str(row.get("outcome_reason")),
            "seller_message": None,
            **outcome_fields,
        }
    tds = _str(row.get("three_d_secure_result"))
    details = None
    if tds is not None:
        details = {"card": {"three_d_secure": {"result": tds}}, "type": "card"}
    transactions = _expanded_transactions(related)
    return {
        "id": row["id"],
        "object": "charge",
        "amount": _int(row["amount"]),
        "amount_captured": _int(row["amount_captured"]),
        "amount_refunded": _int(row["amount_refunded"]),
        "balance_transaction": transactions[0] if transactions else None,
        "captured": _bool(row["captured"]),
        "created": _unix(row["created"]),
        "currency": row["currency"],
        "customer": _str(row.get("customer_id")),
        "disputed": _bool(row["disputed"]),
        "failure_code": _str(row.get("failure_code")),
        "failure_message": _str(row.get("failure_message")),
        "livemode": False,
        "metadata": _json(row.get("metadata")),
        "outcome": outcome,
        "paid": _bool(row["paid"]),
        "payment_intent": _str(row.get("payment_intent_id")),
        "payment_method": _str(row.get("payment_method_id")),
        "payment_method_details": details,
        "refunded": _bool(row["refunded"]),
        "status": row["status"],
    }


def _refund(row: Mapping[str, Any], related: Mapping) -> dict:
    transactions = _expanded_transactions(related)
    return {
        "id": row["id"],
        "object": "refund",
        "amount": _int(row["amount"]),
        "balance_transaction": transactions[0] if transactions else None,
        "charge": row["charge_id"],
        "created": _unix(row["created"]),
        "currency": row["currency"],
        "failure_reason": _str(row.get("failure_reason")),
        "metadata": _json(row.get("metadata")),
        "payment_intent": _str(row.get("payment_intent_id")),
        "reason": _str(row.get("reason")),
        "status": row["status"],
    }


def _dispute(row: Mapping[str, Any], related: Mapping) -> dict:
    return {
        "id": row["id"],
        "object": "dispute",
        "amount": _int(row["amount"]),
        "balance_transactions": _expanded_transactions(related),
        "charge": row["charge_id"],
        "created": _unix(row["created"]),
        "currency": row["currency"],
        "evidence_details": {"due_by": _unix(row.get("evidence_due_by"))},
        "is_charge_refundable": _bool(row["is_charge_refundable"]),
        "livemode": False,
        "metadata": _json(row.get("metadata")),
        "payment_intent": _str(row.get("payment_intent_id")),
        "reason": row["reason"],
        "status": row["status"],
    }


def _payout(row: Mapping[str, Any], related: Mapping) -> dict:
    own = failure = None
    settled = []
    for bt in related.get("balance_transactions") or []:
        if _str(bt.get("source_payout_id")) == row["id"]:
            if bt["type"] == "payout":
                own = _balance_transaction(bt, related)
            elif bt["type"] == "payout_failure":
                failure = _balance_transaction(bt, related)
        if _str(bt.get("payout_id")) == row["id"]:
            settled.append(_balance_transaction(bt, related))
    obj = {
        "id": row["id"],
        "object": "payout",
        "amount": _int(row["amount"]),
        "arrival_date": _unix(row["arrival_date"]),
        "automatic": _bool(row["automatic"]),
        "balance_transaction": own,
        "created": _unix(row["created"]),
        "currency": row["currency"],
        "description": _str(row.get("description")),
        "failure_balance_transaction": failure,
        "failure_code": _str(row.get("failure_code")),
        "failure_message": _str(row.get("failure_message")),
        "livemode": False,
        "metadata": _json(row.get("metadata")),
        "method": row["method"],
        "source_type": "card",
        "status": row["status"],
        "type": "bank_account",
    }
    if settled:
        obj["balance_transactions"] = _list(
            settled, f"/v1/balance_transactions?payout={row['id']}"
        )
    return obj


def _event(row: Mapping[str, Any], related: Mapping) -> dict:
    data: dict[str, Any] = {"object": _json(row["data_object"])}
    previous = row.get("previous_attributes")
    if not _is_null(previous):
        data["previous_attributes"] = _json(previous)
    return {
        "id": row["id"],
        "object": "event",
        "api_version": _str(row.get("api_version")),
        "created": _unix(row["created"]),
        "data": data,
        "livemode": _bool(row["livemode"]),
        "pending_webhooks": _int(row["pending_webhooks"]),
        "request": {
            "id": _str(row.get("request_id")),
            "idempotency_key": _str(row.get("idempotency_key")),
        },
        "type": row["type"],
    }


_RENDERERS: dict[str, Callable[[Mapping[str, Any], Mapping], dict]] = {
    "customers": _customer,
    "payment_methods": _payment_method,
    "products": _product,
    "prices": _price,
    "coupons": _coupon,
    "discounts": _discount,
    "subscriptions": _subscription,
    "subscription_items": _subscription_item,
    "invoices": _invoice,
    "invoice_line_items": _line_item,
    "payment_intents": _payment_intent,
    "invoice_payments": _invoice_payment,
    "charges": _charge,
    "refunds": _refund,
    "disputes": _dispute,
    "payouts": _payout,
    "balance_transactions": _balance_transaction,
    "events": _event,
}


def to_stripe_object(
    table: str,
    row: Mapping[str, Any],
    related: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> dict[str, Any]:
    """Render one row of ``table`` as a Stripe API object in the current API shape.

    Args:
        table: a table with a Stripe object type (``customers``, ``charges``, ``events``...).
        row: the row, every column present (numpy/pandas scalars and NA are accepted).
        related: the rows the object nests, keyed by table name, already filtered to
            this object: ``customer_addresses`` for a customer (its ``address``),
            ``subscription_items`` for a subscription (``items``), ``invoice_line_items``
            for an invoice (``lines``), ``balance_transaction_fee_details`` for a balance
            transaction (``fee_details``), and ``balance_transactions`` with their
            ``balance_transaction_fee_details`` for a charge or refund (rendered expanded
            as ``balance_transaction``), a dispute (``balance_transactions``) or a payout
            (its own as ``balance_transaction``, the one returning a failed payout's funds
            as ``failure_balance_transaction``, and those it settled as the list
            ``balance_transactions``, what ``GET /v1/balance_transactions?payout=po_...``
            answers: paymodel's addition, so a payout's snapshot says what it settled).

    Returns:
        A JSON-serialisable dict: unix-second timestamps, ids as plain strings,
        ``metadata`` as ``{}`` when NULL, rates as floats.

    Raises:
        KeyError: ``table`` has no Stripe object type, or a required column is missing.
        ValueError: a rate a JSON number cannot carry exactly.

    Example:
        >>> from datetime import UTC, datetime
        >>> t = datetime(2025, 1, 1, tzinfo=UTC)
        >>> row = {"id": "cus_1", "email": "ana@example.com", "name": "Ana", "phone": None,
        ...        "currency": "eur", "balance": 0, "delinquent": False,
        ...        "preferred_locale": "pt", "created": t, "metadata": {}}
        >>> to_stripe_object("customers", row)["preferred_locales"]
        ['pt']
    """
    try:
        render = _RENDERERS[table]
    except KeyError:
        raise KeyError(f"table {table} holds no Stripe object type") from None
    return render(row, related or {})


# --------------------------------------------------------------------------------------
# Stripe objects -> rows


class _Reader:
    """Reads one Stripe object's fields with errors that name the object."""

    def __init__(self, obj: Mapping[str, Any], rows: _Rows, depth: int) -> None:
        self.obj = obj
        self.type = obj["object"]
        self.id = obj["id"]
        self.rows = rows
        self.depth = depth

    def fail(self, rule: str) -> StripeObjectError:
        return StripeObjectError(self.type, self.id, rule)

    def get(self, key: str, default: Any = None) -> Any:
        return self.obj.get(key, default)

    def sub(self, *path: str) -> Any:
        """The value at ``path`` inside nested objects; ``None`` if any step is missing."""
        value: Any = self.obj
        where = []
        for key in path:
            if value is None:
                return None
            if not isinstance(value, Mapping):
                raise self.fail(f"{'.'.join(where)} must be an object, got {_kind(value)}")
            value = value.get(key)
            where.append(key)
        return value

    def time(self, key: str, value: Any = ...) -> datetime | None:
        """A unix-seconds field as a UTC datetime (``None`` stays ``None``)."""
        v = self.get(key) if value is ... else value
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(f"{key} must be a unix timestamp in seconds, got {_kind(v)}")
        try:
            return datetime.fromtimestamp(v, UTC)
        except (OverflowError, OSError, ValueError):
            raise self.fail(f"{key} {v} is not a unix timestamp in seconds") from None

    def rate(self, key: str, value: Any = ...) -> Decimal | None:
        v = self.get(key) if value is ... else value
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int | float | Decimal | str):
            raise self.fail(f"{key} must be a number, got {_kind(v)}")
        try:
            d = Decimal(repr(v)) if isinstance(v, float) else Decimal(v)
        except (InvalidOperation, ValueError):
            raise self.fail(f"{key} must be a number, got {_kind(v)}") from None
        if not d.is_finite():
            raise self.fail(f"{key} must be a finite number, got {v}")
        return d

    def ref(self, key: str, expected: str | tuple[str, ...], value: Any = ...) -> str | None:
        """An id field that may hold the id or the expanded object (whose rows are kept)."""
        v = self.get(key) if value is ... else value
        if v is None or isinstance(v, str):
            return v
        if isinstance(v, Mapping):
            nested_id = v.get("id")
            if not isinstance(nested_id, str) or not nested_id:
                raise self.fail(f"{key} is an expanded object without an id")
            kind = v.get("object")
            if kind is None:
                return nested_id
            expected = (expected,) if isinstance(expected, str) else expected
            if kind not in expected:
                raise self.fail(
                    f"{key} must be a {' or '.join(expected)}, got a {_kind(kind)} object"
                )
            self.rows.add_object(v, self.depth + 1)
            return nested_id
        raise self.fail(f"{key} must be an id or an expanded object, got {_kind(v)}")

    def list_data(self, key: str) -> list[Any]:
        """The items of a list field: a list object ``{"object": "list", "data": [...]}`` or a list."""
        v = self.get(key)
        if v is None:
            return []
        if isinstance(v, Mapping):
            data = v.get("data")
            if v.get("has_more") is True:
                raise self.fail(f"{key} is a partial list (has_more is true): fetch all of it")
            v = data
        if not isinstance(v, list):
            raise self.fail(f"{key} must be a list, got {_kind(v)}")
        return v

    def nested(self, key: str, value: Any, default_object: str) -> Mapping[str, Any]:
        """A nested object that must be an object with an id (an item of a list)."""
        if not isinstance(value, Mapping):
            raise self.fail(f"{key} must hold objects, got {_kind(value)}")
        if not isinstance(value.get("id"), str) or not value["id"]:
            raise self.fail(f"{key} holds a {default_object} without an id")
        if value.get("object", default_object) != default_object:
            raise self.fail(
                f"{key} must hold {default_object} objects, got {_kind(value.get('object'))}"
            )
        return value

    def sum_amounts(self, key: str) -> int:
        total = 0
        for i, item in enumerate(self.list_data(key)):
            amount = item.get("amount") if isinstance(item, Mapping) else None
            if isinstance(amount, bool) or not isinstance(amount, int):
                raise self.fail(f"{key}[{i}].amount must be an integer, got {_kind(amount)}")
            total += amount
        return total


def _kind(v: Any) -> str:
    """A short description of a value for error messages (never the whole value)."""
    if v is None:
        return "null"
    text = repr(v)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(v).__name__} {text}" if not isinstance(v, Mapping | list) else type(v).__name__


class _Rows:
    """Rows collected from one object and the objects expanded inside it."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, dict[str, Any]]] = []
        self.keys: set[tuple[str, tuple[Any, ...]]] = set()

    def add(self, table: str, row: dict[str, Any]) -> None:
        key = (table, tuple(row[c] for c in _TABLES[table].primary_key))
        if key not in self.keys:  # the first (outermost) copy of an object wins
            self.keys.add(key)
            self.rows.append((table, row))

    def add_object(self, obj: Mapping[str, Any], depth: int) -> None:
        if depth > MAX_EXPANSION_DEPTH:
            raise StripeObjectError(
                _obj_type(obj),
                _obj_id(obj),
                f"expanded objects nest deeper than {MAX_EXPANSION_DEPTH}",
            )
        kind, oid = _identify(obj)
        mapper = _MAPPERS.get(kind)
        if mapper is None:
            raise UnknownObjectType(kind, oid, f"object type {kind!r} is not in the model")
        mapper(_Reader(obj, self, depth))

    def ordered(self) -> list[tuple[str, dict[str, Any]]]:
        order = {name: i for i, name in enumerate(OLTP.table_names)}
        return sorted(self.rows, key=lambda tr: order[tr[0]])


def _obj_type(obj: Any) -> str:
    kind = obj.get("object") if isinstance(obj, Mapping) else None
    return kind if isinstance(kind, str) and kind else "?"


def _obj_id(obj: Any) -> str:
    oid = obj.get("id") if isinstance(obj, Mapping) else None
    return oid if isinstance(oid, str) and oid else "?"


def _identify(obj: Any) -> tuple[str, str]:
    if not isinstance(obj, Mapping):
        raise StripeObjectError(
            "?", "?", f"a Stripe object must be a JSON object, got {_kind(obj)}"
        )
    kind, oid = obj.get("object"), obj.get("id")
    if not isinstance(kind, str) or not kind:
        raise StripeObjectError(
            "?", _obj_id(obj), f"object must be a non-empty string, got {_kind(kind)}"
        )
    if not isinstance(oid, str) or not oid:
        raise StripeObjectError(kind, "?", f"id must be a non-empty string, got {_kind(oid)}")
    return kind, oid


def _metadata(r: _Reader) -> dict[str, Any]:
    m = r.get("metadata")
    if m is None:
        return {}
    if not isinstance(m, Mapping):
        raise r.fail(f"metadata must be an object, got {_kind(m)}")
    return dict(m)


def _map_customer(r: _Reader) -> None:
    locales = r.get("preferred_locales")
    if locales is not None and not isinstance(locales, list):
        raise r.fail(f"preferred_locales must be a list, got {_kind(locales)}")
    r.rows.add(
        "customers",
        {
            "id": r.id,
            "email": r.get("email"),
            "name": r.get("name"),
            "phone": r.get("phone"),
            "currency": r.get("currency"),
            "balance": r.get("balance"),
            "delinquent": r.get("delinquent"),
            "preferred_locale": locales[0] if locales else r.get("preferred_locale"),
            "created": r.time("created"),
            "metadata": _metadata(r),
        },
    )
    address = r.get("address")
    if address is not None:
        if not isinstance(address, Mapping):
            raise r.fail(f"address must be an object, got {_kind(address)}")
        fields = {
            k: address.get(k) for k in ("line1", "line2", "city", "state", "postal_code", "country")
        }
        if any(v is not None for v in fields.values()):
            r.rows.add("customer_addresses", {"customer_id": r.id, **fields})


def _map_payment_method(r: _Reader) -> None:
    card = r.get("card")
    if card is not None and not isinstance(card, Mapping):
        raise r.fail(f"card must be an object, got {_kind(card)}")
    card = card or {}
    r.rows.add(
        "payment_methods",
        {
            "id": r.id,
            "customer_id": r.ref("customer", "customer"),
            "type": r.get("type"),
            **{f"card_{f}": card.get(f) for f in _CARD_FIELDS},
            "created": r.time("created"),
        },
    )


def _map_product(r: _Reader) -> None:
    r.rows.add(
        "products",
        {
            "id": r.id,
            "name": r.get("name"),
            "description": r.get("description"),
            "active": r.get("active"),
            "created": r.time("created"),
            "metadata": _metadata(r),
        },
    )


def _map_price(r: _Reader) -> None:
    recurring = r.get("recurring")
    if recurring is not None and not isinstance(recurring, Mapping):
        raise r.fail(f"recurring must be an object, got {_kind(recurring)}")
    recurring = recurring or {}
    r.rows.add(
        "prices",
        {
            "id": r.id,
            "product_id": r.ref("product", "product"),
            "currency": r.get("currency"),
            "unit_amount": r.get("unit_amount"),
            "type": r.get("type"),
            "billing_scheme": r.get("billing_scheme"),
            "recurring_interval": recurring.get("interval"),
            "recurring_interval_count": recurring.get("interval_count"),
            "recurring_usage_type": recurring.get("usage_type"),
            "nickname": r.get("nickname"),
            "lookup_key": r.get("lookup_key"),
            "active": r.get("active"),
            "created": r.time("created"),
            "metadata": _metadata(r),
        },
    )


def _map_coupon(r: _Reader) -> None:
    r.rows.add(
        "coupons",
        {
            "id": r.id,
            "name": r.get("name"),
            "percent_off": r.rate("percent_off"),
            "amount_off": r.get("amount_off"),
            "currency": r.get("currency") if r.get("amount_off") is not None else None,
            "duration": r.get("duration"),
            "duration_in_months": r.get("duration_in_months"),
            "valid": r.get("valid"),
            "created": r.time("created"),
            "metadata": _metadata(r),
        },
    )


def _map_discount(r: _Reader) -> None:
    coupon = r.sub("source", "coupon")
    key = "source.coupon"
    if coupon is None:
        coupon, key = r.get("coupon"), "coupon"
    r.rows.add(
        "discounts",
        {
            "id": r.id,
            "coupon_id": r.ref(key, "coupon", coupon),
            "customer_id": r.ref("customer", "customer"),
            "subscription_id": r.ref("subscription", "subscription"),
            "starts_at": r.time("start"),
            "ends_at": r.time("end"),
        },
    )


def _map_subscription_item(r: _Reader, subscription: str | None = None) -> None:
    r.rows.add(
        "subscription_items",
        {
            "id": r.id,
            "subscription_id": subscription or r.ref("subscription", "subscription"),
            "price_id": r.ref("price", "price"),
            "quantity": r.get("quantity"),
            "current_period_start": r.time("current_period_start"),
            "current_period_end": r.time("current_period_end"),
            "created": r.time("created"),
            "metadata": _metadata(r),
        },
    )


def _map_subscription(r: _Reader) -> None:
    reason = r.sub("cancellation_details", "reason")
    r.rows.add(
        "subscriptions",
        {
            "id": r.id,
            "customer_id": r.ref("customer", "customer"),
            "status": r.get("status"),
            "currency": r.get("currency"),
            "collection_method": r.get("collection_method"),
            "default_payment_method_id": r.ref("default_payment_method", "payment_method"),
            "start_date": r.time("start_date"),
            "billing_cycle_anchor": r.time("billing_cycle_anchor"),
            "trial_start": r.time("trial_start"),
            "trial_end": r.time("trial_end"),
            "cancel_at_period_end": r.get("cancel_at_period_end"),
            "cancel_at": r.time("cancel_at"),
            "canceled_at": r.time("canceled_at"),
            "ended_at": r.time("ended_at"),
            "cancellation_reason": reason,
            "created": r.time("created"),
            "metadata": _metadata(r),
        },
    )
    for item in r.list_data("items"):
        nested = r.nested("items", item, "subscription_item")
        _map_subscription_item(
            _Reader({"object": "subscription_item", **nested}, r.rows, r.depth), r.id
        )


def _map_line_item(r: _Reader, invoice: str | None = None) -> None:
    parent = r.get("parent")
    details: Mapping[str, Any] = {}
    if parent is not None:
        if not isinstance(parent, Mapping):
            raise r.fail(f"parent must be an object, got {_kind(parent)}")
        chosen = parent.get(parent.get("type")) if isinstance(parent.get("type"), str) else None
        details = chosen if isinstance(chosen, Mapping) else {}
    proration = details.get("proration", r.get("proration"))
    si = details.get("subscription_item", r.get("subscription_item"))
    price = r.sub("pricing", "price_details", "price")
    price_key = "pricing.price_details.price"
    if price is None:
        price, price_key = r.get("price"), "price"
    period_start = r.sub("period", "start")
    period_end = r.sub("period", "end")
    r.rows.add(
        "invoice_line_items",
        {
            "id": r.id,
            "invoice_id": invoice or r.ref("invoice", "invoice"),
            "subscription_item_id": r.ref("subscription_item", "subscription_item", si),
            "price_id": r.ref(price_key, "price", price),
            "currency": r.get("currency"),
            "amount": r.get("amount"),
            "discount_amount": r.sum_amounts("discount_amounts"),
            "quantity": r.get("quantity"),
            "description": r.get("description"),
            "proration": proration,
            "period_start": r.time("period.start", period_start),
            "period_end": r.time("period.end", period_end),
        },
    )


def _map_invoice(r: _Reader) -> None:
    sub = r.sub("parent", "subscription_details", "subscription")
    sub_key = "parent.subscription_details.subscription"
    if sub is None:
        sub, sub_key = r.get("subscription"), "subscription"
    taxes = r.get("total_taxes")
    tax = r.sum_amounts("total_taxes") if taxes is not None else (r.get("tax") or 0)
    r.rows.add(
        "invoices",
        {
            "id": r.id,
            "customer_id": r.ref("customer", "customer"),
            "subscription_id": r.ref(sub_key, "subscription", sub),
            "number": r.get("number"),
            "status": r.get("status"),
            "billing_reason": r.get("billing_reason"),
            "collection_method": r.get("collection_method"),
            "currency": r.get("currency"),
            "subtotal": r.get("subtotal"),
            "discount_amount": r.sum_amounts("total_discount_amounts"),
            "tax": tax,
            "total": r.get("total"),
            "starting_balance": r.get("starting_balance"),
            "amount_due": r.get("amount_due"),
            "amount_paid": r.get("amount_paid"),
            "amount_remaining": r.get("amount_remaining"),
            "attempt_count": r.get("attempt_count"),
            "period_start": r.time("period_start"),
            "period_end": r.time("period_end"),
            "due_date": r.time("due_date"),
            "finalized_at": r.time("finalized_at", r.sub("status_transitions", "finalized_at")),
            "paid_at": r.time("paid_at", r.sub("status_transitions", "paid_at")),
            "voided_at": r.time("voided_at", r.sub("status_transitions", "voided_at")),
            "created": r.time("created"),
            "metadata": _metadata(r),
        },
    )
    for line in r.list_data("lines"):
        nested = r.nested("lines", line, "line_item")
        _map_line_item(_Reader({"object": "line_item", **nested}, r.rows, r.depth), r.id)


def _map_payment_intent(r: _Reader) -> None:
    error = r.get("last_payment_error")
    if error is not None and not isinstance(error, Mapping):
        raise r.fail(f"last_payment_error must be an object, got {_kind(error)}")
    r.rows.add(
        "payment_intents",
        {
            "id": r.id,
            "customer_id": r.ref("customer", "customer"),
            "payment_method_id": r.ref("payment_method", "payment_method"),
            "currency": r.get("currency"),
            "amount": r.get("amount"),
            "amount_capturable": r.get("amount_capturable"),
            "amount_received": r.get("amount_received"),
            "status": r.get("status"),
            "capture_method": r.get("capture_method"),
            "last_payment_error_code": None if error is None else error.get("code"),
            "last_payment_error_decline_code": None if error is None else error.get("decline_code"),
            "cancellation_reason": r.get("cancellation_reason"),
            "canceled_at": r.time("canceled_at"),
            "description": r.get("description"),
            "created": r.time("created"),
            "metadata": _metadata(r),
        },
    )


def _map_invoice_payment(r: _Reader) -> None:
    kind = r.sub("payment", "type")
    if kind not in (None, "payment_intent"):
        raise r.fail(
            f"payment is a {_kind(kind)}, not a payment intent: the model links invoices to payment intents"
        )
    r.rows.add(
        "invoice_payments",
        {
            "id": r.id,
            "invoice_id": r.ref("invoice", "invoice"),
            "payment_intent_id": r.ref(
                "payment.payment_intent", "payment_intent", r.sub("payment", "payment_intent")
            ),
            "currency": r.get("currency"),
            "amount_requested": r.get("amount_requested"),
            "amount_paid": r.get("amount_paid"),
            "status": r.get("status"),
            "is_default": r.get("is_default"),
            "paid_at": r.time("status_transitions.paid_at", r.sub("status_transitions", "paid_at")),
            "canceled_at": r.time(
                "status_transitions.canceled_at", r.sub("status_transitions", "canceled_at")
            ),
            "created": r.time("created"),
        },
    )


def _map_transactions(r: _Reader, key: str, values: list[Any], source: str) -> None:
    """Expanded balance transactions of a charge, refund or dispute (ids are skipped)."""
    for value in values:
        if value is None or isinstance(value, str):
            continue
        nested = r.nested(key, value, "balance_transaction")
        bt = dict(nested)
        bt.setdefault("object", "balance_transaction")
        if bt.get("source") is None:
            bt["source"] = source
        r.rows.add_object(bt, r.depth + 1)


def _map_charge(r: _Reader) -> None:
    r.rows.add(
        "charges",
        {
            "id": r.id,
            "payment_intent_id": r.ref("payment_intent", "payment_intent"),
            "customer_id": r.ref("customer", "customer"),
            "payment_method_id": r.ref("payment_method", "payment_method"),
            "currency": r.get("currency"),
            "amount": r.get("amount"),
            "amount_captured": r.get("amount_captured"),
            "amount_refunded": r.get("amount_refunded"),
            "status": r.get("status"),
            "paid": r.get("paid"),
            "captured": r.get("captured"),
            "refunded": r.get("refunded"),
            "disputed": r.get("disputed"),
            "failure_code": r.get("failure_code"),
            "failure_message": r.get("failure_message"),
            "outcome_type": r.sub("outcome", "type"),
            "outcome_reason": r.sub("outcome", "reason"),
            "outcome_network_status": r.sub("outcome", "network_status"),
            "outcome_risk_level": r.sub("outcome", "risk_level"),
            "outcome_risk_score": r.sub("outcome", "risk_score"),
            "three_d_secure_result": r.sub(
                "payment_method_details", "card", "three_d_secure", "result"
            ),
            "created": r.time("created"),
            "metadata": _metadata(r),
        },
    )
    _map_transactions(r, "balance_transaction", [r.get("balance_transaction")], r.id)


def _map_refund(r: _Reader) -> None:
    r.rows.add(
        "refunds",
        {
            "id": r.id,
            "charge_id": r.ref("charge", "charge"),
            "payment_intent_id": r.ref("payment_intent", "payment_intent"),
            "currency": r.get("currency"),
            "amount": r.get("amount"),
            "status": r.get("status"),
            "reason": r.get("reason"),
            "failure_reason": r.get("failure_reason"),
            "created": r.time("created"),
            "metadata": _metadata(r),
        },
    )
    _map_transactions(r, "balance_transaction", [r.get("balance_transaction")], r.id)


def _map_dispute(r: _Reader) -> None:
    r.rows.add(
        "disputes",
        {
            "id": r.id,
            "charge_id": r.ref("charge", "charge"),
            "payment_intent_id": r.ref("payment_intent", "payment_intent"),
            "currency": r.get("currency"),
            "amount": r.get("amount"),
            "status": r.get("status"),
            "reason": r.get("reason"),
            "evidence_due_by": r.time(
                "evidence_details.due_by", r.sub("evidence_details", "due_by")
            ),
            "is_charge_refundable": r.get("is_charge_refundable"),
            "created": r.time("created"),
            "metadata": _metadata(r),
        },
    )
    _map_transactions(r, "balance_transactions", r.list_data("balance_transactions"), r.id)


def _map_payout(r: _Reader) -> None:
    r.rows.add(
        "payouts",
        {
            "id": r.id,
            "amount": r.get("amount"),
            "currency": r.get("currency"),
            "status": r.get("status"),
            "arrival_date": r.time("arrival_date"),
            "method": r.get("method"),
            "automatic": r.get("automatic"),
            "failure_code": r.get("failure_code"),
            "failure_message": r.get("failure_message"),
            "description": r.get("description"),
            "created": r.time("created"),
            "metadata": _metadata(r),
        },
    )
    for key in ("balance_transaction", "failure_balance_transaction"):
        _map_transactions(r, key, [r.get(key)], r.id)
    for value in r.list_data("balance_transactions"):
        # the payout's settled list: each one was paid out by this payout
        bt = dict(r.nested("balance_transactions", value, "balance_transaction"))
        bt.setdefault("object", "balance_transaction")
        if bt.get("payout") is None:
            bt["payout"] = r.id
        r.rows.add_object(bt, r.depth + 1)


_SOURCE_COLUMNS = (
    (("ch_", "py_"), "charge_id", ("charge",)),
    (("re_", "pyr_"), "refund_id", ("refund",)),
    (("dp_", "du_"), "dispute_id", ("dispute",)),
    (("po_",), "source_payout_id", ("payout",)),
)
"""Balance transaction ``source`` id prefix -> the typed foreign key column it fills."""


def _map_balance_transaction(r: _Reader) -> None:
    source = r.get("source")
    source_id = source.get("id") if isinstance(source, Mapping) else source
    columns: dict[str, str | None] = {
        "charge_id": None, "refund_id": None, "dispute_id": None, "source_payout_id": None,
    }  # fmt: skip
    if source_id is not None and not isinstance(source_id, str):
        raise r.fail(f"source must be an id or an expanded object, got {_kind(source_id)}")
    for prefixes, column, kinds in _SOURCE_COLUMNS:
        if source_id is not None and source_id.startswith(prefixes):
            columns[column] = r.ref("source", kinds, source)
    r.rows.add(
        "balance_transactions",
        {
            "id": r.id,
            "type": r.get("type"),
            "reporting_category": r.get("reporting_category"),
            "amount": r.get("amount"),
            "fee": r.get("fee"),
            "net": r.get("net"),
            "currency": r.get("currency"),
            "exchange_rate": r.rate("exchange_rate"),
            "status": r.get("status"),
            "available_on": r.time("available_on"),
            "description": r.get("description"),
            **columns,
            "payout_id": r.ref("payout", "payout"),
            "created": r.time("created"),
        },
    )
    for line, fee in enumerate(r.list_data("fee_details")):
        if not isinstance(fee, Mapping):
            raise r.fail(f"fee_details[{line}] must be an object, got {_kind(fee)}")
        r.rows.add(
            "balance_transaction_fee_details",
            {
                "balance_transaction_id": r.id,
                "line": line,
                "type": fee.get("type"),
                "amount": fee.get("amount"),
                "currency": fee.get("currency"),
                "description": fee.get("description"),
            },
        )


def _map_event(r: _Reader) -> None:
    data = r.get("data")
    if not isinstance(data, Mapping):
        raise r.fail(f"data must be an object, got {_kind(data)}")
    snapshot = data.get("object")
    if not isinstance(snapshot, Mapping):
        raise r.fail(f"data.object must be an object, got {_kind(snapshot)}")
    try:
        kind, oid = _identify(snapshot)
    except StripeObjectError as e:
        raise r.fail(f"data.object: {e.rule}") from None
    previous = data.get("previous_attributes")
    if previous is not None and not isinstance(previous, Mapping):
        raise r.fail(f"data.previous_attributes must be an object, got {_kind(previous)}")
    request = r.get("request")
    if isinstance(request, str):  # API versions before 2017-05-25 sent the request id alone
        request = {"id": request, "idempotency_key": None}
    if request is not None and not isinstance(request, Mapping):
        raise r.fail(f"request must be an object, got {_kind(request)}")
    request = request or {}
    r.rows.add(
        "events",
        {
            "id": r.id,
            "type": r.get("type"),
            "api_version": r.get("api_version"),
            "object_type": kind,
            "object_id": oid,
            "data_object": dict(snapshot),
            "previous_attributes": None if previous is None else dict(previous),
            "request_id": request.get("id"),
            "idempotency_key": request.get("idempotency_key"),
            "livemode": r.get("livemode"),
            "pending_webhooks": r.get("pending_webhooks"),
            "created": r.time("created"),
        },
    )


_MAPPERS: dict[str, Callable[[_Reader], None]] = {
    "customer": _map_customer,
    "payment_method": _map_payment_method,
    "product": _map_product,
    "price": _map_price,
    "coupon": _map_coupon,
    "discount": _map_discount,
    "subscription": _map_subscription,
    "subscription_item": _map_subscription_item,
    "invoice": _map_invoice,
    "line_item": _map_line_item,
    "payment_intent": _map_payment_intent,
    "invoice_payment": _map_invoice_payment,
    "charge": _map_charge,
    "refund": _map_refund,
    "dispute": _map_dispute,
    "payout": _map_payout,
    "balance_transaction": _map_balance_transaction,
    "event": _map_event,
}


def from_stripe_object(obj: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Flatten a Stripe object into ``(table, row)`` pairs, parents first.

    Each row is complete (every column of its table) and has been checked against the
    model (:func:`row_problems`). Nested lists (``subscription.items``, ``invoice.lines``,
    ``balance_transaction.fee_details``), the customer's address and expanded objects
    found where an id is expected become rows too; an object expanded in several places
    appears once (the outermost copy). An event becomes one ``events`` row: its
    ``data.object`` is flattened by a second call.

    Args:
        obj: a Stripe API object as the API returns it (``object`` and ``id`` required).

    Returns:
        ``(table, row)`` pairs in the model's dependency order.

    Raises:
        UnknownObjectType: ``obj`` (or an expanded object in it) is of a type the model
            does not hold, such as ``transfer``.
        StripeObjectError: the object is malformed or breaks a rule of the model; the
            message names the object and the rule.

    Example:
        >>> rows = from_stripe_object({
        ...     "object": "balance_transaction", "id": "txn_1", "type": "charge",
        ...     "reporting_category": "charge", "amount": 1000, "fee": 59, "net": 941,
        ...     "currency": "usd", "exchange_rate": None, "status": "available",
        ...     "available_on": 1735776000, "description": None, "source": "ch_1",
        ...     "created": 1735689600,
        ...     "fee_details": [{"amount": 59, "currency": "usd", "type": "stripe_fee",
        ...                      "description": "Stripe processing fees"}]})
        >>> [(t, r.get("charge_id", r.get("line"))) for t, r in rows]
        [('balance_transactions', 'ch_1'), ('balance_transaction_fee_details', 0)]
        >>> from_stripe_object({"object": "transfer", "id": "tr_1"})
        Traceback (most recent call last):
        ...
        paymodel.model.stripe.UnknownObjectType: transfer tr_1: object type 'transfer' is not in the model
    """
    if isinstance(obj, Mapping) and obj.get("deleted") is True:
        raise StripeObjectError(
            _obj_type(obj), _obj_id(obj),
            "a deletion marker (deleted: true): the model keeps every object it was sent",
        )  # fmt: skip
    rows = _Rows()
    try:
        rows.add_object(obj, 0)
    except RecursionError:
        raise StripeObjectError(_obj_type(obj), _obj_id(obj), "nested too deeply") from None
    ordered = rows.ordered()
    for table, row in ordered:
        problems = row_problems(table, row)
        if problems:
            kind, oid = object_key(table, row)
            raise StripeObjectError(kind, oid, "; ".join(problems))
    return ordered


def object_key(table: str, row: Mapping[str, Any]) -> tuple[str, str]:
    """The Stripe object a row belongs to, as ``(object type, id)``.

    Rows of tables without an object type of their own (an address, a fee line) belong
    to their parent object.

    Example:
        >>> object_key("customer_addresses", {"customer_id": "cus_1"})
        ('customer', 'cus_1')
        >>> object_key("charges", {"id": "ch_1"})
        ('charge', 'ch_1')
    """
    if table in _OWNED_ROWS:
        kind, column = _OWNED_ROWS[table]
        return kind, str(row[column])
    return TABLE_OBJECTS[table], str(row["id"])


# --------------------------------------------------------------------------------------
# Validation against the model, in Python, from the same rules the database enforces.

_TEXT_TYPES = frozenset(t.name for t in (ID, TEXT, CURRENCY, COUNTRY))
_INT_TYPES = frozenset(t.name for t in (AMOUNT, SIGNED_AMOUNT, BIGINT, INTEGER, SMALLINT))


def _column_problem(column: Column, value: Any) -> str | None:
    name = column.name
    if value is None:
        return None if column.nullable else f"{name} is required (missing or null)"
    t = column.type
    if t.name in _TEXT_TYPES:
        if not isinstance(value, str):
            return f"{name} must be a string, got {_kind(value)}"
        if t.name == ID.name and not value:
            return f"{name} must not be empty"
    elif t.name in _INT_TYPES:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{name} must be an integer, got {_kind(value)}"
        lo, hi = _SQL_INT_RANGE[t.sql]
        if not lo <= value <= hi:
            return f"{name} {value} is out of range for a {t.sql} ({lo}..{hi})"
    elif t is BOOLEAN:
        if not isinstance(value, bool):
            return f"{name} must be true or false, got {_kind(value)}"
    elif t is TIMESTAMP:
        if not isinstance(value, datetime) or value.tzinfo is None:
            return f"{name} must be a tz-aware timestamp, got {_kind(value)}"
    elif t is DATE:
        if not isinstance(value, date) or isinstance(value, datetime):
            return f"{name} must be a date, got {_kind(value)}"
    elif t is JSON:
        if not isinstance(value, Mapping):
            return f"{name} must be an object, got {_kind(value)}"
    elif t is RATE:
        if not isinstance(value, Decimal) or not value.is_finite():
            return f"{name} must be a decimal number, got {_kind(value)}"
        limit = Decimal(10) ** (t.precision - t.scale)
        if abs(value) >= limit:
            return f"{name} {value} is out of range (|{name}| < {limit})"
    return None


def row_problems(table: str, row: Mapping[str, Any]) -> list[str]:
    """What is wrong with ``row`` for ``table``, in words; ``[]`` when nothing is.

    Checks the columns (presence, type, SQL integer ranges, NOT NULL), then every check
    constraint of the table (accepted values, ranges, ISO codes, multi-column rules),
    evaluated in Python from the SQL the database enforces, with SQL's NULL logic.
    Foreign keys and unique keys need the database and are not checked here.

    Example:
        >>> from datetime import UTC, datetime
        >>> t = datetime(2025, 1, 1, tzinfo=UTC)
        >>> row_problems("fx_rates", {"rate_date": t.date(), "currency": "EUR",
        ...                           "usd_per_unit": Decimal("1.08")})
        ['currency is a lowercase 3-letter ISO 4217 code']
    """
    model = _TABLES[table]
    problems = []
    for column in model.columns:
        if column.name not in row:
            problems.append(f"{column.name} is missing (column of {table})")
            continue
        problem = _column_problem(column, row[column.name])
        if problem:
            problems.append(problem)
    extra = set(row) - set(model.column_names)
    if extra:
        problems.append(f"{', '.join(sorted(extra))}: not columns of {table}")
    if problems:
        return problems
    for check, test in _compiled_checks(table):
        if test(row) is False:
            problems.append(check.description)
    return problems


@cache
def _compiled_checks(table: str) -> tuple[tuple[Check, Callable[[Mapping[str, Any]], Any]], ...]:
    """The table's checks compiled once, cached by table name (hashing a Table is slow)."""
    return tuple(
        (ck, _compile(sqlglot.parse_one(ck.sql, read="postgres")))
        for ck in _TABLES[table].all_checks
    )


def _compile(node: exp.Expression) -> Callable[[Mapping[str, Any]], Any]:
    """A Python function evaluating a check expression with SQL's three-valued logic.

    ``None`` is SQL NULL. A check passes unless it evaluates to ``False``.
    """
    if isinstance(node, exp.Paren):
        return _compile(node.this)
    if isinstance(node, exp.Column):
        name = node.name
        return lambda row: row[name]
    if isinstance(node, exp.Literal):
        value: Any = (
            node.this
            if node.is_string
            else (Decimal(node.this) if "." in node.this else int(node.this))
        )
        return lambda row: value
    if isinstance(node, exp.Null):
        return lambda row: None
    if isinstance(node, exp.Boolean):
        truth = node.this
        return lambda row: truth
    if isinstance(node, exp.Is):
        inner = _compile(node.this)
        if not isinstance(node.expression, exp.Null):
            raise NotImplementedError(f"IS {node.expression.sql()}")
        if node.args.get("negate"):
            return lambda row: inner(row) is not None
        return lambda row: inner(row) is None
    if isinstance(node, exp.Not):
        inner = _compile(node.this)
        return lambda row: None if (v := inner(row)) is None else not v
    if isinstance(node, exp.And):
        a, b = _compile(node.this), _compile(node.expression)

        def _and(row: Mapping[str, Any]) -> Any:
            x, y = a(row), b(row)
            if x is False or y is False:
                return False
            return None if x is None or y is None else True

        return _and
    if isinstance(node, exp.Or):
        a, b = _compile(node.this), _compile(node.expression)

        def _or(row: Mapping[str, Any]) -> Any:
            x, y = a(row), b(row)
            if x is True or y is True:
                return True
            return None if x is None or y is None else False

        return _or
    if isinstance(node, exp.In):
        inner = _compile(node.this)
        options = [_compile(e) for e in node.expressions]
        return lambda row: None if (v := inner(row)) is None else any(v == o(row) for o in options)
    if isinstance(node, exp.RegexpLike):
        inner = _compile(node.this)
        pattern = re.compile(node.expression.this)
        return lambda row: None if (v := inner(row)) is None else bool(pattern.search(v))
    if isinstance(node, exp.Cast):
        inner = _compile(node.this)
        if node.to.this not in (exp.DataType.Type.INT, exp.DataType.Type.BIGINT):
            raise NotImplementedError(f"CAST to {node.to.sql()}")
        return lambda row: None if (v := inner(row)) is None else int(v)
    binary: dict[type, Callable[[Any, Any], Any]] = {
        exp.EQ: operator.eq,
        exp.NEQ: operator.ne,
        exp.LT: operator.lt,
        exp.LTE: operator.le,
        exp.GT: operator.gt,
        exp.GTE: operator.ge,
        exp.Add: operator.add,
        exp.Sub: operator.sub,
        exp.Mod: _sql_mod,
    }
    for kind, op in binary.items():
        if isinstance(node, kind):
            a, b = _compile(node.this), _compile(node.expression)

            def _binary(row: Mapping[str, Any], a=a, b=b, op=op) -> Any:
                x, y = a(row), b(row)
                return None if x is None or y is None else op(x, y)

            return _binary
    raise NotImplementedError(f"check expression {type(node).__name__}: {node.sql()}")


def _sql_mod(x: int, y: int) -> int:
    """SQL's ``%``: the sign follows the dividend (Python's follows the divisor)."""
    return (abs(x) % abs(y)) * (1 if x >= 0 else -1)
