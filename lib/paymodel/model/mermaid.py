"""Mermaid ``erDiagram`` renderings of a model.

Cardinalities come from the foreign keys: a child row refers to exactly one parent
(``||``) when the key is NOT NULL, to zero or one (``|o``) when it is nullable; a
parent has zero or more children (``o{``), or zero or one (``o|``) when the foreign
key is also unique (a one-to-one extension such as ``customer_addresses``).

Example:
    >>> from paymodel.model.oltp import OLTP
    >>> text = er_diagram(OLTP, columns=False)
    >>> 'customers ||--o{ subscriptions : "subscribes"' in text
    True
"""

from __future__ import annotations

from paymodel.model.core import ForeignKey, Model, Table

__all__ = ["er_diagram", "relationship_label"]

_LABELS = {
    ("customers", "subscriptions"): "subscribes",
    ("customers", "payment_methods"): "saves",
    ("customers", "invoices"): "is billed",
    ("customers", "payment_intents"): "pays",
    ("customers", "charges"): "is charged",
    ("customers", "customer_addresses"): "lives at",
    ("customers", "discounts"): "redeems",
    ("products", "prices"): "is priced",
    ("prices", "subscription_items"): "is billed by",
    ("prices", "invoice_line_items"): "is billed on",
    ("subscriptions", "subscription_items"): "contains",
    ("subscriptions", "invoices"): "bills",
    ("subscriptions", "discounts"): "is discounted",
    ("subscription_items", "invoice_line_items"): "is billed on",
    ("invoices", "invoice_line_items"): "lists",
    ("invoices", "invoice_payments"): "is paid by",
    ("payment_intents", "invoice_payments"): "pays",
    ("payment_intents", "charges"): "attempts",
    ("payment_methods", "charges"): "funds",
    ("payment_methods", "subscriptions"): "is default for",
    ("payment_methods", "payment_intents"): "is used by",
    ("payment_intents", "refunds"): "is refunded by",
    ("payment_intents", "disputes"): "is disputed by",
    ("charges", "refunds"): "is refunded by",
    ("charges", "disputes"): "is disputed by",
    ("charges", "balance_transactions"): "settles as",
    ("refunds", "balance_transactions"): "settles as",
    ("disputes", "balance_transactions"): "settles as",
    ("balance_transactions", "balance_transaction_fee_details"): "itemises",
    ("coupons", "discounts"): "is applied as",
    ("currencies", "fx_rates"): "is priced daily",
}


def relationship_label(parent: str, child: str, fk: ForeignKey) -> str:
    """A verb phrase for the relationship, or the foreign-key column when none is known."""
    return _LABELS.get((parent, child), "_".join(fk.columns))


def _cardinality(child: Table, fk: ForeignKey) -> str:
    nullable = any(child.column(c).nullable for c in fk.columns)
    unique = fk.columns in child.unique_keys or fk.columns == child.primary_key
    left = "|o" if nullable else "||"
    right = "o|" if unique else "o{"
    return f"{left}--{right}"


def _type_name(sql: str) -> str:
    # Mermaid breaks on commas and spaces inside attribute types.
    return sql.replace(" ", "_")


def er_diagram(model: Model, *, columns: bool = True, currencies: bool = False) -> str:
    """The model as a Mermaid ``erDiagram``.

    Args:
        model: the model to draw.
        columns: draw every column with its type and key markers (PK, FK, UK) when
            true; only entities and relationships (the conceptual view) when false.
        currencies: draw the many edges to ``currencies`` (off by default: every
            money table has one and they hide the structure).
    """
    lines = ["erDiagram"]
    for child in model.tables:
        seen: set[tuple[str, str]] = set()
        for fk in child.all_foreign_keys:
            if fk.table == "currencies" and not currencies and child.name != "fx_rates":
                continue
            if fk in child.agreement_keys:  # the same relationship as its first column's
                continue
            label = relationship_label(fk.table, child.name, fk)
            if (fk.table, label) in seen:
                label = "_".join(fk.columns)
            seen.add((fk.table, label))
            if fk.dialects is not None:
                label += " (PostgreSQL FK only)" if fk.dialects == ("postgresql",) else ""
            lines.append(f'    {fk.table} {_cardinality(child, fk)} {child.name} : "{label}"')
    if columns:
        for table in model.tables:
            fk_cols = {c for fk in table.all_foreign_keys for c in fk.columns}
            uk_cols = {c for key in table.unique_keys for c in key}
            lines.append(f"    {table.name} {{")
            for col in table.columns:
                keys = [
                    k
                    for k, on in (
                        ("PK", col.name in table.primary_key),
                        ("FK", col.name in fk_cols),
                        ("UK", col.name in uk_cols),
                    )
                    if on
                ]
                marker = f" {', '.join(keys)}" if keys else ""
                null = "" if col.nullable else "not null; "
                pii = f"; PII {col.pii.value}" if col.pii.value != "none" else ""
                comment = f"{null}{col.type.name}{pii}".replace('"', "'")
                lines.append(f'        {_type_name(col.type.sql)} {col.name}{marker} "{comment}"')
            lines.append("    }")
    return "\n".join(lines) + "\n"


def star_diagram(model: Model) -> str:
    """A warehouse model as a Mermaid ``erDiagram``: one edge per fact and dimension.

    A fact that refers to a dimension in several roles (``created_date_key``,
    ``paid_date_key``) gets one edge labelled with the roles; dimensions that every
    fact uses (``dim_currency``) are named in a note instead of drawn to every fact.

    Example:
        >>> from paymodel.model.warehouse import STAR
        >>> 'dim_date ||--o{ fact_refunds : "created"' in star_diagram(STAR)
        True
    """
    facts = [t for t in model.tables if t.kind == "fact"]
    used = [{fk.table for fk in f.all_foreign_keys} for f in facts]
    everywhere = set.intersection(*used) & {"dim_currency"} if used else set()
    lines = ["erDiagram", "    direction LR"]
    for table in model.tables:
        if table.kind is None:
            continue
        roles: dict[str, list[str]] = {}
        for fk in table.all_foreign_keys:
            if fk.table in everywhere and table.kind == "fact":
                continue
            role = fk.columns[0].removesuffix("_date_key").removesuffix("_key")
            roles.setdefault(fk.table, []).append(role)
        for parent, names in roles.items():
            fks = [fk for fk in table.all_foreign_keys if fk.table == parent]
            nullable = all(table.column(fk.columns[0]).nullable for fk in fks)
            label = ", ".join(names) if parent == "dim_date" else names[0]
            lines.append(f'    {parent} {"|o" if nullable else "||"}--o{{ {table.name} : "{label}"')
    for name in sorted(everywhere):
        lines.append(f"    {name} {{")
        lines.append('        text note "every fact refers to it (currency, reporting_currency)"')
        lines.append("    }")
    return "\n".join(lines) + "\n"
