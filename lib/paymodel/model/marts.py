"""The marts: what analysts open first, built from the star by :mod:`paymodel.olap.marts`.

Declared with the same vocabulary as the OLTP schema and the warehouse, and rendered by
``paymodel schemas`` into ``schemas/marts.*`` (DDL for DuckDB and PostgreSQL, and the data
dictionary, which also lists every metric with its formula from :data:`METRICS`).

Marts are read models, rebuilt from the facts: they declare their grain and primary key,
and no foreign keys (their rows are copies, not references). Currencies are lowercase
ISO 4217 codes; MRR amounts are integers in the currency's minor units, and a
``*_reporting`` amount is a decimal in the reporting currency's major units. Ratios are
exact decimals (ten places), NULL where their denominator is 0.

Example:
    >>> MARTS.table("mart_mrr_movements").primary_key
    ('customer_id', 'currency', 'month')
    >>> METRICS["nrr"].formula
    '(opening_mrr + expansion_mrr - contraction_mrr - churned_mrr) / opening_mrr'
"""

from __future__ import annotations

from dataclasses import dataclass

from paymodel.model.core import (
    BIGINT,
    BOOLEAN,
    DATE,
    DECIMAL_AMOUNT,
    ID,
    INTEGER,
    RATE,
    SIGNED_AMOUNT,
    TEXT,
    Column,
    LogicalType,
    Model,
    Table,
)

__all__ = ["EXACT_DECIMAL", "MARTS", "METRICS", "MOVEMENTS", "Metric"]

EXACT_DECIMAL = LogicalType("exact_decimal", "decimal", "string", precision=38, scale=12)
"""A 12-place conversion factor, or a minor-unit amount times one, kept exact (no rounding)
so that the bridge identity holds in the reporting currency to the last digit."""

MOVEMENTS = ("new", "expansion", "contraction", "churn", "reactivation", "none")
"""The MRR movement kinds (ChartMogul's), ``none`` for an unchanged positive MRR."""


@dataclass(frozen=True)
class Metric:
    """A metric, defined once: its formula, meaning and the mart column that holds it.

    :mod:`paymodel.olap.metrics` computes each one in a function whose docstring is this
    definition; a test checks that every metric here has its function and its column.
    """

    name: str
    formula: str
    description: str
    mart: str
    column: str


def _metrics(*items: Metric) -> dict[str, Metric]:
    return {m.name: m for m in items}


