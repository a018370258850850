"""Snapshots flattened into staged rows by the engine: SQL derived from the mapping.

The set-based path (:mod:`paymodel.oltp.ingest_set`) stages a file's records, then
decides. Mapping each snapshot to rows in Python
(:func:`paymodel.model.stripe.from_stripe_object` in
:func:`paymodel.oltp.ingest_stage.map_records`) was the largest part of a replay: leaving
the types in :data:`ENGINE_OBJECTS` to the engine took the mapping of a 48,559-event file
from 7.1-8.8 s to 5.2-5.4 s of CPU, for 1.1 s of SQL. On an engine whose backend says so
(:attr:`paymodel.oltp.backend.Backend.flattens_json`: DuckDB), the workers leave those
snapshots unmapped and the staged records are flattened here, one ``INSERT ... SELECT``
per table over the whole file, after its duplicates are known (a duplicate is never
mapped).

Every statement is derived from :data:`paymodel.model.stripe.MAPPINGS`, as the Python
flattener is, and reads each record's document once: one ``json_extract`` of the list
of every path the table needs, each value's type and text then read off its JSON text
(:class:`_Ref`). DuckDB parses the whole document per call, and a call per column (or
per check) had made SQL flatteners slower than Python.

**Equal rows or none.** For each record the SQL also decides whether the Python
flattener would give exactly these rows: every value of the JSON type the column's kind
reads (a string for text and ids, an integer in the column's range, a boolean, an
object for metadata, unix seconds within Python's datetime range), every nested object
on a path an object or null, no expanded object where an id is expected, nested list
items that are objects of the list's type with distinct ids. A record where any of
these fails is mapped in Python after all (:meth:`paymodel.oltp.ingest_set._SetRun.map_left`),
which gives the rows, or the refusal and its words. Only text that is ASCII without a
backslash is left to the engine (:func:`eligible`): there a JSON string is its text
between quotes, and the compact text of metadata (flat, of strings: the input guard
admits no other) is the same from DuckDB's writer and from orjson's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from paymodel.model.core import BOOLEAN, RATE, TIMESTAMP, Column
from paymodel.model.oltp import OLTP
from paymodel.model.stripe import EXPANDED_TRANSACTIONS, MAPPINGS, TABLE_OBJECTS, Field

__all__ = ["ENGINE_OBJECTS", "EngineMapping", "eligible", "engine_mapping"]

_TEXT = frozenset({"id", "text", "currency", "country"})
_INT_RANGE = {"bigint": (-(2**63), 2**63 - 1), "integer": (-(2**31), 2**31 - 1),
              "smallint": (-(2**15), 2**15 - 1)}  # fmt: skip
_UNIX_RANGE = (-62_135_596_800, 253_402_300_799)
"""Unix seconds Python's ``datetime.fromtimestamp`` accepts (years 1 to 9999)."""
_KEY = re.compile(r"[a-z][a-z0-9_]*")
_ORDER = {name: i for i, name in enumerate(OLTP.table_names)}

ENGINE_OBJECTS = ("invoice", "payment_intent", "subscription", "invoice_payment", "customer",
                  "payment_method", "product", "price", "discount")  # fmt: skip
"""Object types flattened by the engine: plain fields, nested lists (an invoice's lines,
a subscription's items), sums of lists of amounts, a customer's address and the special
cases in :data:`_SPECIALS`. Charges, refunds, disputes and payouts carry expanded
balance transactions (with fee lines) in every generated snapshot, and coupons a rate:
they are mapped in Python."""

_SPECIALS = frozenset({"payment_intent_payment", "attempts", "taxes", "line_parent", "first_locale",
                       "currency_of_amount_off"})  # fmt: skip
"""The special cases of the mapping the engine reads (:func:`_special`)."""


def eligible(kind: Any, raw: str | None) -> bool:
    """Whether a snapshot of type ``kind`` in record text ``raw`` may be left to the
    engine (which still checks every value, see the module's docstring)."""
    return kind in ENGINE_OBJECTS and raw is not None and raw.isascii() and "\\" not in raw


