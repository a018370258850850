"""Stripe-style object ids (``ch_`` + 24 characters) and clocks for the flows.

Example:
    >>> ids = SequentialIds()
    >>> ids.new("ch_"), ids.new("ch_"), ids.new("re_")
    ('ch_000000000000000000000001', 'ch_000000000000000000000002', 're_000000000000000000000001')
    >>> len(RandomIds().new("pi_"))
    27
    >>> clock = ManualClock(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    >>> clock.advance(days=1).isoformat()
    '2026-01-02T00:00:00+00:00'
"""

from __future__ import annotations

import datetime as dt
import itertools
import secrets
import string
import threading
from collections import defaultdict
from typing import Protocol

__all__ = ["IdGenerator", "ManualClock", "RandomIds", "SequentialIds"]

_ALPHABET = string.digits + string.ascii_letters
ID_LENGTH = 24
"""Characters after the prefix, as in Stripe's ids."""


class IdGenerator(Protocol):
    """Makes ids for new objects: ``new("ch_")`` returns a fresh charge id."""

    def new(self, prefix: str) -> str: ...


class RandomIds:
    """Random ids (62 symbols, 24 characters: about 143 bits); safe across threads and processes."""

    def new(self, prefix: str) -> str:
        """A fresh random id with ``prefix``."""
        return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(ID_LENGTH))


class SequentialIds:
    """Readable, reproducible ids (``ch_...0001``) for demos and tests.

    Unique only among the ids this generator makes: use one per database, never with a
    second writer (another process, or another generator on the same database).
    """

    def __init__(self) -> None:
        self._counters: defaultdict[str, itertools.count[int]] = defaultdict(
            lambda: itertools.count(1)
        )
        self._lock = threading.Lock()

    def new(self, prefix: str) -> str:
        """The next id with ``prefix``."""
        with self._lock:
            n = next(self._counters[prefix])
        return f"{prefix}{n:0{ID_LENGTH}d}"


class ManualClock:
    """A clock that stands still until told to move (whole seconds, UTC)."""

    def __init__(self, start: dt.datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock: start must be timezone-aware")
        self.now = start.astimezone(dt.UTC).replace(microsecond=0)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> dt.datetime:
        """Move forward by ``timedelta(**delta)`` (rounded down to the second); return the new now."""
        self.now = (self.now + dt.timedelta(**delta)).replace(microsecond=0)
        return self.now
