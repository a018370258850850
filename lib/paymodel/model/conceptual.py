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

__all__ = [
    "Association",
    "ManyToMany",
    "Relationship",
    "associations",
    "many_to_many",
    "relationships",
    "singular",
]


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

    @property
    def sentence(self) -> str:
        """The relationship as the diagram reads it, parent to child.

        Example:
            >>> from paymodel.model.oltp import OLTP
            >>> next(r for r in relationships(OLTP) if r.child == "prices").sentence
            'A product is priced by zero or more prices.'
        """
        child = self.child if self.parent_side == "zero or more" else singular(self.child)
        parent = singular(self.parent)
        article = "An" if parent[0] in "aeiou" else "A"
        return f"{article} {parent} {self.label} {self.parent_side} {_words(child)}."


def singular(table: str) -> str:
    """A table name as one of its rows, in words.

    Example:
        >>> singular("currencies"), singular("customer_addresses"), singular("fx_rates")
        ('currency', 'customer address', 'fx rate')
    """
    if table.endswith("ies"):
        word = table[:-3] + "y"
    elif table.endswith(("sses", "xes")):
        word = table[:-2]
    else:
        word = table.removesuffix("s")
    return _words(word)


def _words(name: str) -> str:
    return name.replace("_", " ")


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


@dataclass(frozen=True)
class ManyToMany:
    """A many-to-many relationship between two entities, resolved by a third.

    Attributes:
        table: the resolving table; each of its rows links one ``left`` to one ``right``.
        left/right: the two entities.
        once_per_pair: whether a unique key allows each pair at most once (a pure
            association such as ``invoice_payments``); otherwise the resolving table is an
            entity in its own right (a subscription item has its own id, quantity, period).
    """

    table: str
    left: str
    right: str
    once_per_pair: bool


def many_to_many(model: Model) -> list[ManyToMany]:
    """The many-to-many relationships a table resolves between two of its parents.

    Two foreign keys of one table, at least one NOT NULL, to parents that do not reference
    each other: each left row may then relate to many right rows through this table and
    vice versa. (Parents that reference each other are one-to-many already: a charge's
    customer and payment intent are not a many-to-many, the intent names the customer.)

    Example:
        >>> from paymodel.model.oltp import OLTP
        >>> [(m.table, m.left, m.right) for m in many_to_many(OLTP)][:2]
        [('subscription_items', 'subscriptions', 'prices'), ('discounts', 'coupons', 'customers')]
    """
    tables = {t.name: t for t in model.tables}
    out = []
    for table in model.tables:
        fks = [fk for fk in table.all_foreign_keys
               if len(fk.columns) == 1 and fk.table not in (CURRENCY_TABLE, table.name)]  # fmt: skip
        for i, left in enumerate(fks):
            for right in fks[i + 1 :]:
                if left.table == right.table:
                    continue
                if (
                    right.table in tables[left.table].parents
                    or left.table in tables[right.table].parents
                ):
                    continue
                if (
                    table.column(left.columns[0]).nullable
                    and table.column(right.columns[0]).nullable
                ):
                    continue
                pair = {left.columns[0], right.columns[0]}
                once = any(set(key) == pair for key in (*table.unique_keys, table.primary_key))
                out.append(ManyToMany(table.name, left.table, right.table, once))
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
