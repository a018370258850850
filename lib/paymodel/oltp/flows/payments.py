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
and each sees what the previous one left. DuckDB has no row locks: the claim is a write
there, so of two transactions claiming one object the second fails with a write-write
conflict and runs again (:func:`paymodel.oltp.transactions.lock_rows`).

The operations live in one module per group and are assembled here: customers, catalogue
and payment methods (``_customers``), payment intents (``_intents``), the balance
(``_ledger``), refunds and disputes (``_refunds``), invoices (``_invoices``) and
subscriptions (``_subscriptions``).

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
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

from paymodel.model.stripe import to_stripe_object
from paymodel.oltp.flows._common import AVAILABLE_AFTER, EVIDENCE_WINDOW
from paymodel.oltp.flows._customers import CustomerFlows
from paymodel.oltp.flows._intents import IntentFlows
from paymodel.oltp.flows._invoices import InvoiceFlows
from paymodel.oltp.flows._ledger import LedgerFlows
from paymodel.oltp.flows._refunds import RefundFlows
from paymodel.oltp.flows._subscriptions import SubscriptionFlows
from paymodel.oltp.flows._tx import Row, Tx
from paymodel.oltp.flows.cards import CardBehaviour
from paymodel.oltp.flows.ids import IdGenerator, RandomIds, SequentialIds
from paymodel.oltp.flows.money import US_CARD_PRICING, FeeSchedule
from paymodel.oltp.idempotency import DEFAULT_LOCK_TIMEOUT, run_idempotent, utc_now
from paymodel.oltp.schema import dialect_name

__all__ = ["AVAILABLE_AFTER", "EVIDENCE_WINDOW", "Payments", "SequentialIds"]


class Payments(
    CustomerFlows, IntentFlows, LedgerFlows, RefundFlows, InvoiceFlows, SubscriptionFlows
):
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
