"""The warehouse build: Ibis against hand-written DuckDB SQL and pandas, scales, incremental.

Measured in one run, side by side (these machines are noisy, so only ratios of the same
run mean anything):

1. **Ibis vs hand-written SQL vs pandas** on the same staged inputs in one in-memory
   DuckDB database: the two largest facts, ``fact_payment_attempts`` and
   ``fact_balance_transactions``, built by their Ibis transforms (compiled and executed
   by DuckDB), by the same logic written by hand as DuckDB SQL, and by pandas on the same
   tables already in memory. The three results are checked equal (rows and sums) before
   any time is reported. Target: Ibis at most 1.3x the hand-written SQL, at least 5x
   faster than pandas.
2. **Full build per scale**: wall time and peak memory (RSS of a child process) of
   ``build_warehouse`` at each ``--scales`` value, so that how cost grows with the data
   shows.
3. **One day's incremental update against a full rebuild** at the largest scale.

Usage::

    python benchmarks/bench_olap.py [--scales 0.1 1] [--months 24] [--out build/bench]

Prints a table and writes ``<out>/bench_olap.json``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import ibis
import pandas as pd

from paymodel.olap import build as B
from paymodel.olap import resolve_pii_key, staging
from paymodel.olap import transforms as T
from paymodel.oltp.engines import duckdb_engine
from paymodel.oltp.schema import create_schema
from paymodel.paths import BUILD_DIR
from paymodel.synthetic import generate
from paymodel.synthetic.load import load_into_oltp

HAND_ATTEMPTS = """
WITH refunded AS (
  SELECT charge_id, sum(amount) AS r FROM refunds WHERE status = 'succeeded' GROUP BY 1),
disputed AS (SELECT DISTINCT charge_id FROM disputes),
c AS (
  SELECT ch.*, row_number() OVER (PARTITION BY payment_intent_id ORDER BY created, id) AS n,
    coalesce(status, 'none') || '|' || coalesce(outcome_type, 'none') || '|' ||
    coalesce(outcome_network_status, 'none') || '|' || coalesce(outcome_risk_level, 'none') ||
    '|' || coalesce(failure_code, 'none') AS outcome
  FROM charges ch)
SELECT c.id AS charge_id, c.payment_intent_id, c.customer_id, v.customer_key,
  c.payment_method_id AS payment_method_key, c.outcome AS payment_outcome_key,
  coalesce(g.geography_key, 'ZZ') AS geography_key,
  CAST(strftime(c.created::date, '%Y%m%d') AS INTEGER) AS created_date_key,
  c.currency, c.n AS attempt_number, c.amount, c.amount_captured,
  coalesce(r.r, 0) AS amount_refunded,
  round(CAST(c.amount AS DECIMAL(12,0)) * f.factor, 6)::DECIMAL(20,6) AS amount_reporting,
  round(CAST(c.amount_captured AS DECIMAL(12,0)) * f.factor, 6)::DECIMAL(20,6) AS amount_captured_reporting
FROM c
LEFT JOIN refunded r ON r.charge_id = c.id
LEFT JOIN disputed d ON d.charge_id = c.id
LEFT JOIN dim_customer v ON v.customer_id = c.customer_id AND v.valid_from <= c.created
  AND (v.valid_to IS NULL OR c.created < v.valid_to)
LEFT JOIN dim_geography g ON g.geography_key = v.country
LEFT JOIN fx_factors f ON f.rate_date = c.created::date AND f.currency = c.currency
"""

HAND_BALANCE = """
WITH fees AS (
  SELECT balance_transaction_id AS id,
    sum(amount) FILTER (WHERE type = 'stripe_fee') AS stripe_fee,
    sum(amount) FILTER (WHERE type = 'application_fee') AS application_fee,
    sum(amount) FILTER (WHERE type = 'tax') AS tax_fee
  FROM balance_transaction_fee_details GROUP BY 1),
