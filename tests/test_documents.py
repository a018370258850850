"""The document stores: one suite over TinyDB and PostgreSQL JSONB (as TinyDB tests its storages).

Every test that takes ``store`` runs on both: a fresh folder of TinyDB files, and a fresh
PostgreSQL database. TinyDB-only properties (files, locks, crashes) are in
``test_documents_storage.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from paymodel.documents import (
    InvalidDocuments,
    erase_customer,
    migrate_profiles,
    open_store,
    profile_v1,
    read_profile,
    validate,
)
from paymodel.documents.features import subject_of
from paymodel.documents.store import DocumentStore
from paymodel.model.documents import FEATURE_SET, FEATURE_SET_VERSION


@pytest.fixture(
    params=[
        pytest.param("tinydb", id="tinydb"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DocumentStore]:
    """An empty document store of each kind."""
    target = (
        str(tmp_path / "docs") if request.param == "tinydb" else request.getfixturevalue("pg_dsn")
    )
    with open_store(target) as s:
        yield s


def event(
    n: int, type_: str = "charge.succeeded", obj: str = "ch_1", created: int = 1_700_000_000, **data
) -> dict:
    return {
        "id": f"evt_{n}",
        "object": "event",
        "type": type_,
        "created": created,
        "api_version": "2025-09-30.clover",
        "livemode": False,
        "pending_webhooks": 0,
        "request": {"id": None, "idempotency_key": None},
        "data": {"object": {"id": obj, "object": type_.split(".")[0], **data}},
    }


def feedback(
    n: int,
    text: str,
    customer: str = "cus_a",
    tags: tuple[str, ...] = ("support_ticket",),
    rating: int = 2,
) -> dict:
    return {
        "feedback_id": f"fb_{n}",
        "customer_id": customer,
        "created": f"2024-05-{n:02d}T09:00:00Z",
        "channel": "support_ticket",
        "rating": rating,
        "rating_scale": "1-5",
        "topic": "billing",
        "text": text,
        "locale": "en",
        "tags": sorted(tags),
        "sentiment": {"label": "negative", "score": -0.5},
        "charge_id": None,
        "dispute_id": None,
    }


KEY = b"a test key of at least 16 bytes"


def features(customer: str) -> dict:
    subject = subject_of(customer, KEY)
    return {
        "feature_id": f"{subject}:{FEATURE_SET}:{FEATURE_SET_VERSION}",
        "subject": subject,
        "email_hash": None,
        "feature_set": FEATURE_SET,
        "feature_set_version": FEATURE_SET_VERSION,
        "as_of": "2025-12-31T00:00:00Z",
        "churn": {"tenure_days": 30, "plan_tier": "team", "delinquent": False, "months_billed": 1,
                  "mrr_last_month_reporting": 19.5},
        "payments": {"attempts_90d": 2, "failure_rate_90d": 0.5, "days_since_last_success": 3,
                     "refund_rate": None, "disputes": 0},
        "fraud": {"max_risk_score": 40, "mean_risk_score": 30.0, "payment_methods": 1,
                  "card_countries": 1, "fraud_disputes": 0},
    }  # fmt: skip


CUSTOMER = {"id": "cus_a", "email": "a@example.org", "name": "Ada", "phone": None, "currency": "eur",
            "created": "2024-01-01T00:00:00Z", "delinquent": False}  # fmt: skip
CARD = {"id": "pm_1", "type": "card", "created": "2024-01-01T00:00:00Z",
        "card": {"brand": "visa", "funding": "credit", "country": "FR", "last4": "4242",
                 "exp_month": 8, "exp_year": 2030, "fingerprint": "fp1"}}  # fmt: skip


def charge(n: int, amount: int = 1000, currency: str = "eur", status: str = "succeeded") -> dict:
    return {"id": f"ch_{n}", "created": f"2024-{1 + n // 28:02d}-{1 + n % 28:02d}T00:00:00Z",
            "amount": amount, "currency": currency, "status": status, "amount_refunded": 0,
            "disputed": False}  # fmt: skip


def test_events_are_append_only_and_deduplicated_by_id(store):
    events = store.collection("events")
    r = events.insert([event(1), event(2), event(1)])
    assert (r.written, r.duplicates) == (2, 1)
    r = events.insert([event(2, type_="charge.failed"), event(3)])
    assert (r.written, r.duplicates) == (1, 1)
    assert events.count() == 3
    assert events.get("evt_2")["type"] == "charge.succeeded", (
        "a redelivery never replaces the first copy"
    )
    assert events.get("evt_9") is None


def test_every_event_access_pattern(store):
    events = store.collection("events")
    events.insert([
        event(1, "charge.succeeded", "ch_1", 100), event(2, "charge.refunded", "ch_1", 200),
        event(3, "charge.succeeded", "ch_2", 300), event(4, "invoice.paid", "in_1", 400),
    ])  # fmt: skip
    assert [e["id"] for e in events.find({"type": "charge.succeeded"})] == ["evt_1", "evt_3"]
    assert [e["id"] for e in events.find({"data.object.id": "ch_1"}, order_by="created")] == [
        "evt_1",
        "evt_2",
    ]
    assert [e["id"] for e in events.find(between=("created", 200, 400))] == ["evt_2", "evt_3"]
    newest = events.find(
        {"data.object.object": "charge"}, order_by="created", descending=True, limit=1
    )
    assert [e["id"] for e in newest] == ["evt_3"]


def test_a_bad_document_is_refused_naming_its_path_and_rule_and_nothing_is_written(store):
    events = store.collection("events")
    bad = event(2) | {"created": -5}
    with pytest.raises(InvalidDocuments) as info:
        events.insert([event(1), bad, event(3)])
    (err,) = info.value.errors
    assert (err.collection, err.key, err.path, err.rule) == (
        "events",
        "evt_2",
        "/created",
        "minimum",
    )
    assert "events evt_2: /created: minimum" in str(info.value)
    assert events.count() == 0, "a refused batch writes nothing"


def test_a_batch_may_write_the_good_documents_when_the_caller_asks(store):
    events = store.collection("events")
    report = events.insert([event(1), event(2) | {"type": "Charge"}, event(3)], on_invalid="skip")
    assert (report.written, report.rejected_keys) == (2, ["evt_2"])
    assert report.rejected[0].rule == "pattern"
    assert sorted(e["id"] for e in events.all()) == ["evt_1", "evt_3"]
    with pytest.raises(ValueError, match="on_invalid"):
        events.insert([event(4)], on_invalid="ignore")


def test_a_card_number_cannot_reach_a_profile(store):
    pan = {**CARD, "card": {**CARD["card"], "number": "4242424242424242"}}
    doc = profile_v1(CUSTOMER, [pan], [], [])
    errors = validate("customer_profiles", doc)
    assert [(e.path, e.rule) for e in errors] == [
        ("/payment_methods/0/card", "additionalProperties")
    ]
    with pytest.raises(InvalidDocuments):
        store.collection("customer_profiles").insert([doc])


def test_profiles_migrate_from_version_1_on_read_and_in_place(store):
    charges = [charge(n) for n in range(15)] + [
        charge(20, 700, "usd", "failed"),
        charge(21, 300, "usd"),
    ]
    subs = [{"id": "sub_1", "status": "active", "started": "2024-01-02T00:00:00Z"},
            {"id": "sub_2", "status": "canceled", "started": "2024-01-01T00:00:00Z"}]  # fmt: skip
    profiles = store.collection("customer_profiles")
    profiles.insert([profile_v1(CUSTOMER, [CARD], subs, charges)])
    assert profiles.get("cus_a")["schema_version"] == 1
    v2 = read_profile(store, "cus_a")
    assert v2["schema_version"] == 2
    assert validate("customer_profiles", v2) == []
    assert len(v2["recent_charges"]) == 10
    assert v2["recent_charges"][0]["id"] == "ch_21", "newest first"
    assert v2["lifetime"]["by_currency"] == {"eur": {"charged": 15_000, "refunded": 0},
                                             "usd": {"charged": 300, "refunded": 0}}  # fmt: skip
    assert (v2["lifetime"]["charges"], v2["lifetime"]["failed"]) == (17, 1)
    assert v2["subscriptions"]["by_status"] == {"active": 1, "canceled": 1}
    assert [s["id"] for s in v2["subscriptions"]["current"]] == ["sub_1"]
    assert migrate_profiles(store) == 1
    assert profiles.get("cus_a") == v2
    assert migrate_profiles(store) == 0


def test_non_append_collections_replace_by_key(store):
    profiles = store.collection("customer_profiles")
    profiles.insert([profile_v1(CUSTOMER, [], [], [])])
    r = profiles.insert([profile_v1(CUSTOMER | {"name": "Ada L."}, [], [], [])])
    assert (r.written, r.replaced) == (0, 1)
    assert profiles.count() == 1
    assert profiles.get("cus_a")["name"] == "Ada L."


def test_feedback_by_customer_by_tag_and_ranked_keyword_search(store):
    fb = store.collection("feedback")
    fb.insert([
        feedback(1, "My card was declined but I have funds, can you retry the payment?", tags=("billing", "card")),
        feedback(2, "How do I add a teammate to my workspace?", customer="cus_b", tags=("support",)),
        feedback(3, "Why was my subscription canceled? I updated my card.", tags=("billing", "card")),
        feedback(4, "The export button does nothing in Safari.", customer="cus_b", tags=("export",)),
    ])  # fmt: skip
    assert [d["feedback_id"] for d in fb.find({"customer_id": "cus_b"})] == ["fb_2", "fb_4"]
    assert [d["feedback_id"] for d in fb.find(contains=("tags", "card"))] == ["fb_1", "fb_3"]
    hits = fb.search("card declined, please retry")
    assert hits[0].doc["feedback_id"] == "fb_1"
    assert [h.doc["feedback_id"] for h in hits] == ["fb_1", "fb_3"], "only documents sharing a word"
    assert hits[0].score > hits[1].score > 0
    assert fb.search("exporting")[0].doc["feedback_id"] == "fb_4", "stemmed: exporting finds export"
    assert fb.search("zebra") == []
    with pytest.raises(ValueError, match="no fulltext"):
        store.collection("events").search("charge")


def test_erase_customer_removes_their_documents_in_every_collection(store):
    store.collection("events").insert([
        event(1, "customer.created", "cus_a"), event(2, "charge.succeeded", "ch_1", customer="cus_a"),
        event(3, "charge.succeeded", "ch_2", customer="cus_b"),
    ])  # fmt: skip
    store.collection("feedback").insert([feedback(1, "hello"), feedback(2, "hi", customer="cus_b")])
    store.collection("customer_profiles").insert([profile_v1(CUSTOMER, [], [], [])])
    store.collection("ml_features").insert([features("cus_a"), features("cus_b")])
    with pytest.raises(ValueError, match="ml_features holds pseudonymised documents"):
        erase_customer(store, "cus_a")
    assert store.collection("events").count() == 3, "a refused erasure deletes nothing"
    counts = erase_customer(store, "cus_a", pii_key=KEY)
    assert counts == {
        "events": 2,
        "customer_profiles": 1,
        "behaviour": 0,
        "feedback": 1,
        "ml_features": 1,
    }
    assert [e["id"] for e in store.collection("events").all()] == ["evt_3"]
    assert store.collection("customer_profiles").get("cus_a") is None
    assert [d["subject"] for d in store.collection("ml_features").all()] == [
        subject_of("cus_b", KEY)
    ]
    assert erase_customer(store, "cus_a", pii_key=KEY) == dict.fromkeys(counts, 0)


def test_ml_features_hold_no_identifier_in_clear(store):
    doc = features("cus_a")
    assert "cus_a" not in json.dumps(doc)
    with pytest.raises(InvalidDocuments) as info:
        store.collection("ml_features").insert([doc | {"subject": "cus_a"}])
    assert info.value.errors[0].path == "/subject"
    assert info.value.errors[0].rule == "pattern"
    store.collection("ml_features").insert([doc])
    found = store.collection("ml_features").find({"feature_set_version": FEATURE_SET_VERSION})
    assert found == [doc]


def test_a_failed_batch_writes_nothing(store):
    events = store.collection("events")
    events.insert([event(1)])

    def write_then_fail() -> None:
        with store.batch():
            events.insert([event(2)])
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_then_fail()
    store.close()
    with open_store(store.target) as again:
        assert [e["id"] for e in again.collection("events").all()] == ["evt_1"]


def test_unknown_collection_and_field_are_named(store):
    with pytest.raises(KeyError, match="no collection payments"):
        store.collection("payments")
    with pytest.raises(KeyError, match="feedback has no field colour"):
        store.collection("feedback").find({"colour": "red"})
