"""The warehouse: a Kimball star schema of the payments business, and its snowflake variant.

Declared with the same vocabulary as the OLTP schema (:mod:`paymodel.model.core`): every
fact states its business process, its grain in one sentence, its dimension keys (its
foreign keys to ``dim_*`` tables) and each measure's additivity; every dimension states
its natural key and how it keeps history. ``paymodel schemas`` renders it (DDL for DuckDB
and PostgreSQL, the star and the snowflake as Mermaid diagrams, the data dictionary) and
:mod:`paymodel.olap` builds it with Ibis.

Conventions:

* Dimensions of Stripe objects are keyed by the object id (``price_key`` is the price's
  id): those objects never change identity, and a key that is the id needs no lookup
  table to stay stable across engines and incremental builds. ``dim_customer`` keeps
  history (type 2), so its key is the customer id and the start of the version,
  ``cus_123@1704067200``.
* Dates are keys into ``dim_date`` (``20240131``), one column per role: a fact refers to
  the calendar as ``created_date_key``, ``captured_date_key``, ``due_date_key``,
  ``paid_date_key``...
* Every amount is kept in its currency's minor units (``amount``, an integer) beside the
  same amount in the reporting currency (``amount_reporting``, a decimal in major units,
  six places) converted with ``fx_rates`` at the fact's date; ``reporting_currency``
  names it.
* Direct identifiers never enter the warehouse in clear: ``dim_customer`` holds keyed
  hashes (HMAC-SHA256) of email, name, phone and street address.

Example:
    >>> WAREHOUSE.table("fact_payment_attempts").business_process
    'Card payments: every attempt to charge a payment method'
    >>> WAREHOUSE.dimension_keys("fact_refunds")[:2]
    (('customer_key', 'dim_customer'), ('created_date_key', 'dim_date'))
    >>> [c.name for c in WAREHOUSE.table("fact_refunds").measures]
    ['amount', 'amount_reporting']
"""

from __future__ import annotations

import dataclasses

from paymodel.model.core import (
    AMOUNT,
    BIGINT,
    BOOLEAN,
    COUNTRY,
    CURRENCY,
    DATE,
    DECIMAL_AMOUNT,
    ID,
    INTEGER,
    PII,
    RATE,
    SIGNED_AMOUNT,
    SMALLINT,
    TEXT,
    TIMESTAMP,
    Additivity,
    Column,
    Model,
    Table,
)
from paymodel.model.oltp import OLTP, STATUSES

__all__ = [
    "DIMENSIONS",
    "FACTS",
    "SNOWFLAKE",
    "SNOWFLAKE_TABLES",
    "STAR",
    "WAREHOUSE",
    "bus_matrix",
]

_ADD, _SEMI, _NON = Additivity.ADDITIVE, Additivity.SEMI_ADDITIVE, Additivity.NON_ADDITIVE


def _accepted(table: str, column: str) -> tuple[str, ...]:
    accepted = OLTP.table(table).column(column).accepted
    assert accepted is not None, f"{table}.{column} has no accepted values"
    return accepted


def _key(name: str, dim: str, what: str, *, nullable: bool = False) -> Column:
    return Column(
        name, TEXT, f"Key of the {what} in {dim}.", nullable=nullable, references=f"{dim}.{name}"
    )


def _date_key(role: str, what: str, *, nullable: bool = False) -> Column:
    return Column(
        f"{role}_date_key",
        INTEGER,
        f"Day {what} (UTC), a key of dim_date (YYYYMMDD).",
        nullable=nullable,
        references="dim_date.date_key",
    )


def _currency() -> Column:
    return Column(
        "currency", CURRENCY, "Currency of the amounts.", references="dim_currency.currency"
    )


def _reporting_currency() -> Column:
    return Column(
        "reporting_currency",
        CURRENCY,
        "Currency of the *_reporting amounts (the build's reporting currency).",
        references="dim_currency.currency",
    )


