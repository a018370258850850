"""Ingestion of Stripe objects and events, on DuckDB and PostgreSQL.

Deduplication by event id, older snapshots never winning, the pending area, the
quarantine, per-file atomicity (a crash mid-file), counts that add up, and the CLI.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import paymodel.oltp.ingest as ingest_module
from paymodel.cli import main as cli_main
from paymodel.model.stripe import to_stripe_object
from paymodel.oltp.engines import duckdb_engine
from paymodel.oltp.ingest import (
    EXIT_OK,
    EXIT_QUARANTINED,
    EXIT_USAGE,
    IngestReport,
    ensure_schema,
    ingest,
    main_ingest,
    read_records,
)
from paymodel.paths import DATA_DIR

STORY = [DATA_DIR / "stripe" / "catalog.json", DATA_DIR / "stripe" / "events.jsonl"]
T0 = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def customer(**changes: Any) -> dict[str, Any]:
    row = {"id": "cus_T1", "email": "li@example.com", "name": "Li Wei", "phone": None,
           "currency": "usd", "balance": 0, "delinquent": False, "preferred_locale": None,
           "created": T0, "metadata": {}}  # fmt: skip
    return {**row, **changes}


def payment_intent(**changes: Any) -> dict[str, Any]:
    row = {"id": "pi_T1", "customer_id": "cus_T1", "payment_method_id": None,
           "currency": "usd", "amount": 2000, "amount_capturable": 0, "amount_received": 0,
           "status": "requires_payment_method", "capture_method": "automatic",
           "last_payment_error_code": None, "cancellation_reason": None, "canceled_at": None,
           "description": None, "created": at(10), "metadata": {}}  # fmt: skip
    return {**row, **changes}


def charge(**changes: Any) -> dict[str, Any]:
    row = {"id": "ch_T1", "payment_intent_id": "pi_T1", "customer_id": "cus_T1",
           "payment_method_id": None, "currency": "usd", "amount": 2000,
           "amount_captured": 2000, "amount_refunded": 0, "status": "succeeded", "paid": True,
           "captured": True, "refunded": False, "disputed": False, "failure_code": None,
           "failure_message": None, "outcome_type": "authorized",
           "outcome_network_status": "approved_by_network", "outcome_risk_level": "normal",
           "outcome_risk_score": 7, "three_d_secure_result": None, "created": at(20),
           "metadata": {}}  # fmt: skip
    return {**row, **changes}


def event(
    event_id: str, kind: str, table: str, row: dict, created: datetime, related: dict | None = None
) -> dict:
    """A Stripe Event carrying the snapshot of ``row``."""
    return {
        "id": event_id, "object": "event", "type": kind, "created": int(created.timestamp()),
        "api_version": "2025-09-30.clover", "livemode": False, "pending_webhooks": 0,
        "request": {"id": None, "idempotency_key": None},
        "data": {"object": to_stripe_object(table, row, related)},
    }  # fmt: skip


def table_rows(engine: sa.Engine, table: str, order: str = "1") -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [
            dict(r._mapping)
            for r in conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY {order}"))
        ]


def count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


def snapshot_of_database(engine: sa.Engine) -> dict[str, list[tuple]]:
    """Every table's rows (bookkeeping timestamps excluded), to compare two databases."""
    out = {}
    with engine.connect() as conn:
        for name in sa.inspect(conn).get_table_names():
            rows = conn.execute(sa.text(f"SELECT * FROM {name}")).mappings().all()
            drop = {"applied_at", "received_at", "first_seen_at", "last_seen_at"}
            out[name] = sorted(
                (
                    tuple(
                        (k, json.dumps(v, sort_keys=True, default=str))
                        for k, v in r.items()
                        if k not in drop
                    )
                    for r in rows
                ),
            )
    return out


def assert_adds_up(report: IngestReport) -> None:
    assert report.read == report.applied + report.duplicate + report.pending + report.quarantined
    for kind, c in report.by_type.items():
        assert c["read"] == c["applied"] + c["duplicate"] + c["pending"] + c["quarantined"], kind
    assert sum(c["read"] for c in report.by_type.values()) == report.read


@pytest.fixture
def db(engine: sa.Engine) -> sa.Engine:
    """The ``engine`` fixture (DuckDB, PostgreSQL) with the schema."""
    ensure_schema(engine)
    return engine


# --- the story under data/stripe ------------------------------------------------------


