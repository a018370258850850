"""The OLTP schema: one normalised (3NF) model of Stripe's API objects.

This module is the single source of truth for the transactional schema. DDL for
DuckDB and PostgreSQL, the SQLAlchemy Core tables, the Mermaid diagrams, the JSON
Schema and the data dictionary in ``schemas/`` are all rendered from :data:`OLTP`
by ``paymodel schemas``.

Design decisions (each one is visible in the tables below):

* **Flat ``*_id`` columns** for Stripe's nested references, as Stripe's own
  warehouse (Sigma) does: ``charges.payment_intent_id``, ``refunds.charge_id``.
* **Money** is an integer in the currency's minor unit, never a float;
  ``currencies`` says how many minor units a currency has (JPY 0, USD 2, KWD 3), a
  fact about the currency alone, so by 3NF it lives in its own table.
* **No reference cycles.** Stripe has pointers both ways (``customer`` <->
  ``default_payment_method``, ``payment_intent.latest_charge`` <-> ``charge.payment_intent``,
  ``subscription.latest_invoice``, ``product.default_price``). We keep the child ->
  parent direction only: the other is derivable by a query, and DuckDB cannot create
  a foreign-key cycle at all (no ``ALTER TABLE ... ADD FOREIGN KEY``, no deferrable
  constraints).
* **Balance transactions** point at their source through one typed foreign key per
  source kind (``charge_id``, ``refund_id``, ``dispute_id``, ``source_payout_id``)
  instead of Stripe's polymorphic ``source``, so every reference is enforced. Apart
  from its source, each one names the automatic payout that settled it
  (``payout_id``); a payout has no pointer back to its own balance transaction (child
  -> parent only, no cycle): it is the one whose ``source_payout_id`` is the payout.
* **Addresses** of customers live in ``customer_addresses``: all optional, all
  personal data, one row to delete. Personal data also ends up in event snapshots,
  raw ingested records and stored request parameters (each such column is marked
  ``PII.DIRECT``); :mod:`paymodel.oltp.erase` erases a customer from all of them.
* **Metadata** is a JSON column per object: keys are free-form and never joined on.
  Empty metadata is ``{}``, as Stripe sends it, and the column is NOT NULL: one
  representation whether a row was loaded, ingested or written by a payment flow.
* **Redundant references agree.** Some tables repeat a reference another path implies,
  because Stripe's objects carry it: ``refunds.payment_intent_id`` and
  ``disputes.payment_intent_id`` (also the charge's), ``charges.customer_id`` (also the
  payment intent's), ``invoices.customer_id`` and ``discounts.customer_id`` (also the
  subscription's). Each is kept and enforced by an *agreement key*: a composite foreign
  key onto a UNIQUE key that contains the parent's primary key (``charges (id,
  payment_intent_id)``), on both engines where the parent's column never changes, on
  PostgreSQL only for a payment intent's customer (DuckDB refuses updates of indexed
  columns of referenced rows); the ingester checks every one on every engine and the
  invariant ``references_agree`` reports a disagreement.
* **Derived values kept on purpose** (:data:`DENORMALISED`): ``invoices.subtotal``,
  ``total``, ``amount_remaining``, ``charges.amount_refunded``, ``refunded``,
  ``disputed``, ``payment_intents.amount_received``, ``customers.balance`` are
  transitive dependencies stored because Stripe's objects carry them; each names the
  check or invariant that guards it (``customers.balance``: none, it is Stripe's).
* **No card number or CVC** anywhere (PCI DSS): brand, funding, country, expiry,
  last 4 and fingerprint only. A test enforces it.
"""

from __future__ import annotations

from paymodel.model.core import (
    AMOUNT,
    BOOLEAN,
    COUNTRY,
    CURRENCY,
    DATE,
    ID,
    INTEGER,
    JSON,
    MAX_AMOUNT,
    PII,
    RATE,
    SIGNED_AMOUNT,
    SMALLINT,
    TEXT,
    TIMESTAMP,
    Check,
    Column,
    Denormalised,
    ForeignKey,
    Model,
    Table,
)
from paymodel.model.operational import IDEMPOTENCY_TABLES, INGESTION_TABLES

__all__ = [
    "DECLINE_CODES",
    "DENORMALISED",
    "ERROR_CODES",
    "OLTP",
    "STATUSES",
    "STRIPE_TABLES",
    "THREE_DECIMAL_CURRENCIES",
    "ZERO_DECIMAL_CURRENCIES",
    "error_code",
]

ZERO_DECIMAL_CURRENCIES = (
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga",
    "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf",
)  # fmt: skip
"""Currencies whose minor unit is the unit itself (500 JPY is sent as 500)."""

THREE_DECIMAL_CURRENCIES = ("bhd", "jod", "kwd", "omr", "tnd")
"""Currencies with three decimals; Stripe requires the last digit of an amount to be 0."""

STATUSES: dict[str, tuple[str, ...]] = {
    "payment_intents": (
        "requires_payment_method",
        "requires_confirmation",
        "requires_action",
        "processing",
        "requires_capture",
        "canceled",
        "succeeded",
    ),
    "charges": ("pending", "succeeded", "failed"),
    "subscriptions": (
        "incomplete",
        "incomplete_expired",
        "trialing",
        "active",
        "past_due",
        "canceled",
        "unpaid",
        "paused",
    ),
    "invoices": ("draft", "open", "paid", "uncollectible", "void"),
    "invoice_payments": ("open", "paid", "canceled"),
    "refunds": ("pending", "requires_action", "succeeded", "failed", "canceled"),
    "disputes": (
        "warning_needs_response",
        "warning_under_review",
        "warning_closed",
        "needs_response",
        "under_review",
        "won",
        "lost",
    ),
    "balance_transactions": ("available", "pending"),
    "payouts": ("pending", "in_transit", "paid", "failed", "canceled"),
}
"""Accepted ``status`` values per table, from Stripe's lifecycles."""

DECLINE_CODES = (
    "authentication_required",
    "card_velocity_exceeded",
    "do_not_honor",
    "expired_card",
    "fraudulent",
    "generic_decline",
    "incorrect_cvc",
    "insufficient_funds",
    "lost_card",
    "processing_error",
    "stolen_card",
)
"""The card issuer's reasons (Stripe's decline codes): ``charges.outcome_reason`` and
``payment_intents.last_payment_error_decline_code``."""