@dataclass(frozen=True)
class EngineMapping:
    """The statements that flatten the staged snapshots of one object type, in order.

    SQL over the staged records (``rec``: columns ``ord``, ``kind``, ``raw``, ``engine``,
    ``dup``), through temporary tables of its own (dropped by the caller), into the
    staged tables of rows. A record whose ``ok`` is false in the first table is left
    out of every table (the caller maps it in Python).
    """

    object: str
    tables: tuple[str, ...]
    """The tables the object's rows go to, in the model's order."""
    temporary: tuple[str, ...]
    """The temporary tables the statements make."""
    statements: tuple[str, ...]
    checked: str
    """The first temporary table: ``ord``, ``ok`` per record of the type."""


def _path(parts: tuple[str, ...]) -> str:
    if not parts:
        return "$"
    path = "$"
    for p in parts:
        if p.isdigit():
            path += f"[{p}]"
        elif _KEY.fullmatch(p):
            path += f".{p}"
        else:  # pragma: no cover - the mapping's keys are identifiers
            raise ValueError(f"key {p!r} cannot be a JSON path here")
    return path


class _Ref(str):
    """The JSON value at one of the paths a document is read at: its compact JSON text
    (``j<i>``, from one ``json_extract`` of the document's list of paths), from which
    its type and its text are read with string functions, so that the checks never
    parse the value again. In text that is ASCII without a backslash (:func:`eligible`)
    a string's JSON is its text between two quotes, character for character.

    Each call reads the whole document, so one per document: in one profiled replay of a
    scale-0.1 account each, the invoice and invoice-line statements took 0.52 s and
    0.50 s with a ``json_type`` and a ``json_extract_string`` of every path (two reads),
    against 0.31 s and 0.27 s this way."""

    j: str
    items: str | None = None
    listed: str | None = None


class _Paths:
    """The JSON paths one document is read at, each once (see :class:`_Ref`)."""

    def __init__(self, source: str, prefix: tuple[str, ...]) -> None:
        self.source = source
        self.prefix = prefix
        self.paths: list[str] = []

    def __call__(self, parts: tuple[str, ...]) -> str:
        p = _path((*self.prefix, *parts))
        if p not in self.paths:
            self.paths.append(p)
        i = self.paths.index(p) + 1
        ref = _Ref(f"CAST(j{i} AS JSON)")
        ref.j = f"j{i}"
        return ref

    def listed(self, parts: tuple[str, ...]) -> _Ref:
        """The list field at ``parts`` (see :func:`_list`), its ``data`` and ``has_more``
        read with the document rather than from the list's text."""
        ref = self(parts)
        data, more = self((*parts, "data")), self((*parts, "has_more"))
        ref.listed = (f"({_null(ref)} OR {_is(ref, 'ARRAY')} OR ({_is(ref, 'OBJECT')} AND "
                      f"COALESCE({more.j}, '') <> 'true' AND {_is(data, 'ARRAY')}))")  # fmt: skip
        ref.items = (f"(CASE WHEN {_null(ref)} THEN '[]' WHEN {_is(ref, 'ARRAY')} THEN {ref.j} "
                     f"ELSE {data.j} END)")  # fmt: skip
        return ref

    def select(self, columns: str, inner: str) -> str:
        """``SELECT columns, j1, j2, ...`` over ``inner`` (a ``FROM`` clause whose rows
        hold the document in ``self.source``): the document read once per row."""
        listed = "[" + ", ".join(f"'{p}'" for p in self.paths) + "]"
        js = ", ".join(f"CAST(j[{i}] AS VARCHAR) AS j{i}" for i in range(1, len(self.paths) + 1))
        return (f"SELECT {columns}, {js} FROM (SELECT {columns}, "
                f"json_extract({self.source}, {listed}) AS j FROM {inner}) AS x0")  # fmt: skip


_JSON_KINDS = {
    "NULL": "{j} = 'null'",
    "VARCHAR": "left({j}, 1) = '\"'",
    "OBJECT": "left({j}, 1) = '{{'",
    "ARRAY": "left({j}, 1) = '['",
    "BOOLEAN": "{j} IN ('true', 'false')",
    "INTEGER": "regexp_full_match({j}, '-?[0-9]+')",
}
"""What ``json_type`` would say of a value, read off its compact JSON text ``{j}``.
``INTEGER`` stands for ``BIGINT`` or ``UBIGINT``: where ``json_type`` says ``DOUBLE`` of
an integer beyond 64 bits, every use here also asks for a range within 64 bits."""


def _null(j: str) -> str:
    if isinstance(j, _Ref):
        return f"({j.j} IS NULL OR {j.j} = 'null')"
    return f"({j} IS NULL OR json_type({j}) = 'NULL')"


