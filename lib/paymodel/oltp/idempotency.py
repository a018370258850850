"""Stripe-like idempotency keys over the ``idempotency_keys`` table.

The design follows brandur.org's "Implementing Stripe-like Idempotency Keys in Postgres":

1. **Claim** (its own short transaction). Insert the key with a fingerprint of the
   request (SHA-256 of the operation and its canonical parameters) and a lock
   (``locked_at``, ``locked_by``), or find the row already there:

   * another fingerprint: :class:`~paymodel.oltp.errors.IdempotencyKeyReused`;
   * finished: the stored result is returned (or the stored error raised again) and no
     work is done;
   * locked by a request still in flight: :class:`~paymodel.oltp.errors.IdempotencyConflict`,
     and this request has no effect;
   * unlocked, or locked for longer than ``lock_timeout`` (its process died): this
     request takes it over (recovery).

2. **Work** (one transaction). Check the lock is still ours, run the operation, store
   its result and release the lock, all in the same commit: the work and the stored
   result are visible together or not at all. Because the work is one atomic phase
   (nothing leaves the database), recovery after a crash is simply running it again:
   ``recovery_point`` is ``started`` until the commit, then ``finished``.

3. **On error.** A :class:`~paymodel.oltp.errors.PaymentError` is a result too: it is
   stored and returned to retries, as Stripe does. Any other exception (a bug, a lost
   connection) releases the lock without storing anything, so the client can retry.

On PostgreSQL, two claims of one new key serialise on the primary key
(``INSERT ... ON CONFLICT DO NOTHING`` waits for the first to commit). The request doing
the work holds the key's row lock (``SELECT ... FOR UPDATE``) until its commit, so a
claim that finds the row locked (``FOR UPDATE NOWAIT``) is a conflict at once, whatever
the clock says. On DuckDB (no row locks) the same statements run, ``locked_at`` tells a
request in flight, and a write-write conflict aborts one transaction, which
:func:`~paymodel.oltp.transactions.run_transaction` runs again.

Example:
    >>> from paymodel.oltp.engines import duckdb_engine
    >>> from paymodel.oltp.schema import create_schema
    >>> engine = duckdb_engine()
    >>> create_schema(engine)
    >>> calls = []
    >>> def work(conn):
    ...     calls.append(1)
    ...     return {"id": "re_1", "amount": 100}
    >>> run_idempotent(engine, key="k1", operation="refund", params={"amount": 100},
    ...                work=work, request_id="req_1")
    {'id': 're_1', 'amount': 100}
    >>> run_idempotent(engine, key="k1", operation="refund", params={"amount": 100},
    ...                work=work, request_id="req_2")
    {'id': 're_1', 'amount': 100}
    >>> len(calls)  # the retry returned the stored result without doing the work again
    1
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import decimal
import enum
import functools
import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from paymodel.model.core import Model
from paymodel.model.operational import idempotency_keys
from paymodel.model.sql import metadata
from paymodel.oltp.errors import (
    IdempotencyConflict,
    IdempotencyError,
    IdempotencyKeyReused,
    InvalidRequest,
    PaymentError,
    error_from_dict,
)
from paymodel.oltp.schema import dialect_name
from paymodel.oltp.transactions import is_lock_unavailable, locking, run_transaction

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "KEY_RETENTION",
    "canonical_json",
    "prune_idempotency_keys",
    "request_fingerprint",
    "run_idempotent",
    "utc_now",
]

DEFAULT_LOCK_TIMEOUT = dt.timedelta(seconds=60)
"""A lock older than this belongs to a request that died; a retry may take the key over."""

KEY_RETENTION = dt.timedelta(hours=24)
"""Stripe keeps keys for at least 24 hours; :func:`prune_idempotency_keys` drops older ones."""

MAX_KEY_LENGTH = 255


def utc_now() -> dt.datetime:
    """The current instant in UTC, whole seconds (Stripe's resolution)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _plain(value: Any) -> Any:
    """``value`` as plain JSON data: dataclasses, enums, decimals and datetimes converted."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return int(value.timestamp())
    if isinstance(value, dt.date):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot use a {type(value).__name__} as a request parameter: {value!r}")


def canonical_json(params: Mapping[str, Any]) -> str:
    """Parameters as canonical JSON: sorted keys, no spaces, tuples as lists.

    Example:
        >>> canonical_json({"b": (1, 2), "a": None})
        '{"a":null,"b":[1,2]}'
    """
    return json.dumps(_plain(params), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_fingerprint(operation: str, params: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the operation and its canonical parameters.

    Parameter order does not matter; values do:

    Example:
        >>> request_fingerprint("refund", {"a": 1, "b": 2}) == request_fingerprint("refund", {"b": 2, "a": 1})
        True
        >>> request_fingerprint("refund", {"a": 1}) == request_fingerprint("refund", {"a": 2})
        False
    """
    return hashlib.sha256(f"{operation}\n{canonical_json(params)}".encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class _Stored:
    status: int
    body: dict[str, Any]


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise InvalidRequest(
            f"idempotency_key {str(key)[:40]!r}", f"must be 1 to {MAX_KEY_LENGTH} characters"
        )


def _claim(
    conn: sa.Connection,
    *,
    key: str,
    operation: str,
    fingerprint: str,
    params_json: Any,
    request_id: str,
    now: dt.datetime,
    lock_timeout: dt.timedelta,
) -> _Stored | None:
    """Phase 1: take the key's lock, or say why not. ``None`` means "go and do the work"."""
    t = _table(conn)
    claim = (
        pg_insert(t)
        .values(
            idempotency_key=key,
            operation=operation,
            request_fingerprint=fingerprint,
            request_params=params_json,
            recovery_point="started",
            locked_at=now,
            locked_by=request_id,
            created=now,
            last_run_at=now,
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(t.c.idempotency_key)
    )
    try:
        inserted = conn.execute(claim).first()
    except sa.exc.IntegrityError:
        # DuckDB: a concurrent transaction inserted the same key after this one began
        # (optimistic concurrency reports it as a duplicate key, not a conflict to skip).
        raise IdempotencyConflict(
            f"idempotency_key {key!r}", "another request with this key is starting; retry later"
        ) from None
    if inserted is not None:
        return None
    # The request holding the key keeps its row locked while it works (PostgreSQL): NOWAIT
    # turns "in flight" into an immediate conflict rather than a wait for its result.
    query = sa.select(t).where(t.c.idempotency_key == key)
    try:
        row = conn.execute(locking(query, dialect_name(conn), nowait=True)).mappings().one()
    except sa.exc.DBAPIError as error:
        if is_lock_unavailable(error):
            raise IdempotencyConflict(
                f"idempotency_key {key!r}",
                "another request with this key is still in progress; retry later",
            ) from None
        raise
    if row["request_fingerprint"] != fingerprint:
        first_use = (
            f"{row['operation']} with other parameters"
            if row["operation"] == operation
            else f"{row['operation']}, not {operation}"
        )
        raise IdempotencyKeyReused(
            f"idempotency_key {key!r}",
            f"was first used for {first_use}; a new request needs a new key",
        )
    if row["recovery_point"] == "finished":
        return _Stored(row["response_status"], _json(row["response_body"]))
    locked_at = row["locked_at"]
    if locked_at is not None and now - locked_at < lock_timeout:
        raise IdempotencyConflict(
            f"idempotency_key {key!r}",
            f"request {row['locked_by']} with this key is still in progress; retry later",
        )
    # Unlocked (an earlier attempt failed without a result) or stale (it died): recover.
    conn.execute(
        sa.update(t)
        .where(t.c.idempotency_key == key)
        .values(locked_at=now, locked_by=request_id, last_run_at=now)
    )
    return None


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _table(conn: sa.Connection) -> sa.Table:
    return _table_for(dialect_name(conn))


@functools.cache
def _table_for(dialect: str) -> sa.Table:
    return metadata(Model("idempotency", "Idempotency keys.", [idempotency_keys]), dialect).tables[
        idempotency_keys.name
    ]


def _finish(conn: sa.Connection, key: str, request_id: str, status: int, body: Any) -> None:
    t = _table(conn)
    done = conn.execute(
        sa.update(t)
        .where(t.c.idempotency_key == key, t.c.locked_by == request_id)
        .values(
            recovery_point="finished",
            response_status=status,
            response_body=body,
            locked_at=None,
            locked_by=None,
        )
        .returning(t.c.idempotency_key)
    ).first()
    if done is None:
        raise IdempotencyConflict(
            f"idempotency_key {key!r}",
            f"request {request_id} lost the key's lock to a later request; its work was undone",
        )


def _assert_owner(conn: sa.Connection, key: str, request_id: str) -> None:
    t = _table(conn)
    owner = conn.execute(
        locking(
            sa.select(t.c.locked_by, t.c.recovery_point).where(t.c.idempotency_key == key),
            dialect_name(conn),
        )
    ).first()
    if owner is None or owner.locked_by != request_id or owner.recovery_point != "started":
        raise IdempotencyConflict(
            f"idempotency_key {key!r}",
            f"request {request_id} no longer holds the key (taken over after a timeout)",
        )


def _release(conn: sa.Connection, key: str, request_id: str) -> None:
    t = _table(conn)
    conn.execute(
        sa.update(t)
        .where(t.c.idempotency_key == key, t.c.locked_by == request_id)
        .values(locked_at=None, locked_by=None)
    )


def run_idempotent(
    engine: sa.Engine,
    *,
    key: str | None,
    operation: str,
    params: Mapping[str, Any],
    work: Callable[[sa.Connection], dict[str, Any]],
    request_id: str,
    clock: Callable[[], dt.datetime] = utc_now,
    lock_timeout: dt.timedelta = DEFAULT_LOCK_TIMEOUT,
) -> dict[str, Any]:
    """Run ``work`` in one transaction, at most once per idempotency ``key``.

    Args:
        engine: The OLTP engine (schema created, ``idempotency_keys`` included).
        key: The client's idempotency key, or ``None`` to run without one.
        operation: Name of the operation, part of the fingerprint.
        params: The request's parameters (JSON-able after conversion of dataclasses,
            decimals and datetimes); part of the fingerprint.
        work: Does the operation's reads and writes on the connection and returns the
            result as JSON-able data. It may run more than once (transaction retries),
            so it must have no effect outside the connection.
        request_id: Unique id of this request (``req_...``), holder of the lock.
        clock: Gives ``now`` for ``locked_at`` and ``created``.
        lock_timeout: Age after which a lock is considered abandoned.

    Returns:
        The result of ``work``, or the result stored by an earlier request with the key.

    Raises:
        IdempotencyKeyReused: The key was used with other parameters.
        IdempotencyConflict: A request with the key is in flight.
        PaymentError: The operation's own error, or the one stored for the key.
    """
    if key is None:
        return run_transaction(engine, work)
    _check_key(key)
    fingerprint = request_fingerprint(operation, params)
    params_json = _plain(params)
    stored = run_transaction(
        engine,
        lambda conn: _claim(
            conn,
            key=key,
            operation=operation,
            fingerprint=fingerprint,
            params_json=params_json,
            request_id=request_id,
            now=clock(),
            lock_timeout=lock_timeout,
        ),
    )
    if stored is not None:
        if stored.status >= 400:
            raise error_from_dict(stored.body)
        return stored.body

    def work_and_store(conn: sa.Connection) -> dict[str, Any]:
        _assert_owner(conn, key, request_id)
        result = json.loads(json.dumps(_plain(work(conn))))
        _finish(conn, key, request_id, 200, result)
        return result

    try:
        return run_transaction(engine, work_and_store)
    except IdempotencyError:
        raise
    except PaymentError as error:
        status, body = error.status, error.to_dict()
        # A later request that took the key over will store its own result.
        with contextlib.suppress(IdempotencyConflict):
            run_transaction(engine, lambda conn: _finish(conn, key, request_id, status, body))
        raise
    except BaseException:
        # The original error matters more; if this fails too, the lock goes stale.
        with contextlib.suppress(Exception):
            run_transaction(engine, lambda conn: _release(conn, key, request_id))
        raise


def prune_idempotency_keys(
    engine: sa.Engine,
    *,
    older_than: dt.timedelta = KEY_RETENTION,
    now: dt.datetime | None = None,
) -> int:
    """Delete finished keys created more than ``older_than`` ago; return how many.

    Keys of requests still in flight are kept whatever their age.
    """
    cutoff = (now or utc_now()) - older_than

    def prune(conn: sa.Connection) -> int:
        t = _table(conn)
        gone = conn.execute(
            sa.delete(t)
            .where(t.c.created < cutoff, t.c.recovery_point == "finished")
            .returning(t.c.idempotency_key)
        ).all()
        return len(gone)

    return run_transaction(engine, prune)
