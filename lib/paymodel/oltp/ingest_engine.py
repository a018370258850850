"""Snapshots flattened into staged rows by the engine: SQL derived from the mapping.

The set-based path (:mod:`paymodel.oltp.ingest_set`) stages a file's records, then
decides. Mapping each snapshot to rows in Python (:func:`paymodel.model.stripe.from_stripe_object`
in :func:`paymodel.oltp.ingest_stage.map_records`) was most of a replay's time: about
60 µs of a record's 130 µs of Python, against a few µs for DuckDB to read the same
fields. So for the object types in :data:`ENGINE_OBJECTS`, on an engine whose backend
says so (:attr:`paymodel.oltp.backend.Backend.flattens_json`: DuckDB), the workers leave
a snapshot unmapped and the staged records are flattened here, one ``INSERT ... SELECT``
per table over the whole file, after its duplicates are known (a duplicate is never
mapped).

Every statement is derived from :data:`paymodel.model.stripe.MAPPINGS`, as the Python
flattener is, and reads the snapshot's JSON text once per record (one ``json_extract``
with the list of every path the table needs: DuckDB parses a document per call, and a
call per column had made SQL flatteners slower than Python).

**Equal rows or none.** For each record the SQL also decides whether the Python
flattener would give exactly these rows: every value of the JSON type the column's kind
reads (a string for text and ids, an integer in the column's range, a boolean, an
object for metadata, unix seconds within Python's datetime range), every nested object
on a path an object or null, no expanded object where an id is expected, nested list
items that are objects of the list's type with distinct ids. A record where any of these fails is mapped in Python after all
(:meth:`paymodel.oltp.ingest_set._SetRun.flatten_in_engine`), which gives the rows, or
the refusal and its words. Only text that is ASCII without a backslash is left to the
engine (:func:`eligible`): there a JSON string is its text between quotes, and the
compact text of metadata (flat, of strings: the input guard admits no other) is the
same from DuckDB's writer and from orjson's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from paymodel.model.core import BOOLEAN, RATE, TIMESTAMP, Column
from paymodel.model.oltp import OLTP
from paymodel.model.stripe import MAPPINGS, TABLE_OBJECTS, Field

__all__ = ["ENGINE_OBJECTS", "EngineMapping", "eligible", "engine_mapping"]

_TEXT = frozenset({"id", "text", "currency", "country"})
_INT_RANGE = {"bigint": (-(2**63), 2**63 - 1), "integer": (-(2**31), 2**31 - 1),
              "smallint": (-(2**15), 2**15 - 1)}  # fmt: skip
_UNIX_RANGE = (-62_135_596_800, 253_402_300_799)
"""Unix seconds Python's ``datetime.fromtimestamp`` accepts (years 1 to 9999)."""
_KEY = re.compile(r"[a-z][a-z0-9_]*")
_ORDER = {name: i for i, name in enumerate(OLTP.table_names)}

ENGINE_OBJECTS = ("payment_intent", "subscription", "invoice_payment", "payment_method",
                  "product", "price")  # fmt: skip
"""Object types flattened by the engine: plain fields, nested lists of plain objects
and the ``payment_intent_payment`` special case. The others (an expanded balance
transaction in every generated charge, refund and payout; an invoice's lines and
taxes; a customer's address) are mapped in Python."""

_SPECIAL_PATHS = {"payment_intent_payment": ("payment.type", "payment.payment_intent")}
"""The paths each supported special case reads."""


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
    for p in parts:
        if not _KEY.fullmatch(p):  # pragma: no cover - the mapping's keys are identifiers
            raise ValueError(f"key {p!r} cannot be a JSON path here")
    return "$." + ".".join(parts)


class _Paths:
    """The JSON paths one ``json_extract`` reads, each once; ``v[i]`` in SQL."""

    def __init__(self, source: str, prefix: tuple[str, ...]) -> None:
        self.source = source
        self.prefix = prefix
        self.paths: list[str] = []

    def __call__(self, parts: tuple[str, ...]) -> str:
        p = _path((*self.prefix, *parts))
        if p not in self.paths:
            self.paths.append(p)
        return f"v[{self.paths.index(p) + 1}]"

    def select(self) -> str:
        listed = ", ".join(f"'{p}'" for p in self.paths)
        return f"json_extract({self.source}, [{listed}]) AS v"


