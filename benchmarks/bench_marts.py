"""The marts through Ibis, against the same marts in hand-written DuckDB SQL and in pandas.

For each scale, the OLTP database of :func:`bench_olap.prepare` (``<out>/oltp-<scale>.duckdb``,
generated if missing, so both benchmarks share it) is built into a warehouse with its marts
(``<out>/marts-<scale>/warehouse.duckdb``, reused if present; ``--rebuild`` to redo it).
Seven marts are then recomputed from the star's tables (the MRR movements and bridge,
payment health, the balance transactions, the customer and daily overviews and the
payout reconciliation), each three ways:

* **Ibis**: the build's own mart steps (:mod:`paymodel.olap.marts`, conformed to the model),
  as the build runs them: expression built, compiled to DuckDB SQL, executed, fetched;
* **SQL**: the same marts written by hand as one DuckDB query each (the baseline);
* **pandas**: the same logic on DataFrames, starting, like the other two, from the
  warehouse: the input columns it needs are read into DataFrames inside the timing.

All three return every column of the mart, and the three results are checked equal, value
for value (decimals exactly), before any time is reported. Each timing covers the whole
way from the warehouse to a pandas DataFrame of the mart, and is the best of ``--repeat``
runs, side by side in one process (these machines are noisy: ratios, not seconds, are the
result). The as-of month and reporting currency are the warehouse's last build's; the MRR
bridge converts with the OLTP's ``fx_rates``, attached read-only.

Targets (issue 9): Ibis at most 1.3x the hand-written SQL; at least 5x faster than pandas.

Usage::

    python benchmarks/bench_marts.py [--scales 1 10] [--repeat 3] [--out build/bench]

Prints a table with each ratio against its target and writes ``<out>/bench_marts.json``.
Each scale ends with a ``total`` row: every column's seconds summed over the marts, and the
ratios of those sums (what computing all of them costs each way; the bridge recomputes the
movements it is built from, where the build reads them from the mart already written).
The ``(exec)`` column is the part of the Ibis time spent executing Ibis's compiled SQL
(compiled beforehand): the rest is building the expression and compiling it, a cost that
does not grow with the data.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import UTC
from decimal import Decimal
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from bench_olap import prepare  # this script's folder is on sys.path when it runs

from paymodel.model.marts import MARTS
from paymodel.olap import build_warehouse, resolve_pii_key
from paymodel.olap import marts as M
from paymodel.olap.metrics import APPROVED, SENT_TO_NETWORK
from paymodel.olap.transforms import BuildParams, conform
from paymodel.paths import BUILD_DIR

SQL_TARGET, PANDAS_TARGET = 1.3, 5.0

# The last build's as-of month and reporting currency, read by the queries themselves.
_LAST_MONTH = """(SELECT CAST(date_trunc('month', max(as_of) AT TIME ZONE 'UTC') AS DATE)
                  FROM warehouse_builds)"""
_REPORTING = """(SELECT reporting_currency FROM warehouse_builds
                 ORDER BY build_number DESC LIMIT 1)"""

MOVEMENTS_SQL = f"""
WITH months AS (SELECT DISTINCT month_start AS month FROM dim_date
                WHERE month_start <= {_LAST_MONTH}),
closing AS (
    SELECT customer_id, currency, month, sum(mrr) AS closing_mrr
    FROM fact_subscription_item_months GROUP BY ALL
),
first_paid AS (
    SELECT customer_id, currency, min(month) AS first_paid_month
    FROM closing WHERE closing_mrr > 0 GROUP BY ALL
),
grid AS (
    SELECT f.customer_id, f.currency, f.first_paid_month, m.month
    FROM first_paid f JOIN months m ON m.month >= f.first_paid_month
),
filled AS (
    SELECT g.*, coalesce(c.closing_mrr, 0) AS closing_mrr
    FROM grid g LEFT JOIN closing c USING (customer_id, currency, month)
),
opened AS (
    SELECT *, coalesce(lag(closing_mrr) OVER (PARTITION BY customer_id, currency ORDER BY month), 0)
        AS opening_mrr
    FROM filled
)
SELECT customer_id, currency, month, CAST(opening_mrr AS BIGINT) AS opening_mrr,
    CAST(closing_mrr AS BIGINT) AS closing_mrr,
    CAST(closing_mrr - opening_mrr AS BIGINT) AS mrr_change,
    CASE WHEN opening_mrr = 0 AND closing_mrr > 0 AND month = first_paid_month THEN 'new'
         WHEN opening_mrr = 0 AND closing_mrr > 0 THEN 'reactivation'
         WHEN opening_mrr > 0 AND closing_mrr = 0 THEN 'churn'
         WHEN closing_mrr > opening_mrr THEN 'expansion'
         WHEN closing_mrr < opening_mrr THEN 'contraction'
         ELSE 'none' END AS movement
