"""The unit of work of one flow: reads, writes and events on one connection.

Internal to :mod:`paymodel.oltp.flows`. A :class:`Tx` lives for one transaction attempt:
it fixes ``now``, takes row locks through :func:`paymodel.oltp.transactions.locking`,
updates only the columns that change (DuckDB refuses updates that touch key columns of
referenced rows) and writes one ``events`` row per state change.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from paymodel.model.oltp import OLTP
from paymodel.model.sql import metadata
from paymodel.model.stripe import previous_attributes
from paymodel.oltp.backend import Backend, backend
from paymodel.oltp.errors import NotFound
from paymodel.oltp.transactions import lock_rows

if TYPE_CHECKING:
    from paymodel.oltp.flows.payments import Payments

Row = dict[str, Any]

OBJECT_OF = {t.name: t.stripe_object for t in OLTP.tables if t.stripe_object}
"""Stripe object name of each table (``charges`` -> ``charge``)."""


@functools.cache
def tables_for(dialect: str) -> dict[str, sa.Table]:
    """The model's SQLAlchemy tables for a dialect, built once."""
    return dict(metadata(OLTP, dialect).tables)


def _normalise(table: str, row: sa.RowMapping, engine: Backend) -> Row:
    """A result row as the flows use it: JSON as data, instants in UTC (on both engines)."""
    return engine.row(table, row)


class Tx:
    """One attempt at one flow's transaction."""

    def __init__(
        self, payments: Payments, conn: sa.Connection, request_id: str, key: str | None
    ) -> None:
        self.p = payments
        self.conn = conn
        self.request_id = request_id
        self.idempotency_key = key
        self.now: dt.datetime = payments.clock()
        self.t = tables_for(payments.dialect)
        self.backend = backend(payments.dialect)

    # --- reads ---------------------------------------------------------------
    def get(self, table: str, object_id: str, *, lock: bool = False) -> Row:
        """The row with ``id = object_id``; :class:`NotFound` names the object otherwise."""
        t = self.t[table]
        if lock:
            result = lock_rows(self.conn, t, t.c.id == object_id, touch="created")
        else:
            result = self.conn.execute(sa.select(t).where(t.c.id == object_id))
        row = result.mappings().first()
        if row is None:
            raise NotFound(f"{OBJECT_OF.get(table, table)} {object_id}", "does not exist")
        return _normalise(table, row, self.backend)

    def select(
        self, table: str, *where: Any, order_by: Iterable[Any] = (), lock: bool = False
    ) -> list[Row]:
        """Rows of ``table`` matching ``where`` (SQLAlchemy expressions on ``self.t``)."""
        t = self.t[table]
        if lock:
            result = lock_rows(self.conn, t, *where, touch="created", order_by=list(order_by))
        else:
            result = self.conn.execute(sa.select(t).where(*where).order_by(*order_by))
        return [_normalise(table, r, self.backend) for r in result.mappings()]

    # --- writes --------------------------------------------------------------
    def insert(self, table: str, **values: Any) -> Row:
        """Insert one row and return it as stored."""
        t = self.t[table]
        row = self.conn.execute(sa.insert(t).values(**values).returning(*t.c)).mappings().one()
        return _normalise(table, row, self.backend)

    def insert_many(self, table: str, rows: list[Row]) -> None:
        """Insert several rows (no return)."""
        if rows:
            self.conn.execute(sa.insert(self.t[table]), rows)

    def update(self, table: str, row: Row, **changes: Any) -> tuple[Row, dict[str, Any]]:
        """Set the columns of ``changes`` that differ from ``row``; only those are written.

        Returns:
            The row as stored now, and Stripe's ``previous_attributes``: the old values of
            the changed columns at their paths in the Stripe mapping
            (:func:`paymodel.model.stripe.previous_attributes`), so the keys are Stripe's.
        """
        changed = {k: v for k, v in changes.items() if row[k] != v}
        if not changed:
            return row, {}
        t = self.t[table]
        # Update, then read back: the one form that behaves alike on both engines.
        self.conn.execute(sa.update(t).where(t.c.id == row["id"]).values(**changed))
        previous = previous_attributes(table, row, changed)
        return self.get(table, row["id"]), previous

    def event(
        self,
        event_type: str,
        table: str,
        row: Row,
        previous: dict[str, Any] | None = None,
    ) -> None:
        """Write one ``events`` row: ``event_type`` about ``row``, snapshot after the change."""
        self.insert(
            "events",
            id=self.p.ids.new("evt_"),
            type=event_type,
            api_version=self.p.api_version,
            object_type=OBJECT_OF[table],
            object_id=row["id"],
            data_object=self.p.snapshot(self, table, row),
            previous_attributes=previous or None,
            request_id=self.request_id,
            idempotency_key=self.idempotency_key,
            livemode=False,
            pending_webhooks=0,
            created=self.now,
        )