def _amount(name: str, what: str, *, signed: bool = False, nullable: bool = False) -> Column:
    return Column(
        name,
        SIGNED_AMOUNT if signed else AMOUNT,
        f"{what}, in the currency's minor units.",
        nullable=nullable,
        additivity=_ADD,
    )


def _reporting(name: str, what: str, *, nullable: bool = False) -> Column:
    return Column(
        f"{name}_reporting",
        DECIMAL_AMOUNT,
        f"{what}, in the reporting currency's major units, converted at the fact's date.",
        nullable=nullable,
        additivity=_ADD,
    )


def _customer(*, nullable: bool = False) -> list[Column]:
    return [
        Column("customer_id", ID, "Stripe id of the customer (natural key).", nullable=nullable),
        _key(
            "customer_key",
            "dim_customer",
            "customer version valid at the fact's time",
            nullable=nullable,
        ),
    ]


# --- dimensions ----------------------------------------------------------------------------

dim_date = Table(
    "dim_date",
    "One row per calendar day spanning the data.",
    None,
    [
        Column("date_key", INTEGER, "The day as YYYYMMDD."),
        Column("date", DATE, "The day."),
        Column("year", SMALLINT, "Calendar year."),
        Column("quarter", SMALLINT, "Calendar quarter, 1-4.", minimum=1, maximum=4),
        Column("month", SMALLINT, "Calendar month, 1-12.", minimum=1, maximum=12),
        Column("month_start", DATE, "First day of the month (the grain of monthly snapshots)."),
        Column("day_of_month", SMALLINT, "Day of the month, 1-31.", minimum=1, maximum=31),
        Column(
            "day_of_week", SMALLINT, "ISO day of the week, 1 (Monday) to 7.", minimum=1, maximum=7
        ),
        Column("is_weekend", BOOLEAN, "Saturday or Sunday."),
        Column("iso_year", SMALLINT, "ISO 8601 week-numbering year."),
        Column("iso_week", SMALLINT, "ISO 8601 week, 1-53.", minimum=1, maximum=53),
        Column(
            "fiscal_year",
            SMALLINT,
            "Fiscal year, named after the calendar year it ends in (it starts in the build's "
            "fiscal_year_start_month; January: the calendar year).",
        ),
        Column(
            "fiscal_quarter", SMALLINT, "Quarter of the fiscal year, 1-4.", minimum=1, maximum=4
        ),
    ],
    primary_key=("date_key",),
    unique=[("date",)],
    kind="dimension",
    natural_key=("date",),
    history="static: generated from the calendar, from the first to the last day of the data",
    why="Facts refer to days in several roles (created, captured, due, paid); the calendar "
    "attributes (ISO week, fiscal year) are computed once here, not in every query.",
)

dim_currency = Table(
    "dim_currency",
    "One row per ISO 4217 currency.",
    None,
    [
        Column("currency", CURRENCY, "Lowercase ISO 4217 code (the key and the natural key)."),
        Column("name", TEXT, "English name."),
        Column(
            "exponent",
            SMALLINT,
            "Minor-unit digits: 0 (JPY), 2 (USD), 3 (KWD); amount / 10^exponent is major units.",
            accepted=None,
            minimum=0,
            maximum=3,
        ),
    ],
    primary_key=("currency",),
    kind="dimension",
    natural_key=("currency",),
    history="type 1: overwritten (ISO codes are stable)",
    why="Minor units mean nothing without the exponent; every fact names its currency.",
)

dim_geography = Table(
    "dim_geography",
    "One row per country (and one for an unknown country).",
    None,
    [
        Column("geography_key", TEXT, "The country code, or ZZ for unknown."),
        Column("country", COUNTRY, "ISO 3166-1 alpha-2 code; ZZ when unknown."),
        Column(
            "region",
            TEXT,
            "Sales region.",
            accepted=(
                "North America",
                "Latin America",
                "Europe",
                "Asia Pacific",
                "Middle East and Africa",
                "Unknown",
            ),
        ),
    ],
    primary_key=("geography_key",),
    kind="dimension",
    natural_key=("country",),
    history="type 1: overwritten",
    why="Country and region of a customer's billing address; the snowflake variant "
    "normalises them out of dim_customer.",
)