FROM opened WHERE opening_mrr <> 0 OR closing_mrr <> 0
"""

_COMPONENTS = ("opening_mrr", "new_mrr", "expansion_mrr", "reactivation_mrr", "contraction_mrr",
               "churned_mrr", "closing_mrr")  # fmt: skip
_CONVERTED = ",\n    ".join(
    f"CAST(CAST(b.{c} AS DECIMAL(13, 0)) * fx.to_reporting AS DECIMAL(38, 12)) AS {c}_reporting"
    for c in _COMPONENTS
)

BRIDGE_SQL = f"""
WITH m AS ({MOVEMENTS_SQL}),
b AS (
    SELECT month, currency, sum(opening_mrr)::BIGINT AS opening_mrr,
        coalesce(sum(mrr_change) FILTER (movement = 'new'), 0)::BIGINT AS new_mrr,
        coalesce(sum(mrr_change) FILTER (movement = 'expansion'), 0)::BIGINT AS expansion_mrr,
        coalesce(sum(mrr_change) FILTER (movement = 'reactivation'), 0)::BIGINT
            AS reactivation_mrr,
        coalesce(-sum(mrr_change) FILTER (movement = 'contraction'), 0)::BIGINT
            AS contraction_mrr,
        coalesce(-sum(mrr_change) FILTER (movement = 'churn'), 0)::BIGINT AS churned_mrr,
        sum(closing_mrr)::BIGINT AS closing_mrr,
        count(*) FILTER (opening_mrr > 0) AS customers_opening,
        count(*) FILTER (movement = 'new') AS customers_new,
        count(*) FILTER (movement = 'reactivation') AS customers_reactivated,
        count(*) FILTER (movement = 'churn') AS customers_churned,
        count(*) FILTER (closing_mrr > 0) AS customers_closing
    FROM m GROUP BY ALL
),
last_day AS (
    SELECT CAST(date_trunc('month', rate_date) AS DATE) AS month, max(rate_date) AS rate_date
    FROM oltp.fx_rates GROUP BY 1
),
fx AS (
    SELECT d.month, f.currency, CAST(round(CAST(f.usd_per_unit AS DOUBLE)
        / CAST(r.usd_per_unit AS DOUBLE) / pow(10.0, CAST(c.exponent AS DOUBLE)), 12)
        AS DECIMAL(24, 12)) AS to_reporting
    FROM last_day d JOIN oltp.fx_rates f USING (rate_date)
    JOIN oltp.fx_rates r ON r.rate_date = d.rate_date AND r.currency = {_REPORTING}
    JOIN oltp.currencies c ON c.code = f.currency
)
SELECT b.*, {_REPORTING} AS reporting_currency,
    CAST(fx.to_reporting AS DECIMAL(38, 12)) AS to_reporting,
    {_CONVERTED}
FROM b JOIN fx USING (month, currency)
"""

HEALTH_SQL = f"""
WITH a AS (
    SELECT coalesce(p.card_brand, 'unknown') AS card_brand,
        coalesce(p.card_funding, 'unknown') AS card_funding,
        coalesce(p.card_country, 'unknown') AS card_country,
        o.network_status IN {SENT_TO_NETWORK} AS sent, o.network_status IN {APPROVED} AS ok,
        a.is_success
    FROM fact_payment_attempts a JOIN dim_payment_outcome o USING (payment_outcome_key)
    LEFT JOIN dim_payment_method p USING (payment_method_key)
),
g AS (
    SELECT CASE WHEN grouping(card_brand) = 0 THEN 'card_brand'
                WHEN grouping(card_funding) = 0 THEN 'card_funding'
                ELSE 'card_country' END AS dimension,
        coalesce(card_brand, card_funding, card_country) AS value, count(*) AS attempts,
        count(*) FILTER (sent) AS sent_to_network, count(*) FILTER (ok) AS approved,
        count(*) FILTER (is_success) AS succeeded
    FROM a GROUP BY GROUPING SETS ((card_brand), (card_funding), (card_country))
)
SELECT *, CAST(CASE WHEN sent_to_network = 0 THEN NULL
    ELSE round(CAST(approved AS DOUBLE) / CAST(sent_to_network AS DOUBLE), 10) END
    AS DECIMAL(20, 10)) AS authorisation_rate
FROM g
"""

_AS_OF_DAY = """(SELECT CAST(max(as_of) AT TIME ZONE 'UTC' AS DATE) FROM warehouse_builds)"""

BALANCE_SQL = """
SELECT b.balance_transaction_id, cd.date AS created_date, ad.date AS available_date, b.type,
    b.reporting_category, b.status, b.source_id, b.currency, b.amount, b.fee, b.net,
    b.exchange_rate, b.reporting_currency, b.amount_reporting, b.fee_reporting,
    b.net_reporting,
    CASE WHEN b.reporting_category = 'charge' THEN a.amount
         WHEN r.refund_id IS NOT NULL THEN CASE WHEN b.amount < 0 THEN -r.amount ELSE r.amount END
         WHEN d.dispute_id IS NOT NULL THEN CASE WHEN b.amount < 0 THEN -d.amount ELSE d.amount END
    END AS customer_facing_amount,
    CASE WHEN b.reporting_category = 'charge' THEN a.currency
         WHEN r.refund_id IS NOT NULL THEN r.currency
         WHEN d.dispute_id IS NOT NULL THEN d.currency
    END AS customer_facing_currency,
    b.customer_id, c.country AS customer_country, c.region AS customer_region,
    c.plan_tier AS customer_plan_tier, c.email_hash AS customer_email_hash, b.charge_id,
    a.amount AS charge_amount, a.currency AS charge_currency, a.is_success AS charge_is_success,
    a.payment_intent_id, a.payment_method_key, r.refund_id, r.status AS refund_status,
    r.reason AS refund_reason, d.dispute_id, d.status AS dispute_status,
    d.reason AS dispute_reason, b.payout_id, p.status AS payout_status,
    rd.date AS payout_arrival_date
