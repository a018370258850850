"""What a generated account looks like: markets, growth, churn, declines, fraud and payouts.

Every function takes Ibis tables on one connection (:func:`open_generated` opens the
Parquet files and ``feedback.jsonl`` of a ``paymodel generate`` folder on DuckDB) and
returns an Ibis expression, so the same profile runs on any engine Ibis speaks; call
``.to_pandas()`` to look at it. Notebook 04 draws its plots from these.

Example:
    >>> import tempfile, pathlib
    >>> from paymodel.synthetic import generate
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = generate(pathlib.Path(d), scale=0.005, seed=1, months=3, progress=False)
    ...     t = open_generated(pathlib.Path(d))
    ...     int(signups_by_month(t)["signups"].sum().to_pandas())
    50
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import ibis
from ibis import _

from paymodel.synthetic import TABLES

__all__ = [
    "RISK_LEVELS",
    "Generated",
    "churn_by_tier",
    "currencies_and_countries",
    "decline_places",
    "decline_rate",
    "declines_by_code",
    "dispute_counts",
    "dispute_rate_by_risk",
    "disputes_by_reason",
    "expired_card_declines_by_month",
    "fees_by_category",
    "markets",
    "nps_by_outcome",
    "open_generated",
    "paying_cancellations",
    "payment_errors",
    "payout_contents",
    "payouts_by_status",
    "payouts_reconciled",
    "prorations",
    "risk_score_by_dispute",
    "settlement",
    "signups_by_month",
    "three_d_secure",
]

RISK_LEVELS = ("normal", "elevated", "highest")
"""Radar's risk levels, lowest first."""


@dataclass(frozen=True)
class Generated:
    """Ibis tables over a generated folder, all on one connection."""

    con: ibis.BaseBackend
    tables: dict[str, ibis.Table]

    def __getitem__(self, name: str) -> ibis.Table:
        return self.tables[name]


def open_generated(folder: Path, con: ibis.BaseBackend | None = None) -> Generated:
    """Ibis tables over the Parquet files of ``folder`` (and its ``documents/feedback.jsonl``).

    Args:
        folder: a folder written by ``paymodel generate``.
        con: the connection to read them on; default a new in-memory DuckDB.
    """
    con = con or ibis.duckdb.connect()
    tables = {
        name: con.read_parquet(str(folder / name / "*.parquet"), table_name=name)
        for name in TABLES
        if (folder / name).is_dir()
    }
    feedback = folder / "documents" / "feedback.jsonl"
    if feedback.exists():
        tables["feedback"] = con.read_json(str(feedback), table_name="feedback")
    return Generated(con, tables)


def markets(t: Generated) -> ibis.Table:
    """One row per country and billing currency of customers that have both: ``customers``."""
    c, a = t["customers"], t["customer_addresses"]
    joined = c.filter(c.currency.notnull()).join(a, c.id == a.customer_id)
    return (
        joined.group_by([joined.country, joined.currency])
        .agg(customers=_.count())
        .order_by([ibis.desc("customers"), "country"])
    )


def currencies_and_countries(t: Generated) -> dict[str, int]:
    """How many countries customers live in, and in how many currencies they are billed or charged."""
    a, c, ch = t["customer_addresses"], t["customers"], t["charges"]
    return {
        "countries (customer addresses)": int(a.country.nunique().to_pandas()),
        "billing currencies (customers)": int(c.currency.nunique().to_pandas()),
        "currencies charged (charges)": int(ch.currency.nunique().to_pandas()),
    }


def signups_by_month(t: Generated) -> ibis.Table:
    """One row per calendar month (UTC) with the customers created in it: ``signups``."""
    c = t["customers"]
    return (
        c.mutate(month=c.created.truncate("M"))
        .group_by("month")
        .agg(signups=_.count())
        .order_by("month")
    )


def _tiers(t: Generated) -> ibis.Table:
    """One row per subscription and the tier of its licensed price (``starter_month_usd`` -> starter)."""
    s, i, p = t["subscriptions"], t["subscription_items"], t["prices"]
    prices = p.filter(p.recurring_usage_type == "licensed").select(
        price_id=p.id, tier=p.lookup_key.re_extract(r"^([a-z]+)_", 1)
    )
    items = i.select("subscription_id", "price_id").join(prices, "price_id")
    return s.select(
        subscription_id=s.id,
        customer_id=s.customer_id,
        status=s.status,
        reason=s.cancellation_reason,
    ).join(items.select("subscription_id", "tier").distinct(), "subscription_id")  # fmt: skip


