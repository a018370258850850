"""The document collections: their grain, access patterns, indexes and JSON Schemas.

The document layer (:mod:`paymodel.documents`) stores data whose shape varies, that is
read whole, or that arrives as a stream. Each collection is declared here once; the
JSON Schemas in ``schemas/documents/`` are rendered from these objects by
``paymodel schemas``, the validators are compiled from them, and the PostgreSQL twin
creates its indexes from :attr:`Collection.indexes`.

Design from the access patterns (each one is an :class:`Index`):

* ``events``: Stripe Event objects as received; by type, by object id, by time range.
  Append-only, deduplicated by event id (Stripe delivers at least once).
* ``customer_profiles``: a customer 360 read whole by customer id: embedded payment
  methods (PCI: brand, last 4, expiry, fingerprint; a card number cannot pass the schema),
  a subscription summary, the last :data:`RECENT_CHARGES` charges (subset pattern), lifetime
  totals (computed pattern) and a ``schema_version`` (schema versioning pattern).
* ``behaviour``: one bucket per customer per day of clickstream (bucket pattern).
* ``feedback``: survey answers and support tickets, by customer, by tag, by keyword.
* ``ml_features``: per-customer churn and fraud features derived from the warehouse, with a
  feature-set version and an as-of time; the customer only as the warehouse's keyed hash.

Example:
    >>> COLLECTIONS["events"].key
    'id'
    >>> [ix.path for ix in COLLECTIONS["events"].indexes]
    ['type', 'data.object.id', 'created']
    >>> COLLECTIONS["customer_profiles"].json_schema(1)["properties"]["schema_version"]
    {'const': 1}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "COLLECTIONS",
    "FEATURE_SET",
    "FEATURE_SET_VERSION",
    "FEEDBACK_CHANNELS",
    "FUNNEL_STEPS",
    "PROFILE_VERSION",
    "RECENT_CHARGES",
    "SENTIMENTS",
    "Collection",
    "Index",
]

RECENT_CHARGES = 10
"""How many of a customer's latest charges a profile embeds (subset pattern)."""
PROFILE_VERSION = 2
"""The current ``schema_version`` of ``customer_profiles``."""
FUNNEL_STEPS = ("page_view", "billing_viewed", "upgrade_clicked")
"""The checkout funnel, in order: using the app, looking at billing, clicking upgrade."""
FEEDBACK_CHANNELS = ("nps_survey", "cancellation_survey", "support_ticket")
SENTIMENTS = ("negative", "neutral", "positive")

Json = dict[str, Any]


# --- a small vocabulary for JSON Schema (draft 2020-12) ------------------------------


def _string(description: str, **extra: Any) -> Json:
    return {"type": "string", "description": description, **extra}


def _nullable(schema: Json) -> Json:
    out = dict(schema)
    out["type"] = [schema["type"], "null"]
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    return out


def _id(description: str, prefix: str) -> Json:
    return _string(description, pattern=f"^{prefix}[A-Za-z0-9]+$")


def _int(description: str, minimum: int | None = 0, maximum: int | None = None) -> Json:
    out: Json = {"type": "integer", "description": description}
    if minimum is not None:
        out["minimum"] = minimum
    if maximum is not None:
        out["maximum"] = maximum
    return out