def _is(j: str, *types: str) -> str:
    if not isinstance(j, _Ref):
        kinds = ", ".join(repr(t) for t in types)
        return f"json_type({j}) IN ({kinds})"
    integers = {"BIGINT", "UBIGINT"}
    wanted = set(types)
    if integers <= wanted:  # the text shows an integer, not which of the two json_type says
        wanted = (wanted - integers) | {"INTEGER"}
    return "(" + " OR ".join(_JSON_KINDS[k].format(j=j.j) for k in sorted(wanted)) + ")"


def _text(j: str) -> str:
    """The value's text (``json_extract_string``): a string unquoted, null NULL."""
    if not isinstance(j, _Ref):
        return f"({j} ->> '$')"
    return (f"(CASE WHEN left({j.j}, 1) = '\"' THEN substr({j.j}, 2, length({j.j}) - 2) "
            f"WHEN {j.j} = 'null' THEN NULL ELSE {j.j} END)")  # fmt: skip


def _number(j: str) -> str:
    """The text of JSON number ``j`` as a HUGEINT (NULL if it is not an integer)."""
    return f"TRY_CAST({_text(j)} AS HUGEINT)"


def _column(column: Column, f: Field | None, v: _Paths) -> tuple[str, list[str]]:
    """``(value, conditions)`` of one column read by field ``f`` (``None``: the
    table's ``id``), the conditions under which Python reads the same value."""
    parts = ("id",) if f is None else f.parts
    conditions = _on_the_way(parts, v)
    j = v.listed(parts) if f is not None and f.kind == "sum" else v(parts)
    for older in () if f is None else f.legacy:
        older_parts = tuple(older.split("."))
        conditions += _on_the_way(older_parts, v)
        j = f"(CASE WHEN {_null(j)} THEN {v(older_parts)} ELSE {j} END)"
    value, ok = _typed(column, j, "value" if f is None else f.kind)
    return value, [*conditions, *ok]


def _on_the_way(parts: tuple[str, ...], v: _Paths) -> list[str]:
    """Every nested object on the way to ``parts``: an object or null (else Python's
    reader refuses the snapshot)."""
    return [
        f"({_null(v(parts[:i]))} OR {_is(v(parts[:i]), 'OBJECT')})" for i in range(1, len(parts))
    ]


def _typed(column: Column, j: str, kind: str) -> tuple[str, list[str]]:
    """``(value, conditions)`` of JSON value ``j`` read as ``kind`` into ``column``."""
    t = column.type
    required = [] if column.nullable else [f"NOT {_null(j)}"]
    if kind == "metadata":
        # the input guard admits flat metadata of strings only: its compact text is the
        # same from DuckDB's writer and from orjson's
        ok = f"({_null(j)} OR {_is(j, 'OBJECT')})"
        text = _text(j) if isinstance(j, _Ref) else f"CAST({j} AS VARCHAR)"
        return f"(CASE WHEN {_null(j)} THEN '{{}}' ELSE {text} END)", [ok]
    if kind == "sum":
        items, listed = _list(j)
        amounts = f"list_transform(json_extract({items}, '$[*]'), x -> json_extract(x, '$.amount'))"
        typed = (f"COALESCE(list_bool_and(list_transform({amounts}, a -> COALESCE("
                 f"{_is('a', 'BIGINT', 'UBIGINT')}, FALSE))), TRUE)")  # fmt: skip
        total = f"COALESCE(list_sum(list_transform({amounts}, a -> TRY_CAST(a AS HUGEINT))), 0)"
        return _integer(column, total, [listed, typed])
    if kind == "time":
        if t is not TIMESTAMP:
            raise _Unsupported(f"{column.name}: time into {t.name}")
        lo, hi = _UNIX_RANGE
        ok = (f"({_null(j)} OR ({_is(j, 'BIGINT', 'UBIGINT')} AND "
              f"{_number(j)} BETWEEN {lo} AND {hi}))")  # fmt: skip
        value = (f"to_timestamp(CASE WHEN {_number(j)} BETWEEN {lo} AND {hi} "
                 f"THEN CAST({_number(j)} AS BIGINT) END)")  # fmt: skip
        return value, [ok, *required]
    if kind == "rate" and t is RATE:  # exact decimals: only a null is read here
        return "NULL", [_null(j), *required]
    if kind not in ("value", "ref"):
        raise _Unsupported(f"{column.name}: kind {kind}")
    if t.name in _TEXT:
        ok = f"({_null(j)} OR {_is(j, 'VARCHAR')})"
        nonempty = [f"({_null(j)} OR {_text(j)} <> '')"] if t.name == "id" else []
        return f"(CASE WHEN {_null(j)} THEN NULL ELSE {_text(j)} END)", [ok, *nonempty, *required]
    if kind == "ref":
        raise _Unsupported(f"{column.name}: a reference of type {t.name}")
    if t.name in _INTEGERS:
        ok = f"({_null(j)} OR {_is(j, 'BIGINT', 'UBIGINT')})"
        value, conds = _integer(column, _number(j), [ok, *required])
        return f"(CASE WHEN {_null(j)} THEN NULL ELSE {value} END)", conds
    if t is BOOLEAN:
        ok = f"({_null(j)} OR {_is(j, 'BOOLEAN')})"
        return f"(CASE WHEN {_null(j)} THEN NULL ELSE {_text(j)} = 'true' END)", [ok, *required]
    raise _Unsupported(f"{column.name}: type {t.name}")


