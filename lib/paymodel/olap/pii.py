"""Keyed pseudonymisation of direct identifiers (HMAC-SHA256), with the key kept outside the data.

GDPR calls a keyed hash pseudonymised, not anonymous: whoever holds the key can test a
guess, so the key never lives beside the data. :func:`resolve_pii_key` takes it from the
environment variable ``PAYMODEL_PII_KEY`` or from a key file; without either it refuses,
unless ``demo`` is set, which uses :data:`DEMO_KEY`, a key published in this repository
(fine for synthetic data and tests, useless as protection).

The same value always gives the same hash under one key, so hashes still join (the same
email across two customers) and count distinct, and nothing else can be read from them.

Example:
    >>> pseudonymise("Ada@Example.org ", b"k", kind="email") == pseudonymise("ada@example.org", b"k", kind="email")
    True
    >>> pseudonymise("ada@example.org", b"k")[:16]
    '348da1b5be80b40c'
    >>> pseudonymise(None, b"k") is None
    True
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DEMO_KEY", "PII_KEY_ENV", "MissingPIIKeyError", "PIIKey", "pseudonymise", "resolve_pii_key"]

PII_KEY_ENV = "PAYMODEL_PII_KEY"
"""Environment variable holding the pseudonymisation key (any string, at least 16 bytes)."""

DEMO_KEY = b"paymodel demo key: published, protects nothing"
"""The fixed key ``--demo`` uses. It is public: never use it for real customers."""

_MIN_KEY_BYTES = 16


class MissingPIIKeyError(RuntimeError):
    """No pseudonymisation key was supplied (and ``demo`` was not asked for)."""


@dataclass(frozen=True)
class PIIKey:
    """A key and where it came from (printed by the build, never the key itself)."""

    key: bytes = field(repr=False)
    source: str


def resolve_pii_key(key_file: str | os.PathLike[str] | None = None, *, demo: bool = False) -> PIIKey:
    """The pseudonymisation key: a key file, else ``PAYMODEL_PII_KEY``, else the demo key if asked.

    Raises:
        MissingPIIKeyError: neither a key file nor the environment variable, and not ``demo``;
            or the key is shorter than 16 bytes.
    """
    if key_file is not None:
        key = Path(key_file).read_bytes().strip()
        source = f"key file {key_file}"
    elif os.environ.get(PII_KEY_ENV):
        key = os.environ[PII_KEY_ENV].encode()
        source = f"environment variable {PII_KEY_ENV}"
    elif demo:
        return PIIKey(DEMO_KEY, "the published demo key (--demo): hashes protect nothing")
    else:
        raise MissingPIIKeyError(
            f"no key to pseudonymise emails, names, phones and addresses: set {PII_KEY_ENV}, "
            "pass a key file (--pii-key-file), or pass --demo to use the published demo key "
            "(synthetic data only)"
        )
    if len(key) < _MIN_KEY_BYTES:
        raise MissingPIIKeyError(f"{source}: the key must be at least {_MIN_KEY_BYTES} bytes")
    return PIIKey(key, source)


def _normalised(value: str, kind: str) -> str:
    value = " ".join(value.split())
    return value.lower() if kind == "email" else value


def pseudonymise(value: str | None, key: bytes, *, kind: str = "text") -> str | None:
    """HMAC-SHA256 of ``value`` under ``key``, as 64 hex digits; ``None`` stays ``None``.

    Whitespace is collapsed first, and an email (``kind="email"``) is lowercased, so that
    the same identifier written twice gives one hash.
    """
    if value is None:
        return None
    message = _normalised(value, kind).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()