ERROR_CODES = (
    "authentication_required",
    "card_declined",
    "expired_card",
    "incorrect_cvc",
    "incorrect_number",
    "processing_error",
)
"""Stripe's error codes for a failed card payment: ``charges.failure_code`` and
``payment_intents.last_payment_error_code``. An issuer decline is ``card_declined`` with
its decline code beside it, except the codes Stripe reports as errors of their own."""

RADAR_REASONS = ("highest_risk_level", "elevated_risk_level", "rule")
"""``outcome.reason`` of a charge Radar blocked or sent to review."""


def error_code(decline_code: str) -> str:
    """Stripe's error code for a decline code: ``card_declined`` unless it is one itself.

    Example:
        >>> error_code("insufficient_funds"), error_code("expired_card")
        ('card_declined', 'expired_card')
    """
    return decline_code if decline_code in ERROR_CODES else "card_declined"


_MUTABLE_REFERENCE = ("postgresql",)
"""Engines declaring a foreign key whose value changes while other rows reference its row.

DuckDB refuses to update an indexed (foreign key) column of a referenced row: a customer's
currency set by its first subscription, a payment method detached (customer NULL), a
subscription item's price changed, a payment intent's payment method set at confirmation.
Those keys are declared on PostgreSQL; on DuckDB the payment flows and the ingester, which
check every reference of the model before writing, enforce them.
"""


def _id(prefix: str, what: str) -> Column:
    return Column("id", ID, f"Stripe id of the {what} (prefix {prefix}).")


def _created(what: str) -> Column:
    return Column("created", TIMESTAMP, f"When the {what} was created (UTC).")


def _metadata() -> Column:
    return Column(
        "metadata",
        JSON,
        "Free-form key-value pairs set by the account; may hold personal data. Empty is {} "
        "(as Stripe sends it), never NULL: loading and ingestion store it the same way.",
        pii=PII.QUASI,
    )


def _currency(what: str = "amounts") -> Column:
    return Column("currency", CURRENCY, f"Currency of the {what}.")


def _money(col: str, description: str, **kw: object) -> Column:
    return Column(col, AMOUNT, description, maximum=MAX_AMOUNT, **kw)  # type: ignore[arg-type]


def _three_decimal(table: str, *amounts: str) -> Check:
    codes = ", ".join(f"'{c}'" for c in THREE_DECIMAL_CURRENCIES)
    rule = " AND ".join(f"{a} % 10 = 0" for a in amounts)
    # PostgreSQL only: on DuckDB 1.5, a multi-column CHECK that involves an indexed column
    # (currency, indexed by its foreign key) turns every UPDATE of the row into a delete
    # and insert, which fails as soon as another table references the row. On DuckDB the
    # payment flows enforce the rule (paymodel.oltp.flows.money.quantum).
    return Check(
        f"ck_{table}_three_decimal",
        f"currency NOT IN ({codes}) OR ({rule})",
        f"in a three-decimal currency, {', '.join(amounts)} end in 0 "
        "(declared on PostgreSQL; enforced by the payment flows on DuckDB)",
        dialects=("postgresql",),
    )


def _ordered(table: str, first: str, then: str) -> Check:
    return Check(
        f"ck_{table}_{then}_after_{first}",
        f"{first} IS NULL OR {then} IS NULL OR {then} >= {first}",
        f"{then} is not before {first}",
    )


currencies = Table(
    "currencies",
    "One row per ISO 4217 currency the account can use.",
    None,
    [
        Column("code", CURRENCY, "Lowercase ISO 4217 code."),
        Column("name", TEXT, "English name of the currency."),
        Column(
            "exponent",
            SMALLINT,
            "Number of minor-unit digits: 0 (JPY), 2 (USD) or 3 (KWD).",
        ),
    ],
    primary_key=("code",),
    checks=[Check("ck_currencies_exponent", "exponent IN (0, 2, 3)", "exponent is 0, 2 or 3")],
    why="How many minor units a currency has depends on the currency alone (3NF): "
    "amounts are converted and displayed with it.",
    subject_area="ledger_payouts",
)

fx_rates = Table(
    "fx_rates",
    "One row per currency per day.",
    None,
    [
        Column("rate_date", DATE, "Day the rate applies to (UTC)."),
        Column("currency", CURRENCY, "Currency being priced."),
        Column(
            "usd_per_unit",
            RATE,
            "Value of one major unit of the currency in US dollars.",
        ),
    ],
    primary_key=("rate_date", "currency"),
    checks=[Check("ck_fx_rates_positive", "usd_per_unit > 0", "usd_per_unit is positive")],
    why="Reporting in one currency needs a rate per currency per day; Stripe gives rates "
    "only on balance transactions that were converted.",
    subject_area="ledger_payouts",
)

customers = Table(
    "customers",
    "One row per customer.",
    "cus_",
    [
        _id("cus_", "customer"),
        Column("email", TEXT, "Email address.", nullable=True, pii=PII.DIRECT),
        Column("name", TEXT, "Full name or business name.", nullable=True, pii=PII.DIRECT),
        Column("phone", TEXT, "Phone number.", nullable=True, pii=PII.DIRECT),
        Column(
            "currency",
            CURRENCY,
            "Currency the customer is billed in, set by the first subscription or invoice.",
            nullable=True,
            reference_dialects=_MUTABLE_REFERENCE,
        ),
        Column(
            "balance",
            SIGNED_AMOUNT,
            "Credit (negative) or debt (positive) applied to the next invoice, minor units.",
        ),
        Column("delinquent", BOOLEAN, "Whether the latest invoice payment failed."),
        Column(
            "preferred_locale",
            TEXT,
            "Language the customer prefers, such as en or ja.",
            nullable=True,
            pii=PII.QUASI,
        ),
        _created("customer"),
        _metadata(),
    ],
    stripe_object="customer",
    why="Who pays. Subscriptions, invoices, payment methods and payments hang off it.",
    subject_area="catalogue_billing",
)

customer_addresses = Table(
    "customer_addresses",
    "One row per customer that has an address.",
    None,
    [
        Column("customer_id", ID, "Customer the address belongs to.", references="customers"),
        Column("line1", TEXT, "Street address.", nullable=True, pii=PII.DIRECT),
        Column("line2", TEXT, "Apartment, suite or building.", nullable=True, pii=PII.DIRECT),
        Column("city", TEXT, "City or town.", nullable=True, pii=PII.QUASI),
        Column("state", TEXT, "State, county or province.", nullable=True, pii=PII.QUASI),
        Column("postal_code", TEXT, "Postal code.", nullable=True, pii=PII.QUASI),
        Column("country", COUNTRY, "Country.", nullable=True, pii=PII.QUASI),
    ],
    primary_key=("customer_id",),
    why="Stripe nests the address in the customer. All of it is optional and personal: "
    "one row to delete when the customer is erased, and no six nullable columns on customers.",
    subject_area="catalogue_billing",
)

