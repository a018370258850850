"""Stripe API objects <-> rows of the OLTP tables, from one declarative mapping.

:data:`MAPPINGS` says, for each column of each table that holds a Stripe object, where
the column lives in Stripe's object (a dotted path such as ``outcome.risk_score``, or
one of a few named special cases: :data:`SPECIAL_CASES`). Everything else is derived
from it: the renderer :func:`to_stripe_object` (rows to objects, used by the generator
and the payment flows), the flattener :func:`from_stripe_object` (objects to rows, used
by ingestion), the SQL flattener :func:`flatten_sql` and the events'
:func:`previous_attributes`, so the directions cannot disagree. A round-trip test
(``from_stripe_object(to_stripe_object(...)) == rows``) guards every table, and another
checks every path against Stripe's official sample objects.

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
    paymodel.model.stripe.StripeObjectError: coupon SAVE120: percent_off is in (0, 100] (ck_coupons_percent_off)
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cache, cached_property
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
    "MAPPINGS",
    "OBJECT_TABLES",
    "TABLE_OBJECTS",
    "Field",
    "ObjectMapping",
    "StripeObjectError",
    "UnknownObjectType",
    "flatten_sql",
    "from_stripe_object",
    "object_key",
    "previous_attributes",
    "row_problems",
    "sql_predicate",
    "stripe_paths",
    "to_stripe_object",
]

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


_RATE_STEP = Decimal(1).scaleb(-RATE.scale)
_RATE_LIMIT = Decimal(10) ** (RATE.precision - RATE.scale)


def at_rate_scale(d: Decimal) -> Decimal:
    """``d`` rounded to the scale of a rate column (10 places), half away from zero, as
    PostgreSQL rounds a ``NUMERIC(20, 10)``: a rate such as an ``exchange_rate`` of
    1.08123456789123 is read as 1.0812345679, the value either engine stores. Unrounded,
    Arrow refused it for the column's decimal type and the ingestion failed, and a row
    mapped again would never equal the one stored. A value out of the column's range is
    left as it is, for the model's check to name."""
    if abs(d) >= _RATE_LIMIT:
        return d
    rounded = d.quantize(_RATE_STEP, rounding=ROUND_HALF_UP)
    return d if rounded == d else rounded


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
# The mapping: where each column lives in Stripe's object, declared once.
#
# Every direction is derived from MAPPINGS: the renderer (rows -> objects), the Python
# flattener (objects -> rows), the SQL flattener (:func:`flatten_sql`) and the events'
# ``previous_attributes`` (:func:`previous_attributes`). A column is a :class:`Field`: a
# dotted path into the object and how its value is encoded there (``value``, ``time``:
# unix seconds, ``rate``: a JSON number read as an exact decimal, ``ref``: an id or the
# expanded object, ``metadata``, ``sum``: the total of a list of amounts). The few shapes
# a path cannot say are named special cases (:data:`SPECIAL_CASES`), each written once
# below with both of its directions side by side.


@dataclass(frozen=True)
class Field:
    """Where one column lives in a Stripe object.

    Attributes:
        path: the dotted path (``outcome.risk_score``); for a special case, the
            top-level field it occupies (used by ``previous_attributes``).
        kind: ``value``, ``time``, ``rate``, ``ref``, ``metadata``, ``sum`` or ``special``.
        objects: for ``ref``: the object types an expanded value may be.
        legacy: older paths read when ``path`` is absent or null (``subscription`` for
            ``parent.subscription_details.subscription``).
        special: the name of the special case in :data:`SPECIAL_CASES`.
        item_key: for ``sum``: the key each list item carries besides ``amount``.
    """

    path: str
    kind: str = "value"
    objects: tuple[str, ...] = ()
    legacy: tuple[str, ...] = ()
    special: str | None = None
    item_key: str | None = None

    @cached_property
    def parts(self) -> tuple[str, ...]:
        # cached (a frozen dataclass allows it: the cache bypasses __setattr__); read per
        # field of every record ingested
        return tuple(self.path.split("."))


@dataclass(frozen=True)
class Nested:
    """A list of child rows rendered inside the object (``subscription.items``)."""

    key: str
    table: str
    parent_column: str
    url: str


@dataclass(frozen=True)
class ObjectMapping:
    """One Stripe object type and the table that holds it.

    Attributes:
        object: Stripe's ``object`` (``charge``).
        table: the table (``charges``).
        fields: column -> :class:`Field`, one for every column except ``id``.
        constants: dotted path -> value rendered as is (``livemode: false``...).
        optional: dotted path of a nested object -> its constant extra keys; the nested
            object renders as ``null`` when every column inside it is null.
        nested: lists of child rows rendered inside the object.
    """

    object: str
    table: str
    fields: Mapping[str, Field]
    constants: Mapping[str, Any] = field(default_factory=dict)
    optional: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    nested: tuple[Nested, ...] = ()


def _f(path: str, kind: str = "value", *objects: str, legacy: tuple[str, ...] = ()) -> Field:
    return Field(path, kind, tuple(objects), legacy)


def _plain(*columns: str) -> dict[str, Field]:
    return {c: Field(c) for c in columns}


def _times(*columns: str) -> dict[str, Field]:
    return {c: Field(c, "time") for c in columns}


def _special(name: str, path: str) -> Field:
    return Field(path, "special", special=name)


_META = {"metadata": Field("metadata", "metadata")}
_LIVE = {"livemode": False}

