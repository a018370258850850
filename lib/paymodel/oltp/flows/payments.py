"""Stripe's payment flows as ACID transactions over the OLTP schema, DuckDB or PostgreSQL.

:class:`Payments` is the API. Each public method is one operation: it runs in one
transaction that writes every row the operation implies (the charge, its balance
transaction and fee details, the refund, the invoice payment...) and one ``events`` row
per state change, then returns the resulting object as a Stripe-like ``dict``. An
operation that breaks a rule raises a :class:`~paymodel.oltp.errors.PaymentError` that
names the object and the rule, and writes nothing.

Every method takes an optional ``idempotency_key`` with Stripe's semantics
(:mod:`paymodel.oltp.idempotency`): the same key with the same parameters returns the
stored result (or raises the stored error) without doing the work again; the same key
with other parameters raises :class:`~paymodel.oltp.errors.IdempotencyKeyReused`; a
request racing one in flight with the same key raises
:class:`~paymodel.oltp.errors.IdempotencyConflict` and has no effect.

Concurrency: each flow first locks the object it changes (the "aggregate root": the
payment intent, the charge, the invoice, the subscription) with ``SELECT ... FOR UPDATE``
on PostgreSQL, then reads everything else, so concurrent refunds of one charge queue up
and each sees what the previous one left. DuckDB has no row locks; a write-write conflict
aborts one transaction, which runs again (:mod:`paymodel.oltp.transactions`).

Example:
    >>> from paymodel.oltp.engines import duckdb_engine
    >>> from paymodel.oltp.schema import create_schema
    >>> engine = duckdb_engine(); create_schema(engine)
    >>> pay = Payments(engine, ids=SequentialIds())
    >>> cus = pay.create_customer(email="ada@example.com", name="Ada")
    >>> pm = pay.create_payment_method(card="visa")
    >>> pm = pay.attach_payment_method(pm["id"], customer_id=cus["id"])
    >>> pi = pay.create_payment_intent(2_000, "usd", customer_id=cus["id"], payment_method_id=pm["id"])
    >>> pi = pay.confirm_payment_intent(pi["id"], idempotency_key="order-17")
    >>> pi["status"], pi["amount_received"]
    ('succeeded', 2000)
    >>> pay.confirm_payment_intent(pi["id"], idempotency_key="order-17") == pi  # a retry
    True
    >>> re = pay.refund_charge(pi["latest_charge"], amount=500)
    >>> pay.refund_charge(pi["latest_charge"], amount=1_600)
    Traceback (most recent call last):
    ...
    paymodel.oltp.errors.AmountExceeded: charge ch_000000000000000000000001: refund of 1600 exceeds the 1500 left to refund
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from paymodel.model.oltp import OLTP
from paymodel.model.stripe import to_stripe_object
from paymodel.oltp.errors import (
    AmountExceeded,
    IllegalTransition,
    InvalidRequest,
)
from paymodel.oltp.flows._tx import Row, Tx
from paymodel.oltp.flows.cards import (
    FAILURE_MESSAGES,
    TEST_CARDS,
    Card,
    CardBehaviour,
    behaviour_for_fingerprint,
)
from paymodel.oltp.flows.ids import IdGenerator, RandomIds, SequentialIds
from paymodel.oltp.flows.money import (
    US_CARD_PRICING,
    FeeLine,
    FeeSchedule,
    add_interval,
    card_fees,
    convert,
    dispute_fees,
    prorate,
    quantum,
)
from paymodel.oltp.flows.states import (
    CREATE,
    DISPUTE,
    INVOICE,
    PAYMENT_INTENT,
    SUBSCRIPTION,
)
from paymodel.oltp.idempotency import DEFAULT_LOCK_TIMEOUT, run_idempotent, utc_now
from paymodel.oltp.schema import dialect_name

__all__ = ["AVAILABLE_AFTER", "EVIDENCE_WINDOW", "Payments", "SequentialIds"]

AVAILABLE_AFTER = dt.timedelta(days=2)
"""Charge funds become available two days later (Stripe's standard US payout schedule)."""

EVIDENCE_WINDOW = dt.timedelta(days=7)
"""Time given to answer a dispute with evidence."""

DEFAULT_DAYS_UNTIL_DUE = 30
"""Payment terms of a sent (``send_invoice``) invoice when none are given."""


def _obj(kind: str, object_id: str) -> str:
    return f"{kind} {object_id}"


class Payments:
    """Stripe's payment operations over one OLTP database.

    Args:
        engine: A DuckDB or PostgreSQL engine whose schema was created with
            :func:`paymodel.oltp.schema.create_schema`.
        clock: Gives the current instant (UTC, whole seconds); a
            :class:`~paymodel.oltp.flows.ids.ManualClock` makes runs reproducible.
        ids: Makes object ids; random by default (safe for concurrent writers).
        fees: The account's card pricing; its currency is the settlement currency.
        account_country: Where the account is; cards issued elsewhere pay the
            international fee.
        lock_timeout: After this long an idempotency key's lock counts as abandoned.
        api_version: Written on events; ``None`` by default (snapshots follow the current
            API shape of :mod:`paymodel.model.stripe`).

    Every operation returns the object it created or changed as a ``dict`` with Stripe's
    ``id`` and ``object`` plus the row's columns (instants as unix seconds); the same
    rendering is stored in ``events.data_object``.
    """

    def __init__(
        self,
        engine: sa.Engine,
        *,
        clock: Callable[[], dt.datetime] = utc_now,
        ids: IdGenerator | None = None,
        fees: FeeSchedule = US_CARD_PRICING,
        account_country: str = "US",
        lock_timeout: dt.timedelta = DEFAULT_LOCK_TIMEOUT,
        api_version: str | None = None,
    ) -> None:
        self.engine = engine
        self.dialect = dialect_name(engine)
        self.clock = clock
        self.ids: IdGenerator = ids if ids is not None else RandomIds()
        self.fees = fees
        self.settlement_currency = fees.currency
        self.account_country = account_country
        self.lock_timeout = lock_timeout
        self.api_version = api_version
        self._behaviours: dict[str, CardBehaviour] = {}

    # ------------------------------------------------------------------ plumbing
    def _run(
        self,
        operation: str,
        params: Mapping[str, Any],
        idempotency_key: str | None,
        body: Callable[[Tx], dict[str, Any]],
    ) -> dict[str, Any]:
        request_id = self.ids.new("req_")
        return run_idempotent(
            self.engine,
            key=idempotency_key,
            operation=operation,
            params=params,
            work=lambda conn: body(Tx(self, conn, request_id, idempotency_key)),
            request_id=request_id,
            clock=self.clock,
            lock_timeout=self.lock_timeout,
        )

    def snapshot(self, tx: Tx, table: str, row: Row) -> dict[str, Any]:
        """The object ``row`` as returned and as stored in ``events.data_object``.

        Rendered by :func:`paymodel.model.stripe.to_stripe_object` in Stripe's API shape,
        with the rows it nests (items, lines, address, balance transactions); payment
        intents also carry ``latest_charge``.
        """
        related = self._related(tx, table, row)
        extra: dict[str, Any] = {}
        if table == "payment_intents":
            c = tx.t["charges"].c
            # A succeeded charge is always a payment intent's last attempt.
            extra["latest_charge"] = tx.conn.execute(
                sa.select(c.id)
                .where(c.payment_intent_id == row["id"])
                .order_by((c.status == "succeeded").desc(), c.created.desc(), c.id.desc())
                .limit(1)
            ).scalar()
        return {**to_stripe_object(table, row, related), **extra}

    def _related(self, tx: Tx, table: str, row: Row) -> dict[str, list[Row]]:
        """The rows an object nests: items, lines, address, balance transactions."""
        t = tx.t
        if table == "customers":
            return {
                "customer_addresses": tx.select(
                    "customer_addresses", t["customer_addresses"].c.customer_id == row["id"]
                )
            }
        if table == "subscriptions":
            si = t["subscription_items"].c
            return {
                "subscription_items": tx.select(
                    "subscription_items",
                    si.subscription_id == row["id"],
                    order_by=[si.created, si.id],
                )
            }
        if table == "invoices":
            il = t["invoice_line_items"].c
            return {
                "invoice_line_items": tx.select(
                    "invoice_line_items", il.invoice_id == row["id"], order_by=[il.id]
                )
            }
        source = {"charges": "charge_id", "refunds": "refund_id", "disputes": "dispute_id"}.get(
            table
        )
        if source is None:
            return {}
        b = t["balance_transactions"].c
        txns = tx.select("balance_transactions", b[source] == row["id"], order_by=[b.created, b.id])
        fd = t["balance_transaction_fee_details"].c
        fees = (
            tx.select(
                "balance_transaction_fee_details",
                fd.balance_transaction_id.in_([x["id"] for x in txns]),
                order_by=[fd.balance_transaction_id, fd.line],
            )
            if txns
            else []
        )
        return {"balance_transactions": txns, "balance_transaction_fee_details": fees}

    def _return(self, tx: Tx, table: str, object_id: str) -> dict[str, Any]:
        return self.snapshot(tx, table, tx.get(table, object_id))

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
                metadata=dict(metadata) if metadata else None,
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
                metadata=dict(metadata) if metadata else None,
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
        _check_amount("price", unit_amount, currency, minimum=0)
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
                metadata=None,
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
            obj = _obj("payment_method", payment_method_id)
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
            obj = _obj("payment_method", payment_method_id)
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
        _check_amount("payment_intent", amount, currency, minimum=1)
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
        obj = _obj("payment_intent", pi_id)
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
            cancellation_reason=None,
            canceled_at=None,
            description=description,
            created=tx.now,
            metadata=dict(metadata) if metadata else None,
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
        obj = _obj("payment_intent", pi["id"])
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
            obj = _obj("payment_intent", pi["id"])
            PAYMENT_INTENT.require(obj, pi["status"], "authenticate")
            pm = tx.get("payment_methods", pi["payment_method_id"])
            if not succeed:
                target = PAYMENT_INTENT.move(
                    obj, pi["status"], "requires_payment_method", "authenticate"
                )
                pi, prev = tx.update(
                    "payment_intents", pi, status=target, payment_method_id=None,
                    last_payment_error_code="payment_intent_authentication_failure",
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
        obj = _obj("payment_intent", pi["id"])
        common = dict(
            id=self.ids.new("ch_"),
            payment_intent_id=pi["id"],
            customer_id=pi["customer_id"] or pm["customer_id"],
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
            metadata=None,
        )
        if behaviour.decline_code is not None:
            code = behaviour.decline_code
            charge = tx.insert(
                "charges",
                **common,
                amount_captured=0,
                status="failed",
                paid=False,
                captured=False,
                failure_code=code,
                failure_message=FAILURE_MESSAGES.get(code, "Your card was declined."),
                outcome_type="blocked" if behaviour.blocked else "issuer_declined",
                outcome_network_status=(
                    "not_sent_to_network" if behaviour.blocked else "declined_by_network"
                ),
            )
            tx.event("charge.failed", "charges", charge)
            target = PAYMENT_INTENT.move(obj, pi["status"], "requires_payment_method", operation)
            pi, prev = tx.update(
                "payment_intents", pi, status=target, payment_method_id=None,
                last_payment_error_code=code,
            )  # fmt: skip
            tx.event("payment_intent.payment_failed", "payment_intents", pi, prev)
            self._on_payment_failed(tx, pi)
            return pi
        manual = pi["capture_method"] == "manual"
        charge = tx.insert(
            "charges",
            **common,
            amount_captured=0 if manual else pi["amount"],
            status="succeeded",
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
            )  # fmt: skip
            tx.event("payment_intent.amount_capturable_updated", "payment_intents", pi, prev)
            return pi
        target = PAYMENT_INTENT.move(obj, pi["status"], "succeeded", operation)
        pi, prev = tx.update(
            "payment_intents", pi, status=target, payment_method_id=pm["id"],
            amount_received=pi["amount"], amount_capturable=0, last_payment_error_code=None,
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
            obj = _obj("payment_intent", pi["id"])
            PAYMENT_INTENT.require(obj, pi["status"], "capture")
            capturable = pi["amount_capturable"]
            amount = capturable if amount_to_capture is None else amount_to_capture
            _check_amount(obj, amount, pi["currency"], minimum=1)
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
        _check_accepted(
            _obj("payment_intent", payment_intent_id), "payment_intents", "cancellation_reason",
            cancellation_reason,
        )  # fmt: skip

        def body(tx: Tx) -> dict[str, Any]:
            pi = tx.get("payment_intents", payment_intent_id, lock=True)
            pi = self._cancel_intent(tx, pi, cancellation_reason)
            return self.snapshot(tx, "payment_intents", pi)

        return self._run("cancel_payment_intent", params, idempotency_key, body)

    def _cancel_intent(self, tx: Tx, pi: Row, reason: str) -> Row:
        obj = _obj("payment_intent", pi["id"])
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

    # ------------------------------------------------------------------ balance
    def _exchange_rate(self, tx: Tx, obj: str, currency: str) -> Decimal | None:
        """Settlement-currency major units per major unit of ``currency`` today, or None."""
        settle = self.settlement_currency
        if currency == settle:
            return None
        f = tx.t["fx_rates"].c
        day = tx.now.date()

        def usd_per_unit(cur: str) -> Decimal:
            if cur == "usd":
                return Decimal(1)
            rate = tx.conn.execute(
                sa.select(f.usd_per_unit)
                .where(f.currency == cur, f.rate_date <= day)
                .order_by(f.rate_date.desc())
                .limit(1)
            ).scalar()
            if rate is None:
                raise InvalidRequest(
                    obj, f"no fx_rates row for {cur} on or before {day} to settle in {settle}"
                )
            return Decimal(rate)

        return (usd_per_unit(currency) / usd_per_unit(settle)).quantize(Decimal("1e-10"))

    def _charge_rate(self, tx: Tx, charge_id: str) -> Decimal | None:
        b = tx.t["balance_transactions"].c
        rate = tx.conn.execute(
            sa.select(b.exchange_rate).where(b.charge_id == charge_id, b.type == "charge").limit(1)
        ).scalar()
        return None if rate is None else Decimal(rate)

    def _settled(self, amount: int, currency: str, rate: Decimal | None) -> int:
        return amount if rate is None else convert(amount, currency, self.settlement_currency, rate)

    def _balance_transaction(
        self,
        tx: Tx,
        *,
        type: str,  # Stripe's field name
        reporting_category: str,
        amount: int,
        fees: Sequence[FeeLine],
        exchange_rate: Decimal | None,
        available_on: dt.datetime,
        description: str,
        **source: str,
    ) -> Row:
        fee = sum(f.amount for f in fees)
        txn = tx.insert(
            "balance_transactions",
            id=self.ids.new("txn_"),
            type=type,
            reporting_category=reporting_category,
            amount=amount,
            fee=fee,
            net=amount - fee,
            currency=self.settlement_currency,
            exchange_rate=exchange_rate,
            status="available" if available_on <= tx.now else "pending",
            available_on=available_on,
            description=description,
            charge_id=source.get("charge_id"),
            refund_id=source.get("refund_id"),
            dispute_id=source.get("dispute_id"),
            created=tx.now,
        )
        tx.insert_many(
            "balance_transaction_fee_details",
            [
                {
                    "balance_transaction_id": txn["id"],
                    "line": i,
                    "type": f.type,
                    "amount": f.amount,
                    "currency": self.settlement_currency,
                    "description": f.description,
                }
                for i, f in enumerate(fees)
            ],
        )
        return txn

    def _settle_charge(self, tx: Tx, charge: Row, pm: Row, amount: int) -> Row:
        """The balance transaction of a captured charge, with Stripe's card fees."""
        obj = _obj("charge", charge["id"])
        rate = self._exchange_rate(tx, obj, charge["currency"])
        settled = self._settled(amount, charge["currency"], rate)
        fees = card_fees(
            settled,
            international=pm["card_country"] not in (None, self.account_country),
            converted=rate is not None,
            schedule=self.fees,
        )
        return self._balance_transaction(
            tx,
            type="charge",
            reporting_category="charge",
            amount=settled,
            fees=fees,
            exchange_rate=rate,
            available_on=tx.now + AVAILABLE_AFTER,
            description=f"Charge {charge['id']}",
            charge_id=charge["id"],
        )

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
        _check_accepted(_obj("charge", charge_id), "refunds", "reason", reason)

        def body(tx: Tx) -> dict[str, Any]:
            charge = tx.get("charges", charge_id, lock=True)
            obj = _obj("charge", charge_id)
            if charge["status"] != "succeeded":
                raise IllegalTransition(
                    obj,
                    f"cannot refund a {charge['status']} charge (refunds need a succeeded charge)",
                )
            if not charge["captured"]:
                raise IllegalTransition(
                    obj, "cannot refund a charge that was not captured; cancel its payment intent"
                )
            left = charge["amount_captured"] - charge["amount_refunded"]
            if left == 0:
                raise IllegalTransition(obj, "cannot refund: the charge is fully refunded")
            value = left if amount is None else amount
            _check_amount(obj, value, charge["currency"], minimum=1)
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
                metadata=None,
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
        _check_accepted(_obj("charge", charge_id), "disputes", "reason", reason)

        def body(tx: Tx) -> dict[str, Any]:
            charge = tx.get("charges", charge_id, lock=True)
            obj = _obj("charge", charge_id)
            if charge["status"] != "succeeded" or not charge["captured"]:
                raise IllegalTransition(
                    obj, f"cannot dispute a charge that is {charge['status']} and "
                    f"{'captured' if charge['captured'] else 'not captured'}",
                )  # fmt: skip
            existing = tx.select("disputes", tx.t["disputes"].c.charge_id == charge_id)
            if existing:
                raise IllegalTransition(obj, f"is disputed already (dispute {existing[0]['id']})")
            left = charge["amount_captured"] - charge["amount_refunded"]
            if left == 0:
                raise IllegalTransition(obj, "cannot dispute a fully refunded charge")
            value = left if amount is None else amount
            _check_amount(obj, value, charge["currency"], minimum=1)
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
                metadata=None,
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
            obj = _obj("dispute", dispute_id)
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
            obj = _obj("dispute", dispute_id)
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
            obj = _obj("customer", customer_id)
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
                    _check_amount(obj, int(item["amount"]), cur, minimum=0)
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
        obj = _obj("customer", customer["id"])
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
            status=INVOICE.move(_obj("invoice", inv_id), CREATE, "draft", "create"),
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
            metadata=None,
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
        obj = _obj("invoice", inv["id"])
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
        obj = _obj("invoice", inv["id"])
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
            obj = _obj("invoice", inv["id"])
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
            obj = _obj("subscription", sub["id"])
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
                    obj = _obj("subscription", sub["id"])
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
            obj = _obj("subscription", sub_id)
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
                metadata=None,
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
                    metadata=None,
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
                _obj("subscription", subscription_id),
                f"proration_behavior {proration_behavior!r} is not supported (always_invoice or none)",
            )

        def body(tx: Tx) -> dict[str, Any]:
            sub = tx.get("subscriptions", subscription_id, lock=True)
            obj = _obj("subscription", subscription_id)
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
            obj = _obj("subscription", subscription_id)
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

    # ------------------------------------------------------------------ checks
    def _currency(self, obj: str, currency: str) -> None:
        from paymodel.model.reference import EXPONENTS

        if currency not in EXPONENTS:
            raise InvalidRequest(
                obj, f"unknown currency {currency!r} (lowercase ISO 4217 expected)"
            )


def _check_amount(obj: str, amount: int, currency: str, *, minimum: int) -> None:
    """An amount is an integer of minor units, within Stripe's 8 digits, on the currency's step."""
    from paymodel.model.core import MAX_AMOUNT

    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidRequest(obj, f"amount {amount!r} is not an integer of minor units")
    if not minimum <= amount <= MAX_AMOUNT:
        raise InvalidRequest(obj, f"amount {amount} is not between {minimum} and {MAX_AMOUNT}")
    step = quantum(currency)
    if amount % step:
        raise InvalidRequest(obj, f"amount {amount} in {currency} must be a multiple of {step}")


def _check_accepted(obj: str, table: str, column: str, value: str | None) -> None:
    """``value`` is one the model accepts in ``table.column`` (or None where it may be NULL)."""
    col = OLTP.table(table).column(column)
    if value is None and col.nullable:
        return
    if col.accepted is not None and value not in col.accepted:
        raise InvalidRequest(obj, f"{column} {value!r} is not one of: {', '.join(col.accepted)}")