_INTEGERS = frozenset({"amount", "signed_amount", "bigint", "integer", "smallint"})


def _integer(column: Column, huge: str, conditions: list[str]) -> tuple[str, list[str]]:
    """An integer (``huge``, a HUGEINT or NULL) within the column's SQL range."""
    if column.type.name not in _INTEGERS:
        raise _Unsupported(f"{column.name}: an integer into {column.type.name}")
    lo, hi = _INT_RANGE[column.type.sql]
    return (f"CAST(CASE WHEN {huge} BETWEEN {lo} AND {hi} THEN {huge} END AS BIGINT)",
            [*conditions, f"({huge} IS NULL OR {huge} BETWEEN {lo} AND {hi})"])  # fmt: skip


def _list(j: str) -> tuple[str, str]:
    """``(items, ok)``: the JSON array of list field ``j`` as Python's reader takes it
    (null: none; a list object: its ``data``, unless ``has_more``; an array) and the
    condition that it is one of those."""
    if isinstance(j, _Ref) and j.items is not None:
        return j.items, j.listed  # type: ignore[return-value]
    data = f"json_extract({j}, '$.data')"
    has_more = f"COALESCE(CAST(json_extract({j}, '$.has_more') AS VARCHAR), '') <> 'true'"
    ok = (f"({_null(j)} OR {_is(j, 'ARRAY')} OR ({_is(j, 'OBJECT')} AND {has_more} "
          f"AND {_is(data, 'ARRAY')}))")  # fmt: skip
    items = f"(CASE WHEN {_null(j)} THEN CAST('[]' AS JSON) WHEN {_is(j, 'ARRAY')} THEN {j} ELSE {data} END)"
    return items, ok


class _Unsupported(ValueError):
    """A column the engine's flattener does not read (its object type stays in Python)."""