FROM fact_balance_transactions b
LEFT JOIN dim_customer c ON c.customer_id = b.customer_id AND c.is_current
LEFT JOIN fact_payment_attempts a ON a.charge_id = b.charge_id
LEFT JOIN fact_refunds r ON r.refund_id = b.source_id
LEFT JOIN fact_disputes d ON d.dispute_id = b.source_id
LEFT JOIN fact_payouts p ON p.payout_id = b.payout_id
LEFT JOIN dim_date cd ON cd.date_key = b.created_date_key
LEFT JOIN dim_date ad ON ad.date_key = b.available_date_key
LEFT JOIN dim_date rd ON rd.date_key = p.arrival_date_key
"""

# The ledger of both overviews: each balance transaction on its day, signed per category.
_LEDGER = """
SELECT b.customer_id, b.currency, d.date, b.reporting_category AS cat, b.amount, b.fee, b.net
FROM fact_balance_transactions b JOIN dim_date d ON d.date_key = b.created_date_key
"""

CUSTOMER_SQL = f"""
WITH led AS ({_LEDGER}),
money AS (
    SELECT customer_id, currency,
        sum(amount) FILTER (cat = 'charge') AS total_sales,
        -sum(amount) FILTER (cat = 'refund') AS total_refunds,
        -sum(amount) FILTER (cat IN ('dispute', 'dispute_reversal')) AS total_disputes,
        sum(fee) AS total_fees, sum(net) AS total_net,
        count(*) FILTER (cat = 'charge') AS total_sales_count,
        count(*) FILTER (cat = 'refund') AS total_refund_count,
        sum(amount) FILTER (cat = 'charge' AND date >= {_LAST_MONTH}) AS sales_this_month,
        -sum(amount) FILTER (cat = 'refund' AND date >= {_LAST_MONTH}) AS refunds_this_month,
        sum(net) FILTER (date >= {_LAST_MONTH}) AS net_this_month,
        min(date) FILTER (cat = 'charge') AS first_sale_date,
        max(date) FILTER (cat = 'charge') AS most_recent_sale_date
    FROM led WHERE customer_id IS NOT NULL GROUP BY ALL
),
failed AS (
    SELECT customer_id, currency, count(*) AS failed_charge_count,
        sum(amount) AS failed_charge_amount,
        count(*) FILTER (CAST(created AS DATE) >= {_LAST_MONTH})
            AS failed_charge_count_this_month
    FROM fact_payment_attempts WHERE NOT is_success AND customer_id IS NOT NULL GROUP BY ALL
)
SELECT customer_id, currency,
    {", ".join(f"coalesce({c}, 0)::BIGINT AS {c}" for c in (
        "total_sales", "total_refunds", "total_disputes", "total_fees", "total_net",
        "total_sales_count", "total_refund_count", "sales_this_month", "refunds_this_month",
        "net_this_month", "failed_charge_count", "failed_charge_amount",
        "failed_charge_count_this_month"))},
    first_sale_date, most_recent_sale_date
FROM money FULL JOIN failed USING (customer_id, currency)
"""  # fmt: skip

_DAY_AMOUNTS = ("sales", "refunds", "disputes", "adjustments", "payouts", "fees", "net",
                "sales_count", "failed_charge_count", "failed_charge_amount")  # fmt: skip

DAILY_SQL = f"""
WITH led AS ({_LEDGER}),
day AS (
    SELECT date, currency, sum(amount) FILTER (cat = 'charge') AS sales,
        -sum(amount) FILTER (cat = 'refund') AS refunds,
        -sum(amount) FILTER (cat IN ('dispute', 'dispute_reversal')) AS disputes,
        sum(amount) FILTER (cat IN ('other_adjustment', 'fee')) AS adjustments,
        sum(amount) FILTER (cat = 'payout') AS payouts, sum(fee) AS fees, sum(net) AS net,
        count(*) FILTER (cat = 'charge') AS sales_count
    FROM led GROUP BY ALL
),
failed AS (
    SELECT CAST(created AS DATE) AS date, currency, count(*) AS failed_charge_count,
        sum(amount) AS failed_charge_amount
    FROM fact_payment_attempts WHERE NOT is_success GROUP BY ALL
),
grid AS (
    SELECT d.date, c.currency, d.iso_year, d.iso_week, d.month_start
    FROM dim_date d, (SELECT currency FROM day UNION SELECT currency FROM failed) c
    WHERE d.date BETWEEN (SELECT min(date) FROM day) AND {_AS_OF_DAY}
),
filled AS (
    SELECT g.*, {", ".join(f"coalesce({c}, 0)::BIGINT AS {c}" for c in _DAY_AMOUNTS)}
    FROM grid g LEFT JOIN day USING (date, currency) LEFT JOIN failed USING (date, currency)
)
SELECT *, CAST(date_trunc('quarter', month_start) AS DATE) AS quarter_start,
    sum(net) OVER (PARTITION BY currency ORDER BY date ROWS UNBOUNDED PRECEDING)::BIGINT
        AS running_balance,
    sum(sales) OVER d30::BIGINT AS rolling_30d_sales,
    sum(refunds) OVER d30::BIGINT AS rolling_30d_refunds,
    sum(net) OVER d30::BIGINT AS rolling_30d_net
FROM filled
WINDOW d30 AS (PARTITION BY currency ORDER BY date
               RANGE BETWEEN INTERVAL 29 DAYS PRECEDING AND CURRENT ROW)
"""  # fmt: skip

PAYOUT_SQL = """
WITH t AS (SELECT * FROM fact_balance_transactions WHERE payout_id IS NOT NULL),
s AS (
    SELECT payout_id, reporting_category, count(*) AS settled_count, sum(amount) AS gross,
        sum(fee) AS fee, sum(net) AS net, sum(net_reporting) AS net_reporting
    FROM t WHERE source_id <> payout_id GROUP BY ALL
),
own AS (SELECT payout_id, sum(amount) AS payout_movement FROM t
        WHERE source_id = payout_id GROUP BY ALL)
SELECT s.payout_id, s.reporting_category, p.currency, p.status AS payout_status, p.automatic,
    p.method, s.settled_count, s.gross::BIGINT AS gross, s.fee::BIGINT AS fee,
    s.net::BIGINT AS net, p.amount AS payout_amount, own.payout_movement::BIGINT
        AS payout_movement,
    p.reporting_currency, CAST(s.net_reporting AS DECIMAL(20, 6)) AS net_reporting,
    p.amount_reporting AS payout_amount_reporting, cd.date AS payout_created_date,
    ad.date AS payout_arrival_date