_customer_columns = [
    Column("customer_key", TEXT, "customer_id@valid_from (unix seconds): one per version."),
    Column("customer_id", ID, "Stripe id of the customer (natural key)."),
    Column("valid_from", TIMESTAMP, "Start of the version (inclusive)."),
    Column(
        "valid_to",
        TIMESTAMP,
        "End of the version (exclusive); NULL for the current one.",
        nullable=True,
    ),
    Column("is_current", BOOLEAN, "Whether it is the customer's current version."),
    Column("country", COUNTRY, "Billing country; ZZ when unknown.", pii=PII.QUASI),
    Column("region", TEXT, "Sales region of the country."),
    Column(
        "currency",
        CURRENCY,
        "Billing currency; NULL until the first bill.",
        nullable=True,
        references="dim_currency.currency",
    ),
    Column(
        "plan_tier",
        TEXT,
        "Product of the customer's live subscription with the highest monthly amount; "
        "none without one.",
    ),
    Column("delinquent", BOOLEAN, "Whether the latest invoice payment failed."),
    Column(
        "email_hash",
        TEXT,
        "HMAC-SHA256 of the lowercased email (hex), keyed outside the data.",
        nullable=True,
        pii=PII.QUASI,
    ),
    Column("name_hash", TEXT, "HMAC-SHA256 of the name (hex).", nullable=True, pii=PII.QUASI),
    Column(
        "phone_hash", TEXT, "HMAC-SHA256 of the phone number (hex).", nullable=True, pii=PII.QUASI
    ),
    Column(
        "address_hash",
        TEXT,
        "HMAC-SHA256 of the street address lines and postal code (hex).",
        nullable=True,
        pii=PII.QUASI,
    ),
    Column("customer_created", TIMESTAMP, "When the customer was created."),
    Column("change_reason", TEXT, "Event type that opened the version (customer.created...)."),
]

dim_customer = Table(
    "dim_customer",
    "One row per customer per version of its tracked attributes.",
    None,
    _customer_columns,
    primary_key=("customer_key",),
    unique=[("customer_id", "valid_from")],
    kind="dimension",
    natural_key=("customer_id",),
    history="type 2: a new row (valid_from, valid_to, is_current) when country, currency, "
    "plan tier or delinquency changes, from the customer and subscription events",
    why="Who pays, as they were when they paid: a charge from before an upgrade is "
    "counted under the old plan tier. Direct identifiers only as keyed hashes.",
)

dim_product = Table(
    "dim_product",
    "One row per product.",
    "prod_",
    [
        Column("product_key", TEXT, "The product id."),
        Column("product_id", ID, "Stripe id of the product (natural key)."),
        Column("name", TEXT, "Name shown to customers."),
        Column("active", BOOLEAN, "Whether it can be sold."),
    ],
    primary_key=("product_key",),
    kind="dimension",
    natural_key=("product_id",),
    history="type 1: overwritten",
    why="What is sold.",
)

_price_columns = [
    Column("price_key", TEXT, "The price id."),
    Column("price_id", ID, "Stripe id of the price (natural key)."),
    Column("product_id", ID, "Stripe id of the product."),
    Column("product_name", TEXT, "Name of the product (denormalised in the star)."),
    Column(
        "currency", CURRENCY, "Currency of the unit amount.", references="dim_currency.currency"
    ),
    Column(
        "unit_amount",
        AMOUNT,
        "Amount per unit, minor units; NULL for tiered prices.",
        nullable=True,
    ),
    Column("type", TEXT, "One-time or recurring.", accepted=("one_time", "recurring")),
    Column(
        "recurring_interval",
        TEXT,
        "Billing interval.",
        nullable=True,
        accepted=("day", "week", "month", "year"),
    ),
    Column("recurring_interval_count", SMALLINT, "Intervals between bills.", nullable=True),
    Column(
        "recurring_usage_type",
        TEXT,
        "Licensed (counts as MRR) or metered (does not).",
        nullable=True,
        accepted=("licensed", "metered"),
    ),
    Column("nickname", TEXT, "Internal name.", nullable=True),
]