def _null(j: str) -> str:
    return f"({j} IS NULL OR json_type({j}) = 'NULL')"


def _is(j: str, *types: str) -> str:
    return f"json_type({j}) IN ({', '.join(repr(t) for t in types)})"


def _text(j: str) -> str:
    return f"({j} ->> '$')"


def _column(column: Column, f: Field | None, v: _Paths) -> tuple[str, list[str]]:
    """``(value, conditions)`` of one column read by field ``f`` (``None``: the
    table's ``id``), the conditions under which Python reads the same value."""
    parts = ("id",) if f is None else f.parts
    conditions = []
    for i in range(1, len(parts)):  # every nested object on the way: an object or null
        j = v(parts[:i])
        conditions.append(f"({_null(j)} OR {_is(j, 'OBJECT')})")
    j = v(parts)
    for older in () if f is None else f.legacy:
        older_parts = tuple(older.split("."))
        for i in range(1, len(older_parts)):
            o = v(older_parts[:i])
            conditions.append(f"({_null(o)} OR {_is(o, 'OBJECT')})")
        j = f"(CASE WHEN {_null(j)} THEN {v(older_parts)} ELSE {j} END)"
    kind = "value" if f is None else f.kind
    t = column.type
    required = [] if column.nullable else [f"NOT {_null(j)}"]
    if kind == "metadata":
        # the input guard admits flat metadata of strings only: its compact text is the
        # same from DuckDB's writer and from orjson's
        ok = f"({_null(j)} OR {_is(j, 'OBJECT')})"
        return f"(CASE WHEN {_null(j)} THEN '{{}}' ELSE CAST({j} AS VARCHAR) END)", [*conditions, ok]
    if kind == "time":
        if t is not TIMESTAMP:
            raise _Unsupported(f"{column.name}: time into {t.name}")
        lo, hi = _UNIX_RANGE
        ok = (f"({_null(j)} OR ({_is(j, 'BIGINT', 'UBIGINT')} AND "
              f"TRY_CAST({j} AS HUGEINT) BETWEEN {lo} AND {hi}))")  # fmt: skip
        value = (f"to_timestamp(CASE WHEN TRY_CAST({j} AS HUGEINT) BETWEEN {lo} AND {hi} "
                 f"THEN TRY_CAST({j} AS BIGINT) END)")  # fmt: skip
        return value, [*conditions, ok, *required]
    if kind not in ("value", "ref"):
        raise _Unsupported(f"{column.name}: kind {kind}")
    if t.name in _TEXT:
        ok = f"({_null(j)} OR {_is(j, 'VARCHAR')})"
        nonempty = [f"({_null(j)} OR {_text(j)} <> '')"] if t.name == "id" else []
        return f"(CASE WHEN {_null(j)} THEN NULL ELSE {_text(j)} END)", [*conditions, ok, *nonempty, *required]
    if kind == "ref":
        raise _Unsupported(f"{column.name}: a reference of type {t.name}")
    if t.name in ("amount", "signed_amount", "bigint", "integer", "smallint"):
        lo, hi = _INT_RANGE[t.sql]
        ok = (f"({_null(j)} OR ({_is(j, 'BIGINT', 'UBIGINT')} AND "
              f"TRY_CAST({j} AS HUGEINT) BETWEEN {lo} AND {hi}))")  # fmt: skip
        return f"(CASE WHEN {_null(j)} THEN NULL ELSE TRY_CAST({j} AS BIGINT) END)", [*conditions, ok, *required]
    if t is BOOLEAN:
        ok = f"({_null(j)} OR {_is(j, 'BOOLEAN')})"
        return f"(CASE WHEN {_null(j)} THEN NULL ELSE TRY_CAST({j} AS BOOLEAN) END)", [*conditions, ok, *required]
    if t is RATE:
        return "NULL", [*conditions, _null(j), *required]
    raise _Unsupported(f"{column.name}: type {t.name}")


