"""The embedded store: one TinyDB file per collection, on :class:`AtomicJSONStorage`.

Each collection keeps a key -> document-id map in memory (built by one scan when first
used), so reads by key are dictionary lookups and duplicate checks cost nothing; other
queries are TinyDB full scans, which is TinyDB's design (benchmarks/bench_documents.py
measures what a scan costs at 100k documents). Writes go through the atomic storage: one file write per call, or
one per collection for a whole :meth:`TinyDBStore.batch`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tinydb import Query, TinyDB
from tinydb.table import Document

from paymodel.documents.search import TextIndex
from paymodel.documents.storage import AtomicJSONStorage
from paymodel.documents.store import _MISSING, DocumentCollection, DocumentStore, Hit, resolve
from paymodel.model.documents import Collection

__all__ = ["TinyDBCollection", "TinyDBStore"]


def _field(path: str) -> Query:
    q = Query()
    for part in path.split("."):
        q = q[part]
    return q


def _sort_key(value: Any) -> tuple[int, Any]:
    return (1, "") if value is _MISSING or value is None else (0, value)


class TinyDBCollection(DocumentCollection):
    """A collection in its own TinyDB file (``<folder>/<name>.json``)."""

    def __init__(self, spec: Collection, path: Path, *, read_only: bool) -> None:
        super().__init__(spec)
        self.path = path
        self.db = TinyDB(path, storage=AtomicJSONStorage, read_only=read_only)
        # No query cache: a reader's file may be replaced by the writer, and TinyDB clears
        # its cache only on its own writes.
        self.table = self.db.table(spec.name, cache_size=0)
        self._ids: dict[str, int] | None = None
        self._text: TextIndex | None = None
        self._source: object = None  # the storage state the two caches above were built from

    @property
    def storage(self) -> AtomicJSONStorage:
        return self.db.storage  # type: ignore[return-value]

    def _fresh(self) -> None:
        """Drop the caches when the storage holds another state (a reader saw a new file)."""
        state = self.storage.read()
        if state is not self._source:
            self._ids, self._text, self._source = None, None, state

    def _key_ids(self) -> dict[str, int]:
        self._fresh()
        if self._ids is None:
            self._ids = {d[self.key]: d.doc_id for d in self.table.all()}
            self._source = self.storage.read()
        return self._ids

    def _changed(self) -> None:
        self._text = None
        self._source = self.storage.read()

    def _insert_new(self, docs: Sequence[Mapping[str, Any]]) -> int:
        ids = self._key_ids()
        new = [dict(d) for d in docs if d[self.key] not in ids]
        if new:
            for doc, doc_id in zip(new, self.table.insert_multiple(new), strict=True):
                ids[doc[self.key]] = doc_id
            self._changed()
        return len(new)

    def _upsert(self, docs: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
        ids = self._key_ids()
        old = [ids[d[self.key]] for d in docs if d[self.key] in ids]
        with self.storage.batch():
            if old:
                self.table.remove(doc_ids=old)
            # A replaced document keeps its id, so a rebuild leaves the file unchanged.
            batch = [
                Document(dict(d), doc_id=ids[d[self.key]]) if d[self.key] in ids else dict(d)
                for d in docs
            ]
            if batch:
                for doc, doc_id in zip(docs, self.table.insert_multiple(batch), strict=True):
                    ids[doc[self.key]] = doc_id
        self._changed()
        return len(docs) - len(old), len(old)

    def get(self, key: str) -> dict[str, Any] | None:
        doc_id = self._key_ids().get(key)
        doc = None if doc_id is None else self.table.get(doc_id=doc_id)
        return None if doc is None else dict(doc)

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
        conds = [_field(p) == v for p, v in (where or {}).items()]
        if between is not None:
            path, lo, hi = between
            conds.append((_field(path) >= lo) & (_field(path) < hi))
        if contains is not None:
            conds.append(_field(contains[0]).any([contains[1]]))
        if conds:
            q = conds[0]
            for c in conds[1:]:
                q = q & c
            docs = self.table.search(q)
        else:
            docs = self.table.all()
        docs.sort(key=lambda d: d[self.key])
        if order_by is not None:
            docs.sort(key=lambda d: _sort_key(resolve(d, order_by)), reverse=descending)
        return [dict(d) for d in docs[:limit]]

    def search(self, text: str, limit: int = 10) -> list[Hit]:
        path = self._fulltext_path()
        self._fresh()
        if self._text is None:
            docs = self.table.all()
            self._text = TextIndex([d[self.key] for d in docs], [resolve(d, path) for d in docs])
        return [
            Hit(score, doc)
            for key, score in self._text.query(text, limit)
            if (doc := self.get(key))
        ]

    def delete(self, keys: Iterable[str]) -> int:
        ids = self._key_ids()
        gone = [ids.pop(k) for k in set(keys) if k in ids]
        if gone:
            self.table.remove(doc_ids=gone)
            self._changed()
        return len(gone)

    def clear(self) -> None:
        self.table.truncate()
        self._ids = {}
        self._changed()

    def count(self) -> int:
        return len(self.table)

    def all(self) -> list[dict[str, Any]]:
        return sorted((dict(d) for d in self.table.all()), key=lambda d: d[self.key])

    def close(self) -> None:
        self.db.close()


class TinyDBStore(DocumentStore):
    """Collections as TinyDB files in ``folder``; each file has one writer at a time."""

    def __init__(self, folder: Path, *, read_only: bool = False) -> None:
        super().__init__()
        self.folder = Path(folder)
        self.target = str(folder)
        self.read_only = read_only
        if read_only and not self.folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such document store")
        self.folder.mkdir(parents=True, exist_ok=True)

    def _open(self, spec: Collection) -> TinyDBCollection:
        return TinyDBCollection(spec, self.folder / f"{spec.name}.json", read_only=self.read_only)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Every write inside reaches each collection's file once, at the end."""
        from paymodel.model.documents import COLLECTIONS

        with contextlib.ExitStack() as stack:
            for name in COLLECTIONS:
                stack.enter_context(self.collection(name).storage.batch())  # type: ignore[attr-defined]
            yield

    def close(self) -> None:
        for c in self._collections.values():
            c.close()  # type: ignore[attr-defined]
        self._collections.clear()