dim_price = Table(
    "dim_price",
    "One row per price.",
    "price_",
    _price_columns,
    primary_key=("price_key",),
    kind="dimension",
    natural_key=("price_id",),
    history="type 1: overwritten (Stripe prices are immutable; a new price gets a new id)",
    why="How much and how often; carries its product's name so a query needs one join.",
)

dim_payment_method = Table(
    "dim_payment_method",
    "One row per payment method.",
    "pm_",
    [
        Column("payment_method_key", TEXT, "The payment method id."),
        Column("payment_method_id", ID, "Stripe id of the payment method (natural key)."),
        Column(
            "type", TEXT, "Kind of payment method.", accepted=_accepted("payment_methods", "type")
        ),
        Column("card_brand", TEXT, "Card network.", nullable=True),
        Column("card_funding", TEXT, "Credit, debit, prepaid.", nullable=True),
        Column(
            "card_country", COUNTRY, "Country that issued the card.", nullable=True, pii=PII.QUASI
        ),
        Column(
            "wallet",
            TEXT,
            "Wallet the method belongs to (link for Stripe Link); NULL for a plain card or account.",
            nullable=True,
        ),
        Column("card_exp_month", SMALLINT, "Expiry month.", nullable=True),
        Column("card_exp_year", SMALLINT, "Expiry year.", nullable=True),
    ],
    primary_key=("payment_method_key",),
    kind="dimension",
    natural_key=("payment_method_id",),
    history="type 1: overwritten",
    why="How a customer pays; never a card number (PCI DSS), not even the last four digits.",
)

_OUTCOME_NONE = "none"
dim_payment_outcome = Table(
    "dim_payment_outcome",
    "One row per combination of charge status, outcome type, network status, risk level "
    "and failure code.",
    None,
    [
        Column("payment_outcome_key", TEXT, "The five values joined by '|'."),
        Column("charge_status", TEXT, "Charge status.", accepted=STATUSES["charges"]),
        Column("outcome_type", TEXT, "Radar/network outcome type; none when unknown."),
        Column("network_status", TEXT, "What the card network said; none when unknown."),
        Column("risk_level", TEXT, "Radar risk level; none when not assessed."),
        Column("failure_code", TEXT, "Decline or failure code; none when it succeeded."),
    ],
    primary_key=("payment_outcome_key",),
    kind="dimension",
    natural_key=("charge_status", "outcome_type", "network_status", "risk_level", "failure_code"),
    history="static: the cross product of the values the OLTP model accepts (a junk dimension)",
    why="Five low-cardinality flags of a charge in one small dimension instead of five "
    "columns on every fact row or five tiny dimensions.",
)

# --- facts ---------------------------------------------------------------------------------

fact_payment_attempts = Table(
    "fact_payment_attempts",
    "One row per charge attempt.",
    "ch_",
    [
        Column("charge_id", ID, "Stripe id of the charge."),
        Column("payment_intent_id", ID, "Payment intent it belongs to.", nullable=True),
        *_customer(nullable=True),
        _key("payment_method_key", "dim_payment_method", "payment method charged", nullable=True),
        _key("payment_outcome_key", "dim_payment_outcome", "outcome of the attempt"),
        _key("geography_key", "dim_geography", "customer's billing country at the attempt"),
        _date_key("created", "of the attempt"),
        _date_key("captured", "the amount was captured; NULL if nothing was", nullable=True),
        _currency(),
        _reporting_currency(),
        Column("created", TIMESTAMP, "When the attempt was made."),
        Column(
            "attempt_number",
            SMALLINT,
            "1 for the intent's first attempt, 2 for a retry...",
            additivity=_NON,
        ),
        Column("is_success", BOOLEAN, "Whether the attempt succeeded."),
        Column(
            "is_disputed", BOOLEAN, "Whether the charge was disputed by the build's as-of time."
        ),
        _amount("amount", "Amount attempted"),
        _amount("amount_captured", "Amount captured"),
        _amount("amount_refunded", "Amount refunded by the as-of time"),
        _reporting("amount", "Amount attempted"),
        _reporting("amount_captured", "Amount captured"),
        _reporting("amount_refunded", "Amount refunded"),
        Column(
            "risk_score",
            SMALLINT,
            "Radar risk score, 0-99.",
            nullable=True,
            additivity=_NON,
        ),
    ],
    primary_key=("charge_id",),
    kind="fact",
    business_process="Card payments: every attempt to charge a payment method",
    why="Authorisation rates, decline codes and risk by brand, country and tier.",
)