METRICS = _metrics(
    Metric("arr", "12 x closing_mrr", "Annual recurring revenue: the month's closing MRR "
           "a year long, minor units.", "mart_mrr_metrics", "arr"),
    Metric("arpa", "closing_mrr / customers_closing", "Average revenue per account: MRR per "
           "paying customer at month end, minor units.", "mart_mrr_metrics", "arpa"),
    Metric("logo_churn_rate", "customers_churned / customers_opening", "Share of the "
           "customers paying at the month's start who stopped paying during it.",
           "mart_mrr_metrics", "logo_churn_rate"),
    Metric("revenue_churn_rate", "(contraction_mrr + churned_mrr) / opening_mrr", "Gross MRR "
           "churn: share of the opening MRR lost to downgrades and cancellations.",
           "mart_mrr_metrics", "revenue_churn_rate"),
    Metric("grr", "(opening_mrr - contraction_mrr - churned_mrr) / opening_mrr", "Gross "
           "revenue retention: share of the opening MRR kept, expansion not counted "
           "(at most 1).", "mart_mrr_metrics", "grr"),
    Metric("nrr", "(opening_mrr + expansion_mrr - contraction_mrr - churned_mrr) / opening_mrr",
           "Net revenue retention: the opening customers' MRR a month later, expansion "
           "included, new and reactivated customers not.", "mart_mrr_metrics", "nrr"),
    Metric("ltv", "arpa / logo_churn_rate", "Lifetime value: ARPA over the month's logo "
           "churn rate (a customer's expected revenue, undiscounted, before costs); NULL "
           "in a month nobody churned.", "mart_mrr_metrics", "ltv"),
    Metric("cohort_logo_retention", "customers of the cohort paying in month k / customers "
           "of the cohort", "Cohort retention: of the customers whose first paid month is "
           "the cohort's, the share still paying k months later.", "mart_cohort_retention",
           "logo_retention"),
    Metric("cohort_revenue_retention", "cohort's MRR in month k / cohort's MRR in month 0",
           "Cohort revenue retention: the cohort's MRR k months after its first paid month "
           "against its first-month MRR (above 1 when expansion beats churn).",
           "mart_cohort_retention", "revenue_retention"),
    Metric("trial_conversion_rate", "trials converted / trials ended", "Of the "
           "subscriptions whose trial started in the month and has ended by the as-of "
           "time, the share that went on to a paid month.", "mart_trial_conversion",
           "conversion_rate"),
    Metric("authorisation_rate", "attempts approved by the network / attempts sent to "
           "the network", "Card authorisation rate, by card brand, funding and card "
           "country; attempts Radar blocked before the network are not counted.",
           "mart_payment_health", "authorisation_rate"),
    Metric("decline_share", "failed attempts with the code / failed attempts", "Share of "
           "each decline or failure code among failed attempts.", "mart_decline_codes",
           "share"),
    Metric("three_d_secure_challenge_rate", "intents asked for 3-D Secure / intents "
           "confirmed", "Share of confirmed payment intents that required customer "
           "authentication.", "mart_three_d_secure", "challenge_rate"),
    Metric("three_d_secure_success_rate", "challenged intents that succeeded / intents "
           "challenged", "Share of 3-D Secure challenges after which the payment "
           "succeeded.", "mart_three_d_secure", "success_rate"),
    Metric("refund_rate", "amount_refunded / amount_captured", "Share of the captured "
           "amount refunded, per currency and month of the charge.", "mart_refund_rates",
           "refund_rate"),
    Metric("dispute_rate", "disputed charges / succeeded charges", "Share of succeeded "
           "charges disputed, by Radar risk level (networks flag above about 0.9%).",
           "mart_risk_levels", "dispute_rate"),
    Metric("fraud_rate", "charges disputed as fraudulent / succeeded charges", "Share of "
           "succeeded charges with a dispute of reason fraudulent, by Radar risk level.",
           "mart_risk_levels", "fraud_rate"),
    Metric("dispute_win_rate", "disputes won / disputes decided (won + lost)", "Of the "
           "disputes decided, the share won, by reason.", "mart_dispute_outcomes",
           "win_rate"),
)  # fmt: skip
"""Every metric, by name."""


def _col(name: str, type_: object, description: str, *, nullable: bool = False) -> Column:
    return Column(name, type_, description, nullable=nullable)  # type: ignore[arg-type]


def _currency() -> Column:
    return _col("currency", TEXT, "Lowercase ISO 4217 code of the amounts.")


def _month(what: str = "month") -> Column:
    return _col("month", DATE, f"First day of the {what}.")


def _mrr(name: str, what: str) -> Column:
    return _col(name, BIGINT, f"{what}, minor units.")


def _count(name: str, what: str) -> Column:
    return _col(name, BIGINT, what)


def _ratio(name: str, metric: str | None = None, what: str = "") -> Column:
    if metric is not None:
        m = METRICS[metric]
        what = f"{m.description} Formula: {m.formula}."
    return _col(name, RATE, what, nullable=True)


_BRIDGE = (
    ("opening_mrr", "MRR at the month's start (the previous month's closing)"),
    ("new_mrr", "MRR of customers in their first paid month"),
    ("expansion_mrr", "Increase of paying customers' MRR"),
    ("reactivation_mrr", "MRR of customers back from 0 after churning"),
    ("contraction_mrr", "Decrease of MRR of customers who still pay"),
    ("churned_mrr", "Opening MRR of customers who stopped paying"),
    ("closing_mrr", "MRR at the month's end (the as-of time for the last month)"),
)