payment_methods = Table(
    "payment_methods",
    "One row per payment method.",
    "pm_",
    [
        _id("pm_", "payment method"),
        Column(
            "customer_id",
            ID,
            "Customer it is attached to; NULL once detached.",
            nullable=True,
            references="customers",
            reference_dialects=_MUTABLE_REFERENCE,
        ),
        Column(
            "type",
            TEXT,
            "Kind of payment method.",
            accepted=("card", "sepa_debit", "us_bank_account", "link"),
        ),
        Column(
            "card_brand",
            TEXT,
            "Card network.",
            nullable=True,
            accepted=(
                "amex",
                "diners",
                "discover",
                "jcb",
                "mastercard",
                "unionpay",
                "visa",
                "unknown",
            ),
        ),
        Column(
            "card_funding",
            TEXT,
            "Funding type of the card.",
            nullable=True,
            accepted=("credit", "debit", "prepaid", "unknown"),
        ),
        Column(
            "card_country", COUNTRY, "Country that issued the card.", nullable=True, pii=PII.QUASI
        ),
        Column(
            "card_last4", TEXT, "Last four digits of the card number.", nullable=True, pii=PII.QUASI
        ),
        Column("card_exp_month", SMALLINT, "Expiry month.", nullable=True, minimum=1, maximum=12),
        Column(
            "card_exp_year", SMALLINT, "Expiry year.", nullable=True, minimum=2000, maximum=2100
        ),
        Column(
            "card_fingerprint",
            TEXT,
            "Identifies the same card number across customers, without revealing it.",
            nullable=True,
            pii=PII.QUASI,
        ),
        _created("payment method"),
    ],
    checks=[
        Check(
            "ck_payment_methods_last4",
            "card_last4 IS NULL OR card_last4 ~ '^[0-9]{4}$'",
            "card_last4 is exactly four digits (never more of the card number)",
        ),
        Check(
            "ck_payment_methods_card_fields",
            "type = 'card' OR (card_brand IS NULL AND card_last4 IS NULL)",
            "card fields are set only on cards",
        ),
    ],
    stripe_object="payment_method",
    why="How a customer pays. PCI DSS: no card number or CVC, only what Stripe returns.",
    subject_area="payments",
)

products = Table(
    "products",
    "One row per product.",
    "prod_",
    [
        _id("prod_", "product"),
        Column("name", TEXT, "Name shown to customers."),
        Column("description", TEXT, "Longer description.", nullable=True),
        Column("active", BOOLEAN, "Whether it can be sold."),
        _created("product"),
        _metadata(),
    ],
    stripe_object="product",
    why="What is sold. Prices say for how much.",
    subject_area="catalogue_billing",
)

prices = Table(
    "prices",
    "One row per price.",
    "price_",
    [
        _id("price_", "price"),
        Column("product_id", ID, "Product the price is for.", references="products"),
        _currency("unit amount"),
        _money(
            "unit_amount", "Amount per unit in minor units; NULL for tiered prices.", nullable=True
        ),
        Column("type", TEXT, "One-time or recurring.", accepted=("one_time", "recurring")),
        Column(
            "billing_scheme",
            TEXT,
            "Per unit or tiered.",
            accepted=("per_unit", "tiered"),
        ),
        Column(
            "recurring_interval",
            TEXT,
            "Billing interval of a recurring price.",
            nullable=True,
            accepted=("day", "week", "month", "year"),
        ),
        Column(
            "recurring_interval_count",
            SMALLINT,
            "Number of intervals between bills (3 with month = quarterly).",
            nullable=True,
            minimum=1,
            maximum=365,
        ),
        Column(
            "recurring_usage_type",
            TEXT,
            "Licensed (pay per seat, counts as MRR) or metered (pay for usage, does not).",
            nullable=True,
            accepted=("licensed", "metered"),
        ),
        Column("nickname", TEXT, "Internal name.", nullable=True),
        Column("lookup_key", TEXT, "Stable key to find the price.", nullable=True, unique=True),
        Column("active", BOOLEAN, "Whether new purchases can use it."),
        _created("price"),
        _metadata(),
    ],
    checks=[
        Check(
            "ck_prices_recurring_fields",
            "(type = 'recurring' AND recurring_interval IS NOT NULL "
            "AND recurring_interval_count IS NOT NULL AND recurring_usage_type IS NOT NULL) OR "
            "(type = 'one_time' AND recurring_interval IS NULL "
            "AND recurring_interval_count IS NULL AND recurring_usage_type IS NULL)",
            "recurring prices have interval, interval count and usage type; one-time ones none",
        ),
        Check(
            "ck_prices_unit_amount",
            "billing_scheme = 'tiered' OR unit_amount IS NOT NULL",
            "per-unit prices have a unit amount",
        ),
        _three_decimal("prices", "unit_amount"),
    ],
    stripe_object="price",
    why="How much and how often. One product has many prices (currencies, intervals).",
    subject_area="catalogue_billing",
)

coupons = Table(
    "coupons",
    "One row per coupon.",
    None,
    [
        Column("id", ID, "Coupon id, chosen by the account (no fixed prefix)."),
        Column("name", TEXT, "Name shown to customers.", nullable=True),
        Column(
            "percent_off",
            RATE,
            "Percentage taken off, between 0 and 100.",
            nullable=True,
        ),
        _money("amount_off", "Fixed amount taken off, minor units.", nullable=True),
        Column("currency", CURRENCY, "Currency of amount_off.", nullable=True),
        Column(
            "duration",
            TEXT,
            "How long a discount from it lasts.",
            accepted=("once", "repeating", "forever"),
        ),
        Column(
            "duration_in_months",
            SMALLINT,
            "Months a repeating discount lasts.",
            nullable=True,
            minimum=1,
        ),
        Column("valid", BOOLEAN, "Whether it can still be redeemed."),
        _created("coupon"),
        _metadata(),
    ],
    checks=[
        Check(
            "ck_coupons_one_kind",
            "(percent_off IS NULL) <> (amount_off IS NULL)",
            "exactly one of percent_off and amount_off is set",
        ),
        Check(
            "ck_coupons_percent_off",
            "percent_off IS NULL OR (percent_off > 0 AND percent_off <= 100)",
            "percent_off is in (0, 100]",
        ),
        Check(
            "ck_coupons_amount_currency",
            "(amount_off IS NULL) = (currency IS NULL)",
            "amount_off comes with its currency",
            # PostgreSQL only: it involves currency, indexed by its foreign key, and on
            # DuckDB such a check makes every UPDATE of a coupon that discounts reference fail.
            dialects=("postgresql",),
        ),
        Check(
            "ck_coupons_duration_months",
            "(duration = 'repeating') = (duration_in_months IS NOT NULL)",
            "duration_in_months is set exactly when duration is repeating",
        ),
    ],
    stripe_object="coupon",
    why="A reusable discount rule; discounts apply it to a customer or subscription.",
    subject_area="catalogue_billing",
)

