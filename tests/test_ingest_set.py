"""The set-based path decides a file of events exactly as the record-at-a-time path does.

Each case ingests the same files twice, into two empty databases of one engine: once
set-based (``PAYMODEL_INGEST_SET=1``, :mod:`paymodel.oltp.ingest_set`) and once a record
at a time (``PAYMODEL_INGEST_SET=0``). Every table must end equal (the instants each run
stamps, ``applied_at`` and ``received_at``, aside), and so must each run's report;
the set-based run must really have been set-based (``report.set_based``).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from paymodel.model.oltp import OLTP
from paymodel.oltp import ingest_stage as stage
from paymodel.oltp.flows.inspect import database_state
from paymodel.oltp.ingest import IngestReport, ensure_schema, ingest
from paymodel.synthetic import generate
from paymodel.synthetic.load import load_into_oltp

STAMPED = {"applied_at", "received_at", "first_seen_at", "last_seen_at"}
"""Columns holding when a run wrote the row: they differ between any two runs."""


@pytest.fixture(scope="module")
def account(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("account")
    generate(out, scale=0.01, seed=3, months=6, progress=False)
    return out


def state(engine: sa.Engine) -> dict[str, list[tuple]]:
    """Every table's rows, with the columns each run stamps blanked."""
    out = {}
    for table, rows in database_state(engine).items():
        names = OLTP.table(table).column_names
        stamped = [i for i, c in enumerate(names) if c in STAMPED]
        out[table] = sorted(
            (tuple(None if i in stamped else v for i, v in enumerate(r)) for r in rows), key=repr
        )
    return out


def counts(report: IngestReport) -> dict[str, Any]:
    d = report.as_dict()
    d.pop("set_based")
    return d


def without_superseded(report: IngestReport) -> dict[str, Any]:
    d = counts(report)
    d.pop("superseded")
    return d


def both_ways(
    files: list[Path], engine: sa.Engine, second_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch,
    account: Path,
) -> tuple[list[IngestReport], list[IngestReport]]:
    """Ingest ``files`` in turn set-based into ``engine`` and record at a time into ``second_engine``."""
    reports: tuple[list[IngestReport], list[IngestReport]] = ([], [])
    for db, flag, out in ((engine, "1", reports[0]), (second_engine, "0", reports[1])):
        ensure_schema(db)
        load_into_oltp(account, db, tables=("currencies", "fx_rates"))
        monkeypatch.setenv("PAYMODEL_INGEST_SET", flag)
        out.extend(ingest(f, db) for f in files)
    return reports


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def delivered(lines: list[str], seed: int = 7) -> list[str]:
    """Shuffled, with 20% of the events delivered twice."""
    rnd = random.Random(seed)
    out = list(lines) + rnd.sample(lines, round(len(lines) * 0.2))
    rnd.shuffle(out)
    return out


