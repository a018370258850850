"""The marts benchmark compares like with like: on a small generated account, its
hand-written DuckDB SQL and its pandas code return every column of each mart the build's
Ibis steps return, value for value (``run`` checks it before it reports any time)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

BENCHMARKED = [
    "mart_mrr_movements",
    "mart_mrr_bridge",
    "mart_payment_health",
    "mart_balance_transactions",
    "mart_customer_overview",
    "mart_daily_overview",
    "mart_payout_reconciliation",
]

pytestmark = pytest.mark.slow


def test_hand_sql_and_pandas_compute_the_marts_ibis_computes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    bench = importlib.import_module("bench_marts")
    try:
        rows = bench.run(0.01, repeat=1, root=tmp_path, months=6, rebuild=False)
        total = bench.total(rows)
    finally:
        sys.modules.pop("bench_marts", None)
        sys.modules.pop("bench_olap", None)
    assert list(bench.SQLS) == BENCHMARKED
    assert [r["mart"] for r in rows] == BENCHMARKED, "each one checked equal three ways"
    assert all(r["rows"] > 0 for r in rows), rows
    assert (tmp_path / "oltp-0.01.duckdb").exists(), "the OLTP bench_olap.prepare names"
    assert total["mart"] == "total"
    for col in ("rows", "ibis_s", "sql_s", "pandas_s"):
        assert total[col] == pytest.approx(sum(r[col] for r in rows))
    assert total["ibis_over_sql"] == pytest.approx(total["ibis_s"] / total["sql_s"])
    assert total["pandas_over_ibis"] == pytest.approx(total["pandas_s"] / total["ibis_s"])