b AS (
  SELECT bt.*, coalesce(bt.charge_id, r.charge_id, d.charge_id) AS source_charge
  FROM balance_transactions bt
  LEFT JOIN refunds r ON r.id = bt.refund_id LEFT JOIN disputes d ON d.id = bt.dispute_id)
SELECT b.id AS balance_transaction_id, b.type, b.source_charge AS charge_id, ch.customer_id,
  v.customer_key, CAST(strftime(b.created::date, '%Y%m%d') AS INTEGER) AS created_date_key,
  b.currency, b.amount, b.fee, coalesce(fees.stripe_fee, 0) AS stripe_fee,
  coalesce(fees.application_fee, 0) AS application_fee, coalesce(fees.tax_fee, 0) AS tax_fee, b.net,
  round(CAST(b.amount AS DECIMAL(12,0)) * f.factor, 6)::DECIMAL(20,6) AS amount_reporting,
  round(CAST(b.net AS DECIMAL(12,0)) * f.factor, 6)::DECIMAL(20,6) AS net_reporting
FROM b
LEFT JOIN fees ON fees.id = b.id
LEFT JOIN charges ch ON ch.id = b.source_charge
LEFT JOIN dim_customer v ON v.customer_id = ch.customer_id AND v.valid_from <= b.created
  AND (v.valid_to IS NULL OR b.created < v.valid_to)