def test_story_counts_tables_and_rerun(db: sa.Engine) -> None:
    report = ingest(STORY, db)
    assert_adds_up(report)
    lines = sum(1 for line in STORY[1].read_text().splitlines() if line.strip())
    assert report.read == lines + 2  # the catalog list holds a product and a price
    assert (report.duplicate, report.pending, report.quarantined) == (1, 0, 1)
    assert report.superseded == 1  # customer.created arrived after customer.updated
    # the update delivered before its create wins: the create is older
    (cus,) = table_rows(db, "customers")
    assert cus["phone"] == "+14155550123"
    assert cus["currency"] == "usd"
    # the charge arrived before its payment intent, waited, then was applied
    (ch,) = table_rows(db, "charges")
    assert ch["payment_intent_id"] == "pi_3RZqA3Jenny"
    assert ch["amount_refunded"] == 1200
    assert count(db, "ingest_pending") == 0
    # the balance transaction expanded in the charge was updated in place (pending -> available)
    txns = {r["id"]: r for r in table_rows(db, "balance_transactions")}
    assert txns["txn_3RZqA3Jenny"]["status"] == "available"
    assert txns["txn_3RZqQ8JennyRefund"]["refund_id"] == "re_3RZqA3JennyPart"
    (q,) = table_rows(db, "ingest_quarantine")
    assert q["rule"] == "invalid_object"
    assert "refund re_3RZqA3JennyPart: amount must be an integer, got str '1200'" in q["error"]
    assert q["source"].endswith("events.jsonl")
    assert json.loads(q["raw"])["type"] == "refund.updated"
    events_before = count(db, "events")
    again = ingest(STORY, db)
    assert again.applied == 0
    assert again.quarantined == 1
    assert again.duplicate == again.read - 1
    assert count(db, "events") == events_before
    assert table_rows(db, "ingest_quarantine")[0]["times_seen"] == 2


# --- deduplication and ordering ------------------------------------------------------


def test_events_are_deduplicated_by_id_within_and_across_runs(db: sa.Engine) -> None:
    created = event("evt_1", "customer.created", "customers", customer(), T0)
    report = ingest([created, created, created], db)
    assert (report.applied, report.duplicate) == (1, 2)
    assert ingest([created], db).duplicate == 1
    assert count(db, "events") == 1


def test_an_older_snapshot_never_overwrites_a_newer_one(db: sa.Engine) -> None:
    new = event("evt_2", "customer.updated", "customers", customer(name="Li Wei-Chen"), at(100))
    old = event("evt_1", "customer.created", "customers", customer(), at(0))
    report = ingest([new, old], db)
    assert report.applied == 2  # both events are recorded
    assert report.superseded == 1
    assert table_rows(db, "customers")[0]["name"] == "Li Wei-Chen"
    assert count(db, "events") == 2
    with db.connect() as conn:
        version = conn.execute(sa.text("SELECT version, event_id FROM ingest_versions")).one()
    assert version.event_id == "evt_2"
    assert version.version == at(100)


def test_plain_objects_are_as_of_their_own_created_or_updated(db: sa.Engine) -> None:
    plain = to_stripe_object("customers", customer(name="From the API"))
    first = ingest([plain], db)
    assert first.applied == 1
    assert ingest([plain], db).duplicate == 1  # same snapshot again
    ingest([event("evt_1", "customer.updated", "customers", customer(name="Evented"), at(50))], db)
    later_plain = ingest([plain], db)  # as of created (T0): older than the event
    assert later_plain.duplicate == 1
    assert table_rows(db, "customers")[0]["name"] == "Evented"
    product = {
        "object": "product",
        "id": "prod_1",
        "name": "A",
        "active": True,
        "created": 100,
        "updated": 100,
    }
    ingest([product], db)
    ingest([{**product, "name": "B", "updated": 200}, {**product, "name": "C", "updated": 150}], db)
    assert table_rows(db, "products")[0]["name"] == "B"


def test_pending_until_the_parent_arrives_in_a_later_run(db: sa.Engine) -> None:
    ch = event("evt_3", "charge.succeeded", "charges", charge(), at(20))
    first = ingest([ch], db)
    assert (first.pending, first.by_type["charge"]["pending"]) == (1, 1)
    assert count(db, "charges") == 0
    (waiting,) = table_rows(db, "ingest_pending")
    assert (waiting["waiting_for_table"], waiting["waiting_for_id"]) == ("payment_intents", "pi_T1")
    assert (waiting["object_type"], waiting["object_id"], waiting["event_id"]) == (
        "charge",
        "ch_T1",
        "evt_3",
    )
    assert count(db, "events") == 1  # the event itself is recorded: a redelivery is a duplicate
    assert ingest([ch], db).duplicate == 1
    pi = event("evt_2", "payment_intent.created", "payment_intents", payment_intent(), at(10))
    second = ingest([pi], db)
    assert (second.pending, second.released) == (1, 0)  # the payment intent waits for its customer
    waiting_for = {r["object_id"]: r["waiting_for_id"] for r in table_rows(db, "ingest_pending")}
    assert waiting_for == {"ch_T1": "pi_T1", "pi_T1": "cus_T1"}
    third = ingest([event("evt_1", "customer.created", "customers", customer(), T0)], db)
    assert (third.applied, third.released) == (1, 2)
    assert count(db, "ingest_pending") == 0
    assert table_rows(db, "charges")[0]["id"] == "ch_T1"


