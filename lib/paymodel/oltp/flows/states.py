"""Lifecycles as data: which operation may move an object from which status to which.

Each :class:`StateMachine` is a list of :class:`Transition` rows. The flows ask it before
they act (:meth:`StateMachine.require`: may ``capture`` run on a ``canceled`` intent?) and
before they write (:meth:`StateMachine.move`: is ``requires_capture -> succeeded`` by
``capture`` a transition?), and the notebook renders the same rows as a Mermaid
``stateDiagram-v2``. The rules and the picture cannot drift apart.

Example:
    >>> PAYMENT_INTENT.require("payment_intent pi_1", "canceled", "capture")
    Traceback (most recent call last):
    ...
    paymodel.oltp.errors.IllegalTransition: payment_intent pi_1: cannot capture in status canceled (capture needs status requires_capture)
    >>> PAYMENT_INTENT.targets("requires_capture", "capture")
    ('succeeded',)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from paymodel.model.oltp import STATUSES
from paymodel.oltp.errors import IllegalTransition

__all__ = [
    "CHARGE",
    "CREATE",
    "DISPUTE",
    "INVOICE",
    "MACHINES",
    "PAYMENT_INTENT",
    "SUBSCRIPTION",
    "StateMachine",
    "Transition",
]

CREATE = "[*]"
"""Pseudo-status of an object that does not exist yet (Mermaid's start state)."""


@dataclass(frozen=True)
class Transition:
    """``operation`` moves an object from ``source`` to ``target`` when ``when`` holds."""

    source: str
    target: str
    operation: str
    when: str = ""


@dataclass(frozen=True)
class StateMachine:
    """The allowed transitions of one object type.

    Args:
        object_type: Stripe's object name (``payment_intent``).
        statuses: Every status the object may have (the model's accepted values).
        transitions: The allowed moves. ``CREATE`` as source means "on creation".
    """

    object_type: str
    statuses: tuple[str, ...]
    transitions: tuple[Transition, ...]
    _by_operation: dict[str, tuple[Transition, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        known = {CREATE, *self.statuses}
        for t in self.transitions:
            for status in (t.source, t.target):
                if status not in known:
                    raise ValueError(
                        f"{self.object_type}: transition {t} uses unknown status {status}"
                    )
        by_operation: dict[str, list[Transition]] = {}
        for t in self.transitions:
            by_operation.setdefault(t.operation, []).append(t)
        object.__setattr__(self, "_by_operation", {k: tuple(v) for k, v in by_operation.items()})

    @property
    def operations(self) -> tuple[str, ...]:
        """The operations that move this object, in declaration order."""
        return tuple(self._by_operation)

    def sources(self, operation: str) -> tuple[str, ...]:
        """The statuses ``operation`` may start from, in declaration order, without repeats."""
        return tuple(dict.fromkeys(t.source for t in self._transitions(operation)))

    def targets(self, source: str, operation: str) -> tuple[str, ...]:
        """The statuses ``operation`` may lead to from ``source``."""
        return tuple(
            dict.fromkeys(t.target for t in self._transitions(operation) if t.source == source)
        )

    def _transitions(self, operation: str) -> tuple[Transition, ...]:
        try:
            return self._by_operation[operation]
        except KeyError:
            raise KeyError(f"{self.object_type}: no operation {operation!r}") from None

    def require(self, obj: str, status: str, operation: str) -> None:
        """Raise :class:`IllegalTransition` unless ``operation`` may start from ``status``.

        Args:
            obj: The object, as ``"<type> <id>"``, named in the error.
            status: Its current status.
            operation: The operation asked for.
        """
        allowed = self.sources(operation)
        if status not in allowed:
            needs = " or ".join(s for s in allowed if s != CREATE)
            raise IllegalTransition(
                obj, f"cannot {operation} in status {status} ({operation} needs status {needs})"
            )

    def move(self, obj: str, source: str, target: str, operation: str) -> str:
        """Return ``target`` if ``operation`` may move ``source`` to it; raise otherwise."""
        if target not in self.targets(source, operation):
            raise IllegalTransition(obj, f"{operation} cannot move status {source} to {target}")
        return target

    def mermaid(self) -> str:
        """The machine as a Mermaid ``stateDiagram-v2`` (one line per transition).

        Example:
            >>> print(SUBSCRIPTION.mermaid().splitlines()[0])
            stateDiagram-v2
        """
        lines = ["stateDiagram-v2"]
        for t in self.transitions:
            label = t.operation + (f" [{t.when}]" if t.when else "")
            lines.append(f"    {t.source} --> {t.target}: {label}")
        return "\n".join(lines)


def _machine(
    object_type: str, table: str, rows: Sequence[tuple[str, str, str, str]]
) -> StateMachine:
    return StateMachine(object_type, STATUSES[table], tuple(Transition(*row) for row in rows))


_CONFIRMABLE = ("requires_payment_method", "requires_confirmation")

PAYMENT_INTENT = _machine(
    "payment_intent",
    "payment_intents",
    [
        (CREATE, "requires_payment_method", "create", "no payment method"),
        (CREATE, "requires_confirmation", "create", "with a payment method"),
        *[
            row
            for source in _CONFIRMABLE
            for row in (
                (source, "succeeded", "confirm", "authorised, automatic capture"),
                (source, "requires_capture", "confirm", "authorised, manual capture"),
                (source, "requires_action", "confirm", "card requires 3-D Secure"),
                (source, "requires_payment_method", "confirm", "declined"),
            )
        ],
        ("requires_action", "succeeded", "authenticate", "authenticated, automatic capture"),
        ("requires_action", "requires_capture", "authenticate", "authenticated, manual capture"),
        ("requires_action", "requires_payment_method", "authenticate", "failed or declined"),
        ("requires_capture", "succeeded", "capture", ""),
        *[
            (source, "canceled", "cancel", "")
            for source in (*_CONFIRMABLE, "requires_action", "requires_capture")
        ],
    ],
)
"""Payment intent lifecycle, as the flows drive it (cards: no ``processing`` step)."""

CHARGE = _machine(
    "charge",
    "charges",
    [
        (CREATE, "succeeded", "create", "authorised"),
        (CREATE, "failed", "create", "declined or blocked"),
        ("succeeded", "succeeded", "capture", "authorised, not captured"),
        ("succeeded", "succeeded", "refund", "captured, amount left"),
        ("succeeded", "succeeded", "dispute", "captured, not disputed"),
    ],
)
"""Charge lifecycle: one attempt, succeeded or failed at once (cards: no ``pending``).
Capture, refunds and disputes change its amounts and flags, not its status."""

DISPUTE = _machine(
    "dispute",
    "disputes",
    [
        (CREATE, "needs_response", "open", "funds withdrawn with the dispute fee"),
        ("needs_response", "under_review", "submit_evidence", ""),
        ("needs_response", "won", "close", "won: funds reinstated"),
        ("needs_response", "lost", "close", "lost"),
        ("under_review", "won", "close", "won: funds reinstated"),
        ("under_review", "lost", "close", "lost"),
    ],
)
"""Dispute lifecycle (chargebacks; inquiries, the ``warning_*`` statuses, are not modelled)."""

SUBSCRIPTION = _machine(
    "subscription",
    "subscriptions",
    [
        (CREATE, "trialing", "create", "trial"),
        (CREATE, "active", "create", "first invoice paid, or sent"),
        (CREATE, "incomplete", "create", "first payment not made"),
        ("incomplete", "active", "invoice_paid", ""),
        ("past_due", "active", "invoice_paid", ""),
        ("active", "past_due", "invoice_payment_failed", ""),
        *[(s, s, "update", "price or quantity") for s in ("trialing", "active", "past_due")],
        *[
            (s, "canceled", "cancel", "now")
            for s in ("incomplete", "trialing", "active", "past_due", "unpaid", "paused")
        ],
        *[(s, s, "cancel_at_period_end", "") for s in ("trialing", "active", "past_due")],
    ],
)
"""Subscription lifecycle, as the flows drive it."""

INVOICE = _machine(
    "invoice",
    "invoices",
    [
        (CREATE, "draft", "create", ""),
        ("draft", "open", "finalize", "amount due"),
        ("draft", "paid", "finalize", "nothing due"),
        ("open", "paid", "pay", "payment succeeded"),
        ("open", "open", "pay", "payment failed or needs action"),
    ],
)
"""Invoice lifecycle, as the flows drive it."""

MACHINES = {m.object_type: m for m in (PAYMENT_INTENT, CHARGE, DISPUTE, SUBSCRIPTION, INVOICE)}
"""Every state machine by object type."""
