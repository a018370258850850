"""Invoices: create, finalise, pay; what a payment's outcome does to them.

A part of :class:`paymodel.oltp.flows.Payments`; see :mod:`paymodel.oltp.flows.payments`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from paymodel.oltp.errors import IllegalTransition, InvalidRequest
from paymodel.oltp.flows._common import DEFAULT_DAYS_UNTIL_DUE, FlowBase, check_amount, obj_name
from paymodel.oltp.flows._tx import Row, Tx
from paymodel.oltp.flows.cards import CardBehaviour
from paymodel.oltp.flows.states import CREATE, INVOICE, PAYMENT_INTENT, SUBSCRIPTION


class InvoiceFlows(FlowBase):
    """Invoices: create, finalise, pay; what a payment's outcome does to them."""

    # ------------------------------------------------------------------ invoices
    def create_invoice(
        self,
        customer_id: str,
        items: Sequence[Mapping[str, Any]],
        *,
        currency: str | None = None,
        collection_method: str = "charge_automatically",
        days_until_due: int | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Create a draft one-off invoice (billing reason ``manual``).

        Args:
            items: ``{"price": price_id, "quantity": n}`` or
                ``{"amount": minor_units, "description": text}`` (then ``currency`` is needed).
            collection_method: ``charge_automatically`` or ``send_invoice``.
            days_until_due: Payment terms of a sent invoice (default 30).
        """
        params = {"customer_id": customer_id, "items": items, "currency": currency,
                  "collection_method": collection_method, "days_until_due": days_until_due}  # fmt: skip

        def body(tx: Tx) -> dict[str, Any]:
            customer = tx.get("customers", customer_id, lock=True)
            obj = obj_name("customer", customer_id)
            if not items:
                raise InvalidRequest(obj, "an invoice needs at least one item")
            prices = {
                item["price"]: tx.get("prices", item["price"]) for item in items if "price" in item
            }
            cur = currency or next((p["currency"] for p in prices.values()), None)
            if cur is None:
                raise InvalidRequest(obj, "items with an amount need the invoice currency")
            lines = []
            for item in items:
                if "price" in item:
                    price = prices[item["price"]]
                    quantity = int(item.get("quantity", 1))
                    self._check_price(obj, price)
                    if price["currency"] != cur:
                        raise InvalidRequest(obj, "all invoice items must be in one currency")
                    lines.append({"price_id": price["id"], "quantity": quantity,
                                  "amount": price["unit_amount"] * quantity,
                                  "description": self._line_description(tx, price, quantity)})  # fmt: skip
                elif "amount" in item:
                    check_amount(obj, int(item["amount"]), cur, minimum=0)
                    lines.append({"price_id": None, "quantity": None, "amount": int(item["amount"]),
                                  "description": item.get("description")})  # fmt: skip
                else:
                    raise InvalidRequest(
                        obj, f"invoice item {dict(item)} has neither price nor amount"
                    )
            self._bill_in(tx, customer, cur)
            due = None
            if collection_method == "send_invoice":
                due = tx.now + dt.timedelta(days=days_until_due or DEFAULT_DAYS_UNTIL_DUE)
            inv = self._create_invoice_rows(
                tx, customer_id, None, cur, lines, "manual", collection_method, tx.now, tx.now, due
            )
            return self.snapshot(tx, "invoices", inv)

        return self._run("create_invoice", params, idempotency_key, body)

    def _line_description(self, tx: Tx, price: Row, quantity: int) -> str:
        product = tx.get("products", price["product_id"])
        return f"{quantity} x {product['name']}"

    def _check_price(self, obj: str, price: Row, *, recurring: bool | None = None) -> None:
        if not price["active"]:
            raise InvalidRequest(obj, f"price {price['id']} is not active")
        if price["billing_scheme"] != "per_unit" or price["unit_amount"] is None:
            raise InvalidRequest(
                obj, f"price {price['id']} is tiered; only per-unit prices are supported"
            )
        if recurring is True and (
            price["type"] != "recurring" or price["recurring_usage_type"] != "licensed"
        ):
            raise InvalidRequest(obj, f"price {price['id']} is not a licensed recurring price")

    def _bill_in(self, tx: Tx, customer: Row, currency: str) -> Row:
        """Set the customer's billing currency on first use; refuse another one later."""
        obj = obj_name("customer", customer["id"])
        self._currency(obj, currency)
        if customer["currency"] is None:
            customer, prev = tx.update("customers", customer, currency=currency)
            tx.event("customer.updated", "customers", customer, prev)
        elif customer["currency"] != currency:
            raise InvalidRequest(obj, f"is billed in {customer['currency']}, not {currency}")
        return customer

    def _create_invoice_rows(
        self,
        tx: Tx,
        customer_id: str,
        subscription_id: str | None,
        currency: str,
        lines: Sequence[Mapping[str, Any]],
        billing_reason: str,
        collection_method: str,
        period_start: dt.datetime,
        period_end: dt.datetime,
        due_date: dt.datetime | None,
    ) -> Row:
        inv_id = self.ids.new("in_")
        subtotal = sum(line["amount"] for line in lines)
        inv = tx.insert(
            "invoices",
            id=inv_id,
            customer_id=customer_id,
            subscription_id=subscription_id,
            number=None,
            status=INVOICE.move(obj_name("invoice", inv_id), CREATE, "draft", "create"),
            billing_reason=billing_reason,
            collection_method=collection_method,
            currency=currency,
            subtotal=subtotal,
            discount_amount=0,
            tax=0,
            total=subtotal,
            starting_balance=0,
            amount_due=max(subtotal, 0),
            amount_paid=0,
            amount_remaining=max(subtotal, 0),
            attempt_count=0,
            period_start=period_start,
            period_end=period_end,
            due_date=due_date,
            finalized_at=None,
            paid_at=None,
            voided_at=None,
            created=tx.now,
            metadata={},
        )
        tx.insert_many(
            "invoice_line_items",
            [
                {
                    "id": self.ids.new("il_"),
                    "invoice_id": inv_id,
                    "subscription_item_id": line.get("subscription_item_id"),
                    "price_id": line.get("price_id"),
                    "currency": currency,
                    "amount": line["amount"],
                    "discount_amount": 0,
                    "quantity": line.get("quantity"),
                    "description": line.get("description"),
                    "proration": bool(line.get("proration", False)),
                    "period_start": line.get("period_start", period_start),
                    "period_end": line.get("period_end", period_end),
                }
                for line in lines
            ],
        )
        tx.event("invoice.created", "invoices", inv)
        return inv

    def finalize_invoice(
        self, invoice_id: str, *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Finalise a draft invoice: number it, apply the customer's balance, open it.

        The customer's balance (negative: credit) is applied: ``amount_due`` is
        ``max(0, total + balance)`` and what is left becomes the new balance. An invoice
        with nothing due is paid at once.

        Raises:
            IllegalTransition: The invoice is not a draft.
        """
        params = {"invoice_id": invoice_id}

        def body(tx: Tx) -> dict[str, Any]:
            inv = tx.get("invoices", invoice_id, lock=True)
            inv = self._finalize(tx, inv)
            return self.snapshot(tx, "invoices", inv)

        return self._run("finalize_invoice", params, idempotency_key, body)

    def _finalize(self, tx: Tx, inv: Row) -> Row:
        obj = obj_name("invoice", inv["id"])
        INVOICE.require(obj, inv["status"], "finalize")
        customer = tx.get("customers", inv["customer_id"], lock=True)
        starting = customer["balance"]
        net = inv["total"] + starting
        due = max(net, 0)
        i = tx.t["invoices"].c
        numbered = tx.conn.execute(
            sa.select(sa.func.count()).where(i.customer_id == customer["id"], i.number.is_not(None))
        ).scalar_one()
        prefix = hashlib.sha256(customer["id"].encode()).hexdigest()[:8].upper()
        status = INVOICE.move(obj, inv["status"], "open" if due > 0 else "paid", "finalize")
        inv, prev = tx.update(
            "invoices", inv, number=f"{prefix}-{numbered + 1:04d}", status=status,
            starting_balance=starting, amount_due=due, amount_paid=0, amount_remaining=due,
            finalized_at=tx.now, paid_at=tx.now if status == "paid" else None,
        )  # fmt: skip
        if net - due != starting:
            customer, cprev = tx.update("customers", customer, balance=net - due)
            tx.event("customer.updated", "customers", customer, cprev)
        tx.event("invoice.finalized", "invoices", inv, prev)
        if status == "paid":
            tx.event("invoice.paid", "invoices", inv)
            self._on_invoice_paid(tx, inv)
        return inv

    def pay_invoice(
        self,
        invoice_id: str,
        *,
        payment_method_id: str | None = None,
        card_behaviour: CardBehaviour | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Attempt to pay an open invoice with a card (the subscription's default by default).

        Creates (or, after a decline, reuses) the invoice's payment intent and its
        ``invoice_payments`` row, and confirms it. On success the invoice is paid and a
        subscription waiting on it becomes active; on a decline the invoice stays open,
        the customer becomes delinquent and an active subscription goes ``past_due``.

        Raises:
            IllegalTransition: The invoice is not open, or its payment awaits 3-D Secure.
            InvalidRequest: No payment method to charge.
        """
        params = {"invoice_id": invoice_id, "payment_method_id": payment_method_id,
                  "card_behaviour": card_behaviour}  # fmt: skip

        def body(tx: Tx) -> dict[str, Any]:
            inv = tx.get("invoices", invoice_id, lock=True)
            self._pay(tx, inv, payment_method_id, card_behaviour)
            return self._return(tx, "invoices", invoice_id)

        return self._run("pay_invoice", params, idempotency_key, body)

    def _pay(
        self, tx: Tx, inv: Row, payment_method_id: str | None, behaviour: CardBehaviour | None
    ) -> Row:
        obj = obj_name("invoice", inv["id"])
        INVOICE.require(obj, inv["status"], "pay")
        pm_id = payment_method_id
        if pm_id is None and inv["subscription_id"] is not None:
            pm_id = tx.get("subscriptions", inv["subscription_id"])["default_payment_method_id"]
        if pm_id is None:
            raise InvalidRequest(obj, "has no payment method to charge; pass payment_method_id")
        ip = tx.t["invoice_payments"].c
        open_payments = tx.select(
            "invoice_payments", ip.invoice_id == inv["id"], ip.status == "open", order_by=[ip.id]
        )
        pi = None
        for payment in open_payments:
            candidate = tx.get("payment_intents", payment["payment_intent_id"], lock=True)
            if candidate["status"] == "requires_action":
                raise IllegalTransition(
                    obj, f"payment {candidate['id']} awaits 3-D Secure; authenticate or cancel it"
                )
            if candidate["status"] in PAYMENT_INTENT.sources("confirm"):
                pi = candidate
        if pi is None:
            pi = self._create_intent(
                tx, inv["amount_remaining"], inv["currency"], inv["customer_id"], None,
                description=f"Invoice {inv['number']}",
            )  # fmt: skip
            payment = tx.insert(
                "invoice_payments",
                id=self.ids.new("inpay_"),
                invoice_id=inv["id"],
                payment_intent_id=pi["id"],
                currency=inv["currency"],
                amount_requested=inv["amount_remaining"],
                amount_paid=None,
                status="open",
                is_default=not open_payments,
                paid_at=None,
                canceled_at=None,
                created=tx.now,
            )
            tx.event("invoice_payment.created", "invoice_payments", payment)
        inv, prev = tx.update("invoices", inv, attempt_count=inv["attempt_count"] + 1)
        tx.event("invoice.updated", "invoices", inv, prev)
        return self._confirm(tx, pi, pm_id, behaviour)

    def _on_payment_succeeded(self, tx: Tx, pi: Row) -> None:
        """A payment intent succeeded: pay the invoice it was for, clear delinquency."""
        ip = tx.t["invoice_payments"].c
        payments = tx.select(
            "invoice_payments", ip.payment_intent_id == pi["id"], ip.status == "open"
        )
        for payment in payments:
            payment, prev = tx.update(
                "invoice_payments", payment, status="paid",
                amount_paid=pi["amount_received"], paid_at=tx.now,
            )  # fmt: skip
            tx.event("invoice_payment.paid", "invoice_payments", payment, prev)
            inv = tx.get("invoices", payment["invoice_id"], lock=True)
            paid = inv["amount_paid"] + pi["amount_received"]
            remaining = max(inv["amount_due"] - paid, 0)
            obj = obj_name("invoice", inv["id"])
            status = INVOICE.move(obj, inv["status"], "paid" if remaining == 0 else "open", "pay")
            inv, prev = tx.update(
                "invoices", inv, amount_paid=min(paid, inv["amount_due"]),
                amount_remaining=remaining, status=status,
                paid_at=tx.now if status == "paid" else None,
            )  # fmt: skip
            tx.event("invoice.payment_succeeded", "invoices", inv, prev)
            if status == "paid":
                tx.event("invoice.paid", "invoices", inv)
                self._on_invoice_paid(tx, inv)
        if payments and pi["customer_id"] is not None:
            customer = tx.get("customers", pi["customer_id"])
            customer, prev = tx.update("customers", customer, delinquent=False)
            if prev:
                tx.event("customer.updated", "customers", customer, prev)

    def _on_invoice_paid(self, tx: Tx, inv: Row) -> None:
        if inv["subscription_id"] is None:
            return
        sub = tx.get("subscriptions", inv["subscription_id"], lock=True)
        if sub["status"] in SUBSCRIPTION.sources("invoice_paid"):
            obj = obj_name("subscription", sub["id"])
            target = SUBSCRIPTION.move(obj, sub["status"], "active", "invoice_paid")
            sub, prev = tx.update("subscriptions", sub, status=target)
            tx.event("customer.subscription.updated", "subscriptions", sub, prev)

    def _on_payment_failed(self, tx: Tx, pi: Row) -> None:
        """A payment attempt failed: the invoice it was for says so, the customer is delinquent."""
        ip = tx.t["invoice_payments"].c
        payments = tx.select(
            "invoice_payments", ip.payment_intent_id == pi["id"], ip.status == "open"
        )
        for payment in payments:
            inv = tx.get("invoices", payment["invoice_id"])
            tx.event("invoice.payment_failed", "invoices", inv)
            if inv["subscription_id"] is not None:
                sub = tx.get("subscriptions", inv["subscription_id"], lock=True)
                if sub["status"] in SUBSCRIPTION.sources("invoice_payment_failed"):
                    obj = obj_name("subscription", sub["id"])
                    target = SUBSCRIPTION.move(
                        obj, sub["status"], "past_due", "invoice_payment_failed"
                    )
                    sub, prev = tx.update("subscriptions", sub, status=target)
                    tx.event("customer.subscription.updated", "subscriptions", sub, prev)
        if payments and pi["customer_id"] is not None:
            customer = tx.get("customers", pi["customer_id"])
            customer, prev = tx.update("customers", customer, delinquent=True)
            if prev:
                tx.event("customer.updated", "customers", customer, prev)
