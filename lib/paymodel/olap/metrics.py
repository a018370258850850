"""Every metric of the marts, defined once: pure Ibis functions over the marts and the star.

Each metric's definition and formula live in :data:`paymodel.model.marts.METRICS` (and so
in the data dictionary); the function computing it takes that definition as its
docstring through :func:`metric`, so code, docstring and dictionary cannot drift apart.
A metric function returns a column expression over the table it is given; the ``mart_*``
functions assemble them into the marts declared in :mod:`paymodel.model.marts`.

Ratios are NULL where their denominator is 0 and are returned as exact decimals (ten
places) so that every engine writes the same value.

Example:
    >>> import ibis
    >>> bridge = ibis.memtable({"opening_mrr": [1000], "expansion_mrr": [200],
    ...                         "contraction_mrr": [100], "churned_mrr": [300]})
    >>> float(ibis.duckdb.connect().execute(nrr(bridge)).iloc[0])
    0.8
    >>> "Formula: (opening_mrr + expansion_mrr" in nrr.__doc__
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import ibis
import ibis.expr.types as ir

from paymodel.model.marts import METRICS

__all__ = [
    "APPROVED",
    "SENT_TO_NETWORK",
    "arpa",
    "arr",
    "authorisation_rate",
    "cohort_logo_retention",
    "cohort_revenue_retention",
    "decline_share",
    "dispute_rate",
    "dispute_win_rate",
    "fraud_rate",
    "grr",
    "logo_churn_rate",
    "ltv",
    "mart_cohort_retention",
    "mart_customer_overview",
    "mart_daily_overview",
    "mart_decline_codes",
    "mart_dispute_outcomes",
    "mart_mrr_metrics",
    "mart_payment_health",
    "mart_refund_rates",
    "mart_risk_levels",
    "mart_three_d_secure",
    "mart_trial_conversion",
    "metric",
    "nrr",
    "refund_rate",
    "revenue_churn_rate",
    "three_d_secure_challenge_rate",
    "three_d_secure_success_rate",
    "trial_conversion_rate",
]

F = TypeVar("F", bound=Callable[..., ir.Value])

SENT_TO_NETWORK = ("approved_by_network", "declined_by_network", "reversed_after_approval")
"""Network statuses of attempts the card network saw (Radar blocks are not among them)."""
APPROVED = ("approved_by_network", "reversed_after_approval")
"""Network statuses of attempts the network approved (even if reversed later)."""

_RATIO = ibis.dtype("decimal(20, 10)")


def metric(name: str) -> Callable[[F], F]:
    """Give the decorated function the definition of metric ``name`` as its docstring."""
    m = METRICS[name]

    def wrap(func: F) -> F:
        notes = f"\n\n{func.__doc__}" if func.__doc__ else ""
        func.__doc__ = (
            f"{m.description}\n\nFormula: {m.formula}.\n\nColumn: ``{m.mart}.{m.column}``.{notes}"
        )
        return func

    return wrap


def ratio(numerator: ir.NumericValue, denominator: ir.NumericValue) -> ir.DecimalValue:
    """``numerator / denominator`` as a decimal(20, 10), NULL when the denominator is 0."""
    value = numerator.cast("float64") / denominator.cast("float64")
    return ibis.ifelse(denominator == 0, ibis.null(), value.round(10)).cast(_RATIO)


# --- MRR metrics, over mart_mrr_bridge ----------------------------------------------------


@metric("arr")
def arr(bridge: ir.Table) -> ir.IntegerValue:
    return (bridge.closing_mrr * 12).cast("int64")


@metric("arpa")
def arpa(bridge: ir.Table) -> ir.DecimalValue:
    return ratio(bridge.closing_mrr, bridge.customers_closing)


@metric("logo_churn_rate")
def logo_churn_rate(bridge: ir.Table) -> ir.DecimalValue:
    return ratio(bridge.customers_churned, bridge.customers_opening)


@metric("revenue_churn_rate")
def revenue_churn_rate(bridge: ir.Table) -> ir.DecimalValue:
    return ratio(bridge.contraction_mrr + bridge.churned_mrr, bridge.opening_mrr)


@metric("grr")
def grr(bridge: ir.Table) -> ir.DecimalValue:
    return ratio(
        bridge.opening_mrr - bridge.contraction_mrr - bridge.churned_mrr, bridge.opening_mrr
    )


@metric("nrr")
def nrr(bridge: ir.Table) -> ir.DecimalValue:
    b = bridge
    return ratio(b.opening_mrr + b.expansion_mrr - b.contraction_mrr - b.churned_mrr, b.opening_mrr)


@metric("ltv")
def ltv(bridge: ir.Table) -> ir.DecimalValue:
    """Computed as closing_mrr x customers_opening / (customers_closing x customers_churned)."""
    b = bridge
    return ratio(
        b.closing_mrr.cast("float64") * b.customers_opening,
        b.customers_closing.cast("float64") * b.customers_churned,
    )


def mart_mrr_metrics(bridge: ir.Table) -> ir.Table:
    """``mart_mrr_metrics``: ARR, ARPA, churn, retention and LTV per month and currency."""
    b = bridge
    return b.select(
        "month", "currency", "closing_mrr", arr=arr(b), customers_closing="customers_closing",
        arpa=arpa(b), logo_churn_rate=logo_churn_rate(b), revenue_churn_rate=revenue_churn_rate(b),
        grr=grr(b), nrr=nrr(b), ltv=ltv(b),
    )  # fmt: skip


# --- cohorts and trials -------------------------------------------------------------------


@metric("cohort_logo_retention")
def cohort_logo_retention(cohorts: ir.Table) -> ir.DecimalValue:
    return ratio(cohorts.customers_retained, cohorts.cohort_customers)


@metric("cohort_revenue_retention")
def cohort_revenue_retention(cohorts: ir.Table) -> ir.DecimalValue:
    return ratio(cohorts.mrr_retained, cohorts.cohort_mrr)


def _month_index(day: ir.DateValue) -> ir.IntegerValue:
    return day.year() * 12 + day.month()


def mart_cohort_retention(movements: ir.Table, months: ir.Table) -> ir.Table:
    """``mart_cohort_retention`` from ``mart_mrr_movements`` and the calendar of months.

    A customer's cohort is its ``new`` month in a currency; every later month of the
    calendar has a row per cohort, 0 retained included.
    """
    m = movements
    members = m.filter(m.movement == "new").select(
        "customer_id", "currency", cohort_month="month", first_mrr="closing_mrr"
    )
    sizes = members.group_by("cohort_month", "currency").aggregate(
        cohort_customers=members.customer_id.count(), cohort_mrr=members.first_mrr.sum()
    )
    cal = months.select(month=months.month.cast("date")).distinct()
    grid = sizes.join(cal, cal.month >= sizes.cohort_month)
    paying = m.filter(m.closing_mrr > 0)
    kept = paying.join(members, ["customer_id", "currency"])
    kept = kept.group_by("cohort_month", "currency", "month").aggregate(
        customers_retained=kept.customer_id.count(), mrr_retained=kept.closing_mrr.sum()
    )
    j = grid.left_join(kept, ["cohort_month", "currency", "month"])
    out = j.select(
        cohort_month=grid.cohort_month,
        currency=grid.currency,
        months_since=(_month_index(grid.month) - _month_index(grid.cohort_month)).cast("int32"),
        cohort_customers=grid.cohort_customers.cast("int64"),
        customers_retained=ibis.coalesce(kept.customers_retained, 0).cast("int64"),
        cohort_mrr=grid.cohort_mrr.cast("int64"),
        mrr_retained=ibis.coalesce(kept.mrr_retained, 0).cast("int64"),
    )
    return out.mutate(
        logo_retention=cohort_logo_retention(out), revenue_retention=cohort_revenue_retention(out)
    )


@metric("trial_conversion_rate")
def trial_conversion_rate(trials: ir.Table) -> ir.DecimalValue:
    return ratio(trials.trials_converted, trials.trials_ended)


def mart_trial_conversion(item_months: ir.Table, months: ir.Table) -> ir.Table:
    """``mart_trial_conversion`` from the star's ``fact_subscription_item_months``.

    A subscription is a trial when one of its month ends finds it ``trialing``; its
    trial month is the first such month. Its trial has ended unless it is still trialing
    in the calendar's last month; it converted when any of its months has positive MRR.
    Trials shorter than the gap between two month ends are not seen (the snapshot's grain).
    """
    cal = months.select(month=months.month.cast("date"))
    last = cal.aggregate(last_month=cal.month.max())
    f = item_months.cross_join(last)
    month = f.month.cast("date")
    trialing = f.status == "trialing"
    subs = f.group_by("subscription_id").aggregate(
        trial_month=ibis.ifelse(trialing, month, None).min(),
        trialing_at_end=(trialing & (month == f.last_month)).any(),
        paid=(f.mrr > 0).any(),
    )
    subs = subs.filter(subs.trial_month.notnull())
    ended = ~subs.trialing_at_end
    out = subs.group_by("trial_month").aggregate(
        trials=subs.count(),
        trials_ended=ended.sum(),
        trials_converted=(ended & subs.paid).sum(),
    )
    out = out.mutate(**{c: out[c].cast("int64") for c in ("trials", "trials_ended",
                                                           "trials_converted")})  # fmt: skip
    return out.mutate(conversion_rate=trial_conversion_rate(out))


# --- payment health, over the star's payment facts ----------------------------------------


@metric("authorisation_rate")
def authorisation_rate(health: ir.Table) -> ir.DecimalValue:
    return ratio(health.approved, health.sent_to_network)


def _attempts(attempts: ir.Table, outcomes: ir.Table) -> ir.Table:
    a, o = attempts, outcomes
    return a.join(o, "payment_outcome_key").select(
        a.charge_id, a.payment_method_key, a.currency, a.created, a.is_success, a.is_disputed,
        a.amount_captured, a.amount_refunded, a.risk_score,
        o.network_status, o.risk_level, o.failure_code,
    )  # fmt: skip


def mart_payment_health(
    attempts: ir.Table, payment_methods: ir.Table, outcomes: ir.Table
) -> ir.Table:
    """``mart_payment_health`` from ``fact_payment_attempts``, ``dim_payment_method`` and
    ``dim_payment_outcome``: one row per card brand, per funding and per card country.

    The attempts are joined and counted once, per combination of the three (a few hundred
    rows), and each dimension's rows are rolled up from those counts: scanning and joining
    the fact once per dimension cost three times as much.
    """
    a = _attempts(attempts, outcomes)
    pm = payment_methods
    j = a.left_join(pm, "payment_method_key")
    dims = ("card_brand", "card_funding", "card_country")
    per = j.group_by(**{d: ibis.coalesce(j[d], "unknown") for d in dims}).aggregate(
        attempts=j.count(),
        sent_to_network=j.network_status.isin(SENT_TO_NETWORK).sum(),
        approved=j.network_status.isin(APPROVED).sum(),
        succeeded=j.is_success.sum(),
    )
    counts = ("attempts", "sent_to_network", "approved", "succeeded")
    parts = [
        per.group_by(dimension=ibis.literal(d), value=per[d]).aggregate(
            **{c: per[c].sum().cast("int64") for c in counts}
        )
        for d in dims
    ]
    out = ibis.union(*parts)
    return out.mutate(authorisation_rate=authorisation_rate(out))


@metric("decline_share")
def decline_share(codes: ir.Table) -> ir.DecimalValue:
    return ratio(codes.failed_attempts, codes.failed_attempts.sum().over(ibis.window()))


def mart_decline_codes(attempts: ir.Table, outcomes: ir.Table) -> ir.Table:
    """``mart_decline_codes``: failed attempts per failure code (``none`` when none given)."""
    a = _attempts(attempts, outcomes)
    failed = a.filter(~a.is_success)
    out = failed.group_by("failure_code").aggregate(failed_attempts=failed.count().cast("int64"))
    return out.mutate(share=decline_share(out))


@metric("three_d_secure_challenge_rate")
def three_d_secure_challenge_rate(t: ir.Table) -> ir.DecimalValue:
    return ratio(t.intents_challenged, t.intents_confirmed)


@metric("three_d_secure_success_rate")
def three_d_secure_success_rate(t: ir.Table) -> ir.DecimalValue:
    return ratio(t.challenged_succeeded, t.intents_challenged)


def mart_three_d_secure(intents: ir.Table) -> ir.Table:
    """``mart_three_d_secure`` from ``fact_payment_intents`` (``requires_action_at`` is the
    3-D Secure request)."""
    i = intents
    challenged = i.requires_action_at.notnull()
    confirmed = i.first_confirmed_at.notnull() | challenged
    out = i.group_by(month=i.created_at.truncate("M").cast("date")).aggregate(
        intents_confirmed=confirmed.sum().cast("int64"),
        intents_challenged=challenged.sum().cast("int64"),
        challenged_succeeded=(challenged & i.succeeded_at.notnull()).sum().cast("int64"),
    )
    return out.mutate(
        challenge_rate=three_d_secure_challenge_rate(out),
        success_rate=three_d_secure_success_rate(out),
    )


@metric("refund_rate")
def refund_rate(t: ir.Table) -> ir.DecimalValue:
    return ratio(t.amount_refunded, t.amount_captured)


def mart_refund_rates(attempts: ir.Table) -> ir.Table:
    """``mart_refund_rates`` from ``fact_payment_attempts``, per month of the charge."""
    a = attempts.filter(attempts.is_success)
    out = a.group_by("currency", month=a.created.truncate("M").cast("date")).aggregate(
        charges_succeeded=a.count().cast("int64"),
        charges_refunded=(a.amount_refunded > 0).sum().cast("int64"),
        amount_captured=a.amount_captured.sum().cast("int64"),
        amount_refunded=a.amount_refunded.sum().cast("int64"),
    )
    out = out.select("month", *(c for c in out.columns if c != "month"))
    return out.mutate(refund_rate=refund_rate(out))


@metric("dispute_rate")
def dispute_rate(t: ir.Table) -> ir.DecimalValue:
    return ratio(t.charges_disputed, t.charges_succeeded)


@metric("fraud_rate")
def fraud_rate(t: ir.Table) -> ir.DecimalValue:
    return ratio(t.charges_fraud_disputed, t.charges_succeeded)


def mart_risk_levels(attempts: ir.Table, outcomes: ir.Table, disputes: ir.Table) -> ir.Table:
    """``mart_risk_levels`` from ``fact_payment_attempts``, ``dim_payment_outcome`` and
    ``fact_disputes`` (a fraud dispute is one of reason ``fraudulent``)."""
    a = _attempts(attempts, outcomes)
    a = a.filter(a.is_success)
    d = disputes
    fraud = d.filter(d.reason == "fraudulent").select(fraud_charge_id="charge_id").distinct()
    j = a.left_join(fraud, a.charge_id == fraud.fraud_charge_id)
    out = j.group_by("risk_level").aggregate(
        charges_succeeded=j.count().cast("int64"),
        charges_disputed=j.is_disputed.sum().cast("int64"),
        charges_fraud_disputed=j.fraud_charge_id.notnull().sum().cast("int64"),
        mean_risk_score=ratio(j.risk_score.sum(), j.risk_score.count()),
    )
    return out.mutate(dispute_rate=dispute_rate(out), fraud_rate=fraud_rate(out))


@metric("dispute_win_rate")
def dispute_win_rate(t: ir.Table) -> ir.DecimalValue:
    return ratio(t.disputes_won, t.disputes_won + t.disputes_lost)


def mart_dispute_outcomes(disputes: ir.Table) -> ir.Table:
    """``mart_dispute_outcomes`` from ``fact_disputes``, by reason."""
    d = disputes
    out = d.group_by("reason").aggregate(
        disputes=d.count().cast("int64"),
        disputes_won=(d.status == "won").sum().cast("int64"),
        disputes_lost=(d.status == "lost").sum().cast("int64"),
    )
    return out.mutate(win_rate=dispute_win_rate(out))


# --- overviews, over the ledger ----------------------------------------------------------


def _ledger(balance_transactions: ir.Table, dim_date: ir.Table) -> ir.Table:
    """Balance transactions with their day and each reporting category's signed amount."""
    b, d = balance_transactions, dim_date
    j = b.join(d, b.created_date_key == d.date_key)
    cat = j.reporting_category

    def only(kind: str, amount: ir.IntegerValue) -> ir.IntegerValue:
        return ibis.ifelse(cat == kind, amount, 0)

    return j.select(
        customer_id=j.customer_id, currency=j.currency, date=j.date,
        sales=only("charge", j.amount), refunds=only("refund", -j.amount),
        disputes=ibis.ifelse(cat.isin(("dispute", "dispute_reversal")), -j.amount, 0),
        adjustments=ibis.ifelse(cat.isin(("other_adjustment", "fee")), j.amount, 0),
        payouts=only("payout", j.amount), fees=j.fee, net=j.net,
        is_sale=cat == "charge", is_refund=cat == "refund",
    )  # fmt: skip


def _failed(attempts: ir.Table) -> ir.Table:
    a = attempts.filter(~attempts.is_success)
    return a.select("customer_id", "currency", "amount", date=a.created.date())


def mart_customer_overview(
    balance_transactions: ir.Table, attempts: ir.Table, dim_date: ir.Table, as_of_month: object
) -> ir.Table:
    """``mart_customer_overview`` from ``fact_balance_transactions`` and
    ``fact_payment_attempts``; "this month" is the as-of month (a date, its first day)."""
    led = _ledger(balance_transactions, dim_date)
    led = led.filter(led.customer_id.notnull())
    now = led.date >= as_of_month
    money = led.group_by("customer_id", "currency").aggregate(
        total_sales=led.sales.sum(), total_refunds=led.refunds.sum(),
        total_disputes=led.disputes.sum(), total_fees=led.fees.sum(), total_net=led.net.sum(),
        total_sales_count=led.is_sale.sum(), total_refund_count=led.is_refund.sum(),
        sales_this_month=ibis.ifelse(now, led.sales, 0).sum(),
        refunds_this_month=ibis.ifelse(now, led.refunds, 0).sum(),
        net_this_month=ibis.ifelse(now, led.net, 0).sum(),
        first_sale_date=ibis.ifelse(led.is_sale, led.date, None).min(),
        most_recent_sale_date=ibis.ifelse(led.is_sale, led.date, None).max(),
    )  # fmt: skip
    f = _failed(attempts)
    f = f.filter(f.customer_id.notnull())  # a guest's charge is no customer's (key NOT NULL)
    failed = f.group_by("customer_id", "currency").aggregate(
        failed_charge_count=f.count(), failed_charge_amount=f.amount.sum(),
        failed_charge_count_this_month=(f.date >= as_of_month).sum(),
    )  # fmt: skip
    keys = money.select("customer_id", "currency").union(
        failed.select("customer_id", "currency"), distinct=True
    )
    j = keys.left_join(money, ["customer_id", "currency"]).left_join(
        failed, ["customer_id", "currency"]
    )
    zero = [c for c in (*money.columns, *failed.columns)
            if c not in ("customer_id", "currency", "first_sale_date", "most_recent_sale_date")]  # fmt: skip
    return j.select(
        keys.customer_id, keys.currency,
        **{c: ibis.coalesce(j[c], 0).cast("int64") for c in zero},
        first_sale_date=j.first_sale_date, most_recent_sale_date=j.most_recent_sale_date,
    )  # fmt: skip


def mart_daily_overview(
    balance_transactions: ir.Table, attempts: ir.Table, dim_date: ir.Table, as_of_day: object
) -> ir.Table:
    """``mart_daily_overview``: every day up to ``as_of_day`` and currency of the ledger."""
    led = _ledger(balance_transactions, dim_date)
    day = led.group_by("date", "currency").aggregate(
        sales=led.sales.sum(), refunds=led.refunds.sum(), disputes=led.disputes.sum(),
        adjustments=led.adjustments.sum(), payouts=led.payouts.sum(), fees=led.fees.sum(),
        net=led.net.sum(), sales_count=led.is_sale.sum(),
    )  # fmt: skip
    f = _failed(attempts)
    failed = f.group_by("date", "currency").aggregate(
        failed_charge_count=f.count(), failed_charge_amount=f.amount.sum()
    )
    currencies = day.select("currency").union(failed.select("currency"), distinct=True)
    firsts = day.aggregate(first=day.date.min())
    d = dim_date
    days = d.cross_join(firsts).filter((d.date >= firsts.first) & (d.date <= as_of_day))
    grid = days.select("date", "iso_year", "iso_week", "month_start").cross_join(currencies)
    j = grid.left_join(day, ["date", "currency"]).left_join(failed, ["date", "currency"])
    amounts = [c for c in (*day.columns, *failed.columns) if c not in ("date", "currency")]
    filled = j.select(
        grid.date, grid.currency, grid.iso_year, grid.iso_week, grid.month_start,
        **{c: ibis.coalesce(j[c], 0).cast("int64") for c in amounts},
    )  # fmt: skip
    running = ibis.cumulative_window(group_by="currency", order_by="date")
    rolling = ibis.window(group_by="currency", order_by="date", preceding=29, following=0)
    return filled.mutate(
        quarter_start=filled.month_start.truncate("Q").cast("date"),
        running_balance=filled.net.sum().over(running),
        rolling_30d_sales=filled.sales.sum().over(rolling),
        rolling_30d_refunds=filled.refunds.sum().over(rolling),
        rolling_30d_net=filled.net.sum().over(rolling),
    )