FROM s JOIN fact_payouts p USING (payout_id) LEFT JOIN own USING (payout_id)
LEFT JOIN dim_date cd ON cd.date_key = p.created_date_key
LEFT JOIN dim_date ad ON ad.date_key = p.arrival_date_key
"""

SQLS = {"mart_mrr_movements": MOVEMENTS_SQL, "mart_mrr_bridge": BRIDGE_SQL,
        "mart_payment_health": HEALTH_SQL, "mart_balance_transactions": BALANCE_SQL,
        "mart_customer_overview": CUSTOMER_SQL, "mart_daily_overview": DAILY_SQL,
        "mart_payout_reconciliation": PAYOUT_SQL}  # fmt: skip
KEYS = {"mart_mrr_movements": ["customer_id", "currency", "month"],
        "mart_mrr_bridge": ["month", "currency"],
        "mart_payment_health": ["dimension", "value"],
        "mart_balance_transactions": ["balance_transaction_id"],
        "mart_customer_overview": ["customer_id", "currency"],
        "mart_daily_overview": ["date", "currency"],
        "mart_payout_reconciliation": ["payout_id", "reporting_category"]}  # fmt: skip


# --- Ibis: the build's mart steps -----------------------------------------------------------


def _nullable(table: ir.Table) -> ir.Table:
    """As the build reads warehouse tables for the marts (every column nullable)."""
    return table.cast({c: table[c].type().copy(nullable=True) for c in table.columns})


def star_tables(con: Any) -> dict[str, ir.Table]:
    """The marts' inputs, looked up once (as the build holds them): the star's tables and
    the OLTP's ``fx_rates`` and ``currencies``."""
    t = {n: _nullable(con.table(n)) for n in (
        "fact_subscription_item_months", "dim_date", "fact_payment_attempts",
        "dim_payment_method", "dim_payment_outcome", "fact_balance_transactions",
        "fact_refunds", "fact_disputes", "fact_payouts", "dim_customer")}  # fmt: skip
    for n in ("fx_rates", "currencies"):
        t[n] = con.table(n, database=("oltp", "main"))
    return t


def ibis_marts(t: dict[str, ir.Table], params: BuildParams) -> dict[str, Callable[[], ir.Table]]:
    """Each mart's expression, as :mod:`paymodel.olap.marts` builds it, conformed to the model."""

    def movements() -> ir.Table:
        return conform(
            M.mart_mrr_movements(t["fact_subscription_item_months"], t["dim_date"], params),
            MARTS.table("mart_mrr_movements"),
        )

    def bridge() -> ir.Table:
        b = M.mart_mrr_bridge(movements(), t["fx_rates"], t["currencies"], params)
        return conform(b, MARTS.table("mart_mrr_bridge"))

    def health() -> ir.Table:
        h = M.mart_payment_health(
            t["fact_payment_attempts"], t["dim_payment_method"], t["dim_payment_outcome"]
        )
        return conform(h, MARTS.table("mart_payment_health"))

    def balance() -> ir.Table:
        b = M.mart_balance_transactions(
            t["fact_balance_transactions"], t["fact_payment_attempts"], t["fact_refunds"],
            t["fact_disputes"], t["fact_payouts"], t["dim_customer"], t["dim_date"],
        )  # fmt: skip
        return conform(b, MARTS.table("mart_balance_transactions"))

    def customers() -> ir.Table:
        c = M.mart_customer_overview(
            t["fact_balance_transactions"], t["fact_payment_attempts"], t["dim_date"], params
        )
        return conform(c, MARTS.table("mart_customer_overview"))

    def daily() -> ir.Table:
        d = M.mart_daily_overview(
            t["fact_balance_transactions"], t["fact_payment_attempts"], t["dim_date"], params
        )
        return conform(d, MARTS.table("mart_daily_overview"))

    def payouts() -> ir.Table:
        p = M.mart_payout_reconciliation(
            t["fact_balance_transactions"], t["fact_payouts"], t["dim_date"]
        )
        return conform(p, MARTS.table("mart_payout_reconciliation"))

    return {"mart_mrr_movements": movements, "mart_mrr_bridge": bridge,
            "mart_payment_health": health, "mart_balance_transactions": balance,
            "mart_customer_overview": customers, "mart_daily_overview": daily,
            "mart_payout_reconciliation": payouts}  # fmt: skip


# --- pandas ------------------------------------------------------------------------------


def movements_pandas(items: pd.DataFrame, months: list) -> pd.DataFrame:
    closing = items.groupby(["customer_id", "currency", "month"], as_index=False).mrr.sum()
    closing = closing.rename(columns={"mrr": "closing_mrr"})
    first = (closing[closing.closing_mrr > 0].groupby(["customer_id", "currency"], as_index=False)
             .month.min().rename(columns={"month": "first_paid_month"}))  # fmt: skip
    grid = first.merge(pd.DataFrame({"month": months}), how="cross")
    grid = grid[grid.month >= grid.first_paid_month]
    f = grid.merge(closing, on=["customer_id", "currency", "month"], how="left")
    f["closing_mrr"] = f.closing_mrr.fillna(0).astype("int64")
    f = f.sort_values(["customer_id", "currency", "month"])
    f["opening_mrr"] = f.groupby(["customer_id", "currency"]).closing_mrr.shift(1).fillna(0)
    f["opening_mrr"] = f.opening_mrr.astype("int64")
    f = f[(f.opening_mrr != 0) | (f.closing_mrr != 0)].copy()
    o, c = f.opening_mrr, f.closing_mrr
    f["mrr_change"] = c - o
    f["movement"] = np.select(
        [(o == 0) & (c > 0) & (f.month == f.first_paid_month), (o == 0) & (c > 0),
         (o > 0) & (c == 0), c > o, c < o],
        ["new", "reactivation", "churn", "expansion", "contraction"], default="none",
    )  # fmt: skip
    return f[["customer_id", "currency", "month", "opening_mrr", "closing_mrr", "mrr_change",
              "movement"]]  # fmt: skip


