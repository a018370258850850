"""Erase one customer from every collection (GDPR right to erasure).

Each collection names the paths that hold a customer id (:attr:`Collection.customer_paths`);
every document where one of them equals the customer (or, in ``ml_features``, the
customer's keyed hash) is deleted. In ``events`` that is the
customer object's own events and every event about an object of the customer (charges,
invoices, subscriptions...): an append-only log gives way to erasure. Works the same on
every store, so a later layer's erasure can call it with the store it holds.
"""

from __future__ import annotations

from paymodel.documents.store import DocumentStore
from paymodel.model.documents import COLLECTIONS

__all__ = ["erase_customer"]


def erase_customer(
    store: DocumentStore, customer_id: str, *, pii_key: bytes | None = None
) -> dict[str, int]:
    """Delete every document of ``customer_id``, in one batch; return the count per collection.

    ``ml_features`` knows the customer only by the warehouse's keyed hash: erasing there
    needs ``pii_key`` (the warehouse's key); without it a non-empty ``ml_features`` raises
    ``ValueError`` before anything is deleted.
    """
    from paymodel.documents.features import subject_of

    for name, spec in COLLECTIONS.items():
        if spec.pseudonymised and pii_key is None and store.collection(name).count():
            raise ValueError(
                f"{name} holds pseudonymised documents: pass pii_key to erase {customer_id}"
            )
    counts = {}
    with store.batch():
        for name, spec in COLLECTIONS.items():
            c = store.collection(name)
            if spec.pseudonymised and pii_key is None:
                counts[name] = 0
                continue
            value = subject_of(customer_id, pii_key) if spec.pseudonymised else customer_id
            keys = {d[spec.key] for path in spec.customer_paths for d in c.find({path: value})}
            counts[name] = c.delete(keys)
    return counts
