"""The declarative vocabulary of the model: columns, keys, checks and tables.

The OLTP schema is written once, in :mod:`paymodel.model.oltp`, with the classes
below. Every rendering (DDL per engine, SQLAlchemy Core tables, Mermaid, the data
dictionary, JSON Schema) is derived from these objects and never written by hand.

Check constraints are written once in PostgreSQL's SQL dialect and transpiled to
each engine by sqlglot, so a rule such as ``currency ~ '^[a-z]{3}$'`` becomes
``REGEXP_MATCHES(...)`` on DuckDB without a second hand-written copy.

Example:
    >>> t = Table(
    ...     "widgets", "One row per widget.", "wid_",
    ...     [Column("id", ID, "Widget id."), Column("size", AMOUNT, "Size in minor units.")],
    ... )
    >>> t.primary_key
    ('id',)
    >>> [c.name for c in t.all_checks]
    ['ck_widgets_size_range']
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "AMOUNT",
    "BIGINT",
    "BOOLEAN",
    "COUNTRY",
    "CURRENCY",
    "DATE",
    "DECIMAL_AMOUNT",
    "ID",
    "INTEGER",
    "JSON",
    "PII",
    "RATE",
    "SIGNED_AMOUNT",
    "SMALLINT",
    "SUBJECT_AREAS",
    "TEXT",
    "TIMESTAMP",
    "Additivity",
    "Check",
    "Column",
    "Denormalised",
    "ForeignKey",
    "LogicalType",
    "Model",
    "Table",
]

CURRENCY_TABLE = "currencies"
"""The table every currency column references."""

MAX_AMOUNT = 99_999_999
"""Stripe accepts at most 8 digits for an amount in minor units."""

SUBJECT_AREAS: dict[str, str] = {
    "catalogue_billing": "Catalogue and billing",
    "payments": "Payments",
    "ledger_payouts": "Ledger and payouts",
    "operational": "Operational",
}
"""Subject areas by key, with their titles: each table belongs to one, and each area gets a
logical ER diagram of its own, small enough to read on a screen."""


class PII(enum.Enum):
    """How much a column says about a person (GDPR).

    ``direct`` identifies a person on its own (email, name, phone, street address);
    ``quasi`` identifies a person combined with other columns (country, postal code,
    card fingerprint, last 4 digits); ``none`` says nothing about a person.
    """

    NONE = "none"
    QUASI = "quasi"
    DIRECT = "direct"


class Additivity(enum.Enum):
    """How a fact's measure may be summed (Kimball).

    ``additive`` sums over every dimension (an amount); ``semi-additive`` sums over some
    dimensions but not over time (a balance, a quantity at month end); ``non-additive``
    never sums (a ratio, a lag, a score): average or count it instead.
    """

    ADDITIVE = "additive"
    SEMI_ADDITIVE = "semi-additive"
    NON_ADDITIVE = "non-additive"


@dataclass(frozen=True)
class LogicalType:
    """A column type in domain terms, mapped to one SQL type per engine.

    Attributes:
        name: the logical name shown in the data dictionary (``amount``, ``currency``...).
        sql: the portable SQL type name (rendered per dialect by SQLAlchemy).
        json_type: the JSON Schema type of a value of this column.
        precision/scale: for decimals only.
    """

    name: str
    sql: str
    json_type: str
    precision: int | None = None
    scale: int | None = None


ID = LogicalType("id", "text", "string")
TEXT = LogicalType("text", "text", "string")
BIGINT = LogicalType("bigint", "bigint", "integer")
INTEGER = LogicalType("integer", "integer", "integer")
SMALLINT = LogicalType("smallint", "smallint", "integer")
AMOUNT = LogicalType("amount", "bigint", "integer")
"""A non-negative integer amount in the currency's minor unit (at most 8 digits)."""
SIGNED_AMOUNT = LogicalType("signed_amount", "bigint", "integer")
"""An integer amount in minor units that may be negative (credits, refunds, balances)."""
CURRENCY = LogicalType("currency", "text", "string")
"""A lowercase ISO 4217 code; references ``currencies.code`` (see :attr:`Table.all_foreign_keys`)."""
COUNTRY = LogicalType("country", "text", "string")
"""An uppercase ISO 3166-1 alpha-2 code."""
BOOLEAN = LogicalType("boolean", "boolean", "boolean")
TIMESTAMP = LogicalType("timestamp", "timestamptz", "string")
"""An instant in UTC, whole seconds (Stripe sends unix seconds)."""
DATE = LogicalType("date", "date", "string")
JSON = LogicalType("json", "json", "object")
RATE = LogicalType("rate", "decimal", "string", precision=20, scale=10)
"""An exchange rate or percentage: exact decimal, never a float."""
DECIMAL_AMOUNT = LogicalType("decimal_amount", "decimal", "string", precision=20, scale=6)
"""An amount in a currency's major unit, converted: exact decimal, six places, never a float."""