subscriptions = Table(
    "subscriptions",
    "One row per subscription.",
    "sub_",
    [
        _id("sub_", "subscription"),
        Column("customer_id", ID, "Customer who subscribes.", references="customers"),
        Column("status", TEXT, "Lifecycle status.", accepted=STATUSES["subscriptions"]),
        _currency("subscription"),
        Column(
            "collection_method",
            TEXT,
            "Charge the default payment method, or email an invoice.",
            accepted=("charge_automatically", "send_invoice"),
        ),
        Column(
            "default_payment_method_id",
            ID,
            "Payment method renewals are charged to.",
            nullable=True,
            references="payment_methods",
            reference_dialects=_MUTABLE_REFERENCE,
        ),
        Column("start_date", TIMESTAMP, "When the subscription started."),
        Column("billing_cycle_anchor", TIMESTAMP, "Reference instant of the billing periods."),
        Column("trial_start", TIMESTAMP, "Start of the trial.", nullable=True),
        Column("trial_end", TIMESTAMP, "End of the trial.", nullable=True),
        Column("cancel_at_period_end", BOOLEAN, "Cancels when the current period ends."),
        Column("cancel_at", TIMESTAMP, "Scheduled cancellation.", nullable=True),
        Column("canceled_at", TIMESTAMP, "When cancellation was requested.", nullable=True),
        Column("ended_at", TIMESTAMP, "When the subscription ended.", nullable=True),
        Column(
            "cancellation_reason",
            TEXT,
            "Why it was canceled.",
            nullable=True,
            accepted=("cancellation_requested", "payment_disputed", "payment_failed"),
        ),
        _created("subscription"),
        _metadata(),
    ],
    checks=[
        _ordered("subscriptions", "trial_start", "trial_end"),
        _ordered("subscriptions", "start_date", "ended_at"),
        Check(
            "ck_subscriptions_ended",
            "(status IN ('canceled', 'incomplete_expired')) = (ended_at IS NOT NULL)",
            "ended_at is set exactly when the subscription is canceled or incomplete_expired",
        ),
        Check(
            "ck_subscriptions_trial",
            "status <> 'trialing' OR trial_end IS NOT NULL",
            "a trialing subscription has a trial end",
        ),
    ],
    stripe_object="subscription",
    why="A customer's recurring agreement; its items say which prices and quantities.",
    subject_area="catalogue_billing",
)

subscription_items = Table(
    "subscription_items",
    "One row per subscription item.",
    "si_",
    [
        _id("si_", "subscription item"),
        Column("subscription_id", ID, "Subscription it belongs to.", references="subscriptions"),
        Column(
            "price_id",
            ID,
            "Price billed; changes on upgrade or downgrade.",
            references="prices",
            reference_dialects=_MUTABLE_REFERENCE,
        ),
        Column(
            "quantity",
            INTEGER,
            "Units (seats) billed; NULL for metered prices.",
            nullable=True,
            minimum=0,
        ),
        Column("current_period_start", TIMESTAMP, "Start of the current billing period."),
        Column("current_period_end", TIMESTAMP, "End of the current billing period."),
        _created("subscription item"),
        _metadata(),
    ],
    checks=[
        Check(
            "ck_subscription_items_period",
            "current_period_end > current_period_start",
            "current_period_end is after current_period_start",
        )
    ],
    stripe_object="subscription_item",
    why="Periods and quantities live on items in the current API. No unique "
    "(subscription_id, price_id): a price change updates price_id in place, and DuckDB "
    "refuses updates to indexed columns of rows that other tables reference.",
    subject_area="catalogue_billing",
)

discounts = Table(
    "discounts",
    "One row per application of a coupon to a customer or subscription.",
    "di_",
    [
        _id("di_", "discount"),
        Column("coupon_id", ID, "Coupon applied.", references="coupons"),
        Column("customer_id", ID, "Customer it applies to.", references="customers"),
        Column(
            "subscription_id",
            ID,
            "Subscription it applies to; NULL when it applies to the customer.",
            nullable=True,
            references="subscriptions",
        ),
        Column("starts_at", TIMESTAMP, "When it started to apply (Stripe's start)."),
        Column(
            "ends_at",
            TIMESTAMP,
            "When it stops applying (Stripe's end); NULL for forever.",
            nullable=True,
        ),
    ],
    foreign_keys=[
        ForeignKey(
            ("subscription_id", "customer_id"),
            "subscriptions",
            ("id", "customer_id"),
            why="A discount on a subscription is for the subscription's customer.",
        )
    ],
    checks=[_ordered("discounts", "starts_at", "ends_at")],
    stripe_object="discount",
    why="A coupon's use by one customer, with its own start and end (repeating coupons).",
    subject_area="catalogue_billing",
)