def _instant(description: str) -> Json:
    return _string(description, format="date-time", pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def _day(description: str) -> Json:
    return _string(description, format="date", pattern=r"^\d{4}-\d\d-\d\d$")


_CURRENCY = _string("Lowercase ISO 4217 code.", pattern="^[a-z]{3}$")


def _object(
    description: str,
    properties: Mapping[str, Json],
    *,
    optional: Sequence[str] = (),
    closed: bool = True,
) -> Json:
    """An object whose properties are all required but ``optional``; closed to others."""
    return {
        "type": "object",
        "description": description,
        "properties": dict(properties),
        "required": [k for k in properties if k not in optional],
        "additionalProperties": not closed,
    }


def _counts(description: str, key_pattern: str = "^.+$") -> Json:
    return {
        "type": "object",
        "description": description,
        "patternProperties": {key_pattern: {"type": "integer", "minimum": 0}},
        "additionalProperties": False,
    }


def _array(description: str, items: Json, **extra: Any) -> Json:
    return {"type": "array", "description": description, "items": items, **extra}


# --- declarations ---------------------------------------------------------------------


@dataclass(frozen=True)
class Index:
    """An access pattern and the index that serves it on the PostgreSQL twin.

    Attributes:
        path: dotted path into the document (``data.object.id``).
        kind: ``btree`` (equality and ranges on the value), ``contains`` (membership in
            an array, a GIN index), ``fulltext`` (ranked keyword search: a GIN index on
            a ``tsvector`` on PostgreSQL, a BM25 index in the embedded store).
        pattern: the question it answers, in words.
    """

    path: str
    kind: Literal["btree", "contains", "fulltext"]
    pattern: str


@dataclass(frozen=True)
class Collection:
    """One collection: its grain, key, shape, access patterns and policies.

    Attributes:
        name: snake_case collection name (also its TinyDB file and PostgreSQL table).
        grain: one sentence, "One document per ...".
        key: the field that identifies a document (unique in the collection).
        properties: JSON Schema of each top-level field.
        optional: fields that may be absent.
        closed: whether fields beyond ``properties`` are refused.
        indexes: the access patterns beyond reading by key.
        append_only: documents are never replaced; a second copy of a key is a duplicate.
        customer_paths: paths holding the customer id (for erasure).
        pseudonymised: the customer paths hold the keyed hash of the id, not the id.
        previous: older versions' properties, by ``schema_version`` (schema versioning).
        why: why the document has this shape.
    """

    name: str
    grain: str
    key: str
    properties: Mapping[str, Json]
    indexes: Sequence[Index]
    why: str
    optional: Sequence[str] = ()
    closed: bool = True
    append_only: bool = False
    customer_paths: Sequence[str] = ("customer_id",)
    previous: Mapping[int, Mapping[str, Json]] = field(default_factory=dict)
    pseudonymised: bool = False

    def __post_init__(self) -> None:
        if not self.grain.startswith("One document per"):
            raise ValueError(f"collection {self.name}: grain must read 'One document per ...'")
        if self.key not in self.properties:
            raise ValueError(f"collection {self.name}: key {self.key} is not a property")
        object.__setattr__(self, "indexes", tuple(self.indexes))

    @property
    def version(self) -> int | None:
        """The current ``schema_version``, or ``None`` for an unversioned collection."""
        v = self.properties.get("schema_version")
        return None if v is None else v["const"]

    @property
    def versions(self) -> tuple[int, ...]:
        """Every schema version a stored document may carry, oldest first."""
        return () if self.version is None else (*sorted(self.previous), self.version)

    def json_schema(self, version: int | None = None) -> Json:
        """The JSON Schema of one document (of ``version``, default the current one)."""
        props = self.properties if version in (None, self.version) else self.previous[version]
        title = self.name if version in (None, self.version) else f"{self.name} v{version}"
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": title,
            **_object(self.grain, props, optional=self.optional, closed=self.closed),
            "description": f"{self.grain} {self.why}",
        }

    def index(self, kind: str) -> Index | None:
        """The first index of ``kind`` (``fulltext``...), or ``None``."""
        return next((ix for ix in self.indexes if ix.kind == kind), None)


_CARD = _object(
    "The card, as PCI DSS allows keeping it: never the number (PAN), CVC or PIN.",
    {
        "brand": _string("Card brand (visa, mastercard...)."),
        "funding": _string("credit, debit, prepaid or unknown."),
        "country": _nullable(_string("Issuing country (ISO 3166-1).", pattern="^[A-Z]{2}$")),
        "last4": _string("Last four digits.", pattern="^[0-9]{4}$"),
        "exp_month": _int("Expiry month.", 1, 12),
        "exp_year": _int("Expiry year.", 2000, 2100),
        "fingerprint": _string("Identifies the same card across customers."),
    },
)
_PAYMENT_METHOD = _object(
    "A payment method embedded in the profile (read with it, small, bounded in number).",
    {
        "id": _id("Payment method id.", "pm_"),
        "type": _string("Payment method type."),
        "card": _nullable({**_CARD, "type": "object"}),
        "created": _instant("When it was attached."),
    },
)
_CHARGE = _object(
    "One charge, as the profile shows it.",
    {
        "id": _id("Charge id.", "ch_"),
        "created": _instant("When it was created."),
        "amount": _int("Amount in minor units."),
        "currency": _CURRENCY,
        "status": _string("Charge status.", enum=["pending", "succeeded", "failed"]),
        "amount_refunded": _int("Refunded, minor units."),
        "disputed": {"type": "boolean", "description": "Whether a dispute was opened."},
    },
)
_CONTACT = {
    "email": _nullable(_string("Email address (personal data).")),
    "name": _nullable(_string("Full name (personal data).")),
    "phone": _nullable(_string("Phone number (personal data).")),
}