def churn_by_tier(t: Generated) -> ibis.Table:
    """One row per tier: subscriptions, and the shares that ended voluntarily or unpaid.

    ``voluntary_churn_share``: canceled at the customer's request; ``involuntary_share``:
    ended because payment failed (canceled for ``payment_failed``, or ``unpaid``).
    """
    tiers = _tiers(t)
    voluntary = (tiers.reason == "cancellation_requested").fill_null(False)
    involuntary = ((tiers.reason == "payment_failed") | (tiers.status == "unpaid")).fill_null(False)
    return (
        tiers.group_by("tier")
        .agg(
            subscriptions=_.count(),
            voluntary_churn_share=voluntary.cast("float64").mean(),
            involuntary_share=involuntary.cast("float64").mean(),
        )
        .order_by("tier")
    )


def nps_by_outcome(t: Generated) -> ibis.Table:
    """Mean NPS answer of customers who canceled at their request, and of those still active.

    A customer with a voluntarily canceled subscription is ``canceled`` even if another
    subscription is still active; ``still active`` are the others with an active one.
    """
    s, feedback = t["subscriptions"], t["feedback"]
    leavers = (
        s.filter(s.cancellation_reason == "cancellation_requested")
        .select("customer_id")
        .distinct()
        .mutate(outcome=ibis.literal("canceled"))
    )
    stayers = (
        s.filter(s.status == "active")
        .select("customer_id")
        .distinct()
        .anti_join(leavers, "customer_id")
        .mutate(outcome=ibis.literal("still active"))
    )
    nps = feedback.filter(feedback.channel == "nps_survey").select("customer_id", "rating")
    return (
        nps.join(leavers.union(stayers), "customer_id")
        .group_by("outcome")
        .agg(customers=_.customer_id.nunique(), answers=_.count(), mean_rating=_.rating.mean())
        .order_by("outcome")
    )


def _counts(table: ibis.Table, by: list[str], name: str) -> ibis.Table:
    """Rows of ``table`` per value of the ``by`` columns (NULL is a value), most first: ``name``."""
    return table.group_by(by).agg(**{name: _.count()}).order_by([ibis.desc(name), *by])


def declines_by_code(t: Generated) -> ibis.Table:
    """One row per decline code of failed charges, most frequent first: ``charges``."""
    ch = t["charges"]
    return _counts(ch.filter(ch.status == "failed"), ["failure_code"], "charges")


def decline_rate(t: Generated) -> ibis.Table:
    """One row: charges, failed charges, and their share."""
    ch = t["charges"]
    failed = (ch.status == "failed").cast("int64")
    return ch.agg(charges=_.count(), failed=failed.sum(), rate=failed.cast("float64").mean())


def three_d_secure(t: Generated) -> ibis.Table:
    """Charges by 3-D Secure result (NULL: no 3-D Secure asked)."""
    return _counts(t["charges"], ["three_d_secure_result"], "charges")


def dispute_rate_by_risk(t: Generated, min_charges: int = 30) -> ibis.Table:
    """Succeeded charges per Radar risk level: how many, how many disputed, and the rate.

    ``enough`` says whether the rate rests on at least ``min_charges`` charges; below
    that, one dispute more or less moves it by several points, so read the counts.
    """
    ch = t["charges"]
    ok = ch.filter(ch.status == "succeeded")
    rank = ibis.cases(*((ok.outcome_risk_level == r, i) for i, r in enumerate(RISK_LEVELS)),
                      else_=len(RISK_LEVELS))  # fmt: skip
    return (
        ok.mutate(rank=rank, d=ok.disputed.cast("int64"))
        .group_by(["rank", ok.outcome_risk_level.name("risk_level")])
        .agg(succeeded_charges=_.count(), disputed=_.d.sum())
        .mutate(
            dispute_rate=_.disputed.cast("float64") / _.succeeded_charges,
            enough=_.succeeded_charges >= min_charges,
        )
        .order_by("rank")
        .drop("rank")
    )


