"""Validate documents against their collection's JSON Schema, with errors that say where and why.

The schemas come from :mod:`paymodel.model.documents`; the validator is jsonschema-rs
(compiled Rust). ``benchmarks/bench_validation.py`` measured it against jsonschema and
fastjsonschema on the same documents: it was the fastest and, unlike fastjsonschema, it
reports every broken rule of a document, each with its path and keyword.

A versioned collection (``schema_version``) validates each document against the schema
of the version it declares, so documents written before a migration stay readable.

Example:
    >>> doc = {"feedback_id": "fb_1", "rating": 11}
    >>> errors = validate("feedback", doc)
    >>> str(next(e for e in errors if e.rule == "maximum"))
    'feedback fb_1: /rating: maximum: 11 is greater than the maximum of 10'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import jsonschema_rs

from paymodel.model.documents import COLLECTIONS

__all__ = ["DocumentError", "InvalidDocuments", "validate", "validate_many"]


@dataclass(frozen=True)
class DocumentError:
    """One rule a document broke.

    Attributes:
        collection: the collection it was meant for.
        key: the document's key (``"?"`` when it has none).
        path: JSON Pointer of the offending value (``/rating``; ``""`` is the document).
        rule: the JSON Schema keyword that failed (``maximum``, ``required``, ``pattern``...).
        message: the library's message.
    """

    collection: str
    key: str
    path: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.collection} {self.key}: {self.path or '/'}: {self.rule}: {self.message}"


@dataclass
class InvalidDocuments(ValueError):
    """Raised when a write is refused because documents break their schema; nothing is written."""

    errors: list[DocumentError] = field(default_factory=list)

    def __str__(self) -> str:
        keys = sorted({e.key for e in self.errors})
        head = f"{len(keys)} document(s) refused, nothing written: "
        return (
            head
            + "; ".join(str(e) for e in self.errors[:5])
            + (" ..." if len(self.errors) > 5 else "")
        )


@cache
def _validator(collection: str, version: int | None) -> Any:
    schema = COLLECTIONS[collection].json_schema(version)
    return jsonschema_rs.validator_for(schema, validate_formats=True)


def _pointer(path: Iterable[Any]) -> str:
    return "".join(f"/{str(p).replace('~', '~0').replace('/', '~1')}" for p in path)


def validate(collection: str, doc: Mapping[str, Any]) -> list[DocumentError]:
    """Every rule ``doc`` breaks in ``collection`` (empty when it is valid)."""
    c = COLLECTIONS[collection]
    key = doc.get(c.key) if isinstance(doc, Mapping) else None
    key = key if isinstance(key, str) else "?"
    version = None
    if c.version is not None:
        declared = doc.get("schema_version") if isinstance(doc, Mapping) else None
        if declared not in c.versions:
            return [
                DocumentError(
                    collection, key, "/schema_version", "const",
                    f"{declared!r} is not a known schema version {list(c.versions)}",
                )
            ]  # fmt: skip
        version = declared
    v = _validator(collection, version)
    if v.is_valid(doc):
        return []
    return [
        DocumentError(
            collection, key, _pointer(e.instance_path), str(list(e.schema_path)[-1]), e.message
        )
        for e in v.iter_errors(doc)
    ]


def validate_many(
    collection: str, docs: Iterable[Mapping[str, Any]]
) -> tuple[list[Mapping[str, Any]], list[DocumentError]]:
    """Split ``docs`` into the valid ones and the errors of the others."""
    good, errors = [], []
    for doc in docs:
        found = validate(collection, doc)
        if found:
            errors.extend(found)
        else:
            good.append(doc)
    return good, errors