@dataclass(frozen=True)
class Check:
    """A row-level rule, written in PostgreSQL SQL, with a stable name.

    Attributes:
        name: constraint name, unique in the schema (PostgreSQL allows 63 bytes).
        sql: the boolean expression, in PostgreSQL's dialect.
        description: the rule in words, used by the data dictionary and errors.
        dialects: the engines whose DDL declares it; ``None`` (the default) means all.
            A rule left out of an engine's DDL must be enforced by the code that writes.
    """

    name: str
    sql: str
    description: str
    dialects: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.name) > 63:
            raise ValueError(f"check {self.name}: name longer than 63 characters")


@dataclass(frozen=True)
class ForeignKey:
    """Columns of this table that reference the key of another table.

    ``dialects`` names the engines whose DDL declares it (``None``: all). DuckDB refuses
    to update an indexed column (a foreign key column is indexed) of a row that another
    table references, even inside one transaction after deleting the referencing rows;
    a reference that changes during the life of such a row is therefore declared on
    PostgreSQL only, and the code that writes (flows, ingestion) enforces it on DuckDB.
    """

    columns: tuple[str, ...]
    table: str
    referred: tuple[str, ...] = ("id",)
    dialects: tuple[str, ...] | None = None
    why: str = ""
    """Why the key exists, for a key the columns alone do not explain (an agreement key)."""


