"""What a generated account looks like: its markets, growth, churn, declines and fraud.

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
    "decline_rate",
    "declines_by_code",
    "dispute_rate_by_risk",
    "fees_by_category",
    "markets",
    "nps_by_outcome",
    "open_generated",
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


def declines_by_code(t: Generated) -> ibis.Table:
    """One row per decline code of failed charges, most frequent first: ``charges``."""
    ch = t["charges"]
    return (
        ch.filter(ch.status == "failed")
        .group_by("failure_code")
        .agg(charges=_.count())
        .order_by([ibis.desc("charges"), "failure_code"])
    )


def decline_rate(t: Generated) -> ibis.Table:
    """One row: charges, failed charges, and their share."""
    ch = t["charges"]
    failed = (ch.status == "failed").cast("int64")
    return ch.agg(charges=_.count(), failed=failed.sum(), rate=failed.cast("float64").mean())


def three_d_secure(t: Generated) -> ibis.Table:
    """Charges by 3-D Secure result (NULL: no 3-D Secure asked)."""
    ch = t["charges"]
    return (
        ch.group_by("three_d_secure_result").agg(charges=_.count()).order_by(ibis.desc("charges"))
    )


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
