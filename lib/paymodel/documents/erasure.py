"""Erase one customer from every collection (GDPR right to erasure).

Each collection names the paths that hold a customer id (:attr:`Collection.customer_paths`);
every document where one of them equals the customer is deleted. In ``events`` that is the
customer object's own events and every event about an object of the customer (charges,
invoices, subscriptions...): an append-only log gives way to erasure. Works the same on
every store, so a later layer's erasure can call it with the store it holds.
"""

from __future__ import annotations

from paymodel.documents.store import DocumentStore
from paymodel.model.documents import COLLECTIONS

__all__ = ["erase_customer"]


def erase_customer(store: DocumentStore, customer_id: str) -> dict[str, int]:
    """Delete every document of ``customer_id``, in one batch; return the count per collection."""
    counts = {}
    with store.batch():
        for name, spec in COLLECTIONS.items():
            c = store.collection(name)
            keys = {
                d[spec.key] for path in spec.customer_paths for d in c.find({path: customer_id})
            }
            counts[name] = c.delete(keys)
    return counts
