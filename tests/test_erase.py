"""Erasing a customer leaves no trace of its email, name, phone or address, on both engines.

The database is filled the ways the OLTP side fills it: ingestion of Stripe's events
(snapshots, a record parked for a missing parent, a quarantined record) and the payment
flows (rows, events, idempotency keys with their stored request parameters). The check
reads every value of every column of every table back as text, independently of the
library's own verification.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from paymodel.cli import main
from paymodel.model.oltp import OLTP
from paymodel.oltp.erase import ERASERS, ErasureIncomplete, erase_customer, register_eraser
from paymodel.oltp.flows import Payments
from paymodel.oltp.ingest import ingest
from paymodel.oltp.schema import create_schema, oltp_tables
from paymodel.paths import DATA_DIR

STORY = DATA_DIR / "stripe"
JENNY = "cus_SQ7jennyrosen"
JENNY_TRACES = ("jenny.rosen@example.com", "j.rosen.old@example.com", "Jenny Rosen",
                "510 Townsend St", "94103", "San Francisco")  # fmt: skip
ADA = {"email": "ada.lovelace@example.org", "name": "Ada Lovelace", "phone": "+44 20 7946 0991",
       "address": {"line1": "12 Marylebone Lane", "line2": "Flat 3", "city": "Zyxborough",
                   "postal_code": "ZX1 9QQ", "country": "GB"}}  # fmt: skip
BOB = {"email": "bob.other@example.net", "name": "Bob Other"}


def _story_records() -> list[dict | str]:
    """The sample story, plus a record parked for a missing parent and a malformed one."""
    events = [json.loads(line) for line in (STORY / "events.jsonl").read_text().splitlines()
              if line.strip().startswith("{") and _parses(line)]  # fmt: skip
    charge = next(e for e in events if e["type"] == "charge.succeeded")
    waiting = copy.deepcopy(charge)
    waiting["id"] = "evt_waitingForIntent"
    obj = waiting["data"]["object"]
    obj.update(id="ch_waiting", payment_intent="pi_notYetArrived", balance_transaction=None,
               billing_details={"email": "jenny.rosen@example.com", "name": "Jenny Rosen",
                                "phone": None, "address": {"line1": "510 Townsend St"}})  # fmt: skip
    # An email change: the old address survives in previous_attributes.
    changed = copy.deepcopy(next(e for e in events if e["type"] == "customer.updated"))
    changed.update(id="evt_emailChanged", created=max(e["created"] for e in events) + 60)
    changed["data"]["previous_attributes"] = {"email": "j.rosen.old@example.com"}
    events.append(changed)
    broken = '{"id": "evt_broken", "object": "event", "note": "jenny.rosen@example.com", '
    return [json.loads((STORY / "catalog.json").read_text()), *events, waiting, broken]


def _parses(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _fill(engine: sa.Engine, folder: Path) -> dict[str, str]:
    create_schema(engine)
    catalog, *events = _story_records()
    ingest([catalog], engine)
    stream = folder / "events.jsonl"
    stream.write_text("".join((e if isinstance(e, str) else json.dumps(e)) + "\n" for e in events))
    report = ingest([stream], engine)
    assert report.pending == 1
    assert report.quarantined >= 1
    pay = Payments(engine)
    ada = pay.create_customer(**ADA, idempotency_key="signup-ada")["id"]
    bob = pay.create_customer(**BOB, idempotency_key="signup-bob")["id"]
    for customer in (ada, bob):
        card = pay.create_payment_method("visa")["id"]
        pay.attach_payment_method(card, customer_id=customer)
        pi = pay.create_payment_intent(2_000, "usd", customer_id=customer, payment_method_id=card)
        pay.confirm_payment_intent(pi["id"], idempotency_key=f"pay-{customer}")
    return {"ada": ada, "bob": bob}


def _cells(engine: sa.Engine) -> dict[str, list[str]]:
    """Every value of every column of every table, as text, by ``table.column``."""
    out: dict[str, list[str]] = {}
    with engine.connect() as conn:
        for name, table in oltp_tables(engine).items():
            for row in conn.execute(sa.select(table)).mappings():
                for column, value in row.items():
                    text = value if isinstance(value, str) else json.dumps(value, default=str)
                    out.setdefault(f"{name}.{column}", []).append(text)
    return out


def _where(engine: sa.Engine, needles: tuple[str, ...]) -> set[tuple[str, str]]:
    """``(needle, table.column)`` for each needle found in a column."""
    return {
        (needle, column)
        for column, texts in _cells(engine).items()
        for text in texts
        for needle in needles
        if needle in text or json.dumps(needle)[1:-1] in text
    }


def _money(engine: sa.Engine) -> dict[str, list]:
    keep = {"charges": ("id", "amount", "amount_refunded", "created", "customer_id"),
            "invoices": ("id", "total", "amount_paid", "status", "customer_id"),
            "events": ("id", "type", "object_id", "created")}  # fmt: skip
    tables = oltp_tables(engine)
    with engine.connect() as conn:
        return {
            name: sorted(conn.execute(sa.select(*(tables[name].c[c] for c in cols))).all())
            for name, cols in keep.items()
        }


def test_erasure_leaves_no_trace_and_keeps_the_books(engine, tmp_path):
    ids = _fill(engine, tmp_path)
    ada_traces = (ADA["email"], ADA["name"], ADA["phone"], ADA["address"]["line1"],
                  ADA["address"]["line2"], ADA["address"]["city"], ADA["address"]["postal_code"])  # fmt: skip
    # Where the personal data was before: far beyond the customer's own rows.
    before = {column for _, column in _where(engine, (*JENNY_TRACES, *ada_traces))}
    assert {"customers.email", "customer_addresses.line1", "events.data_object",
            "events.previous_attributes", "idempotency_keys.request_params",
            "idempotency_keys.response_body", "ingest_pending.raw",
            "ingest_quarantine.raw"} <= before  # fmt: skip
    books = _money(engine)

    jenny = erase_customer(engine, JENNY)
    ada = erase_customer(engine, ids["ada"])

    assert jenny.found
    assert ada.found
    assert not _where(engine, (*JENNY_TRACES, *ada_traces))
    touched = {(t.table, t.column) for t in (*jenny.touched, *ada.touched)}
    assert {("customers", "email"), ("customer_addresses", "*"), ("events", "data_object"),
            ("events", "previous_attributes"), ("ingest_pending", "raw"),
            ("ingest_quarantine", "raw"), ("idempotency_keys", "request_params")} <= touched  # fmt: skip
    assert _money(engine) == books  # amounts, dates and ids are kept
    assert {n for n, _ in _where(engine, (BOB["email"], BOB["name"]))} == {
        BOB["email"],
        BOB["name"],
    }
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(f"select email, name, phone from customers where id = '{JENNY}'")
        )
        assert row.one() == (None, None, None)


def test_erasing_twice_or_an_unknown_customer_changes_nothing(engine, tmp_path):
    ids = _fill(engine, tmp_path)
    erase_customer(engine, ids["ada"])
    before = _cells(engine)
    again = erase_customer(engine, ids["ada"])
    assert again.found
    assert not again.touched
    assert not erase_customer(engine, "cus_nobody").found
    assert _cells(engine) == before


def test_a_registered_eraser_runs_in_the_same_transaction(engine, tmp_path):
    """A later layer's eraser that leaves a trace makes the whole erasure roll back."""
    ids = _fill(engine, tmp_path)
    with engine.begin() as conn:
        conn.execute(sa.text("create table crm_notes (id integer primary key, note text)"))
        conn.execute(sa.text("insert into crm_notes values (1, :note)"),
                     {"note": f"call {ADA['name']} about renewal"})  # fmt: skip
    before = _cells(engine)
    seen = []
    register_eraser("test_layer", lambda conn, subject: seen.append(subject.identifiers) or [])
    try:
        with pytest.raises(ErasureIncomplete, match=r"crm_notes\.note: Ada Lovelace"):
            erase_customer(engine, ids["ada"])
    finally:
        del ERASERS["test_layer"]
    assert ADA["email"] in seen[0]
    assert _cells(engine) == before  # rolled back: the OLTP eraser's work is undone too


def test_paymodel_erase_command(engine, request, tmp_path, capsys):
    if engine.dialect.name == "duckdb":
        engine.dispose()
        target = str(tmp_path / "oltp.duckdb")
        from paymodel.oltp.engines import duckdb_engine

        engine = duckdb_engine(Path(target))
    else:
        target = request.getfixturevalue("pg_dsn")
    ids = _fill(engine, tmp_path)
    engine.dispose()
    assert main(["erase", ids["ada"], "--db", target]) == 0
    out = capsys.readouterr().out
    assert f"{ids['ada']}: erased" in out
    assert "idempotency_keys.request_params" in out
    assert "traces left in the database: 0" in out
    assert main(["erase", "cus_nobody", "--db", target, "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["found"] is False
    assert main(["erase", ids["ada"], "--db", str(tmp_path / "missing.duckdb")]) == 2
    assert OLTP.table("customers")  # the model is untouched by the command