fact_payment_intents = Table(
    "fact_payment_intents",
    "One row per payment intent (an accumulating snapshot of its milestones).",
    "pi_",
    [
        Column("payment_intent_id", ID, "Stripe id of the payment intent."),
        *_customer(nullable=True),
        _key("payment_method_key", "dim_payment_method", "payment method used last", nullable=True),
        _date_key("created", "it was created"),
        _date_key("succeeded", "it succeeded", nullable=True),
        _currency(),
        _reporting_currency(),
        Column("status", TEXT, "Status at the as-of time.", accepted=STATUSES["payment_intents"]),
        Column("capture_method", TEXT, "Automatic or manual capture."),
        Column("created_at", TIMESTAMP, "Milestone: created."),
        Column(
            "first_confirmed_at",
            TIMESTAMP,
            "Milestone: first confirmation (first attempt).",
            nullable=True,
        ),
        Column(
            "requires_action_at", TIMESTAMP, "Milestone: first asked for 3-D Secure.", nullable=True
        ),
        Column("succeeded_at", TIMESTAMP, "Milestone: succeeded.", nullable=True),
        Column("failed_at", TIMESTAMP, "Milestone: first failed attempt.", nullable=True),
        Column("canceled_at", TIMESTAMP, "Milestone: canceled.", nullable=True),
        Column("attempt_count", SMALLINT, "Charge attempts made.", minimum=0, additivity=_ADD),
        Column(
            "seconds_to_first_confirmation",
            BIGINT,
            "Lag from created to the first confirmation.",
            nullable=True,
            additivity=_NON,
        ),
        Column(
            "seconds_to_success",
            BIGINT,
            "Lag from created to succeeded.",
            nullable=True,
            additivity=_NON,
        ),
        _amount("amount", "Amount to collect"),
        _amount("amount_received", "Amount received by the as-of time"),
        _reporting("amount", "Amount to collect"),
        _reporting("amount_received", "Amount received"),
    ],
    primary_key=("payment_intent_id",),
    kind="fact",
    business_process="Payment collection: a payment intent from creation to success or cancellation",
    why="Conversion and lags of the payment funnel; one row per intent updated as milestones arrive.",
)

fact_invoice_lines = Table(
    "fact_invoice_lines",
    "One row per invoice line.",
    "il_",
    [
        Column("invoice_line_item_id", ID, "Stripe id of the line."),
        Column("invoice_id", ID, "Invoice the line is on."),
        Column(
            "payment_intent_id",
            ID,
            "Payment intent that pays the invoice, from its invoice payments: the one paid by "
            "the as-of time, else the default one; NULL when the invoice has none.",
            nullable=True,
        ),
        Column(
            "subscription_id", ID, "Subscription billed; NULL for one-off lines.", nullable=True
        ),
        Column("subscription_item_id", ID, "Subscription item billed.", nullable=True),
        *_customer(),
        _key("price_key", "dim_price", "price billed", nullable=True),
        _key("product_key", "dim_product", "product billed", nullable=True),
        _date_key("created", "the invoice was created"),
        _date_key("due", "the invoice is due (send_invoice only)", nullable=True),
        _date_key("paid", "the invoice was paid", nullable=True),
        _date_key("period_start", "the billed period starts"),
        _currency(),
        _reporting_currency(),
        Column(
            "invoice_status",
            TEXT,
            "Invoice status at the as-of time.",
            accepted=STATUSES["invoices"],
        ),
        Column("billing_reason", TEXT, "Why the invoice was created."),
        Column("proration", BOOLEAN, "Whether the line prorates a mid-period change."),
        Column("quantity", INTEGER, "Units billed.", nullable=True, additivity=_ADD),
        _amount("amount", "Line amount before discounts (negative for credits)", signed=True),
        _amount("discount_amount", "Discounts on the line"),
        _reporting("amount", "Line amount"),
        _reporting("discount_amount", "Discounts on the line"),
    ],
    primary_key=("invoice_line_item_id",),
    kind="fact",
    business_process="Billing: what each invoice charges for",
    why="Billed revenue by product, price and period; the marts' invoice details.",
)

