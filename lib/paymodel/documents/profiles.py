"""Customer 360 documents: version 2 (current), version 1 (the previous shape), and the migration.

Version 1 embedded every charge of a customer (an array that grows without bound) and one
``total_charged`` summed over currencies, which means nothing. Version 2 nests the contact
fields, keeps the last :data:`RECENT_CHARGES` charges (subset pattern: the rest stay in the
OLTP tables) and computes lifetime totals per currency once, when the profile is written
(computed pattern).

Schema versioning pattern: both versions may sit in the collection at once. Readers call
:func:`read_profile`, which upgrades an old document on the fly; :func:`migrate_profiles`
rewrites the old ones in place, in batches, whenever convenient. A version 1 document never
held the customer's address: its migration leaves ``address`` null until the next build.

Example:
    >>> v1 = {"customer_id": "cus_1", "schema_version": 1, "email": "a@example.org", "name": "A",
    ...       "phone": None, "currency": "eur", "created": "2024-01-01T00:00:00Z", "delinquent": False,
    ...       "payment_methods": [], "subscriptions": [],
    ...       "charges": [{"id": "ch_1", "created": "2024-02-01T00:00:00Z", "amount": 500,
    ...                    "currency": "eur", "status": "succeeded", "amount_refunded": 100,
    ...                    "disputed": False}], "total_charged": 500}
    >>> v2 = migrate_profile(v1)
    >>> v2["schema_version"], v2["contact"]["email"], v2["lifetime"]["by_currency"]
    (2, 'a@example.org', {'eur': {'charged': 500, 'refunded': 100}})
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from paymodel.model.documents import PROFILE_VERSION, RECENT_CHARGES

__all__ = [
    "ENDED_STATUSES",
    "migrate_profile",
    "migrate_profiles",
    "profile_v1",
    "profile_v2",
    "read_profile",
]

ENDED_STATUSES = ("canceled", "incomplete_expired")
"""Subscription statuses that are over: the rest are ``current`` in a profile."""

Row = Mapping[str, Any]


def _newest_first(charges: Sequence[Row]) -> list[dict[str, Any]]:
    return sorted((dict(c) for c in charges), key=lambda c: (c["created"], c["id"]), reverse=True)


def _lifetime(charges: Sequence[Row]) -> dict[str, Any]:
    by_currency: dict[str, dict[str, int]] = {}
    for c in charges:
        t = by_currency.setdefault(c["currency"], {"charged": 0, "refunded": 0})
        if c["status"] == "succeeded":
            t["charged"] += c["amount"]
        t["refunded"] += c["amount_refunded"]
    status = Counter(c["status"] for c in charges)
    return {
        "charges": len(charges),
        "succeeded": status["succeeded"],
        "failed": status["failed"],
        "disputed": sum(1 for c in charges if c["disputed"]),
        "by_currency": dict(sorted(by_currency.items())),
    }


def _subscription_summary(subscriptions: Sequence[Row]) -> dict[str, Any]:
    current = [
        {"id": s["id"], "status": s["status"], "started": s["started"]}
        for s in sorted(subscriptions, key=lambda s: (s["started"], s["id"]), reverse=True)
        if s["status"] not in ENDED_STATUSES
    ]
    return {
        "count": len(subscriptions),
        "by_status": dict(sorted(Counter(s["status"] for s in subscriptions).items())),
        "current": current,
    }


def profile_v2(
    customer: Row,
    address: Row | None,
    payment_methods: Sequence[Row],
    subscriptions: Sequence[Row],
    charges: Sequence[Row],
) -> dict[str, Any]:
    """The current profile of one customer from its OLTP rows (already shaped as in the schema)."""
    return {
        "customer_id": customer["id"],
        "schema_version": PROFILE_VERSION,
        "contact": {k: customer[k] for k in ("email", "name", "phone")},
        "address": None if address is None else dict(address),
        "currency": customer["currency"],
        "created": customer["created"],
        "delinquent": customer["delinquent"],
        "payment_methods": [dict(pm) for pm in payment_methods],
        "subscriptions": _subscription_summary(subscriptions),
        "recent_charges": _newest_first(charges)[:RECENT_CHARGES],
        "lifetime": _lifetime(charges),
    }


def profile_v1(
    customer: Row,
    payment_methods: Sequence[Row],
    subscriptions: Sequence[Row],
    charges: Sequence[Row],
) -> dict[str, Any]:
    """The previous (version 1) shape, as the layer wrote it before version 2."""
    return {
        "customer_id": customer["id"],
        "schema_version": 1,
        **{k: customer[k] for k in ("email", "name", "phone", "currency", "created", "delinquent")},
        "payment_methods": [dict(pm) for pm in payment_methods],
        "subscriptions": [dict(s) for s in subscriptions],
        "charges": _newest_first(charges),
        "total_charged": sum(c["amount"] for c in charges if c["status"] == "succeeded"),
    }


def migrate_profile(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Upgrade a profile to the current version (a current one is returned as a copy)."""
    version = doc.get("schema_version")
    if version == PROFILE_VERSION:
        return dict(doc)
    if version != 1:
        raise ValueError(
            f"customer_profiles {doc.get('customer_id')}: unknown schema_version {version!r}"
        )
    customer = {"id": doc["customer_id"], **doc}
    return profile_v2(customer, None, doc["payment_methods"], doc["subscriptions"], doc["charges"])


def read_profile(store: Any, customer_id: str) -> dict[str, Any] | None:
    """The profile of ``customer_id`` in the current version, whatever version is stored."""
    doc = store.collection("customer_profiles").get(customer_id)
    return None if doc is None else migrate_profile(doc)


def migrate_profiles(store: Any, batch_size: int = 5_000) -> int:
    """Rewrite every older-version profile in the current version; return how many."""
    profiles = store.collection("customer_profiles")
    old = [d for v in range(1, PROFILE_VERSION) for d in profiles.find({"schema_version": v})]
    for i in range(0, len(old), batch_size):
        profiles.insert([migrate_profile(d) for d in old[i : i + batch_size]])
    return len(old)