mart_subscription_item_mrr = Table(
    "mart_subscription_item_mrr",
    "One row per subscription item per month from its first month to the data's as-of "
    "month (or to the month after it stopped counting).",
    None,
    [
        _col("subscription_item_id", ID, "Stripe id of the subscription item."),
        _month(),
        _col("subscription_id", ID, "Subscription of the item."),
        _col("customer_id", ID, "Customer of the subscription."),
        _col("price_id", ID, "Price at month end; the last one for a month after it ended."),
        _col("product_id", ID, "Product of that price."),
        _currency(),
        _col("status", TEXT, "Subscription status at month end; ended in a month after it left "
             "the snapshot."),
        _col("quantity", INTEGER, "Units at month end.", nullable=True),
        _mrr("mrr", "MRR of the item at month end (0 during a trial and for metered prices)"),
        _mrr("previous_mrr", "MRR of the item a month earlier (0 in its first month)"),
        _col("mrr_change", SIGNED_AMOUNT, "mrr - previous_mrr, minor units."),
        _col("movement", TEXT, "The item's movement: " + ", ".join(MOVEMENTS) + "."),
        _col("item_month_number", INTEGER, "1 for the item's first month, 2 for the next..."),
    ],
    primary_key=("subscription_item_id", "month"),
    why="fivetran/dbt_stripe's subscription item MRR report, without its mistakes: metered "
    "prices count 0, the first paid month after a trial is new, and no item is carried "
    "past the end of the data.",
)  # fmt: skip

mart_mrr_movements = Table(
    "mart_mrr_movements",
    "One row per customer, month and currency in which the customer's MRR was or became "
    "positive.",
    None,
    [
        _col("customer_id", ID, "Stripe id of the customer."),
        _currency(),
        _month(),
        _mrr("opening_mrr", "MRR at the month's start"),
        _mrr("closing_mrr", "MRR at the month's end, all the customer's subscriptions"),
        _col("mrr_change", SIGNED_AMOUNT, "closing_mrr - opening_mrr, minor units."),
        _col("movement", TEXT, "new (first paid month), reactivation (back from 0 after a "
             "churn, tested before expansion), expansion, contraction, churn (to 0: the last "
             "subscription ended) or none (unchanged)."),
    ],
    primary_key=("customer_id", "currency", "month"),
    why="ChartMogul's movements per customer, per currency: fivetran/dbt_stripe tests "
    "expansion before reactivation (so never assigns it) and assumes one currency.",
)  # fmt: skip

mart_mrr_bridge = Table(
    "mart_mrr_bridge",
    "One row per month and currency.",
    None,
    [
        _month(),
        _currency(),
        *(_mrr(name, what) for name, what in _BRIDGE),
        _count("customers_opening", "Customers paying at the month's start."),
        _count("customers_new", "Customers in their first paid month."),
        _count("customers_reactivated", "Customers back from 0."),
        _count("customers_churned", "Customers who stopped paying."),
        _count("customers_closing", "Customers paying at the month's end."),
        _col("reporting_currency", TEXT, "Currency of the *_reporting columns."),
        _col("to_reporting", EXACT_DECIMAL, "Reporting-currency major units per minor unit of currency, "
             "from fx_rates on the month's last day in the data (12 places)."),
        *(_col(f"{name}_reporting", EXACT_DECIMAL, f"{name} x to_reporting: in the "
               "reporting currency's major units, at the month's rate, unrounded.")
          for name, _ in _BRIDGE),
    ],
    primary_key=("month", "currency"),
    why="opening + new + expansion + reactivation - contraction - churned = closing on every "
    "row, in the currency and (every component at the same rate) in the reporting currency.",
)  # fmt: skip

mart_mrr_metrics = Table(
    "mart_mrr_metrics",
    "One row per month and currency.",
    None,
    [
        _month(),
        _currency(),
        _mrr("closing_mrr", "MRR at month end"),
        _col("arr", BIGINT, f"{METRICS['arr'].description} Formula: {METRICS['arr'].formula}."),
        _count("customers_closing", "Customers paying at month end."),
        _ratio("arpa", "arpa"),
        _ratio("logo_churn_rate", "logo_churn_rate"),
        _ratio("revenue_churn_rate", "revenue_churn_rate"),
        _ratio("grr", "grr"),
        _ratio("nrr", "nrr"),
        _ratio("ltv", "ltv"),
    ],
    primary_key=("month", "currency"),
    why="The SaaS metrics boards show, from the bridge, per currency.",
)  # fmt: skip

