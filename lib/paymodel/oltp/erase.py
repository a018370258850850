"""Erase a customer's personal data wherever the OLTP database keeps it (GDPR, article 17).

A customer's email, name, phone and address live in more places than ``customers`` and
``customer_addresses``: every ``customer.*`` event keeps a snapshot of the customer in
``events.data_object`` (and the old values in ``previous_attributes``), other objects'
snapshots carry billing details, ``ingest_pending.raw`` and ``ingest_quarantine.raw``
keep records as they were received, and ``idempotency_keys`` stores the parameters and
result of each request. :func:`erase_customer` clears all of them in **one transaction**
and keeps what a merchant must keep for its books: amounts, currencies, dates, statuses,
ids, and the card facts PCI DSS allows (brand, country, expiry, last 4, fingerprint)
that disputes need.

What it does:

1. **Collect** the personal values of the customer: the ``customers`` and
   ``customer_addresses`` rows, and every personal field (:data:`PERSONAL_KEYS`) of every
   snapshot that belongs to the customer (its own events, objects whose ``customer`` is
   it), so an email changed long ago is found in an old ``previous_attributes`` too.
2. **Erase** with each registered eraser (:func:`register_eraser`). The OLTP eraser
   nulls the personal columns of ``customers``, deletes the address row, and in every
   JSON or text column of every table rewrites the records that mention the customer's
   id or one of its personal values: personal fields of the customer's objects become
   ``null``, and any other string that holds a personal value has it replaced by
   :data:`ERASED`. Records about another customer are left alone.
3. **Verify**: every text and JSON column of every table in the database is searched for
   the collected values; if one remains, the transaction is rolled back and
   :class:`ErasureIncomplete` names where.

Later layers keep personal data too (a warehouse dimension, documents). Each registers an
eraser, a function ``(connection, subject) -> list[Touched]`` that runs inside the same
transaction; the verification step searches every table of the database, theirs
included. A store outside the database (a document file) erases from
:attr:`ErasureSubject.values` after this transaction commits.

Example:
    >>> from paymodel.oltp.engines import duckdb_engine
    >>> from paymodel.oltp.flows import Payments
    >>> from paymodel.oltp.schema import create_schema
    >>> engine = duckdb_engine()
    >>> create_schema(engine)
    >>> cus = Payments(engine).create_customer(email="ada@example.com", name="Ada Lovelace")
    >>> report = erase_customer(engine, cus["id"])
    >>> report.found, report.traces
    (True, ())
    >>> [(t.table, t.column) for t in report.touched][:3]
    [('customers', 'email'), ('customers', 'name'), ('events', 'data_object')]
    >>> engine.dispose()
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from paymodel.model.core import PII, Model
from paymodel.model.oltp import OLTP
from paymodel.oltp.schema import dialect_name, oltp_tables

__all__ = [
    "ERASED",
    "ERASERS",
    "PERSONAL_KEYS",
    "ErasureIncomplete",
    "ErasureReport",
    "ErasureSubject",
    "Touched",
    "erase_customer",
    "erase_oltp",
    "find_traces",
    "register_eraser",
]

ERASED = "[erased]"
"""What replaces a personal value found inside a longer string."""

PERSONAL_KEYS = frozenset({
    "email", "name", "phone", "address", "shipping", "billing_details",
    "customer_email", "customer_name", "customer_phone", "customer_address",
    "customer_shipping", "receipt_email",
})  # fmt: skip
"""Fields of Stripe objects that hold a person's contact details (set to ``null``)."""

PERSON_TABLES = ("customers", "customer_addresses")
"""Tables whose rows describe the person: every personal column of the customer's row goes."""

_KEEP_KEYS = frozenset({"id", "object", "customer", "type", "status", "currency"})
# A personal value is replaced inside longer strings from 5 characters, where it is the whole
# string from 3: a country or state code ("US", "CA") alone would hit card facts and ids.
_MIN_SUBSTRING = 5
_MIN_WHOLE = 3


@dataclass(frozen=True)
class Touched:
    """One column of one table that the erasure rewrote, and in how many rows."""

    table: str
    column: str
    rows: int
    how: str

    def __str__(self) -> str:
        return f"{self.table}.{self.column}: {self.rows} row(s) {self.how}"


IDENTIFYING_KEYS = frozenset({
    "email", "name", "phone", "line1", "line2",
    "customer_email", "customer_name", "customer_phone", "receipt_email",
})  # fmt: skip
"""Fields whose value identifies a person on its own (a city or a country does not)."""


