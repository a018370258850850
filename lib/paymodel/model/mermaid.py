"""Mermaid ``erDiagram`` renderings of a model.

Cardinalities come from the foreign keys: a child row refers to exactly one parent
(``||``) when the key is NOT NULL, to zero or one (``|o``) when it is nullable; a
parent has zero or more children (``o{``), or zero or one (``o|``) when the foreign
key is also unique (a one-to-one extension such as ``customer_addresses``).

Example:
    >>> from paymodel.model.oltp import OLTP
    >>> text = er_diagram(OLTP, columns=False)
    >>> 'customers ||--o{ subscriptions : "holds"' in text
    True
"""

from __future__ import annotations

from collections.abc import Callable

from paymodel.model.core import CURRENCY_TABLE, SUBJECT_AREAS, ForeignKey, Model, Table

__all__ = ["er_diagram", "relationship_label", "subject_area_diagram"]

_LABELS = {
    # (parent, child) or (parent, child, foreign-key column): a verb phrase that reads
    # "a <parent> <label> <children>".
    ("customers", "subscriptions"): "holds",
    ("customers", "payment_methods"): "saves",
    ("customers", "invoices"): "receives",
    ("customers", "payment_intents"): "makes",
    ("customers", "charges"): "is charged by",
    ("customers", "customer_addresses"): "lives at",
    ("customers", "discounts"): "redeems",
    ("products", "prices"): "is priced by",
    ("prices", "subscription_items"): "is subscribed to through",
    ("prices", "invoice_line_items"): "is billed on",
    ("subscriptions", "subscription_items"): "contains",
    ("subscriptions", "invoices"): "is billed by",
    ("subscriptions", "discounts"): "is discounted by",
    ("subscription_items", "invoice_line_items"): "is billed on",
    ("invoices", "invoice_line_items"): "lists",
    ("invoices", "invoice_payments"): "is paid by",
    ("payment_intents", "invoice_payments"): "is applied as",
    ("payment_intents", "charges"): "is attempted by",
    ("payment_methods", "charges"): "funds",
    ("payment_methods", "subscriptions"): "is the default of",
    ("payment_methods", "payment_intents"): "is used by",
    ("payment_intents", "refunds"): "is refunded by",
    ("payment_intents", "disputes"): "is disputed by",
    ("charges", "refunds"): "is refunded by",
    ("charges", "disputes"): "is disputed by",
    ("charges", "balance_transactions"): "settles as",
    ("refunds", "balance_transactions"): "settles as",
    ("disputes", "balance_transactions"): "settles as",
    ("balance_transactions", "balance_transaction_fee_details"): "is itemised by",
    ("coupons", "discounts"): "is applied as",
    ("currencies", "fx_rates"): "is valued daily by",
    # Two relationships between one pair of tables: keyed by the foreign-key column too.
    ("payouts", "balance_transactions", "payout_id"): "pays out",
    ("payouts", "balance_transactions", "source_payout_id"): "settles as",
}


_MENTION_LABELS = {
    # (named table, naming table): a mention without a foreign key (Column.mentions).
    ("events", "ingest_versions"): "is the version in",
    ("events", "ingest_pending"): "is parked in",
    ("events", "ingest_quarantine"): "is quarantined in",
    ("idempotency_keys", "events"): "is recorded on",
}


def _mention_edges(model: Model, keep: Callable[[str, str], bool]) -> list[str]:
    """Dotted lines (Mermaid ``..``) for columns that name a table without a foreign key."""
    names = set(model.table_names)
    lines = []
    for table in model.tables:
        for col in table.columns:
            if col.mentions in names and keep(table.name, col.mentions):
                label = _MENTION_LABELS.get((col.mentions, table.name), col.name)
                lines.append(f'    {col.mentions} |o..o{{ {table.name} : "{label}"')
    return lines


def relationship_label(parent: str, child: str, fk: ForeignKey) -> str:
    """A verb phrase for the relationship, or the foreign-key column when none is known."""
    column = "_".join(fk.columns)
    return _LABELS.get((parent, child, column)) or _LABELS.get((parent, child), column)


def _cardinality(child: Table, fk: ForeignKey) -> str:
    nullable = any(child.column(c).nullable for c in fk.columns)
    unique = fk.columns in child.unique_keys or fk.columns == child.primary_key
    left = "|o" if nullable else "||"
    right = "o|" if unique else "o{"
    return f"{left}--{right}"


def _type_name(sql: str) -> str:
    # Mermaid breaks on commas and spaces inside attribute types.
    return sql.replace(" ", "_")


