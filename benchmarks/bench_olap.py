"""The warehouse build: Ibis against hand-written DuckDB SQL and pandas, scales, incremental.

Measured in one run, side by side (these machines are noisy, so only ratios of the same
run mean anything):

1. **Ibis vs hand-written SQL vs pandas** on the same staged inputs in one in-memory
   DuckDB database: the two largest facts, ``fact_payment_attempts`` and
   ``fact_balance_transactions``, built by their Ibis transforms (compiled and executed
   by DuckDB), by the same logic written by hand as DuckDB SQL, and by pandas on the same
   tables already in memory. The three results are checked equal (rows and sums) before
   any time is reported. Each time is the best of ``--runs`` rounds in which the three
   run in turn (pandas: half the rounds). Target: Ibis at most 1.3x the hand-written SQL,
   at least 5x faster than pandas.
2. **Full build per scale**: wall time and peak memory (RSS of a child process) of
   ``build_warehouse`` at each ``--scales`` value, so that how cost grows with the data
   shows.
3. **One day's incremental update against a full rebuild** at the largest scale, and
   the same day's update of the star at half the history against at its end: whether
   the update's cost follows the change or the history.

Usage::

    python benchmarks/bench_olap.py [--scales 0.1 1] [--months 24] [--out build/bench]

Prints a table and writes ``<out>/bench_olap.json``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import ibis
import numpy as np
import pandas as pd

from paymodel.olap import build as B
from paymodel.olap import resolve_pii_key, staging
from paymodel.olap import transforms as T
from paymodel.oltp.engines import duckdb_engine
from paymodel.oltp.schema import create_schema
from paymodel.paths import BUILD_DIR
from paymodel.synthetic import generate
from paymodel.synthetic.load import load_into_oltp

# The same transforms written by hand as DuckDB SQL: every column of the model, in its
# order and types, as an engineer would write them (comparisons only in the SCD2 join, so
# DuckDB keeps it a hash join). Checked equal to the Ibis result before any time counts.
_R = "round(CAST({a} AS DECIMAL(12,0)) * CAST(f.factor AS DECIMAL(24,16)), 6)::DECIMAL(20,6)"
_OPEN = "TIMESTAMPTZ '9999-12-31 00:00:00+00'"
_KEY = "CAST(year({d}) * 10000 + month({d}) * 100 + day({d}) AS INTEGER)"

HAND_ATTEMPTS = f"""
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
  {_KEY.format(d="c.created::date")} AS created_date_key,
  CASE WHEN c.amount_captured > 0 THEN {_KEY.format(d="c.created::date")} END AS captured_date_key,
  c.currency, 'usd' AS reporting_currency, c.created, CAST(c.n AS SMALLINT) AS attempt_number,
  c.status = 'succeeded' AS is_success, d.charge_id IS NOT NULL AS is_disputed,
  c.amount, c.amount_captured, coalesce(r.r, 0)::BIGINT AS amount_refunded,
  {_R.format(a="c.amount")} AS amount_reporting,
  {_R.format(a="c.amount_captured")} AS amount_captured_reporting,
  {_R.format(a="coalesce(r.r, 0)")} AS amount_refunded_reporting,
  CAST(c.outcome_risk_score AS SMALLINT) AS risk_score
FROM c
LEFT JOIN refunded r ON r.charge_id = c.id
LEFT JOIN disputed d ON d.charge_id = c.id
LEFT JOIN dim_customer v ON v.customer_id = c.customer_id AND v.valid_from <= c.created
  AND c.created < coalesce(v.valid_to, {_OPEN})
LEFT JOIN dim_geography g ON g.geography_key = v.country
LEFT JOIN fx_factors f ON f.rate_date = c.created::date AND f.currency = c.currency
"""

HAND_BALANCE = f"""
WITH fees AS (
  SELECT balance_transaction_id AS id,
    sum(amount) FILTER (WHERE type = 'stripe_fee') AS stripe_fee,
    sum(amount) FILTER (WHERE type = 'application_fee') AS application_fee,
    sum(amount) FILTER (WHERE type = 'tax') AS tax_fee
  FROM balance_transaction_fee_details GROUP BY 1),
