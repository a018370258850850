"""The command line as a script sees it: exit codes and what it prints."""

from __future__ import annotations

import pytest

from paymodel.cli import main
from paymodel.synthetic import generate


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("generated")
    generate(out, scale=0.01, seed=1, progress=False, events=False, documents=False)
    return out


def test_load_writes_every_table_and_reports_the_invariants(generated, tmp_path, capsys):
    db = tmp_path / "oltp.duckdb"
    assert main(["load", str(generated), "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "invariant payment_intent_amount_received: ok" in out
    assert " 0 broken" in out
    customers = next(line for line in out.splitlines() if line.startswith("customers "))
    assert int(customers.split()[-1].replace(",", "")) > 0


def test_loading_twice_is_refused_and_names_the_key(generated, tmp_path, capsys):
    db = tmp_path / "oltp.duckdb"
    assert main(["load", str(generated), "--db", str(db)]) == 0
    capsys.readouterr()
    assert main(["load", str(generated), "--db", str(db)]) == 1
    err = capsys.readouterr().err
    assert "load refused, nothing written" in err
    assert "key" in err.lower()


def test_load_usage_errors(tmp_path, capsys):
    assert main(["load", str(tmp_path), "--db", str(tmp_path / "missing" / "x.duckdb")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["load", str(tmp_path / "nothing"), "--db", str(tmp_path / "x.duckdb")]) == 1
    assert "no Parquet files" in capsys.readouterr().err