mart_cohort_retention = Table(
    "mart_cohort_retention",
    "One row per cohort (first paid month), currency and months since the first paid month.",
    None,
    [
        _col("cohort_month", DATE, "First day of the customers' first paid month."),
        _currency(),
        _col("months_since", INTEGER, "Months after the cohort month (0 is the cohort month)."),
        _count("cohort_customers", "Customers of the cohort."),
        _count("customers_retained", "Of them, customers paying in that month."),
        _mrr("cohort_mrr", "The cohort's MRR in the cohort month"),
        _mrr("mrr_retained", "The cohort's MRR in that month"),
        _ratio("logo_retention", "cohort_logo_retention"),
        _ratio("revenue_retention", "cohort_revenue_retention"),
    ],
    primary_key=("cohort_month", "currency", "months_since"),
    why="The retention heatmap: how each month's new customers stay.",
)

mart_trial_conversion = Table(
    "mart_trial_conversion",
    "One row per month a trial started in.",
    None,
    [
        _col("trial_month", DATE, "First day of the month the trials started in."),
        _count("trials", "Subscriptions whose trial started that month."),
        _count("trials_ended", "Of them, trials over by the as-of time."),
        _count("trials_converted", "Of those, subscriptions with a paid month afterwards."),
        _ratio("conversion_rate", "trial_conversion_rate"),
    ],
    primary_key=("trial_month",),
    why="How many trials become paying subscriptions.",
)

mart_payment_health = Table(
    "mart_payment_health",
    "One row per card attribute (brand, funding or card country) and value.",
    None,
    [
        _col("dimension", TEXT, "card_brand, card_funding or card_country."),
        _col("value", TEXT, "The attribute's value; unknown when the charge had no card."),
        _count("attempts", "Charge attempts."),
        _count("sent_to_network", "Attempts the card network saw."),
        _count("approved", "Attempts the network approved."),
        _count("succeeded", "Attempts that succeeded."),
        _ratio("authorisation_rate", "authorisation_rate"),
    ],
    primary_key=("dimension", "value"),
    why="Where authorisation fails: by brand, funding and issuing country.",
)

mart_decline_codes = Table(
    "mart_decline_codes",
    "One row per decline or failure code.",
    None,
    [
        _col("failure_code", TEXT, "Decline or failure code of the charge."),
        _count("failed_attempts", "Failed attempts with this code."),
        _ratio("share", "decline_share"),
    ],
    primary_key=("failure_code",),
    why="Which declines to work on first (retries help insufficient_funds, not stolen_card).",
)

mart_three_d_secure = Table(
    "mart_three_d_secure",
    "One row per month payment intents were created in.",
    None,
    [
        _month("month the intents were created in"),
        _count("intents_confirmed", "Intents with at least one confirmation."),
        _count("intents_challenged", "Of them, intents asked for 3-D Secure."),
        _count("challenged_succeeded", "Challenged intents that succeeded."),
        _ratio("challenge_rate", "three_d_secure_challenge_rate"),
        _ratio("success_rate", "three_d_secure_success_rate"),
    ],
    primary_key=("month",),
    why="How often customers are asked to authenticate, and how often they get through.",
)

mart_refund_rates = Table(
    "mart_refund_rates",
    "One row per month and currency of the charges.",
    None,
    [
        _month("month the charges were made in"),
        _currency(),
        _count("charges_succeeded", "Succeeded charges."),
        _count("charges_refunded", "Of them, charges with a refund."),
        _mrr("amount_captured", "Amount captured"),
        _mrr("amount_refunded", "Amount of those charges refunded by the as-of time"),
        _ratio("refund_rate", "refund_rate"),
    ],
    primary_key=("month", "currency"),
    why="Refunds against what was collected, per currency (never summed across currencies).",
)

mart_risk_levels = Table(
    "mart_risk_levels",
    "One row per Radar risk level.",
    None,
    [
        _col("risk_level", TEXT, "normal, elevated, highest, or none when not assessed."),
        _count("charges_succeeded", "Succeeded charges at that level."),
        _count("charges_disputed", "Of them, disputed charges."),
        _count("charges_fraud_disputed", "Of them, charges disputed as fraudulent."),
        _col("mean_risk_score", RATE, "Mean Radar risk score (0-99) of the charges.",
             nullable=True),
        _ratio("dispute_rate", "dispute_rate"),
        _ratio("fraud_rate", "fraud_rate"),
    ],
    primary_key=("risk_level",),
    why="Does Radar's risk level predict disputes and fraud?",
)  # fmt: skip