fact_refunds = Table(
    "fact_refunds",
    "One row per refund.",
    "re_",
    [
        Column("refund_id", ID, "Stripe id of the refund."),
        Column("charge_id", ID, "Charge refunded."),
        Column("payment_intent_id", ID, "Payment intent of the charge.", nullable=True),
        *_customer(nullable=True),
        _date_key("created", "of the refund"),
        _currency(),
        _reporting_currency(),
        Column("status", TEXT, "Status at the as-of time.", accepted=STATUSES["refunds"]),
        Column("reason", TEXT, "Why it was refunded.", nullable=True),
        _amount("amount", "Amount refunded"),
        _reporting("amount", "Amount refunded"),
    ],
    primary_key=("refund_id",),
    kind="fact",
    business_process="Refunds: money returned to a customer",
    why="Refunded amounts and reasons.",
)

fact_disputes = Table(
    "fact_disputes",
    "One row per dispute.",
    "dp_",
    [
        Column("dispute_id", ID, "Stripe id of the dispute."),
        Column("charge_id", ID, "Charge disputed."),
        Column("payment_intent_id", ID, "Payment intent of the charge.", nullable=True),
        *_customer(nullable=True),
        _date_key("created", "the dispute was opened"),
        _date_key("due", "evidence is due", nullable=True),
        _currency(),
        _reporting_currency(),
        Column("status", TEXT, "Status at the as-of time.", accepted=STATUSES["disputes"]),
        Column("reason", TEXT, "Reason the cardholder gave."),
        _amount("amount", "Amount disputed"),
        _reporting("amount", "Amount disputed"),
    ],
    primary_key=("dispute_id",),
    kind="fact",
    business_process="Disputes: a cardholder challenges a charge",
    why="Dispute rates and outcomes by reason.",
)

fact_balance_transactions = Table(
    "fact_balance_transactions",
    "One row per balance transaction.",
    "txn_",
    [
        Column("balance_transaction_id", ID, "Stripe id of the balance transaction."),
        Column(
            "type", TEXT, "Kind of movement.", accepted=_accepted("balance_transactions", "type")
        ),
        Column(
            "reporting_category",
            TEXT,
            "Accounting category.",
            accepted=_accepted("balance_transactions", "reporting_category"),
        ),
        Column("source_id", ID, "Charge, refund, dispute or payout that caused it.", nullable=True),
        Column(
            "payout_id",
            ID,
            "Automatic payout that settled it, once that payout exists at the as-of time.",
            nullable=True,
        ),
        Column(
            "charge_id",
            ID,
            "Charge of the source (itself, or the refunded or disputed one).",
            nullable=True,
        ),
        *_customer(nullable=True),
        _date_key("created", "of the movement"),
        _date_key("available", "the funds become available"),
        _currency(),
        _reporting_currency(),
        Column(
            "status",
            TEXT,
            "available once available_on is past at the as-of time, else pending.",
            accepted=STATUSES["balance_transactions"],
        ),
        Column("exchange_rate", RATE, "Rate used for a conversion, if any.", nullable=True),
        _amount("amount", "Gross amount", signed=True),
        _amount("fee", "Total fee"),
        _amount("stripe_fee", "Stripe's fee (fee breakdown)"),
        _amount("application_fee", "Platform application fees (fee breakdown)"),
        _amount("tax_fee", "Tax on fees (fee breakdown)"),
        _amount("net", "amount - fee", signed=True),
        _reporting("amount", "Gross amount"),
        _reporting("fee", "Total fee"),
        _reporting("net", "Net amount"),
    ],
    primary_key=("balance_transaction_id",),
    kind="fact",
    business_process="Settlement: every movement of the account's balance",
    why="The ledger: gross, fees and net per day and category reconcile with the OLTP.",
)