_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Column:
    """One column: its type, nullability, meaning and PII class.

    Args:
        name: snake_case column name.
        type: a :class:`LogicalType`.
        description: one line saying what a value means.
        nullable: whether NULL is allowed.
        pii: the column's :class:`PII` class.
        references: ``"table"`` or ``"table.column"`` for a single-column foreign key.
        reference_dialects: engines whose DDL declares that foreign key (``None``: all);
            see :class:`ForeignKey`. Also applies to a currency column's implied key.
        unique: a single-column unique key.
        accepted: the accepted values (a check constraint ``IN (...)``).
        minimum/maximum: bounds (a check constraint). Amount types get ``0..99999999``
            (``AMOUNT``) by default; pass ``maximum=None`` to lift the 8-digit limit.
        mentions: a table whose key this column names **without** a foreign key (the
            operational tables name events and keys that may not exist, or no longer
            do); not enforced, drawn dotted in the ER diagrams.
        additivity: set on the measures of a fact table (see :class:`Additivity`).
    """

    name: str
    type: LogicalType
    description: str
    nullable: bool = False
    pii: PII = PII.NONE
    references: str | None = None
    reference_dialects: tuple[str, ...] | None = None
    unique: bool = False
    accepted: tuple[str, ...] | None = None
    minimum: int | None = None
    maximum: int | None = None
    mentions: str | None = None
    additivity: Additivity | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"column {self.name!r}: not a snake_case name")
        if not self.description.strip():
            raise ValueError(f"column {self.name}: a description is required")
        if self.type is AMOUNT and self.minimum is None:
            object.__setattr__(self, "minimum", 0)

    def implied_checks(self, table: str) -> list[Check]:
        """The check constraints that the column's type and options imply."""
        checks: list[Check] = []
        col = self.name
        guard = f"{col} IS NULL OR " if self.nullable else ""
        if self.accepted is not None:
            values = ", ".join(f"'{v}'" for v in self.accepted)
            checks.append(
                Check(
                    f"ck_{table}_{col}_accepted",
                    f"{guard}{col} IN ({values})",
                    f"{col} is one of: {', '.join(self.accepted)}",
                )
            )
        if self.type is CURRENCY:
            checks.append(
                Check(
                    f"ck_{table}_{col}_iso",
                    f"{guard}{col} ~ '^[a-z]{{3}}$'",
                    f"{col} is a lowercase 3-letter ISO 4217 code",
                )
            )
        if self.type is COUNTRY:
            checks.append(
                Check(
                    f"ck_{table}_{col}_iso",
                    f"{guard}{col} ~ '^[A-Z]{{2}}$'",
                    f"{col} is an uppercase 2-letter ISO 3166-1 code",
                )
            )
        if self.minimum is not None or self.maximum is not None:
            lo, hi = self.minimum, self.maximum
            parts = []
            if lo is not None:
                parts.append(f"{col} >= {lo}")
            if hi is not None:
                parts.append(f"{col} <= {hi}")
            words = (
                f"{col} is between {lo} and {hi}"
                if lo is not None and hi is not None
                else (f"{col} >= {lo}" if lo is not None else f"{col} <= {hi}")
            )
            checks.append(Check(f"ck_{table}_{col}_range", guard + " AND ".join(parts), words))
        return checks

    @property
    def foreign_key(self) -> ForeignKey | None:
        if self.references is None:
            return None
        table, _, column = self.references.partition(".")
        return ForeignKey((self.name,), table, (column or "id",), self.reference_dialects)