mart_dispute_outcomes = Table(
    "mart_dispute_outcomes",
    "One row per dispute reason.",
    None,
    [
        _col("reason", TEXT, "Reason the cardholder gave."),
        _count("disputes", "Disputes opened."),
        _count("disputes_won", "Disputes won."),
        _count("disputes_lost", "Disputes lost."),
        _ratio("win_rate", "dispute_win_rate"),
    ],
    primary_key=("reason",),
    why="Which disputes are worth fighting.",
)

mart_customer_overview = Table(
    "mart_customer_overview",
    "One row per customer and settlement currency with a balance transaction or a charge "
    "attempt.",
    None,
    [
        _col("customer_id", ID, "Stripe id of the customer."),
        _currency(),
        _mrr("total_sales", "Gross of the customer's charge balance transactions, lifetime"),
        _mrr("total_refunds", "Refunded to the customer, lifetime (positive)"),
        _col("total_disputes", SIGNED_AMOUNT, "Disputed amounts net of reversals, lifetime "
             "(positive is money lost), minor units."),
        _mrr("total_fees", "Fees on the customer's transactions, lifetime"),
        _col("total_net", SIGNED_AMOUNT, "Net of every balance transaction, lifetime, minor "
             "units (sales - refunds - disputes - fees)."),
        _count("total_sales_count", "Charges settled."),
        _count("total_refund_count", "Refunds settled."),
        _mrr("sales_this_month", "Sales in the as-of month"),
        _mrr("refunds_this_month", "Refunds in the as-of month"),
        _col("net_this_month", SIGNED_AMOUNT, "Net in the as-of month, minor units."),
        _count("failed_charge_count", "Failed charge attempts, lifetime."),
        _mrr("failed_charge_amount", "Amount of the failed attempts, lifetime"),
        _count("failed_charge_count_this_month", "Failed attempts in the as-of month."),
        _col("first_sale_date", DATE, "Day of the first charge settled.", nullable=True),
        _col("most_recent_sale_date", DATE, "Day of the latest charge settled.", nullable=True),
    ],
    primary_key=("customer_id", "currency"),
    why="fivetran/dbt_stripe's customer overview, per currency (amounts in two currencies "
    "are never added), with 'this month' the data's as-of month, not today's.",
)  # fmt: skip

mart_daily_overview = Table(
    "mart_daily_overview",
    "One row per day from the first to the as-of day and per settlement currency.",
    None,
    [
        _col("date", DATE, "The day (UTC)."),
        _currency(),
        _col("iso_year", INTEGER, "ISO year of the day (weekly roll-ups: with iso_week)."),
        _col("iso_week", INTEGER, "ISO week of the day."),
        _col("month_start", DATE, "First day of the day's month (monthly roll-ups)."),
        _col("quarter_start", DATE, "First day of the day's quarter (quarterly roll-ups)."),
        _mrr("sales", "Gross of charge balance transactions"),
        _mrr("refunds", "Refunds (positive)"),
        _col("disputes", SIGNED_AMOUNT, "Disputes net of reversals (positive is money lost), "
             "minor units."),
        _col("adjustments", SIGNED_AMOUNT, "Other adjustments, minor units."),
        _col("payouts", SIGNED_AMOUNT, "Payouts (negative: money leaving the balance), minor "
             "units."),
        _mrr("fees", "Fees"),
        _col("net", SIGNED_AMOUNT, "Net of every balance transaction of the day, minor units."),
        _count("sales_count", "Charges settled."),
        _count("failed_charge_count", "Failed charge attempts (in the charge's currency, "
               "which may not be the settlement currency)."),
        _mrr("failed_charge_amount", "Amount of the failed attempts"),
        _col("running_balance", SIGNED_AMOUNT, "Net of every day up to this one, minor units."),
        _mrr("rolling_30d_sales", "Sales of the 30 days ending this day"),
        _mrr("rolling_30d_refunds", "Refunds of the 30 days ending this day"),
        _col("rolling_30d_net", SIGNED_AMOUNT, "Net of the 30 days ending this day, minor "
             "units."),
    ],
    primary_key=("date", "currency"),
    why="fivetran/dbt_stripe's daily overview, per currency, on every day (zero days "
    "included, so rolling windows are 30 days, not 30 rows); week, month and quarter "
    "columns make the roll-ups a GROUP BY.",
)  # fmt: skip


