"""The marts through Ibis, against the same marts in hand-written DuckDB SQL and in pandas.

For each scale, an account is generated, loaded with its events and built into a
warehouse (star and marts) on DuckDB. Three marts are then recomputed from the star's
tables, each three ways, and the results are checked equal before any time is trusted:

* **Ibis**: the package's transforms (:mod:`paymodel.olap.mrr`, :mod:`paymodel.olap.metrics`),
  compiled to DuckDB SQL and run to an Arrow table;
* **SQL**: the same logic written by hand as one DuckDB query per mart (the baseline);
* **pandas**: the same logic on DataFrames read from the warehouse (the reading is not
  timed, which flatters pandas).

Targets (issue 9): Ibis at most 1.3x the hand-written SQL; at least 5x faster than pandas.
Each timing is the best of ``--repeat`` runs, side by side in one process, as these
machines are noisy; ratios, not seconds, are the result.

Usage::

    python benchmarks/bench_marts.py [--scales 1 10] [--repeat 3] [--out build/bench]

Prints a table and writes ``<out>/bench_marts.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import ibis
import numpy as np
import pandas as pd

from paymodel.olap import build_warehouse, metrics, resolve_pii_key
from paymodel.olap.mrr import month_calendar, mrr_bridge, mrr_movements
from paymodel.oltp.engines import duckdb_engine
from paymodel.oltp.schema import create_schema
from paymodel.paths import BUILD_DIR
from paymodel.synthetic import generate
from paymodel.synthetic.load import load_into_oltp

MOVEMENTS_SQL = """
WITH months AS (SELECT DISTINCT month_start AS month FROM dim_date WHERE month_start <= $last),
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
SELECT customer_id, currency, month, opening_mrr, closing_mrr,
    closing_mrr - opening_mrr AS mrr_change,
    CASE WHEN opening_mrr = 0 AND closing_mrr > 0 AND month = first_paid_month THEN 'new'
         WHEN opening_mrr = 0 AND closing_mrr > 0 THEN 'reactivation'
         WHEN opening_mrr > 0 AND closing_mrr = 0 THEN 'churn'
         WHEN closing_mrr > opening_mrr THEN 'expansion'
         WHEN closing_mrr < opening_mrr THEN 'contraction'
         ELSE 'none' END AS movement
FROM opened WHERE opening_mrr <> 0 OR closing_mrr <> 0
"""

BRIDGE_SQL = f"""
WITH m AS ({MOVEMENTS_SQL})
SELECT month, currency, sum(opening_mrr) AS opening_mrr,
    sum(CASE WHEN movement = 'new' THEN mrr_change ELSE 0 END) AS new_mrr,
    sum(CASE WHEN movement = 'expansion' THEN mrr_change ELSE 0 END) AS expansion_mrr,
    sum(CASE WHEN movement = 'reactivation' THEN mrr_change ELSE 0 END) AS reactivation_mrr,
    sum(CASE WHEN movement = 'contraction' THEN -mrr_change ELSE 0 END) AS contraction_mrr,
    sum(CASE WHEN movement = 'churn' THEN -mrr_change ELSE 0 END) AS churned_mrr,
    sum(closing_mrr) AS closing_mrr
