"""Cross-row rules at ingestion, on DuckDB and PostgreSQL: what no Stripe account produces.

A refund or dispute larger than its charge, a currency other than its charge's or
invoice's, an invoice payment larger than the amount due: each is quarantined with the
rule's name and an error naming both rows, whether the parent is already stored, comes
in the same file, or arrives later (the record waits in pending, then is refused).
At the end of a run the dataset invariants are evaluated over the objects the run
touched; ``--strict`` turns a broken one into exit status 3.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from paymodel.model.rules import CROSS_ROW_RULES
from paymodel.model.stripe import to_stripe_object
from paymodel.oltp.engines import duckdb_engine
from paymodel.oltp.flows.inspect import count_rows, rows
from paymodel.oltp.ingest import EXIT_OK, EXIT_QUARANTINED, ensure_schema, ingest, main_ingest

T0 = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


CUSTOMER = {"id": "cus_R1", "email": None, "name": None, "phone": None, "currency": "usd",
            "balance": 0, "delinquent": False, "preferred_locale": None, "created": T0,
            "metadata": None}  # fmt: skip
INTENT = {"id": "pi_R1", "customer_id": "cus_R1", "payment_method_id": None, "currency": "usd",
          "amount": 6000, "amount_capturable": 0, "amount_received": 6000, "status": "succeeded",
          "capture_method": "automatic", "last_payment_error_code": None,
          "cancellation_reason": None, "canceled_at": None, "description": None,
          "created": at(10), "metadata": None}  # fmt: skip
CHARGE = {"id": "ch_R1", "payment_intent_id": "pi_R1", "customer_id": "cus_R1",
          "payment_method_id": None, "currency": "usd", "amount": 6000,
          "amount_captured": 6000, "amount_refunded": 0, "status": "succeeded", "paid": True,
          "captured": True, "refunded": False, "disputed": False, "failure_code": None,
          "failure_message": None, "outcome_type": None, "outcome_network_status": None,
          "outcome_risk_level": None, "outcome_risk_score": None,
          "three_d_secure_result": None, "created": at(20), "metadata": None}  # fmt: skip
REFUND = {"id": "re_R1", "charge_id": "ch_R1", "payment_intent_id": "pi_R1", "currency": "usd",
          "amount": 1000, "status": "succeeded", "reason": None, "failure_reason": None,
          "created": at(30), "metadata": None}  # fmt: skip
DISPUTE = {"id": "dp_R1", "charge_id": "ch_R1", "payment_intent_id": "pi_R1",
           "currency": "usd", "amount": 6000, "status": "needs_response",
           "reason": "fraudulent", "evidence_due_by": None, "is_charge_refundable": False,
           "created": at(40), "metadata": None}  # fmt: skip
INVOICE = {"id": "in_R1", "customer_id": "cus_R1", "subscription_id": None, "number": None,
           "status": "open", "billing_reason": "manual",
           "collection_method": "charge_automatically", "currency": "usd", "subtotal": 6000,
           "discount_amount": 0, "tax": 0, "total": 6000, "starting_balance": 0,
           "amount_due": 6000, "amount_paid": 0, "amount_remaining": 6000, "attempt_count": 0,
           "period_start": T0, "period_end": T0, "due_date": None, "finalized_at": at(5),
           "paid_at": None, "voided_at": None, "created": at(5), "metadata": None}  # fmt: skip
PAYMENT = {"id": "inpay_R1", "invoice_id": "in_R1", "payment_intent_id": "pi_R1",
           "currency": "usd", "amount_requested": 6000, "amount_paid": None, "status": "open",
           "is_default": True, "paid_at": None, "canceled_at": None,
           "created": at(11)}  # fmt: skip


def obj(table: str, row: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return to_stripe_object(table, {**row, **changes})


PARENTS = [obj("customers", CUSTOMER), obj("invoices", INVOICE),
           obj("payment_intents", INTENT), obj("charges", CHARGE)]  # fmt: skip


def quarantined(engine: sa.Engine) -> dict[str, str]:
    return {q["object_id"]: q["rule"] for q in rows(engine, "ingest_quarantine")}


@pytest.mark.parametrize(
    ("record", "rule"),
    [
        (obj("refunds", REFUND, amount=999_999), "refund_within_charge_amount"),
        (obj("refunds", REFUND, currency="eur"), "refund_in_charge_currency"),
        (obj("disputes", DISPUTE, amount=6001), "dispute_within_charge_amount"),
        (obj("disputes", DISPUTE, currency="gbp"), "dispute_in_charge_currency"),
        (obj("invoice_payments", PAYMENT, amount_requested=6001),
         "invoice_payment_within_amount_due"),
        (obj("invoice_payments", PAYMENT, amount_paid=7000, status="paid", paid_at=at(12)),
         "invoice_payment_within_amount_due"),
        (obj("invoice_payments", PAYMENT, currency="eur"), "invoice_payment_in_invoice_currency"),
    ],
    ids=lambda v: v if isinstance(v, str) else v["id"],
)
def test_a_record_impossible_next_to_its_parent_is_quarantined(
    engine: sa.Engine, record: dict[str, Any], rule: str
) -> None:
    ensure_schema(engine)
    assert ingest(PARENTS, engine).exit_code == EXIT_OK
    report = ingest([record], engine)
    assert (report.read, report.quarantined, report.applied) == (1, 1, 0)
    assert report.exit_code == EXIT_QUARANTINED
    assert quarantined(engine) == {record["id"]: rule}
    (q,) = rows(engine, "ingest_quarantine")
    assert q["error"].startswith(f"{record['object']} {record['id']}: ")
    assert ("charge ch_R1" in q["error"]) or ("invoice in_R1" in q["error"])
    table = {"refund": "refunds", "dispute": "disputes"}.get(record["object"], "invoice_payments")
    assert count_rows(engine, table) == 0  # nothing of it was written


def test_the_issue_examples_exit_3_with_the_rule_named(engine: sa.Engine) -> None:
    ensure_schema(engine)
    big = obj("refunds", REFUND, amount=999_999)
    euro = obj("refunds", REFUND, id="re_R2", currency="eur")
    fine = obj("refunds", REFUND, id="re_R3", amount=6000)
    report = ingest([*PARENTS, big, euro, fine], engine)
    assert (report.read, report.applied, report.quarantined) == (7, 5, 2)
    assert report.exit_code == EXIT_QUARANTINED
    assert quarantined(engine) == {"re_R1": "refund_within_charge_amount",
                                   "re_R2": "refund_in_charge_currency"}  # fmt: skip
    (error,) = [q["error"] for q in rows(engine, "ingest_quarantine") if q["object_id"] == "re_R1"]
    assert error == (
        "refund re_R1: a refund is at most its charge's amount "
        "(amount 999999; charge ch_R1: amount 6000)"
    )
    assert [r["id"] for r in rows(engine, "refunds")] == ["re_R3"]


def test_a_refund_waiting_for_its_charge_is_refused_when_the_charge_arrives(
    engine: sa.Engine,
) -> None:
    ensure_schema(engine)
    early = ingest([obj("refunds", REFUND, amount=999_999)], engine)
    assert (early.pending, early.quarantined) == (1, 0)
    later = ingest(PARENTS, engine)
    assert (later.read, later.applied) == (4, 4)
    assert quarantined(engine) == {"re_R1": "refund_within_charge_amount"}
    assert count_rows(engine, "ingest_pending") == 0
    assert count_rows(engine, "refunds") == 0


def test_a_parent_expanded_in_the_same_object_is_the_one_compared(engine: sa.Engine) -> None:
    ensure_schema(engine)
    ingest(PARENTS[:3], engine)
    refund = obj("refunds", REFUND, amount=7000)
    refund["charge"] = obj("charges", CHARGE, amount=8000, amount_captured=8000)
    report = ingest([refund], engine)
    assert (report.applied, report.quarantined) == (1, 0)
    refund = obj("refunds", REFUND, id="re_R9", amount=9000)
    refund["charge"] = obj("charges", CHARGE, amount=8000, amount_captured=8000)
    assert ingest([refund], engine).quarantined == 1
    assert quarantined(engine) == {"re_R9": "refund_within_charge_amount"}


def test_every_rule_is_also_a_query_on_both_engines(engine: sa.Engine) -> None:
    """The same rules as SQL find the rows a load without ingestion let through."""
    ensure_schema(engine)
    ingest([*PARENTS, obj("refunds", REFUND)], engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE refunds SET amount = 999999 WHERE id = 're_R1'"))
    found = {}
    with engine.connect() as conn:
        for rule in CROSS_ROW_RULES:
            ids = conn.execute(sa.text(rule.violations_sql(engine.dialect.name))).scalars().all()
            found[rule.name] = list(ids)
    assert found["refund_within_charge_amount"] == ["re_R1"]
    assert all(not v for k, v in found.items() if k != "refund_within_charge_amount")


# --- end-of-run invariants over the touched keys --------------------------------------


def test_broken_invariants_of_touched_objects_are_reported_and_strict_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A refund whose charge.refunded has not arrived yet: reported, refused only with --strict."""
    records = [*PARENTS, obj("refunds", REFUND)]  # charge still says amount_refunded 0
    path = tmp_path / "partial.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    target = tmp_path / "db.duckdb"
    assert main_ingest([str(path)], str(target), as_json=True) == EXIT_OK
    out = json.loads(capsys.readouterr().out)
    broken = {i["name"]: i["examples"] for i in out["invariants"]}
    assert broken["charge_refunds_sum"] == ["ch_R1"]
    assert main_ingest([str(path)], str(target), as_json=True, strict=True) == EXIT_QUARANTINED
    capsys.readouterr()
    fixed = tmp_path / "fixed.jsonl"
    fixed.write_text(json.dumps(obj("charges", CHARGE, amount_refunded=1000)) + "\n")
    assert main_ingest([str(fixed)], str(target), strict=True) == EXIT_OK
    assert "invariant" not in capsys.readouterr().out


def test_invariants_of_objects_the_run_did_not_touch_are_not_reported() -> None:
    engine = duckdb_engine()
    ensure_schema(engine)
    ingest([*PARENTS, obj("refunds", REFUND)], engine)  # breaks charge_refunds_sum
    report = ingest([obj("products", {"id": "prod_R1", "name": "X", "description": None,
                                      "active": True, "created": T0, "metadata": None})],
                    engine)  # fmt: skip
    assert report.applied == 1
    assert report.invariants == []
    engine.dispose()
