"""Stripe's payment flows as ACID transactions, one code path for DuckDB and PostgreSQL.

The API is :class:`Payments`; see :mod:`paymodel.oltp.flows.payments` for the operations,
:mod:`~paymodel.oltp.flows.states` for the lifecycles (as data, rendered to Mermaid),
:mod:`~paymodel.oltp.flows.cards` for test cards and
:mod:`~paymodel.oltp.flows.money` for fees and proration. Errors come from
:mod:`paymodel.oltp.errors`, idempotency from :mod:`paymodel.oltp.idempotency`.
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
    DISPUTE,
    INVOICE,
    MACHINES,
    PAYMENT_INTENT,
    SUBSCRIPTION,
    StateMachine,
    Transition,
)

__all__ = [
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