def test_pending_within_a_run_counts_as_applied(db: sa.Engine) -> None:
    records = [
        event("evt_3", "charge.succeeded", "charges", charge(), at(20)),
        event("evt_2", "payment_intent.created", "payment_intents", payment_intent(), at(10)),
        event("evt_1", "customer.created", "customers", customer(), T0),
    ]
    report = ingest(records, db)
    assert (report.applied, report.pending) == (3, 0)
    assert count(db, "charges") == 1


def count_mappings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the objects the record-at-a-time path maps to rows from now on, in
    order (the set-based path is turned off: it maps a staged file in bulk)."""
    monkeypatch.setenv("PAYMODEL_INGEST_SET", "0")
    mapped: list[str] = []
    real = ingest_module.from_stripe_object

    def counting(obj: dict) -> list:
        mapped.append(obj["id"])
        return real(obj)

    monkeypatch.setattr(ingest_module, "from_stripe_object", counting)
    return mapped


def test_a_release_within_the_run_applies_the_rows_mapped_on_arrival(
    db: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record left pending by this run is released from the rows mapped when it was
    read (not parsed and mapped again), and ends exactly as one released by a later run."""
    records = [
        event("evt_3", "charge.succeeded", "charges", charge(), at(20)),
        event("evt_2", "payment_intent.created", "payment_intents", payment_intent(), at(10)),
        event("evt_1", "customer.created", "customers", customer(), T0),
    ]
    mapped = count_mappings(monkeypatch)
    report = ingest(records, db)
    assert (report.applied, report.pending, report.released) == (3, 0, 0)
    assert sorted(mapped) == sorted(["evt_3", "ch_T1", "evt_2", "pi_T1", "evt_1", "cus_T1"])
    in_one_run = snapshot_of_database(db)
    other = duckdb_engine()
    try:
        ensure_schema(other)
        for record in records:  # one run each: releases read ingest_pending back
            ingest([record], other)
        assert count(other, "ingest_pending") == 0
        later = snapshot_of_database(other)
    finally:
        other.dispose()
    if db.dialect.name == "duckdb":  # the same engine: the same rows, table for table
        assert later == in_one_run
    assert {k: len(v) for k, v in later.items()} == {k: len(v) for k, v in in_one_run.items()}