invoices = Table(
    "invoices",
    "One row per invoice.",
    "in_",
    [
        _id("in_", "invoice"),
        Column("customer_id", ID, "Customer billed.", references="customers"),
        Column(
            "subscription_id",
            ID,
            "Subscription billed; NULL for one-off invoices.",
            nullable=True,
            references="subscriptions",
        ),
        Column(
            "number",
            TEXT,
            "Human-readable number, set at finalisation; unique per account (the flows "
            "number invoices per customer under a row lock). No UNIQUE key: DuckDB refuses "
            "to update an indexed column of a row that line items reference.",
            nullable=True,
        ),
        Column("status", TEXT, "Lifecycle status.", accepted=STATUSES["invoices"]),
        Column(
            "billing_reason",
            TEXT,
            "Why the invoice was created.",
            accepted=(
                "subscription_create",
                "subscription_cycle",
                "subscription_update",
                "subscription_threshold",
                "manual",
                "upcoming",
            ),
        ),
        Column(
            "collection_method",
            TEXT,
            "Charged automatically or sent.",
            accepted=("charge_automatically", "send_invoice"),
        ),
        _currency("invoice"),
        Column("subtotal", SIGNED_AMOUNT, "Sum of line amounts before discounts and tax."),
        Column("discount_amount", AMOUNT, "Total of discounts."),
        Column("tax", AMOUNT, "Total of taxes."),
        Column("total", SIGNED_AMOUNT, "subtotal - discount_amount + tax."),
        Column("starting_balance", SIGNED_AMOUNT, "Customer balance applied (negative is credit)."),
        Column("amount_due", AMOUNT, "What the customer must pay."),
        Column("amount_paid", AMOUNT, "What has been paid."),
        Column("amount_remaining", AMOUNT, "amount_due - amount_paid."),
        Column("attempt_count", INTEGER, "Payment attempts made.", minimum=0),
        Column("period_start", TIMESTAMP, "Start of the billed period."),
        Column("period_end", TIMESTAMP, "End of the billed period."),
        Column("due_date", TIMESTAMP, "When payment is due (send_invoice).", nullable=True),
        Column("finalized_at", TIMESTAMP, "When it left draft.", nullable=True),
        Column("paid_at", TIMESTAMP, "When it was paid.", nullable=True),
        Column("voided_at", TIMESTAMP, "When it was voided.", nullable=True),
        _created("invoice"),
        _metadata(),
    ],
    foreign_keys=[
        ForeignKey(
            ("subscription_id", "customer_id"),
            "subscriptions",
            ("id", "customer_id"),
            why="A subscription's invoice bills the subscription's customer.",
        )
    ],
    checks=[
        Check(
            "ck_invoices_remaining",
            "amount_remaining = amount_due - amount_paid",
            "amount_remaining = amount_due - amount_paid",
        ),
        Check(
            "ck_invoices_total",
            "total = subtotal - discount_amount + tax",
            "total = subtotal - discount_amount + tax",
        ),
        Check(
            "ck_invoices_paid",
            "status <> 'paid' OR (amount_remaining = 0 AND paid_at IS NOT NULL)",
            "a paid invoice has nothing remaining and a paid_at",
        ),
        _ordered("invoices", "period_start", "period_end"),
        _three_decimal("invoices", "amount_due", "amount_paid"),
    ],
    stripe_object="invoice",
    why="What a customer owes for a period or a one-off sale; lines say for what.",
    subject_area="catalogue_billing",
)

invoice_line_items = Table(
    "invoice_line_items",
    "One row per line of an invoice.",
    "il_",
    [
        _id("il_", "invoice line item"),
        Column("invoice_id", ID, "Invoice the line is on.", references="invoices"),
        Column(
            "subscription_item_id",
            ID,
            "Subscription item billed; NULL for one-off invoice items.",
            nullable=True,
            references="subscription_items",
        ),
        Column("price_id", ID, "Price billed.", nullable=True, references="prices"),
        _currency("line"),
        Column("amount", SIGNED_AMOUNT, "Line amount before discounts; negative for credits."),
        Column("discount_amount", AMOUNT, "Discounts on this line."),
        Column("quantity", INTEGER, "Units billed.", nullable=True, minimum=0),
        Column("description", TEXT, "Text shown on the invoice.", nullable=True),
        Column("proration", BOOLEAN, "Whether it prorates a mid-period change."),
        Column("period_start", TIMESTAMP, "Start of the period billed."),
        Column("period_end", TIMESTAMP, "End of the period billed."),
    ],
    checks=[_ordered("invoice_line_items", "period_start", "period_end")],
    stripe_object="line_item",
    why="What an invoice bills: one subscription item or one-off item each, with proration.",
    subject_area="catalogue_billing",
)

payment_intents = Table(
    "payment_intents",
    "One row per payment intent.",
    "pi_",
    [
        _id("pi_", "payment intent"),
        Column(
            "customer_id",
            ID,
            "Customer paying.",
            nullable=True,
            references="customers",
            reference_dialects=_MUTABLE_REFERENCE,
        ),
        Column(
            "payment_method_id",
            ID,
            "Payment method used or to be used.",
            nullable=True,
            references="payment_methods",
            reference_dialects=_MUTABLE_REFERENCE,
        ),
        _currency(),
        Column("amount", AMOUNT, "Amount to collect, minor units.", minimum=1, maximum=MAX_AMOUNT),
        Column("amount_capturable", AMOUNT, "Authorised amount that can still be captured."),
        Column("amount_received", AMOUNT, "Amount collected."),
        Column("status", TEXT, "Lifecycle status.", accepted=STATUSES["payment_intents"]),
        Column(
            "capture_method",
            TEXT,
            "Capture at once, or authorise now and capture later.",
            accepted=("automatic", "automatic_async", "manual"),
        ),
        Column(
            "last_payment_error_code",
            TEXT,
            "Code of the last failed attempt: a decline code, or a failed 3-D Secure check.",
            nullable=True,
            accepted=(*ERROR_CODES, "payment_intent_authentication_failure"),
        ),
        Column(
            "last_payment_error_decline_code",
            TEXT,
            "The issuer's decline code of the last failed attempt (Stripe's "
            "last_payment_error.decline_code), when it gave one.",
            nullable=True,
            accepted=DECLINE_CODES,
        ),
        Column(
            "cancellation_reason",
            TEXT,
            "Why it was canceled.",
            nullable=True,
            accepted=(
                "abandoned",
                "automatic",
                "duplicate",
                "failed_invoice",
                "fraudulent",
                "requested_by_customer",
                "void_invoice",
            ),
        ),
        Column("canceled_at", TIMESTAMP, "When it was canceled.", nullable=True),
        Column("description", TEXT, "Description.", nullable=True),
        _created("payment intent"),
        _metadata(),
    ],
    checks=[
        Check(
            "ck_payment_intents_received",
            "amount_received <= amount AND amount_capturable <= amount",
            "amount_received and amount_capturable are at most amount",
        ),
        Check(
            "ck_payment_intents_canceled",
            "(status = 'canceled') = (canceled_at IS NOT NULL)",
            "canceled_at is set exactly when the status is canceled",
        ),
        Check(
            "ck_payment_intents_succeeded",
            "status <> 'succeeded' OR amount_received > 0",
            "a succeeded payment intent has received an amount",
        ),
        _three_decimal("payment_intents", "amount"),
    ],
    stripe_object="payment_intent",
    why="One attempt to collect an amount, through confirmation, authentication and capture.",
    subject_area="payments",
)