fact_payouts = Table(
    "fact_payouts",
    "One row per payout.",
    "po_",
    [
        Column("payout_id", ID, "Stripe id of the payout."),
        _date_key("created", "the payout was made"),
        _date_key("arrival", "the funds are expected at the bank"),
        _currency(),
        _reporting_currency(),
        Column("status", TEXT, "Status at the as-of time.", accepted=_accepted("payouts", "status")),
        Column("method", TEXT, "Standard or instant."),
        Column("automatic", BOOLEAN, "Made by the payout schedule (it settles balance transactions)."),
        Column("failure_code", TEXT, "Why the bank refused it.", nullable=True),
        Column(
            "settled_count",
            INTEGER,
            "Balance transactions it settled.",
            minimum=0,
            additivity=_ADD,
        ),
        _amount("amount", "Amount sent to the bank"),
        _amount("settled_net", "Net of the balance transactions it settled", signed=True),
        _reporting("amount", "Amount sent to the bank"),
    ],
    primary_key=("payout_id",),
    kind="fact",
    business_process="Payouts: the available balance sent to the bank",
    why="Reconciling the bank statement: each automatic payout against what it settled.",
)

fact_subscription_item_months = Table(
    "fact_subscription_item_months",
    "One row per subscription item per month it was live.",
    "si_",
    [
        Column("subscription_item_id", ID, "Stripe id of the subscription item."),
        Column("month", DATE, "First day of the month."),
        _date_key("month", "the month starts"),
        Column("subscription_id", ID, "Subscription of the item."),
        *_customer(),
        Column("price_id", ID, "Price billed at month end."),
        _key("price_key", "dim_price", "price billed at month end"),
        Column("product_id", ID, "Product billed at month end."),
        _key("product_key", "dim_product", "product billed at month end"),
        _currency(),
        _reporting_currency(),
        Column(
            "status",
            TEXT,
            "Subscription status at the month's last second (at the as-of time for the current month).",
            accepted=STATUSES["subscriptions"],
        ),
        Column("quantity", INTEGER, "Units at month end.", nullable=True, additivity=_SEMI),
        Column(
            "mrr",
            AMOUNT,
            "Monthly recurring revenue at month end, minor units: the licensed price per "
            "month (day x 365/12, week x 52/12, month / count, year / 12 count) x quantity, "
            "less percentage and fixed discounts live then, 0 unless active or past_due.",
            additivity=_SEMI,
        ),
        Column(
            "mrr_reporting",
            DECIMAL_AMOUNT,
            "mrr in the reporting currency's major units, at the rate of the month's first day.",
            additivity=_SEMI,
        ),
    ],
    primary_key=("subscription_item_id", "month"),
    kind="fact",
    business_process="Recurring revenue: the subscriptions live in each month",
    why="A periodic snapshot: MRR, its movements and retention are computed from it.",
)

DIMENSIONS = [
    dim_date,
    dim_currency,
    dim_geography,
    dim_customer,
    dim_product,
    dim_price,
    dim_payment_method,
    dim_payment_outcome,
]
FACTS = [
    fact_payment_attempts,
    fact_payment_intents,
    fact_invoice_lines,
    fact_refunds,
    fact_disputes,
    fact_balance_transactions,
    fact_payouts,
    fact_subscription_item_months,
]