@dataclass(frozen=True)
class Table:
    """One table: its grain, columns, keys and rules.

    Args:
        name: snake_case plural table name.
        grain: one sentence, "One row per ...".
        id_prefix: the Stripe id prefix of its objects (``cus_``), or ``None``.
        columns: the columns, in order.
        primary_key: defaults to ``("id",)``.
        foreign_keys: multi-column foreign keys (single-column ones come from
            :attr:`Column.references`).
        unique: multi-column unique keys.
        checks: row-level rules that involve several columns.
        stripe_object: the Stripe API object type this table holds, if any.
        why: why the table exists (shown in the dictionary and notebook 01).
        subject_area: the key of its :data:`SUBJECT_AREAS` entry (which logical diagram
            draws it); every table of a model should have one (a test checks it).
        kind: ``"fact"`` or ``"dimension"`` for a warehouse table, ``None`` otherwise.
        business_process: a fact's business process (Kimball's first step).
        natural_key: a dimension's key in the source (``customer_id``), beside its
            surrogate primary key.
        history: how a dimension keeps history (``"type 1: overwritten"``, ``"type 2: ..."``).
    """

    name: str
    grain: str
    id_prefix: str | None
    columns: Sequence[Column]
    primary_key: tuple[str, ...] = ("id",)
    foreign_keys: Sequence[ForeignKey] = ()
    unique: Sequence[tuple[str, ...]] = ()
    checks: Sequence[Check] = ()
    stripe_object: str | None = None
    why: str = ""
    subject_area: str = ""
    kind: str | None = None
    business_process: str = ""
    natural_key: tuple[str, ...] = ()
    history: str = ""
    _by_name: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "foreign_keys", tuple(self.foreign_keys))
        object.__setattr__(self, "unique", tuple(tuple(u) for u in self.unique))
        object.__setattr__(self, "checks", tuple(self.checks))
        by_name = {c.name: c for c in self.columns}
        if len(by_name) != len(self.columns):
            raise ValueError(f"table {self.name}: duplicate column names")
        object.__setattr__(self, "_by_name", by_name)
        for key in (self.primary_key, *self.unique, *(fk.columns for fk in self.all_foreign_keys)):
            for col in key:
                if col not in by_name:
                    raise ValueError(f"table {self.name}: key column {col} is not a column")
        for col in self.primary_key:
            if by_name[col].nullable:
                raise ValueError(f"table {self.name}: primary key column {col} is nullable")
        if not self.grain.startswith("One row per"):
            raise ValueError(f"table {self.name}: grain must read 'One row per ...'")
        if self.subject_area and self.subject_area not in SUBJECT_AREAS:
            raise ValueError(
                f"table {self.name}: subject area {self.subject_area!r} is not one of "
                f"{sorted(SUBJECT_AREAS)}"
            )
        self._check_kind()

    def _check_kind(self) -> None:
        """A fact states its process and measures; a dimension its natural key and history."""
        if self.kind not in (None, "fact", "dimension"):
            raise ValueError(f"table {self.name}: kind {self.kind!r} is not fact or dimension")
        if self.kind == "fact" and not (self.business_process and self.measures):
            raise ValueError(f"table {self.name}: a fact states its business process and measures")
        if self.kind == "dimension" and not (self.natural_key and self.history):
            raise ValueError(f"table {self.name}: a dimension states its natural key and history")
        for col in self.natural_key:
            self.column(col)
        if self.kind != "fact" and self.measures:
            raise ValueError(f"table {self.name}: only a fact has measures (additivity)")

    def column(self, name: str) -> Column:
        """The column called ``name``; ``KeyError`` names the table when it is missing."""
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"table {self.name} has no column {name}") from None

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def measures(self) -> tuple[Column, ...]:
        """A fact's measures: the columns that state their additivity."""
        return tuple(c for c in self.columns if c.additivity is not None)

    @property
    def all_foreign_keys(self) -> tuple[ForeignKey, ...]:
        """Single-column foreign keys from the columns, then the multi-column ones.

        A currency column references ``currencies.code`` unless it names another
        table or is the key of the currency table itself.
        """
        single = []
        for c in self.columns:
            fk = c.foreign_key
            if fk is None and c.type is CURRENCY and (c.name,) != self.primary_key:
                fk = ForeignKey((c.name,), CURRENCY_TABLE, ("code",), c.reference_dialects)
            if fk is not None:
                single.append(fk)
        return (*single, *self.foreign_keys)

    @property
    def agreement_keys(self) -> tuple[ForeignKey, ...]:
        """Multi-column foreign keys that make a redundant column agree with its parent's.

        ``refunds (charge_id, payment_intent_id) -> charges (id, payment_intent_id)``: the
        refund's ``payment_intent_id`` must be its charge's. Their first column already
        references the parent on its own; they draw no second relationship in diagrams.
        """
        single = {fk.columns[0]: fk.table for fk in self.all_foreign_keys if len(fk.columns) == 1}
        return tuple(
            fk
            for fk in self.foreign_keys
            if len(fk.columns) > 1 and single.get(fk.columns[0]) == fk.table
        )

    @property
    def unique_keys(self) -> tuple[tuple[str, ...], ...]:
        """Single-column unique keys from the columns, then the multi-column ones."""
        return tuple((c.name,) for c in self.columns if c.unique) + tuple(self.unique)

    @property
    def all_checks(self) -> tuple[Check, ...]:
        """Checks implied by the columns, then the table's own."""
        implied = [ck for c in self.columns for ck in c.implied_checks(self.name)]
        return (*implied, *self.checks)

    @property
    def parents(self) -> tuple[str, ...]:
        """Names of the tables this one references (itself excluded), sorted."""
        return tuple(sorted({fk.table for fk in self.all_foreign_keys} - {self.name}))


@dataclass(frozen=True)
class Denormalised:
    """A stored value another path derives (a transitive dependency under 3NF), kept on purpose.

    Attributes:
        table, column: where it is stored.
        derived_from: how it is derived, in words.
        guard: the check constraint or invariant that keeps it equal to its derivation.
    """

    table: str
    column: str
    derived_from: str
    guard: str