def _opt(name: str, type_: object, description: str) -> Column:
    return _col(name, type_, description, nullable=True)


def _amt(name: str, what: str, *, nullable: bool = False) -> Column:
    return _col(name, SIGNED_AMOUNT, f"{what}, minor units.", nullable=nullable)


def _rep(name: str, what: str, *, nullable: bool = False) -> Column:
    return _col(
        name,
        DECIMAL_AMOUNT,
        f"{what}, in the reporting currency's major units (converted at the fact's date).",
        nullable=nullable,
    )


def _reporting_currency() -> Column:
    return _col("reporting_currency", TEXT, "Currency of the *_reporting amounts.")


_CUSTOMER_NOW = [
    _opt("customer_country", TEXT, "Billing country of the customer's current version."),
    _opt("customer_region", TEXT, "Sales region of the customer's current version."),
]

mart_balance_transactions = Table(
    "mart_balance_transactions",
    "One row per balance transaction.",
    None,
    [
        _col("balance_transaction_id", ID, "Stripe id of the balance transaction."),
        _opt("created_date", DATE, "Day of the movement (UTC)."),
        _opt("available_date", DATE, "Day the funds become available (UTC)."),
        _col("type", TEXT, "Kind of movement."),
        _col("reporting_category", TEXT, "Accounting category."),
        _col("status", TEXT, "available or pending at the as-of time."),
        _opt("source_id", ID, "Charge, refund, dispute or payout that caused it."),
        _currency(),
        _amt("amount", "Gross amount in the settlement currency"),
        _amt("fee", "Total fee"),
        _amt("net", "amount - fee"),
        _opt("exchange_rate", RATE, "Rate used for a conversion to the settlement currency."),
        _reporting_currency(),
        _rep("amount_reporting", "Gross amount"),
        _rep("fee_reporting", "Total fee"),
        _rep("net_reporting", "Net amount"),
        _amt("customer_facing_amount", "Amount in the customer's currency: the charge's, the "
             "refund's or the dispute's, signed as the movement; NULL for the account's own "
             "movements (payouts, fees)", nullable=True),
        _opt("customer_facing_currency", TEXT, "Currency the customer paid or was refunded in."),
        _opt("customer_id", ID, "Stripe id of the customer; NULL for the account's own."),
        *_CUSTOMER_NOW,
        _opt("customer_plan_tier", TEXT, "Plan tier of the customer's current version."),
        _opt("customer_email_hash", TEXT, "Keyed hash of the customer's email."),
        _opt("charge_id", ID, "Charge of the source (itself, or the refunded or disputed one)."),
        _amt("charge_amount", "Amount of the charge, in its currency", nullable=True),
        _opt("charge_currency", TEXT, "Currency of the charge."),
        _opt("charge_is_success", BOOLEAN, "Whether the charge succeeded."),
        _opt("payment_intent_id", ID, "Payment intent of the charge."),
        _opt("payment_method_key", TEXT, "Payment method charged (dim_payment_method)."),
        _opt("refund_id", ID, "Refund that caused it."),
        _opt("refund_status", TEXT, "Status of the refund."),
        _opt("refund_reason", TEXT, "Why it was refunded."),
        _opt("dispute_id", ID, "Dispute that caused it (a withdrawal or a reversal)."),
        _opt("dispute_status", TEXT, "Status of the dispute."),
        _opt("dispute_reason", TEXT, "Reason the cardholder gave."),
        _opt("payout_id", ID, "Automatic payout that settled it, once made."),
        _opt("payout_status", TEXT, "Status of that payout."),
        _opt("payout_arrival_date", DATE, "Day that payout is expected at the bank."),
    ],
    primary_key=("balance_transaction_id",),
    why="fivetran/dbt_stripe's balance transactions: the ledger with everything it "
    "refers to on one row, the customer as they are now (dim_customer's current row).",
)  # fmt: skip