_ADDRESS = (
    ("line1", "Street."),
    ("line2", "Suite."),
    ("city", "City."),
    ("state", "State."),
    ("postal_code", "Postal code."),
    ("country", "Country (ISO 3166-1)."),
)

_PROFILE_V1 = {
    "customer_id": _id("Customer id.", "cus_"),
    "schema_version": {"const": 1},
    **_CONTACT,
    "currency": _nullable(_CURRENCY),
    "created": _instant("When the customer was created."),
    "delinquent": {"type": "boolean", "description": "Whether the latest invoice payment failed."},
    "payment_methods": _array("Attached payment methods.", _PAYMENT_METHOD),
    "subscriptions": _array(
        "Every subscription (unbounded).",
        _object(
            "A subscription.",
            {"id": _id("Id.", "sub_"), "status": _string("Status."), "started": _instant("Start.")},
        ),
    ),
    "charges": _array("Every charge (unbounded: the reason for version 2).", _CHARGE),
    "total_charged": _int(
        "Sum of succeeded amounts over all currencies (meaningless: v2 splits it)."
    ),
}

customer_profiles = Collection(
    "customer_profiles",
    "One document per customer.",
    "customer_id",
    {
        "customer_id": _id("Customer id.", "cus_"),
        "schema_version": {"const": PROFILE_VERSION},
        "contact": _object("How to reach the customer (personal data).", _CONTACT),
        "address": _nullable(
            {
                **_object(
                    "Billing address (personal data).",
                    {k: _nullable(_string(d)) for k, d in _ADDRESS},
                ),
            }
        ),
        "currency": _nullable(_CURRENCY),
        "created": _instant("When the customer was created."),
        "delinquent": {
            "type": "boolean",
            "description": "Whether the latest invoice payment failed.",
        },
        "payment_methods": _array("Attached payment methods (embedded).", _PAYMENT_METHOD),
        "subscriptions": _object(
            "Summary of the customer's subscriptions (computed pattern).",
            {
                "count": _int("Subscriptions ever."),
                "by_status": _counts("Subscriptions by status."),
                "current": _array(
                    "Subscriptions not ended, newest first.",
                    _object(
                        "A live subscription.",
                        {
                            "id": _id("Subscription id.", "sub_"),
                            "status": _string("Status."),
                            "started": _instant("Start date."),
                        },
                    ),
                ),
            },
        ),
        "recent_charges": _array(
            f"The latest {RECENT_CHARGES} charges, newest first (subset pattern; the rest stay in OLTP).",
            _CHARGE,
            maxItems=RECENT_CHARGES,
        ),
        "lifetime": _object(
            "Lifetime totals, computed when the profile is built (computed pattern).",
            {
                "charges": _int("Charges ever."),
                "succeeded": _int("Succeeded charges."),
                "failed": _int("Failed charges."),
                "disputed": _int("Charges disputed."),
                "by_currency": {
                    "type": "object",
                    "description": "Per currency: amounts charged (succeeded) and refunded, minor units.",
                    "patternProperties": {
                        "^[a-z]{3}$": _object(
                            "Totals in one currency.",
                            {
                                "charged": _int("Succeeded amount."),
                                "refunded": _int("Refunded amount."),
                            },
                        )
                    },
                    "additionalProperties": False,
                },
            },
        ),
    },
    [],
    "Read whole by customer id: everything a support agent or a checkout page needs in one read.",
    previous={1: _PROFILE_V1},
)

