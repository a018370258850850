"""The collection interface, the same on TinyDB (embedded default) and PostgreSQL JSONB.

A store holds the collections of :data:`paymodel.model.documents.COLLECTIONS`; each
collection validates every write against its JSON Schema, deduplicates append-only
collections by key, and answers the access patterns its model declares:

* ``get(key)``: one document by key;
* ``find(where, between=..., contains=..., order_by=..., limit=...)``: equality on dotted
  paths (``{"data.object.id": "ch_1"}``), a half-open range ``[lo, hi)`` on one path,
  membership of a value in an array path (``("tags", "billing")``);
* ``search(text, limit)``: ranked keyword search on the collection's ``fulltext`` path.

:func:`open_store` picks the backend from the target: a folder (one TinyDB file per
collection) or a ``postgresql://`` URL.

Write policy: a document that breaks its schema is never written. ``insert(docs)`` with
the default ``on_invalid="raise"`` writes nothing of a batch holding a bad document and
raises :class:`~paymodel.documents.validation.InvalidDocuments` naming each one;
``on_invalid="skip"`` writes the good ones and reports the bad ones in
:attr:`WriteReport.rejected`.
"""

from __future__ import annotations

import abc
import contextlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from paymodel.documents.validation import DocumentError, InvalidDocuments, validate_many
from paymodel.model.documents import COLLECTIONS, Collection

__all__ = [
    "DocumentCollection",
    "DocumentStore",
    "Hit",
    "WriteReport",
    "is_postgres_url",
    "open_store",
    "resolve",
]

OnInvalid = Literal["raise", "skip"]
_MISSING = object()


def resolve(doc: Mapping[str, Any], path: str) -> Any:
    """The value at dotted ``path`` in ``doc``, or a sentinel when absent.

    Example:
        >>> resolve({"data": {"object": {"id": "ch_1"}}}, "data.object.id")
        'ch_1'
    """
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


@dataclass
class WriteReport:
    """What one write did: every document given is written, a duplicate, or rejected."""

    collection: str
    written: int = 0
    replaced: int = 0
    duplicates: int = 0
    rejected: list[DocumentError] = field(default_factory=list)

    @property
    def rejected_keys(self) -> list[str]:
        return sorted({e.key for e in self.rejected})

    def __str__(self) -> str:
        return (
            f"{self.collection}: {self.written:,} written, {self.replaced:,} replaced, "
            f"{self.duplicates:,} duplicates, {len(self.rejected_keys):,} rejected"
        )


@dataclass(frozen=True)
class Hit:
    """A search result: its relevance score (higher is better) and the document."""

    score: float
    doc: dict[str, Any]


class DocumentCollection(abc.ABC):
    """One collection of a store; subclasses implement storage, this class the policies."""

    def __init__(self, spec: Collection) -> None:
        self.spec = spec
        self.name = spec.name
        self.key = spec.key

    def insert(
        self, docs: Iterable[Mapping[str, Any]], *, on_invalid: OnInvalid = "raise"
    ) -> WriteReport:
        """Validate and write ``docs`` (append-only: new keys only; else insert or replace)."""
        if on_invalid not in ("raise", "skip"):
            raise ValueError(f"on_invalid={on_invalid!r}: expected 'raise' or 'skip'")
        good, errors = validate_many(self.name, docs)
        if errors and on_invalid == "raise":
            raise InvalidDocuments(errors)
        report = WriteReport(self.name, rejected=errors)
        latest: dict[str, Mapping[str, Any]] = {}
        for doc in good:
            k = doc[self.key]
            if k in latest and self.spec.append_only:
                report.duplicates += 1
                continue
            latest.pop(k, None)  # a later copy of a key wins, at its own position
            latest[k] = doc
        docs = list(latest.values())
        if self.spec.append_only:
            written = self._insert_new(docs)
            report.written, report.duplicates = written, report.duplicates + len(docs) - written
        else:
            report.written, report.replaced = self._upsert(docs)
        return report

    @abc.abstractmethod
    def _insert_new(self, docs: Sequence[Mapping[str, Any]]) -> int:
        """Write the documents whose key is new; return how many."""

    @abc.abstractmethod
    def _upsert(self, docs: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
        """Insert or replace each document by key; return (inserted, replaced)."""

    @abc.abstractmethod
    def get(self, key: str) -> dict[str, Any] | None:
        """The document with ``key``, or ``None``."""

    @abc.abstractmethod
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
        """Documents matching every condition, ordered by ``order_by`` then key."""

    @abc.abstractmethod
    def search(self, text: str, limit: int = 10) -> list[Hit]:
        """Documents ranked by relevance to ``text``, best first (ties by key)."""

    @abc.abstractmethod
    def delete(self, keys: Iterable[str]) -> int:
        """Delete the documents with these keys; return how many existed."""

    @abc.abstractmethod
    def clear(self) -> None:
        """Delete every document (a rebuild starts from empty)."""

    @abc.abstractmethod
    def count(self) -> int:
        """Number of documents."""

    @abc.abstractmethod
    def all(self) -> list[dict[str, Any]]:
        """Every document, ordered by key."""

    def _fulltext_path(self) -> str:
        ix = self.spec.index("fulltext")
        if ix is None:
            raise ValueError(f"collection {self.name} declares no fulltext index: no search")
        return ix.path

    def _check_paths(self, *paths: str | None) -> None:
        top = set(self.spec.properties)
        for p in paths:
            if p is not None and p.split(".")[0] not in top and self.spec.closed:
                raise KeyError(f"collection {self.name} has no field {p.split('.')[0]}")


class DocumentStore(abc.ABC):
    """A set of collections behind one target; a context manager that closes them."""

    target: str

    def __init__(self) -> None:
        self._collections: dict[str, DocumentCollection] = {}

    def collection(self, name: str) -> DocumentCollection:
        """The collection called ``name`` (one of ``COLLECTIONS``)."""
        if name not in COLLECTIONS:
            raise KeyError(f"no collection {name}; known: {', '.join(COLLECTIONS)}")
        if name not in self._collections:
            self._collections[name] = self._open(COLLECTIONS[name])
        return self._collections[name]

    __getitem__ = collection

    @abc.abstractmethod
    def _open(self, spec: Collection) -> DocumentCollection: ...

    @abc.abstractmethod
    def batch(self) -> contextlib.AbstractContextManager[None]:
        """Group writes: one file write per collection (TinyDB), one transaction (PostgreSQL)."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> DocumentStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.target!r})"


def is_postgres_url(target: str | os.PathLike[str]) -> bool:
    return str(target).startswith(("postgresql://", "postgres://", "postgresql+psycopg://"))


def open_store(target: str | os.PathLike[str], *, read_only: bool = False) -> DocumentStore:
    """A store on ``target``: a ``postgresql://`` URL, else a folder of TinyDB files."""
    if is_postgres_url(target):
        from paymodel.documents.postgres_store import PostgresStore

        return PostgresStore(str(target))
    from paymodel.documents.tinydb_store import TinyDBStore

    return TinyDBStore(Path(target), read_only=read_only)
