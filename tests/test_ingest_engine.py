"""The engine's flattener (:mod:`paymodel.oltp.ingest_engine`) against the Python one.

For the object types DuckDB flattens, the staged rows and references must be those the
Python mapping stages, value for value; a snapshot the SQL cannot flatten exactly is
left to Python, which gives its rows, or its refusal and the same outcome.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from paymodel.oltp import ingest_guard as guard
from paymodel.oltp import ingest_set
from paymodel.oltp import ingest_stage as stage
from paymodel.oltp.engines import duckdb_engine
from paymodel.oltp.ingest import IngestReport, ensure_schema, ingest
from paymodel.oltp.ingest_engine import ENGINE_OBJECTS, eligible, engine_mapping
from paymodel.synthetic import generate
from paymodel.synthetic.load import load_into_oltp
from tests.test_ingest_set import delivered, state, write


@pytest.fixture(scope="module")
def account(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("account")
    generate(out, scale=0.01, seed=5, months=6, progress=False)
    return out


def fresh(tmp_path: Path, name: str, account: Path) -> sa.Engine:
    db = duckdb_engine(str(tmp_path / f"{name}.duckdb"))
    ensure_schema(db)
    load_into_oltp(account, db, tables=("currencies", "fx_rates"))
    return db


def staged(path: Path, db: sa.Engine, *, engine: bool) -> tuple[dict[str, list[tuple]], list[int]]:
    """Every staged table of ``path`` (``engine`` off: all mapped in Python), and the
    records the engine left to Python."""
    now = datetime.now(UTC)
    limits = guard.DEFAULT_LIMITS
    left: list[int] = []
    out: dict[str, list[tuple]] = {}
    with db.connect() as conn:
        transaction = conn.begin()  # rolled back: the events staged are not kept
        run = ingest_set._SetRun(conn, str(path), now, limits)
        run.engine = engine
        real = run.map_left
        run.map_left = lambda ords: (left.extend(ords), real(ords))[1]  # type: ignore[method-assign]
        try:
            run.stage(stage.mapped_chunks(str(path), lambda: guard.read_file(path, limits), now,
                                          limits, engine=engine))  # fmt: skip
        except ingest_set._NotSetBased:  # the file needs the record-at-a-time path
            out["refused"] = []
        for name in run.created:
            columns = [
                c[0]
                for c in conn.exec_driver_sql(f"SELECT * FROM {name} LIMIT 0").cursor.description
            ]
            picked = ", ".join(c for c in columns if c != "engine")
            out[name] = conn.exec_driver_sql(f"SELECT {picked} FROM {name} ORDER BY ALL").fetchall()
        run.drop()
        transaction.rollback()
    return out, left


@pytest.mark.parametrize("mode", ["in_order", "shuffled_twice"])
def test_the_engine_stages_the_rows_and_references_python_stages(
    mode: str, account: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr(stage, "CHUNK", 97)
    lines = [line for line in (account / "events.jsonl").read_text().splitlines() if line]
    path = write(tmp_path / "events.jsonl", lines if mode == "in_order" else delivered(lines))
    db = fresh(tmp_path, "a", account)
    python, none_left = staged(path, db, engine=False)
    in_engine, left = staged(path, db, engine=True)

    assert none_left == []
    assert left == []  # every generated snapshot of these types is flattened exactly
    assert sorted(in_engine) == sorted(python)
    for name in python:
        assert in_engine[name] == python[name], name
    # the engine did flatten them: every type it takes is in the file and marked
    kinds = {json.loads(line)["data"]["object"]["object"] for line in lines}
    assert set(ENGINE_OBJECTS) <= kinds
    with db.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM events").scalar() == 0  # rolled back


def _first(account: Path, kind: str) -> dict[str, Any]:
    for line in (account / "events.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["data"]["object"]["object"] == kind:
            return record
    raise AssertionError(kind)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(obj: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for key in parents:
            obj = obj[key]
        obj[last] = value

    return change


def _items(change: Callable[[list[dict[str, Any]]], None]) -> Callable[[dict[str, Any]], None]:
    def apply(obj: dict[str, Any]) -> None:
        change(obj["items"]["data"])

    return apply


def _twice(items: list[dict[str, Any]]) -> None:
    items.append(copy.deepcopy(items[0]))


HOSTILE: dict[str, tuple[str, Callable[[dict[str, Any]], None]]] = {
    "an amount as text": ("payment_intent", _set("amount", "8640")),
    "an amount as a float": ("payment_intent", _set("amount", 86.4)),
    "an amount beyond 64 bits": ("payment_intent", _set("amount", 2**64 + 1)),
    "a time beyond year 9999": ("payment_intent", _set("created", 10**12)),
    "a time as a boolean": ("payment_intent", _set("canceled_at", True)),
    "a required value null": ("payment_intent", _set("status", None)),
    "text as a number": ("payment_intent", _set("description", 42)),
    "an expanded customer": (
        "payment_intent",
        _set(
            "customer",
            {
                "id": "cus_engine1",
                "object": "customer",
                "created": 1_700_000_000,
                "email": None,
                "name": "Ada",
                "currency": "usd",
                "balance": 0,
                "delinquent": False,
                "metadata": {},
                "address": None,
                "phone": None,
                "preferred_locales": [],
                "livemode": False,
            },
        ),
    ),
    "text where an object is expected": ("payment_intent", _set("last_payment_error", "declined")),
    "a currency as a boolean": ("price", _set("currency", True)),
    "metadata that is not an object": ("payment_intent", _set("metadata", "plan")),
    "a deletion marker": ("payment_intent", _set("deleted", True)),
    "a partial list": ("subscription", _set("items.has_more", True)),
    "an item twice": ("subscription", _items(_twice)),
    "an item of another type": (
        "subscription",
        _items(lambda items: items[0].update(object="price")),
    ),
    "an item without an id": ("subscription", _items(lambda items: items[0].pop("id"))),
    "an item quantity as text": (
        "subscription",
        _items(lambda items: items[0].update(quantity="9")),
    ),
    "a payment that is not a payment intent": ("invoice_payment", _set("payment.type", "charge")),
    "an expanded payment intent": (
        "invoice_payment",
        _set("payment.payment_intent", {"id": "pi_x"}),
    ),
    "a boolean as text": ("product", _set("active", "true")),
    "a tax amount as text": ("invoice", _set("total_taxes", [{"amount": "12"}])),
    "taxes that are not a list": ("invoice", _set("total_taxes", {"amount": 12})),
    "a discount amount as a float": ("invoice", _set("total_discount_amounts", [{"amount": 1.5}])),
    "a line parent that is text": (
        "invoice",
        lambda o: o["lines"]["data"][0].update(parent="si_1"),
    ),
    "a line proration as text": (
        "invoice",
        lambda o: o["lines"]["data"][0].update(proration="no", parent=None),
    ),
    "an expanded line price": (
        "invoice",
        lambda o: o["lines"]["data"][0].update(
            pricing={"price_details": {"price": {"id": "price_x", "object": "price"}}}
        ),
    ),
    "locales that are not a list": ("customer", _set("preferred_locales", "en")),
    "an address that is text": ("customer", _set("address", "1 Main St")),
    "an address line as a number": ("customer", _set("address", {"line1": 12})),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_snapshot_the_sql_cannot_flatten_exactly_is_left_to_python(
    case: str, account: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The record is left to Python (which maps it or refuses it), and the file ends
    as it ends with every snapshot mapped in Python: the same counts and tables."""
    kind, change = HOSTILE[case]
    good = _first(account, kind)
    bad = copy.deepcopy(good)
    bad["id"] = "evt_engine_hostile"
    change(bad["data"]["object"])
    assert eligible(kind, json.dumps(bad))
    path = write(tmp_path / "events.jsonl", [json.dumps(good), json.dumps(bad)])

    _, left = staged(path, fresh(tmp_path, "probe", account), engine=True)
    assert left == [1]  # the hostile record, not the good one

    reports: list[IngestReport] = []
    states = []
    for flag in ("1", "0"):
        monkeypatch.setenv("PAYMODEL_INGEST_ENGINE", flag)
        db = fresh(tmp_path, f"engine{flag}", account)
        reports.append(ingest(path, db))
        states.append(state(db))
    on, off = (r.as_dict() for r in reports)
    on.pop("set_based")
    off.pop("set_based")
    assert on == off
    assert states[0] == states[1]


def test_types_outside_the_engine_are_refused_by_name() -> None:
    for kind in ("charge", "refund", "dispute", "payout", "balance_transaction"):
        with pytest.raises(ValueError, match="balance transactions"):
            engine_mapping(kind, "recs", lambda t: t)
    assert not {"charge", "refund", "dispute", "payout"} & set(ENGINE_OBJECTS)