b AS (
  SELECT bt.*, coalesce(bt.charge_id, r.charge_id, d.charge_id) AS source_charge,
    po.id AS settled_by
  FROM balance_transactions bt
  LEFT JOIN payouts po ON po.id = bt.payout_id
  LEFT JOIN refunds r ON r.id = bt.refund_id LEFT JOIN disputes d ON d.id = bt.dispute_id)
SELECT b.id AS balance_transaction_id, b.type, b.reporting_category,
  coalesce(b.charge_id, b.refund_id, b.dispute_id, b.source_payout_id) AS source_id,
  b.settled_by AS payout_id, b.source_charge AS charge_id, ch.customer_id, v.customer_key,
  {_KEY.format(d="b.created::date")} AS created_date_key,
  {_KEY.format(d="b.available_on::date")} AS available_date_key,
  b.currency, 'usd' AS reporting_currency,
  CASE WHEN b.available_on <= $as_of THEN 'available' ELSE 'pending' END AS status,
  CAST(b.exchange_rate AS DECIMAL(20,10)) AS exchange_rate,
  b.amount, b.fee, coalesce(fees.stripe_fee, 0)::BIGINT AS stripe_fee,
  coalesce(fees.application_fee, 0)::BIGINT AS application_fee,
  coalesce(fees.tax_fee, 0)::BIGINT AS tax_fee, b.net,
  {_R.format(a="b.amount")} AS amount_reporting,
  {_R.format(a="b.fee")} AS fee_reporting,
  {_R.format(a="b.net")} AS net_reporting
FROM b
LEFT JOIN fees ON fees.id = b.id
LEFT JOIN charges ch ON ch.id = b.source_charge
LEFT JOIN dim_customer v ON v.customer_id = ch.customer_id AND v.valid_from <= b.created
  AND b.created < coalesce(v.valid_to, {_OPEN})
