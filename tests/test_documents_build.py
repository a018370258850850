"""Building the collections: from OLTP and generated documents, identical on rebuild, twin on PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from paymodel.cli import main
from paymodel.documents import build_documents, open_store
from paymodel.documents.build import read_jsonl
from paymodel.documents.search import search_quality
from paymodel.model.documents import COLLECTIONS
from paymodel.synthetic import generate
from paymodel.synthetic.load import load_into_oltp


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> tuple[Path, Path]:
    """A small generated folder and its OLTP DuckDB file."""
    from paymodel.oltp.ingest import open_target

    root = tmp_path_factory.mktemp("documents_source")
    data = root / "data"
    generate(data, scale=0.01, seed=4, months=8, progress=False)
    db = root / "oltp.duckdb"
    engine = open_target(str(db))
    load_into_oltp(data, engine)
    engine.dispose()
    return data, db


@pytest.fixture(scope="module")
def built(source, tmp_path_factory) -> Path:
    data, db = source
    out = tmp_path_factory.mktemp("built") / "documents"
    report = build_documents(str(db), data, out, progress=False)
    assert all(not r.rejected for r in report.reports.values())
    return out


def test_every_source_record_becomes_a_document(source, built):
    data, db = source
    with open_store(built, read_only=True) as store:
        counts = {name: store.collection(name).count() for name in COLLECTIONS}
        clicks = sum(d["n_events"] for d in store.collection("behaviour").all())
    assert counts["events"] == sum(1 for _ in read_jsonl(data / "events.jsonl")) > 0
    assert clicks == sum(1 for _ in read_jsonl(data / "documents" / "behaviour_events.jsonl")) > 0
    assert (
        counts["feedback"] == sum(1 for _ in read_jsonl(data / "documents" / "feedback.jsonl")) > 0
    )
    with duckdb.connect(str(db), read_only=True) as con:
        assert (
            counts["customer_profiles"] == con.sql("SELECT count(*) FROM customers").fetchone()[0]
        )


def test_a_rebuild_gives_identical_files(source, built, tmp_path):
    data, db = source
    build_documents(str(db), data, built, progress=False)  # over the existing files
    other = tmp_path / "again"
    build_documents(str(db), data, other, progress=False)
    for name in COLLECTIONS:
        assert (built / f"{name}.json").read_bytes() == (other / f"{name}.json").read_bytes(), name


def test_profiles_hold_no_card_number_and_match_the_oltp_totals(source, built):
    _, db = source
    text = (built / "customer_profiles.json").read_text()
    assert not re.search(r"\d{12,19}", text), "no PAN-like digit run in any profile"
    with open_store(built, read_only=True) as store:
        profiles = store.collection("customer_profiles").all()
    with duckdb.connect(str(db), read_only=True) as con:
        expected = dict(con.sql(
            "SELECT customer_id, count(*) FROM charges WHERE customer_id IS NOT NULL GROUP BY 1").fetchall())  # fmt: skip
    assert {
        p["customer_id"]: p["lifetime"]["charges"] for p in profiles if p["lifetime"]["charges"]
    } == expected
    assert all(len(p["recent_charges"]) == min(10, p["lifetime"]["charges"]) for p in profiles)


def test_billing_tickets_link_to_a_charge_of_the_same_customer(source, built):
    _, db = source
    with open_store(built, read_only=True) as store:
        tickets = store.collection("feedback").find(contains=("tags", "billing"))
    with duckdb.connect(str(db), read_only=True) as con:
        owner = dict(con.sql("SELECT id, customer_id FROM charges").fetchall())
    linked = [t for t in tickets if t["charge_id"]]
    assert linked, "the generator's billing tickets follow failed payments"
    assert all(owner[t["charge_id"]] == t["customer_id"] for t in linked)


@pytest.mark.postgres
def test_the_postgres_twin_holds_the_same_documents(source, built, pg_dsn):
    data, db = source
    assert main(["documents", str(db), "--data", str(data), "--out", pg_dsn, "--no-progress"]) == 0
    with open_store(pg_dsn) as pg, open_store(built, read_only=True) as tiny:
        for name in COLLECTIONS:
            assert pg.collection(name).all() == tiny.collection(name).all(), name
        for store in (pg, tiny):
            hits, asked = search_quality(store.collection("feedback"))
            assert asked >= 10, "most labelled texts occur in the generated feedback"
            assert hits / asked >= 0.8, f"{store}: best match relevant for {hits} of {asked}"
        customer = tiny.collection("feedback").all()[0]["customer_id"]
        assert pg.collection("feedback").find({"customer_id": customer}) == tiny.collection(
            "feedback"
        ).find({"customer_id": customer})


def test_the_command_reports_counts_and_refuses_bad_input(source, tmp_path, capsys):
    data, db = source
    assert (
        main(
            [
                "documents",
                str(db),
                "--data",
                str(data),
                "--out",
                str(tmp_path / "d"),
                "--no-progress",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert re.search(r"events: [\d,]+ written", out)
    assert "documents in 4 collections" in out
    assert main(["documents", str(db), "--data", str(tmp_path), "--out", str(tmp_path / "d")]) == 2
    assert "no events.jsonl" in capsys.readouterr().err
    with open_store(tmp_path / "d") as holder:
        holder.collection("events").count()
        assert (
            main(
                [
                    "documents",
                    str(db),
                    "--data",
                    str(data),
                    "--out",
                    str(tmp_path / "d"),
                    "--no-progress",
                ]
            )
            == 2
        )
        assert "open for writing by another writer" in capsys.readouterr().err