warehouse_builds = Table(
    "warehouse_builds",
    "One row per build or incremental update of the warehouse.",
    None,
    [
        Column("build_number", INTEGER, "1 for the first build, then one more per update."),
        Column("mode", TEXT, "Full build or incremental update.", accepted=("full", "incremental")),
        Column("as_of", TIMESTAMP, "Instant the warehouse describes after this build."),
        Column("previous_as_of", TIMESTAMP, "as_of of the build it updated.", nullable=True),
        Column(
            "reporting_currency",
            CURRENCY,
            "Currency of the *_reporting amounts.",
            references="dim_currency.currency",
        ),
        Column("fiscal_year_start_month", SMALLINT, "First month of the fiscal year.", minimum=1, maximum=12),
        Column("engine", TEXT, "Engine that ran the transforms.", accepted=("duckdb", "postgres", "pyspark")),
        Column("changed_customers", BIGINT, "Customers recomputed by an update.", nullable=True),
        Column("rows_written", BIGINT, "Rows inserted or updated.", minimum=0),
        Column("built_at", TIMESTAMP, "When the build ran (wall clock)."),
    ],
    primary_key=("build_number",),
    why="An update continues from the last build's as_of and parameters; this log says "
    "what each build did.",
)

# --- the snowflake variant -----------------------------------------------------------------

_no_geography = [c for c in _customer_columns if c.name not in ("country", "region")]
dim_customer_snowflake = dataclasses.replace(
    dim_customer,
    name="dim_customer_snowflake",
    columns=[
        *_no_geography[:5],
        Column(
            "geography_key",
            TEXT,
            "Billing country, a key of dim_geography.",
            references="dim_geography.geography_key",
        ),
        *_no_geography[5:],
    ],
    why="dim_customer with geography normalised out: country and region live in dim_geography.",
)
dim_price_snowflake = dataclasses.replace(
    dim_price,
    name="dim_price_snowflake",
    columns=[
        c
        if c.name != "product_id"
        else Column(
            "product_key", TEXT, "Product of the price.", references="dim_product.product_key"
        )
        for c in _price_columns
        if c.name != "product_name"
    ],
    why="dim_price with the product normalised out: its attributes live in dim_product.",
)
SNOWFLAKE_TABLES = [dim_customer_snowflake, dim_price_snowflake]
"""Dimensions of the snowflake variant, built beside the star's by the same transforms."""

WAREHOUSE = Model(
    "warehouse",
    "Kimball star schema of the payments business (and the snowflake variant's dimensions), "
    "built with Ibis from the OLTP tables and their event history.",
    [*DIMENSIONS, *SNOWFLAKE_TABLES, *FACTS, warehouse_builds],
)
"""The warehouse model: every table `paymodel olap` writes, parents first."""

STAR = Model(
    "warehouse_star", "The star: facts and their denormalised dimensions.", [*DIMENSIONS, *FACTS]
)


def _snowflaked(table: Table) -> Table:
    rename = {
        "dim_customer.customer_key": "dim_customer_snowflake.customer_key",
        "dim_price.price_key": "dim_price_snowflake.price_key",
    }
    columns = [
        dataclasses.replace(c, references=rename.get(c.references or "", c.references))
        for c in table.columns
        if c.name != "product_key" and c.name != "geography_key"
    ]
    return dataclasses.replace(table, columns=columns)


SNOWFLAKE = Model(
    "warehouse_snowflake",
    "The snowflake: the same facts, reaching product through price and geography through customer.",
    [
        *(d for d in DIMENSIONS if d.name not in ("dim_customer", "dim_price")),
        *SNOWFLAKE_TABLES,
        *(_snowflaked(f) for f in FACTS),
    ],
)
"""The snowflake as the facts see it (for its diagram): no product or geography keys on facts."""


def bus_matrix(model: Model = STAR) -> list[tuple[str, str, tuple[str, ...]]]:
    """Kimball's bus matrix: per fact, its business process and the dimensions it uses.

    Example:
        >>> fact, process, dims = bus_matrix()[0]
        >>> fact, "dim_customer" in dims
        ('fact_payment_attempts', True)
    """
    out = []
    for t in model.tables:
        if t.kind == "fact":
            dims = tuple(dict.fromkeys(d for _, d in model.dimension_keys(t.name)))
            out.append((t.name, t.business_process, dims))
    return out
