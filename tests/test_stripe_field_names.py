"""The Stripe mapping and the flows' events speak Stripe's field names.

Checked against Stripe's official sample objects (``tests/data/stripe_fixtures3_samples.json``,
copied unchanged from ``openapi/fixtures3.json``): every path of the declarative mapping,
and every key the payment flows write into an event's ``previous_attributes``, must be a
field of the sample object of that type. The samples leave out a few optional fields that
Stripe's API reference documents; those, and only those, are listed in :data:`OMITTED`;
:data:`ADDITIONS` names the one link paymodel adds to Stripe's shape.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from paymodel.model.stripe import MAPPINGS, previous_attributes
from paymodel.oltp.engines import duckdb_engine
from paymodel.oltp.flows import ManualClock, Payments, SequentialIds
from paymodel.oltp.flows.inspect import rows
from paymodel.oltp.schema import create_schema

SAMPLES = json.loads(
    (Path(__file__).parent / "data" / "stripe_fixtures3_samples.json").read_text()
)["resources"]

OMITTED: dict[str, set[str]] = {
    # fixtures3's payment_intent.last_payment_error is {"type": ...} only; the API
    # reference documents last_payment_error.code (the error code) and .decline_code
    # (the card issuer's reason, for card errors).
    "payment_intent": {"last_payment_error.code", "last_payment_error.decline_code"},
    # the sample outcome has no risk fields (they are set for card payments only).
    "charge": {"outcome.risk_level", "outcome.risk_score"},
    # refund.failure_reason is set only on failed refunds; the sample is succeeded.
    "refund": {"failure_reason"},
    # the sample line item's pricing carries no price_details (no price on it).
    "line_item": {"pricing.price_details.price"},
}


ADDITIONS: dict[str, set[str]] = {
    # not a field of Stripe's balance transaction: Stripe answers "which payout settled
    # it" through GET /v1/balance_transactions?payout=po_...; paymodel renders the link.
    "balance_transaction": {"payout"},
}


def _is_field(kind: str, path: str) -> bool:
    """Whether ``path`` (dotted) exists in the sample of ``kind`` (stopping at a null)."""
    if path in OMITTED.get(kind, set()) | ADDITIONS.get(kind, set()):
        return True
    value: Any = SAMPLES[kind]
    for key in path.split("."):
        if value is None:
            return True  # a null object in the sample: its keys are not shown
        if not isinstance(value, Mapping) or key not in value:
            return False
        value = value[key]
    return True


def _leaves(obj: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in obj.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from _leaves(value, path + ".")
        else:
            yield path


def test_every_path_of_the_mapping_is_a_stripe_field() -> None:
    wrong = [
        (m.object, column, f.path)
        for m in MAPPINGS.values()
        for column, f in m.fields.items()
        if not _is_field(m.object, f.path)
    ]
    assert wrong == []


def test_the_mapping_declares_every_column_once() -> None:
    from paymodel.model.oltp import OLTP

    for m in MAPPINGS.values():
        columns = set(OLTP.table(m.table).column_names) - {"id"}
        assert set(m.fields) == columns, m.table


def test_a_wrong_key_would_be_caught() -> None:
    """The check is real: the keys the flows used to write are not Stripe's."""
    assert not _is_field("payment_intent", "last_payment_error_code")
    assert not _is_field("invoice", "paid_at")
    assert not _is_field("invoice", "finalized_at")
    assert not _is_field("subscription", "cancellation_reason")


def test_previous_attributes_follow_the_mapping() -> None:
    before = {"id": "in_1", "paid_at": None, "finalized_at": None, "status": "open"}
    assert previous_attributes("invoices", before, ["status", "paid_at"]) == {
        "status": "open",
        "status_transitions": {"paid_at": None},
    }
    moment = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert previous_attributes("subscriptions", {"cancellation_reason": None,
                                                 "canceled_at": moment},
                               ["cancellation_reason", "canceled_at"]) == {
        "cancellation_details": {"reason": None}, "canceled_at": int(moment.timestamp()),
    }  # fmt: skip
    assert previous_attributes(
        "payment_intents", {"last_payment_error_code": "card_declined"}, ["last_payment_error_code"]
    ) == {"last_payment_error": {"code": "card_declined"}}
    assert previous_attributes("payment_methods", {"customer_id": "cus_1"}, ["customer_id"]) == {
        "customer": "cus_1"
    }


@pytest.fixture(scope="module")
def flow_events() -> list[dict[str, Any]]:
    """The events of a mix of flows: declines and retries, invoices, cancellations."""
    engine = duckdb_engine()
    create_schema(engine)
    pay = Payments(engine, clock=ManualClock(dt.datetime(2026, 1, 1, 9, tzinfo=dt.UTC)),
                   ids=SequentialIds())  # fmt: skip
    cus = pay.create_customer(email="ada@example.com", name="Ada")["id"]
    declined = pay.create_payment_method("declined")["id"]
    good = pay.create_payment_method("visa")["id"]
    pay.attach_payment_method(declined, customer_id=cus)
    pay.attach_payment_method(good, customer_id=cus)
    pi = pay.create_payment_intent(2_000, "usd", customer_id=cus, payment_method_id=declined,
                                   confirm=True)  # fmt: skip
    assert pi["status"] == "requires_payment_method"
    pay.confirm_payment_intent(pi["id"], payment_method_id=good)
    charge = pay.create_payment_intent(5_000, "usd", customer_id=cus, payment_method_id=good,
                                       confirm=True)["latest_charge"]  # fmt: skip
    pay.refund_charge(charge, amount=1_000)
    dispute = pay.open_dispute(charge)
    pay.close_dispute(dispute["id"], won=False)
    prod = pay.create_product("Seats")["id"]
    monthly = pay.create_price(prod, 1_000, "usd", recurring_interval="month")["id"]
    sub = pay.create_subscription(cus, [{"price": monthly, "quantity": 2}],
                                  default_payment_method_id=good)  # fmt: skip
    pay.clock.advance(days=3)
    pay.update_subscription(sub["id"], quantity=3)
    pay.cancel_subscription(sub["id"])
    once = pay.create_price(prod, 2_500, "usd")["id"]
    inv = pay.create_invoice(cus, [{"price": once, "quantity": 1}])
    pay.finalize_invoice(inv["id"])
    pay.pay_invoice(inv["id"], payment_method_id=good)
    pay.detach_payment_method(declined)
    events = rows(engine, "events")
    engine.dispose()
    return events


def test_flow_events_name_stripe_fields(flow_events: list[dict[str, Any]]) -> None:
    seen: dict[str, set[str]] = {}
    for event in flow_events:
        previous = event["previous_attributes"]
        if previous:
            seen.setdefault(event["object_type"], set()).update(_leaves(previous))
    wrong = {kind: sorted(p for p in paths if not _is_field(kind, p))
             for kind, paths in seen.items()}  # fmt: skip
    assert {k: v for k, v in wrong.items() if v} == {}
    # the fields the issue found misnamed are written under Stripe's names now
    assert "status_transitions.paid_at" in seen["invoice"]
    assert "status_transitions.finalized_at" in seen["invoice"]
    assert "cancellation_details.reason" in seen["subscription"]
    assert {"last_payment_error", "last_payment_error.code"} & seen["payment_intent"]
    assert "customer" in seen["payment_method"]