def _edges(
    model: Model, *, currencies: bool, keep: Callable[[Table, ForeignKey], bool]
) -> list[str]:
    """One relationship line per foreign key that ``keep`` accepts, in table order.

    Engine limits (a reference that only PostgreSQL's DDL declares) are physical facts:
    they belong to the DDL, not to an ER diagram, and are not drawn.
    """
    lines = []
    for child in model.tables:
        seen: set[tuple[str, str]] = set()
        for fk in child.all_foreign_keys:
            if fk.table == CURRENCY_TABLE and not currencies and child.name != "fx_rates":
                continue
            if fk in child.agreement_keys:  # the same relationship as its first column's
                continue
            if not keep(child, fk):
                continue
            label = relationship_label(fk.table, child.name, fk)
            if (fk.table, label) in seen:
                label = "_".join(fk.columns)
            seen.add((fk.table, label))
            lines.append(f'    {fk.table} {_cardinality(child, fk)} {child.name} : "{label}"')
    return lines


def _attributes(table: Table, *, keys_only: bool = False) -> list[str]:
    """The column block of ``table``: logical type, name, key markers and notes.

    The type is the logical one (``amount``, ``currency``, ``timestamp``): the SQL type of
    each engine is the physical model's business (``schemas/*.sql``). Notes say what a
    reader needs beyond the keys: ``nullable``, the PII class, a composite unique key.

    A single-column unique key is marked ``UK``. The columns of a composite unique key are
    not: marking each ``UK`` would read as if each were unique on its own (a one-to-one
    relationship); their comment names the key once, "unique together: (a, b)".
    """
    fk_cols = {c for fk in table.all_foreign_keys for c in fk.columns}
    single_uk = {key[0] for key in table.unique_keys if len(key) == 1}
    composite = {c: key for key in table.unique_keys if len(key) > 1 for c in key}
    key_cols = {*table.primary_key, *fk_cols, *(c for key in table.unique_keys for c in key)}
    key_cols |= {c.name for c in table.columns if c.mentions}
    lines = [f"    {table.name} {{"]
    for col in table.columns:
        if keys_only and col.name not in key_cols:
            continue
        keys = [
            k
            for k, on in (
                ("PK", col.name in table.primary_key),
                ("FK", col.name in fk_cols),
                ("UK", col.name in single_uk),
            )
            if on
        ]
        marker = f" {', '.join(keys)}" if keys else ""
        notes = [
            note
            for note, on in (
                ("nullable", col.nullable),
                (f"PII {col.pii.value}", col.pii.value != "none"),
                (f"unique with {', '.join(c for c in composite.get(col.name, ()) if c != col.name)}",
                 col.name in composite),
            )
            if on
        ]  # fmt: skip
        comment = f' "{"; ".join(notes)}"' if notes else ""
        lines.append(f"        {_type_name(col.type.name)} {col.name}{marker}{comment}")
    lines.append("    }")
    return lines


def er_diagram(model: Model, *, columns: bool = True, currencies: bool = False) -> str:
    """The model as a Mermaid ``erDiagram``.

    Args:
        model: the model to draw.
        columns: draw every column with its type and key markers (PK, FK, UK) when
            true; only entities and relationships (the conceptual view) when false.
        currencies: draw the many edges to ``currencies`` (off by default: every
            money table has one and they hide the structure).
    """
    lines = ["erDiagram", *_edges(model, currencies=currencies, keep=lambda child, fk: True)]
    if columns:
        for table in model.tables:
            lines += _attributes(table)
    return "\n".join(lines) + "\n"


def subject_area_diagram(model: Model, area: str) -> str:
    """The logical ER diagram of one subject area: its tables with their key columns.

    Each table shows its primary, foreign and unique key columns (and the columns that
    name another table without a foreign key): what the relationships rest on. Every
    other column is in the data dictionary; drawing them all would make a diagram no
    screen holds (``charges`` alone has over thirty).

    Tables of other areas that the area's tables reference, or that reference them, are
    drawn as bare boxes (no columns) so that each edge leading out of the area shows where
    it goes; each has a diagram of its own area. Columns that name a table without a
    foreign key (:attr:`~paymodel.model.core.Column.mentions`) are drawn as dotted lines.

    Example:
        >>> from paymodel.model.oltp import OLTP
        >>> text = subject_area_diagram(OLTP, "payments")
        >>> "    charges {" in text, "    invoices {" in text, "invoices ||--o{ invoice_payments" in text
        (True, False, True)
    """
    if area not in SUBJECT_AREAS:
        raise KeyError(f"no subject area {area!r}; known: {sorted(SUBJECT_AREAS)}")
    inside = {t.name for t in model.tables if t.subject_area == area}
    edges = _edges(
        model, currencies=False,
        keep=lambda child, fk: child.name in inside or fk.table in inside,
    )  # fmt: skip
    edges += _mention_edges(model, lambda child, named: child in inside or named in inside)
    lines = ["erDiagram", *edges]
    for table in model.tables:
        if table.name in inside:
            lines += _attributes(table, keys_only=True)
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