MAPPINGS: dict[str, ObjectMapping] = {
    m.table: m
    for m in (
        ObjectMapping(
            "customer", "customers",
            {**_plain("email", "name", "phone", "currency", "balance", "delinquent"),
             "preferred_locale": _special("first_locale", "preferred_locales"),
             **_times("created"), **_META},
            constants=_LIVE,
        ),
        ObjectMapping(
            "payment_method", "payment_methods",
            {"customer_id": _f("customer", "ref", "customer"), "type": Field("type"),
             **{f"card_{c}": Field(f"card.{c}") for c in
                ("brand", "funding", "country", "last4", "exp_month", "exp_year",
                 "fingerprint")},
             **_times("created")},
            constants={**_LIVE, "metadata": {}},
        ),
        ObjectMapping(
            "product", "products",
            {**_plain("name", "description", "active"), **_times("created"), **_META},
            constants=_LIVE,
        ),
        ObjectMapping(
            "price", "prices",
            {"product_id": _f("product", "ref", "product"),
             **_plain("currency", "unit_amount", "type", "billing_scheme"),
             "recurring_interval": Field("recurring.interval"),
             "recurring_interval_count": Field("recurring.interval_count"),
             "recurring_usage_type": Field("recurring.usage_type"),
             **_plain("nickname", "lookup_key", "active"), **_times("created"), **_META},
            constants=_LIVE,
            optional={"recurring": {"meter": None, "trial_period_days": None}},
        ),
        ObjectMapping(
            "coupon", "coupons",
            {"name": Field("name"), "percent_off": Field("percent_off", "rate"),
             "amount_off": Field("amount_off"),
             "currency": _special("currency_of_amount_off", "currency"),
             **_plain("duration", "duration_in_months", "valid"), **_times("created"), **_META},
            constants=_LIVE,
        ),
        ObjectMapping(
            "discount", "discounts",
            {"coupon_id": _f("source.coupon", "ref", "coupon", legacy=("coupon",)),
             "customer_id": _f("customer", "ref", "customer"),
             "subscription_id": _f("subscription", "ref", "subscription"),
             "starts_at": Field("start", "time"), "ends_at": Field("end", "time")},
            constants={"invoice": None, "invoice_item": None, "promotion_code": None,
                       "source.type": "coupon", "subscription_item": None},
        ),
        ObjectMapping(
            "subscription_item", "subscription_items",
            {"subscription_id": _f("subscription", "ref", "subscription"),
             "price_id": _f("price", "ref", "price"), "quantity": Field("quantity"),
             **_times("current_period_start", "current_period_end", "created"), **_META},
        ),
        ObjectMapping(
            "subscription", "subscriptions",
            {"customer_id": _f("customer", "ref", "customer"),
             **_plain("status", "currency", "collection_method"),
             "default_payment_method_id": _f("default_payment_method", "ref", "payment_method"),
             **_times("start_date", "billing_cycle_anchor", "trial_start", "trial_end"),
             "cancel_at_period_end": Field("cancel_at_period_end"),
             **_times("cancel_at", "canceled_at", "ended_at"),
             "cancellation_reason": Field("cancellation_details.reason"),
             **_times("created"), **_META},
            constants={**_LIVE, "cancellation_details.comment": None,
                       "cancellation_details.feedback": None},
            nested=(Nested("items", "subscription_items", "subscription_id",
                           "/v1/subscription_items?subscription={id}"),),
        ),
        ObjectMapping(
            "invoice", "invoices",
            {"customer_id": _f("customer", "ref", "customer"),
             "subscription_id": _f("parent.subscription_details.subscription", "ref",
                                   "subscription", legacy=("subscription",)),
             **_plain("number", "status", "billing_reason", "collection_method", "currency",
                      "subtotal"),
             "discount_amount": Field("total_discount_amounts", "sum", item_key="discount"),
             "tax": _special("taxes", "total_taxes"),
             **_plain("total", "starting_balance", "amount_due", "amount_paid",
                      "amount_remaining"),
             "attempt_count": _special("attempts", "attempt_count"),
             **_times("period_start", "period_end", "due_date"),
             "finalized_at": Field("status_transitions.finalized_at", "time"),
             "paid_at": Field("status_transitions.paid_at", "time"),
             "voided_at": Field("status_transitions.voided_at", "time"),
             **_times("created"), **_META},
            constants={**_LIVE, "status_transitions.marked_uncollectible_at": None},
            optional={"parent": {"quote_details": None, "type": "subscription_details",
                                 "subscription_details.metadata": None}},
            nested=(Nested("lines", "invoice_line_items", "invoice_id",
                           "/v1/invoices/{id}/lines"),),
        ),
        ObjectMapping(
            "line_item", "invoice_line_items",
            {"invoice_id": _f("invoice", "ref", "invoice"),
             "subscription_item_id": _special("line_parent", "parent"),
             "price_id": _f("pricing.price_details.price", "ref", "price", legacy=("price",)),
             **_plain("currency", "amount"),
             "discount_amount": Field("discount_amounts", "sum", item_key="discount"),
             **_plain("quantity", "description"),
             "proration": _special("line_parent", "parent"),
             "period_start": Field("period.start", "time"),
             "period_end": Field("period.end", "time")},
            constants={**_LIVE, "metadata": {}},
            optional={"pricing": {"type": "price_details", "price_details.product": None}},
        ),
        ObjectMapping(
            "payment_intent", "payment_intents",
            {"customer_id": _f("customer", "ref", "customer"),
             "payment_method_id": _f("payment_method", "ref", "payment_method"),
             **_plain("currency", "amount", "amount_capturable", "amount_received", "status",
                      "capture_method"),
             "last_payment_error_code": Field("last_payment_error.code"),
             "last_payment_error_decline_code": Field("last_payment_error.decline_code"),
             "cancellation_reason": Field("cancellation_reason"),
             "canceled_at": Field("canceled_at", "time"), "description": Field("description"),
             **_times("created"), **_META},
            constants=_LIVE,
            optional={"last_payment_error": {"type": "card_error"}},
        ),
        ObjectMapping(
            "invoice_payment", "invoice_payments",
            {"invoice_id": _f("invoice", "ref", "invoice"),
             "payment_intent_id": _special("payment_intent_payment", "payment"),
             **_plain("currency", "amount_requested", "amount_paid", "status", "is_default"),
             "paid_at": Field("status_transitions.paid_at", "time"),
             "canceled_at": Field("status_transitions.canceled_at", "time"),
             **_times("created")},
            constants={**_LIVE, "payment.type": "payment_intent"},
        ),
        ObjectMapping(
            "charge", "charges",
            {"payment_intent_id": _f("payment_intent", "ref", "payment_intent"),
             "customer_id": _f("customer", "ref", "customer"),
             "payment_method_id": _f("payment_method", "ref", "payment_method"),
             **_plain("currency", "amount", "amount_captured", "amount_refunded", "status",
                      "paid", "captured", "refunded", "disputed", "failure_code",
                      "failure_message"),
             "outcome_type": Field("outcome.type"),
             "outcome_reason": Field("outcome.reason"),
             "outcome_network_status": Field("outcome.network_status"),
             "outcome_risk_level": Field("outcome.risk_level"),
             "outcome_risk_score": Field("outcome.risk_score"),
             "three_d_secure_result": Field("payment_method_details.card.three_d_secure.result"),
             **_times("created"), **_META},
            constants=_LIVE,
            optional={"outcome": {"seller_message": None},
                      "payment_method_details": {"type": "card"}},
        ),
        ObjectMapping(
            "refund", "refunds",
            {"charge_id": _f("charge", "ref", "charge"),
             "payment_intent_id": _f("payment_intent", "ref", "payment_intent"),
             **_plain("currency", "amount", "status", "reason", "failure_reason"),
             **_times("created"), **_META},
        ),
        ObjectMapping(
            "dispute", "disputes",
            {"charge_id": _f("charge", "ref", "charge"),
             "payment_intent_id": _f("payment_intent", "ref", "payment_intent"),
             **_plain("currency", "amount", "status", "reason"),
             "evidence_due_by": Field("evidence_details.due_by", "time"),
             "is_charge_refundable": Field("is_charge_refundable"),
             **_times("created"), **_META},
            constants=_LIVE,
        ),
        ObjectMapping(
            "balance_transaction", "balance_transactions",
            {**_plain("type", "reporting_category", "amount", "fee", "net", "currency"),
             "exchange_rate": Field("exchange_rate", "rate"), "status": Field("status"),
             "available_on": Field("available_on", "time"), "description": Field("description"),
             "charge_id": _special("source", "source"),
             "refund_id": _special("source", "source"),
             "dispute_id": _special("source", "source"),
             "source_payout_id": _special("source", "source"),
             "payout_id": _f("payout", "ref", "payout"),
             **_times("created")},
        ),
        ObjectMapping(
            "payout", "payouts",
            {**_plain("amount", "currency", "status"),
             "arrival_date": Field("arrival_date", "time"),
             **_plain("method", "automatic", "failure_code", "failure_message", "description"),
             **_times("created"), **_META},
            constants={**_LIVE, "source_type": "card", "type": "bank_account"},
        ),
        ObjectMapping(
            "event", "events",
            {**_plain("type", "api_version"),
             "object_type": _special("snapshot", "data"),
             "object_id": _special("snapshot", "data"),
             "data_object": _special("snapshot", "data"),
             "previous_attributes": _special("snapshot", "data"),
             "request_id": _special("request", "request"),
             "idempotency_key": _special("request", "request"),
             **_plain("livemode", "pending_webhooks"), **_times("created")},
        ),
    )
}  # fmt: skip
"""Table -> its :class:`ObjectMapping`: the one declaration of the Stripe mapping."""