LEFT JOIN fx_factors f ON f.rate_date = b.created::date AND f.currency = b.currency
"""


def _version(df: pd.DataFrame, dim: pd.DataFrame, at: str) -> pd.DataFrame:
    """pandas: customer_key and country of the version valid at ``df[at]`` (merge then filter)."""
    m = (
        df[["customer_id", at]]
        .reset_index()
        .merge(
            dim[["customer_id", "customer_key", "valid_from", "valid_to", "country"]],
            on="customer_id",
        )
    )
    ok = (m.valid_from <= m[at]) & (m.valid_to.isna() | (m[at] < m.valid_to))
    return m[ok].set_index("index")[["customer_key", "country"]].reindex(df.index)


_PLACES = Decimal("0.000001")


def _convert(
    df: pd.DataFrame, fx: pd.DataFrame, amounts: list[str], day: pd.Series
) -> pd.DataFrame:
    factor = df.assign(_d=day.values).merge(
        fx, left_on=["_d", "currency"], right_on=["rate_date", "currency"], how="left"
    )["factor"]
    for a in amounts:  # Decimal arithmetic, as the SQL does: exact, no float
        df[f"{a}_reporting"] = [
            (int(x) * f).quantize(_PLACES, ROUND_HALF_UP) if f is not None else None
            for x, f in zip(df[a], factor, strict=True)
        ]
    df["reporting_currency"] = "usd"
    return df


def _date_key(ts: pd.Series) -> pd.Series:
    return ts.dt.year * 10000 + ts.dt.month * 100 + ts.dt.day


def pandas_attempts(t: dict[str, pd.DataFrame], as_of: pd.Timestamp) -> pd.DataFrame:
    ch = t["charges"].copy()
    rf = t["refunds"]
    refunded = rf[rf.status == "succeeded"].groupby("charge_id").amount.sum()
    ch = ch.sort_values(["payment_intent_id", "created", "id"])
    ch["attempt_number"] = ch.groupby("payment_intent_id", dropna=False).cumcount() + 1
    cols = [
        "status",
        "outcome_type",
        "outcome_network_status",
        "outcome_risk_level",
        "failure_code",
    ]
    ch["payment_outcome_key"] = ch[cols].fillna("none").astype(str).agg("|".join, axis=1)
    ch["amount_refunded"] = ch.id.map(refunded).fillna(0).astype("int64")
    v = _version(ch, t["dim_customer"], "created")
    ch["customer_key"] = v.customer_key
    ch["geography_key"] = v.country.where(
        v.country.isin(set(t["dim_geography"].geography_key)), "ZZ"
    )
    ch["created_date_key"] = _date_key(ch.created)
    ch["captured_date_key"] = ch.created_date_key.where(ch.amount_captured > 0)
    ch["is_success"] = ch.status == "succeeded"
    ch["is_disputed"] = ch.id.isin(set(t["disputes"].charge_id))
    ch = ch.rename(columns={"id": "charge_id", "payment_method_id": "payment_method_key",
                            "outcome_risk_score": "risk_score"})  # fmt: skip
    return _convert(
        ch, t["fx_factors"], ["amount", "amount_captured", "amount_refunded"], ch.created.dt.date
    )


def pandas_balance(t: dict[str, pd.DataFrame], as_of: pd.Timestamp) -> pd.DataFrame:
    bt = t["balance_transactions"].copy()
    fd = t["balance_transaction_fee_details"]
    fees = fd.pivot_table(
        index="balance_transaction_id", columns="type", values="amount", aggfunc="sum"
    )
    for k, name in (
        ("stripe_fee", "stripe_fee"),
        ("application_fee", "application_fee"),
        ("tax", "tax_fee"),
    ):
        bt[name] = (
            bt.id.map(fees[k] if k in fees else pd.Series(dtype="int64")).fillna(0).astype("int64")
        )
    r = t["refunds"].set_index("id").charge_id
    d = t["disputes"].set_index("id").charge_id
    bt["source_id"] = (
        bt.charge_id.fillna(bt.refund_id).fillna(bt.dispute_id).fillna(bt.source_payout_id)
    )
    bt["payout_id"] = bt.payout_id.where(bt.payout_id.isin(set(t["payouts"].id)))
    bt["charge_id"] = bt.charge_id.fillna(bt.refund_id.map(r)).fillna(bt.dispute_id.map(d))
    bt["customer_id"] = bt.charge_id.map(t["charges"].set_index("id").customer_id)
    bt["customer_key"] = _version(bt, t["dim_customer"], "created").customer_key
    bt["created_date_key"] = _date_key(bt.created)
    bt["available_date_key"] = _date_key(bt.available_on)
    bt["status"] = (bt.available_on <= as_of).map({True: "available", False: "pending"})
    bt = bt.rename(columns={"id": "balance_transaction_id"})
    return _convert(bt, t["fx_factors"], ["amount", "fee", "net"], bt.created.dt.date)


def _plain(v: object) -> object:
    """One value as plain Python, so the three results compare equal whatever their dtypes."""
    if v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():  # a pandas int column with NULLs is float
        return int(v)
    if isinstance(v, datetime):
        ts = pd.Timestamp(v)
        return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return v


def _rows(df: pd.DataFrame, columns: list[str]) -> list[tuple]:
    """``df``'s ``columns`` as sorted tuples of plain values (the first column is the key)."""
    rows = [tuple(_plain(v) for v in r) for r in df[columns].itertuples(index=False, name=None)]
    return sorted(rows, key=lambda r: r[0])


def _check_equal(name: str, columns: list[str], **results: pd.DataFrame) -> None:
    """Every result has the same rows as the Ibis one, column for column; else exit naming it."""
    want = _rows(results.pop("ibis"), columns)
    for how, df in results.items():
        got = _rows(df, columns)
        if got != want:
            diff = next(((i, a, b) for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b),
                        (min(len(got), len(want)), None, None))  # fmt: skip
            raise SystemExit(f"{name}: {how} differs from Ibis ({len(got)} vs {len(want)} rows); "
                             f"first difference at row {diff[0]}:\n  {how}: {diff[1]}\n  ibis: {diff[2]}")  # fmt: skip


def _best(
    fns: dict[str, Callable[[], object]], runs: int, fewer: dict[str, int]
) -> dict[str, float]:
    """The best time of each function over ``runs`` rounds, run in turn within each round.

    Interleaved, so that a burst of load on the machine hits every implementation alike,
    and the best of the rounds, the time least disturbed by it. ``fewer`` caps the rounds
    of slow ones (pandas at scale 10 takes a minute).
    """
    times: dict[str, list[float]] = {k: [] for k in fns}
    for r in range(runs):
        for k, f in fns.items():
            if r >= fewer.get(k, runs):
                continue
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    return {k: min(v) for k, v in times.items()}


