"""The data dictionary: every table and column of a model, in Markdown.

Example:
    >>> from paymodel.model.oltp import OLTP
    >>> md = data_dictionary(OLTP)
    >>> "| `amount_refunded` |" in md and "PII" in md
    True
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from paymodel.model.core import Model, Table

__all__ = ["data_dictionary", "metrics_section"]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _engines(dialects: tuple[str, ...] | None) -> str:
    """A note for a rule that only some engines' DDL declares (the writers enforce it elsewhere)."""
    if dialects is None:
        return ""
    names = {"postgresql": "PostgreSQL", "duckdb": "DuckDB"}
    return (
        f" ({' and '.join(names[d] for d in dialects)} DDL only; enforced by the writers elsewhere)"
    )


def _table_section(table: Table, model: Model | None = None) -> list[str]:
    out = [f"## `{table.name}`", "", f"**Grain:** {table.grain}"]
    if table.stripe_object:
        out.append(
            f"**Stripe object:** `{table.stripe_object}`"
            + (f" (ids start with `{table.id_prefix}`)" if table.id_prefix else "")
        )
    if table.why:
        out.append(f"**Why:** {table.why}")
    out += _warehouse_lines(table)
    out.append(f"**Primary key:** ({', '.join(table.primary_key)})")
    if table.unique_keys:
        keys = "; ".join(f"({', '.join(k)})" for k in table.unique_keys)
        out.append(f"**Unique keys:** {keys}")
    implied = model.implied_unique_keys(table.name) if model is not None else ()
    if implied:
        keys = "; ".join(f"({', '.join(k)}){_engines(d)}" for k, d in implied)
        out.append(
            f"**Unique keys other tables' agreement keys refer to** (unique because they "
            f"contain the primary key): {keys}"
        )
    for fk in table.agreement_keys:
        out.append(
            f"**Agreement key:** ({', '.join(fk.columns)}) references `{fk.table}` "
            f"({', '.join(fk.referred)}){_engines(fk.dialects)}. {fk.why}"
        )
    out += [
        "",
        "| column | type | null | PII | references | description |",
        "|---|---|---|---|---|---|",
    ]
    refs = {
        fk.columns[0]: f"`{fk.table}.{fk.referred[0]}`{_engines(fk.dialects)}"
        for fk in table.all_foreign_keys
        if len(fk.columns) == 1
    }
    for c in table.columns:
        ref = refs.get(c.name, "")
        accepted = f" One of: {', '.join(f'`{v}`' for v in c.accepted)}." if c.accepted else ""
        if c.additivity is not None:
            accepted += f" Measure: {c.additivity.value}."
        out.append(
            f"| `{c.name}` | {c.type.name} | {'yes' if c.nullable else 'no'} | {c.pii.value} "
            f"| {ref} | {_cell(c.description + accepted)} |"
        )
    checks = table.all_checks
    if checks:
        out += ["", "| check | rule |", "|---|---|"]
        out += [
            f"| `{ck.name}` | {_cell(ck.description)}{_engines(ck.dialects)} |" for ck in checks
        ]
    rules = _cross_row_rules(table.name)
    if rules:
        out += ["", "| cross-row rule (quarantined at ingestion) | rule | as SQL |", "|---|---|---|"]
        out += [f"| `{r.name}` | {_cell(r.description)} | `{_cell(r.sql)}` |" for r in rules]
    paths = _stripe_paths(table.name)
    if paths:
        out += ["", "| column | where it lives in Stripe's object |", "|---|---|"]
        out += [f"| `{c}` | {p} |" for c, p in paths.items()]
    return [*out, ""]


def _cross_row_rules(table: str) -> tuple:
    from paymodel.model.rules import rules_for

    return rules_for(table)


def _stripe_paths(table: str) -> dict[str, str]:
    """Column -> its place in the Stripe object, from the declarative mapping."""
    from paymodel.model.stripe import MAPPINGS

    mapping = MAPPINGS.get(table)
    if mapping is None:
        return {}
    out = {}
    for column, f in mapping.fields.items():
        where = f"`{f.path}`"
        if f.kind not in ("value", "special"):
            where += f" ({f.kind})"
        if f.legacy:
            where += f"; older API versions: {', '.join(f'`{p}`' for p in f.legacy)}"
        if f.special:
            where += f"; special case `{f.special}`"
        out[column] = where
    return out