@dataclass
class ErasureSubject:
    """The customer being erased and the personal values found for it.

    Attributes:
        customer_id: the customer.
        values: every personal string found (email, name, phone, each address field),
            scrubbed from the records that mention the customer.
        identifiers: those that identify the person on their own (email, name, phone,
            street lines): they link a record to the customer, and none may remain.
        found: whether the database knows the customer at all.
    """

    customer_id: str
    values: set[str] = field(default_factory=set)
    identifiers: set[str] = field(default_factory=set)
    found: bool = False

    def add(self, key: str, value: str) -> None:
        if value.strip():
            self.values.add(value)
            if key in IDENTIFYING_KEYS and len(value) >= _MIN_SUBSTRING:
                self.identifiers.add(value)

    def patterns(self) -> list[str]:
        """Strings whose presence links a record to the customer: its id and identifiers."""
        return [self.customer_id, *_spellings(self.identifiers)]


def _spellings(values: Iterable[str]) -> list[str]:
    """Each value as it is, and as JSON text escapes it (``\\u00eb`` for ``ë``) when different."""
    out = set()
    for value in values:
        out.add(value)
        out.add(json.dumps(value)[1:-1])
    return sorted(out)


@dataclass(frozen=True)
class ErasureReport:
    """What :func:`erase_customer` did."""

    customer_id: str
    found: bool
    values: int
    touched: tuple[Touched, ...]
    traces: tuple[str, ...]
    kept: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id, "found": self.found,
            "personal_values": self.values,
            "touched": [vars(t) for t in self.touched], "traces": list(self.traces),
            "kept": list(self.kept),
        }  # fmt: skip

    def summary(self) -> str:
        if not self.found:
            return f"{self.customer_id}: no such customer, nothing erased"
        lines = [f"{self.customer_id}: erased {self.values} personal value(s)"]
        lines += [f"  {t}" for t in self.touched]
        lines.append(f"  kept: {', '.join(self.kept)}")
        lines.append(f"  traces left in the database: {len(self.traces)}")
        return "\n".join(lines)


class ErasureIncomplete(RuntimeError):
    """A personal value is still in the database after every eraser ran (rolled back)."""


Eraser = Callable[[sa.Connection, ErasureSubject], list[Touched]]
ERASERS: dict[str, Eraser] = {}
"""Erasers by layer name, run in registration order inside one transaction."""


def register_eraser(layer: str, eraser: Eraser) -> None:
    """Add (or replace) the eraser of ``layer``; :func:`erase_customer` runs them in order."""
    ERASERS[layer] = eraser


# ------------------------------------------------------------------ JSON redaction
def _personal_strings(key: str, node: Any) -> Iterator[tuple[str, str]]:
    """``(innermost key, string)`` for every string under ``key``."""
    if isinstance(node, str):
        yield key, node
    elif isinstance(node, dict):
        for inner, value in node.items():
            yield from _personal_strings(inner, value)
    elif isinstance(node, list):
        for value in node:
            yield from _personal_strings(key, value)


def _owner(node: dict[str, Any]) -> str | None:
    if node.get("object") == "customer" or str(node.get("id", "")).startswith("cus_"):
        return node.get("id")
    customer = node.get("customer")
    if isinstance(customer, dict):
        customer = customer.get("id")
    return customer if isinstance(customer, str) else None


def _collect(node: Any, subject: ErasureSubject, owned: bool) -> None:
    """Add to ``subject`` the personal strings of the customer's objects inside ``node``."""
    if isinstance(node, dict):
        owner = _owner(node)
        mine = owner == subject.customer_id if owner is not None else owned
        for key, value in node.items():
            if mine and key in PERSONAL_KEYS:
                for inner, text in _personal_strings(key, value):
                    subject.add(inner, text)
            else:
                _collect(value, subject, mine)
    elif isinstance(node, list):
        for value in node:
            _collect(value, subject, owned)


def _scrub(text: str, values: Iterable[str]) -> str:
    for value in sorted(values, key=len, reverse=True):
        if text == value and len(value) >= _MIN_WHOLE:
            return ERASED
        if len(value) >= _MIN_SUBSTRING and value in text:
            text = text.replace(value, ERASED)
    return text


def _redact(node: Any, customer_id: str, values: set[str], owned: bool) -> Any:
    """A copy of ``node`` with the customer's personal fields nulled and values scrubbed.

    Objects that belong to another customer are returned unchanged.
    """
    if isinstance(node, dict):
        owner = _owner(node)
        if owner is not None and owner != customer_id:
            return node
        mine = owner == customer_id or (owner is None and owned)
        out = {}
        for key, value in node.items():
            if mine and key in PERSONAL_KEYS:
                out[key] = None
            elif (key in _KEEP_KEYS or key.endswith("_id")) and not isinstance(value, dict | list):
                out[key] = value  # ids, types and statuses are kept as they are
            else:
                out[key] = _redact(value, customer_id, values, mine)
        return out
    if isinstance(node, list):
        return [_redact(value, customer_id, values, owned) for value in node]
    if isinstance(node, str):
        return _scrub(node, values)
    return node