_BY_OBJECT: dict[str, ObjectMapping] = {m.object: m for m in MAPPINGS.values()}

OWNED_ROWS: dict[str, tuple[str, str, str]] = {
    "customer_addresses": ("customers", "customer_id", "address"),
    "balance_transaction_fee_details": ("balance_transactions", "balance_transaction_id",
                                        "fee_details"),
}  # fmt: skip
"""Tables without an object of their own -> (owner table, owner column, field in the owner)."""

EXPANDED_TRANSACTIONS: dict[str, tuple[str, str, bool]] = {
    "charges": ("balance_transaction", "charge_id", False),
    "refunds": ("balance_transaction", "refund_id", False),
    "disputes": ("balance_transactions", "dispute_id", True),
}
"""Tables whose objects carry their balance transactions expanded: (field, source column,
whether the field is a list)."""

SOURCE_PREFIXES: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("ch_", "py_"), "charge_id", "charge"),
    (("re_", "pyr_"), "refund_id", "refund"),
    (("dp_", "du_"), "dispute_id", "dispute"),
    (("po_",), "source_payout_id", "payout"),
)
"""Balance transaction ``source`` id prefix -> the typed foreign key column it fills."""

SPECIAL_CASES: dict[str, str] = {
    "first_locale": "customer.preferred_locale is the first of preferred_locales",
    "currency_of_amount_off": "coupon.currency is read only with amount_off",
    "taxes": "invoice.tax is the sum of total_taxes (older API versions: tax)",
    "attempts": "invoice.attempt_count also renders attempted",
    "line_parent": "line item's subscription_item and proration sit in the detail its "
    "parent.type names (older API versions: top level)",
    "payment_intent_payment": "invoice_payment.payment is polymorphic: only payment intents",
    "source": "balance_transaction.source is a charge, refund, dispute or payout by id prefix",
    "payout_transactions": "a payout carries its own balance transaction, the one returning "
    "a failed payout's funds, and (paymodel's addition) the list of those it settled",
    "snapshot": "event.data holds the object's snapshot and previous_attributes",
    "request": "event.request is an object (before 2017-05-25: the request id alone)",
}
"""The named special cases: shapes a path cannot say, each written once below."""

OBJECT_TABLES: dict[str, str] = {m.object: m.table for m in MAPPINGS.values()}
"""Stripe object type -> table (``"charge" -> "charges"``)."""

TABLE_OBJECTS: dict[str, str] = {table: obj for obj, table in OBJECT_TABLES.items()}
"""Table -> Stripe object type (``"charges" -> "charge"``)."""

_TABLES: dict[str, Table] = {t.name: t for t in OLTP.tables}
_COLUMNS: dict[str, dict[str, Column]] = {t.name: {c.name: c for c in t.columns} for t in OLTP.tables}

