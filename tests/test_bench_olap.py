"""The warehouse benchmark compares like with like: on a small generated account, its
hand-written DuckDB SQL and its pandas code return every column of the two facts the
build's Ibis transforms return, value for value (``compare_implementations`` checks it
before it reports any time, and exits naming the first differing row)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

pytestmark = pytest.mark.slow


@pytest.fixture
def bench_olap(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    module = importlib.import_module("bench_olap")
    yield module
    sys.modules.pop("bench_olap", None)


def test_hand_sql_and_pandas_compute_the_facts_ibis_computes(bench_olap, tmp_path: Path) -> None:
    oltp = bench_olap.prepare(0.01, 6, tmp_path)
    out = bench_olap.compare_implementations(oltp, runs=1)
    for fact in ("fact_payment_attempts", "fact_balance_transactions"):
        assert out[f"{fact} rows"] > 0, fact
        assert {f"{fact} {how} s" for how in ("ibis", "compile", "sql", "pandas")} <= set(out)


def test_a_difference_is_reported_with_the_row(bench_olap) -> None:
    import pandas as pd

    ibis_rows = pd.DataFrame({"id": ["a", "b"], "amount": [1, 2]})
    with pytest.raises(SystemExit, match=r"(?s)sql differs from Ibis.*sql: \('b', 3\)"):
        bench_olap._check_equal("fact_x", ["id", "amount"], ibis=ibis_rows,
                                sql=pd.DataFrame({"id": ["a", "b"], "amount": [1, 3]}))  # fmt: skip


def test_one_day_stays_inside_a_month(bench_olap) -> None:
    assert bench_olap.one_day("2026-01-01T00:25:52+00:00") == (
        "2025-12-30T00:25:52+00:00", "2025-12-31T00:25:52+00:00")  # fmt: skip
    assert bench_olap.one_day("2025-12-15T10:00:00+00:00") == (
        "2025-12-14T10:00:00+00:00", "2025-12-15T10:00:00+00:00")  # fmt: skip
