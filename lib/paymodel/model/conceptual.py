"""The conceptual view of a model: entities, relationships and their cardinalities.

Cardinalities are read from the foreign keys, the same rule the Mermaid diagrams use
(:mod:`paymodel.model.mermaid`): a child row has **exactly one** parent when the foreign
key is NOT NULL and **zero or one** when it is nullable; a parent has **zero or more**
children, or **zero or one** when the foreign key is also a unique or primary key of the
child (a one-to-one extension). A table whose unique key is made of two NOT NULL
foreign keys to different parents is an **association**: it turns a many-to-many
relationship into two one-to-many ones.

Example:
    >>> from paymodel.model.oltp import OLTP
    >>> rel = next(r for r in relationships(OLTP) if r.child == "customer_addresses")
    >>> rel.parent, rel.parent_side, rel.child_side
    ('customers', 'zero or one', 'exactly one')
    >>> [(a.table, a.left, a.right) for a in associations(OLTP)]
    [('invoice_payments', 'invoices', 'payment_intents')]
"""

from __future__ import annotations

from dataclasses import dataclass

from paymodel.model.core import CURRENCY_TABLE, Model
from paymodel.model.mermaid import relationship_label

__all__ = ["Association", "Relationship", "associations", "relationships"]


@dataclass(frozen=True)
class Relationship:
    """One foreign key seen as a relationship between two entities.

    Attributes:
        parent: the referenced table.
        child: the referencing table.
        columns: the foreign-key columns of the child.
        label: a verb phrase ("is billed"), as in the ER diagram.
        child_side: how many parents a child row has: ``exactly one`` or ``zero or one``.
        parent_side: how many children a parent row has: ``zero or more`` or ``zero or one``.
    """

    parent: str
    child: str
    columns: tuple[str, ...]
    label: str
    child_side: str
    parent_side: str

    @property
    def kind(self) -> str:
        """``one-to-one`` or ``one-to-many`` (from the parent's side)."""
        return "one-to-one" if self.parent_side == "zero or one" else "one-to-many"


@dataclass(frozen=True)
class Association:
    """A table that links two entities many-to-many, once per pair."""

    table: str
    left: str
    right: str
    key: tuple[str, ...]


def relationships(model: Model, *, currencies: bool = False) -> list[Relationship]:
    """Every foreign key of ``model`` as a :class:`Relationship`, in table order.

    Args:
        model: the model.
        currencies: include the references to the currency table (one per money table).
    """
    out = []
    for child in model.tables:
        keys = {*child.unique_keys, child.primary_key}
        for fk in child.all_foreign_keys:
            if fk.table == CURRENCY_TABLE and not currencies:
                continue
            if fk in child.agreement_keys:  # the same relationship as its first column's
                continue
            nullable = any(child.column(c).nullable for c in fk.columns)
            out.append(
                Relationship(
                    parent=fk.table,
                    child=child.name,
                    columns=fk.columns,
                    label=relationship_label(fk.table, child.name, fk),
                    child_side="zero or one" if nullable else "exactly one",
                    parent_side="zero or one" if fk.columns in keys else "zero or more",
                )
            )
    return out


def associations(model: Model) -> list[Association]:
    """Tables with a unique key made of two NOT NULL foreign keys to different parents.

    Each such table lets one row of either parent relate to many of the other, at most
    once per pair: a many-to-many relationship.
    """
    out = []
    for table in model.tables:
        fks = {
            fk.columns[0]: fk.table
            for fk in table.all_foreign_keys
            if len(fk.columns) == 1 and not table.column(fk.columns[0]).nullable
        }
        for key in (*table.unique_keys, table.primary_key):
            if len(key) == 2 and all(c in fks for c in key) and fks[key[0]] != fks[key[1]]:
                out.append(Association(table.name, fks[key[0]], fks[key[1]], key))
    return out
