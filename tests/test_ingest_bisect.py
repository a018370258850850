"""A batch the database refuses is narrowed to its record, on DuckDB and PostgreSQL.

Ingestion writes a file in batches; a rule only the database knows (here the unique
``lookup_key`` of prices) refuses a whole batch without naming a record. The file is
then replayed with the refused span split, then its few records flushed one by one,
and the record is quarantined (rule ``database_constraint``); the rest of the file
lands. These tests count the flushes: far fewer than one per record.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from paymodel.oltp import ingest as ingest_module
from paymodel.oltp.flows.inspect import rows
from paymodel.oltp.ingest import ensure_schema, ingest

PRODUCT = {"object": "product", "id": "prod_1", "name": "A", "active": True, "created": 100}


def price(n: int, lookup_key: str | None = None) -> dict[str, Any]:
    return {"object": "price", "id": f"price_{n}", "product": "prod_1", "currency": "usd",
            "unit_amount": 500 + n, "type": "one_time", "billing_scheme": "per_unit",
            "lookup_key": lookup_key or f"key_{n}", "active": True, "created": 100 + n}  # fmt: skip


@pytest.fixture
def flushes(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts the flushes of every run (a flush is one bulk write per table)."""
    counter = {"n": 0}
    original = ingest_module._FileRun.flush

    def counting(self: Any) -> None:
        counter["n"] += 1
        original(self)

    monkeypatch.setattr(ingest_module._FileRun, "flush", counting)
    return counter


def test_a_refused_batch_is_narrowed_to_its_record(
    engine: sa.Engine, flushes: dict[str, int]
) -> None:
    ensure_schema(engine)
    n = 400
    records = [PRODUCT] + [price(i) for i in range(n)]
    records[301] = price(300, lookup_key="key_7")  # clashes with price_7's lookup key
    report = ingest(records, engine)
    assert (report.read, report.applied, report.quarantined) == (n + 1, n, 1)
    (q,) = rows(engine, "ingest_quarantine")
    assert (q["rule"], q["object_id"]) == ("database_constraint", "price_300")
    assert "database refused the record" in q["error"]
    stored = {r["id"] for r in rows(engine, "prices")}
    assert len(stored) == n - 1
    assert "price_300" not in stored
    assert "price_7" in stored
    # One flush per record, as a replay row by row made, would be over 400.
    assert flushes["n"] < n / 2


def test_a_refused_release_of_an_earlier_runs_pending_record_is_named(
    engine: sa.Engine, flushes: dict[str, int]
) -> None:
    """The parent arrives outside ingestion; the release at the next run's start is refused."""
    ensure_schema(engine)
    ingest([PRODUCT, price(1, lookup_key="basic")], engine)
    orphan = {**price(2, lookup_key="basic"), "product": "prod_2"}
    assert ingest([orphan], engine).pending == 1
    with engine.begin() as conn:  # the product lands by another path (a loader, the flows)
        conn.execute(sa.text("INSERT INTO products (id, name, active, created, metadata) "
                             "VALUES ('prod_2', 'B', true, TIMESTAMP '2025-01-01 00:00:00', '{}')"))  # fmt: skip
    later = [price(10 + i) for i in range(200)]
    report = ingest(later, engine)
    assert (report.read, report.applied, report.quarantined) == (200, 200, 0)
    (q,) = rows(engine, "ingest_quarantine")
    assert (q["rule"], q["object_id"]) == ("database_constraint", "price_2")
    assert rows(engine, "ingest_pending") == []
    assert len(rows(engine, "prices")) == 201
