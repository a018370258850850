"""Refunds and disputes of charges.

A part of :class:`paymodel.oltp.flows.Payments`; see :mod:`paymodel.oltp.flows.payments`.
"""

from __future__ import annotations

from typing import Any

from paymodel.oltp.errors import AmountExceeded, IllegalTransition
from paymodel.oltp.flows._common import (
    EVIDENCE_WINDOW,
    FlowBase,
    check_accepted,
    check_amount,
    obj_name,
)
from paymodel.oltp.flows._tx import Tx
from paymodel.oltp.flows.money import dispute_fees
from paymodel.oltp.flows.states import CHARGE, CREATE, DISPUTE


class RefundFlows(FlowBase):
    """Refunds and disputes of charges."""

    # ------------------------------------------------------------------ refunds
    def refund_charge(
        self,
        charge_id: str,
        *,
        amount: int | None = None,
        reason: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Refund all (``amount=None``) or part of a captured charge.

        Writes the refund (succeeded: card refunds are immediate here), the charge's new
        ``amount_refunded``, and a negative ``refund`` balance transaction (Stripe keeps
        its fee). In a converted charge, the settled refunds add up to the settled
        charge: each refund settles the difference of the cumulative converted totals.

        Raises:
            IllegalTransition: The charge failed, was not captured, is fully refunded, or
                is under a dispute that was not won.
            AmountExceeded: ``amount`` exceeds what is left to refund.
        """
        params = {"charge_id": charge_id, "amount": amount, "reason": reason}
        check_accepted(obj_name("charge", charge_id), "refunds", "reason", reason)

        def body(tx: Tx) -> dict[str, Any]:
            charge = tx.get("charges", charge_id, lock=True)
            obj = obj_name("charge", charge_id)
            CHARGE.require(obj, charge["status"], "refund")
            if not charge["captured"]:
                raise IllegalTransition(
                    obj, "cannot refund a charge that was not captured; cancel its payment intent"
                )
            left = charge["amount_captured"] - charge["amount_refunded"]
            if left == 0:
                raise IllegalTransition(obj, "cannot refund: the charge is fully refunded")
            value = left if amount is None else amount
            check_amount(obj, value, charge["currency"], minimum=1)
            if value > left:
                raise AmountExceeded(obj, f"refund of {value} exceeds the {left} left to refund")
            d = tx.t["disputes"].c
            blocking = tx.select(
                "disputes", d.charge_id == charge_id, d.is_charge_refundable.is_(False)
            )
            if blocking:
                raise IllegalTransition(
                    obj,
                    f"cannot refund while dispute {blocking[0]['id']} is {blocking[0]['status']}",
                )
            refund = tx.insert(
                "refunds",
                id=self.ids.new("re_"),
                charge_id=charge_id,
                payment_intent_id=charge["payment_intent_id"],
                currency=charge["currency"],
                amount=value,
                status="succeeded",
                reason=reason,
                failure_reason=None,
                created=tx.now,
                metadata={},
            )
            before = charge["amount_refunded"]
            after = before + value
            charge, prev = tx.update(
                "charges", charge, amount_refunded=after,
                refunded=after == charge["amount_captured"],
            )  # fmt: skip
            rate = self._charge_rate(tx, charge_id)
            settled = self._settled(after, charge["currency"], rate) - self._settled(
                before, charge["currency"], rate
            )
            self._balance_transaction(
                tx,
                type="refund",
                reporting_category="refund",
                amount=-settled,
                fees=[],
                exchange_rate=rate,
                available_on=tx.now,
                description=f"Refund {refund['id']} of charge {charge_id}",
                refund_id=refund["id"],
            )
            tx.event("refund.created", "refunds", refund)
            tx.event("charge.refunded", "charges", charge, prev)
            return self.snapshot(tx, "refunds", refund)

        return self._run("refund_charge", params, idempotency_key, body)

    # ------------------------------------------------------------------ disputes
    def open_dispute(
        self,
        charge_id: str,
        *,
        reason: str = "fraudulent",
        amount: int | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """The cardholder disputes a captured charge: its amount and the dispute fee are withdrawn.

        Raises:
            IllegalTransition: The charge is not a captured success, is fully refunded,
                or is disputed already (one dispute per charge).
            AmountExceeded: ``amount`` exceeds what the charge has not refunded.
        """
        params = {"charge_id": charge_id, "reason": reason, "amount": amount}
        check_accepted(obj_name("charge", charge_id), "disputes", "reason", reason)

        def body(tx: Tx) -> dict[str, Any]:
            charge = tx.get("charges", charge_id, lock=True)
            obj = obj_name("charge", charge_id)
            CHARGE.require(obj, charge["status"], "dispute")
            if not charge["captured"]:
                raise IllegalTransition(obj, "cannot dispute a charge that was not captured")
            existing = tx.select("disputes", tx.t["disputes"].c.charge_id == charge_id)
            if existing:
                raise IllegalTransition(obj, f"is disputed already (dispute {existing[0]['id']})")
            left = charge["amount_captured"] - charge["amount_refunded"]
            if left == 0:
                raise IllegalTransition(obj, "cannot dispute a fully refunded charge")
            value = left if amount is None else amount
            check_amount(obj, value, charge["currency"], minimum=1)
            if value > left:
                raise AmountExceeded(obj, f"dispute of {value} exceeds the {left} not refunded")
            dispute = tx.insert(
                "disputes",
                id=self.ids.new("dp_"),
                charge_id=charge_id,
                payment_intent_id=charge["payment_intent_id"],
                currency=charge["currency"],
                amount=value,
                status=DISPUTE.move(obj, CREATE, "needs_response", "open"),
                reason=reason,
                evidence_due_by=tx.now + EVIDENCE_WINDOW,
                is_charge_refundable=False,
                created=tx.now,
                metadata={},
            )
            charge, prev = tx.update("charges", charge, disputed=True)
            rate = self._charge_rate(tx, charge_id)
            self._balance_transaction(
                tx,
                type="adjustment",
                reporting_category="dispute",
                amount=-self._settled(value, charge["currency"], rate),
                fees=dispute_fees(self.fees),
                exchange_rate=rate,
                available_on=tx.now,
                description=f"Chargeback withdrawal for dispute {dispute['id']}",
                dispute_id=dispute["id"],
            )
            tx.event("charge.dispute.created", "disputes", dispute)
            tx.event("charge.dispute.funds_withdrawn", "disputes", dispute)
            tx.event("charge.updated", "charges", charge, prev)
            return self.snapshot(tx, "disputes", dispute)

        return self._run("open_dispute", params, idempotency_key, body)

    def submit_dispute_evidence(
        self, dispute_id: str, *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Answer a dispute with evidence: ``needs_response`` -> ``under_review``."""
        params = {"dispute_id": dispute_id}

        def body(tx: Tx) -> dict[str, Any]:
            dispute = tx.get("disputes", dispute_id, lock=True)
            obj = obj_name("dispute", dispute_id)
            DISPUTE.require(obj, dispute["status"], "submit_evidence")
            target = DISPUTE.move(obj, dispute["status"], "under_review", "submit_evidence")
            dispute, prev = tx.update("disputes", dispute, status=target)
            tx.event("charge.dispute.updated", "disputes", dispute, prev)
            return self.snapshot(tx, "disputes", dispute)

        return self._run("submit_dispute_evidence", params, idempotency_key, body)

    def close_dispute(
        self, dispute_id: str, *, won: bool, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Close a dispute. Won: the disputed amount comes back (the fee does not) and the
        charge may be refunded again. Lost: nothing more moves (the amount and the fee
        were withdrawn when it opened).

        Raises:
            IllegalTransition: The dispute is closed already.
        """
        params = {"dispute_id": dispute_id, "won": won}

        def body(tx: Tx) -> dict[str, Any]:
            peek = tx.get("disputes", dispute_id)
            charge = tx.get("charges", peek["charge_id"], lock=True)  # the aggregate root first
            dispute = tx.get("disputes", dispute_id, lock=True)
            obj = obj_name("dispute", dispute_id)
            DISPUTE.require(obj, dispute["status"], "close")
            target = DISPUTE.move(obj, dispute["status"], "won" if won else "lost", "close")
            dispute, prev = tx.update("disputes", dispute, status=target, is_charge_refundable=won)
            if won:
                rate = self._charge_rate(tx, charge["id"])
                self._balance_transaction(
                    tx,
                    type="adjustment",
                    reporting_category="dispute_reversal",
                    amount=self._settled(dispute["amount"], charge["currency"], rate),
                    fees=[],
                    exchange_rate=rate,
                    available_on=tx.now,
                    description=f"Chargeback reversal for dispute {dispute_id}",
                    dispute_id=dispute_id,
                )
            tx.event("charge.dispute.closed", "disputes", dispute, prev)
            if won:
                tx.event("charge.dispute.funds_reinstated", "disputes", dispute)
            return self.snapshot(tx, "disputes", dispute)

        return self._run("close_dispute", params, idempotency_key, body)
