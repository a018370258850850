"""Cross-row rules: what a row can never be, given its parent.

A check constraint sees one row; some records are impossible only next to the row they
reference: a refund larger than its charge, a refund in another currency than its
charge, an invoice payment larger than the invoice's amount due. No Stripe account can
produce them, whatever the order in which events arrive, so ingestion refuses them
(quarantined with the rule's name) instead of applying them.

Each :class:`CrossRowRule` is written once, as a SQL condition in PostgreSQL's dialect
over the row's columns and its parent's (``parent.amount``). Ingestion evaluates it in
Python with SQL's NULL logic (:func:`paymodel.model.stripe.sql_predicate`);
:meth:`CrossRowRule.violations_sql` gives the same rule as a query for either engine.

Rules that depend on arrival order (refunds summing to ``amount_refunded`` while a later
``charge.refunded`` is still on its way) are not here: they are the dataset invariants
of :mod:`paymodel.oltp.invariants`, reported at the end of a run.

Example:
    >>> [r.name for r in rules_for("refunds")]
    ['refund_within_charge_amount', 'refund_in_charge_currency']
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp

__all__ = ["CROSS_ROW_RULES", "CrossRowRule", "rules_for"]


@dataclass(frozen=True)
class CrossRowRule:
    """A rule over one row and the parent row it references.

    Attributes:
        name: stable snake_case name, the quarantine ``rule``.
        table: the child table (``refunds``).
        column: its foreign key column (``charge_id``).
        parent: the referenced table (``charges``); its key is ``id``.
        sql: the condition, PostgreSQL SQL; bare columns are the row's, ``parent.x``
            the parent's. A NULL result passes, as in a CHECK constraint.
        description: the rule in words.
    """

    name: str
    table: str
    column: str
    parent: str
    sql: str
    description: str

    def columns(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(row columns, parent columns) the condition reads, in order of appearance."""
        mine: list[str] = []
        theirs: list[str] = []
        for col in sqlglot.parse_one(self.sql, read="postgres").find_all(exp.Column):
            target = theirs if col.table == "parent" else mine
            if col.name not in target:
                target.append(col.name)
        return tuple(mine), tuple(theirs)

    def violations_sql(self, dialect: str) -> str:
        """A query naming (``example``: the row's id) every row of ``table`` that breaks the rule."""
        condition = sqlglot.parse_one(self.sql, read="postgres")
        for col in condition.find_all(exp.Column):
            if not col.table:
                col.set("table", exp.to_identifier("c"))
        text = condition.sql(dialect="postgres")
        query = (
            f"SELECT c.id AS example FROM {self.table} c JOIN {self.parent} parent "
            f"ON parent.id = c.{self.column} WHERE NOT ({text})"
        )
        return sqlglot.transpile(query, read="postgres", write=_SQLGLOT[dialect])[0]


_SQLGLOT = {"duckdb": "duckdb", "postgresql": "postgres"}

CROSS_ROW_RULES: tuple[CrossRowRule, ...] = (
    CrossRowRule(
        "refund_within_charge_amount", "refunds", "charge_id", "charges",
        "amount <= parent.amount", "a refund is at most its charge's amount",
    ),
    CrossRowRule(
        "refund_in_charge_currency", "refunds", "charge_id", "charges",
        "currency = parent.currency", "a refund is in its charge's currency",
    ),
    CrossRowRule(
        "dispute_within_charge_amount", "disputes", "charge_id", "charges",
        "amount <= parent.amount", "a dispute is at most its charge's amount",
    ),
    CrossRowRule(
        "dispute_in_charge_currency", "disputes", "charge_id", "charges",
        "currency = parent.currency", "a dispute is in its charge's currency",
    ),
    CrossRowRule(
        "invoice_payment_within_amount_due", "invoice_payments", "invoice_id", "invoices",
        "amount_requested <= parent.amount_due AND "
        "(amount_paid IS NULL OR amount_paid <= parent.amount_due)",
        "an invoice payment requests and pays at most the invoice's amount due",
    ),
    CrossRowRule(
        "invoice_payment_in_invoice_currency", "invoice_payments", "invoice_id", "invoices",
        "currency = parent.currency", "an invoice payment is in its invoice's currency",
    ),
    CrossRowRule(
        "line_item_in_invoice_currency", "invoice_line_items", "invoice_id", "invoices",
        "currency = parent.currency", "an invoice line is in its invoice's currency",
    ),
)  # fmt: skip
"""Every cross-row rule; ingestion quarantines a record that breaks one."""


def rules_for(table: str) -> tuple[CrossRowRule, ...]:
    """The cross-row rules whose child table is ``table``."""
    return tuple(r for r in CROSS_ROW_RULES if r.table == table)
