"""One transaction per operation, on DuckDB and PostgreSQL.

The payment flows run one code path on both engines. The engines differ in two ways
that matter here; what each engine does is owned by its
:class:`paymodel.oltp.backend.Backend`:

* **Row locks.** PostgreSQL takes ``SELECT ... FOR UPDATE`` row locks, so concurrent
  writers of one charge queue up behind each other. DuckDB does not parse locking
  clauses (``Parser Error: SELECT locking clause is not supported!``); it has optimistic
  concurrency instead: of two transactions that update the same row, the second fails
  with a ``TransactionException`` ("Conflict on update"). :func:`lock_rows` claims rows
  either way (a no-op update on DuckDB makes the claim a write); :func:`locking` adds the
  clause only where the engine has it.
* **Retryable failures.** A PostgreSQL serialization failure or deadlock, and a DuckDB
  transaction conflict, mean "nothing was written, run the transaction again":
  :func:`run_transaction` does, with jittered backoff, so callers see either the
  committed result or a real error, never a spurious conflict.
* **Writers of one DuckDB database take turns.** Optimistic concurrency starves under
  contention: of N transactions writing one row, each round commits one and aborts the
  rest, so the last one needs about N runs. With 24 threads refunding one charge, a
  thread lost up to 17 times in a row on an idle machine, and on a loaded one a thread
  ran out of its :data:`DEFAULT_ATTEMPTS` and raised ``TransactionException`` (the
  flaky concurrency test of issue 14). DuckDB lets one process at a time write a
  database file, so every writer of it is in this process: :func:`run_transaction`
  holds a lock per DuckDB database around each attempt (:meth:`Backend.writer_turn
  <paymodel.oltp.backend.Backend.writer_turn>`), and its transactions no longer
  conflict with each other. Retries stay, for writers that do not go through it.

Example:
    >>> import sqlalchemy as sa
    >>> from paymodel.oltp.engines import duckdb_engine
    >>> engine = duckdb_engine()
    >>> run_transaction(engine, lambda conn: conn.execute(sa.text("select 42")).scalar_one())
    42
    >>> str(locking(sa.select(sa.literal(1)), engine.dialect.name)).endswith("FOR UPDATE")
    False
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from paymodel.oltp.backend import backend

__all__ = [
    "is_lock_unavailable",
    "is_retryable",
    "lock_rows",
    "locking",
    "run_transaction",
    "supports_row_locks",
]

T = TypeVar("T")

DEFAULT_ATTEMPTS = 60
"""How many times a transaction runs before a retryable failure is let through.

Sized for contention on a busy machine: 24 writers of one DuckDB row, on two cores shared
with other work, ran out of 20 attempts (delays are capped at 0.5 s, so 60 attempts wait
at most about 30 s, and only while conflicts last)."""


def supports_row_locks(dialect_name: str) -> bool:
    """Whether the engine takes row locks with ``SELECT ... FOR UPDATE``.

    Example:
        >>> supports_row_locks("postgresql"), supports_row_locks("duckdb")
        (True, False)
    """
    return backend(dialect_name).row_locks


def locking(statement: sa.Select, dialect_name: str, *, nowait: bool = False) -> sa.Select:
    """``statement`` with ``FOR UPDATE`` on engines that lock rows, unchanged elsewhere.

    With ``nowait``, a row locked by another transaction raises at once
    (:func:`is_lock_unavailable`) instead of waiting. On DuckDB, a concurrent writer of
    the same row makes one of the two transactions fail at commit; :func:`run_transaction`
    retries it against the committed state.
    """
    return backend(dialect_name).lock(statement, nowait=nowait)


def lock_rows(
    conn: sa.Connection,
    table: sa.Table,
    *where: sa.ColumnElement[bool],
    touch: str,
    order_by: Sequence[sa.ColumnElement[object]] = (),
) -> sa.CursorResult:
    """Select the rows of ``table`` matching ``where``, claimed for this transaction.

    PostgreSQL: ``SELECT ... FOR UPDATE``; a concurrent claimer waits for the commit.
    DuckDB: first the rows are written (their ``touch`` timestamp moved one second and
    back: DuckDB ignores an update that changes no value), so that the claim is a write:
    of two transactions claiming one row, the second fails with a write-write conflict
    and :func:`run_transaction` runs it again, against the committed state. Either way, what the transaction reads after the claim stays true
    until it commits, even for a reader that will not otherwise write the row.

    Args:
        conn: The transaction's connection.
        table: The table.
        where: Which rows.
        touch: A timestamp column with no index and no check on it (DuckDB cannot
            update an indexed column of a referenced row), such as ``created``.
        order_by: Order of the returned rows.
    """
    engine = backend(conn)
    engine.claim(conn, table, where, touch)
    query = sa.select(table).where(*where).order_by(*order_by)
    return conn.execute(engine.lock(query))


def is_lock_unavailable(error: BaseException) -> bool:
    """Whether ``error`` is PostgreSQL's ``lock_not_available`` (55P03) from ``NOWAIT``."""
    return isinstance(error, DBAPIError) and getattr(error.orig, "sqlstate", None) == "55P03"


def is_retryable(error: BaseException) -> bool:
    """Whether ``error`` means "the transaction wrote nothing; run it again".

    PostgreSQL: serialization failure (40001) and deadlock (40P01). DuckDB: a
    ``TransactionException`` (write-write conflict between transactions).
    """
    if not isinstance(error, DBAPIError):
        return False
    orig = error.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate in ("40001", "40P01"):
        return True
    try:
        import duckdb
    except ImportError:  # pragma: no cover - duckdb is a dependency
        return False
    return isinstance(orig, duckdb.TransactionException)


def run_transaction(
    engine: sa.Engine,
    work: Callable[[sa.Connection], T],
    *,
    attempts: int = DEFAULT_ATTEMPTS,
    backoff: float = 0.005,
) -> T:
    """Run ``work`` in one transaction, committed if it returns, rolled back if it raises.

    A retryable failure (:func:`is_retryable`) rolls back and runs ``work`` again, up to
    ``attempts`` times, sleeping a jittered, growing delay between runs. ``work`` must
    therefore have no side effects outside the connection. On DuckDB each run holds the
    database's writer lock (see the module docstring).

    Args:
        engine: The engine to connect with.
        work: Does the reads and writes on the connection it is given.
        attempts: Maximum number of runs.
        backoff: Base delay in seconds; run ``n`` waits up to ``backoff * 2**n`` (capped
            at 0.5 s).

    Returns:
        What ``work`` returned, once committed.
    """
    for attempt in range(1, attempts + 1):
        try:
            with backend(engine).writer_turn(engine), engine.begin() as conn:
                return work(conn)
        except DBAPIError as error:
            if attempt == attempts or not is_retryable(error):
                raise
        time.sleep(random.uniform(0, min(0.5, backoff * 2**attempt)))  # jitter, not crypto
    raise AssertionError("unreachable")  # pragma: no cover
