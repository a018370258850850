"""Payment intents: create, confirm (3-D Secure), authenticate, capture, cancel.

A part of :class:`paymodel.oltp.flows.Payments`; see :mod:`paymodel.oltp.flows.payments`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from paymodel.model.oltp import error_code
from paymodel.oltp.errors import AmountExceeded, IllegalTransition, InvalidRequest
from paymodel.oltp.flows._common import FlowBase, check_accepted, check_amount, obj_name
from paymodel.oltp.flows._tx import Row, Tx
from paymodel.oltp.flows.cards import FAILURE_MESSAGES, CardBehaviour
from paymodel.oltp.flows.states import CHARGE, CREATE, PAYMENT_INTENT


class IntentFlows(FlowBase):
    """Payment intents: create, confirm (3-D Secure), authenticate, capture, cancel."""

    # ------------------------------------------------------------------ payment intents
    def create_payment_intent(
        self,
        amount: int,
        currency: str,
        *,
        customer_id: str | None = None,
        payment_method_id: str | None = None,
        capture_method: str = "automatic",
        description: str | None = None,
        metadata: Mapping[str, str] | None = None,
        confirm: bool = False,
        card_behaviour: CardBehaviour | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Create a payment intent (``requires_payment_method``, or ``requires_confirmation``
        with a payment method); with ``confirm=True``, confirm it in the same transaction.
        """
        params = {"amount": amount, "currency": currency, "customer_id": customer_id,
                  "payment_method_id": payment_method_id, "capture_method": capture_method,
                  "description": description, "metadata": metadata, "confirm": confirm,
                  "card_behaviour": card_behaviour}  # fmt: skip
        check_amount("payment_intent", amount, currency, minimum=1)
        if capture_method not in ("automatic", "automatic_async", "manual"):
            raise InvalidRequest("payment_intent", f"unknown capture_method {capture_method!r}")

        def body(tx: Tx) -> dict[str, Any]:
            pi = self._create_intent(
                tx, amount, currency, customer_id, payment_method_id, capture_method,
                description, metadata,
            )  # fmt: skip
            if confirm:
                pi = self._confirm(tx, pi, None, card_behaviour)
            return self.snapshot(tx, "payment_intents", pi)

        return self._run("create_payment_intent", params, idempotency_key, body)

    def _create_intent(
        self,
        tx: Tx,
        amount: int,
        currency: str,
        customer_id: str | None,
        payment_method_id: str | None,
        capture_method: str = "automatic",
        description: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Row:
        pi_id = self.ids.new("pi_")
        obj = obj_name("payment_intent", pi_id)
        self._currency(obj, currency)
        if customer_id is not None:
            tx.get("customers", customer_id)
        if payment_method_id is not None:
            self._usable_payment_method(tx, obj, payment_method_id, customer_id)
        status = PAYMENT_INTENT.move(
            obj,
            CREATE,
            "requires_confirmation" if payment_method_id else "requires_payment_method",
            "create",
        )
        pi = tx.insert(
            "payment_intents",
            id=pi_id,
            customer_id=customer_id,
            payment_method_id=payment_method_id,
            currency=currency,
            amount=amount,
            amount_capturable=0,
            amount_received=0,
            status=status,
            capture_method=capture_method,
            last_payment_error_code=None,
            last_payment_error_decline_code=None,
            cancellation_reason=None,
            canceled_at=None,
            description=description,
            created=tx.now,
            metadata=dict(metadata or {}),
        )
        tx.event("payment_intent.created", "payment_intents", pi)
        return pi

    def confirm_payment_intent(
        self,
        payment_intent_id: str,
        *,
        payment_method_id: str | None = None,
        card_behaviour: CardBehaviour | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Confirm a payment intent: charge its payment method, or ask for 3-D Secure.

        The card's behaviour (see :mod:`~paymodel.oltp.flows.cards`) decides: authorised
        (``succeeded``, or ``requires_capture`` with manual capture, with a succeeded
        charge), declined (a failed charge; the intent returns to
        ``requires_payment_method`` with ``last_payment_error_code``) or 3-D Secure
        required (``requires_action``, no charge yet; see
        :meth:`authenticate_payment_intent`). A decline is an outcome, not an error: its
        rows are written and the intent is returned.
        """
        params = {"payment_intent_id": payment_intent_id, "payment_method_id": payment_method_id,
                  "card_behaviour": card_behaviour}  # fmt: skip

        def body(tx: Tx) -> dict[str, Any]:
            pi = tx.get("payment_intents", payment_intent_id, lock=True)
            pi = self._confirm(tx, pi, payment_method_id, card_behaviour)
            return self.snapshot(tx, "payment_intents", pi)

        return self._run("confirm_payment_intent", params, idempotency_key, body)

    def _confirm(
        self, tx: Tx, pi: Row, payment_method_id: str | None, override: CardBehaviour | None
    ) -> Row:
        obj = obj_name("payment_intent", pi["id"])
        PAYMENT_INTENT.require(obj, pi["status"], "confirm")
        pm_id = payment_method_id or pi["payment_method_id"]
        if pm_id is None:
            raise InvalidRequest(
                obj, "cannot be confirmed without a payment method; pass payment_method_id"
            )
        pm = self._usable_payment_method(tx, obj, pm_id, pi["customer_id"])
        behaviour = self._behaviour(pm, override)
        if behaviour.requires_authentication:
            target = PAYMENT_INTENT.move(obj, pi["status"], "requires_action", "confirm")
            pi, prev = tx.update(
                "payment_intents", pi, status=target, payment_method_id=pm_id,
                last_payment_error_code=None,
                last_payment_error_decline_code=None,
            )  # fmt: skip
            tx.event("payment_intent.requires_action", "payment_intents", pi, prev)
            return pi
        return self._attempt_charge(tx, pi, pm, behaviour, "confirm", three_d_secure=None)

    def authenticate_payment_intent(
        self,
        payment_intent_id: str,
        *,
        succeed: bool = True,
        card_behaviour: CardBehaviour | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Complete the 3-D Secure step of a ``requires_action`` payment intent.

        Args:
            succeed: Whether the cardholder passes the check. If not, no charge is made
                and the intent returns to ``requires_payment_method`` with
                ``payment_intent_authentication_failure``.
            card_behaviour: Overrides the card's behaviour for the charge that follows
                (its ``decline_code`` may still decline it).
        """
        params = {"payment_intent_id": payment_intent_id, "succeed": succeed,
                  "card_behaviour": card_behaviour}  # fmt: skip

        def body(tx: Tx) -> dict[str, Any]:
            pi = tx.get("payment_intents", payment_intent_id, lock=True)
            obj = obj_name("payment_intent", pi["id"])
            PAYMENT_INTENT.require(obj, pi["status"], "authenticate")
            pm = tx.get("payment_methods", pi["payment_method_id"])
            if not succeed:
                target = PAYMENT_INTENT.move(
                    obj, pi["status"], "requires_payment_method", "authenticate"
                )
                pi, prev = tx.update(
                    "payment_intents", pi, status=target, payment_method_id=None,
                    last_payment_error_code="payment_intent_authentication_failure",
                    last_payment_error_decline_code=None,
                )  # fmt: skip
                tx.event("payment_intent.payment_failed", "payment_intents", pi, prev)
                self._on_payment_failed(tx, pi)
            else:
                behaviour = self._behaviour(pm, card_behaviour)
                pi = self._attempt_charge(tx, pi, pm, behaviour, "authenticate", "authenticated")
            return self.snapshot(tx, "payment_intents", pi)

        return self._run("authenticate_payment_intent", params, idempotency_key, body)

    def _attempt_charge(
        self,
        tx: Tx,
        pi: Row,
        pm: Row,
        behaviour: CardBehaviour,
        operation: str,
        three_d_secure: str | None,
    ) -> Row:
        """One charge attempt on ``pm`` for ``pi``: a failed or a succeeded charge."""
        obj = obj_name("payment_intent", pi["id"])
        common = dict(
            id=self.ids.new("ch_"),
            payment_intent_id=pi["id"],
            # the payment intent's customer (agreement key fk_charges_payment_intent_id_customer_id)
            customer_id=pi["customer_id"],
            payment_method_id=pm["id"],
            currency=pi["currency"],
            amount=pi["amount"],
            amount_refunded=0,
            refunded=False,
            disputed=False,
            outcome_risk_level=behaviour.risk_level,
            outcome_risk_score=behaviour.risk_score,
            three_d_secure_result=three_d_secure,
            created=tx.now,
            metadata={},
        )
        if behaviour.decline_code is not None:
            decline = behaviour.decline_code
            code = error_code(decline)  # Stripe's error code; the decline code goes beside it
            charge = tx.insert(
                "charges",
                **common,
                amount_captured=0,
                status=CHARGE.move(obj_name("charge", common["id"]), CREATE, "failed", "create"),
                paid=False,
                captured=False,
                failure_code=code,
                failure_message=FAILURE_MESSAGES.get(decline, "Your card was declined."),
                outcome_type="blocked" if behaviour.blocked else "issuer_declined",
                outcome_reason="highest_risk_level" if behaviour.blocked else decline,
                outcome_network_status=(
                    "not_sent_to_network" if behaviour.blocked else "declined_by_network"
                ),
            )
            tx.event("charge.failed", "charges", charge)
            target = PAYMENT_INTENT.move(obj, pi["status"], "requires_payment_method", operation)
            pi, prev = tx.update(
                "payment_intents", pi, status=target, payment_method_id=None,
                last_payment_error_code=code,
                last_payment_error_decline_code=decline,
            )  # fmt: skip
            tx.event("payment_intent.payment_failed", "payment_intents", pi, prev)
            self._on_payment_failed(tx, pi)
            return pi
        manual = pi["capture_method"] == "manual"
        charge = tx.insert(
            "charges",
            **common,
            amount_captured=0 if manual else pi["amount"],
            status=CHARGE.move(obj_name("charge", common["id"]), CREATE, "succeeded", "create"),
            paid=True,
            captured=not manual,
            failure_code=None,
            failure_message=None,
            outcome_type="authorized",
            outcome_network_status="approved_by_network",
        )
        if not manual:  # the ledger first, so that the event's snapshot shows it
            self._settle_charge(tx, charge, pm, pi["amount"])
        tx.event("charge.succeeded", "charges", charge)
        if manual:
            target = PAYMENT_INTENT.move(obj, pi["status"], "requires_capture", operation)
            pi, prev = tx.update(
                "payment_intents", pi, status=target, payment_method_id=pm["id"],
                amount_capturable=pi["amount"], last_payment_error_code=None,
                last_payment_error_decline_code=None,
            )  # fmt: skip
            tx.event("payment_intent.amount_capturable_updated", "payment_intents", pi, prev)
            return pi
        target = PAYMENT_INTENT.move(obj, pi["status"], "succeeded", operation)
        pi, prev = tx.update(
            "payment_intents", pi, status=target, payment_method_id=pm["id"],
            amount_received=pi["amount"], amount_capturable=0, last_payment_error_code=None,
            last_payment_error_decline_code=None,
        )  # fmt: skip
        tx.event("payment_intent.succeeded", "payment_intents", pi, prev)
        self._on_payment_succeeded(tx, pi)
        return pi

    def capture_payment_intent(
        self,
        payment_intent_id: str,
        *,
        amount_to_capture: int | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Capture an authorised (``requires_capture``) payment intent, all or part of it.

        Raises:
            IllegalTransition: The intent is not ``requires_capture`` (canceled, say).
            AmountExceeded: ``amount_to_capture`` exceeds ``amount_capturable``.
        """
        params = {"payment_intent_id": payment_intent_id, "amount_to_capture": amount_to_capture}

        def body(tx: Tx) -> dict[str, Any]:
            pi = tx.get("payment_intents", payment_intent_id, lock=True)
            obj = obj_name("payment_intent", pi["id"])
            PAYMENT_INTENT.require(obj, pi["status"], "capture")
            capturable = pi["amount_capturable"]
            amount = capturable if amount_to_capture is None else amount_to_capture
            check_amount(obj, amount, pi["currency"], minimum=1)
            if amount > capturable:
                raise AmountExceeded(
                    obj, f"capture of {amount} exceeds the {capturable} capturable"
                )
            c = tx.t["charges"].c
            charges = tx.select(
                "charges",
                c.payment_intent_id == pi["id"],
                c.status == "succeeded",
                c.captured.is_(False),
                lock=True,
            )
            if len(charges) != 1:
                raise IllegalTransition(obj, f"has {len(charges)} uncaptured charges; expected one")
            charge, prev = tx.update("charges", charges[0], amount_captured=amount, captured=True)
            pm = tx.get("payment_methods", charge["payment_method_id"])
            self._settle_charge(tx, charge, pm, amount)
            tx.event("charge.captured", "charges", charge, prev)
            target = PAYMENT_INTENT.move(obj, pi["status"], "succeeded", "capture")
            pi, prev = tx.update(
                "payment_intents", pi, status=target, amount_received=amount, amount_capturable=0
            )
            tx.event("payment_intent.succeeded", "payment_intents", pi, prev)
            self._on_payment_succeeded(tx, pi)
            return self.snapshot(tx, "payment_intents", pi)

        return self._run("capture_payment_intent", params, idempotency_key, body)

    def cancel_payment_intent(
        self,
        payment_intent_id: str,
        *,
        cancellation_reason: str = "requested_by_customer",
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Cancel a payment intent that has not succeeded; an authorisation is released.

        The uncaptured charge of a ``requires_capture`` intent keeps its row (status
        succeeded, captured false, nothing captured): no money moved, no balance
        transaction exists for it.

        Raises:
            IllegalTransition: The intent succeeded or is canceled already.
        """
        params = {
            "payment_intent_id": payment_intent_id,
            "cancellation_reason": cancellation_reason,
        }
        check_accepted(
            obj_name("payment_intent", payment_intent_id), "payment_intents", "cancellation_reason",
            cancellation_reason,
        )  # fmt: skip

        def body(tx: Tx) -> dict[str, Any]:
            pi = tx.get("payment_intents", payment_intent_id, lock=True)
            pi = self._cancel_intent(tx, pi, cancellation_reason)
            return self.snapshot(tx, "payment_intents", pi)

        return self._run("cancel_payment_intent", params, idempotency_key, body)

    def _cancel_intent(self, tx: Tx, pi: Row, reason: str) -> Row:
        obj = obj_name("payment_intent", pi["id"])
        PAYMENT_INTENT.require(obj, pi["status"], "cancel")
        target = PAYMENT_INTENT.move(obj, pi["status"], "canceled", "cancel")
        pi, prev = tx.update(
            "payment_intents", pi, status=target, canceled_at=tx.now,
            cancellation_reason=reason, amount_capturable=0,
        )  # fmt: skip
        tx.event("payment_intent.canceled", "payment_intents", pi, prev)
        ip = tx.t["invoice_payments"].c
        for payment in tx.select(
            "invoice_payments", ip.payment_intent_id == pi["id"], ip.status == "open"
        ):
            payment, prev = tx.update(
                "invoice_payments", payment, status="canceled", canceled_at=tx.now
            )
            tx.event("invoice_payment.canceled", "invoice_payments", payment, prev)
        return pi
