"""Replaying the generator's ``events.jsonl`` rebuilds the generator's tables exactly.

In order, shuffled, and with 20% of the events delivered twice, on DuckDB and
PostgreSQL: every Stripe-object table equals the generator's Parquet, row for row, and
the ``events`` table holds each event once. Reference data (currencies, FX rates) is not
made of Stripe objects and is loaded from the Parquet files.
"""

from __future__ import annotations

import json
import random
from datetime import UTC
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from paymodel.model.core import JSON, RATE, TIMESTAMP
from paymodel.model.oltp import OLTP
from paymodel.model.stripe import from_stripe_object
from paymodel.oltp.ingest import ensure_schema, ingest
from paymodel.oltp.schema import create_schema
from paymodel.synthetic import generate
from paymodel.synthetic.load import load_into_oltp, parquet_files

MODES = ("in_order", "shuffled", "duplicates")
DUPLICATE_SHARE = 0.20

STRIPE_OBJECT_TABLES = tuple(
    t.name
    for t in OLTP.tables
    if (t.stripe_object is not None and t.name != "events")
    or t.name in ("customer_addresses", "balance_transaction_fee_details")
)
"""Tables rebuilt from events: every Stripe object table and the rows objects own."""


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synthetic")
    # seed 3 at this scale has every kind of object, disputes and refunds included
    generate(out, scale=0.01, seed=3, months=6, progress=False)
    return out


def delivery(lines: list[str], mode: str, seed: int = 7) -> tuple[list[str], int]:
    """The lines as delivered in ``mode``, and how many of them are redeliveries."""
    rnd = random.Random(seed)
    if mode == "in_order":
        return list(lines), 0
    if mode == "shuffled":
        out = list(lines)
        rnd.shuffle(out)
        return out, 0
    copies = rnd.sample(lines, round(len(lines) * DUPLICATE_SHARE))
    out = list(lines)
    for line in copies:  # a redelivery can come before or after the first delivery
        out.insert(rnd.randrange(len(out) + 1), line)
    return out, len(copies)


def canonical(table: str, row: dict[str, Any]) -> dict[str, Any]:
    """A row with values compared by meaning: UTC instants, parsed JSON, exact decimals."""
    out = {}
    for column in OLTP.table(table).columns:
        v = row[column.name]
        if v is not None and column.type is TIMESTAMP:
            v = v.astimezone(UTC)
        elif isinstance(v, str) and column.type is JSON:
            v = json.loads(v)
        elif v is not None and column.type is RATE:
            v = Decimal(v).normalize()
        out[column.name] = v
    return out


def parquet_rows(folder: Path, table: str) -> list[dict[str, Any]]:
    rows = [r for f in parquet_files(folder, table) for r in pq.read_table(f).to_pylist()]
    return sorted((canonical(table, r) for r in rows), key=lambda r: _sort_key(table, r))


