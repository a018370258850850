"""Subscriptions: create, change with proration, cancel.

A part of :class:`paymodel.oltp.flows.Payments`; see :mod:`paymodel.oltp.flows.payments`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from paymodel.oltp.errors import IllegalTransition, InvalidRequest
from paymodel.oltp.flows._common import DEFAULT_DAYS_UNTIL_DUE, FlowBase, obj_name
from paymodel.oltp.flows._tx import Row, Tx
from paymodel.oltp.flows.cards import CardBehaviour
from paymodel.oltp.flows.money import add_interval, prorate
from paymodel.oltp.flows.states import CREATE, SUBSCRIPTION


class SubscriptionFlows(FlowBase):
    """Subscriptions: create, change with proration, cancel."""

    # ------------------------------------------------------------------ subscriptions
    def create_subscription(
        self,
        customer_id: str,
        items: Sequence[Mapping[str, Any]],
        *,
        default_payment_method_id: str | None = None,
        collection_method: str = "charge_automatically",
        trial_period_days: int | None = None,
        days_until_due: int | None = None,
        card_behaviour: CardBehaviour | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Subscribe a customer to recurring prices, invoice the first period and collect it.

        Args:
            items: ``{"price": price_id, "quantity": n}``, licensed per-unit recurring
                prices of one currency and one billing interval.
            default_payment_method_id: A card attached to the customer, charged for the
                first invoice and for renewals.
            collection_method: ``charge_automatically`` (charge the card now) or
                ``send_invoice`` (email the invoice, due in ``days_until_due`` days).
            trial_period_days: Start with a free trial (a zero invoice, paid at once).

        Returns:
            The subscription with its ``items`` and ``latest_invoice`` id. Its status:
            ``trialing``; ``active`` when the first invoice was paid or sent;
            ``incomplete`` when the first payment failed or awaits 3-D Secure.
        """
        params = {"customer_id": customer_id, "items": items,
                  "default_payment_method_id": default_payment_method_id,
                  "collection_method": collection_method, "trial_period_days": trial_period_days,
                  "days_until_due": days_until_due, "card_behaviour": card_behaviour}  # fmt: skip
        if collection_method not in ("charge_automatically", "send_invoice"):
            raise InvalidRequest("subscription", f"unknown collection_method {collection_method!r}")

        def body(tx: Tx) -> dict[str, Any]:
            customer = tx.get("customers", customer_id, lock=True)
            sub_id = self.ids.new("sub_")
            obj = obj_name("subscription", sub_id)
            if not items:
                raise InvalidRequest(obj, "a subscription needs at least one item")
            prices = []
            for item in items:
                price = tx.get("prices", item["price"])
                self._check_price(obj, price, recurring=True)
                quantity = int(item.get("quantity", 1))
                if quantity < 1:
                    raise InvalidRequest(
                        obj, f"quantity {quantity} of price {price['id']} is below 1"
                    )
                prices.append((price, quantity))
            first = prices[0][0]
            cycle = (
                first["currency"],
                first["recurring_interval"],
                first["recurring_interval_count"],
            )
            for price, _ in prices:
                if (
                    price["currency"],
                    price["recurring_interval"],
                    price["recurring_interval_count"],
                ) != cycle:
                    raise InvalidRequest(
                        obj, "all items must share one currency and billing interval"
                    )
            customer = self._bill_in(tx, customer, first["currency"])
            if default_payment_method_id is not None:
                pm = self._usable_payment_method(tx, obj, default_payment_method_id, customer_id)
                if pm["customer_id"] != customer_id:
                    raise InvalidRequest(
                        obj, f"payment method {pm['id']} must be attached to customer {customer_id}"
                    )
            trial_end = None
            if trial_period_days:
                trial_end = tx.now + dt.timedelta(days=trial_period_days)
                status = "trialing"
            elif collection_method == "send_invoice":
                status = "active"
            else:
                status = "incomplete"
            period_end = trial_end or add_interval(tx.now, cycle[1], cycle[2])
            sub = tx.insert(
                "subscriptions",
                id=sub_id,
                customer_id=customer_id,
                status=SUBSCRIPTION.move(obj, CREATE, status, "create"),
                currency=cycle[0],
                collection_method=collection_method,
                default_payment_method_id=default_payment_method_id,
                start_date=tx.now,
                billing_cycle_anchor=period_end,
                trial_start=tx.now if trial_end else None,
                trial_end=trial_end,
                cancel_at_period_end=False,
                cancel_at=None,
                canceled_at=None,
                ended_at=None,
                cancellation_reason=None,
                created=tx.now,
                metadata={},
            )
            lines = []
            for price, quantity in prices:
                si = tx.insert(
                    "subscription_items",
                    id=self.ids.new("si_"),
                    subscription_id=sub_id,
                    price_id=price["id"],
                    quantity=quantity,
                    current_period_start=tx.now,
                    current_period_end=period_end,
                    created=tx.now,
                    metadata={},
                )
                description = self._line_description(tx, price, quantity)
                lines.append({
                    "subscription_item_id": si["id"], "price_id": price["id"],
                    "quantity": quantity,
                    "amount": 0 if trial_end else price["unit_amount"] * quantity,
                    "description": f"Trial period for {description}" if trial_end else description,
                    "period_start": tx.now, "period_end": period_end,
                })  # fmt: skip
            tx.event("customer.subscription.created", "subscriptions", sub)
            due = None
            if collection_method == "send_invoice":
                due = tx.now + dt.timedelta(days=days_until_due or DEFAULT_DAYS_UNTIL_DUE)
            inv = self._create_invoice_rows(
                tx, customer_id, sub_id, cycle[0], lines, "subscription_create",
                collection_method, tx.now, tx.now, due,
            )  # fmt: skip
            inv = self._finalize(tx, inv)
            if (
                inv["status"] == "open"
                and collection_method == "charge_automatically"
                and default_payment_method_id is not None
            ):
                self._pay(tx, inv, default_payment_method_id, card_behaviour)
            out = self._return(tx, "subscriptions", sub_id)
            out["latest_invoice"] = inv["id"]
            return out

        return self._run("create_subscription", params, idempotency_key, body)

    def update_subscription(
        self,
        subscription_id: str,
        *,
        price_id: str | None = None,
        quantity: int | None = None,
        item_id: str | None = None,
        proration_behavior: str = "always_invoice",
        card_behaviour: CardBehaviour | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Change the price (upgrade, downgrade) or quantity of a subscription item.

        With ``proration_behavior="always_invoice"`` (the default here) the change is
        prorated to the second over the rest of the current period and invoiced at once:
        a credit line for the unused time on the old price and quantity, a charge line for
        the remaining time on the new ones (``proration`` true), finalised and, for a
        ``charge_automatically`` subscription with a card, paid. A net credit goes to the
        customer's balance. ``"none"`` changes the item without prorating. Changes during
        a trial are not prorated. (Stripe's ``create_prorations``, pending invoice items
        for the next invoice, is not modelled.)

        Raises:
            IllegalTransition: The subscription is canceled (or otherwise not updatable).
            InvalidRequest: Nothing to change, an unknown item, or a price of another
                currency or billing interval.
        """
        params = {"subscription_id": subscription_id, "price_id": price_id, "quantity": quantity,
                  "item_id": item_id, "proration_behavior": proration_behavior,
                  "card_behaviour": card_behaviour}  # fmt: skip
        if proration_behavior not in ("always_invoice", "none"):
            raise InvalidRequest(
                obj_name("subscription", subscription_id),
                f"proration_behavior {proration_behavior!r} is not supported (always_invoice or none)",
            )

        def body(tx: Tx) -> dict[str, Any]:
            sub = tx.get("subscriptions", subscription_id, lock=True)
            obj = obj_name("subscription", subscription_id)
            SUBSCRIPTION.require(obj, sub["status"], "update")
            if price_id is None and quantity is None:
                raise InvalidRequest(obj, "nothing to change: pass price_id or quantity")
            si = tx.t["subscription_items"].c
            items = tx.select(
                "subscription_items", si.subscription_id == subscription_id, order_by=[si.id]
            )
            if item_id is not None:
                matches = [i for i in items if i["id"] == item_id]
                if not matches:
                    raise InvalidRequest(obj, f"has no item {item_id}")
                item = matches[0]
            elif len(items) == 1:
                item = items[0]
            else:
                raise InvalidRequest(obj, f"has {len(items)} items; pass item_id")
            old_price = tx.get("prices", item["price_id"])
            new_price = old_price if price_id is None else tx.get("prices", price_id)
            self._check_price(obj, new_price, recurring=True)
            cycle = ("currency", "recurring_interval", "recurring_interval_count")
            if any(new_price[k] != old_price[k] for k in cycle):
                raise InvalidRequest(
                    obj, f"price {new_price['id']} has another currency or billing interval than "
                    f"{old_price['id']}; changing the billing cycle is not supported",
                )  # fmt: skip
            new_qty = item["quantity"] if quantity is None else quantity
            if new_qty < 1:
                raise InvalidRequest(obj, f"quantity {new_qty} is below 1")
            if new_price["id"] == old_price["id"] and new_qty == item["quantity"]:
                raise InvalidRequest(obj, "nothing to change: same price and quantity")
            item, item_prev = tx.update(
                "subscription_items", item, price_id=new_price["id"], quantity=new_qty
            )
            sub_prev = {"items": [{"id": item["id"], **item_prev}]}
            tx.event("customer.subscription.updated", "subscriptions", sub, sub_prev)
            inv = None
            if proration_behavior == "always_invoice" and sub["status"] != "trialing":
                inv = self._proration_invoice(
                    tx,
                    sub,
                    item,
                    old_price,
                    int(item_prev.get("quantity", new_qty)),
                    new_price,
                    new_qty,
                )
            if (
                inv is not None
                and inv["status"] == "open"
                and sub["collection_method"] == "charge_automatically"
                and sub["default_payment_method_id"] is not None
            ):
                self._pay(tx, inv, None, card_behaviour)
            out = self._return(tx, "subscriptions", subscription_id)
            if inv is not None:
                out["latest_invoice"] = inv["id"]
            return out

        return self._run("update_subscription", params, idempotency_key, body)

    def _proration_invoice(
        self,
        tx: Tx,
        sub: Row,
        item: Row,
        old_price: Row,
        old_qty: int,
        new_price: Row,
        new_qty: int,
    ) -> Row | None:
        start, end = item["current_period_start"], item["current_period_end"]
        period = int((end - start).total_seconds())
        remaining = max(0, min(period, int((end - tx.now).total_seconds())))
        if remaining == 0:
            return None
        cur = sub["currency"]
        credit = -prorate(
            old_price["unit_amount"] * old_qty, remaining=remaining, period=period, currency=cur
        )
        debit = prorate(
            new_price["unit_amount"] * new_qty, remaining=remaining, period=period, currency=cur
        )
        since = tx.now.strftime("%Y-%m-%d %H:%M UTC")
        lines = [
            {"subscription_item_id": item["id"], "price_id": old_price["id"], "quantity": old_qty,
             "amount": credit, "proration": True, "period_start": tx.now, "period_end": end,
             "description": f"Unused time on {self._line_description(tx, old_price, old_qty)} after {since}"},
            {"subscription_item_id": item["id"], "price_id": new_price["id"], "quantity": new_qty,
             "amount": debit, "proration": True, "period_start": tx.now, "period_end": end,
             "description": f"Remaining time on {self._line_description(tx, new_price, new_qty)} after {since}"},
        ]  # fmt: skip
        due = None
        if sub["collection_method"] == "send_invoice":
            due = tx.now + dt.timedelta(days=DEFAULT_DAYS_UNTIL_DUE)
        inv = self._create_invoice_rows(
            tx, sub["customer_id"], sub["id"], cur, lines, "subscription_update",
            sub["collection_method"], tx.now, end, due,
        )  # fmt: skip
        return self._finalize(tx, inv)

    def cancel_subscription(
        self,
        subscription_id: str,
        *,
        at_period_end: bool = False,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Cancel a subscription now (``canceled``, ``ended_at`` set) or at the end of the
        current period (``cancel_at_period_end``; the status is unchanged until then).

        Raises:
            IllegalTransition: It is canceled already, or already set to cancel at period end.
        """
        params = {"subscription_id": subscription_id, "at_period_end": at_period_end}

        def body(tx: Tx) -> dict[str, Any]:
            sub = tx.get("subscriptions", subscription_id, lock=True)
            obj = obj_name("subscription", subscription_id)
            if at_period_end:
                SUBSCRIPTION.require(obj, sub["status"], "cancel_at_period_end")
                if sub["cancel_at_period_end"]:
                    raise IllegalTransition(
                        obj, "is already set to cancel at the end of its period"
                    )
                si = tx.t["subscription_items"].c
                period_end = tx.conn.execute(
                    sa.select(sa.func.max(si.current_period_end)).where(
                        si.subscription_id == subscription_id
                    )
                ).scalar_one()
                sub, prev = tx.update(
                    "subscriptions", sub, cancel_at_period_end=True,
                    cancel_at=period_end.astimezone(dt.UTC), canceled_at=tx.now,
                    cancellation_reason="cancellation_requested",
                )  # fmt: skip
                tx.event("customer.subscription.updated", "subscriptions", sub, prev)
            else:
                SUBSCRIPTION.require(obj, sub["status"], "cancel")
                target = SUBSCRIPTION.move(obj, sub["status"], "canceled", "cancel")
                sub, prev = tx.update(
                    "subscriptions", sub, status=target, canceled_at=tx.now, ended_at=tx.now,
                    cancellation_reason="cancellation_requested",
                )  # fmt: skip
                tx.event("customer.subscription.deleted", "subscriptions", sub, prev)
            return self.snapshot(tx, "subscriptions", sub)

        return self._run("cancel_subscription", params, idempotency_key, body)