def _round(x: pd.Series, places: int) -> list[Decimal | None]:
    """DuckDB's ``CAST(round(x, places) AS DECIMAL(_, places))`` of a double: the half away
    from zero of ``x * 10**places`` (C's ``round``; numpy rounds half to even), then the
    nearest decimal of that many places."""
    m = 10.0**places
    r = np.sign(x) * np.floor(np.abs(x) * m + 0.5) / m
    q = Decimal(1).scaleb(-places)
    return [None if pd.isna(v) else Decimal(repr(v)).quantize(q) for v in r]


def monthly_fx_pandas(
    fx_rates: pd.DataFrame, currencies: pd.DataFrame, reporting: str
) -> pd.DataFrame:
    fx = fx_rates.assign(month=fx_rates.rate_date.dt.to_period("M").dt.start_time)
    last = fx.groupby("month", as_index=False).rate_date.max()
    fx = fx.drop(columns="month").merge(last, on="rate_date")
    rep = fx[fx.currency == reporting][["rate_date", "usd_per_unit"]]
    j = fx.merge(rep, on="rate_date", suffixes=("", "_rep")).merge(
        currencies.rename(columns={"code": "currency"}), on="currency"
    )
    factor = (j.usd_per_unit.astype(float) / j.usd_per_unit_rep.astype(float)
              / 10.0 ** j.exponent.astype(float))  # fmt: skip
    j["to_reporting"] = _round(factor, 12)
    return j[["month", "currency", "to_reporting"]]


def bridge_pandas(m: pd.DataFrame, fx: pd.DataFrame, reporting: str) -> pd.DataFrame:
    m = m.copy()
    for kind, col, sign in (
        ("new", "new_mrr", 1), ("expansion", "expansion_mrr", 1),
        ("reactivation", "reactivation_mrr", 1), ("contraction", "contraction_mrr", -1),
        ("churn", "churned_mrr", -1),
    ):  # fmt: skip
        m[col] = np.where(m.movement == kind, sign * m.mrr_change, 0)
    m["customers_opening"] = m.opening_mrr > 0
    m["customers_new"] = m.movement == "new"
    m["customers_reactivated"] = m.movement == "reactivation"
    m["customers_churned"] = m.movement == "churn"
    m["customers_closing"] = m.closing_mrr > 0
    counts = ["customers_opening", "customers_new", "customers_reactivated",
              "customers_churned", "customers_closing"]  # fmt: skip
    b = m.groupby(["month", "currency"], as_index=False)[[*_COMPONENTS, *counts]].sum()
    b = b.merge(fx, on=["month", "currency"])
    b["reporting_currency"] = reporting
    for c in _COMPONENTS:  # Decimal arithmetic, exact, as the SQL's DECIMAL(38, 12)
        b[f"{c}_reporting"] = [int(x) * f for x, f in zip(b[c], b.to_reporting, strict=True)]
    return b


def health_pandas(
    attempts: pd.DataFrame, outcomes: pd.DataFrame, pms: pd.DataFrame
) -> pd.DataFrame:
    j = attempts.merge(outcomes, on="payment_outcome_key").merge(
        pms, on="payment_method_key", how="left"
    )
    j["sent"] = j.network_status.isin(SENT_TO_NETWORK)
    j["ok"] = j.network_status.isin(APPROVED)
    parts = []
    for dim in ("card_brand", "card_funding", "card_country"):
        r = (
            j.assign(value=j[dim].fillna("unknown"))
            .groupby("value", as_index=False)
            .agg(
                attempts=("sent", "size"),
                sent_to_network=("sent", "sum"),
                approved=("ok", "sum"),
                succeeded=("is_success", "sum"),
            )
        )
        r.insert(0, "dimension", dim)
        parts.append(r)
    out = pd.concat(parts, ignore_index=True)
    sent = out.sent_to_network.astype(float)
    out["authorisation_rate"] = _round(out.approved / sent.where(sent != 0), 10)
    return out


def balance_pandas(
    bt: pd.DataFrame, charges: pd.DataFrame, refunds: pd.DataFrame, disputes: pd.DataFrame,
    payouts: pd.DataFrame, customers: pd.DataFrame, day: pd.Series,
) -> pd.DataFrame:  # fmt: skip
    """``day`` maps a date key to its date. Every join is on the other table's key, so the
    ledger keeps one row per balance transaction."""
    cu = customers[customers.is_current].drop(columns="is_current")
    cu = cu.rename(columns={"country": "customer_country", "region": "customer_region",
                            "plan_tier": "customer_plan_tier", "email_hash": "customer_email_hash"})  # fmt: skip
    ch = charges.rename(columns={"amount": "charge_amount", "currency": "charge_currency",
                                 "is_success": "charge_is_success"})  # fmt: skip
    re = refunds.rename(columns={"amount": "refund_amount", "currency": "refund_currency",
                                 "status": "refund_status", "reason": "refund_reason"})  # fmt: skip
    dp = disputes.rename(columns={"amount": "dispute_amount", "currency": "dispute_currency",
                                  "status": "dispute_status", "reason": "dispute_reason"})  # fmt: skip
    po = payouts.rename(columns={"status": "payout_status"})
    j = (bt.merge(cu, on="customer_id", how="left").merge(ch, on="charge_id", how="left")
         .merge(re, left_on="source_id", right_on="refund_id", how="left")
         .merge(dp, left_on="source_id", right_on="dispute_id", how="left")
         .merge(po, on="payout_id", how="left"))  # fmt: skip
    j["created_date"] = j.created_date_key.map(day)
    j["available_date"] = j.available_date_key.map(day)
    j["payout_arrival_date"] = j.arrival_date_key.map(day)
    sign = np.where(j.amount < 0, -1, 1)
    is_charge, is_refund, is_dispute = (
        j.reporting_category == "charge",
        j.refund_id.notna(),
        j.dispute_id.notna(),
    )
    j["customer_facing_amount"] = np.select(
        [is_charge, is_refund, is_dispute],
        [j.charge_amount, sign * j.refund_amount, sign * j.dispute_amount], default=np.nan,
    )  # fmt: skip
    j["customer_facing_currency"] = np.select(
        [is_charge, is_refund, is_dispute],
        [j.charge_currency, j.refund_currency, j.dispute_currency], default=None,
    )  # fmt: skip
    return j.drop(columns=["created_date_key", "available_date_key", "arrival_date_key",
                           "refund_amount", "refund_currency", "dispute_amount",
                           "dispute_currency"])  # fmt: skip