def database_rows(engine: sa.Engine, table: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT * FROM {table}")).mappings().all()
    return sorted((canonical(table, dict(r)) for r in rows), key=lambda r: _sort_key(table, r))


def _sort_key(table: str, row: dict[str, Any]) -> tuple:
    return tuple(str(row[c]) for c in OLTP.table(table).primary_key)


@pytest.mark.parametrize("mode", MODES)
def test_replay_rebuilds_the_generated_tables(
    mode: str, engine: sa.Engine, generated: Path, tmp_path: Path
) -> None:
    ensure_schema(engine)
    load_into_oltp(generated, engine, tables=("currencies", "fx_rates"))
    lines = [line for line in (generated / "events.jsonl").read_text().splitlines() if line]
    delivered, redelivered = delivery(lines, mode)
    path = tmp_path / f"events-{mode}.jsonl"
    path.write_text("\n".join(delivered) + "\n")

    report = ingest(path, engine)

    assert (report.read, report.pending, report.quarantined) == (len(delivered), 0, 0)
    assert report.duplicate == redelivered
    assert report.applied == len(lines)
    if mode == "in_order":
        assert report.superseded == 0
    checked = 0
    for table in STRIPE_OBJECT_TABLES:
        expected = parquet_rows(generated, table)
        actual = database_rows(engine, table)
        assert len(actual) == len(expected), table
        for got, want in zip(actual, expected, strict=True):
            assert got == want, f"{table} {_sort_key(table, want)}"
        checked += len(expected)
    assert checked > 100  # the comparison covered real data
    events = {
        e["id"]: dict(from_stripe_object(e)[0][1]) for e in (json.loads(line) for line in lines)
    }
    stored = {r["id"]: r for r in database_rows(engine, "events")}
    assert stored.keys() == events.keys()
    for event_id, row in events.items():
        assert stored[event_id] == canonical("events", row), event_id


SQL_NULL = "<SQL NULL>"
"""How a JSON column's SQL NULL reads in :func:`strict_rows` (apart from the JSON text null)."""

COMPARED_TABLES = tuple(
    t.name for t in OLTP.tables if t.name in STRIPE_OBJECT_TABLES or t.name in ("events", "currencies", "fx_rates")
)
"""Every table a load fills: the Stripe objects, the rows they own, the event log, reference data."""


def strict_rows(engine: sa.Engine, table: str) -> list[dict[str, Any]]:
    """Rows of ``table`` with JSON read as text: SQL NULL, ``null`` and ``{}`` all differ."""
    columns = OLTP.table(table).columns
    select = ", ".join(
        f"CAST({c.name} AS TEXT) AS {c.name}" if c.type is JSON else c.name for c in columns
    )
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT {select} FROM {table}")).mappings().all()
    out = []
    for r in rows:
        row = canonical(table, dict(r))
        for c in columns:
            if c.type is JSON and r[c.name] is None:
                row[c.name] = SQL_NULL
        out.append(row)
    return sorted(out, key=lambda r: _sort_key(table, r))


def test_load_and_replay_give_identical_rows(
    engine: sa.Engine, second_engine: sa.Engine, generated: Path
) -> None:
    """``paymodel load`` of an account and ``paymodel ingest`` of its events: the same rows."""
    create_schema(second_engine)
    loaded = load_into_oltp(generated, second_engine)
    ensure_schema(engine)
    load_into_oltp(generated, engine, tables=("currencies", "fx_rates"))
    report = ingest(generated / "events.jsonl", engine)
    assert (report.pending, report.quarantined) == (0, 0)
    assert loaded["events"] == report.applied > 0
    for table in COMPARED_TABLES:
        want, got = strict_rows(second_engine, table), strict_rows(engine, table)
        assert len(got) == len(want), table
        assert want, f"{table}: nothing to compare"
        for a, b in zip(got, want, strict=True):
            for column in a:  # column by column, so a failure names the column
                assert a[column] == b[column], f"{table} {_sort_key(table, b)} {column}"
    metadata = strict_rows(engine, "charges")[0]["metadata"]
    assert metadata == {}  # empty metadata is {}, as Stripe sends it


def test_the_generated_data_has_every_kind_of_object(generated: Path) -> None:
    """Otherwise the replay would prove nothing about the tables left empty."""
    for table in STRIPE_OBJECT_TABLES:
        assert parquet_rows(generated, table), f"{table}: no rows generated"


def test_delivery_modes_are_what_they_claim() -> None:
    lines = [f"line {i}" for i in range(100)]
    shuffled, none = delivery(lines, "shuffled")
    assert none == 0
    assert sorted(shuffled) == sorted(lines)
    assert shuffled != lines
    doubled, copies = delivery(lines, "duplicates")
    assert copies == 20
    assert len(doubled) == 120
    assert set(doubled) == set(lines)


def test_replay_starts_from_an_empty_object_store(engine: sa.Engine) -> None:
    """The comparison is meaningful only if the schema brings no Stripe objects of its own."""
    ensure_schema(engine)
    for table in STRIPE_OBJECT_TABLES:
        assert database_rows(engine, table) == [], table