def _special(name: str, table: str, v: _Paths) -> tuple[dict[str, str], list[str]]:
    """The columns a supported special case sets, and its conditions, as its reader in
    :mod:`paymodel.model.stripe` reads them."""
    col = OLTP.table(table).column
    if name == "payment_intent_payment":
        payment, kind, intent = (
            v(("payment",)),
            v(("payment", "type")),
            v(("payment", "payment_intent")),
        )
        value, ok = _typed(col("payment_intent_id"), intent, "ref")
        return {"payment_intent_id": value}, [
            f"({_null(payment)} OR {_is(payment, 'OBJECT')})",
            f"({_null(kind)} OR ({_is(kind, 'VARCHAR')} AND {_text(kind)} = 'payment_intent'))",
            *ok,
        ]
    if name == "attempts":
        value, ok = _typed(col("attempt_count"), v(("attempt_count",)), "value")
        return {"attempt_count": value}, ok
    if name == "taxes":  # the total of total_taxes, else tax (or 0)
        taxes, tax = v.listed(("total_taxes",)), v(("tax",))
        total, total_ok = _typed(col("tax"), taxes, "sum")
        plain, plain_ok = _typed(col("tax"), tax, "value")
        return {
            "tax": f"(CASE WHEN NOT {_null(taxes)} THEN {total} WHEN {_null(tax)} THEN 0 "
            f"ELSE {plain} END)"
        }, [
            f"(CASE WHEN NOT {_null(taxes)} THEN ({' AND '.join(total_ok)}) "
            f"ELSE ({' AND '.join(plain_ok)}) END)"
        ]
    if name == "line_parent":
        # details: parent[parent.type] if an object, else {}; each read falls back to the
        # line's own field when the details lack the key
        parent, kind = v(("parent",)), v(("parent", "type"))
        details = (f"(CASE WHEN {_is(kind, 'VARCHAR')} AND regexp_full_match({_text(kind)}, '[a-z_]+') "
                   f"THEN json_extract({parent}, '$.' || {_text(kind)}) END)")  # fmt: skip
        details = f"(CASE WHEN {_is(details, 'OBJECT')} THEN {details} END)"

        def pick(key: str) -> str:
            return (f"(CASE WHEN json_exists({details}, '$.{key}') THEN json_extract({details}, "
                    f"'$.{key}') ELSE {v((key,))} END)")  # fmt: skip

        proration, p_ok = _typed(col("proration"), pick("proration"), "value")
        item, i_ok = _typed(col("subscription_item_id"), pick("subscription_item"), "ref")
        return {"proration": proration, "subscription_item_id": item}, [
            f"({_null(parent)} OR {_is(parent, 'OBJECT')})",
            f"({_null(kind)} OR NOT {_is(kind, 'VARCHAR')} OR regexp_full_match({_text(kind)}, '[a-z_]+'))",
            *p_ok, *i_ok,
        ]  # fmt: skip
    if name == "currency_of_amount_off":
        value, ok = _typed(col("currency"), v(("currency",)), "value")
        off = v(("amount_off",))
        return {"currency": f"(CASE WHEN {_null(off)} THEN NULL ELSE {value} END)"}, [
            f"({_null(off)} OR ({' AND '.join(ok)}))"
        ]
    if name == "first_locale":
        locales, first, single = (
            v(("preferred_locales",)),
            v(("preferred_locales", "0")),
            v(("preferred_locale",)),
        )
        value, ok = _typed(col("preferred_locale"),
                           f"(CASE WHEN json_array_length({locales}) > 0 THEN {first} ELSE {single} END)",
                           "value")  # fmt: skip
        return {"preferred_locale": value}, [f"({_null(locales)} OR {_is(locales, 'ARRAY')})", *ok]
    raise _Unsupported(f"special case {name}")


def _row(table: str, v: _Paths, from_parent: dict[str, str]) -> tuple[list[str], list[str]]:
    """The SELECT list of ``table``'s columns (in order) and the conditions."""
    m = MAPPINGS[table]
    values: dict[str, str] = {}
    conditions: list[str] = []
    for column in OLTP.table(table).columns:
        name = column.name
        if name in from_parent:
            values[name] = from_parent[name]
            continue
        f = None if name == "id" else m.fields[name]
        if f is not None and f.kind == "special":
            if f.special not in _SPECIALS:
                raise _Unsupported(f"special case {f.special}")
            continue
        value, conds = _column(column, f, v)
        values[name] = value
        conditions += conds
    for name in dict.fromkeys(f.special for f in m.fields.values() if f.kind == "special"):
        set_, conds = _special(name, table, v)  # type: ignore[arg-type]
        values.update(set_)
        conditions += conds
    q = OLTP.table(table).column_names
    return [f"{values[c]} AS {c}" for c in q], conditions