def ledger_pandas(bt: pd.DataFrame, day: pd.Series) -> pd.DataFrame:
    """Each balance transaction on its day (a datetime), with its signed category amounts."""
    led = bt.assign(date=bt.created_date_key.map(day)).dropna(subset="date")  # inner join
    cat, amount = led.reporting_category, led.amount
    return led.assign(
        sales=amount.where(cat == "charge", 0), refunds=(-amount).where(cat == "refund", 0),
        disputes=(-amount).where(cat.isin(["dispute", "dispute_reversal"]), 0),
        adjustments=amount.where(cat.isin(["other_adjustment", "fee"]), 0),
        payouts=amount.where(cat == "payout", 0), is_sale=cat == "charge",
        is_refund=cat == "refund",
    )  # fmt: skip


def customer_pandas(led: pd.DataFrame, attempts: pd.DataFrame, month: pd.Timestamp) -> pd.DataFrame:
    keys = ["customer_id", "currency"]
    led = led[led.customer_id.notna()]
    now = led.date >= month
    led = led.assign(sales_now=led.sales.where(now, 0), refunds_now=led.refunds.where(now, 0),
                     net_now=led.net.where(now, 0), sale_date=led.date.where(led.is_sale))  # fmt: skip
    money = led.groupby(keys).agg(
        total_sales=("sales", "sum"), total_refunds=("refunds", "sum"),
        total_disputes=("disputes", "sum"), total_fees=("fee", "sum"), total_net=("net", "sum"),
        total_sales_count=("is_sale", "sum"), total_refund_count=("is_refund", "sum"),
        sales_this_month=("sales_now", "sum"), refunds_this_month=("refunds_now", "sum"),
        net_this_month=("net_now", "sum"), first_sale_date=("sale_date", "min"),
        most_recent_sale_date=("sale_date", "max"),
    )  # fmt: skip
    f = attempts[~attempts.is_success & attempts.customer_id.notna()]
    f = f.assign(now=f.created >= month.tz_localize("UTC"))
    failed = f.groupby(keys).agg(
        failed_charge_count=("amount", "size"),
        failed_charge_amount=("amount", "sum"),
        failed_charge_count_this_month=("now", "sum"),
    )
    out = money.join(failed, how="outer").reset_index()
    counts = [
        c for c in out.columns if c not in (*keys, "first_sale_date", "most_recent_sale_date")
    ]
    out[counts] = out[counts].fillna(0).astype("int64")
    return out


def daily_pandas(
    led: pd.DataFrame, attempts: pd.DataFrame, calendar: pd.DataFrame, as_of_day: pd.Timestamp
) -> pd.DataFrame:
    """``calendar``: ``dim_date``'s date (a datetime), ISO year and week and month start."""
    keys = ["date", "currency"]
    day = led.groupby(keys).agg(
        sales=("sales", "sum"), refunds=("refunds", "sum"), disputes=("disputes", "sum"),
        adjustments=("adjustments", "sum"), payouts=("payouts", "sum"), fees=("fee", "sum"),
        net=("net", "sum"), sales_count=("is_sale", "sum"),
    )  # fmt: skip
    f = attempts[~attempts.is_success]
    f = f.assign(date=f.created.dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize())
    failed = f.groupby(keys).agg(
        failed_charge_count=("amount", "size"), failed_charge_amount=("amount", "sum")
    )
    currencies = pd.DataFrame({"currency": sorted(
        set(day.index.get_level_values("currency")) | set(failed.index.get_level_values("currency"))
    )})  # fmt: skip
    first = day.index.get_level_values("date").min()
    cal = calendar[(calendar.date >= first) & (calendar.date <= as_of_day)]
    grid = cal.merge(currencies, how="cross")
    out = grid.join(day, on=keys).join(failed, on=keys)
    out[list(_DAY_AMOUNTS)] = out[list(_DAY_AMOUNTS)].fillna(0).astype("int64")
    out = out.sort_values(["currency", "date"], ignore_index=True)
    out["quarter_start"] = out.month_start.dt.to_period("Q").dt.start_time
    by = out.groupby("currency")
    out["running_balance"] = by.net.cumsum()
    # a 30-day window by time (every day is present, so also 30 rows); the groupby's
    # result is in (currency, date) order, the frame's order since it is sorted so
    rolled = (
        out.set_index("date").groupby("currency")[["sales", "refunds", "net"]].rolling("30D").sum()
    )
    for c in ("sales", "refunds", "net"):
        out[f"rolling_30d_{c}"] = rolled[c].to_numpy().astype("int64")
    return out


