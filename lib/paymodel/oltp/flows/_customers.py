"""Customers, the product catalogue and payment methods.

A part of :class:`paymodel.oltp.flows.Payments`; see :mod:`paymodel.oltp.flows.payments`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from paymodel.oltp.errors import IllegalTransition, InvalidRequest
from paymodel.oltp.flows._common import FlowBase, check_amount, obj_name
from paymodel.oltp.flows._tx import Row, Tx
from paymodel.oltp.flows.cards import TEST_CARDS, Card, CardBehaviour, behaviour_for_fingerprint


class CustomerFlows(FlowBase):
    """Customers, the product catalogue and payment methods."""

    # ------------------------------------------------------------------ customers
    def create_customer(
        self,
        *,
        email: str | None = None,
        name: str | None = None,
        phone: str | None = None,
        address: Mapping[str, str] | None = None,
        preferred_locale: str | None = None,
        metadata: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Create a customer (and its address row when ``address`` is given).

        Args:
            address: Keys among line1, line2, city, state, postal_code, country.
        """
        params = {"email": email, "name": name, "phone": phone, "address": address,
                  "preferred_locale": preferred_locale, "metadata": metadata}  # fmt: skip
        allowed = {"line1", "line2", "city", "state", "postal_code", "country"}
        if address is not None and set(address) - allowed:
            raise InvalidRequest(
                "customer", f"unknown address fields {sorted(set(address) - allowed)}"
            )

        def body(tx: Tx) -> dict[str, Any]:
            cus = tx.insert(
                "customers",
                id=self.ids.new("cus_"),
                email=email,
                name=name,
                phone=phone,
                currency=None,
                balance=0,
                delinquent=False,
                preferred_locale=preferred_locale,
                created=tx.now,
                metadata=dict(metadata or {}),
            )
            if address:
                tx.insert("customer_addresses", customer_id=cus["id"], **address)
            tx.event("customer.created", "customers", cus)
            return self.snapshot(tx, "customers", cus)

        return self._run("create_customer", params, idempotency_key, body)

    # ------------------------------------------------------------------ catalogue
    def create_product(
        self,
        name: str,
        *,
        description: str | None = None,
        metadata: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Create an active product."""
        params = {"name": name, "description": description, "metadata": metadata}

        def body(tx: Tx) -> dict[str, Any]:
            prod = tx.insert(
                "products",
                id=self.ids.new("prod_"),
                name=name,
                description=description,
                active=True,
                created=tx.now,
                metadata=dict(metadata or {}),
            )
            tx.event("product.created", "products", prod)
            return self.snapshot(tx, "products", prod)

        return self._run("create_product", params, idempotency_key, body)

    def create_price(
        self,
        product_id: str,
        unit_amount: int,
        currency: str,
        *,
        recurring_interval: str | None = None,
        recurring_interval_count: int = 1,
        nickname: str | None = None,
        lookup_key: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Create a per-unit price: recurring (licensed) when ``recurring_interval`` is given."""
        params = {"product_id": product_id, "unit_amount": unit_amount, "currency": currency,
                  "recurring_interval": recurring_interval,
                  "recurring_interval_count": recurring_interval_count,
                  "nickname": nickname, "lookup_key": lookup_key}  # fmt: skip
        check_amount("price", unit_amount, currency, minimum=0)
        recurring = recurring_interval is not None

        def body(tx: Tx) -> dict[str, Any]:
            tx.get("products", product_id)
            price = tx.insert(
                "prices",
                id=self.ids.new("price_"),
                product_id=product_id,
                currency=currency,
                unit_amount=unit_amount,
                type="recurring" if recurring else "one_time",
                billing_scheme="per_unit",
                recurring_interval=recurring_interval,
                recurring_interval_count=recurring_interval_count if recurring else None,
                recurring_usage_type="licensed" if recurring else None,
                nickname=nickname,
                lookup_key=lookup_key,
                active=True,
                created=tx.now,
                metadata={},
            )
            tx.event("price.created", "prices", price)
            return self.snapshot(tx, "prices", price)

        return self._run("create_price", params, idempotency_key, body)

    # ------------------------------------------------------------------ payment methods
    def create_payment_method(
        self, card: str | Card = "visa", *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Create a card payment method, not yet attached to a customer.

        Args:
            card: A name from :data:`~paymodel.oltp.flows.cards.TEST_CARDS`, or a
                :class:`~paymodel.oltp.flows.cards.Card`. A custom card's behaviour is
                remembered by this ``Payments`` object, by fingerprint.
        """
        if isinstance(card, str):
            if card not in TEST_CARDS:
                raise InvalidRequest(
                    f"card {card!r}", f"is not a test card; use one of {sorted(TEST_CARDS)}"
                )
            card = TEST_CARDS[card]
        if not card.fingerprint:
            raise InvalidRequest("card", "needs a fingerprint")
        self._behaviours[card.fingerprint] = card.behaviour
        params = {"card": card}

        def body(tx: Tx) -> dict[str, Any]:
            pm = tx.insert(
                "payment_methods",
                id=self.ids.new("pm_"),
                customer_id=None,
                type="card",
                card_brand=card.brand,
                card_funding=card.funding,
                card_country=card.country,
                card_last4=card.last4,
                card_exp_month=card.exp_month,
                card_exp_year=card.exp_year,
                card_fingerprint=card.fingerprint,
                created=tx.now,
            )
            return self.snapshot(tx, "payment_methods", pm)

        return self._run("create_payment_method", params, idempotency_key, body)

    def attach_payment_method(
        self, payment_method_id: str, *, customer_id: str, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Attach a payment method to a customer.

        Raises:
            IllegalTransition: It is attached already, or was detached (Stripe does not
                reuse a detached payment method).
        """
        params = {"payment_method_id": payment_method_id, "customer_id": customer_id}

        def body(tx: Tx) -> dict[str, Any]:
            pm = tx.get("payment_methods", payment_method_id, lock=True)
            obj = obj_name("payment_method", payment_method_id)
            tx.get("customers", customer_id)
            if pm["customer_id"] is not None:
                raise IllegalTransition(obj, f"is already attached to customer {pm['customer_id']}")
            if self._was_detached(tx, payment_method_id):
                raise IllegalTransition(obj, "was detached and cannot be attached again")
            pm, prev = tx.update("payment_methods", pm, customer_id=customer_id)
            tx.event("payment_method.attached", "payment_methods", pm, prev)
            return self.snapshot(tx, "payment_methods", pm)

        return self._run("attach_payment_method", params, idempotency_key, body)

    def detach_payment_method(
        self, payment_method_id: str, *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Detach a payment method from its customer; it can no longer be used.

        Raises:
            IllegalTransition: It is not attached, or a subscription renews with it.
        """
        params = {"payment_method_id": payment_method_id}

        def body(tx: Tx) -> dict[str, Any]:
            pm = tx.get("payment_methods", payment_method_id, lock=True)
            obj = obj_name("payment_method", payment_method_id)
            if pm["customer_id"] is None:
                raise IllegalTransition(obj, "is not attached to a customer")
            s = tx.t["subscriptions"].c
            subs = tx.select(
                "subscriptions",
                s.default_payment_method_id == payment_method_id,
                s.status.not_in(("canceled", "incomplete_expired")),
            )
            if subs:
                raise IllegalTransition(
                    obj, f"is the default payment method of subscription {subs[0]['id']}"
                )
            pm, prev = tx.update("payment_methods", pm, customer_id=None)
            tx.event("payment_method.detached", "payment_methods", pm, prev)
            return self.snapshot(tx, "payment_methods", pm)

        return self._run("detach_payment_method", params, idempotency_key, body)

    def _was_detached(self, tx: Tx, payment_method_id: str) -> bool:
        e = tx.t["events"].c
        return (
            tx.conn.execute(
                sa.select(e.id)
                .where(e.object_id == payment_method_id, e.type == "payment_method.detached")
                .limit(1)
            ).first()
            is not None
        )

    def _usable_payment_method(self, tx: Tx, obj: str, pm_id: str, customer_id: str | None) -> Row:
        pm = tx.get("payment_methods", pm_id)
        if pm["type"] != "card":
            raise InvalidRequest(
                obj, f"payment method {pm_id} is a {pm['type']}; only cards are supported"
            )
        if self._was_detached(tx, pm_id):
            raise IllegalTransition(obj, f"payment method {pm_id} was detached and cannot be used")
        if customer_id is not None and pm["customer_id"] not in (None, customer_id):
            raise InvalidRequest(
                obj,
                f"payment method {pm_id} belongs to customer {pm['customer_id']}, not {customer_id}",
            )
        return pm

    def _behaviour(self, pm: Row, override: CardBehaviour | None) -> CardBehaviour:
        if override is not None:
            return override
        fp = pm["card_fingerprint"]
        return self._behaviours.get(fp) or behaviour_for_fingerprint(fp)