_OWNED_ROWS: dict[str, tuple[str, str]] = {
    table: (TABLE_OBJECTS[owner], column) for table, (owner, column, _) in OWNED_ROWS.items()
}

MAX_EXPANSION_DEPTH = 8
"""How deep expanded objects may nest inside one another before the record is refused."""


def _set(obj: dict[str, Any], path: Sequence[str], value: Any) -> None:
    for key in path[:-1]:
        nxt = obj.get(key)
        if not isinstance(nxt, dict):
            nxt = obj[key] = {}
        obj = nxt
    obj[path[-1]] = value


def _encode(f: Field, value: Any, what: str, column: Column | None = None) -> Any:
    """A column value as Stripe encodes it at its path (numpy/pandas scalars made plain)."""
    if f.kind == "time":
        return _unix(value)
    if f.kind == "rate":
        return _rate(value, what)
    if f.kind == "metadata":
        return _json(value)
    if f.kind == "sum":
        return _amounts(_int(value), f.item_key or "amount")
    if column is not None and column.type is BOOLEAN:
        return _bool(value)
    if column is not None and column.type.name in _INT_TYPES:
        return _int(value)
    if column is not None and column.type is JSON:
        return None if _is_null(value) else _json(value)
    return _str(value)


# --------------------------------------------------------------------------------------
# Rows -> Stripe objects (derived from MAPPINGS)


def _list(data: list[dict[str, Any]], url: str) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": False, "total_count": len(data), "url": url}


def _amounts(amount: int | None, key: str) -> list[dict[str, Any]]:
    """Stripe's list of amounts (``discount_amounts``...) for one total; [] when 0."""
    if not amount:
        return []
    return [{"amount": amount, key: None}]