LEFT JOIN fx_factors f ON f.rate_date = b.created::date AND f.currency = b.currency
"""


def _version(df: pd.DataFrame, dim: pd.DataFrame, at: str) -> pd.Series:
    """pandas: the customer_key of the version valid at ``df[at]`` (merge then filter)."""
    m = df[["customer_id", at]].reset_index().merge(
        dim[["customer_id", "customer_key", "valid_from", "valid_to", "country"]], on="customer_id"
    )
    ok = (m.valid_from <= m[at]) & (m.valid_to.isna() | (m[at] < m.valid_to))
    return m[ok].set_index("index")[["customer_key", "country"]].reindex(df.index)


_PLACES = Decimal("0.000001")


def _convert(df: pd.DataFrame, fx: pd.DataFrame, amounts: list[str], day: pd.Series) -> pd.DataFrame:
    factor = df.assign(_d=day.values).merge(
        fx, left_on=["_d", "currency"], right_on=["rate_date", "currency"], how="left"
    )["factor"]
    for a in amounts:  # Decimal arithmetic, as the SQL does: exact, no float
        df[f"{a}_reporting"] = [
            (int(x) * f).quantize(_PLACES, ROUND_HALF_UP) if f is not None else None
            for x, f in zip(df[a], factor, strict=True)
        ]
    return df


def pandas_attempts(t: dict[str, pd.DataFrame]) -> pd.DataFrame:
    ch = t["charges"].copy()
    rf = t["refunds"]
    refunded = rf[rf.status == "succeeded"].groupby("charge_id").amount.sum()
    ch = ch.sort_values(["payment_intent_id", "created", "id"])
    ch["attempt_number"] = ch.groupby("payment_intent_id", dropna=False).cumcount() + 1
    cols = ["status", "outcome_type", "outcome_network_status", "outcome_risk_level", "failure_code"]
    ch["payment_outcome_key"] = ch[cols].fillna("none").astype(str).agg("|".join, axis=1)
    ch["amount_refunded"] = ch.id.map(refunded).fillna(0).astype("int64")
    v = _version(ch, t["dim_customer"], "created")
    ch["customer_key"] = v.customer_key
    ch["geography_key"] = v.country.where(v.country.isin(set(t["dim_geography"].geography_key)), "ZZ")
    ch["created_date_key"] = ch.created.dt.strftime("%Y%m%d").astype(int)
    return _convert(ch, t["fx_factors"], ["amount", "amount_captured"], ch.created.dt.date)


def pandas_balance(t: dict[str, pd.DataFrame]) -> pd.DataFrame:
    bt = t["balance_transactions"].copy()
    fd = t["balance_transaction_fee_details"]
    fees = fd.pivot_table(index="balance_transaction_id", columns="type", values="amount", aggfunc="sum")
    for k, name in (("stripe_fee", "stripe_fee"), ("application_fee", "application_fee"), ("tax", "tax_fee")):
        bt[name] = bt.id.map(fees[k] if k in fees else pd.Series(dtype="int64")).fillna(0).astype("int64")
    r = t["refunds"].set_index("id").charge_id
    d = t["disputes"].set_index("id").charge_id
    bt["charge_id"] = bt.charge_id.fillna(bt.refund_id.map(r)).fillna(bt.dispute_id.map(d))
    bt["customer_id"] = bt.charge_id.map(t["charges"].set_index("id").customer_id)
    bt["customer_key"] = _version(bt, t["dim_customer"], "created").customer_key
    bt["created_date_key"] = bt.created.dt.strftime("%Y%m%d").astype(int)
    return _convert(bt, t["fx_factors"], ["amount", "net"], bt.created.dt.date)


def _median(f, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def compare_implementations(oltp: Path, runs: int) -> dict[str, float]:
    """Ibis vs hand SQL vs pandas for two facts, on the same staged inputs."""
    key = resolve_pii_key(demo=True)
    con_oltp = staging.connect(oltp, read_only=True)
    params = T.BuildParams(staging.default_as_of(con_oltp))
    data = B._inputs(con_oltp, params, key, None)
    con = ibis.duckdb.connect()
    ns = {n: con.create_table(n, a) for n, a in data.items()}
    ns["subscription_history"] = con.create_table("subscription_history", T.subscription_history(
        ns["subscription_item_events"], ns["subscriptions"], ns["subscription_items"]))  # fmt: skip
    for step in B.STEPS:
        if step.table.name.startswith("dim_"):
            args = {i: ns[i] for i in step.inputs}
            if "params" in inspect.signature(step.build).parameters:
                args["params"] = params
            ns[step.table.name] = con.create_table(step.table.name, T.conform(step.build(**args), step.table))
    ibis_exprs = {
        "fact_payment_attempts": T.fact_payment_attempts(
            ns["charges"], ns["refunds"], ns["disputes"], ns["dim_customer"], ns["dim_geography"],
            ns["fx_factors"], params),
        "fact_balance_transactions": T.fact_balance_transactions(
            ns["balance_transactions"], ns["balance_transaction_fee_details"], ns["payouts"],
            ns["charges"], ns["refunds"], ns["disputes"], ns["dim_customer"], ns["fx_factors"], params),
    }  # fmt: skip
    hand = {"fact_payment_attempts": HAND_ATTEMPTS, "fact_balance_transactions": HAND_BALANCE}
    frames = {n: con.table(n).to_pandas() for n in (
        "charges", "refunds", "disputes", "balance_transactions", "balance_transaction_fee_details",
        "dim_customer", "dim_geography", "fx_factors")}  # fmt: skip
    frames["fx_factors"]["rate_date"] = pd.to_datetime(frames["fx_factors"].rate_date).dt.date
    pandas_impl = {"fact_payment_attempts": pandas_attempts, "fact_balance_transactions": pandas_balance}
    out = {}
    for name in ibis_exprs:
        a = con.to_pyarrow(ibis_exprs[name]).to_pandas()
        b = con.con.sql(hand[name]).arrow().read_all().to_pandas()
        c = pandas_impl[name](frames)
        for df in (b, c):
            assert len(df) == len(a), f"{name}: {len(df)} rows, Ibis {len(a)}"
            assert int(df.amount.sum()) == int(a.amount.sum()), name
            assert sum(x for x in df.amount_reporting if x is not None) == sum(a.amount_reporting), name
            assert sorted(df.customer_key.dropna()) == sorted(a.customer_key.dropna()), name
        out[f"{name} rows"] = len(a)
        out[f"{name} ibis s"] = _median(lambda e=ibis_exprs[name]: con.to_pyarrow(e), runs)
        out[f"{name} sql s"] = _median(lambda s=hand[name]: con.con.sql(s).arrow().read_all(), runs)
        out[f"{name} pandas s"] = _median(lambda f=pandas_impl[name]: f(frames), max(1, runs // 2))
    con_oltp.disconnect()
    return out


_CHILD = """
import json, resource, sys, time
from paymodel.olap import build_warehouse, update_warehouse, resolve_pii_key
key = resolve_pii_key(demo=True)
mode, oltp, out, as_of = sys.argv[1:5]
t0 = time.perf_counter()
f = build_warehouse if mode == "full" else update_warehouse
r = f(oltp, out, pii_key=key, as_of=None if as_of == "-" else as_of)
print(json.dumps({"seconds": time.perf_counter() - t0, "changed": r.changed_customers,
    "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "as_of": r.as_of.isoformat(), "rows": sum(r.rows.values())}))
"""


def _child(mode: str, oltp: Path, out: Path, as_of: str = "-") -> dict:
    res = subprocess.run([sys.executable, "-c", _CHILD, mode, str(oltp), str(out), as_of],
                         check=True, capture_output=True, text=True)  # fmt: skip
    return json.loads(res.stdout.strip().splitlines()[-1])


def prepare(scale: float, months: int, root: Path) -> Path:
    data = root / f"data-{scale}"
    oltp = root / f"oltp-{scale}.duckdb"
    if not oltp.exists():
        generate(data, scale=scale, seed=0, months=months, progress=False, documents=False)
        engine = duckdb_engine(oltp)
        create_schema(engine)
        load_into_oltp(data, engine)
        engine.dispose()
    return oltp


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scales", type=float, nargs="+", default=[0.1, 1.0])
    p.add_argument("--months", type=int, default=24)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--out", type=Path, default=BUILD_DIR / "bench")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict = {"scales": {}}
    for scale in args.scales:
        oltp = prepare(scale, args.months, args.out)
        wh = args.out / f"warehouse-{scale}.duckdb"
        full = _child("full", oltp, wh)
        results["scales"][scale] = {"full": full, **compare_implementations(oltp, args.runs)}
        print(f"scale {scale}: full build {full['seconds']:.1f} s, peak RSS {full['rss_mb']:.0f} MB, "
              f"{full['rows']:,} rows", flush=True)  # fmt: skip
    scale = max(args.scales)
    oltp = args.out / f"oltp-{scale}.duckdb"
    as_of = results["scales"][scale]["full"]["as_of"]
    day_before = (pd.Timestamp(as_of) - timedelta(days=1)).isoformat()
    inc = args.out / f"warehouse-inc-{scale}.duckdb"
    _child("full", oltp, inc, day_before)
    update = _child("update", oltp, inc, as_of)
    rebuild = _child("full", oltp, args.out / f"warehouse-{scale}.duckdb", as_of)
    results["incremental"] = {"scale": scale, "update": update, "rebuild": rebuild}
    print()
    print(f"{'scale':>6} {'fact':28} {'rows':>9} {'ibis s':>8} {'sql s':>8} {'pandas s':>9} "
          f"{'ibis/sql':>9} {'pandas/ibis':>11}")  # fmt: skip
    for scale, r in results["scales"].items():
        for fact in ("fact_payment_attempts", "fact_balance_transactions"):
            i, s, pd_ = r[f"{fact} ibis s"], r[f"{fact} sql s"], r[f"{fact} pandas s"]
            print(f"{scale:>6} {fact:28} {r[f'{fact} rows']:>9,} {i:8.3f} {s:8.3f} {pd_:9.3f} "
                  f"{i / s:9.2f} {pd_ / i:11.1f}")  # fmt: skip
    print()
    for scale, r in results["scales"].items():
        print(f"full build, scale {scale}: {r['full']['seconds']:.1f} s, peak RSS {r['full']['rss_mb']:.0f} MB")
    print(f"one day's update at scale {scale}: {update['seconds']:.1f} s ({update['changed']:,} customers) "
          f"vs rebuild {rebuild['seconds']:.1f} s: {rebuild['seconds'] / update['seconds']:.1f}x")  # fmt: skip
    (args.out / "bench_olap.json").write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
