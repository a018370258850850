"""What every part of :class:`~paymodel.oltp.flows.Payments` shares: settings and checks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from paymodel.model.core import MAX_AMOUNT
from paymodel.model.oltp import OLTP
from paymodel.model.reference import EXPONENTS
from paymodel.oltp.errors import InvalidRequest
from paymodel.oltp.flows.cards import CardBehaviour
from paymodel.oltp.flows.ids import IdGenerator
from paymodel.oltp.flows.money import FeeSchedule, quantum

if TYPE_CHECKING:
    from paymodel.oltp.flows._tx import Row, Tx

__all__ = [
    "AVAILABLE_AFTER",
    "DEFAULT_DAYS_UNTIL_DUE",
    "EVIDENCE_WINDOW",
    "FlowBase",
    "check_accepted",
    "check_amount",
    "obj_name",
]

AVAILABLE_AFTER = dt.timedelta(days=2)
"""Charge funds become available two days later (Stripe's standard US payout schedule)."""

EVIDENCE_WINDOW = dt.timedelta(days=7)
"""Time given to answer a dispute with evidence."""

DEFAULT_DAYS_UNTIL_DUE = 30
"""Payment terms of a sent (``send_invoice``) invoice when none are given."""


def obj_name(kind: str, object_id: str) -> str:
    """How errors name an object: ``"charge ch_9"``."""
    return f"{kind} {object_id}"


class FlowBase:
    """The settings and plumbing every group of flows relies on (set by ``Payments``)."""

    engine: sa.Engine
    dialect: str
    clock: Callable[[], dt.datetime]
    ids: IdGenerator
    fees: FeeSchedule
    settlement_currency: str
    account_country: str
    lock_timeout: dt.timedelta
    api_version: str | None
    _behaviours: dict[str, CardBehaviour]

    def _run(
        self,
        operation: str,
        params: Mapping[str, Any],
        idempotency_key: str | None,
        body: Callable[[Tx], dict[str, Any]],
    ) -> dict[str, Any]:
        raise NotImplementedError

    def snapshot(self, tx: Tx, table: str, row: Row) -> dict[str, Any]:
        raise NotImplementedError

    def _return(self, tx: Tx, table: str, object_id: str) -> dict[str, Any]:
        return self.snapshot(tx, table, tx.get(table, object_id))

    def _currency(self, obj: str, currency: str) -> None:
        if currency not in EXPONENTS:
            raise InvalidRequest(
                obj, f"unknown currency {currency!r} (lowercase ISO 4217 expected)"
            )


def check_amount(obj: str, amount: int, currency: str, *, minimum: int) -> None:
    """An amount is an integer of minor units, within Stripe's 8 digits, on the currency's step."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidRequest(obj, f"amount {amount!r} is not an integer of minor units")
    if not minimum <= amount <= MAX_AMOUNT:
        raise InvalidRequest(obj, f"amount {amount} is not between {minimum} and {MAX_AMOUNT}")
    step = quantum(currency)
    if amount % step:
        raise InvalidRequest(obj, f"amount {amount} in {currency} must be a multiple of {step}")


def check_accepted(obj: str, table: str, column: str, value: str | None) -> None:
    """``value`` is one the model accepts in ``table.column`` (or None where it may be NULL)."""
    col = OLTP.table(table).column(column)
    if value is None and col.nullable:
        return
    if col.accepted is not None and value not in col.accepted:
        raise InvalidRequest(obj, f"{column} {value!r} is not one of: {', '.join(col.accepted)}")