FROM m GROUP BY ALL
"""

HEALTH_SQL = " UNION ALL ".join(
    f"""
    SELECT '{dim}' AS dimension, coalesce(p.{dim}, 'unknown') AS value, count(*) AS attempts,
        count(*) FILTER (o.network_status IN
            ('approved_by_network', 'declined_by_network', 'reversed_after_approval'))
            AS sent_to_network,
        count(*) FILTER (o.network_status IN ('approved_by_network', 'reversed_after_approval'))
            AS approved
    FROM fact_payment_attempts a JOIN dim_payment_outcome o USING (payment_outcome_key)
    LEFT JOIN dim_payment_method p USING (payment_method_key)
    GROUP BY ALL"""
    for dim in ("card_brand", "card_funding", "card_country")
)


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


def bridge_pandas(items: pd.DataFrame, months: list) -> pd.DataFrame:
    m = movements_pandas(items, months)
    for kind, col, sign in (
        ("new", "new_mrr", 1),
        ("expansion", "expansion_mrr", 1),
        ("reactivation", "reactivation_mrr", 1),
        ("contraction", "contraction_mrr", -1),
        ("churn", "churned_mrr", -1),
    ):
        m[col] = np.where(m.movement == kind, sign * m.mrr_change, 0)  # fmt: skip
    cols = ["opening_mrr", "new_mrr", "expansion_mrr", "reactivation_mrr", "contraction_mrr",
            "churned_mrr", "closing_mrr"]  # fmt: skip
    return m.groupby(["month", "currency"], as_index=False)[cols].sum()


def health_pandas(
    attempts: pd.DataFrame, outcomes: pd.DataFrame, pms: pd.DataFrame
) -> pd.DataFrame:
    j = attempts.merge(outcomes, on="payment_outcome_key").merge(
        pms, on="payment_method_key", how="left"
    )
    sent = j.network_status.isin(["approved_by_network", "declined_by_network",
                                  "reversed_after_approval"])  # fmt: skip
    ok = j.network_status.isin(["approved_by_network", "reversed_after_approval"])
    parts = []
    for dim in ("card_brand", "card_funding", "card_country"):
        g = pd.DataFrame({"value": j[dim].fillna("unknown"), "sent": sent, "ok": ok})
        r = g.groupby("value", as_index=False).agg(
            attempts=("sent", "size"), sent_to_network=("sent", "sum"), approved=("ok", "sum")
        )
        r.insert(0, "dimension", dim)
        parts.append(r)
    return pd.concat(parts, ignore_index=True)


# --- the run -----------------------------------------------------------------------------


def _best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def _norm(df: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    df = df.copy()
    for c in df.columns:
        if df[c].dtype.kind in "iub" or c.endswith("_mrr") or c in ("attempts", "approved",
                                                                   "sent_to_network"):  # fmt: skip
            df[c] = df[c].astype("int64")
        elif "month" in c:
            df[c] = pd.to_datetime(df[c])
    return df.sort_values(key).reset_index(drop=True)[sorted(df.columns)]


def _build(scale: float, root: Path) -> tuple[Path, Any]:
    data, oltp, wh = root / "data", root / "oltp.duckdb", root / "warehouse.duckdb"
    for p in (oltp, wh):
        p.unlink(missing_ok=True)
    generate(data, scale=scale, seed=0, progress=False)
    engine = duckdb_engine(oltp)
    create_schema(engine)
    load_into_oltp(data, engine)
    engine.dispose()
    report = build_warehouse(oltp, wh, pii_key=resolve_pii_key(demo=True))
    return wh, report.as_of


def run(scale: float, repeat: int, root: Path) -> list[dict[str, Any]]:
    wh, as_of = _build(scale, root)
    last = as_of.date().replace(day=1)
    con = ibis.duckdb.connect(str(wh), read_only=True)
    raw: duckdb.DuckDBPyConnection = con.con
    dim_date = con.table("dim_date")
    months = month_calendar(dim_date.filter(dim_date.month_start <= last), "month_start")
    items = con.table("fact_subscription_item_months")
    attempts, outcomes = con.table("fact_payment_attempts"), con.table("dim_payment_outcome")
    pms = con.table("dim_payment_method")
    movements = mrr_movements(items, months)
    ibis_exprs = {
        "mart_mrr_movements": movements,
        "mart_mrr_bridge": mrr_bridge(movements).drop(
            "customers_opening", "customers_new", "customers_reactivated", "customers_churned",
            "customers_closing",
        ),
        "mart_payment_health": metrics.mart_payment_health(attempts, pms, outcomes).drop(
            "succeeded", "authorisation_rate"
        ),
    }  # fmt: skip
    sqls = {"mart_mrr_movements": MOVEMENTS_SQL, "mart_mrr_bridge": BRIDGE_SQL,
            "mart_payment_health": HEALTH_SQL}  # fmt: skip
    frames = {n: raw.sql(f"SELECT * FROM {n}").to_arrow_table().to_pandas() for n in (
        "fact_subscription_item_months", "fact_payment_attempts", "dim_payment_outcome",
        "dim_payment_method")}  # fmt: skip
    month_list = sorted(m for (m,) in raw.sql(
        "SELECT DISTINCT month_start FROM dim_date WHERE month_start <= $last", params={"last": last}
    ).fetchall())  # fmt: skip
    month_list = list(pd.to_datetime(month_list))
    fi = frames["fact_subscription_item_months"].assign(month=lambda d: pd.to_datetime(d.month))
    pandas_fns = {
        "mart_mrr_movements": lambda: movements_pandas(fi, month_list),
        "mart_mrr_bridge": lambda: bridge_pandas(fi, month_list),
        "mart_payment_health": lambda: health_pandas(
            frames["fact_payment_attempts"], frames["dim_payment_outcome"],
            frames["dim_payment_method"]),
    }  # fmt: skip
    keys = {"mart_mrr_movements": ["customer_id", "currency", "month"],
            "mart_mrr_bridge": ["month", "currency"],
            "mart_payment_health": ["dimension", "value"]}  # fmt: skip
    out = []
    for name, expr in ibis_exprs.items():
        t_ibis, r_ibis = _best(lambda e=expr: con.to_pyarrow(e).to_pandas(), repeat)
        sql = sqls[name]
        params = {"last": last} if "$last" in sql else None
        t_sql, r_sql = _best(
            lambda s=sql, p=params: raw.sql(s, params=p).to_arrow_table().to_pandas(), repeat
        )
        t_pd, r_pd = _best(pandas_fns[name], repeat)
        a, b, c = (_norm(r, keys[name]) for r in (r_ibis, r_sql, r_pd))
        pd.testing.assert_frame_equal(a, b, check_dtype=False, obj=f"{name}: ibis vs sql")
        pd.testing.assert_frame_equal(a, c, check_dtype=False, obj=f"{name}: ibis vs pandas")
        out.append({"scale": scale, "mart": name, "rows": len(a), "ibis_s": t_ibis,
                    "sql_s": t_sql, "pandas_s": t_pd, "ibis_over_sql": t_ibis / t_sql,
                    "pandas_over_ibis": t_pd / t_ibis})  # fmt: skip
    con.disconnect()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=BUILD_DIR / "bench")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for scale in args.scales:
        rows += run(scale, args.repeat, args.out / f"marts-{scale:g}")
    print(f"{'scale':>6} {'mart':24} {'rows':>9} {'ibis s':>8} {'sql s':>8} {'pandas s':>9} "
          f"{'ibis/sql':>9} {'pandas/ibis':>12}")  # fmt: skip
    for r in rows:
        print(f"{r['scale']:>6g} {r['mart']:24} {r['rows']:>9,} {r['ibis_s']:>8.3f} "
              f"{r['sql_s']:>8.3f} {r['pandas_s']:>9.3f} {r['ibis_over_sql']:>8.2f}x "
              f"{r['pandas_over_ibis']:>11.2f}x")  # fmt: skip
    (args.out / "bench_marts.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