_INVOICE = [
    _col("line_count", BIGINT, "Lines on the invoice."),
    _col("proration_line_count", BIGINT, "Lines prorating a mid-period change."),
    _opt("total_quantity", BIGINT, "Units billed, all lines."),
    _amt("subtotal", "Sum of the line amounts before discounts"),
    _amt("discount_amount", "Discounts on the lines"),
    _amt("total", "subtotal - discount_amount (tax and customer balance are not in the star)"),
    _amt("amount_due", "What the customer must pay: the total, 0 if it is a credit"),
    _amt("amount_paid", "What has been paid by the as-of time (the amount due of a paid "
         "invoice)"),
    _amt("amount_remaining", "amount_due - amount_paid"),
]  # fmt: skip

mart_invoice_details = Table(
    "mart_invoice_details",
    "One row per invoice with a line.",
    None,
    [
        _col("invoice_id", ID, "Stripe id of the invoice."),
        _col("customer_id", ID, "Customer billed."),
        _opt("subscription_id", ID, "Subscription billed; NULL for one-off invoices."),
        _currency(),
        _col("status", TEXT, "Invoice status at the as-of time."),
        _col("billing_reason", TEXT, "Why the invoice was created."),
        _opt("payment_intent_id", ID, "Payment intent of its invoice payment (the one paid by "
             "the as-of time, else the default one); NULL when none was applied."),
        _opt("charge_id", ID, "The payment intent's succeeded charge."),
        *_INVOICE,
        _amt("amount_refunded", "Refunded of the payment intent's charges by the as-of time "
             "(succeeded refunds, summed per charge, then per intent: each refund once)"),
        _amt("amount_paid_net", "amount_paid - amount_refunded"),
        _reporting_currency(),
        _rep("subtotal_reporting", "Subtotal"),
        _rep("discount_amount_reporting", "Discounts"),
        *_CUSTOMER_NOW,
        _opt("customer_plan_tier", TEXT, "Plan tier of the customer's current version."),
        _opt("customer_email_hash", TEXT, "Keyed hash of the customer's email."),
        _opt("created_date", DATE, "Day the invoice was created (UTC)."),
        _opt("due_date", DATE, "Day the invoice is due (send_invoice only)."),
        _opt("paid_date", DATE, "Day the invoice was paid."),
    ],
    primary_key=("invoice_id",),
    why="fivetran/dbt_stripe's invoice details; each total is summed from the invoice's "
    "lines once, so an invoice is one row whatever else joins to it.",
)  # fmt: skip

mart_invoice_line_details = Table(
    "mart_invoice_line_details",
    "One row per invoice line.",
    None,
    [
        _col("invoice_line_item_id", ID, "Stripe id of the line."),
        _col("invoice_id", ID, "Invoice the line is on."),
        _opt("subscription_id", ID, "Subscription billed; NULL for one-off lines."),
        _opt("subscription_item_id", ID, "Subscription item billed."),
        _col("customer_id", ID, "Customer billed."),
        _opt("price_key", TEXT, "Price billed (dim_price)."),
        _opt("product_key", TEXT, "Product billed (dim_product)."),
        _currency(),
        _col("invoice_status", TEXT, "Invoice status at the as-of time."),
        _col("billing_reason", TEXT, "Why the invoice was created."),
        _col("proration", BOOLEAN, "Whether the line prorates a mid-period change."),
        _opt("quantity", INTEGER, "Units billed."),
        _amt("amount", "Line amount before discounts (negative for credits)"),
        _amt("discount_amount", "Discounts on the line"),
        _reporting_currency(),
        _rep("amount_reporting", "Line amount"),
        _rep("discount_amount_reporting", "Discounts on the line"),
        _opt("invoice_created_date", DATE, "Day the invoice was created (UTC)."),
        _opt("invoice_paid_date", DATE, "Day the invoice was paid."),
        _amt("invoice_amount_due", "The invoice's amount due"),
        _amt("invoice_amount_paid", "The invoice's amount paid"),
        _amt("invoice_amount_remaining", "The invoice's amount remaining"),
        _amt("invoice_amount_refunded", "Refunded of the invoice's payment (the invoice's "
             "figure, repeated on each of its lines: never add it up over lines)"),
        _amt("invoice_amount_paid_net", "The invoice's amount paid net of refunds"),
        _opt("invoice_payment_intent_id", ID, "Payment intent of the invoice's payment."),
        _opt("invoice_charge_id", ID, "Its succeeded charge."),
        *_CUSTOMER_NOW,
        _opt("period_start_date", DATE, "Day the billed period starts."),
        _amt("net_amount", "amount - discount_amount"),
    ],
    primary_key=("invoice_line_item_id",),
    why="fivetran/dbt_stripe's invoice line details, one row per line: invoice totals are "
    "joined as one aggregate row per invoice, never by fanning out.",
)  # fmt: skip

