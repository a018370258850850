"""The marts through Ibis, against the same marts in hand-written DuckDB SQL and in pandas.

For each scale, the OLTP database of :func:`bench_olap.prepare` (``<out>/oltp-<scale>.duckdb``,
generated if missing, so both benchmarks share it) is built into a warehouse with its marts
(``<out>/marts-<scale>/warehouse.duckdb``, reused if present; ``--rebuild`` to redo it).
Three marts are then recomputed from the star's tables, each three ways:

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
Its ``(exec)`` column is the part of the Ibis time spent executing Ibis's compiled SQL
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

SQLS = {"mart_mrr_movements": MOVEMENTS_SQL, "mart_mrr_bridge": BRIDGE_SQL,
        "mart_payment_health": HEALTH_SQL}  # fmt: skip
KEYS = {"mart_mrr_movements": ["customer_id", "currency", "month"],
        "mart_mrr_bridge": ["month", "currency"],
        "mart_payment_health": ["dimension", "value"]}  # fmt: skip


# --- Ibis: the build's mart steps -----------------------------------------------------------


def _nullable(table: ir.Table) -> ir.Table:
    """As the build reads warehouse tables for the marts (every column nullable)."""
    return table.cast({c: table[c].type().copy(nullable=True) for c in table.columns})


def star_tables(con: Any) -> dict[str, ir.Table]:
    """The marts' inputs, looked up once (as the build holds them): the star's tables and
    the OLTP's ``fx_rates`` and ``currencies``."""
    t = {n: _nullable(con.table(n)) for n in (
        "fact_subscription_item_months", "dim_date", "fact_payment_attempts",
        "dim_payment_method", "dim_payment_outcome")}  # fmt: skip
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

    return {"mart_mrr_movements": movements, "mart_mrr_bridge": bridge,
            "mart_payment_health": health}  # fmt: skip


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



def monthly_fx_pandas(fx_rates: pd.DataFrame, currencies: pd.DataFrame, reporting: str) -> pd.DataFrame:
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
        r = j.assign(value=j[dim].fillna("unknown")).groupby("value", as_index=False).agg(
            attempts=("sent", "size"), sent_to_network=("sent", "sum"), approved=("ok", "sum"),
            succeeded=("is_success", "sum"),
        )
        r.insert(0, "dimension", dim)
        parts.append(r)
    out = pd.concat(parts, ignore_index=True)
    sent = out.sent_to_network.astype(float)
    out["authorisation_rate"] = _round(out.approved / sent.where(sent != 0), 10)
    return out


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

    return {"mart_mrr_movements": movements, "mart_mrr_bridge": bridge,
            "mart_payment_health": health}  # fmt: skip


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
        if sql in ("bigint", "integer", "smallint"):
            df[col.name] = s.astype("int64")
        elif sql == "date":
            df[col.name] = pd.to_datetime(s).dt.date
        elif sql == "decimal":  # exact: as Decimal, normalised (1.50 == 1.5)
            df[col.name] = [None if v is None or pd.isna(v) else Decimal(v).normalize()
                            for v in s]  # fmt: skip
        else:
            df[col.name] = s.astype(object)
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
        compiled = con.compile(exprs[name]())
        (t_ibis, r_ibis), (t_exec, _), (t_sql, r_sql), (t_pd, r_pd) = _best([
            # Ibis: build the expression, compile, execute, fetch, as the build does
            lambda e=exprs[name]: con.to_pyarrow(e()).to_pandas(),
            # of which executing Ibis's SQL, compiled beforehand (not a target: a diagnosis)
            lambda c=compiled: raw.sql(c).to_arrow_table().to_pandas(),
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


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


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
    for scale in args.scales:
        rows += run(scale, args.repeat, args.out, args.months, args.rebuild)
    print(f"{'scale':>5} {'mart':19} {'rows':>9} {'ibis s':>7} {'(exec)':>7} {'sql s':>7} "
          f"{'pandas s':>8} {'ibis/sql':>9} {'(<=1.3x)':8} {'pandas/ibis':>12} {'(>=5x)':6}")  # fmt: skip
    for r in rows:
        print(f"{r['scale']:>5g} {r['mart']:19} {r['rows']:>9,} {r['ibis_s']:>7.3f} "
              f"{r['ibis_sql_exec_s']:>7.3f} {r['sql_s']:>7.3f} {r['pandas_s']:>8.3f} "
              f"{r['ibis_over_sql']:>8.2f}x "
              f"{_verdict(r['ibis_over_sql'] <= SQL_TARGET):8} {r['pandas_over_ibis']:>11.2f}x "
              f"{_verdict(r['pandas_over_ibis'] >= PANDAS_TARGET):6}")  # fmt: skip
    (args.out / "bench_marts.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