def payout_pandas(bt: pd.DataFrame, payouts: pd.DataFrame, day: pd.Series) -> pd.DataFrame:
    t = bt[bt.payout_id.notna()]
    own = t.source_id == t.payout_id  # the payout's own withdrawal
    settled = t[~own & t.source_id.notna()]  # as SQL's <>, which drops a NULL source_id
    s = settled.groupby(["payout_id", "reporting_category"], as_index=False).agg(
        settled_count=("amount", "size"), gross=("amount", "sum"), fee=("fee", "sum"),
        net=("net", "sum"),
        # Decimal objects: pandas adds them one by one in Python (exact, as the SQL's sum)
        net_reporting=("net_reporting", "sum"),
    )  # fmt: skip
    moves = t[own].groupby("payout_id").amount.sum().rename("payout_movement")
    po = payouts.rename(columns={"status": "payout_status", "amount": "payout_amount",
                                 "amount_reporting": "payout_amount_reporting"})  # fmt: skip
    j = s.merge(po, on="payout_id").join(moves, on="payout_id")
    j["payout_created_date"] = j.created_date_key.map(day)
    j["payout_arrival_date"] = j.arrival_date_key.map(day)
    return j.drop(columns=["created_date_key", "arrival_date_key"])


def pandas_marts(raw: Any, params: BuildParams) -> dict[str, Callable[[], pd.DataFrame]]:
    """Each mart from the warehouse: read the input columns it needs, then compute."""

    def read(sql: str) -> pd.DataFrame:
        return raw.sql(sql).to_arrow_table().to_pandas()

    def months() -> list:
        last = params.as_of.date().replace(day=1)
        d = read("SELECT DISTINCT month_start FROM dim_date")
        return sorted(pd.to_datetime(d.month_start[d.month_start <= last]))

    def movements() -> pd.DataFrame:
        items = read("SELECT customer_id, currency, month, mrr FROM fact_subscription_item_months")
        return movements_pandas(items.assign(month=pd.to_datetime(items.month)), months())

    def bridge() -> pd.DataFrame:
        fx = read("SELECT rate_date, currency, usd_per_unit FROM oltp.fx_rates")
        fx["rate_date"] = pd.to_datetime(fx.rate_date)
        cur = read("SELECT code, exponent FROM oltp.currencies")
        r = params.reporting_currency
        return bridge_pandas(movements(), monthly_fx_pandas(fx, cur, r), r)

    def health() -> pd.DataFrame:
        return health_pandas(
            read("SELECT payment_outcome_key, payment_method_key, is_success "
                 "FROM fact_payment_attempts"),
            read("SELECT payment_outcome_key, network_status FROM dim_payment_outcome"),
            read("SELECT payment_method_key, card_brand, card_funding, card_country "
                 "FROM dim_payment_method"),
        )  # fmt: skip

    def days() -> pd.Series:
        d = read("SELECT date_key, date FROM dim_date")
        return pd.Series(pd.to_datetime(d.date).to_numpy(), index=d.date_key)

    def bts(columns: str) -> pd.DataFrame:
        return read(f"SELECT {columns} FROM fact_balance_transactions")

    def balance() -> pd.DataFrame:
        return balance_pandas(
            bts("balance_transaction_id, type, reporting_category, source_id, payout_id, "
                "charge_id, customer_id, created_date_key, available_date_key, currency, "
                "reporting_currency, status, exchange_rate, amount, fee, net, "
                "amount_reporting, fee_reporting, net_reporting"),
            read("SELECT charge_id, amount, currency, is_success, payment_intent_id, "
                 "payment_method_key FROM fact_payment_attempts"),
            read("SELECT refund_id, amount, currency, status, reason FROM fact_refunds"),
            read("SELECT dispute_id, amount, currency, status, reason FROM fact_disputes"),
            read("SELECT payout_id, status, arrival_date_key FROM fact_payouts"),
            read("SELECT customer_id, is_current, country, region, plan_tier, email_hash "
                 "FROM dim_customer"),
            days(),
        )  # fmt: skip

    def ledger() -> pd.DataFrame:
        cols = "customer_id, currency, created_date_key, reporting_category, amount, fee, net"
        return ledger_pandas(bts(cols), days())

    def failed() -> pd.DataFrame:
        return read("SELECT customer_id, currency, created, amount, is_success "
                    "FROM fact_payment_attempts")  # fmt: skip

    def customers() -> pd.DataFrame:
        month = pd.Timestamp(params.as_of.date().replace(day=1))
        return customer_pandas(ledger(), failed(), month)

    def daily() -> pd.DataFrame:
        cal = read("SELECT date, iso_year, iso_week, month_start FROM dim_date")
        cal = cal.assign(date=pd.to_datetime(cal.date), month_start=pd.to_datetime(cal.month_start))
        return daily_pandas(ledger(), failed(), cal, pd.Timestamp(params.as_of.date()))

    def payouts() -> pd.DataFrame:
        return payout_pandas(
            bts("payout_id, source_id, reporting_category, amount, fee, net, net_reporting"),
            read("SELECT payout_id, currency, status, automatic, method, created_date_key, "
                 "arrival_date_key, amount, reporting_currency, amount_reporting "
                 "FROM fact_payouts"),
            days(),
        )  # fmt: skip

    return {"mart_mrr_movements": movements, "mart_mrr_bridge": bridge,
            "mart_payment_health": health, "mart_balance_transactions": balance,
            "mart_customer_overview": customers, "mart_daily_overview": daily,
            "mart_payout_reconciliation": payouts}  # fmt: skip


# --- the run -----------------------------------------------------------------------------


def _best(fns: list[Callable[[], pd.DataFrame]], repeat: int) -> list[tuple[float, pd.DataFrame]]:
    """The best time and the result of each function, run in turn ``repeat`` times over
    (interleaved, so that a burst of load on the machine hits all of them alike)."""
    times: list[list[float]] = [[] for _ in fns]
    results: list[pd.DataFrame] = [pd.DataFrame() for _ in fns]
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            results[i] = fn()
            times[i].append(time.perf_counter() - t0)
    return [(min(t), r) for t, r in zip(times, results, strict=True)]