def risk_score_by_dispute(t: Generated) -> ibis.Table:
    """Mean Radar risk score of succeeded charges, by what became of them.

    ``outcome``: ``fraudulent dispute``, ``other dispute`` or ``no dispute``.
    """
    ch, d = t["charges"], t["disputes"]
    ok = ch.filter(ch.status == "succeeded").select("id", "outcome_risk_score")
    reasons = d.select(charge_id=d.charge_id, reason=d.reason)
    joined = ok.left_join(reasons, ok.id == reasons.charge_id)
    outcome = ibis.cases(
        (joined.reason.isnull(), "no dispute"),
        (joined.reason == "fraudulent", "fraudulent dispute"),
        else_="other dispute",
    )
    return (
        joined.mutate(outcome=outcome)
        .group_by("outcome")
        .agg(charges=_.count(), mean_risk_score=_.outcome_risk_score.mean())
        .order_by(ibis.desc("mean_risk_score"))
    )


def fees_by_category(t: Generated) -> ibis.Table:
    """Balance transactions per reporting category and settlement currency: count, amount, fees."""
    bt = t["balance_transactions"]
    return (
        bt.group_by(["reporting_category", "currency"])
        .agg(transactions=_.count(), amount=_.amount.sum(), fees=_.fee.sum())
        .order_by(["reporting_category", "currency"])
    )


def settlement(t: Generated) -> ibis.Table:
    """Per settlement currency: balance transactions, and how many were converted (FX).

    A charge in another currency than the account's settles converted, with its
    ``exchange_rate``.
    """
    bt = t["balance_transactions"]
    return bt.group_by("currency").agg(
        transactions=_.count(), converted=_.exchange_rate.notnull().cast("int64").sum()
    )


def prorations(t: Generated) -> ibis.Table:
    """One row: invoice lines that prorate a mid-period change, and invoices for such changes."""
    lines, invoices = t["invoice_line_items"], t["invoices"]
    return lines.agg(
        proration_lines=lines.proration.cast("int64").sum(),
        lines=_.count(),
    ).cross_join(
        invoices.agg(
            update_invoices=(invoices.billing_reason == "subscription_update").cast("int64").sum()
        )
    )


def payouts_reconciled(t: Generated) -> ibis.Table:
    """One row per payout, oldest first, beside what it settles.

    ``settled_net``: the sum of the ``net`` of the balance transactions whose ``payout_id``
    is the payout, its own one (type ``payout``, ``-amount``) aside; a payout reconciles
    when it equals ``amount``. ``charges``: how many of those transactions are charges.
    ``returns``: the ``payout_failure`` transactions that bring its funds back (one for a
    failed payout, none for the others); ``retried_by``: the later payout that pays those
    funds out again (NULL if none has yet).
    """
    p, bt = t["payouts"], t["balance_transactions"]
    own = (bt.type == "payout") & (bt.source_payout_id == bt.payout_id)
    settled = (
        bt.filter(bt.payout_id.notnull() & ~own.fill_null(False))
        .group_by("payout_id")
        .agg(settled_net=_.net.sum(), charges=(_.type == "charge").cast("int64").sum())
    )
    returns = (
        bt.filter(bt.type == "payout_failure")
        .group_by(payout_id=_.source_payout_id)
        .agg(returns=_.count(), retried_by=_.payout_id.max())
    )
    payouts = p.select("id", "created", "status", "currency", "amount")
    joined = payouts.left_join(settled, payouts.id == settled.payout_id).select(
        *payouts.columns, "settled_net", "charges"
    )
    return (
        joined.left_join(returns, joined.id == returns.payout_id)
        .select(
            *payouts.columns,
            settled_net=_.settled_net.fill_null(0),
            charges=_.charges.fill_null(0),
            returns=_.returns.fill_null(0),
            retried_by=_.retried_by,
        )
        .order_by(["created", "id"])
    )


def payouts_by_status(t: Generated) -> ibis.Table:
    """Payouts per status and currency: how many, and their ``amount`` (minor units)."""
    p = t["payouts"]
    return (
        p.group_by(["status", "currency"])
        .agg(payouts=_.count(), amount=_.amount.sum())
        .order_by([ibis.desc("payouts"), "status"])
    )