def _redact_text(text: str, customer_id: str, values: set[str], owned: bool) -> str:
    """Redact a text column: JSON text structurally, anything else by value."""
    try:
        doc = json.loads(text)
    except ValueError:
        return _scrub(text, values)
    redacted = _redact(doc, customer_id, values, owned)
    return text if redacted == doc else json.dumps(redacted, ensure_ascii=False)


# ------------------------------------------------------------------ the OLTP eraser
def _row_owned(table: str, row: dict[str, Any], customer_id: str) -> bool:
    if table == "customers":
        return row.get("id") == customer_id
    if row.get("customer_id") == customer_id:
        return True
    if table == "events":
        snapshot = _as_json(row.get("data_object"))
        owner = _owner(snapshot) if isinstance(snapshot, dict) else None
        return row.get("object_id") == customer_id or owner == customer_id
    return False


def _as_json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _searchable(model: Model) -> dict[str, list[str]]:
    """Per table, the text and JSON columns that may hold a personal value."""
    out = {}
    for table in model.tables:
        columns = [
            c.name
            for c in table.columns
            if c.type.sql == "json"
            or (c.type.sql == "text" and c.type.name != "id"
                and (c.pii is PII.DIRECT or c.name in ("error", "description")))
        ]  # fmt: skip
        if columns:
            out[table.name] = columns
    return out


def _linked_rows(
    conn: sa.Connection, table: sa.Table, columns: list[str], subject: ErasureSubject
) -> list[dict[str, Any]]:
    conditions = [
        sa.cast(table.c[column], sa.Text).contains(pattern, autoescape=True)
        for column in columns
        for pattern in subject.patterns()
    ]
    for key in ("customer_id", "object_id"):
        if key in table.c:
            conditions.append(table.c[key] == subject.customer_id)
    if table.name == "customers":
        conditions.append(table.c.id == subject.customer_id)
    return [dict(r) for r in conn.execute(sa.select(table).where(sa.or_(*conditions))).mappings()]


def _collect_subject(conn: sa.Connection, customer_id: str) -> ErasureSubject:
    tables = oltp_tables(conn)
    subject = ErasureSubject(customer_id)
    personal = {t: [c.name for c in OLTP.table(t).columns if c.pii is not PII.NONE]
                for t in PERSON_TABLES}  # fmt: skip
    for name in PERSON_TABLES:
        table = tables[name]
        key = table.c.id if name == "customers" else table.c.customer_id
        for row in conn.execute(sa.select(table).where(key == customer_id)).mappings():
            subject.found = True
            for column in personal[name]:
                value = row[column]
                if isinstance(value, str) and OLTP.table(name).column(column).type.sql != "json":
                    subject.add(column, value)
    # The customer's personal fields in every stored record that mentions it.
    for name, columns in _searchable(OLTP).items():
        for row in _linked_rows(conn, tables[name], columns, subject):
            owned = _row_owned(name, row, customer_id)
            for column in columns:
                _collect(_as_json(row[column]), subject, owned)
    subject.found = subject.found or bool(subject.values)
    return subject


def erase_oltp(conn: sa.Connection, subject: ErasureSubject) -> list[Touched]:
    """The OLTP layer's eraser: personal columns, snapshots, raw records, request parameters."""
    tables = oltp_tables(conn)
    touched: dict[tuple[str, str], list[Any]] = {}

    def note(table: str, column: str, how: str) -> None:
        touched.setdefault((table, column), [0, how])[0] += 1

    customers = tables["customers"]
    person = [c.name for c in OLTP.table("customers").columns if c.pii is not PII.NONE]
    row = conn.execute(
        sa.select(*(customers.c[c] for c in person)).where(customers.c.id == subject.customer_id)
    ).mappings().first()  # fmt: skip
    if row is not None:
        # A nullable column becomes NULL; metadata, NOT NULL with {} for empty, becomes {}.
        columns = {c.name: c for c in OLTP.table("customers").columns}
        cleared = {c: None if columns[c].nullable else {} for c in person
                   if row[c] is not None and not (not columns[c].nullable and row[c] in ({}, "{}"))}  # fmt: skip
        if cleared:
            conn.execute(
                sa.update(customers).where(customers.c.id == subject.customer_id).values(cleared)
            )
            for column, value in cleared.items():
                note("customers", column, "set to NULL" if value is None else "set to {}")
    addresses = tables["customer_addresses"]
    mine = addresses.c.customer_id == subject.customer_id
    # Counted first: DuckDB's DBAPI does not report a DELETE's row count.
    deleted = conn.execute(sa.select(sa.func.count()).select_from(addresses).where(mine)).scalar()
    if deleted:
        conn.execute(sa.delete(addresses).where(mine))
        touched["customer_addresses", "*"] = [deleted, "deleted"]

    for name, columns in _searchable(OLTP).items():
        table = tables[name]
        key = OLTP.table(name).primary_key
        for row in _linked_rows(conn, table, columns, subject):
            owned = _row_owned(name, row, subject.customer_id)
            changes = {}
            for column in columns:
                value = row[column]
                if value is None:
                    continue
                if isinstance(value, str):
                    new = _redact_text(value, subject.customer_id, subject.values, owned)
                else:
                    new = _redact(value, subject.customer_id, subject.values, owned)
                if new != value:
                    changes[column] = new
            if changes:
                where = sa.and_(*(table.c[k] == row[k] for k in key))
                conn.execute(sa.update(table).where(where).values(changes))
                for column in changes:
                    note(name, column, "redacted")
    return [Touched(t, c, n, how) for (t, c), (n, how) in touched.items()]