def test_a_redelivered_event_is_never_mapped_beyond_its_own_row(
    db: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch's event ids are looked up before any snapshot is mapped: a redelivery of a
    stored event (or a second copy in the batch) costs its event row only."""
    records = [event("evt_1", "customer.created", "customers", customer(), T0),
               event("evt_2", "customer.updated", "customers", customer(name="Li W."), at(5))]  # fmt: skip
    first = tmp_path / "first.jsonl"
    first.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    assert ingest(first, db).applied == 2
    again = tmp_path / "again.jsonl"
    again.write_text("\n".join(json.dumps(r) for r in [*records, records[0]]) + "\n")
    mapped = count_mappings(monkeypatch)
    report = ingest(again, db)
    assert (report.read, report.duplicate, report.applied) == (3, 3, 0)
    assert sorted(mapped) == ["evt_1", "evt_1", "evt_2"]  # no snapshot was mapped
    assert table_rows(db, "customers")[0]["name"] == "Li W."


def test_a_corrected_copy_in_the_same_batch_is_applied_after_a_refused_one(
    db: sa.Engine, tmp_path: Path
) -> None:
    """Mapped ahead of its turn or not, a copy whose first delivery was refused is applied."""
    good = event("evt_1", "customer.created", "customers", customer(), T0)
    bad = json.loads(json.dumps(good))
    bad["data"]["object"]["balance"] = "a lot"  # not an integer: the snapshot is invalid
    path = tmp_path / "copies.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in (bad, good, good)) + "\n")
    report = ingest(path, db)
    assert (report.quarantined, report.applied, report.duplicate) == (1, 1, 1)
    assert [r["id"] for r in table_rows(db, "customers")] == ["cus_T1"]
    (refused,) = table_rows(db, "ingest_quarantine")
    assert refused["rule"] == "invalid_object"
    assert "balance" in refused["error"]


def test_an_older_snapshot_waiting_is_dropped_when_a_newer_one_is_applied(db: sa.Engine) -> None:
    ingest([event("evt_1", "customer.created", "customers", customer(), T0)], db)
    old = event("evt_2", "payment_intent.created", "payment_intents",
                payment_intent(payment_method_id="pm_never"), at(10))  # fmt: skip
    assert ingest([old], db).pending == 1
    newer = event("evt_3", "payment_intent.canceled", "payment_intents",
                  payment_intent(status="canceled", canceled_at=at(30)), at(30))  # fmt: skip
    report = ingest([newer], db)
    assert report.applied == 1
    assert report.released == 1  # the old snapshot was released as superseded
    assert count(db, "ingest_pending") == 0
    assert table_rows(db, "payment_intents")[0]["status"] == "canceled"


def test_foreign_keys_stay_enforced_by_the_database(db: sa.Engine) -> None:
    ingest([event("evt_1", "customer.created", "customers", customer(), T0)], db)
    with pytest.raises(sa.exc.IntegrityError), db.begin() as conn:
        conn.execute(sa.text("INSERT INTO customer_addresses (customer_id) VALUES ('cus_missing')"))


def test_owned_rows_follow_the_snapshot(db: sa.Engine) -> None:
    address = {"customer_id": "cus_T1", "line1": "1 Main St", "line2": None, "city": "Austin",
               "state": "TX", "postal_code": "78701", "country": "US"}  # fmt: skip
    ingest(
        [
            event(
                "evt_1",
                "customer.created",
                "customers",
                customer(),
                T0,
                {"customer_addresses": [address]},
            )
        ],
        db,
    )
    assert count(db, "customer_addresses") == 1
    ingest([event("evt_2", "customer.updated", "customers", customer(), at(5))], db)
    assert count(db, "customer_addresses") == 0


# --- quarantine ------------------------------------------------------------------------


def test_quarantine_keeps_the_raw_record_the_rule_and_when(db: sa.Engine, tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    transfer = {"id": "evt_9", "object": "event", "type": "transfer.created", "created": 1748854800,
                "livemode": False, "pending_webhooks": 0, "request": None, "api_version": None,
                "data": {"object": {"object": "transfer", "id": "tr_1", "amount": 100}}}  # fmt: skip
    bad_currency = event("evt_8", "customer.created", "customers", customer(currency="xyz"), T0)
    lines = [
        '{"object": "customer", "id": "cus_T9", ',  # cut short
        "[1, 2, 3]",
        json.dumps(transfer),
        json.dumps(bad_currency),
        json.dumps(
            {
                "object": "customer",
                "id": "cus_T8",
                "balance": 0,
                "delinquent": False,
                "created": -(10**20),
            }
        ),
        json.dumps(event("evt_1", "customer.created", "customers", customer(), T0)),
    ]
    path.write_text("\n".join(lines) + "\n")
    report = ingest(path, db)
    assert_adds_up(report)
    assert (report.read, report.applied, report.quarantined) == (6, 1, 5)
    assert report.by_type["transfer"]["quarantined"] == 1
    rows = {r["source_line"]: r for r in table_rows(db, "ingest_quarantine")}
    assert rows[1]["rule"] == "malformed_json"
    assert rows[1]["raw"] == lines[0]
    assert rows[2]["rule"] == "not_an_object"
    assert rows[3]["rule"] == "unknown_object_type"
    assert (rows[3]["object_type"], rows[3]["object_id"], rows[3]["event_id"]) == (
        "transfer",
        "tr_1",
        "evt_9",
    )
    assert rows[4]["rule"] == "unknown_reference"
    assert "customer cus_T1: currencies has no xyz" in rows[4]["error"]
    assert rows[5]["rule"] == "invalid_object"
    assert "created -100000000000000000000 is not a unix timestamp" in rows[5]["error"]
    assert all(r["first_seen_at"] is not None and r["times_seen"] == 1 for r in rows.values())
    assert count(db, "events") == 1  # quarantined events are not recorded: a fix can be replayed


def test_a_record_the_database_refuses_is_quarantined_and_the_file_still_lands(
    db: sa.Engine,
) -> None:
    product = {"object": "product", "id": "prod_1", "name": "A", "active": True, "created": 100}
    price = {"object": "price", "id": "price_1", "product": "prod_1", "currency": "usd",
             "unit_amount": 500, "type": "one_time", "billing_scheme": "per_unit",
             "lookup_key": "basic", "active": True, "created": 100}  # fmt: skip
    clash = {**price, "id": "price_2"}  # the same lookup_key: a unique key of the database
    report = ingest([product, price, clash, {**price, "id": "price_3", "lookup_key": None}], db)
    assert (report.applied, report.quarantined) == (3, 1)
    (q,) = table_rows(db, "ingest_quarantine")
    assert q["rule"] == "database_constraint"
    assert q["object_id"] == "price_2"
    assert [r["id"] for r in table_rows(db, "prices", "id")] == ["price_1", "price_3"]


# --- atomicity -----------------------------------------------------------------------


def test_a_crash_mid_file_leaves_the_database_as_before_and_a_rerun_finishes(
    db: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest([STORY[0]], db)  # the catalog: committed before the crash
    before = snapshot_of_database(db)
    calls = {"n": 0}
    original = ingest_module._process

    def crash_on_the_seventh(run: Any, record: Any, culprit: str) -> None:
        calls["n"] += 1
        if calls["n"] == 7:
            raise RuntimeError("power cut")
        original(run, record, culprit)

    monkeypatch.setattr(ingest_module, "_process", crash_on_the_seventh)
    monkeypatch.setenv("PAYMODEL_INGEST_SET", "0")  # the crash is in the record-at-a-time path
    with pytest.raises(RuntimeError, match="power cut"):
        ingest(STORY[1], db)
    assert snapshot_of_database(db) == before
    monkeypatch.setattr(ingest_module, "_process", original)
    ingest(STORY[1], db)
    clean = duckdb_engine()
    ensure_schema(clean)
    ingest(STORY, clean)
    assert snapshot_of_database(db) == snapshot_of_database(clean)
    clean.dispose()


def test_a_crash_in_a_set_based_write_leaves_the_database_as_before(
    db: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The set-based path writes in the file's one transaction too: a crash between its
    writes (after the rows, before the versions) leaves nothing of the file."""
    from paymodel.oltp import ingest_set

    ingest([STORY[0]], db)
    before = snapshot_of_database(db)
    original = ingest_set._SetRun.write_versions

    def crash(run: Any) -> None:
        raise RuntimeError("power cut")

    monkeypatch.setenv("PAYMODEL_INGEST_SET", "1")
    monkeypatch.setattr(ingest_set._SetRun, "write_versions", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        ingest(STORY[1], db)
    assert snapshot_of_database(db) == before
    monkeypatch.setattr(ingest_set._SetRun, "write_versions", original)
    assert ingest(STORY[1], db).set_based == [str(STORY[1])]
    clean = duckdb_engine()
    ensure_schema(clean)
    ingest(STORY, clean)
    assert snapshot_of_database(db) == snapshot_of_database(clean)
    clean.dispose()


# --- formats ---------------------------------------------------------------------------


def test_formats_jsonl_array_list_response_and_single_object(tmp_path: Path) -> None:
    objs = [{"object": "product", "id": f"prod_{i}"} for i in range(3)]
    (tmp_path / "a.jsonl").write_text("\ufeff" + "\n".join(json.dumps(o) for o in objs) + "\n\n")
    (tmp_path / "b.json").write_text(json.dumps(objs, indent=2))
    (tmp_path / "c.json").write_text(
        json.dumps({"object": "list", "data": objs, "has_more": False})
    )
    (tmp_path / "d.json").write_text(json.dumps(objs[0], indent=2))
    expected_lines = {"a.jsonl": [1, 2, 3], "b.json": [1, 2, 3], "c.json": [1, 1, 1], "d.json": [1]}
    for name, lines in expected_lines.items():
        records = list(read_records(tmp_path / name))
        assert [r.value for r in records] == objs[: len(lines)], name
        assert [r.line for r in records] == lines, name  # c.json: all on line 1


def test_json_lines_are_split_on_newlines_only(tmp_path: Path) -> None:
    """U+2028 is legal inside a JSON string; splitting on it would break the record."""
    objs = [{"object": "product", "id": "prod_1", "name": "A\u2028B"}, [1, 2]]
    (tmp_path / "e.jsonl").write_text("\n".join(json.dumps(o, ensure_ascii=False) for o in objs))
    assert [r.value for r in read_records(tmp_path / "e.jsonl")] == objs
    (tmp_path / "f.json").write_text(json.dumps(objs[1]))
    assert [r.value for r in read_records(tmp_path / "f.json")] == [1, 2]


def test_flushes_within_a_file_keep_it_atomic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_module, "FLUSH_EVERY", 2)
    monkeypatch.setattr(ingest_module, "KEEP_RECENT", 1)  # rows are read back after flushes
    monkeypatch.setenv("PAYMODEL_INGEST_SET", "0")  # flushes are the record-at-a-time path's
    engine = duckdb_engine()
    ensure_schema(engine)
    report = ingest(STORY, engine)
    clean = duckdb_engine()
    ensure_schema(clean)
    monkeypatch.setattr(ingest_module, "FLUSH_EVERY", 5000)
    assert ingest(STORY, clean).as_dict() == report.as_dict()
    assert snapshot_of_database(engine) == snapshot_of_database(clean)
    calls = {"n": 0}
    original = ingest_module._process

    def crash_late(run: Any, record: Any, culprit: str) -> None:
        calls["n"] += 1
        if calls["n"] == 9:  # after several flushes of the same transaction
            raise RuntimeError("power cut")
        original(run, record, culprit)

    fresh = duckdb_engine()
    ensure_schema(fresh)
    ingest([STORY[0]], fresh)
    before = snapshot_of_database(fresh)
    monkeypatch.setattr(ingest_module, "FLUSH_EVERY", 2)
    monkeypatch.setattr(ingest_module, "_process", crash_late)
    with pytest.raises(RuntimeError, match="power cut"):
        ingest(STORY[1], fresh)
    assert snapshot_of_database(fresh) == before
    for e in (engine, clean, fresh):
        e.dispose()


def test_a_list_response_inside_json_lines_counts_its_items() -> None:
    engine = duckdb_engine()
    ensure_schema(engine)
    listing = {"object": "list", "data": [{"object": "product", "id": "prod_1", "name": "A",
               "active": True, "created": 1}, {"object": "product", "id": "prod_2"}]}  # fmt: skip
    report = ingest([listing], engine)
    assert (report.read, report.applied, report.quarantined) == (2, 1, 1)
    engine.dispose()


# --- the command line ------------------------------------------------------------------


def test_cli_creates_the_database_and_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "new.duckdb"
    assert main_ingest([str(STORY[0])], str(target)) == EXIT_OK
    assert target.exists()
    assert "read 2: applied 2, duplicate 0, pending 0, quarantined 0" in capsys.readouterr().out
    assert main_ingest([str(STORY[1])], str(target), as_json=True) == EXIT_QUARANTINED
    out = json.loads(capsys.readouterr().out)
    assert out["read"] == out["applied"] + out["duplicate"] + out["pending"] + out["quarantined"]
    assert out["quarantined"] == 1
    assert cli_main(["ingest", str(STORY[0]), "--db", str(target), "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["duplicate"] == 2


def test_cli_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "x.duckdb"
    assert main_ingest([str(tmp_path / "missing.jsonl")], str(target)) == EXIT_USAGE
    assert "cannot read" in capsys.readouterr().err
    assert not target.exists()  # nothing is created when a file cannot be read
    assert main_ingest([str(STORY[0])], str(tmp_path / "no" / "such" / "dir.duckdb")) == EXIT_USAGE
    assert "does not exist" in capsys.readouterr().err
    assert main_ingest([str(STORY[0])], str(tmp_path)) == EXIT_USAGE


def test_cli_on_postgresql(pg_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert pg_dsn.startswith("postgresql://")
    assert main_ingest([str(p) for p in STORY], pg_dsn, as_json=True) == EXIT_QUARANTINED
    out = json.loads(capsys.readouterr().out)
    assert (out["applied"], out["duplicate"], out["quarantined"]) == (out["read"] - 2, 1, 1)


def test_concurrent_ingesters_on_postgresql_take_turns(pg_engine: sa.Engine) -> None:
    """Two runs of the same files at once: no event refused, same result as one run."""
    from concurrent.futures import ThreadPoolExecutor

    ensure_schema(pg_engine)
    with ThreadPoolExecutor(max_workers=2) as pool:
        reports = list(pool.map(lambda _: ingest(STORY, pg_engine), range(2)))
    assert sorted(r.applied for r in reports) == [0, reports[0].applied + reports[1].applied]
    assert all(r.quarantined == 1 for r in reports)  # the malformed story record, each time
    (q,) = table_rows(pg_engine, "ingest_quarantine")
    assert q["rule"] == "invalid_object"
    assert q["times_seen"] == 2
    clean = duckdb_engine()
    ensure_schema(clean)
    ingest(STORY, clean)
    assert count(pg_engine, "events") == count(clean, "events")
    clean.dispose()


def test_ensure_schema_adds_the_tables_an_older_database_lacks(tmp_path: Path) -> None:
    engine = duckdb_engine(tmp_path / "old.duckdb")
    assert "customers" in ensure_schema(engine)
    with engine.begin() as conn:
        for table in ("ingest_quarantine", "ingest_pending", "ingest_versions"):
            conn.execute(sa.text(f"DROP TABLE {table}"))
    assert ensure_schema(engine) == ["ingest_versions", "ingest_pending", "ingest_quarantine"]
    assert ensure_schema(engine) == []
    assert ingest(STORY, engine).applied > 0
    engine.dispose()


def test_references_that_change_while_referenced(db: sa.Engine) -> None:
    """Detach a card, switch a seat's price, change a customer's currency: all while other
    rows reference those rows (DuckDB refuses this for indexed columns; the model declares
    these foreign keys on PostgreSQL only and ingestion enforces them everywhere)."""
    ingest(STORY, db)
    later = int(T0.timestamp()) + 30 * 86400

    def changed(
        table: str, row_id: str, kind: str, related: dict | None = None, **changes: Any
    ) -> dict:
        (row,) = [r for r in table_rows(db, table) if r["id"] == row_id]
        row = {**row, **changes}
        return event(
            f"evt_change_{table}", kind, table, row, datetime.fromtimestamp(later, UTC), related
        )

    price = {"object": "price", "id": "price_annual", "product": "prod_SQ7teamplan",
             "currency": "usd", "unit_amount": 24000, "type": "recurring",
             "billing_scheme": "per_unit", "active": True, "created": later - 10,
             "recurring": {"interval": "year", "interval_count": 1, "usage_type": "licensed"}}  # fmt: skip
    (item,) = table_rows(db, "subscription_items")
    item = {**item, "price_id": "price_annual"}
    (address,) = table_rows(db, "customer_addresses")
    records = [
        price,
        changed(
            "payment_methods", "pm_1RZq9ZVisa4242", "payment_method.detached", customer_id=None
        ),
        changed(
            "subscriptions",
            "sub_1RZqA1TeamJenny",
            "customer.subscription.updated",
            {"subscription_items": [item]},
            default_payment_method_id=None,
        ),
        changed(
            "customers",
            "cus_SQ7jennyrosen",
            "customer.updated",
            {"customer_addresses": [address]},
            currency="eur",
        ),
        # (its customer must stay: the charge's customer agrees with it, an agreement key)
        changed(
            "payment_intents", "pi_3RZqA3Jenny", "payment_intent.updated", payment_method_id=None
        ),
    ]
    report = ingest(records, db)
    assert (report.applied, report.quarantined) == (5, 0)
    assert table_rows(db, "payment_methods")[0]["customer_id"] is None
    assert table_rows(db, "subscription_items")[0]["price_id"] == "price_annual"
    assert table_rows(db, "customers")[0]["currency"] == "eur"
    assert table_rows(db, "subscriptions")[0]["default_payment_method_id"] is None
    assert table_rows(db, "payment_intents")[0]["payment_method_id"] is None
    assert count(db, "charges") == 1  # still referencing the detached card


# --- ties and outside writers ---------------------------------------------------------


@pytest.mark.parametrize("order", ["a_then_b", "b_then_a"])
def test_a_same_second_tie_goes_to_the_later_arrival(db: sa.Engine, order: str) -> None:
    """Two snapshots of one object taken in the same second: the one that arrives last wins."""
    a = event("evt_a", "customer.updated", "customers", customer(name="Arrived A"), at(50))
    b = event("evt_b", "customer.updated", "customers", customer(name="Arrived B"), at(50))
    first, last = (a, b) if order == "a_then_b" else (b, a)
    report = ingest([first, last], db)  # in one run
    assert (report.applied, report.superseded) == (2, 0)
    assert table_rows(db, "customers")[0]["name"] == last["data"]["object"]["name"]
    again = event("evt_c", "customer.updated", "customers", customer(name="Third"), at(50))
    assert ingest([again], db).applied == 1  # and across runs
    assert table_rows(db, "customers")[0]["name"] == "Third"
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT event_id FROM ingest_versions")).scalar_one() == "evt_c"


def test_a_same_second_tie_of_plain_objects_goes_to_the_later_arrival(db: sa.Engine) -> None:
    product = {"object": "product", "id": "prod_tie", "name": "First", "active": True,
               "created": 100, "updated": 200}  # fmt: skip
    ingest([product, {**product, "name": "Second"}], db)
    assert table_rows(db, "products")[0]["name"] == "Second"
    ingest([{**product, "name": "Third"}], db)
    assert table_rows(db, "products")[0]["name"] == "Third"


def _wait_for_the_customer(db: sa.Engine) -> None:
    report = ingest([event("evt_pi", "payment_intent.created", "payment_intents",
                           payment_intent(), at(10))], db)  # fmt: skip
    assert report.pending == 1
    assert [(r["waiting_for_table"], r["waiting_for_id"]) for r in table_rows(db, "ingest_pending")] == [
        ("customers", "cus_T1")
    ]


def test_pending_is_released_when_the_flows_write_the_parent(db: sa.Engine) -> None:
    """The parent arrives outside ingestion (a payment flow): the next run releases the child."""
    from paymodel.oltp.flows import ManualClock, Payments

    _wait_for_the_customer(db)

    class FixedIds:
        def new(self, prefix: str) -> str:
            return "cus_T1" if prefix == "cus_" else f"{prefix}flow1"

    Payments(db, clock=ManualClock(T0), ids=FixedIds()).create_customer(email="li@example.com")
    report = ingest([to_stripe_object("products", {
        "id": "prod_other", "name": "Unrelated", "description": None, "active": True,
        "created": T0, "metadata": None})], db)  # fmt: skip
    assert (report.applied, report.released) == (1, 1)
    assert count(db, "ingest_pending") == 0
    assert table_rows(db, "payment_intents")[0]["customer_id"] == "cus_T1"


def test_pending_is_released_when_a_load_writes_the_parent(db: sa.Engine) -> None:
    """The parent arrives by a bulk load (plain INSERT): the next run releases the child."""
    from paymodel.oltp.schema import oltp_tables

    _wait_for_the_customer(db)
    with db.begin() as conn:
        conn.execute(sa.insert(oltp_tables(db)["customers"]), [customer()])
    report = ingest([event("evt_other", "customer.updated", "customers",
                           customer(name="Li W."), at(5))], db)  # fmt: skip
    assert report.released == 1
    assert count(db, "ingest_pending") == 0
    assert count(db, "payment_intents") == 1
    assert table_rows(db, "customers")[0]["name"] == "Li W."
def test_a_disagreeing_reference_is_quarantined_naming_the_columns(db: sa.Engine) -> None:
    """A refund whose payment intent is not its charge's: refused on every engine, by rule."""
    ingest(STORY, db)
    (charge,) = table_rows(db, "charges")
    bad = {
        "object": "refund", "id": "re_disagrees", "amount": 100, "currency": charge["currency"],
        "charge": charge["id"], "payment_intent": "pi_someoneelse", "status": "succeeded",
        "reason": None, "created": int(T0.timestamp()) + 86400, "metadata": {},
    }  # fmt: skip
    intent = {**table_rows(db, "payment_intents")[0], "id": "pi_someoneelse"}
    from paymodel.model.stripe import to_stripe_object

    report = ingest([to_stripe_object("payment_intents", intent), bad], db)
    assert (report.applied, report.quarantined) == (1, 1)
    (row,) = [r for r in table_rows(db, "ingest_quarantine") if r["object_id"] == "re_disagrees"]
    assert row["rule"] == "invalid_object"
    assert "refund re_disagrees: payment_intent_id pi_someoneelse disagrees with charges" in row["error"]


@pytest.mark.parametrize("set_based", [True, False], ids=["set-based", "record-at-a-time"])
def test_a_rate_finer_than_its_column_is_rounded_as_the_database_rounds_it(
    db: sa.Engine, tmp_path: Path, set_based: bool
) -> None:
    """An exchange rate with 14 decimal places (a float Stripe may well send) into a
    ``NUMERIC(20, 10)``: rounded half away from zero on both engines and both paths, as
    PostgreSQL rounds it. Unrounded, Arrow refused it for the column's decimal type and
    the whole file failed with ``ArrowInvalid``."""
    bt = {"object": "balance_transaction", "id": "txn_fine", "type": "payout",
          "reporting_category": "payout", "amount": -1000, "fee": 0, "net": -1000,
          "currency": "usd", "exchange_rate": 1.08123456789123, "status": "available",
          "available_on": 1735776000, "description": None, "source": None,
          "created": 1735689600, "fee_details": []}  # fmt: skip
    half = {**bt, "id": "txn_half", "exchange_rate": 0.00000000005}
    events = [{"id": f"evt_{snapshot['id']}", "object": "event",
               "type": "balance.available", "created": 1735689600,
               "api_version": "2025-09-30.clover", "livemode": False, "pending_webhooks": 0,
               "request": {"id": None, "idempotency_key": None},
               "data": {"object": snapshot}} for snapshot in (bt, half)]  # fmt: skip
    path = tmp_path / "bts.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    report = ingest(path, db, set_based=set_based)
    assert report.exit_code == 0
    assert bool(report.set_based) is set_based
    assert {r["id"]: r["exchange_rate"] for r in table_rows(db, "balance_transactions")} == {
        "txn_fine": Decimal("1.0812345679"), "txn_half": Decimal("0.0000000001")}  # fmt: skip