invoice_payments = Table(
    "invoice_payments",
    "One row per payment applied to an invoice.",
    "inpay_",
    [
        _id("inpay_", "invoice payment"),
        Column("invoice_id", ID, "Invoice paid.", references="invoices"),
        Column("payment_intent_id", ID, "Payment that pays it.", references="payment_intents"),
        _currency(),
        Column("amount_requested", AMOUNT, "Amount asked of this payment."),
        Column("amount_paid", AMOUNT, "Amount paid; NULL until paid.", nullable=True),
        Column("status", TEXT, "Lifecycle status.", accepted=STATUSES["invoice_payments"]),
        Column("is_default", BOOLEAN, "Whether it is the invoice's default payment."),
        Column("paid_at", TIMESTAMP, "When it was paid.", nullable=True),
        Column("canceled_at", TIMESTAMP, "When it was canceled.", nullable=True),
        _created("invoice payment"),
    ],
    unique=[("invoice_id", "payment_intent_id")],
    checks=[
        Check(
            "ck_invoice_payments_paid",
            "(status = 'paid') = (amount_paid IS NOT NULL AND paid_at IS NOT NULL)",
            "amount_paid and paid_at are set exactly when the status is paid",
        )
    ],
    stripe_object="invoice_payment",
    why="An invoice no longer names a charge: several payments can pay one invoice, and "
    "this table links each payment intent to the invoice it pays.",
    subject_area="payments",
)

charges = Table(
    "charges",
    "One row per charge (one attempt to move money on a payment method).",
    "ch_",
    [
        _id("ch_", "charge"),
        Column(
            "payment_intent_id",
            ID,
            "Payment intent it belongs to; NULL for legacy charges.",
            nullable=True,
            references="payment_intents",
        ),
        Column("customer_id", ID, "Customer charged.", nullable=True, references="customers"),
        Column(
            "payment_method_id",
            ID,
            "Payment method charged.",
            nullable=True,
            references="payment_methods",
        ),
        _currency(),
        _money("amount", "Amount to charge, minor units."),
        _money("amount_captured", "Amount captured."),
        _money("amount_refunded", "Amount refunded so far; sum of succeeded refunds."),
        Column("status", TEXT, "Outcome of the attempt.", accepted=STATUSES["charges"]),
        Column("paid", BOOLEAN, "Whether it succeeded or was authorised."),
        Column("captured", BOOLEAN, "Whether it was captured."),
        Column("refunded", BOOLEAN, "Whether it was fully refunded."),
        Column("disputed", BOOLEAN, "Whether it has been disputed."),
        Column(
            "failure_code",
            TEXT,
            "Stripe's error code of the failure: card_declined for an issuer decline (the "
            "reason is in outcome_reason), or expired_card, incorrect_cvc, processing_error...",
            nullable=True,
            accepted=ERROR_CODES,
        ),
        Column("failure_message", TEXT, "Explanation of the failure.", nullable=True),
        Column(
            "outcome_type",
            TEXT,
            "What happened: authorised, declined by issuer, blocked by Radar...",
            nullable=True,
            accepted=("authorized", "manual_review", "issuer_declined", "blocked", "invalid"),
        ),
        Column(
            "outcome_reason",
            TEXT,
            "Why: the issuer's decline code for a decline, Radar's reason for a block or "
            "review; NULL for an authorisation.",
            nullable=True,
            accepted=(*DECLINE_CODES, *RADAR_REASONS),
        ),
        Column(
            "outcome_network_status",
            TEXT,
            "What the card network said.",
            nullable=True,
            accepted=(
                "approved_by_network",
                "declined_by_network",
                "not_sent_to_network",
                "reversed_after_approval",
            ),
        ),
        Column(
            "outcome_risk_level",
            TEXT,
            "Radar risk level.",
            nullable=True,
            accepted=("normal", "elevated", "highest", "not_assessed", "unknown"),
        ),
        Column(
            "outcome_risk_score",
            SMALLINT,
            "Radar risk score, 0-99.",
            nullable=True,
            minimum=0,
            maximum=99,
        ),
        Column(
            "three_d_secure_result",
            TEXT,
            "Result of 3-D Secure authentication, when it ran.",
            nullable=True,
            accepted=(
                "attempt_acknowledged",
                "authenticated",
                "exempted",
                "failed",
                "not_supported",
                "processing_error",
            ),
        ),
        _created("charge"),
        _metadata(),
    ],
    foreign_keys=[
        ForeignKey(
            ("payment_intent_id", "customer_id"),
            "payment_intents",
            ("id", "customer_id"),
            dialects=_MUTABLE_REFERENCE,
            why="The charge's customer is its payment intent's. Declared on PostgreSQL only: "
            "a payment intent's customer may be set after it is created, and DuckDB refuses "
            "to update an indexed column of a referenced row; on DuckDB the ingester and the "
            "payment flows check it, and the invariant references_agree reports a disagreement.",
        )
    ],
    checks=[
        Check(
            "ck_charges_amounts",
            "amount_refunded <= amount_captured AND amount_captured <= amount",
            "amount_refunded <= amount_captured <= amount",
        ),
        Check(
            "ck_charges_failed",
            "status <> 'failed' OR (failure_code IS NOT NULL AND amount_captured = 0 AND NOT paid)",
            "a failed charge has a failure code, captured nothing and is not paid",
        ),
        Check(
            "ck_charges_paid",
            "paid = (status = 'succeeded')",
            "paid is true exactly when the status is succeeded",
        ),
        Check(
            "ck_charges_captured",
            "captured = (amount_captured > 0)",
            "captured is true exactly when an amount was captured",
        ),
        Check(
            "ck_charges_refunded",
            "refunded = (amount_captured > 0 AND amount_refunded = amount_captured)",
            "refunded is true exactly when the whole captured amount was refunded",
        ),
        _three_decimal("charges", "amount", "amount_captured", "amount_refunded"),
    ],
    stripe_object="charge",
    why="One attempt to move money; a payment intent may make several (retries).",
    subject_area="payments",
)