def _warehouse_lines(table: Table) -> list[str]:
    """What Kimball asks of a fact (process, measures) and of a dimension (natural key, history)."""
    out = []
    if table.kind == "fact":
        out.append(f"**Fact.** Business process: {table.business_process}.")
        measures = ", ".join(
            f"`{c.name}` ({c.additivity.value})" for c in table.measures if c.additivity
        )
        out.append(f"**Measures:** {measures}")
    elif table.kind == "dimension":
        out.append(f"**Dimension.** Natural key: ({', '.join(table.natural_key)}).")
        out.append(f"**History:** {table.history}")
    return out


_STRIPE_NOTE = (
    " For a table that holds a Stripe object, the last table of its section says where "
    "each column lives in Stripe's object: the one declarative mapping the renderer, the "
    "ingester (its Python flattener, and on DuckDB the SQL that flattens a staged file's "
    "snapshots) and the events' previous_attributes are derived from. A cross-row rule "
    "refuses, at ingestion, a row that no Stripe account can produce next to its parent."
)


def data_dictionary(model: Model) -> str:
    """Markdown describing every table (grain, keys, checks) and column (type, PII)."""
    lines = [
        f"<!-- Generated by `paymodel schemas` from paymodel.model ({model.name}); do not edit. -->",
        "",
        f"# Data dictionary: {model.name}",
        "",
        model.description,
        "",
        "Amounts are integers in the currency's minor unit. Timestamps are UTC. PII classes: "
        "`direct` identifies a person alone, `quasi` in combination, `none` not at all. "
        "A rule marked *PostgreSQL DDL only* is left out of DuckDB's DDL, because DuckDB 1.5 "
        "refuses to update a row that other rows reference when the rule involves an indexed "
        "column; on DuckDB the payment flows and the ingester enforce it before writing."
        + (_STRIPE_NOTE if any(t.stripe_object for t in model.tables) else ""),
        "",
        "| table | grain | columns |",
        "|---|---|---|",
    ]
    lines += [f"| [`{t.name}`](#{t.name}) | {t.grain} | {len(t.columns)} |" for t in model.tables]
    if model.denormalised:
        lines += [
            "",
            "## Derived values kept on purpose",
            "",
            "Under 3NF these are transitive dependencies: another path derives them. They are "
            "stored because Stripe's objects carry them (a consumer reads them without the "
            "join), and each is guarded so that it cannot drift from its derivation.",
            "",
            "| column | derived from | guarded by |",
            "|---|---|---|",
        ]
        lines += [
            f"| `{d.table}.{d.column}` | {_cell(d.derived_from)} | {_cell(d.guard)} |"
            for d in model.denormalised
        ]
        agreements = [(t, fk) for t in model.tables for fk in t.agreement_keys]
        if agreements:
            lines += [
                "",
                "Redundant references (a column another path implies) are enforced by "
                "agreement keys, composite foreign keys onto a UNIQUE key that contains the "
                "parent's primary key, and reported by the invariant `references_agree`:",
                "",
            ]
            lines += [
                f"- `{t.name}` ({', '.join(fk.columns)}) -> `{fk.table}` ({', '.join(fk.referred)})"
                f"{_engines(fk.dialects)}"
                for t, fk in agreements
            ]
    lines.append("")
    for table in model.tables:
        lines += _table_section(table, model)
    return "\n".join(lines).rstrip() + "\n"


def metrics_section(metrics: Iterable[Any]) -> str:
    """Markdown table of metrics (objects with name, formula, description, mart, column)."""
    lines = [
        "",
        "# Metrics",
        "",
        "Each metric is defined once, in `paymodel.model.marts.METRICS`; the function of "
        "`paymodel.olap.metrics` that computes it carries the same definition as its docstring.",
        "",
        "| metric | formula | meaning | where |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| `{m.name}` | {_cell(m.formula)} | {_cell(m.description)} | `{m.mart}.{m.column}` |"
        for m in metrics
    ]
    return "\n".join(lines) + "\n"
