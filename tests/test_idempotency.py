"""Stripe's idempotency semantics, on DuckDB and PostgreSQL.

Same key and parameters: the stored result, no work done again (a stored error too).
Same key, other parameters: an error, nothing written. A request racing one in flight:
a conflict, no effect. A request that died: its key is recovered after the lock timeout.
"""

from __future__ import annotations

import datetime as dt
import re
import threading

import pytest
import sqlalchemy as sa

from paymodel.oltp.engines import postgres_engine
from paymodel.oltp.flows import (
    AmountExceeded,
    IdempotencyConflict,
    IdempotencyKeyReused,
    IllegalTransition,
    InvalidRequest,
    ManualClock,
    Payments,
    SequentialIds,
)
from paymodel.oltp.flows.concurrency import run_concurrently
from paymodel.oltp.flows.inspect import count_rows, database_state, rows
from paymodel.oltp.idempotency import (
    canonical_json,
    prune_idempotency_keys,
    request_fingerprint,
    run_idempotent,
)
from paymodel.oltp.schema import create_schema, oltp_tables

START = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def pay(engine: sa.Engine) -> Payments:
    create_schema(engine)
    return Payments(engine, clock=ManualClock(START), ids=SequentialIds())


def ready_intent(pay: Payments, amount: int = 2_000, **kw: object) -> str:
    cus = pay.create_customer(email="k@example.com")["id"]
    pm = pay.create_payment_method("visa")["id"]
    pay.attach_payment_method(pm, customer_id=cus)
    return pay.create_payment_intent(amount, "usd", customer_id=cus, payment_method_id=pm, **kw)[
        "id"
    ]


def business_state(engine: sa.Engine) -> dict:
    return database_state(engine, skip=("idempotency_keys",))


def test_retry_with_same_key_returns_stored_result_without_new_work(
    engine: sa.Engine, pay: Payments
) -> None:
    pi = ready_intent(pay)
    first = pay.confirm_payment_intent(pi, idempotency_key="order-1")
    before = database_state(engine)
    again = pay.confirm_payment_intent(pi, idempotency_key="order-1")
    assert again == first
    assert database_state(engine) == before  # not even an event
    assert count_rows(engine, "charges", payment_intent_id=pi) == 1


def test_same_key_with_other_parameters_is_refused(engine: sa.Engine, pay: Payments) -> None:
    pi = ready_intent(pay)
    charge = pay.confirm_payment_intent(pi)["latest_charge"]
    pay.refund_charge(charge, amount=100, idempotency_key="refund-1")
    before = database_state(engine)
    with pytest.raises(
        IdempotencyKeyReused,
        match=re.escape(
            "idempotency_key 'refund-1': was first used for refund_charge with other parameters"
        ),
    ):
        pay.refund_charge(charge, amount=200, idempotency_key="refund-1")
    with pytest.raises(
        IdempotencyKeyReused, match="first used for refund_charge, not cancel_payment_intent"
    ):
        pay.cancel_payment_intent(pi, idempotency_key="refund-1")  # another operation
    assert database_state(engine) == before


def test_stored_error_is_replayed_even_when_the_state_changed(
    engine: sa.Engine, pay: Payments
) -> None:
    pi = ready_intent(pay, capture_method="manual")
    with pytest.raises(
        IllegalTransition, match="cannot capture in status requires_confirmation"
    ) as first:
        pay.capture_payment_intent(pi, idempotency_key="cap-1")
    key = rows(engine, "idempotency_keys", idempotency_key="cap-1")[0]
    assert (key["recovery_point"], key["response_status"], key["locked_at"]) == (
        "finished",
        400,
        None,
    )
    assert key["response_body"]["error"]["message"] == str(first.value)
    pay.confirm_payment_intent(pi)  # now it could be captured...
    before = business_state(engine)
    with pytest.raises(IllegalTransition) as again:  # ...but the key answers what it answered
        pay.capture_payment_intent(pi, idempotency_key="cap-1")
    assert again.value == first.value
    assert business_state(engine) == before
    assert pay.capture_payment_intent(pi, idempotency_key="cap-2")["status"] == "succeeded"


def test_refused_request_with_a_key_writes_only_the_stored_error(
    engine: sa.Engine, pay: Payments
) -> None:
    pi = ready_intent(pay, 500)
    charge = pay.confirm_payment_intent(pi)["latest_charge"]
    before = business_state(engine)
    with pytest.raises(AmountExceeded, match="refund of 900 exceeds the 500 left to refund"):
        pay.refund_charge(charge, amount=900, idempotency_key="too-much")
    assert business_state(engine) == before
    assert rows(engine, "idempotency_keys", idempotency_key="too-much")[0]["response_status"] == 400


