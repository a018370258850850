"""The balance: balance transactions, Stripe's fees, currency conversion.

A part of :class:`paymodel.oltp.flows.Payments`; see :mod:`paymodel.oltp.flows.payments`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

import sqlalchemy as sa

from paymodel.oltp.errors import InvalidRequest
from paymodel.oltp.flows._common import AVAILABLE_AFTER, FlowBase, obj_name
from paymodel.oltp.flows._tx import Row, Tx
from paymodel.oltp.flows.money import FeeLine, card_fees, convert


class LedgerFlows(FlowBase):
    """The balance: balance transactions, Stripe's fees, currency conversion."""

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
        obj = obj_name("charge", charge["id"])
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