def _norm(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """The mart's columns in the model's order, with one representation per type."""
    table = MARTS.table(name)
    assert sorted(df.columns) == sorted(table.column_names), (name, sorted(df.columns))
    df = df[list(table.column_names)].copy()
    for col in table.columns:
        s, sql = df[col.name], col.type.sql
        if sql in ("bigint", "integer", "smallint"):  # a NULL makes a fetched column float
            df[col.name] = s.astype("Int64" if s.isna().any() else "int64")
        elif sql == "date":
            d = pd.to_datetime(s).dt.date
            df[col.name] = d.astype(object).where(d.notna(), None)
        elif sql == "decimal":  # exact: as Decimal, normalised (1.50 == 1.5)
            df[col.name] = [None if v is None or pd.isna(v) else Decimal(v).normalize()
                            for v in s]  # fmt: skip
        else:  # one NULL (None) for NaN, NA and None
            df[col.name] = s.astype(object).where(s.notna(), None)
    return df.sort_values(KEYS[name]).reset_index(drop=True)


def _params(raw: Any) -> BuildParams:
    as_of, currency, fiscal = raw.sql(
        "SELECT as_of, reporting_currency, fiscal_year_start_month FROM warehouse_builds "
        "ORDER BY build_number DESC LIMIT 1"
    ).fetchone()
    return BuildParams(as_of.astimezone(UTC), currency, int(fiscal))


def run(scale: float, repeat: int, root: Path, months: int, rebuild: bool) -> list[dict[str, Any]]:
    oltp = prepare(scale, months, root)
    wh = root / f"marts-{scale}" / "warehouse.duckdb"
    if rebuild or not wh.exists():
        wh.parent.mkdir(parents=True, exist_ok=True)
        wh.unlink(missing_ok=True)
        build_warehouse(oltp, wh, pii_key=resolve_pii_key(demo=True), progress=False)
    con = ibis.duckdb.connect(str(wh), read_only=True)
    con.raw_sql("SET enable_progress_bar = false")
    con.attach(oltp, name="oltp", read_only=True)
    raw = con.con
    params = _params(raw)
    exprs, pandas_fns = ibis_marts(star_tables(con), params), pandas_marts(raw, params)
    out = []
    for name, sql in SQLS.items():
        expr = exprs[name]()
        compiled, schema = con.compile(expr), expr.schema().to_pyarrow()
        (t_ibis, r_ibis), (t_exec, _), (t_sql, r_sql), (t_pd, r_pd) = _best([
            # Ibis: build the expression, compile, execute, fetch, as the build does
            lambda e=exprs[name]: con.to_pyarrow(e()).to_pandas(),
            # of which executing Ibis's SQL, compiled beforehand (not a target: a diagnosis).
            # Ibis's SQL leaves a sum of BIGINTs a HUGEINT (Arrow decimal128(38, 0)), which
            # to_pyarrow casts to the expression's int64 in Arrow; fetched as it comes, each
            # value would become a Python Decimal in to_pandas (0.3 s of 0.7 s for the
            # customer overview at scale 10), which is no part of the Ibis time.
            lambda c=compiled, t=schema: raw.sql(c).to_arrow_table().cast(t).to_pandas(),
            lambda s=sql: raw.sql(s).to_arrow_table().to_pandas(),
            pandas_fns[name],
        ], repeat)  # fmt: skip
        a, b, c = (_norm(r, name) for r in (r_ibis, r_sql, r_pd))
        assert len(a) > 0, name
        pd.testing.assert_frame_equal(a, b, check_dtype=False, obj=f"{name}: ibis vs sql")
        pd.testing.assert_frame_equal(a, c, check_dtype=False, obj=f"{name}: ibis vs pandas")
        out.append({"scale": scale, "mart": name, "rows": len(a), "ibis_s": t_ibis,
                    "ibis_sql_exec_s": t_exec, "sql_s": t_sql, "pandas_s": t_pd, "ibis_over_sql": t_ibis / t_sql,
                    "pandas_over_ibis": t_pd / t_ibis})  # fmt: skip
    con.disconnect()
    return out


def total(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The marts of one scale together: each column's seconds summed, the ratios of the
    sums (what building all of them costs each way)."""
    t = {k: sum(r[k] for r in rows) for k in ("rows", "ibis_s", "ibis_sql_exec_s", "sql_s",
                                              "pandas_s")}  # fmt: skip
    return {"scale": rows[0]["scale"], "mart": "total", **t, "ibis_over_sql": t["ibis_s"] / t["sql_s"],
            "pandas_over_ibis": t["pandas_s"] / t["ibis_s"]}  # fmt: skip


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def _print(r: dict[str, Any]) -> None:
    print(f"{r['scale']:>5g} {r['mart']:26} {r['rows']:>9,} {r['ibis_s']:>7.3f} "
          f"{r['ibis_sql_exec_s']:>7.3f} {r['sql_s']:>7.3f} {r['pandas_s']:>8.3f} "
          f"{r['ibis_over_sql']:>8.2f}x "
          f"{_verdict(r['ibis_over_sql'] <= SQL_TARGET):8} {r['pandas_over_ibis']:>11.2f}x "
          f"{_verdict(r['pandas_over_ibis'] >= PANDAS_TARGET):6}", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--months", type=int, default=24, help="months of a generated OLTP")
    parser.add_argument("--out", type=Path, default=BUILD_DIR / "bench")
    parser.add_argument("--rebuild", action="store_true", help="rebuild existing warehouses")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for scale in args.scales:  # each scale's rows printed as soon as they are measured
        part = run(scale, args.repeat, args.out, args.months, args.rebuild)
        part.append(total(part))
        if not rows:
            print(f"{'scale':>5} {'mart':26} {'rows':>9} {'ibis s':>7} {'(exec)':>7} "
                  f"{'sql s':>7} {'pandas s':>8} {'ibis/sql':>9} {'(<=1.3x)':8} "
                  f"{'pandas/ibis':>12} {'(>=5x)':6}")  # fmt: skip
        for r in part:
            _print(r)
        rows += part
    (args.out / "bench_marts.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