def payout_contents(t: Generated, payout_id: str) -> ibis.Table:
    """The balance transactions one payout settles, per reporting category: how many, ``net``.

    The payout's own transaction (category ``payout``, ``-amount``) is among them, so the
    ``net`` of a payout that reconciles sums to 0.
    """
    bt = t["balance_transactions"]
    return (
        bt.filter(bt.payout_id == payout_id)
        .group_by("reporting_category")
        .agg(transactions=_.count(), net=_.net.sum())
        .order_by("reporting_category")
    )


def expired_card_declines_by_month(t: Generated) -> ibis.Table:
    """Charges declined with ``expired_card`` per calendar month (UTC): ``declines``.

    Every month with a charge has a row, 0 where no card declined as expired.
    """
    ch = t["charges"]
    months = ch.select(month=ch.created.truncate("M")).distinct()
    declines = (
        ch.filter(ch.failure_code == "expired_card")
        .group_by(month=_.created.truncate("M"))
        .agg(declines=_.count())
    )
    return (
        months.left_join(declines, "month")
        .select("month", declines=_.declines.fill_null(0))
        .order_by("month")
    )


def decline_places(t: Generated) -> ibis.Table:
    """Failed charges per ``failure_code`` and ``outcome_reason``, most first: ``charges``.

    ``failure_code`` is Stripe's error code (``card_declined`` for any issuer decline);
    ``outcome_reason`` the issuer's reason (NULL where no issuer answered, as for a failed
    3-D Secure challenge).
    """
    ch = t["charges"]
    return _counts(ch.filter(ch.status == "failed"), ["failure_code", "outcome_reason"], "charges")


def payment_errors(t: Generated) -> ibis.Table:
    """Payment intents per ``last_payment_error`` code and decline code, most first: ``intents``.

    Only intents whose last attempt failed have one; ``decline_code`` is NULL where the
    issuer gave no reason.
    """
    pi = t["payment_intents"]
    errors = pi.filter(pi.last_payment_error_code.notnull())
    return _counts(
        errors, ["last_payment_error_code", "last_payment_error_decline_code"], "intents"
    )


def disputes_by_reason(t: Generated) -> ibis.Table:
    """Disputes per ``reason`` and ``status`` (won, lost...), most first: ``disputes``."""
    return _counts(t["disputes"], ["reason", "status"], "disputes")


def dispute_counts(t: Generated) -> ibis.Table:
    """One row: what the dispute rate rests on.

    ``disputes``, ``succeeded_charges`` and ``dispute_rate`` (their ratio, NULL without a
    succeeded charge); ``disputing_customers``, and ``repeat_disputers``: those of them with
    more than one dispute.
    """
    ch, d = t["charges"], t["disputes"]
    owners = ch.select(charge_id=ch.id, customer_id=ch.customer_id)
    per_customer = d.join(owners, "charge_id").group_by("customer_id").agg(n=_.count())
    return (
        d.agg(disputes=_.count())
        .cross_join(ch.agg(succeeded_charges=(ch.status == "succeeded").cast("int64").sum()))
        .cross_join(
            per_customer.agg(
                disputing_customers=_.count(), repeat_disputers=(_.n > 1).cast("int64").sum()
            )
        )
        .mutate(dispute_rate=_.disputes.cast("float64") / _.succeeded_charges.nullif(0))
    )


def paying_cancellations(t: Generated) -> ibis.Table:
    """Canceled subscriptions that had paid, per ``cancellation_reason``: how many, and the share.

    A subscription had paid if one of its invoices is ``paid`` with ``amount_paid > 0``
    (a trial that never converted has not). ``share`` is of all such cancellations.
    """
    s, i = t["subscriptions"], t["invoices"]
    paid = i.filter((i.status == "paid") & (i.amount_paid > 0)).select(
        subscription_id=i.subscription_id
    )
    paying = s.filter(s.status == "canceled").semi_join(paid, s.id == paid.subscription_id)
    return _counts(paying, ["cancellation_reason"], "subscriptions").mutate(
        share=_.subscriptions.cast("float64") / _.subscriptions.sum()
    )
