"""The marts benchmark compares like with like: on a small generated account, its
hand-written DuckDB SQL and its pandas code return every column of each mart the build's
Ibis steps return, value for value (``run`` checks it before it reports any time)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

pytestmark = pytest.mark.slow


def test_hand_sql_and_pandas_compute_the_marts_ibis_computes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    bench = importlib.import_module("bench_marts")
    try:
        rows = bench.run(0.01, repeat=1, root=tmp_path, months=6, rebuild=False)
    finally:
        sys.modules.pop("bench_marts", None)
        sys.modules.pop("bench_olap", None)
    assert [r["mart"] for r in rows] == list(bench.SQLS)
    assert all(r["rows"] > 0 for r in rows), rows
    assert (tmp_path / "oltp-0.01.duckdb").exists(), "the OLTP bench_olap.prepare names"
