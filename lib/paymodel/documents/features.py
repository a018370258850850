"""ml_features: per-customer churn and fraud features derived from the warehouse, with Ibis.

One pure Ibis expression (:func:`feature_table`) computes one row per current customer of
``dim_customer`` from the warehouse's facts, as of the warehouse's latest build
(``warehouse_builds.as_of``): the same expression runs on a DuckDB or PostgreSQL warehouse.
:func:`feature_documents` turns the rows into documents, with the customer id replaced by
:func:`paymodel.olap.pseudonymise` under the warehouse's key (``PAYMODEL_PII_KEY``), so a
feature document joins the warehouse's hashes and holds no identifier in clear.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Iterator
from typing import Any

import ibis
from ibis import _

from paymodel.model.documents import FEATURE_SET, FEATURE_SET_VERSION
from paymodel.olap.pii import pseudonymise

__all__ = ["WINDOW_DAYS", "feature_documents", "feature_table", "subject_of", "warehouse_as_of"]

WINDOW_DAYS = 90
"""The recent window of the payment features."""


def subject_of(customer_id: str, key: bytes) -> str:
    """The pseudonym of a customer in ml_features (and what erasure looks for)."""
    return pseudonymise(customer_id, key)


def warehouse_as_of(con: ibis.BaseBackend) -> dt.datetime:
    """The as-of time of the warehouse's latest build."""
    builds = con.table("warehouse_builds")
    return (
        builds.order_by(ibis.desc("build_number")).limit(1).as_of.execute().iloc[0].to_pydatetime()
    )


def feature_table(con: ibis.BaseBackend, as_of: dt.datetime) -> ibis.Table:
    """One row per current customer: the churn, payment and fraud features as of ``as_of``."""
    cust = con.table("dim_customer").filter(_.is_current)
    att = con.table("fact_payment_attempts").filter(_.customer_id.notnull())
    pm = con.table("dim_payment_method").select("payment_method_key", "card_country")
    cutoff = ibis.literal(as_of) - ibis.interval(days=WINDOW_DAYS)
    pay = att.group_by("customer_id").aggregate(
        attempts=_.count(),
        last_success=_.created.max(where=_.is_success),
        captured=_.amount_captured_reporting.sum(),
        refunded=_.amount_refunded_reporting.sum(),
        max_risk=_.risk_score.max(),
        mean_risk=_.risk_score.mean(),
        payment_methods=_.payment_method_key.nunique(),
    )
    recent = (
        att.filter(_.created >= cutoff)
        .group_by("customer_id")
        .aggregate(attempts_90d=_.count(), failures_90d=(~_.is_success).sum())
    )
    countries = (
        att.join(pm, "payment_method_key")
        .group_by("customer_id")
        .aggregate(card_countries=_.card_country.nunique())
    )
    disputes = (
        con.table("fact_disputes")
        .filter(_.customer_id.notnull())
        .group_by("customer_id")
        .aggregate(disputes=_.count(), fraud_disputes=(_.reason == "fraudulent").sum())
    )
    months = con.table("fact_subscription_item_months")
    last = months.group_by("customer_id").aggregate(
        last_month=_.month.max(), months_billed=_.month.nunique()
    )
    mrr = (
        months.join(last, [months.customer_id == last.customer_id, months.month == last.last_month])
        .group_by(months.customer_id)
        .aggregate(mrr_last=months.mrr_reporting.sum())
    )
    out = cust.select("customer_id", "email_hash", "plan_tier", "delinquent", "customer_created")
    for part in (
        pay,
        recent,
        countries,
        disputes,
        last.select("customer_id", "months_billed"),
        mrr,
    ):
        out = out.left_join(part, "customer_id").drop("customer_id_right")
    return out.order_by("customer_id")


def _int(value: Any) -> int:
    return 0 if value is None or (isinstance(value, float) and math.isnan(value)) else int(value)


def _float(value: Any) -> float:
    return (
        0.0 if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
    )


def _share(part: Any, whole: Any) -> float | None:
    whole = _float(whole)
    return None if whole <= 0 else round(min(1.0, _float(part) / whole), 6)


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def feature_documents(warehouse: str | os.PathLike[str], key: bytes) -> Iterator[dict[str, Any]]:
    """The ml_features documents of a warehouse (DuckDB file or ``postgresql://``), in key order."""
    from paymodel.olap.staging import connect

    con = connect(warehouse, read_only=True)
    try:
        as_of = warehouse_as_of(con)
        rows = feature_table(con, as_of).to_pyarrow().to_pylist()
    finally:
        con.disconnect()
    docs = []
    for r in rows:
        subject = subject_of(r["customer_id"], key)
        last = r["last_success"]
        mean_risk = r["mean_risk"]
        docs.append({
            "feature_id": f"{subject}:{FEATURE_SET}:{FEATURE_SET_VERSION}",
            "subject": subject,
            "email_hash": r["email_hash"],
            "feature_set": FEATURE_SET,
            "feature_set_version": FEATURE_SET_VERSION,
            "as_of": _iso(as_of),
            "churn": {
                "tenure_days": max(0, (as_of - r["customer_created"]).days),
                "plan_tier": r["plan_tier"],
                "delinquent": bool(r["delinquent"]),
                "months_billed": _int(r["months_billed"]),
                "mrr_last_month_reporting": round(_float(r["mrr_last"]), 2),
            },
            "payments": {
                "attempts_90d": _int(r["attempts_90d"]),
                "failure_rate_90d": _share(r["failures_90d"], r["attempts_90d"]),
                "days_since_last_success": None if last is None else max(0, (as_of - last).days),
                "refund_rate": _share(r["refunded"], r["captured"]),
                "disputes": _int(r["disputes"]),
            },
            "fraud": {
                "max_risk_score": None if r["max_risk"] is None else int(r["max_risk"]),
                "mean_risk_score": None if mean_risk is None else round(float(mean_risk), 3),
                "payment_methods": _int(r["payment_methods"]),
                "card_countries": _int(r["card_countries"]),
                "fraud_disputes": _int(r["fraud_disputes"]),
            },
        })  # fmt: skip
    return iter(sorted(docs, key=lambda d: d["feature_id"]))