def engine_mapping(object_type: str, rec: str, rows: Callable[[str], str]) -> EngineMapping:
    """The statements that flatten the snapshots of ``object_type`` staged in ``rec``
    into ``rows(table)`` (raises ``ValueError`` for a type whose mapping the engine cannot
    read exactly).

    Example:
        >>> m = engine_mapping("payment_intent", "recs", lambda t: f"staged_{t}")
        >>> m.tables
        ('payment_intents',)
        >>> m.statements[0].count("json_extract(r.raw, ['$.data.object.id'")  # one read
        1
    """
    table = next(t for t, m in MAPPINGS.items() if m.object == object_type)
    m = MAPPINGS[table]
    if table in EXPANDED_TRANSACTIONS or table in ("payouts", "balance_transactions"):
        raise _Unsupported(f"{table}: balance transactions expanded in it, or fee lines")
    main = f"paymodel_engine_{object_type}"
    v = _Paths("r.raw", ("data", "object"))
    cols, conditions = _row(table, v, {})
    conditions.append(f"COALESCE(CAST({v(('deleted',))} AS VARCHAR), '') <> 'true'")
    lists: list[str] = []
    for nested in m.nested:
        items, listed = _list(v.listed((nested.key,)))
        conditions.append(listed)
        lists.append(f"{items} AS n_{nested.key}")
    if table == "customers":  # the address, an owned row when any of its fields is set
        address = v(("address",))
        conditions.append(f"({_null(address)} OR {_is(address, 'OBJECT')})")
        fields = []
        for name in _ADDRESS:
            value, ok = _typed(
                OLTP.table("customer_addresses").column(name), v(("address", name)), "value"
            )
            fields.append(f"{value} AS a_{name}")
            conditions += ok
        lists += fields
    statements = [
        f"CREATE TEMPORARY TABLE {main} AS SELECT ord, {', '.join([*cols, *lists])}, "
        f"({' AND '.join(conditions)}) AS ok FROM ("
        + v.select("ord", f"{rec} AS r WHERE r.engine = 1 AND r.dup = 0 "
                          f"AND r.kind = '{object_type}'")
        + ") AS x"
    ]  # fmt: skip
    temporary = [main]
    tables = [table]
    inserts = [_insert(table, main, rows(table), "0")]
    for nested in m.nested:
        child = MAPPINGS[nested.table]
        if child.nested or _ORDER[nested.table] < _ORDER[table]:
            raise _Unsupported(f"{nested.table}: nested twice, or before its parent")
        items = f"{main}_{nested.key}"
        iv = _Paths("e.item", ())
        icols, iconds = _row(nested.table, iv, {nested.parent_column: "parent_id"})
        obj = iv(("object",))
        iconds += [
            "json_type(item) = 'OBJECT'",
            f"({obj} IS NULL OR ({_is(obj, 'VARCHAR')} AND {_text(obj)} = '{child.object}'))",
        ]
        statements.append(
            f"CREATE TEMPORARY TABLE {items} AS SELECT ord, i, {', '.join(icols)}, "
            f"({' AND '.join(iconds)}) AS ok FROM ("
            + iv.select("ord, i, parent_id, item",
                        "(SELECT ord, parent_id, UNNEST(list) AS item, UNNEST(range(1, "
                        "len(list) + 1)) AS i FROM (SELECT ord, id AS parent_id, "
                        f"json_extract(n_{nested.key}, '$[*]') AS list FROM {main} WHERE ok) "
                        "AS l) AS e")
            + ") AS y"
        )  # fmt: skip
        # an item Python would refuse, or two items of one id (Python keeps the first):
        # the whole record is Python's
        statements.append(
            f"UPDATE {main} SET ok = FALSE WHERE ord IN (SELECT ord FROM {items} GROUP BY ord "
            "HAVING NOT bool_and(COALESCE(ok, FALSE)) OR COUNT(DISTINCT id) < COUNT(*))"
        )  # fmt: skip
        temporary.append(items)
        tables.append(nested.table)
        inserts.append(_insert(nested.table, items, rows(nested.table), "i",
                               f" AND ord IN (SELECT ord FROM {main} WHERE ok)"))  # fmt: skip
    if table == "customers":
        tables.append("customer_addresses")
        set_ = " OR ".join(f"a_{n} IS NOT NULL" for n in _ADDRESS)
        inserts.append(
            f"INSERT INTO {rows('customer_addresses')} (ord, pos, gtype, gid, customer_id, "
            f"{', '.join(_ADDRESS)}) SELECT ord, 1, 'customer', id, id, "
            f"{', '.join(f'a_{n}' for n in _ADDRESS)} FROM {main} WHERE ok AND ({set_})"
        )  # fmt: skip
    return EngineMapping(object_type, tuple(tables), tuple(temporary),
                         (*statements, *inserts), main)  # fmt: skip


_ADDRESS = ("line1", "line2", "city", "state", "postal_code", "country")
"""The fields of a customer's address (``_read_address`` in :mod:`paymodel.model.stripe`)."""


def _insert(table: str, source: str, target: str, pos: str, extra: str = "") -> str:
    names = ", ".join(OLTP.table(table).column_names)
    return (f"INSERT INTO {target} (ord, pos, gtype, gid, {names}) SELECT ord, {pos}, "
            f"'{TABLE_OBJECTS[table]}', id, {names} FROM {source} WHERE ok{extra}")  # fmt: skip