class _Unsupported(ValueError):
    """A column the engine's flattener does not read (its object type stays in Python)."""


def _special(name: str, v: _Paths) -> tuple[dict[str, str], list[str]]:
    """The columns a supported special case sets, and its conditions."""
    if name == "payment_intent_payment":
        payment, kind, intent = v(("payment",)), v(("payment", "type")), v(("payment", "payment_intent"))
        return {"payment_intent_id": f"(CASE WHEN {_null(intent)} THEN NULL ELSE {_text(intent)} END)"}, [
            f"({_null(payment)} OR {_is(payment, 'OBJECT')})",
            f"({_null(kind)} OR ({_is(kind, 'VARCHAR')} AND {_text(kind)} = 'payment_intent'))",
            f"({_null(intent)} OR ({_is(intent, 'VARCHAR')} AND {_text(intent)} <> ''))",
        ]
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
            if f.special not in _SPECIAL_PATHS:
                raise _Unsupported(f"special case {f.special}")
            continue
        value, conds = _column(column, f, v)
        values[name] = value
        conditions += conds
    for name in dict.fromkeys(f.special for f in m.fields.values() if f.kind == "special"):
        set_, conds = _special(name, v)  # type: ignore[arg-type]
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
        >>> "json_extract(r.raw, ['$.data.object.id'" in m.statements[0]
        True
    """
    table = next(t for t, m in MAPPINGS.items() if m.object == object_type)
    m = MAPPINGS[table]
    main = f"paymodel_engine_{object_type}"
    v = _Paths("r.raw", ("data", "object"))
    cols, conditions = _row(table, v, {})
    conditions.append(f"COALESCE(CAST({v(('deleted',))} AS VARCHAR), '') <> 'true'")
    lists: list[str] = []
    for nested in m.nested:
        j = v((nested.key,))
        has_more = f"COALESCE(CAST(json_extract({j}, '$.has_more') AS VARCHAR), '') <> 'true'"
        data = f"json_extract({j}, '$.data')"
        conditions.append(f"({_null(j)} OR {_is(j, 'ARRAY')} OR ({_is(j, 'OBJECT')} AND "
                          f"{has_more} AND {_is(data, 'ARRAY')}))")  # fmt: skip
        lists.append(f"(CASE WHEN {_null(j)} THEN CAST('[]' AS JSON) WHEN {_is(j, 'ARRAY')} "
                     f"THEN {j} ELSE {data} END) AS n_{nested.key}")  # fmt: skip
    statements = [
        f"CREATE TEMPORARY TABLE {main} AS SELECT ord, {', '.join([*cols, *lists])}, "
        f"({' AND '.join(conditions)}) AS ok FROM (SELECT r.ord, {v.select()} FROM {rec} AS r "
        f"WHERE r.engine = 1 AND r.dup = 0 AND r.kind = '{object_type}') AS x"
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
            f"({' AND '.join(iconds)}) AS ok FROM (SELECT l.ord, l.i, l.parent_id, e.item, "
            f"{iv.select()} FROM (SELECT ord, id AS parent_id, n_{nested.key} AS list, "
            f"UNNEST(generate_series(1, CAST(json_array_length(n_{nested.key}) AS BIGINT))) AS i FROM {main} "
            f"WHERE ok) AS l, LATERAL (SELECT json_extract(l.list, '$[' || (l.i - 1) || ']') "
            "AS item) AS e) AS y"
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
    return EngineMapping(object_type, tuple(tables), tuple(temporary),
                         (*statements, *inserts), main)  # fmt: skip


def _insert(table: str, source: str, target: str, pos: str, extra: str = "") -> str:
    names = ", ".join(OLTP.table(table).column_names)
    return (f"INSERT INTO {target} (ord, pos, gtype, gid, {names}) SELECT ord, {pos}, "
            f"'{TABLE_OBJECTS[table]}', id, {names} FROM {source} WHERE ok{extra}")  # fmt: skip