@dataclass(frozen=True)
class Model:
    """A set of tables, checked for dangling references and cycles.

    Tables are kept in dependency order: every table comes after the tables it
    references, so creating them in order works on DuckDB, which cannot add a
    foreign key after ``CREATE TABLE``.
    """

    name: str
    description: str
    tables: Sequence[Table]
    denormalised: Sequence[Denormalised] = ()
    """Stored values derivable from other rows, kept on purpose, with what guards each."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "denormalised", tuple(self.denormalised))
        for d in self.denormalised:
            self.table(d.table).column(d.column)
        by_name = {t.name: t for t in self.tables}
        if len(by_name) != len(self.tables):
            raise ValueError(f"model {self.name}: duplicate table names")
        for t in self.tables:
            for fk in t.all_foreign_keys:
                parent = by_name.get(fk.table)
                if parent is None:
                    raise ValueError(f"table {t.name}: references unknown table {fk.table}")
                for col in fk.referred:
                    parent.column(col)
                if (
                    fk.referred != parent.primary_key
                    and fk.referred not in parent.unique_keys
                    and not set(parent.primary_key) <= set(fk.referred)
                ):
                    raise ValueError(
                        f"table {t.name}: foreign key to {fk.table}{fk.referred} "
                        "is not a primary or unique key there, nor contains the primary key"
                    )
        object.__setattr__(self, "tables", tuple(_dependency_order(self.tables)))

    def implied_unique_keys(self, name: str) -> tuple[tuple[tuple[str, ...], tuple[str, ...] | None], ...]:
        """Keys of table ``name`` that other tables' foreign keys refer to beyond its own keys.

        A foreign key may refer to columns that contain the primary key, such as
        ``charges (id, payment_intent_id)``: unique because ``id`` is, but SQL wants a
        declared ``UNIQUE`` to refer to. Each comes with the engines whose DDL declares a
        foreign key onto it (``None``: all), which are the engines that declare it.
        """
        parent = self.table(name)
        found: dict[tuple[str, ...], set[str] | None] = {}
        for t in self.tables:
            for fk in t.all_foreign_keys:
                if fk.table != name or fk.referred == parent.primary_key:
                    continue
                if fk.referred in parent.unique_keys:
                    continue
                if fk.referred in found and found[fk.referred] is None:
                    continue
                engines = found.get(fk.referred, set())
                found[fk.referred] = None if fk.dialects is None else {*(engines or ()), *fk.dialects}
        return tuple(
            (key, None if engines is None else tuple(sorted(engines)))
            for key, engines in found.items()
        )

    def table(self, name: str) -> Table:
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(f"model {self.name} has no table {name}")

    @property
    def table_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tables)

    def dimension_keys(self, table: str) -> tuple[tuple[str, str], ...]:
        """A fact's ``(column, dimension)`` pairs: its foreign keys to dimension tables."""
        return tuple(
            (fk.columns[0], fk.table)
            for fk in self.table(table).all_foreign_keys
            if self.table(fk.table).kind == "dimension"
        )

    def checks(self) -> dict[str, tuple[Table, Check]]:
        """Every check in the model by constraint name (names are unique)."""
        out: dict[str, tuple[Table, Check]] = {}
        for t in self.tables:
            for ck in t.all_checks:
                if ck.name in out:
                    raise ValueError(f"check name {ck.name} used twice")
                out[ck.name] = (t, ck)
        return out


def _dependency_order(tables: Iterable[Table]) -> list[Table]:
    """Kahn's algorithm; ties broken by declaration order, so output is stable."""
    pending = list(tables)
    done: set[str] = set()
    ordered: list[Table] = []
    while pending:
        for t in pending:
            if set(t.parents) <= done:
                ordered.append(t)
                done.add(t.name)
                pending.remove(t)
                break
        else:
            names = ", ".join(t.name for t in pending)
            raise ValueError(f"foreign keys form a cycle among: {names}")
    return ordered