def test_request_racing_one_in_flight_gets_a_conflict(engine: sa.Engine, pay: Payments) -> None:
    pi = ready_intent(pay)
    keys = oltp_tables(engine)["idempotency_keys"]
    params = {"payment_intent_id": pi, "payment_method_id": None, "card_behaviour": None}
    with engine.begin() as conn:  # a request that took the key and is still working
        conn.execute(sa.insert(keys).values(
            idempotency_key="busy", operation="confirm_payment_intent",
            request_fingerprint=request_fingerprint("confirm_payment_intent", params),
            request_params=params, recovery_point="started", locked_at=START, locked_by="req_other",
            created=START, last_run_at=START,
        ))  # fmt: skip
    before = database_state(engine)
    with pytest.raises(
        IdempotencyConflict, match="request req_other with this key is still in progress"
    ):
        pay.confirm_payment_intent(pi, idempotency_key="busy")
    assert database_state(engine) == before
    # The other request died: after the lock timeout a retry recovers the key and does the work.
    pay.clock.advance(seconds=pay.lock_timeout.total_seconds())
    assert pay.confirm_payment_intent(pi, idempotency_key="busy")["status"] == "succeeded"
    key = rows(engine, "idempotency_keys", idempotency_key="busy")[0]
    assert (key["recovery_point"], key["locked_by"], key["response_status"]) == (
        "finished",
        None,
        200,
    )


def test_unexpected_failure_releases_the_key_for_a_retry(engine: sa.Engine) -> None:
    create_schema(engine)
    attempts = []

    def flaky(conn: sa.Connection) -> dict:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("network blip")
        return {"id": "x_1", "done": True}

    with pytest.raises(ConnectionError):
        run_idempotent(engine, key="k", operation="op", params={}, work=flaky, request_id="req_1")
    key = rows(engine, "idempotency_keys", idempotency_key="k")[0]
    assert (key["recovery_point"], key["locked_at"], key["response_body"]) == (
        "started",
        None,
        None,
    )
    assert run_idempotent(engine, key="k", operation="op", params={}, work=flaky, request_id="req_2") == {
        "id": "x_1", "done": True,
    }  # fmt: skip
    assert len(attempts) == 2


def test_key_length_is_checked(engine: sa.Engine, pay: Payments) -> None:
    with pytest.raises(InvalidRequest, match="must be 1 to 255 characters"):
        pay.create_customer(idempotency_key="")
    with pytest.raises(InvalidRequest, match="must be 1 to 255 characters"):
        pay.create_customer(idempotency_key="k" * 256)
    assert count_rows(engine, "customers") == 0


def test_prune_drops_finished_keys_older_than_a_day(engine: sa.Engine, pay: Payments) -> None:
    pay.create_customer(idempotency_key="old")
    pay.clock.advance(hours=23)
    pay.create_customer(idempotency_key="recent")
    assert prune_idempotency_keys(engine, now=START + dt.timedelta(hours=24, seconds=1)) == 1
    assert [k["idempotency_key"] for k in rows(engine, "idempotency_keys")] == ["recent"]


def test_prune_keeps_keys_in_flight_and_keys_exactly_a_day_old(engine: sa.Engine, pay: Payments) -> None:
    """Pruning a key whose request still runs would let a retry do the work twice."""
    keys = oltp_tables(engine)["idempotency_keys"]
    with engine.begin() as conn:
        conn.execute(sa.insert(keys).values(
            idempotency_key="in-flight", operation="refund_charge", request_fingerprint="f",
            request_params={}, recovery_point="started", locked_at=START, locked_by="req_1",
            created=START - dt.timedelta(days=3), last_run_at=START,
        ))  # fmt: skip
    pay.create_customer(idempotency_key="finished")  # created at START
    assert prune_idempotency_keys(engine, now=START + dt.timedelta(hours=24)) == 0  # not older
    assert prune_idempotency_keys(engine, now=START + dt.timedelta(days=5)) == 1
    assert [k["idempotency_key"] for k in rows(engine, "idempotency_keys")] == ["in-flight"]


def test_utc_now_is_whole_seconds_in_utc() -> None:
    from paymodel.oltp.idempotency import utc_now

    now = utc_now()
    assert now.tzinfo is dt.UTC
    assert now.microsecond == 0


def test_fingerprint_ignores_parameter_order_not_values() -> None:
    assert canonical_json({"b": 1, "a": [1, 2]}) == canonical_json({"a": (1, 2), "b": 1})
    assert request_fingerprint("op", {"a": 1}) != request_fingerprint("op", {"a": 2})
    assert request_fingerprint("op", {"a": 1}) != request_fingerprint("other", {"a": 1})


def test_real_race_on_postgres_does_the_work_once(pg_dsn: str) -> None:
    """Threads racing with one key: the one that claims it works until every other has
    answered; they all get a conflict, and the work runs once."""
    engine = postgres_engine(pg_dsn)
    create_schema(engine)
    threads = 20
    runs = []
    answered = threading.Semaphore(0)
    mine = threading.local()

    def slow(conn: sa.Connection) -> dict:
        mine.runner = True
        runs.append(1)
        for _ in range(threads - 1):  # hold the key until the others have their answer
            assert answered.acquire(timeout=30)
        return {"id": "once"}

    def request(pay: Payments, i: int) -> dict:
        mine.runner = False
        try:
            return run_idempotent(
                pay.engine, key="race", operation="op", params={}, work=slow, request_id=f"req_{i}"
            )
        finally:
            if not mine.runner:
                answered.release()

    outcomes = run_concurrently(engine, threads, request)
    assert len(runs) == 1
    assert [o.result for o in outcomes if o.ok] == [{"id": "once"}]
    assert sum(isinstance(o.error, IdempotencyConflict) for o in outcomes) == threads - 1
    engine.dispose()
