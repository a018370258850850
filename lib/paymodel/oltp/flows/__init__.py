"""Stripe's payment flows as ACID transactions, one code path for DuckDB and PostgreSQL.

The API is :class:`Payments` (:mod:`paymodel.oltp.flows.payments`). Around it:

* :mod:`~paymodel.oltp.flows.states`: the lifecycles as data, enforced and rendered to Mermaid;
* :mod:`~paymodel.oltp.flows.cards`: Stripe-like test cards (declines, 3-D Secure, Radar);
* :mod:`~paymodel.oltp.flows.money`: Stripe's card fees, currency conversion, proration;
* :mod:`~paymodel.oltp.flows.ids`: object ids and a manual clock for reproducible runs;
* :mod:`~paymodel.oltp.flows.inspect`: read back rows, events and whole-database states;
* :mod:`~paymodel.oltp.flows.concurrency`: run one operation from many threads at once.

Errors come from :mod:`paymodel.oltp.errors`, idempotency keys from
:mod:`paymodel.oltp.idempotency`, transactions and the engine branches from
:mod:`paymodel.oltp.transactions`.
"""

from paymodel.oltp.errors import (
    AmountExceeded,
    IdempotencyConflict,
    IdempotencyError,
    IdempotencyKeyReused,
    IllegalTransition,
    InvalidRequest,
    NotFound,
    PaymentError,
)
from paymodel.oltp.flows.cards import TEST_CARDS, Card, CardBehaviour
from paymodel.oltp.flows.ids import ManualClock, RandomIds, SequentialIds
from paymodel.oltp.flows.money import US_CARD_PRICING, FeeSchedule
from paymodel.oltp.flows.payments import Payments
from paymodel.oltp.flows.states import (
    CHARGE,
    DISPUTE,
    INVOICE,
    MACHINES,
    PAYMENT_INTENT,
    SUBSCRIPTION,
    StateMachine,
    Transition,
)

__all__ = [
    "CHARGE",
    "DISPUTE",
    "INVOICE",
    "MACHINES",
    "PAYMENT_INTENT",
    "SUBSCRIPTION",
    "TEST_CARDS",
    "US_CARD_PRICING",
    "AmountExceeded",
    "Card",
    "CardBehaviour",
    "FeeSchedule",
    "IdempotencyConflict",
    "IdempotencyError",
    "IdempotencyKeyReused",
    "IllegalTransition",
    "InvalidRequest",
    "ManualClock",
    "NotFound",
    "PaymentError",
    "Payments",
    "RandomIds",
    "SequentialIds",
    "StateMachine",
    "Transition",
]