register_eraser("oltp", erase_oltp)


# ------------------------------------------------------------------ verification
def find_traces(conn: sa.Connection, values: Iterable[str]) -> list[str]:
    """``table.column: value`` for each text or JSON column of any table that holds a value.

    Searches every table of the current schema (not only the model's), so that tables of
    later layers in the same database are covered too. Each value is searched as it is
    and as JSON text escapes it.
    """
    wanted = _spellings(v for v in values if v.strip())
    if not wanted:
        return []
    types = ("VARCHAR", "TEXT", "JSON", "character varying", "text", "json", "jsonb")
    listing = sa.text(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND data_type IN :types "
        "ORDER BY table_name, ordinal_position"
    ).bindparams(sa.bindparam("types", expanding=True))
    traces = []
    for table_name, column_name in conn.execute(listing, {"types": list(types)}).all():
        column = sa.column(column_name)
        text = sa.cast(column, sa.Text)
        for value in wanted:
            hit = text.contains(value, autoescape=True)
            query = sa.select(sa.func.count()).select_from(sa.table(table_name)).where(hit)
            if conn.execute(query).scalar():
                traces.append(f"{table_name}.{column_name}: {value}")
    return traces


def erase_customer(bind: sa.Engine, customer_id: str) -> ErasureReport:
    """Erase the personal data of ``customer_id`` with every registered eraser, atomically.

    Returns:
        The report: whether the customer was found, the columns touched, what was kept.

    Raises:
        ErasureIncomplete: a collected value is still in some column after the erasers ran;
            the transaction is rolled back and nothing is changed.
    """
    with bind.begin() as conn:
        dialect_name(conn)
        subject = _collect_subject(conn, customer_id)
        touched: list[Touched] = []
        if subject.found:
            for eraser in ERASERS.values():
                touched.extend(eraser(conn, subject))
        traces = find_traces(conn, subject.identifiers)
        if traces:
            raise ErasureIncomplete(
                f"customer {customer_id}: personal data still in " + "; ".join(traces)
            )
    kept = ("ids", "amounts", "currencies", "dates", "statuses",
            "card brand, country, expiry, last 4 and fingerprint (PCI DSS allows them)")  # fmt: skip
    return ErasureReport(
        customer_id, subject.found, len(subject.values), tuple(touched), tuple(traces), kept
    )


def main_erase(customer_id: str, db: str, as_json: bool = False) -> int:
    """``paymodel erase CUSTOMER_ID --db TARGET``: 0 erased, 1 no such customer, 2 usage error.

    What is printed never shows the DSN's password, and control characters are escaped.
    """
    import sys
    from pathlib import Path

    from paymodel.oltp import ingest_guard as guard
    from paymodel.oltp.engines import dsn_password, redact_dsn
    from paymodel.oltp.ingest import open_target

    def mask(text: str) -> str:
        secret = dsn_password(db)
        text = redact_dsn(text)
        return guard.printable(text.replace(secret, "***") if secret else text)

    if "://" not in db and not Path(db).is_file():
        print(f"paymodel erase: --db {mask(db)}: no such DuckDB file", file=sys.stderr)
        return 2
    try:
        engine = open_target(db)
    except (ValueError, sa.exc.SQLAlchemyError, OSError) as e:
        print(f"paymodel erase: --db {mask(db)}: {mask(str(e).splitlines()[0])}", file=sys.stderr)
        return 2
    try:
        report = erase_customer(engine, customer_id)
    except ErasureIncomplete as e:
        print(f"paymodel erase: {mask(str(e))} (rolled back, nothing changed)", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(json.dumps(report.as_dict(), sort_keys=True) if as_json else mask(report.summary()))
    return 0 if report.found else 1
