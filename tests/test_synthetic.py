"""The synthetic data generator: determinism, realism, the events contract, documents.

One dataset (scale 0.05, seed 5, 24 months) is generated per module and read with
DuckDB; each realism claim of the issue is a query over it. The events contract is
checked twice: the last snapshot of every object equals its Parquet row
(``from_stripe_object``), and replaying ``events.jsonl`` with ``paymodel.oltp.ingest``
into a fresh database rebuilds the tables exactly.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.dataset as ds
import pytest
import sqlalchemy as sa

from paymodel.cli import main
from paymodel.model.stripe import from_stripe_object
from paymodel.oltp.engines import duckdb_engine
from paymodel.oltp.ingest import ensure_schema, ingest
from paymodel.oltp.invariants import assert_invariants
from paymodel.synthetic import CHUNKED_TABLES, TABLES, generate
from paymodel.synthetic.events import iter_events
from paymodel.synthetic.load import load_into_oltp


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synthetic")
    generate(out, scale=0.05, seed=5, progress=False)
    return out


@pytest.fixture(scope="module")
def db(data: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for t in TABLES:
        con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{data / t}/*.parquet')")
    return con


def _q(db: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return db.execute(sql).fetchall()


def _one(db: duckdb.DuckDBPyConnection, sql: str) -> Any:
    return db.execute(sql).fetchone()[0]  # type: ignore[index]


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# ------------------------------------------------------------------ determinism


def test_same_seed_is_byte_identical_and_another_seed_differs(tmp_path: Path) -> None:
    """Every output file (each table's parts, events, documents) changes with the seed, and only then."""
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(a, scale=0.01, seed=3, progress=False)
    generate(b, scale=0.01, seed=3, progress=False)
    generate(c, scale=0.01, seed=4, progress=False)
    da, db_, dc = _digests(a), _digests(b), _digests(c)
    assert "events.jsonl" in da
    assert "documents/feedback.jsonl" in da
    assert {k.split("/")[0] for k in da} >= set(TABLES)
    assert da == db_
    assert set(da) == set(dc)
    same = sorted(k for k in da if da[k] == dc[k])
    # reference data and the configured coupon codes: no randomness in them
    assert same == ["coupons/part-00000.parquet", "currencies/part-00000.parquet"]


def test_every_random_stream_is_seeded_by_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each stream comes from the run's seed: a stream seeded with a constant repeats across seeds."""
    import sys

    from paymodel.synthetic import primitives

    calls: list[tuple[int, str]] = []
    original = primitives.rng

    def recording(seed: int, stream: str, chunk: int = 0):  # type: ignore[no-untyped-def]
        calls.append((seed, stream))
        return original(seed, stream, chunk)

    for name, module in list(sys.modules.items()):
        if name.startswith("paymodel.synthetic") and getattr(module, "rng", None) is original:
            monkeypatch.setattr(module, "rng", recording)
    generate(tmp_path, scale=0.005, seed=123, months=3, progress=False)
    assert {seed for seed, _ in calls} == {123}
    # "pools" is a reserved name: its place in the list keeps the later streams' keys
    assert {stream for _, stream in calls} == set(primitives._STREAMS) - {"pools"}


def test_cohorts_bound_the_work_not_the_signups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Smaller cohorts write more files; sign-ups are drawn once for the run, before chunking."""
    from paymodel.synthetic import config

    generate(tmp_path / "big", scale=0.004, seed=9, months=6, progress=False, documents=False)
    monkeypatch.setattr(config, "CHUNK_CUSTOMERS", 20)
    generate(tmp_path / "small", scale=0.004, seed=9, months=6, progress=False, documents=False)
    big = ds.dataset(tmp_path / "big" / "customers").to_table().column("created").to_pylist()
    small = ds.dataset(tmp_path / "small" / "customers").to_table().column("created").to_pylist()
    assert len(big) == 40
    assert sorted(big) == sorted(small)
    assert len(list((tmp_path / "small" / "customers").glob("*.parquet"))) == 2


def test_cli_generate_writes_the_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["generate", "--scale", "0.002", "--seed", "1", "--out", str(tmp_path),
                 "--months", "2", "--start", "2025-03-01", "--no-progress"])  # fmt: skip
    assert code == 0
    assert "customers" in capsys.readouterr().out
    created = ds.dataset(tmp_path / "customers").to_table().column("created").to_pylist()
    assert min(created).date() >= date(2025, 3, 1)
    assert max(created).date() < date(2025, 5, 1)


@pytest.mark.parametrize("seed", range(6))
def test_a_single_customer_is_a_valid_dataset(tmp_path: Path, seed: int) -> None:
    """Edge cases: empty cohorts of subscriptions, invoices or charges still load and replay."""
    generate(tmp_path, scale=0.0001, seed=seed, months=2, progress=False, documents=False)
    engine = duckdb_engine()
    ensure_schema(engine)
    assert load_into_oltp(tmp_path, engine)["customers"] == 1
    assert_invariants(engine)
    engine.dispose()
    assert all(e["object"] == "event" for e in iter_events(tmp_path / "events.jsonl"))


def test_rejects_a_nonsense_scale(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="scale -1"):
        generate(tmp_path, scale=-1)


# ------------------------------------------------------------------ realism


def test_countries_currencies_and_exponents(db: duckdb.DuckDBPyConnection) -> None:
    assert _one(db, "SELECT COUNT(DISTINCT country) FROM customer_addresses") >= 10
    currencies = {r[0] for r in _q(db, "SELECT DISTINCT currency FROM invoices")}
    assert {"usd", "eur", "jpy", "kwd"} <= currencies
    # JPY amounts are whole yen in round figures; KWD amounts end in 0
    assert _one(db, "SELECT unit_amount FROM prices WHERE lookup_key = 'starter_month_jpy'") % 100 == 0
    assert _one(db, "SELECT COUNT(*) FROM charges WHERE currency = 'kwd' AND amount % 10 <> 0") == 0
    assert _one(db, "SELECT COUNT(*) FROM charges WHERE currency = 'kwd'") > 0


def test_signups_grow_and_have_seasonality(db: duckdb.DuckDBPyConnection) -> None:
    by_year = dict(_q(db, "SELECT year(created), COUNT(*) FROM customers GROUP BY 1"))
    assert by_year[2025] > 1.3 * by_year[2024]
    weekday = _one(db, "SELECT COUNT(*) FROM customers WHERE isodow(created) <= 5") / 5
    weekend = _one(db, "SELECT COUNT(*) FROM customers WHERE isodow(created) > 5") / 2
    assert weekend < 0.8 * weekday


def test_catalog_has_every_kind_of_price(db: duckdb.DuckDBPyConnection) -> None:
    kinds = set(_q(db, "SELECT type, recurring_interval, recurring_usage_type FROM prices"))
    assert {("recurring", "month", "licensed"), ("recurring", "year", "licensed"),
            ("recurring", "month", "metered"), ("one_time", None, None)} <= kinds  # fmt: skip
    assert _one(db, "SELECT MAX(quantity) FROM subscription_items") > 3  # seats
    metered = _one(db, "SELECT COUNT(*) FROM invoice_line_items l JOIN prices p ON p.id = l.price_id "
                       "WHERE p.recurring_usage_type = 'metered'")  # fmt: skip
    assert metered > 0


def test_coupons_once_repeating_forever_are_used(db: duckdb.DuckDBPyConnection) -> None:
    used = {r[0] for r in _q(db, "SELECT DISTINCT c.duration FROM discounts d JOIN coupons c ON c.id = d.coupon_id")}
    assert used == {"once", "repeating", "forever"}
    assert _one(db, "SELECT COUNT(*) FROM invoices WHERE discount_amount > 0") > 0


def test_subscription_lifecycles(db: duckdb.DuckDBPyConnection) -> None:
    statuses = {r[0] for r in _q(db, "SELECT DISTINCT status FROM subscriptions")}
    assert {"active", "canceled", "trialing", "incomplete_expired"} <= statuses
    assert statuses & {"past_due", "unpaid"}
    # trials that convert and trials that lapse
    assert _one(db, "SELECT COUNT(*) FROM subscriptions WHERE trial_end IS NOT NULL AND status = 'active'") > 0
    assert _one(db, "SELECT COUNT(*) FROM subscriptions WHERE trial_end IS NOT NULL AND ended_at = trial_end") > 0
    # cancellation immediately and at period end, and for failed payments
    assert _one(db, "SELECT COUNT(*) FROM subscriptions WHERE status = 'canceled' AND cancel_at_period_end") > 0
    assert _one(db, "SELECT COUNT(*) FROM subscriptions WHERE status = 'canceled' AND NOT cancel_at_period_end "
                    "AND cancellation_reason = 'cancellation_requested'") > 0  # fmt: skip
    assert _one(db, "SELECT COUNT(*) FROM subscriptions WHERE cancellation_reason = 'payment_failed'") > 0
    # churned customers who come back
    assert _one(db, "SELECT COUNT(*) FROM (SELECT customer_id FROM subscriptions GROUP BY 1 HAVING COUNT(*) > 1)") > 0


def test_prorations_and_dunning(db: duckdb.DuckDBPyConnection) -> None:
    assert _one(db, "SELECT COUNT(*) FROM invoice_line_items WHERE proration AND amount < 0") > 0
    assert _one(db, "SELECT COUNT(*) FROM invoice_line_items WHERE proration AND amount > 0") > 0
    assert _one(db, "SELECT COUNT(*) FROM invoices WHERE billing_reason = 'subscription_update'") > 0
    # recovered dunning: a paid renewal after failed attempts
    assert _one(db, "SELECT COUNT(*) FROM invoices WHERE status = 'paid' AND attempt_count > 1") > 0
    assert _one(db, "SELECT COUNT(*) FROM invoices WHERE status = 'uncollectible'") > 0
    assert _one(db, "SELECT COUNT(*) FROM invoices WHERE billing_reason = 'manual'") > 0


def test_declines_3ds_and_risk(db: duckdb.DuckDBPyConnection) -> None:
    failed, total = _q(db, "SELECT COUNT(*) FILTER (WHERE status = 'failed'), COUNT(*) FROM charges")[0]
    assert 0.01 < failed / total < 0.12
    codes = {r[0] for r in _q(db, "SELECT DISTINCT failure_code FROM charges WHERE failure_code IS NOT NULL")}
    assert codes <= {"card_declined", "expired_card", "incorrect_cvc", "processing_error", "authentication_required"}
    reasons = {r[0] for r in _q(db, "SELECT DISTINCT outcome_reason FROM charges WHERE failure_code = 'card_declined'")}
    assert {"insufficient_funds", "generic_decline", "do_not_honor"} <= reasons
    assert _one(db, "SELECT COUNT(*) FROM charges WHERE outcome_type = 'blocked' "
                    "AND outcome_reason IS DISTINCT FROM 'highest_risk_level'") == 0  # fmt: skip
    # a payment intent's last error carries both: Stripe's error code and the issuer's decline code
    assert _one(db, "SELECT COUNT(*) FROM payment_intents WHERE last_payment_error_code = 'card_declined' "
                    "AND last_payment_error_decline_code = 'insufficient_funds'") > 0  # fmt: skip
    assert _one(db, "SELECT COUNT(*) FROM charges WHERE three_d_secure_result = 'authenticated'") > 0
    fraud = _one(db, "SELECT AVG(c.outcome_risk_score) FROM charges c JOIN disputes d ON d.charge_id = c.id "
                     "WHERE d.reason = 'fraudulent'")  # fmt: skip
    other = _one(db, "SELECT AVG(outcome_risk_score) FROM charges WHERE NOT disputed")
    assert fraud > other + 20


def test_refunds_disputes_fees_and_fx(db: duckdb.DuckDBPyConnection) -> None:
    assert _one(db, "SELECT COUNT(*) FROM charges WHERE refunded") > 0
    assert _one(db, "SELECT COUNT(*) FROM charges WHERE amount_refunded > 0 AND NOT refunded") > 0
    assert {r[0] for r in _q(db, "SELECT DISTINCT status FROM disputes")} >= {"won", "lost"}
    assert _one(db, "SELECT MIN(fee) FROM balance_transactions WHERE reporting_category = 'dispute'") == 1500
    # a converted international charge pays all three fees
    assert _one(db, "SELECT MAX(n) FROM (SELECT COUNT(*) AS n FROM balance_transaction_fee_details "
                    "GROUP BY balance_transaction_id)") == 3
    assert _one(db, "SELECT COUNT(*) FROM balance_transactions WHERE currency <> 'usd'") == 0
    assert _one(db, "SELECT COUNT(*) FROM balance_transactions WHERE exchange_rate IS NOT NULL") > 0
    days = _one(db, "SELECT COUNT(DISTINCT rate_date) FROM fx_rates")
    assert _one(db, "SELECT COUNT(*) FROM fx_rates") == days * _one(db, "SELECT COUNT(DISTINCT currency) FROM fx_rates")
    # the domestic fee is 2.9% + 30 cents
    fee, amount = _q(db, "SELECT bt.fee, bt.amount FROM balance_transactions bt JOIN charges c ON c.id = bt.charge_id "
                         "JOIN payment_methods pm ON pm.id = c.payment_method_id "
                         "WHERE c.currency = 'usd' AND pm.card_country = 'US' LIMIT 1")[0]  # fmt: skip
    assert fee == (amount * 29 + 500) // 1000 + 30


def test_refunds_settle_to_minus_their_charge_in_the_settlement_currency(
    db: duckdb.DuckDBPyConnection,
) -> None:
    """A full refund's balance transactions add up to minus the charge's, whatever its currency."""
    rows = _q(db, """
        SELECT c.id, c.currency, c.refunded, c.amount_refunded, c.amount, cb.amount,
               SUM(rb.amount) AS back
        FROM charges c JOIN balance_transactions cb ON cb.charge_id = c.id
        JOIN refunds r ON r.charge_id = c.id JOIN balance_transactions rb ON rb.refund_id = r.id
        WHERE r.status = 'succeeded' GROUP BY ALL""")  # fmt: skip
    full = [r for r in rows if r[2]]
    assert len({r[1] for r in full if r[1] != "usd"}) >= 2, "full refunds in other currencies"
    assert [r for r in full if r[6] != -r[5]] == []
    partial = [r for r in rows if not r[2]]
    assert partial
    assert [r for r in partial if not -r[5] < r[6] < 0] == []


def test_list_prices_are_worth_about_the_same_in_every_currency(
    db: duckdb.DuckDBPyConnection,
) -> None:
    """A price in yen (no minor unit) or dinars (three decimals) is worth its dollar price.

    Catches a price scaled by the wrong exponent (x100 for JPY is still a multiple of 100).
    """
    ratios = _q(db, """
        WITH rate AS (SELECT currency, AVG(usd_per_unit) AS usd FROM fx_rates GROUP BY 1),
        priced AS (
            SELECT p.product_id, p.recurring_interval, p.recurring_usage_type, p.currency,
                   p.unit_amount / POWER(10, cu.exponent) * COALESCE(rate.usd, 1) AS usd
            FROM prices p JOIN currencies cu ON cu.code = p.currency
            LEFT JOIN rate ON rate.currency = p.currency WHERE p.active)
        SELECT o.currency, o.usd / u.usd FROM priced o JOIN priced u
          ON u.currency = 'usd' AND u.product_id = o.product_id
         AND u.recurring_interval IS NOT DISTINCT FROM o.recurring_interval
         AND u.recurring_usage_type IS NOT DISTINCT FROM o.recurring_usage_type
        WHERE o.currency <> 'usd'""")  # fmt: skip
    assert {"jpy", "kwd", "eur"} <= {c for c, _ in ratios}
    off = [(c, round(float(r), 2)) for c, r in ratios if not 0.5 < r < 2]
    assert off == []


def test_ids_look_like_stripe(db: duckdb.DuckDBPyConnection) -> None:
    for table, prefix in (("customers", "cus_"), ("charges", "ch_"), ("invoices", "in_"), ("subscriptions", "sub_")):
        bad = _one(db, f"SELECT COUNT(*) FROM {table} WHERE NOT regexp_full_match(id, '{prefix}[0-9A-Za-z]{{14}}')")
        assert bad == 0, table


def test_files_are_sorted_by_id(data: Path) -> None:
    for table in ("customers", "charges", "invoices"):
        ids = ds.dataset(data / table).to_table().column("id").to_pylist()
        assert ids == sorted(ids)


# ------------------------------------------------------------------ events


def _key(table: str, row: dict[str, Any]) -> tuple[Any, ...]:
    if "id" in row:
        return (row["id"],)
    if table == "customer_addresses":
        return (row["customer_id"],)
    return (row["balance_transaction_id"], row["line"])


def test_events_are_ordered_and_last_snapshots_equal_the_tables(data: Path) -> None:
    last: dict[tuple[str, str], dict[str, Any]] = {}
    seen_at: dict[tuple[str, str], int] = {}
    created: set[tuple[str, str]] = set()
    previous = -1
    ids = set()
    for event in iter_events(data / "events.jsonl"):
        assert event["object"] == "event"
        assert event["id"].startswith("evt_")
        assert event["id"] not in ids
        ids.add(event["id"])
        assert event["created"] >= previous
        previous = event["created"]
        obj = event["data"]["object"]
        key = (obj["object"], obj["id"])
        assert event["created"] > seen_at.get(key, -1), key
        seen_at[key] = event["created"]
        if event["type"].endswith((".created", ".attached", ".succeeded", ".failed", ".paid")) and key not in last:
            created.add(key)
        elif key in last:
            assert "previous_attributes" in event["data"], event["type"]
        # every snapshot is a valid object on its own (a canceled subscription that a
        # later retry "reactivated" broke ck_subscriptions_ended here once)
        assert from_stripe_object(obj), key
        for parent in ("customer", "invoice", "charge", "payment_intent"):
            pid = obj.get(parent)
            if isinstance(pid, str) and obj["object"] != parent:
                assert (parent, pid) in last, (event["type"], parent, pid)
        last[key] = obj
    rows: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = defaultdict(dict)
    for obj in last.values():
        for table, row in from_stripe_object(obj):
            rows[table][_key(table, row)] = row
    assert set(rows) >= set(CHUNKED_TABLES) - {"customer_addresses"}
    for table, got in rows.items():
        expected = {}
        for row in ds.dataset(data / table).to_table().to_pylist():
            if "metadata" in row:
                row["metadata"] = json.loads(row["metadata"]) if row["metadata"] else None
            expected[_key(table, row)] = row
        assert got == expected, table


def test_a_canceled_subscription_stays_canceled_in_its_events(tmp_path: Path) -> None:
    """No status change after a subscription ended, even when a retry later pays its
    last invoice: seed 27 at this scale once emitted a fraudster's subscription, canceled
    when the dispute came, then "active" again (which broke ck_subscriptions_ended)."""
    generate(tmp_path, scale=0.05, seed=27, months=24, progress=False, documents=False)
    ended: dict[str, int] = {}
    subscriptions = 0
    for event in iter_events(tmp_path / "events.jsonl"):
        obj = event["data"]["object"]
        if obj["object"] != "subscription":
            continue
        subscriptions += 1
        assert from_stripe_object(obj), obj["id"]  # every snapshot is valid
        if obj["id"] in ended:
            assert obj["status"] in ("canceled", "incomplete_expired"), (obj["id"], event["type"])
        if obj["ended_at"] is not None:
            ended[obj["id"]] = obj["ended_at"]
    assert subscriptions > 1000
    assert len(ended) > 50


def test_replaying_events_rebuilds_the_tables(tmp_path: Path) -> None:
    generate(tmp_path, scale=0.01, seed=8, months=6, progress=False, documents=False)
    replayed = duckdb_engine()
    ensure_schema(replayed)
    load_into_oltp(tmp_path, replayed, tables=("fx_rates",))
    report = ingest(tmp_path / "events.jsonl", replayed)
    assert report.quarantined == 0
    assert report.pending == 0
    loaded = duckdb_engine()
    ensure_schema(loaded)
    load_into_oltp(tmp_path, loaded)
    for table in TABLES:
        q = sa.text(f"SELECT * FROM {table} ORDER BY ALL")
        with replayed.connect() as a, loaded.connect() as b:
            assert a.execute(q).fetchall() == b.execute(q).fetchall(), table
    assert_invariants(replayed)
    # at-least-once delivery in no order: shuffled, with duplicates, gives the same tables
    events = list(iter_events(tmp_path / "events.jsonl"))
    random.Random(0).shuffle(events)
    shuffled = duckdb_engine()
    ensure_schema(shuffled)
    load_into_oltp(tmp_path, shuffled, tables=("fx_rates",))
    ingest(events + events[: len(events) // 3], shuffled)
    for table in CHUNKED_TABLES:
        q = sa.text(f"SELECT * FROM {table} ORDER BY ALL")
        with shuffled.connect() as a, loaded.connect() as b:
            assert a.execute(q).fetchall() == b.execute(q).fetchall(), table
    for engine in (replayed, loaded, shuffled):
        engine.dispose()


# ------------------------------------------------------------------ documents


def test_documents_relate_to_the_tables(data: Path, db: duckdb.DuckDBPyConnection) -> None:
    ev = db.execute(f"SELECT * FROM read_json_auto('{data}/documents/behaviour_events.jsonl')").fetch_arrow_table()
    assert set(ev.column_names) >= {"customer_id", "session_id", "timestamp", "event", "page", "properties"}
    fb = db.execute(f"SELECT * FROM read_json_auto('{data}/documents/feedback.jsonl')").fetch_arrow_table()
    assert set(fb.column_names) >= {"customer_id", "created", "channel", "rating", "text"}
    db.register("ev", ev)
    db.register("fb", fb)
    assert _one(db, "SELECT COUNT(*) FROM ev WHERE customer_id NOT IN (SELECT id FROM customers)") == 0
    # every voluntary cancellation is preceded by the cancel flow and followed by a survey
    cancels = _one(db, "SELECT COUNT(DISTINCT customer_id) FROM subscriptions "
                       "WHERE cancellation_reason = 'cancellation_requested'")  # fmt: skip
    flows = _one(db, "SELECT COUNT(DISTINCT customer_id) FROM ev WHERE event = 'cancel_flow_started'")
    surveys = _one(db, "SELECT COUNT(DISTINCT customer_id) FROM fb WHERE channel = 'cancellation_survey'")
    assert cancels > 0
    assert flows >= 0.9 * cancels
    assert surveys >= 0.9 * cancels
    # NPS of customers still active is higher than of those who canceled (engagement drives both)
    stay, leave = _q(db, """
        WITH leavers AS (SELECT customer_id FROM subscriptions WHERE cancellation_reason = 'cancellation_requested'),
             stayers AS (SELECT customer_id FROM subscriptions WHERE status = 'active'
                         AND customer_id NOT IN (SELECT customer_id FROM leavers))
        SELECT AVG(rating) FILTER (WHERE customer_id IN (SELECT customer_id FROM stayers)),
               AVG(rating) FILTER (WHERE customer_id IN (SELECT customer_id FROM leavers))
        FROM fb WHERE channel = 'nps_survey'""")[0]
    assert stay > leave