mart_subscription_details = Table(
    "mart_subscription_details",
    "One row per subscription with an invoice.",
    None,
    [
        _col("subscription_id", ID, "Stripe id of the subscription."),
        _col("customer_id", ID, "Customer billed."),
        _currency(),
        _col("invoice_count", BIGINT, "Invoices of the subscription."),
        _col("paid_invoice_count", BIGINT, "Of them, paid by the as-of time."),
        _col("open_invoice_count", BIGINT, "Of them, open at the as-of time."),
        _opt("first_invoice_date", DATE, "Day of the first invoice."),
        _opt("latest_invoice_date", DATE, "Day of the latest invoice."),
        _amt("amount_billed", "Sum of the invoices' amounts due"),
        _amt("amount_paid", "Sum of the invoices' amounts paid"),
        _amt("amount_remaining", "amount_billed - amount_paid"),
        _amt("amount_refunded", "Refunded of its invoices' payments"),
        _amt("amount_paid_net", "amount_paid - amount_refunded"),
        _amt("discount_amount", "Discounts on its invoices"),
    ],
    primary_key=("subscription_id",),
    why="fivetran/dbt_stripe's subscription details: what each subscription billed, "
    "collected and still owes.",
)  # fmt: skip

mart_payout_reconciliation = Table(
    "mart_payout_reconciliation",
    "One row per payout and reporting category of the balance transactions it settled.",
    None,
    [
        _col("payout_id", ID, "Stripe id of the payout."),
        _col("reporting_category", TEXT, "Accounting category of the settled transactions."),
        _currency(),
        _col("payout_status", TEXT, "Payout status at the as-of time."),
        _col("automatic", BOOLEAN, "Made by the payout schedule."),
        _col("method", TEXT, "Standard or instant."),
        _col("settled_count", BIGINT, "Balance transactions of the category it settled (not "
         "its own withdrawal)."),
        _amt("gross", "Their gross amount"),
        _amt("fee", "Their fees"),
        _amt("net", "Their net; a payout's nets over its categories add up to payout_amount"),
        _amt("payout_amount", "Amount the payout sent to the bank"),
        _amt("payout_movement", "The payout's own balance transaction (negative: money "
             "leaving the balance), = -payout_amount once made", nullable=True),
        _reporting_currency(),
        _rep("net_reporting", "Net of the category"),
        _rep("payout_amount_reporting", "Amount sent to the bank"),
        _opt("payout_created_date", DATE, "Day the payout was made (UTC)."),
        _opt("payout_arrival_date", DATE, "Day the funds are expected at the bank."),
    ],
    primary_key=("payout_id", "reporting_category"),
    why="fivetran/dbt_stripe's payout reconciliation: the bank statement line against the "
    "charges, refunds, disputes and fees it pays out. Manual payouts settle nothing and have "
    "no row.",
)  # fmt: skip

MART_TABLES = [
    mart_subscription_item_mrr,
    mart_mrr_movements,
    mart_mrr_bridge,
    mart_mrr_metrics,
    mart_cohort_retention,
    mart_trial_conversion,
    mart_payment_health,
    mart_decline_codes,
    mart_three_d_secure,
    mart_refund_rates,
    mart_risk_levels,
    mart_dispute_outcomes,
    mart_customer_overview,
    mart_daily_overview,
    mart_balance_transactions,
    mart_invoice_details,
    mart_invoice_line_details,
    mart_subscription_details,
    mart_payout_reconciliation,
]

MARTS = Model(
    "marts",
    "The marts analysts open first, rebuilt from the warehouse's facts by `paymodel olap`: "
    "MRR per item, per customer (movements) and per month (bridge, metrics, cohorts), trial "
    "conversion and payment health, and fivetran/dbt_stripe's detail models (balance "
    "transactions, invoices, invoice lines, subscriptions, payout reconciliation).",
    MART_TABLES,
)
"""The marts model."""
