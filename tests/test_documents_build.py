"""Building the collections: from OLTP and generated documents, identical on rebuild, twin on PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from paymodel.cli import main
from paymodel.documents import build_documents, open_store
from paymodel.documents.build import read_jsonl
from paymodel.documents.features import subject_of
from paymodel.documents.search import search_quality
from paymodel.model.documents import COLLECTIONS
from paymodel.olap import build_warehouse, resolve_pii_key
from paymodel.synthetic import generate
from paymodel.synthetic.load import load_into_oltp

KEY = resolve_pii_key(demo=True)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A small generated folder, its OLTP DuckDB file and its warehouse."""
    from paymodel.oltp.ingest import open_target

    root = tmp_path_factory.mktemp("documents_source")
    data = root / "data"
    generate(data, scale=0.01, seed=4, months=12, progress=False)
    db = root / "oltp.duckdb"
    engine = open_target(str(db))
    load_into_oltp(data, engine)
    engine.dispose()
    warehouse = root / "warehouse.duckdb"
    build_warehouse(str(db), str(warehouse), pii_key=KEY)
    return data, db, warehouse


def _build(source, out) -> None:
    data, db, warehouse = source
    report = build_documents(
        str(db), data, out, warehouse=warehouse, pii_key=KEY.key, progress=False
    )
    assert set(report.reports) == set(COLLECTIONS)
    assert all(not r.rejected for r in report.reports.values())


def _command(source, out) -> list[str]:
    data, db, warehouse = source
    return ["documents", str(db), "--data", str(data), "--warehouse", str(warehouse), "--out", str(out),
            "--demo", "--no-progress"]  # fmt: skip


@pytest.fixture(scope="module")
def built(source, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("built") / "documents"
    _build(source, out)
    return out


def test_every_source_record_becomes_a_document(source, built):
    data, db, _ = source
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
    _build(source, built)  # over the existing files
    other = tmp_path / "again"
    _build(source, other)
    for name in COLLECTIONS:
        assert (built / f"{name}.json").read_bytes() == (other / f"{name}.json").read_bytes(), name


def test_ml_features_match_the_warehouse_and_name_no_customer(source, built):
    _, _, warehouse = source
    text = (built / "ml_features.json").read_text()
    assert "cus_" not in text, "no customer id in clear"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.sql(
            "SELECT c.customer_id, c.email_hash, count(a.charge_id) FROM dim_customer c "
            "LEFT JOIN fact_payment_attempts a ON a.customer_id = c.customer_id "
            "AND a.created >= (SELECT max(as_of) FROM warehouse_builds) - INTERVAL 90 DAY "
            "WHERE c.is_current GROUP BY ALL").fetchall()  # fmt: skip
    with open_store(built, read_only=True) as store:
        docs = {d["subject"]: d for d in store.collection("ml_features").all()}
    for customer_id, email_hash, attempts in rows:
        doc = docs[subject_of(customer_id, KEY.key)]
        assert doc["email_hash"] == email_hash, "the same keyed hash as the warehouse"
        assert doc["payments"]["attempts_90d"] == attempts


def test_profiles_hold_no_card_number_and_match_the_oltp_totals(source, built):
    _, db, _ = source
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
    _, db, _ = source
    with open_store(built, read_only=True) as store:
        tickets = store.collection("feedback").find(contains=("tags", "billing"))
    with duckdb.connect(str(db), read_only=True) as con:
        owner = dict(con.sql("SELECT id, customer_id FROM charges").fetchall())
    linked = [t for t in tickets if t["charge_id"]]
    assert linked, "the generator's billing tickets follow failed payments"
    assert all(owner[t["charge_id"]] == t["customer_id"] for t in linked)


@pytest.mark.postgres
def test_the_postgres_twin_holds_the_same_documents(source, built, pg_dsn):
    assert main(_command(source, pg_dsn)) == 0
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


def test_the_command_reports_counts_and_refuses_bad_input(source, tmp_path, capsys, monkeypatch):
    out_dir = tmp_path / "d"
    assert main(_command(source, out_dir)) == 0
    out = capsys.readouterr().out
    assert re.search(r"events: [\d,]+ written", out)
    assert "documents in 5 collections" in out
    bad_data = _command(source, out_dir)
    bad_data[bad_data.index("--data") + 1] = str(tmp_path)
    assert main(bad_data) == 2
    assert "no events.jsonl" in capsys.readouterr().err
    monkeypatch.delenv("PAYMODEL_PII_KEY", raising=False)
    assert main([a for a in _command(source, out_dir) if a != "--demo"]) == 2
    assert "PAYMODEL_PII_KEY" in capsys.readouterr().err
    with open_store(out_dir) as holder:
        holder.collection("events").count()
        assert main(_command(source, out_dir)) == 2
        assert "open for writing by another writer" in capsys.readouterr().err
