"""The PostgreSQL twin: each collection is a table ``documents.<name> (key text PRIMARY KEY, doc jsonb)``.

Indexes come from the collection's access patterns (:class:`paymodel.model.documents.Index`):

* ``btree`` -> an expression index on ``doc -> 'a' -> 'b'`` (jsonb), serving equality and
  ranges (numbers compare as numbers, ISO timestamps as strings);
* ``contains`` -> a GIN ``jsonb_path_ops`` index on the array, serving ``@>``;
* ``fulltext`` -> a GIN index on ``to_tsvector('english', doc ->> 'text')``, ranked with
  ``ts_rank_cd``.

Queries write the indexed expression exactly as the index does, with paths as SQL literals
(quoted by psycopg), and values as bound parameters, so the planner can use the index.
Writes load the batch with COPY into a temporary table, then one ``INSERT ... ON CONFLICT``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import orjson
import psycopg
from psycopg import sql

from paymodel.documents.store import DocumentCollection, DocumentStore, Hit
from paymodel.model.documents import COLLECTIONS, Collection

__all__ = ["SCHEMA", "PostgresCollection", "PostgresStore", "index_ddl"]

SCHEMA = "documents"
"""The PostgreSQL schema holding one table per collection."""

_WORD = re.compile(r"[A-Za-z0-9]+")
_INLINE_ROWS = 500
"""Batches up to this many rows are sent as VALUES; larger ones through COPY."""


def _path(path: str, *, text: bool = False) -> sql.Composable:
    """``doc -> 'a' -> 'b'`` (or ``->>`` for the last step when ``text``)."""
    parts = path.split(".")
    out: sql.Composable = sql.SQL("doc")
    for i, part in enumerate(parts):
        op = "->>" if text and i == len(parts) - 1 else "->"
        out = sql.SQL("({} {} {})").format(out, sql.SQL(op), sql.Literal(part))
    return out


def _tsvector(path: str) -> sql.Composable:
    return sql.SQL("to_tsvector('english', coalesce({}, ''))").format(_path(path, text=True))


def _table(name: str) -> sql.Composable:
    return sql.Identifier(SCHEMA, name)


def index_ddl(spec: Collection) -> list[sql.Composable]:
    """``CREATE TABLE`` and ``CREATE INDEX`` statements of one collection."""
    t = _table(spec.name)
    out = [
        sql.SQL("CREATE TABLE IF NOT EXISTS {} (key text PRIMARY KEY, doc jsonb NOT NULL)").format(
            t
        )
    ]
    for ix in spec.indexes:
        name = sql.Identifier(f"{spec.name}_{ix.path.replace('.', '_')}_{ix.kind}")
        if ix.kind == "btree":
            expr = sql.SQL("({})").format(_path(ix.path))
            out.append(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({})").format(name, t, expr))
        elif ix.kind == "contains":
            expr = sql.SQL("({}) jsonb_path_ops").format(_path(ix.path))
            out.append(
                sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING gin ({})").format(name, t, expr)
            )
        else:
            expr = sql.SQL("({})").format(_tsvector(ix.path))
            out.append(
                sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING gin ({})").format(name, t, expr)
            )
    return out


def _loads(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else orjson.loads(value)


class PostgresCollection(DocumentCollection):
    """A collection as a JSONB table of :data:`SCHEMA`."""

    def __init__(self, spec: Collection, store: PostgresStore) -> None:
        super().__init__(spec)
        self.store = store
        self.table = _table(spec.name)

    @property
    def conn(self) -> psycopg.Connection:
        return self.store.conn

    def _source(self, docs: Sequence[Mapping[str, Any]]) -> tuple[sql.Composable, list[str]]:
        """A ``SELECT key, doc`` of the batch: inline VALUES when small, else COPY into a temp table."""
        if len(docs) <= _INLINE_ROWS:
            values = sql.SQL(", ").join([sql.SQL("(%s, %s::jsonb)")] * len(docs))
            params = [v for d in docs for v in (d[self.key], orjson.dumps(d).decode())]
            return sql.SQL("SELECT * FROM (VALUES {}) AS v (key, doc)").format(values), params
        self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS _incoming (key text, doc jsonb)")
        self.conn.execute("TRUNCATE _incoming")
        with self.conn.cursor().copy("COPY _incoming (key, doc) FROM STDIN") as copy:
            for d in docs:
                copy.write_row((d[self.key], orjson.dumps(d).decode()))
        return sql.SQL("SELECT key, doc FROM _incoming"), []

    def _insert_new(self, docs: Sequence[Mapping[str, Any]]) -> int:
        if not docs:
            return 0
        with self.conn.transaction():
            source, params = self._source(docs)
            cur = self.conn.execute(
                sql.SQL("INSERT INTO {} (key, doc) {} ON CONFLICT (key) DO NOTHING").format(
                    self.table, source
                ),
                params,
            )
            return cur.rowcount

    def _upsert(self, docs: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
        if not docs:
            return 0, 0
        with self.conn.transaction():
            source, params = self._source(docs)
            rows = self.conn.execute(
                sql.SQL(
                    "INSERT INTO {} (key, doc) {} "
                    "ON CONFLICT (key) DO UPDATE SET doc = EXCLUDED.doc RETURNING (xmax = 0)"
                ).format(self.table, source),
                params,
            ).fetchall()
        inserted = sum(1 for (new,) in rows if new)
        return inserted, len(rows) - inserted

    def get(self, key: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            sql.SQL("SELECT doc FROM {} WHERE key = %s").format(self.table), (key,)
        ).fetchone()
        return None if row is None else _loads(row[0])

    def find(
        self,
        where: Mapping[str, Any] | None = None,
        *,
        between: tuple[str, Any, Any] | None = None,
        contains: tuple[str, Any] | None = None,
        order_by: str | None = None,
        descending: bool = False,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        self._check_paths(
            *(where or {}), between and between[0], contains and contains[0], order_by
        )
        conds: list[sql.Composable] = []
        params: list[Any] = []
        for path, value in (where or {}).items():
            conds.append(sql.SQL("{} = %s::jsonb").format(_path(path)))
            params.append(orjson.dumps(value).decode())
        if between is not None:
            path, lo, hi = between
            conds.append(sql.SQL("{0} >= %s::jsonb AND {0} < %s::jsonb").format(_path(path)))
            params += [orjson.dumps(lo).decode(), orjson.dumps(hi).decode()]
        if contains is not None:
            conds.append(sql.SQL("{} @> %s::jsonb").format(_path(contains[0])))
            params.append(orjson.dumps([contains[1]]).decode())
        query = sql.SQL("SELECT doc FROM {}").format(self.table)
        if conds:
            query += sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conds)
        order = [sql.SQL("key")]
        if order_by is not None:
            direction = sql.SQL(" DESC NULLS LAST" if descending else " NULLS LAST")
            order.insert(0, _path(order_by) + direction)
        query += sql.SQL(" ORDER BY ") + sql.SQL(", ").join(order)
        if limit is not None:
            query += sql.SQL(" LIMIT {}").format(sql.Literal(int(limit)))
        return [_loads(r[0]) for r in self.conn.execute(query, params)]

    def search(self, text: str, limit: int = 10) -> list[Hit]:
        path = self._fulltext_path()
        words = _WORD.findall(text)
        if not words:
            return []
        # Any of the words (OR), ranked by cover density, as BM25 ranks any-of matches.
        rows = self.conn.execute(
            sql.SQL(
                "SELECT ts_rank_cd({v}, q) AS score, doc FROM {t}, "
                "websearch_to_tsquery('english', %s) AS q WHERE {v} @@ q "
                "ORDER BY round(ts_rank_cd({v}, q)::numeric, 6) DESC, key LIMIT %s"
            ).format(v=_tsvector(path), t=self.table),
            (" or ".join(words), limit),
        ).fetchall()
        return [Hit(float(score), _loads(doc)) for score, doc in rows]

    def delete(self, keys: Iterable[str]) -> int:
        keys = sorted(set(keys))
        if not keys:
            return 0
        with self.conn.transaction():
            cur = self.conn.execute(
                sql.SQL("DELETE FROM {} WHERE key = ANY(%s)").format(self.table), (keys,)
            )
        return cur.rowcount

    def clear(self) -> None:
        with self.conn.transaction():
            self.conn.execute(sql.SQL("TRUNCATE {}").format(self.table))

    def count(self) -> int:
        return self.conn.execute(sql.SQL("SELECT count(*) FROM {}").format(self.table)).fetchone()[
            0
        ]

    def all(self) -> list[dict[str, Any]]:
        rows = self.conn.execute(sql.SQL("SELECT doc FROM {} ORDER BY key").format(self.table))
        return [_loads(r[0]) for r in rows]


class PostgresStore(DocumentStore):
    """Every collection in schema :data:`SCHEMA` of the database at ``dsn``; tables made on open."""

    def __init__(self, dsn: str) -> None:
        super().__init__()
        self.target = dsn
        self.conn = psycopg.connect(
            dsn.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
        )
        with self.conn.transaction():
            self.conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA))
            )
            for spec in COLLECTIONS.values():
                for stmt in index_ddl(spec):
                    self.conn.execute(stmt)

    def _open(self, spec: Collection) -> PostgresCollection:
        return PostgresCollection(spec, self)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction: every write inside commits together, or none does."""
        with self.conn.transaction():
            yield

    def close(self) -> None:
        self.conn.close()