events = Collection(
    "events",
    "One document per Stripe event, as received.",
    "id",
    {
        "id": _id("Event id.", "evt_"),
        "object": {"const": "event"},
        "type": _string("Event type (charge.succeeded...).", pattern=r"^[a-z_]+(\.[a-z_]+)+$"),
        "created": _int("Unix seconds when the event happened."),
        "api_version": _nullable(_string("API version of the payload.")),
        "livemode": {"type": "boolean"},
        "pending_webhooks": _int("Webhooks not yet delivered."),
        "request": _nullable(
            {
                **_object(
                    "The API request that caused the event.",
                    {
                        "id": _nullable(_string("Request id.")),
                        "idempotency_key": _nullable(_string("Idempotency key.")),
                    },
                ),
            }
        ),
        "data": _object(
            "The object the event is about, and what changed.",
            {
                "object": _object(
                    "The Stripe object (any type) after the change.",
                    {"id": _string("Object id."), "object": _string("Object type.")},
                    closed=False,
                ),
                "previous_attributes": {"type": "object", "description": "Old values."},
            },
            optional=("previous_attributes",),
        ),
    },
    [
        Index("type", "btree", "events of one type (every invoice.payment_failed)"),
        Index("data.object.id", "btree", "the history of one object (every event about ch_...)"),
        Index("created", "btree", "events in a time range (replay an hour)"),
    ],
    "Kept as Stripe sent them (log management): the payload varies by type, and a log is "
    "read as it came. Fields Stripe adds later are kept.",
    closed=False,
    append_only=True,
    customer_paths=("data.object.customer", "data.object.id"),
)

_BEHAVIOUR_EVENT = _object(
    "One clickstream event inside the bucket.",
    {
        "event_id": _id("Event id.", "bev_"),
        "t": _instant("When it happened."),
        "event": _string("Event name (page_view, feature_used...)."),
        "page": _string("Page path."),
        "session_id": _id("Session id.", "sess_"),
        "device": _string("desktop, mobile or tablet."),
        "duration_ms": _int("Time on the page, milliseconds."),
        "feature": _string("Feature used (feature_used only)."),
    },
    optional=("feature",),
)

behaviour = Collection(
    "behaviour",
    "One document per customer per day with clickstream activity.",
    "bucket_id",
    {
        "bucket_id": _string(
            "customer id, colon, day.", pattern=r"^cus_[A-Za-z0-9]+:\d{4}-\d\d-\d\d$"
        ),
        "customer_id": _id("Customer id.", "cus_"),
        "day": _day("UTC day of the bucket."),
        "n_events": _int("Events in the bucket."),
        "n_sessions": _int("Distinct sessions."),
        "pages": _counts("Events per page path.", "^/"),
        "funnel": _object(
            "Events at each checkout-funnel step, in funnel order.",
            {step: _int(f"{step} events.") for step in FUNNEL_STEPS},
        ),
        "cancel_flow_started": _int("Visits to the cancellation flow."),
        "events": _array("The day's events, in time order.", _BEHAVIOUR_EVENT, minItems=1),
    },
    [
        Index("customer_id", "btree", "a customer's activity"),
        Index("day", "btree", "activity in a range of days"),
    ],
    "A day's events travel together (bucket pattern): one read per customer-day instead of "
    "one per click, with the counts computed once.",
)