refunds = Table(
    "refunds",
    "One row per refund.",
    "re_",
    [
        _id("re_", "refund"),
        Column("charge_id", ID, "Charge refunded.", references="charges"),
        Column(
            "payment_intent_id",
            ID,
            "Payment intent of the charge.",
            nullable=True,
            references="payment_intents",
        ),
        _currency(),
        _money("amount", "Amount refunded, minor units.", minimum=1),
        Column("status", TEXT, "Lifecycle status.", accepted=STATUSES["refunds"]),
        Column(
            "reason",
            TEXT,
            "Why it was refunded.",
            nullable=True,
            accepted=(
                "duplicate",
                "fraudulent",
                "requested_by_customer",
                "expired_uncaptured_charge",
            ),
        ),
        Column("failure_reason", TEXT, "Why it failed.", nullable=True),
        _created("refund"),
        _metadata(),
    ],
    foreign_keys=[
        ForeignKey(
            ("charge_id", "payment_intent_id"),
            "charges",
            ("id", "payment_intent_id"),
            why="The refund's payment intent is its charge's (Stripe's refund carries both).",
        )
    ],
    checks=[_three_decimal("refunds", "amount")],
    stripe_object="refund",
    why="Money returned from a charge; several partial refunds may add up to the whole.",
    subject_area="payments",
)

disputes = Table(
    "disputes",
    "One row per dispute.",
    "dp_",
    [
        _id("dp_", "dispute"),
        Column("charge_id", ID, "Charge disputed.", references="charges"),
        Column(
            "payment_intent_id",
            ID,
            "Payment intent of the charge.",
            nullable=True,
            references="payment_intents",
        ),
        _currency(),
        _money("amount", "Amount disputed, minor units.", minimum=1),
        Column("status", TEXT, "Lifecycle status.", accepted=STATUSES["disputes"]),
        Column(
            "reason",
            TEXT,
            "Reason the cardholder gave.",
            accepted=(
                "bank_cannot_process",
                "check_returned",
                "credit_not_processed",
                "customer_initiated",
                "debit_not_authorized",
                "duplicate",
                "fraudulent",
                "general",
                "incorrect_account_details",
                "insufficient_funds",
                "product_not_received",
                "product_unacceptable",
                "subscription_canceled",
                "unrecognized",
            ),
        ),
        Column("evidence_due_by", TIMESTAMP, "Deadline to submit evidence.", nullable=True),
        Column("is_charge_refundable", BOOLEAN, "Whether the charge can still be refunded."),
        _created("dispute"),
        _metadata(),
    ],
    foreign_keys=[
        ForeignKey(
            ("charge_id", "payment_intent_id"),
            "charges",
            ("id", "payment_intent_id"),
            why="The dispute's payment intent is its charge's (Stripe's dispute carries both).",
        )
    ],
    checks=[_three_decimal("disputes", "amount")],
    stripe_object="dispute",
    why="A cardholder's challenge of a charge; it withdraws the amount plus a fee until won.",
    subject_area="payments",
)

PAYOUT_FAILURE_CODES = (
    "account_closed",
    "account_frozen",
    "bank_account_restricted",
    "bank_ownership_changed",
    "could_not_process",
    "debit_not_authorized",
    "declined",
    "incorrect_account_holder_name",
    "insufficient_funds",
    "invalid_account_number",
    "invalid_currency",
    "no_account",
)
"""Stripe's payout ``failure_code`` values the model accepts."""

payouts = Table(
    "payouts",
    "One row per payout (a transfer of the available balance to the bank).",
    "po_",
    [
        _id("po_", "payout"),
        _money("amount", "Amount sent to the bank, minor units.", minimum=1),
        _currency("payout"),
        Column("status", TEXT, "Lifecycle status.", accepted=STATUSES["payouts"]),
        Column(
            "arrival_date",
            TIMESTAMP,
            "When the funds are expected to arrive (or arrived) at the bank.",
        ),
        Column(
            "method",
            TEXT,
            "Standard (bank rails, a day or more) or instant.",
            accepted=("standard", "instant"),
        ),
        Column(
            "automatic",
            BOOLEAN,
            "Made by the payout schedule: Stripe links the balance transactions it settles "
            "(balance_transactions.payout_id); a manual payout settles none.",
        ),
        Column(
            "failure_code",
            TEXT,
            "Why the bank refused it; set exactly when the status is failed.",
            nullable=True,
            accepted=PAYOUT_FAILURE_CODES,
        ),
        Column("failure_message", TEXT, "Explanation of the failure.", nullable=True),
        Column("description", TEXT, "Description.", nullable=True),
        _created("payout"),
        _metadata(),
    ],
    checks=[
        Check(
            "ck_payouts_failed",
            "(status = 'failed') = (failure_code IS NOT NULL)",
            "failure_code is set exactly when the status is failed",
        ),
        Check(
            "ck_payouts_arrival",
            "arrival_date >= created",
            "arrival_date is not before created",
        ),
    ],
    stripe_object="payout",
    why="Finance reconciles the bank statement with payouts, and each automatic payout with "
    "the charges, refunds, disputes and fees it settles (balance_transactions.payout_id).",
    subject_area="ledger_payouts",
)