def in_workers(monkeypatch: pytest.MonkeyPatch, workers: int) -> None:
    """Map files in ``workers`` processes (1: in-process), whatever their size, in small
    chunks (so that several are in flight and their order matters)."""
    monkeypatch.setenv("PAYMODEL_INGEST_WORKERS", str(workers))
    monkeypatch.setattr(stage, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(stage, "CHUNK", 97)


@pytest.mark.parametrize(("mode", "workers"), [
    ("in_order", 1), ("shuffled_twice", 1), ("split_in_three", 1), ("split_in_three", 2),
])  # fmt: skip
def test_a_generated_account_ends_the_same_either_way(
    mode: str, workers: int, engine: sa.Engine, second_engine: sa.Engine, account: Path,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Also with the records mapped in two worker processes (2), chunk by chunk: the
    split delivery, whose runs hold duplicates, waiting records and their releases."""
    in_workers(monkeypatch, workers)
    lines = [line for line in (account / "events.jsonl").read_text().splitlines() if line]
    if mode == "in_order":
        files = [write(tmp_path / "events.jsonl", lines)]
    elif mode == "shuffled_twice":
        files = [write(tmp_path / "events.jsonl", delivered(lines))]
    else:  # the later runs release what the earlier ones left waiting
        messy = delivered(lines)
        files = [write(tmp_path / f"part{i}.jsonl", messy[i::3]) for i in range(3)]
    set_based, one_by_one = both_ways(files, engine, second_engine, monkeypatch, account)

    assert [r.set_based for r in set_based] == [[str(f)] for f in files]
    assert [r.set_based for r in one_by_one] == [[] for _ in files]
    for a, b in zip(set_based, one_by_one, strict=True):
        assert without_superseded(a) == without_superseded(b)
        if mode == "in_order":
            assert a.superseded == b.superseded
        else:  # see paymodel.oltp.ingest_set: releases chained within one record's turn
            assert abs(a.superseded - b.superseded) <= 2 + b.superseded // 50
    assert state(engine) == state(second_engine)
    # every event applied once: on arrival, or released from pending by a later run
    assert sum(r.applied + r.released for r in set_based) == len(lines)
    assert set_based[-1].pending == 0
    if mode == "shuffled_twice":
        assert set_based[0].duplicate == round(len(lines) * 0.2)
    if mode == "split_in_three":
        assert set_based[0].pending > 0
        assert set_based[1].released > 0


def event(event_id: str, created: int, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": event_id, "object": "event", "api_version": "2024-06-20", "created": created,
        "type": f"{obj['object']}.updated", "livemode": False, "pending_webhooks": 0,
        "request": {"id": None, "idempotency_key": None},
        "data": {"object": obj, "previous_attributes": {}},
    }  # fmt: skip


def customer(cid: str, name: str = "Ada") -> dict[str, Any]:
    return {
        "id": cid, "object": "customer", "created": 1_735_689_600, "email": f"{cid}@example.com",
        "name": name, "currency": "usd", "balance": 0, "delinquent": False, "livemode": False,
        "metadata": {}, "invoice_settings": {"default_payment_method": None},
        "address": None, "description": None, "phone": None, "preferred_locales": [],
        "tax_exempt": "none",
    }  # fmt: skip


def jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    return write(path, [json.dumps(r) for r in records])


def test_every_child_before_its_parent_ends_the_same_either_way(
    engine: sa.Engine, second_engine: sa.Engine, account: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The account backwards: each record waits for the next ones, in chains of releases."""
    lines = [line for line in (account / "events.jsonl").read_text().splitlines() if line]
    files = [write(tmp_path / "backwards.jsonl", lines[::-1])]
    set_based, one_by_one = both_ways(files, engine, second_engine, monkeypatch, account)
    assert set_based[0].set_based == [str(files[0])]
    assert without_superseded(set_based[0]) == without_superseded(one_by_one[0])
    assert (set_based[0].applied, set_based[0].pending) == (len(lines), 0)
    assert state(engine) == state(second_engine)


def test_records_whose_parent_never_comes_wait_for_a_later_run(
    engine: sa.Engine, second_engine: sa.Engine, account: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Without the customers, whatever names one waits (in ingest_pending, each for the
    first parent it lacks); the customers' own file then releases them."""
    lines = [line for line in (account / "events.jsonl").read_text().splitlines() if line]
    is_customer = [json.loads(line)["data"]["object"]["object"] == "customer" for line in lines]
    others = [line for line, c in zip(lines, is_customer, strict=True) if not c]
    customers = [line for line, c in zip(lines, is_customer, strict=True) if c]
    assert customers
    assert others
    files = [write(tmp_path / "others.jsonl", others), write(tmp_path / "customers.jsonl", customers)]
    set_based, one_by_one = both_ways(files, engine, second_engine, monkeypatch, account)
    assert [r.set_based for r in set_based] == [[str(f)] for f in files]
    for a, b in zip(set_based, one_by_one, strict=True):
        assert without_superseded(a) == without_superseded(b)
    assert set_based[0].pending > 0
    assert set_based[1].released == set_based[0].pending
    assert state(engine) == state(second_engine)


def test_the_newest_snapshot_wins_and_an_older_one_counts_superseded(
    engine: sa.Engine, second_engine: sa.Engine, account: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    records = [event("evt_2", 1_735_689_900, customer("cus_B", name="New")),
               event("evt_1", 1_735_689_700, customer("cus_B", name="Old")),
               event("evt_2", 1_735_689_900, customer("cus_B", name="New"))]  # fmt: skip
    files = [jsonl(tmp_path / "late.jsonl", records)]
    set_based, one_by_one = both_ways(files, engine, second_engine, monkeypatch, account)
    assert set_based[0].set_based == [str(files[0])]
    assert (set_based[0].applied, set_based[0].duplicate, set_based[0].superseded) == (2, 1, 1)
    assert counts(set_based[0]) == counts(one_by_one[0])
    assert state(engine) == state(second_engine)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT name FROM customers")).scalar() == "New"


def test_the_collector_is_off_while_records_are_mapped_and_on_again_between_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The cyclic collector is paused while a chunk is read and mapped, on again while
    the chunk is staged, and a caller that had turned it off finds it off after."""
    import gc
    from datetime import UTC, datetime

    from paymodel.oltp import ingest_guard as guard

    in_workers(monkeypatch, 1)
    seen: list[bool] = []
    real = stage.from_stripe_object

    def spying(obj: Any, **kw: Any) -> Any:
        seen.append(gc.isenabled())
        return real(obj, **kw)

    monkeypatch.setattr(stage, "from_stripe_object", spying)
    records = [event(f"evt_{i}", 1_735_689_700 + i, customer(f"cus_{i}")) for i in range(30)]
    path = jsonl(tmp_path / "few.jsonl", records)
    now = datetime.now(UTC)
    between = [
        gc.isenabled()
        for _ in stage.mapped_chunks(str(path), lambda: guard.read_file(path), now,
                                     guard.DEFAULT_LIMITS)
    ]  # fmt: skip
    assert len(seen) == 60  # the event and its snapshot, per record
    assert not any(seen)
    assert between == [True]
    assert gc.isenabled()
    gc.disable()
    try:
        list(stage.mapped_chunks(str(path), lambda: guard.read_file(path), now,
                                 guard.DEFAULT_LIMITS))  # fmt: skip
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_workers_run_at_a_lower_priority_than_the_ingesting_process() -> None:
    """The ingesting process stages what the workers send and is the bottleneck: the
    workers yield the cores to it."""
    import concurrent.futures as cf
    import multiprocessing
    import os
    from datetime import UTC, datetime

    from paymodel.oltp import ingest_guard as guard

    ctx = multiprocessing.get_context("fork")
    start = ("x.jsonl", datetime.now(UTC), guard.DEFAULT_LIMITS, False)
    with cf.ProcessPoolExecutor(1, mp_context=ctx, initializer=stage._start, initargs=start) as pool:
        worker = pool.submit(os.nice, 0).result()
    assert worker == min(19, os.nice(0) + stage.WORKER_NICENESS)
    assert stage.WORKER_NICENESS > 0


@pytest.mark.parametrize("workers", [1, 2])
def test_a_file_with_a_record_the_guard_refuses_is_decided_one_record_at_a_time(
    workers: int, engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The input guard's refusals (card data here) are the record-at-a-time path's: the
    file falls back, and nothing is written twice."""
    in_workers(monkeypatch, workers)
    ensure_schema(engine)
    carded = customer("cus_C")
    carded["metadata"] = {"card": "4242 4242 4242 4242"}
    path = jsonl(tmp_path / "bad.jsonl", [event("evt_1", 1_735_689_700, customer("cus_D")),
                                          event("evt_2", 1_735_689_800, carded)])  # fmt: skip
    monkeypatch.setenv("PAYMODEL_INGEST_SET", "1")
    report = ingest(path, engine)
    assert report.set_based == []
    assert (report.applied, report.quarantined) == (1, 1)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM events")).scalar() == 1
        assert conn.execute(sa.text("SELECT rule FROM ingest_quarantine")).scalar() == "card_data"


@pytest.mark.parametrize("workers", [1, 2])
def test_a_duplicate_is_never_mapped_so_its_snapshot_is_never_quarantined(
    workers: int, engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """An event id seen before is a duplicate whatever its snapshot holds (as the
    record-at-a-time path counts it); the same unmappable snapshot under a new id is
    quarantined."""
    in_workers(monkeypatch, workers)
    ensure_schema(engine)
    bad = customer("cus_E")
    bad["balance"] = "a lot"
    first = event("evt_1", 1_735_689_700, customer("cus_E"))
    again = {**event("evt_1", 1_735_689_700, bad)}
    monkeypatch.setenv("PAYMODEL_INGEST_SET", "1")
    report = ingest(jsonl(tmp_path / "dup.jsonl", [first, again]), engine)
    assert report.set_based == [str(tmp_path / "dup.jsonl")]
    assert (report.applied, report.duplicate, report.quarantined) == (1, 1, 0)
    report = ingest(jsonl(tmp_path / "new.jsonl", [event("evt_2", 1_735_689_800, bad)]), engine)
    assert report.set_based == [str(tmp_path / "new.jsonl")]
    assert (report.applied, report.quarantined) == (0, 1)


def test_the_mapping_in_workers_gives_the_chunks_in_file_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Chunks come back in the order of the file's lines, each numbered from where it starts."""
    from datetime import UTC, datetime

    from paymodel.oltp import ingest_guard as guard

    in_workers(monkeypatch, 2)
    records = [event(f"evt_{i}", 1_735_689_700 + i, customer(f"cus_{i}")) for i in range(500)]
    path = jsonl(tmp_path / "many.jsonl", records)
    now = datetime.now(UTC)
    chunks = list(stage.mapped_chunks(str(path), lambda: iter(()), now, guard.DEFAULT_LIMITS))
    assert [c.count for c in chunks] == [97] * 5 + [15]
    ids = [i for c in chunks for i in c.recs.column("event_id").to_pylist()]
    assert ids == [f"evt_{i}" for i in range(500)]
    ords = [n for c in chunks for n in c.recs.column("ord").to_pylist()]
    assert ords == list(range(500))
    assert sum(c.rows["customers"].num_rows for c in chunks) == 500


@pytest.mark.parametrize("workers", [1, 2])
def test_records_that_break_the_model_are_quarantined_set_based_as_one_by_one(
    workers: int, engine: sa.Engine, second_engine: sa.Engine, account: Path,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A snapshot the mapping refuses (a balance that is not a number) and one whose row
    breaks a check (a refund of 0: the checks run in SQL over the staged rows) are
    quarantined by the set-based path with the record-at-a-time path's rule and words;
    each delivered twice is quarantined twice (``times_seen`` 2), and a corrected
    redelivery of the first is applied."""
    in_workers(monkeypatch, workers)
    lines = [line for line in (account / "events.jsonl").read_text().splitlines() if line]
    refund = next(e for e in map(json.loads, lines) if e["data"]["object"]["object"] == "refund")
    refund["data"]["object"]["amount"] = 0  # ck_refunds_amount_range: at least 1
    unmappable = customer("cus_F")
    unmappable["balance"] = "a lot"
    records = [event("evt_1", 1_735_689_700, customer("cus_G")),
               event("evt_9", 1_735_689_800, unmappable), refund,
               event("evt_9", 1_735_689_800, unmappable), refund,
               event("evt_9", 1_735_689_800, customer("cus_F"))]  # fmt: skip
    files = [jsonl(tmp_path / "bad.jsonl", records)]
    set_based, one_by_one = both_ways(files, engine, second_engine, monkeypatch, account)
    assert set_based[0].set_based == [str(files[0])]
    assert counts(set_based[0]) == counts(one_by_one[0])
    assert (set_based[0].applied, set_based[0].quarantined) == (2, 4)
    assert state(engine) == state(second_engine)
    with engine.connect() as conn:
        quarantined = conn.execute(sa.text(
            "SELECT rule, error, times_seen FROM ingest_quarantine ORDER BY error")).all()  # fmt: skip
    assert [(rule, times) for rule, _, times in quarantined] == [("invalid_object", 2)] * 2
    assert any("ck_refunds_amount_range" in error for _, error, _ in quarantined)
    assert any("balance must be an integer" in error for _, error, _ in quarantined)


def test_staged_rows_are_copied_so_an_open_transaction_holds_no_arrow_table(
    tmp_path: Path,
) -> None:
    """A file is staged in one transaction; if the engine kept each chunk's Arrow table
    until the commit (as a view registered and dropped inside a transaction does on
    DuckDB), memory would grow with the file instead of the chunk."""
    import gc
    import weakref

    import pyarrow as pa

    from paymodel.model.core import BIGINT, TEXT
    from paymodel.oltp.backend import backend
    from paymodel.oltp.engines import duckdb_engine

    engine = duckdb_engine(tmp_path / "t.duckdb")
    types = {"a": TEXT, "n": BIGINT}
    with engine.begin() as conn:
        b = backend(conn)
        b.create_stage(conn, "paymodel_test_stage", None, types)
        refs = []
        for i in range(3):
            table = pa.table({"a": [f"row {i}"] * 100, "n": list(range(100))})
            refs.append(weakref.ref(table))
            b.stage_rows(conn, "paymodel_test_stage", types, table)
            del table
        gc.collect()
        assert [r() for r in refs] == [None, None, None]
        assert conn.exec_driver_sql("SELECT count(*), sum(n) FROM paymodel_test_stage").one() == (
            300, 3 * sum(range(100)))  # fmt: skip