def compare_implementations(oltp: Path, runs: int) -> dict[str, float]:
    """Ibis vs hand SQL vs pandas for two facts, on the same staged inputs.

    Each is timed from its inputs to an Arrow table (pandas: a DataFrame) of the whole
    fact: Ibis includes compiling the expression, as a build does.
    """
    key = resolve_pii_key(demo=True)
    con_oltp = staging.connect(oltp, read_only=True)
    params = T.BuildParams(staging.default_as_of(con_oltp))
    data = B._inputs(con_oltp, params, key, None)
    con = ibis.duckdb.connect()
    con.raw_sql("SET enable_progress_bar = false")
    ns = {n: con.create_table(n, a) for n, a in data.items()}
    ns["subscription_history"] = con.create_table("subscription_history", T.subscription_history(
        ns["subscription_item_events"], ns["subscriptions"], ns["subscription_items"]))  # fmt: skip
    for step in B.STEPS:
        if step.table.name.startswith("dim_"):
            args = {i: ns[i] for i in step.inputs}
            if "params" in inspect.signature(step.build).parameters:
                args["params"] = params
            ns[step.table.name] = con.create_table(
                step.table.name, T.conform(step.build(**args), step.table)
            )
    builds = {
        "fact_payment_attempts": lambda: T.fact_payment_attempts(
            ns["charges"], ns["refunds"], ns["disputes"], ns["dim_customer"], ns["dim_geography"],
            ns["fx_factors"], params),
        "fact_balance_transactions": lambda: T.fact_balance_transactions(
            ns["balance_transactions"], ns["balance_transaction_fee_details"], ns["payouts"],
            ns["charges"], ns["refunds"], ns["disputes"], ns["dim_customer"], ns["fx_factors"], params),
    }  # fmt: skip
    when_sql = f"TIMESTAMPTZ '{params.as_of.isoformat()}'"
    hand = {"fact_payment_attempts": HAND_ATTEMPTS,
            "fact_balance_transactions": HAND_BALANCE.replace("$as_of", when_sql)}  # fmt: skip
    frames = {n: con.table(n).to_pandas() for n in (
        "charges", "refunds", "disputes", "balance_transactions", "balance_transaction_fee_details",
        "payouts", "dim_customer", "dim_geography", "fx_factors")}  # fmt: skip
    frames["fx_factors"]["rate_date"] = pd.to_datetime(frames["fx_factors"].rate_date).dt.date
    when = pd.Timestamp(params.as_of)
    pandas_impl = {
        "fact_payment_attempts": pandas_attempts,
        "fact_balance_transactions": pandas_balance,
    }

    def ibis_run(name: str) -> object:  # build, conform and compile the expression, then run it
        return con.to_pyarrow(T.conform(builds[name](), B.WAREHOUSE.table(name)))

    out = {}
    for name in builds:
        columns = list(B.WAREHOUSE.table(name).column_names)
        a = ibis_run(name).to_pandas()
        b = con.con.sql(hand[name]).arrow().read_all().to_pandas()
        c = pandas_impl[name](frames, when)
        _check_equal(name, columns, ibis=a, sql=b, pandas=c)
        out[f"{name} rows"] = len(a)
        best = _best({
            "ibis": lambda n=name: ibis_run(n),
            "compile": lambda n=name: ibis.to_sql(T.conform(builds[n](), B.WAREHOUSE.table(n)),
                                                  dialect="duckdb"),
            "sql": lambda s=hand[name]: con.con.sql(s).arrow().read_all(),
            "pandas": lambda f=pandas_impl[name]: f(frames, when),
        }, runs, {"pandas": max(1, runs // 2)})  # fmt: skip
        for how, seconds in best.items():
            out[f"{name} {how} s"] = seconds
    con_oltp.disconnect()
    return out


_CHILD = """
import json, resource, sys, time
from paymodel.olap import build_warehouse, update_warehouse, resolve_pii_key
key = resolve_pii_key(demo=True)
mode, oltp, out, as_of, models = sys.argv[1:6]
t0 = time.perf_counter()
as_of = None if as_of == "-" else as_of
if mode == "full":
    r = build_warehouse(oltp, out, pii_key=key, as_of=as_of,
                        models=None if models == "all" else set(models.split(",")))
else:
    r = update_warehouse(oltp, out, pii_key=key, as_of=as_of)
print(json.dumps({"seconds": time.perf_counter() - t0, "changed": r.changed_customers,
    "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "as_of": r.as_of.isoformat(), "rows": sum(r.rows.values()),
    "tables": {t.table: [t.rows, round(t.seconds, 3)] for t in r.tables},
    "staging_s": r.staging_seconds}))
"""


def _child(mode: str, oltp: Path, out: Path, as_of: str = "-", models: str = "all") -> dict:
    """Run a build or an update in a fresh process: its wall time and peak RSS are its own."""
    res = subprocess.run([sys.executable, "-c", _CHILD, mode, str(oltp), str(out), as_of, models],
                         check=True, capture_output=True, text=True)  # fmt: skip
    return json.loads(res.stdout.strip().splitlines()[-1])


def prepare(scale: float, months: int, root: Path) -> Path:
    data = root / f"data-{scale}"
    oltp = root / f"oltp-{scale}.duckdb"
    if not oltp.exists():
        if not (data / "events.jsonl").exists():
            generate(data, scale=scale, seed=0, months=months, progress=False, documents=False)
        engine = duckdb_engine(oltp)
        create_schema(engine)
        load_into_oltp(data, engine)
        engine.dispose()
    return oltp


def one_day(as_of: str) -> tuple[str, str]:
    """The last whole day of the data that stays inside one month, as ``(since, until)``.

    An update into a new month touches every live subscription by design (each item gets
    the new month's row), so the day measured is the last one that does not cross a month.
    """
    until = pd.Timestamp(as_of)
    if (until - timedelta(days=1)).month != until.month:
        until -= timedelta(days=1)
    return (until - timedelta(days=1)).isoformat(), until.isoformat()


def incremental(oltp: Path, root: Path, as_of: str, models: str) -> dict:
    """One day's update against a rebuild to the same time, of the star (or star and marts)."""
    since, until = one_day(as_of)
    inc = root / f"warehouse-inc-{models}.duckdb"
    _child("full", oltp, inc, since, models)
    update = _child("update", oltp, inc, until)
    rebuild = _child("full", oltp, root / f"warehouse-rebuild-{models}.duckdb", until, models)
    return {"since": since, "until": until, "update": update, "rebuild": rebuild}


def history_growth(oltp: Path, root: Path, as_of: str) -> list[dict]:
    """One day's update of the star at half the history and at its end.

    The two updates change a similar number of customers over histories of different
    lengths: if the update's cost grows with the change and not with the history, the
    seconds follow the changed customers, not the events before the update.
    """
    con = staging.connect(oltp, read_only=True)
    ev = con.table("events")
    first = pd.Timestamp(ev.created.min().to_pyarrow().as_py())
    end = pd.Timestamp(as_of)
    points = []
    for label, when in (("half", first + (end - first) / 2), ("end", end)):
        since, until = one_day(when.isoformat())
        events = int(
            ev.filter(ev.created <= pd.Timestamp(until).to_pydatetime())
            .count()
            .to_pyarrow()
            .as_py()
        )
        inc = root / f"warehouse-growth-{label}.duckdb"
        _child("full", oltp, inc, since, "warehouse")
        u = _child("update", oltp, inc, until)
        points.append({"point": label, "since": since, "until": until, "events": events,
                       "changed": u["changed"], "seconds": u["seconds"], "tables": u["tables"]})  # fmt: skip
    con.disconnect()
    return points


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scales", type=float, nargs="+", default=[0.1, 1.0])
    p.add_argument("--compare-scales", type=float, nargs="*", default=None,
                   help="scales at which Ibis, SQL and pandas are compared (default: those >= 1, "
                        "else all)")  # fmt: skip
    p.add_argument("--incremental-scale", type=float, default=None,
                   help="scale of the update-vs-rebuild measure (default: 1 if run, else the "
                        "largest; 0: none)")  # fmt: skip
    p.add_argument("--months", type=int, default=24)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--out", type=Path, default=BUILD_DIR / "bench")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    compare = args.compare_scales
    if compare is None:
        compare = [s for s in args.scales if s >= 1] or args.scales
    inc_scale = args.incremental_scale
    if inc_scale is None:
        inc_scale = 1.0 if 1.0 in args.scales else max(args.scales)
    results: dict = {"scales": {}}
    for scale in sorted((set(args.scales) | set(compare) | {inc_scale}) - {0}):
        oltp = prepare(scale, args.months, args.out)
        r: dict = {}
        if scale in args.scales:
            r["full"] = _child("full", oltp, args.out / f"warehouse-{scale}.duckdb")
            print(f"scale {scale}: full build {r['full']['seconds']:.1f} s, peak RSS "
                  f"{r['full']['rss_mb']:.0f} MB, {r['full']['rows']:,} rows", flush=True)  # fmt: skip
        if scale in compare:
            r.update(compare_implementations(oltp, args.runs))
        if scale == inc_scale:
            as_of = r["full"]["as_of"] if "full" in r else staging.default_as_of(
                staging.connect(oltp, read_only=True)).isoformat()  # fmt: skip
            results["incremental"] = {"scale": scale, "star": incremental(oltp, args.out, as_of, "warehouse"),
                                      "star and marts": incremental(oltp, args.out, as_of, "all"),
                                      "growth": history_growth(oltp, args.out, as_of)}  # fmt: skip
        results["scales"][scale] = r
    print()
    print(f"{'scale':>6} {'fact':28} {'rows':>9} {'ibis s':>8} {'of which compile':>16} {'sql s':>8} "
          f"{'pandas s':>9} {'ibis/sql':>9} {'pandas/ibis':>11}")  # fmt: skip
    for scale, r in results["scales"].items():
        for fact in ("fact_payment_attempts", "fact_balance_transactions"):
            if f"{fact} ibis s" not in r:
                continue
            i, s, pd_ = r[f"{fact} ibis s"], r[f"{fact} sql s"], r[f"{fact} pandas s"]
            print(f"{scale:>6} {fact:28} {r[f'{fact} rows']:>9,} {i:8.3f} {r[f'{fact} compile s']:16.3f} "
                  f"{s:8.3f} {pd_:9.3f} "
                  f"{i / s:9.2f} {pd_ / i:11.1f}")  # fmt: skip
        facts = [
            f for f in ("fact_payment_attempts", "fact_balance_transactions") if f"{f} ibis s" in r
        ]
        if len(facts) > 1:  # what building these facts costs each way
            i, s, pd_ = (sum(r[f"{f} {how} s"] for f in facts) for how in ("ibis", "sql", "pandas"))
            rows, comp = sum(r[f"{f} rows"] for f in facts), sum(r[f"{f} compile s"] for f in facts)
            print(f"{scale:>6} {'both facts':28} {rows:>9,} {i:8.3f} {comp:16.3f} {s:8.3f} {pd_:9.3f} "
                  f"{i / s:9.2f} {pd_ / i:11.1f}")  # fmt: skip
    print("targets: ibis/sql at most 1.3; pandas/ibis at least 5")
    print()
    for scale, r in results["scales"].items():
        if "full" in r:
            f = r["full"]
            print(f"full build, scale {scale}: {f['seconds']:.1f} s, peak RSS {f['rss_mb']:.0f} MB, "
                  f"{f['rows']:,} rows")  # fmt: skip
    inc = results.get("incremental", {"star": None, "star and marts": None})
    for what, m in (("star", inc["star"]), ("star and marts", inc["star and marts"])):
        if m is None:
            continue
        u, b = m["update"], m["rebuild"]
        print(f"one day's update ({m['since'][:10]} to {m['until'][:10]}) at scale {inc['scale']} "
              f"({what}): {u['seconds']:.1f} s "
              f"({u['changed']:,} customers changed) vs rebuild {b['seconds']:.1f} s: "
              f"update/rebuild {u['seconds'] / b['seconds']:.2f}")  # fmt: skip
    growth = inc.get("growth")
    if growth:
        half, end = growth
        print(
            f"one day's update of the star at half the history and at its end (scale {inc['scale']}):"
        )
        for g in growth:
            print(f"  {g['point']:>4}: {g['until'][:10]}, {g['events']:>9,} events before it, "
                  f"{g['changed']:>6,} customers changed, {g['seconds']:6.1f} s")  # fmt: skip
        print(f"  end/half: events {end['events'] / half['events']:.2f}x, changed customers "
              f"{end['changed'] / max(half['changed'], 1):.2f}x, seconds {end['seconds'] / half['seconds']:.2f}x "
              "(the update's cost follows the change if the last is nearer the second than the first)")  # fmt: skip
    (args.out / "bench_olap.json").write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