balance_transactions = Table(
    "balance_transactions",
    "One row per movement of the account's balance.",
    "txn_",
    [
        _id("txn_", "balance transaction"),
        Column(
            "type",
            TEXT,
            "Kind of movement.",
            accepted=(
                "adjustment",
                "charge",
                "payment",
                "payment_refund",
                "payout",
                "payout_failure",
                "refund",
                "stripe_fee",
            ),
        ),
        Column(
            "reporting_category",
            TEXT,
            "Accounting category.",
            accepted=(
                "charge",
                "refund",
                "dispute",
                "dispute_reversal",
                "fee",
                "payout",
                "payout_reversal",
                "other_adjustment",
            ),
        ),
        Column("amount", SIGNED_AMOUNT, "Gross amount in the settlement currency, minor units."),
        Column("fee", AMOUNT, "Fees paid, minor units; sum of the fee details."),
        Column("net", SIGNED_AMOUNT, "amount - fee."),
        Column("currency", CURRENCY, "Settlement currency."),
        Column(
            "exchange_rate",
            RATE,
            "Rate used when the customer's currency differs from the settlement currency.",
            nullable=True,
        ),
        Column(
            "status",
            TEXT,
            "Whether funds are available.",
            accepted=STATUSES["balance_transactions"],
        ),
        Column("available_on", TIMESTAMP, "When the funds become available."),
        Column("description", TEXT, "Description.", nullable=True),
        Column("charge_id", ID, "Source charge.", nullable=True, references="charges"),
        Column("refund_id", ID, "Source refund.", nullable=True, references="refunds"),
        Column("dispute_id", ID, "Source dispute.", nullable=True, references="disputes"),
        Column(
            "source_payout_id",
            ID,
            "Source payout: the payout this movement is (type payout, negative) or returns "
            "(type payout_failure, positive). Named apart from payout_id, which says which "
            "payout settled a movement.",
            nullable=True,
            references="payouts",
        ),
        Column(
            "payout_id",
            ID,
            "Automatic payout that settled it (Stripe's payout filter on balance "
            "transactions, Sigma's automatic_transfer_id); NULL until settled. A payout's own "
            "movement belongs to it too. Set after the row exists, so the foreign key is "
            "declared on PostgreSQL only (see _MUTABLE_REFERENCE).",
            nullable=True,
            references="payouts",
            reference_dialects=_MUTABLE_REFERENCE,
        ),
        _created("balance transaction"),
    ],
    checks=[
        Check("ck_balance_transactions_net", "net = amount - fee", "net = amount - fee"),
        Check(
            "ck_balance_transactions_one_source",
            "(charge_id IS NOT NULL)::int + (refund_id IS NOT NULL)::int "
            "+ (dispute_id IS NOT NULL)::int + (source_payout_id IS NOT NULL)::int <= 1",
            "at most one source (charge, refund, dispute or payout)",
            # PostgreSQL only: it involves three foreign key columns (indexed), and on DuckDB
            # such a check makes every UPDATE of a referenced row fail (status pending ->
            # available once fee details reference it). Ingestion checks it on every engine.
            dialects=("postgresql",),
        ),
        Check(
            "ck_balance_transactions_available",
            "available_on >= created",
            "funds do not become available before the movement",
        ),
    ],
    stripe_object="balance_transaction",
    why="The ledger: every movement of money in the settlement currency, with its fees.",
    subject_area="ledger_payouts",
)

balance_transaction_fee_details = Table(
    "balance_transaction_fee_details",
    "One row per fee line of a balance transaction.",
    None,
    [
        Column(
            "balance_transaction_id",
            ID,
            "Balance transaction the fee belongs to.",
            references="balance_transactions",
        ),
        Column("line", SMALLINT, "Position of the fee in Stripe's fee_details list.", minimum=0),
        Column("type", TEXT, "Kind of fee.", accepted=("stripe_fee", "application_fee", "tax")),
        Column("amount", AMOUNT, "Fee amount, minor units."),
        Column("currency", CURRENCY, "Currency of the fee."),
        Column("description", TEXT, "What the fee is for.", nullable=True),
    ],
    primary_key=("balance_transaction_id", "line"),
    why="Stripe's fee_details list, one row per fee (1NF): fee = sum of these amounts.",
    subject_area="ledger_payouts",
)

events = Table(
    "events",
    "One row per Stripe event.",
    "evt_",
    [
        _id("evt_", "event"),
        Column("type", TEXT, "Event type, such as charge.succeeded."),
        Column("api_version", TEXT, "API version of the snapshot.", nullable=True),
        Column("object_type", TEXT, "Type of the object in data.object (charge, invoice...)."),
        Column("object_id", ID, "Id of the object in data.object."),
        Column("data_object", JSON, "Snapshot of the object after the change.", pii=PII.DIRECT),
        Column(
            "previous_attributes",
            JSON,
            "Values of the changed attributes before the change (updates only).",
            nullable=True,
            pii=PII.DIRECT,
        ),
        Column("request_id", TEXT, "API request that caused it.", nullable=True),
        Column(
            "idempotency_key",
            TEXT,
            "Idempotency key of that request.",
            nullable=True,
            mentions="idempotency_keys",
        ),
        Column("livemode", BOOLEAN, "Live or test mode."),
        Column("pending_webhooks", INTEGER, "Webhooks not yet delivered.", minimum=0),
        _created("event"),
    ],
    stripe_object="event",
    why="The append-only log of state changes; replaying it rebuilds the other tables.",
    subject_area="operational",
)

STRIPE_TABLES = [
    currencies,
    fx_rates,
    customers,
    customer_addresses,
    payment_methods,
    products,
    prices,
    coupons,
    subscriptions,
    subscription_items,
    discounts,
    invoices,
    invoice_line_items,
    payment_intents,
    invoice_payments,
    charges,
    refunds,
    disputes,
    payouts,
    balance_transactions,
    balance_transaction_fee_details,
    events,
]
"""Tables of Stripe's objects and the reference data they need."""

DENORMALISED = (
    Denormalised("invoices", "subtotal", "the sum of the invoice's line amounts",
                 "invariant invoice_subtotal_is_sum_of_lines"),
    Denormalised("invoices", "total", "subtotal - discount_amount + tax",
                 "check ck_invoices_total; invariant invoice_total"),
    Denormalised("invoices", "amount_remaining", "amount_due - amount_paid",
                 "check ck_invoices_remaining; invariant invoice_amount_remaining"),
    Denormalised("charges", "amount_refunded", "the sum of the charge's succeeded refunds",
                 "check ck_charges_amounts (at most amount_captured); invariant charge_refunds_sum"),
    Denormalised("charges", "refunded", "amount_refunded = amount_captured > 0",
                 "check ck_charges_refunded"),
    Denormalised("charges", "disputed", "whether a dispute of the charge exists",
                 "invariant disputed_charge_has_dispute"),
    Denormalised("payment_intents", "amount_received", "the captured amount of its succeeded charge",
                 "invariant payment_intent_amount_received"),
    Denormalised("customers", "balance", "the customer's credit and debit movements (Stripe's "
                 "customer balance transactions, which the model does not hold)",
                 "none: taken as Stripe sends it; the payment flows change it only when finalising "
                 "an invoice that applies it (its starting_balance)"),
)  # fmt: skip
"""Stored values another path derives, kept because Stripe's objects carry them."""

OLTP = Model(
    "oltp",
    "Normalised (3NF) transactional schema of Stripe's API objects.",
    [*STRIPE_TABLES, *IDEMPOTENCY_TABLES, *INGESTION_TABLES],
    DENORMALISED,
)
"""The OLTP model. Tables are in dependency order (parents first)."""
