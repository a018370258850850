"""Run one payment operation from many threads at once, each on its own connection.

The concurrency checks of issue 4 (and notebook 05) use it on PostgreSQL: N threads
wait at a barrier, then all call the operation together, each through its own engine
and connection (``NullPool``: a connection per transaction, no sharing). Each thread's
outcome, a result or an error, is collected for the caller to check, in the manner of
Jepsen's bank test: count what reported success, then compare with what the database
holds.

Example (DuckDB has one writer per file, so the demonstration uses PostgreSQL)::

    outcomes = run_concurrently(engine, 50, lambda pay, i: pay.confirm_payment_intent(
        pi_id, idempotency_key="confirm-1"))
    summary(outcomes)  # {'succeeded': 1, 'IdempotencyConflict': 49} or with replays
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from paymodel.oltp.backend import backend
from paymodel.oltp.errors import PaymentError
from paymodel.oltp.flows.payments import Payments

__all__ = ["Outcome", "connection_slots", "run_concurrently", "summary"]


@dataclass(frozen=True)
class Outcome:
    """What one thread got: the operation's result, or the payment error it raised."""

    thread: int
    result: dict[str, Any] | None
    error: PaymentError | None
    seconds: float

    @property
    def ok(self) -> bool:
        """Whether the operation reported success."""
        return self.error is None


def run_concurrently(
    engine: sa.Engine,
    threads: int,
    action: Callable[[Payments, int], dict[str, Any]],
    *,
    payments_options: dict[str, Any] | None = None,
    timeout: float = 120.0,
) -> list[Outcome]:
    """Call ``action(payments, i)`` from ``threads`` threads released together.

    Args:
        engine: Names the database; each thread opens its own engine on the same URL
            with ``NullPool``, so no two threads share a connection.
        threads: How many concurrent calls.
        action: The operation; ``i`` is the thread's number (0-based).
        payments_options: Keyword arguments for each thread's :class:`Payments`.
        timeout: Seconds to wait at the starting barrier.

    At most :func:`connection_slots` threads run the operation at the same moment (the
    server's connection limit); the others wait for a slot, already released.

    Returns:
        One :class:`Outcome` per thread, in thread order. Errors other than
        :class:`~paymodel.oltp.errors.PaymentError` are not outcomes: they propagate.
    """
    url = engine.url
    barrier = threading.Barrier(threads, timeout=timeout)
    options = payments_options or {}
    slots = threading.BoundedSemaphore(min(threads, connection_slots(engine)))

    def one(i: int) -> Outcome:
        own = sa.create_engine(url, poolclass=NullPool)
        try:
            payments = Payments(own, **options)
            barrier.wait()
            with slots:
                start = time.perf_counter()
                try:
                    result = action(payments, i)
                except PaymentError as error:
                    return Outcome(i, None, error, time.perf_counter() - start)
                return Outcome(i, result, None, time.perf_counter() - start)
        finally:
            own.dispose()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(one, range(threads)))


def connection_slots(engine: sa.Engine, *, margin: int = 2) -> int:
    """How many more connections the server accepts now (PostgreSQL), less a margin.

    ``max_connections`` minus the slots reserved for superusers and the connections
    open now. Threads beyond it wait for a free slot instead of failing with "too many
    clients" (the embedded server allows 100 connections). Other engines: unlimited.
    """
    return backend(engine).connection_slots(engine, margin=margin)


def summary(outcomes: list[Outcome]) -> dict[str, int]:
    """How many threads succeeded, and how many got each kind of error.

    Example:
        >>> from paymodel.oltp.errors import AmountExceeded
        >>> summary([Outcome(0, {}, None, 0.1), Outcome(1, None, AmountExceeded("charge ch_1", "x"), 0.1)])
        {'succeeded': 1, 'AmountExceeded': 1}
    """
    counts = Counter("succeeded" if o.ok else type(o.error).__name__ for o in outcomes)
    return dict(counts)