def _render(
    m: ObjectMapping,
    row: Mapping[str, Any],
    related: Mapping[str, Sequence[Mapping[str, Any]]],
    context: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    obj: dict[str, Any] = {"id": row["id"], "object": m.object}
    specials: dict[str, None] = {}
    for column, f in m.fields.items():
        if f.kind == "special":
            specials[f.special] = None  # type: ignore[index]
            continue
        what = f"{m.object} {row['id']}: {column}"
        _set(obj, f.parts, _encode(f, row.get(column), what, _COLUMNS[m.table][column]))
    for path, value in m.constants.items():
        _set(obj, path.split("."), value)
    for path, extras in m.optional.items():
        parts = path.split(".")
        columns = [c for c, f in m.fields.items() if f.parts[: len(parts)] == tuple(parts)]
        if all(_is_null(row.get(c)) for c in columns):
            _set(obj, parts, None)
        else:
            for key, value in extras.items():
                _set(obj, [*parts, *key.split(".")], value)
    for nested in m.nested:
        child = MAPPINGS[nested.table]
        items = [_render(child, r, {}, {"parent": row}) for r in related.get(nested.table) or []]
        obj[nested.key] = _list(items, nested.url.format(id=row["id"]))
    for name in specials:
        _RENDER_SPECIAL[name](obj, row, related, context or {})
    if m.table in EXPANDED_TRANSACTIONS:
        key, _, many = EXPANDED_TRANSACTIONS[m.table]
        transactions = [
            _render(MAPPINGS["balance_transactions"], bt, related)
            for bt in related.get("balance_transactions") or []
        ]
        obj[key] = transactions if many else (transactions[0] if transactions else None)
    if m.table == "customers":
        _render_address(obj, related)
    if m.table == "payment_methods":
        _render_card(obj, row)
    if m.table == "prices":
        unit = obj.get("unit_amount")
        obj["unit_amount_decimal"] = None if unit is None else str(unit)
    if m.table == "balance_transactions":
        _render_fee_details(obj, row, related)
    if m.table == "payouts":
        _render_payout_transactions(obj, row, related)
    return obj


def _render_payout_transactions(
    obj: dict[str, Any], row: Mapping[str, Any], related: Mapping
) -> None:
    """A payout's own balance transaction, its failure's, and those it settled (if any)."""
    bt_mapping = MAPPINGS["balance_transactions"]
    own = failure = None
    settled = []
    for bt in related.get("balance_transactions") or []:
        if _str(bt.get("source_payout_id")) == row["id"]:
            if bt["type"] == "payout":
                own = _render(bt_mapping, bt, related)
            elif bt["type"] == "payout_failure":
                failure = _render(bt_mapping, bt, related)
        if _str(bt.get("payout_id")) == row["id"]:
            settled.append(_render(bt_mapping, bt, related))
    obj["balance_transaction"] = own
    obj["failure_balance_transaction"] = failure
    if settled:
        obj["balance_transactions"] = _list(
            settled, f"/v1/balance_transactions?payout={row['id']}"
        )


def _render_address(obj: dict[str, Any], related: Mapping) -> None:
    addresses = related.get("customer_addresses") or []
    obj["address"] = None
    if addresses:
        a = addresses[0]
        obj["address"] = {
            k: _str(a.get(k)) for k in ("city", "country", "line1", "line2", "postal_code", "state")
        }


def _render_card(obj: dict[str, Any], row: Mapping[str, Any]) -> None:
    """A card method has ``card``; another type an empty object under its type's name."""
    kind = row["type"]
    if kind != "card" and all(v is None for v in obj.get("card", {}).values()):
        obj.pop("card", None)
    if kind != "card":
        obj[kind] = {}


def _render_fee_details(obj: dict[str, Any], row: Mapping[str, Any], related: Mapping) -> None:
    fees = [
        f
        for f in related.get("balance_transaction_fee_details") or []
        if f["balance_transaction_id"] == row["id"]
    ]
    obj["fee_details"] = [
        {
            "amount": _int(f["amount"]),
            "application": None,
            "currency": f["currency"],
            "description": _str(f.get("description")),
            "type": f["type"],
        }
        for f in sorted(fees, key=lambda r: _int(r["line"]))
    ]


def _render_first_locale(obj: dict, row: Mapping, related: Mapping, context: Mapping) -> None:
    locale = _str(row.get("preferred_locale"))
    obj["preferred_locales"] = [locale] if locale else []


def _render_currency_of_amount_off(obj: dict, row: Mapping, related: Mapping, ctx: Mapping) -> None:
    obj["currency"] = _str(row.get("currency"))


def _render_taxes(obj: dict, row: Mapping, related: Mapping, context: Mapping) -> None:
    tax = _int(row["tax"])
    obj["total_taxes"] = []
    if tax:
        obj["total_taxes"] = [{"amount": tax, "tax_behavior": "exclusive", "taxable_amount": None,
                               "taxability_reason": None, "type": "tax_rate_details",
                               "tax_rate_details": None}]  # fmt: skip


def _render_attempts(obj: dict, row: Mapping, related: Mapping, context: Mapping) -> None:
    attempts = _int(row["attempt_count"])
    obj["attempt_count"] = attempts
    obj["attempted"] = bool(attempts)


def _render_line_parent(obj: dict, row: Mapping, related: Mapping, context: Mapping) -> None:
    parent_row = context.get("parent")
    subscription = None if parent_row is None else _str(parent_row.get("subscription_id"))
    si = _str(row.get("subscription_item_id"))
    details: dict[str, Any] = {
        "invoice_item": None,
        "proration": _bool(row["proration"]),
        "subscription": subscription,
    }
    kind = "invoice_item_details"
    if si is not None:
        kind = "subscription_item_details"
        details["subscription_item"] = si
    obj["parent"] = {"type": kind, kind: details}


def _render_payment_intent_payment(obj: dict, row: Mapping, related: Mapping, ctx: Mapping) -> None:
    obj["payment"] = {"payment_intent": row["payment_intent_id"], "type": "payment_intent"}


def _render_source(obj: dict, row: Mapping, related: Mapping, context: Mapping) -> None:
    obj["source"] = (
        _str(row.get("charge_id"))
        or _str(row.get("refund_id"))
        or _str(row.get("dispute_id"))
        or _str(row.get("source_payout_id"))
    )


def _render_snapshot(obj: dict, row: Mapping, related: Mapping, context: Mapping) -> None:
    data: dict[str, Any] = {"object": _json(row["data_object"])}
    previous = row.get("previous_attributes")
    if not _is_null(previous):
        data["previous_attributes"] = _json(previous)
    obj["data"] = data


def _render_request(obj: dict, row: Mapping, related: Mapping, context: Mapping) -> None:
    obj["request"] = {
        "id": _str(row.get("request_id")),
        "idempotency_key": _str(row.get("idempotency_key")),
    }


_RENDER_SPECIAL: dict[str, Callable[[dict, Mapping, Mapping, Mapping], None]] = {
    "first_locale": _render_first_locale,
    "currency_of_amount_off": _render_currency_of_amount_off,
    "taxes": _render_taxes,
    "attempts": _render_attempts,
    "line_parent": _render_line_parent,
    "payment_intent_payment": _render_payment_intent_payment,
    "source": _render_source,
    "snapshot": _render_snapshot,
    "request": _render_request,
}


def to_stripe_object(
    table: str,
    row: Mapping[str, Any],
    related: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> dict[str, Any]:
    """Render one row of ``table`` as a Stripe API object in the current API shape.

    Derived from :data:`MAPPINGS`: each column is written at its path.

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
        m = MAPPINGS[table]
    except KeyError:
        raise KeyError(f"table {table} holds no Stripe object type") from None
    return _render(m, row, related or {})


def previous_attributes(
    table: str, before: Mapping[str, Any], changed: Iterable[str]
) -> dict[str, Any]:
    """Stripe's ``previous_attributes`` for a change of ``changed`` columns of ``before``.

    Each changed column is written at its path in the mapping, with its value before the
    change encoded as the renderer encodes it: a nested field stays nested
    (``status_transitions.paid_at``), and an optional nested object that was ``null``
    before (every column inside it null) is ``null`` as a whole (``last_payment_error``).

    Example:
        >>> previous_attributes("invoices", {"id": "in_1", "paid_at": None}, ["paid_at"])
        {'status_transitions': {'paid_at': None}}
        >>> previous_attributes("payment_intents", {"id": "pi_1",
        ...                     "last_payment_error_code": None}, ["last_payment_error_code"])
        {'last_payment_error': None}
    """
    m = MAPPINGS[table]
    out: dict[str, Any] = {}
    for column in changed:
        f = m.fields[column]
        if f.kind == "special":
            rendered = _render(m, {**_blank(m), **before}, {})
            out[f.path] = rendered.get(f.path)
            continue
        group = next(
            (p.split(".") for p in m.optional if tuple(p.split(".")) == f.parts[: p.count(".") + 1]),
            None,
        )
        if group is not None:
            inside = [c for c, g in m.fields.items() if g.parts[: len(group)] == tuple(group)]
            if all(_is_null(before.get(c)) for c in inside):
                _set(out, group, None)
                continue
        what = f"{m.object}: {column}"
        _set(out, f.parts, _encode(f, before.get(column), what, _COLUMNS[table][column]))
    return out


def _blank(m: ObjectMapping) -> dict[str, Any]:
    return dict.fromkeys(("id", *m.fields))


def stripe_paths(table: str) -> dict[str, str]:
    """Column -> its path in the Stripe object (special cases: the field they occupy).

    Example:
        >>> stripe_paths("charges")["outcome_risk_score"]
        'outcome.risk_score'
    """
    return {c: f.path for c, f in MAPPINGS[table].fields.items()}


# --------------------------------------------------------------------------------------
# Stripe objects -> rows in SQL (derived from MAPPINGS)


def _sql_literal(key: str) -> str:
    return "'" + key.replace("'", "''") + "'"


def _sql_path(source: str, parts: Sequence[str], *, text: bool) -> str:
    """``source -> 'a' -> 'b' ->> 'c'``: the same operators on DuckDB and PostgreSQL (jsonb)."""
    steps = [f" -> {_sql_literal(p)}" for p in parts[:-1]]
    last = f" {'->>' if text else '->'} {_sql_literal(parts[-1])}"
    return f"({source}{''.join(steps)}{last})"


def flatten_sql(table: str, source: str = "obj") -> dict[str, str]:
    """SQL expressions that flatten a Stripe object held in JSON column ``source`` into rows.

    One expression per column the mapping declares by path (kinds ``value``, ``time``,
    ``rate``, ``ref`` and ``metadata``, legacy paths included); the named special cases
    and list sums are Python only (:func:`from_stripe_object`). The text runs unchanged on
    DuckDB (``JSON``) and PostgreSQL (``jsonb``): set-based ingestion can flatten a staged
    batch with one ``SELECT`` per table.

    Example:
        >>> flatten_sql("charges")["outcome_risk_score"]
        "CAST((obj -> 'outcome' ->> 'risk_score') AS BIGINT)"
        >>> flatten_sql("charges")["created"]
        "to_timestamp(CAST((obj ->> 'created') AS BIGINT))"
    """
    m = MAPPINGS[table]
    out = {"id": _sql_path(source, ["id"], text=True)}
    for column, f in m.fields.items():
        if f.kind in ("special", "sum"):
            continue
        paths = [f.parts, *(tuple(p.split(".")) for p in f.legacy)]
        if f.kind == "ref":
            options = [
                e for p in paths for e in (_sql_path(source, [*p, "id"], text=True),
                                           _sql_path(source, p, text=True))
            ]  # fmt: skip
            out[column] = f"COALESCE({', '.join(options)})"
            continue
        texts = [_sql_path(source, p, text=True) for p in paths]
        value = texts[0] if len(texts) == 1 else f"COALESCE({', '.join(texts)})"
        col = _COLUMNS[table][column]
        if f.kind == "metadata":
            raw = _sql_path(source, f.parts, text=False)
            out[column] = f"CASE WHEN {value} IS NULL THEN '{{}}' ELSE {raw} END"
        elif f.kind == "time":
            out[column] = f"to_timestamp(CAST({value} AS BIGINT))"
        elif f.kind == "rate":
            out[column] = f"CAST({value} AS DECIMAL({col.type.precision}, {col.type.scale}))"
        elif col.type is BOOLEAN:
            out[column] = f"CAST({value} AS BOOLEAN)"
        elif col.type.name in _INT_TYPES:
            out[column] = f"CAST({value} AS BIGINT)"
        else:
            out[column] = value
    return out


# --------------------------------------------------------------------------------------
# Stripe objects -> rows (derived from MAPPINGS)


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
        return at_rate_scale(d)

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

    def field(self, f: Field) -> Any:
        """The value of a (non-special) field, decoded by its kind; legacy paths as fallbacks."""
        parts = f.parts  # a top-level field is read directly (the obj is a mapping)
        key, value = f.path, self.obj.get(parts[0]) if len(parts) == 1 else self.sub(*parts)
        for older in f.legacy:
            if value is not None:
                break
            key, value = older, self.sub(*older.split("."))
        if f.kind == "value":
            return value
        if f.kind == "time":
            return self.time(key, value)
        if f.kind == "rate":
            return self.rate(key, value)
        if f.kind == "ref":
            return self.ref(key, f.objects, value)
        if f.kind == "metadata":
            return _metadata(self)
        if f.kind == "sum":
            return self.sum_amounts(key)
        return value


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
        m = _BY_OBJECT.get(kind)
        if m is None:
            raise UnknownObjectType(kind, oid, f"object type {kind!r} is not in the model")
        _read(m, _Reader(obj, self, depth))

    def ordered(self) -> list[tuple[str, dict[str, Any]]]:
        if len(self.rows) == 1:
            return list(self.rows)
        return sorted(self.rows, key=lambda tr: _TABLE_ORDER[tr[0]])


_TABLE_ORDER = {name: i for i, name in enumerate(OLTP.table_names)}
"""Each table's place in the model's dependency order (measured: building it per object
was a tenth of the mapping's time)."""


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


def _read(m: ObjectMapping, r: _Reader, parent: Mapping[str, str] | None = None) -> None:
    """Flatten one object by its mapping: one row, then its nested and owned rows."""
    read_row, specials = _row_reader(m.table, tuple(parent or ()))
    row = read_row(r, parent)
    for name in specials:
        _READ_SPECIAL[name](r, row, parent or {})
    r.rows.add(m.table, row)
    for nested in m.nested:
        child = MAPPINGS[nested.table]
        for item in r.list_data(nested.key):
            obj = r.nested(nested.key, item, child.object)
            _read(child, _Reader({"object": child.object, **obj}, r.rows, r.depth),
                  {nested.parent_column: r.id})  # fmt: skip
    if m.table in EXPANDED_TRANSACTIONS:
        key, _, many = EXPANDED_TRANSACTIONS[m.table]
        _read_transactions(r, key, r.list_data(key) if many else [r.get(key)])
    if m.table == "customers":
        _read_address(r)
    if m.table == "balance_transactions":
        _read_fee_details(r)
    if m.table == "payouts":
        _read_payout_transactions(r)


@cache
def _row_reader(
    table: str, from_parent: tuple[str, ...]
) -> tuple[Callable[[_Reader, Mapping[str, str] | None], dict[str, Any]], tuple[str, ...]]:
    """One Python function per table (and columns its parent gives) that reads a row's
    plain fields, generated from the mapping, and the special cases to run after it.

    Its body is the loop the mapping describes, unrolled: each column read the way
    :meth:`_Reader.field` reads its kind, in the mapping's order (so the first error is
    the same). Measured: the generic loop's dispatch (per field: its kind, its path, its
    legacy paths) was a third of the mapping's time.
    """
    m = MAPPINGS[table]
    fields = {"F": m.fields, "_metadata": _metadata}
    lines = ["def read_row(r, parent):", "    get = r.obj.get", "    row = {'id': r.id}"]
    specials: dict[str, None] = {}
    for column, f in m.fields.items():
        c, p = repr(column), repr(f.path)
        if column in from_parent:
            value = f"parent[{c}]"
        elif f.kind == "special":
            specials[f.special] = None  # type: ignore[index]
            value = "None"
        elif f.legacy or f.kind not in ("value", "time", "rate", "ref", "metadata", "sum"):
            value = f"r.field(F[{c}])"
        else:
            raw = f"get({p})" if len(f.parts) == 1 else f"r.sub(*{f.parts!r})"
            value = {
                "value": raw,
                "time": f"r.time({p}, {raw})",
                "rate": f"r.rate({p}, {raw})",
                "ref": f"r.ref({p}, {f.objects!r}, {raw})",
                "metadata": "_metadata(r)",
                "sum": f"r.sum_amounts({p})",
            }[f.kind]
        lines.append(f"    row[{c}] = {value}")
    lines.append("    return row")
    exec(compile("\n".join(lines), f"<paymodel row reader: {table}>", "exec"), fields)
    return fields["read_row"], tuple(specials)


def _read_payout_transactions(r: _Reader) -> None:
    for key in ("balance_transaction", "failure_balance_transaction"):
        _read_transactions(r, key, [r.get(key)])
    for value in r.list_data("balance_transactions"):
        # the payout's settled list: each one was paid out by this payout
        bt = dict(r.nested("balance_transactions", value, "balance_transaction"))
        bt.setdefault("object", "balance_transaction")
        if bt.get("payout") is None:
            bt["payout"] = r.id
        r.rows.add_object(bt, r.depth + 1)


def _read_transactions(r: _Reader, key: str, values: list[Any]) -> None:
    """Expanded balance transactions of a charge, refund or dispute (ids are skipped)."""
    for value in values:
        if value is None or isinstance(value, str):
            continue
        bt = dict(r.nested(key, value, "balance_transaction"))
        bt.setdefault("object", "balance_transaction")
        if bt.get("source") is None:
            bt["source"] = r.id
        r.rows.add_object(bt, r.depth + 1)


def _read_address(r: _Reader) -> None:
    address = r.get("address")
    if address is None:
        return
    if not isinstance(address, Mapping):
        raise r.fail(f"address must be an object, got {_kind(address)}")
    fields = {k: address.get(k) for k in ("line1", "line2", "city", "state", "postal_code", "country")}
    if any(v is not None for v in fields.values()):
        r.rows.add("customer_addresses", {"customer_id": r.id, **fields})


def _read_fee_details(r: _Reader) -> None:
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


def _read_first_locale(r: _Reader, row: dict[str, Any], parent: Mapping) -> None:
    locales = r.get("preferred_locales")
    if locales is not None and not isinstance(locales, list):
        raise r.fail(f"preferred_locales must be a list, got {_kind(locales)}")
    row["preferred_locale"] = locales[0] if locales else r.get("preferred_locale")


def _read_currency_of_amount_off(r: _Reader, row: dict[str, Any], parent: Mapping) -> None:
    row["currency"] = r.get("currency") if r.get("amount_off") is not None else None


def _read_taxes(r: _Reader, row: dict[str, Any], parent: Mapping) -> None:
    taxes = r.get("total_taxes")
    row["tax"] = r.sum_amounts("total_taxes") if taxes is not None else (r.get("tax") or 0)


def _read_attempts(r: _Reader, row: dict[str, Any], parent: Mapping) -> None:
    row["attempt_count"] = r.get("attempt_count")


def _read_line_parent(r: _Reader, row: dict[str, Any], parent: Mapping) -> None:
    value = r.get("parent")
    details: Mapping[str, Any] = {}
    if value is not None:
        if not isinstance(value, Mapping):
            raise r.fail(f"parent must be an object, got {_kind(value)}")
        chosen = value.get(value.get("type")) if isinstance(value.get("type"), str) else None
        details = chosen if isinstance(chosen, Mapping) else {}
    row["proration"] = details.get("proration", r.get("proration"))
    si = details.get("subscription_item", r.get("subscription_item"))
    row["subscription_item_id"] = r.ref("subscription_item", "subscription_item", si)


def _read_payment_intent_payment(r: _Reader, row: dict[str, Any], parent: Mapping) -> None:
    kind = r.sub("payment", "type")
    if kind not in (None, "payment_intent"):
        raise r.fail(
            f"payment is a {_kind(kind)}, not a payment intent: the model links invoices to payment intents"
        )
    row["payment_intent_id"] = r.ref(
        "payment.payment_intent", "payment_intent", r.sub("payment", "payment_intent")
    )


def _read_source(r: _Reader, row: dict[str, Any], parent: Mapping) -> None:
    source = r.get("source")
    source_id = source.get("id") if isinstance(source, Mapping) else source
    if source_id is not None and not isinstance(source_id, str):
        raise r.fail(f"source must be an id or an expanded object, got {_kind(source_id)}")
    for prefixes, column, kind in SOURCE_PREFIXES:
        row[column] = None
        if source_id is not None and source_id.startswith(prefixes):
            row[column] = r.ref("source", kind, source)


def _read_snapshot(r: _Reader, row: dict[str, Any], parent: Mapping) -> None:
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
    row.update(object_type=kind, object_id=oid, data_object=dict(snapshot),
               previous_attributes=None if previous is None else dict(previous))  # fmt: skip


def _read_request(r: _Reader, row: dict[str, Any], parent: Mapping) -> None:
    request = r.get("request")
    if isinstance(request, str):  # API versions before 2017-05-25 sent the request id alone
        request = {"id": request, "idempotency_key": None}
    if request is not None and not isinstance(request, Mapping):
        raise r.fail(f"request must be an object, got {_kind(request)}")
    request = request or {}
    row.update(request_id=request.get("id"), idempotency_key=request.get("idempotency_key"))


_READ_SPECIAL: dict[str, Callable[[_Reader, dict[str, Any], Mapping], None]] = {
    "first_locale": _read_first_locale,
    "currency_of_amount_off": _read_currency_of_amount_off,
    "taxes": _read_taxes,
    "attempts": _read_attempts,
    "line_parent": _read_line_parent,
    "payment_intent_payment": _read_payment_intent_payment,
    "source": _read_source,
    "snapshot": _read_snapshot,
    "request": _read_request,
}


def from_stripe_object(
    obj: Mapping[str, Any], *, checks: bool = True
) -> list[tuple[str, dict[str, Any]]]:
    """Flatten a Stripe object into ``(table, row)`` pairs, parents first.

    Each row is complete (every column of its table) and has been checked against the
    model (:func:`row_problems`). Nested lists (``subscription.items``, ``invoice.lines``,
    ``balance_transaction.fee_details``), the customer's address and expanded objects
    found where an id is expected become rows too; an object expanded in several places
    appears once (the outermost copy). An event becomes one ``events`` row: its
    ``data.object`` is flattened by a second call.

    Args:
        obj: a Stripe API object as the API returns it (``object`` and ``id`` required).
        checks: evaluate the tables' check constraints too (``False``: the columns
            only, for a caller that evaluates the checks itself, as SQL over many rows).

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
        problems = row_problems(table, row, checks=checks)
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


def _plain_value(column: Column) -> tuple[str, Column, type | None, Any, Any]:
    """``(name, column, type, lo, hi)``: a value of exactly ``type`` (within ``lo..hi``
    when given) is valid for ``column`` (:func:`_column_problem` would say nothing);
    any other value goes through :func:`_column_problem`. ``type`` is ``None`` where
    the type alone does not decide (aware instants, dates, decimals)."""
    t = column.type
    if t.name in _INT_TYPES:
        lo, hi = _SQL_INT_RANGE[t.sql]
        return column.name, column, int, lo, hi
    if t.name == ID.name:  # a non-empty string (one longer than the bound is checked in full)
        return column.name, column, str, "\x00", "\U0010ffff" * 256
    exact = {TEXT.name: str, CURRENCY.name: str, COUNTRY.name: str, BOOLEAN.name: bool,
             JSON.name: dict}.get(t.name)  # fmt: skip
    return column.name, column, exact, None, None


_PLAIN_VALUES = {t.name: tuple(_plain_value(c) for c in t.columns) for t in OLTP.tables}
"""Per table, how each column's plainly valid values look (measured: validating the
rows of a replay was about a sixth of its time, most of it in calls for valid values)."""


def row_problems(table: str, row: Mapping[str, Any], *, checks: bool = True) -> list[str]:
    """What is wrong with ``row`` for ``table``, in words; ``[]`` when nothing is.

    Checks the columns (presence, type, SQL integer ranges, NOT NULL), then every check
    constraint of the table (accepted values, ranges, ISO codes, multi-column rules),
    evaluated in Python from the SQL the database enforces, with SQL's NULL logic. A
    broken check is named as the database names it: its description, then its
    constraint name in parentheses.
    Foreign keys and unique keys need the database and are not checked here.

    Example:
        >>> from datetime import UTC, datetime
        >>> t = datetime(2025, 1, 1, tzinfo=UTC)
        >>> row_problems("fx_rates", {"rate_date": t.date(), "currency": "EUR",
        ...                           "usd_per_unit": Decimal("1.08")})
        ['currency is a lowercase 3-letter ISO 4217 code (ck_fx_rates_currency_iso)']
    """
    columns = _COLUMNS[table]
    problems = []
    for name, column, exact, lo, hi in _PLAIN_VALUES[table]:
        if name not in row:
            problems.append(f"{name} is missing (column of {table})")
            continue
        value = row[name]
        if value is None:
            if column.nullable:
                continue
        elif type(value) is exact and (lo is None or lo <= value <= hi):
            continue  # plainly valid: the common case, decided without a call
        problem = _column_problem(column, value)
        if problem:
            problems.append(problem)
    extra = row.keys() - columns.keys()
    if extra:
        problems.append(f"{', '.join(sorted(extra))}: not columns of {table}")
    if problems or not checks:
        return problems
    for check, test in _compiled_checks(table):
        if test(row) is False:
            problems.append(f"{check.description} ({check.name})")
    return problems


@cache
def _compiled_checks(table: str) -> tuple[tuple[Check, Callable[[Mapping[str, Any]], Any]], ...]:
    """The table's checks compiled once, cached by table name (hashing a Table is slow)."""
    return tuple(
        (ck, _compile(sqlglot.parse_one(ck.sql, read="postgres")))
        for ck in _TABLES[table].all_checks
    )


@cache
def sql_predicate(sql: str) -> Callable[[Mapping[str, Any]], Any]:
    """A condition in PostgreSQL SQL as a Python function of a row, with SQL's NULL logic.

    Qualified columns (``parent.amount``) are read from the key ``"parent.amount"``.
    ``None`` is SQL NULL; the function returns ``True``, ``False`` or ``None``.

    Example:
        >>> ok = sql_predicate("amount <= parent.amount")
        >>> ok({"amount": 7000, "parent.amount": 6000}), ok({"amount": None, "parent.amount": 1})
        (False, None)
    """
    return _compile(sqlglot.parse_one(sql, read="postgres"))


def _compile(node: exp.Expression) -> Callable[[Mapping[str, Any]], Any]:
    """A Python function evaluating a check expression with SQL's three-valued logic.

    ``None`` is SQL NULL. A check passes unless it evaluates to ``False``.
    """
    if isinstance(node, exp.Paren):
        return _compile(node.this)
    if isinstance(node, exp.Column):
        name = f"{node.table}.{node.name}" if node.table else node.name
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
    if isinstance(node, exp.Between):
        inner, low, high = (_compile(node.args[k]) for k in ("this", "low", "high"))

        def _between(row: Mapping[str, Any]) -> Any:
            v, lo, hi = inner(row), low(row), high(row)
            return None if v is None or lo is None or hi is None else lo <= v <= hi

        return _between
    if isinstance(node, exp.Length):
        inner = _compile(node.this)
        return lambda row: None if (v := inner(row)) is None else len(v)
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