feedback = Collection(
    "feedback",
    "One document per survey answer or support ticket.",
    "feedback_id",
    {
        "feedback_id": _id("Feedback id.", "fb_"),
        "customer_id": _id("Customer id.", "cus_"),
        "created": _instant("When it was given."),
        "channel": _string("Where it came from.", enum=list(FEEDBACK_CHANNELS)),
        "rating": _int("Score on the channel's scale.", 0, 10),
        "rating_scale": _string("The scale of rating.", enum=["0-10", "1-5"]),
        "topic": _string("What it is about (pricing, billing...)."),
        "text": _string("The free text, as written.", minLength=1),
        "locale": _nullable(_string("Language of the text.")),
        "tags": _array(
            "Tags: channel, topic, and subjects found in the text.",
            _string("A tag."),
            uniqueItems=True,
        ),
        "sentiment": _object(
            "Sentiment derived from the rating on its scale.",
            {
                "label": _string("negative, neutral or positive.", enum=list(SENTIMENTS)),
                "score": {"type": "number", "minimum": -1, "maximum": 1, "description": "-1 to 1."},
            },
        ),
        "charge_id": _nullable(_id("The charge it is about, where there is one.", "ch_")),
        "dispute_id": _nullable(_id("The dispute it is about, where there is one.", "dp_")),
    },
    [
        Index("customer_id", "btree", "a customer's feedback"),
        Index("tags", "contains", "feedback with a tag (billing, pricing...)"),
        Index("text", "fulltext", "keyword search, ranked by relevance"),
    ],
    "Free text read whole; linked to a charge or dispute by reference (the charge lives in OLTP).",
)

FEATURE_SET = "churn_fraud"
FEATURE_SET_VERSION = 1
"""The feature set ml_features holds, and its version (bump it when a definition changes)."""

_HASH = _string(
    "HMAC-SHA256 (hex) under PAYMODEL_PII_KEY, as in the warehouse.", pattern="^[0-9a-f]{64}$"
)
_RATE = {
    "type": ["number", "null"],
    "minimum": 0,
    "maximum": 1,
    "description": "A share, 0-1; null without cases.",
}

ml_features = Collection(
    "ml_features",
    "One document per customer per feature-set version.",
    "feature_id",
    {
        "feature_id": _string(
            "subject, colon, feature set, colon, version.", pattern=r"^[0-9a-f]{64}:[a-z_]+:\d+$"
        ),
        "subject": _HASH
        | {"description": "The customer id, pseudonymised with the warehouse's keyed hash."},
        "email_hash": _nullable(
            _HASH | {"description": "The warehouse's keyed hash of the email."}
        ),
        "feature_set": {"const": FEATURE_SET},
        "feature_set_version": {"const": FEATURE_SET_VERSION},
        "as_of": _instant("The warehouse's as-of time: every feature describes the customer then."),
        "churn": _object(
            "Features for a churn model.",
            {
                "tenure_days": _int("Days from sign-up to as_of."),
                "plan_tier": _string("Plan tier at as_of (none without a live subscription)."),
                "delinquent": {"type": "boolean", "description": "Latest invoice payment failed."},
                "months_billed": _int("Months with a billed subscription item."),
                "mrr_last_month_reporting": {
                    "type": "number",
                    "minimum": 0,
                    "description": "MRR of the last month billed, reporting currency, major units.",
                },
            },
        ),
        "payments": _object(
            "Payment behaviour.",
            {
                "attempts_90d": _int("Charge attempts in the 90 days before as_of."),
                "failure_rate_90d": _RATE,
                "days_since_last_success": _nullable(
                    _int("Days since the last successful charge.")
                ),
                "refund_rate": _RATE,
                "disputes": _int("Disputes ever."),
            },
        ),
        "fraud": _object(
            "Features for a fraud model.",
            {
                "max_risk_score": _nullable(_int("Highest Radar risk score, 0-99.", 0, 99)),
                "mean_risk_score": {"type": ["number", "null"], "minimum": 0, "maximum": 99},
                "payment_methods": _int("Distinct payment methods charged."),
                "card_countries": _int("Distinct issuing countries of the cards charged."),
                "fraud_disputes": _int("Disputes with reason fraudulent."),
            },
        ),
    },
    [
        Index(
            "feature_set_version",
            "btree",
            "a training set: every customer's features of one version",
        ),
        Index("as_of", "btree", "features as of a time (point-in-time correctness)"),
    ],
    "Derived from the warehouse, read whole by a model at training and scoring time; no "
    "identifier in clear (GDPR: pseudonymised data is still personal data, the key stays outside).",
    customer_paths=("subject",),
    pseudonymised=True,
)

COLLECTIONS: dict[str, Collection] = {
    c.name: c for c in (events, customer_profiles, behaviour, feedback, ml_features)
}
"""Every collection, by name, in build order."""
