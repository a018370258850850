"""The marts on a generated account, checked against the OLTP tables and the event log.

One small account (scale 0.02: about 200 customers over 24 months) is generated, loaded
with its events, and built into a warehouse with its marts by ``paymodel olap``'s library
function. MRR is then recomputed without the star (:mod:`paymodel.olap.mrr_reference`:
plain Python over the events and the OLTP rows) and compared, customer by customer.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from paymodel.model.marts import MOVEMENTS
from paymodel.olap import build_warehouse, resolve_pii_key
from paymodel.olap.mrr_reference import (
    month_starts,
    reference_movements,
    subscription_months,
    subscription_mrr,
)
from paymodel.oltp.engines import duckdb_engine
from paymodel.oltp.schema import create_schema
from paymodel.synthetic import generate
from paymodel.synthetic.events import iter_events
from paymodel.synthetic.load import load_into_oltp

pytestmark = pytest.mark.slow


def _load(data_dir: Path, db: Path) -> None:
    """The OLTP tables from the generated Parquet, and ``events`` from ``events.jsonl``."""
    engine = duckdb_engine(db)
    try:
        create_schema(engine)
        load_into_oltp(data_dir, engine)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def account(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("account")
    data, oltp, wh = root / "data", root / "oltp.duckdb", root / "warehouse.duckdb"
    generate(data, scale=0.02, seed=7, progress=False)
    _load(data, oltp)
    report = build_warehouse(oltp, wh, pii_key=resolve_pii_key(demo=True))
    con = duckdb.connect(str(oltp), read_only=True)
    tables = {t: con.sql(f"SELECT * FROM {t}").to_arrow_table().to_pylist()
              for t in ("prices", "discounts", "coupons", "subscriptions", "subscription_items")}  # fmt: skip
    con.close()
    w = duckdb.connect(str(wh), read_only=True)
    marts = {
        name: w.sql(f"SELECT * FROM {name}").to_arrow_table().to_pylist()
        for name in ("mart_mrr_movements", "mart_mrr_bridge", "mart_subscription_item_mrr",
                     "mart_customer_overview", "mart_daily_overview")
    }  # fmt: skip
    sums = (
        "SELECT currency, sum(net), sum(amount) FILTER (reporting_category = 'charge') "
        "FROM {} GROUP BY 1"
    )
    ledger = {
        "fact": {c: (n, s) for c, n, s in w.sql(sums.format("fact_balance_transactions")).fetchall()},
        "fact_no_customer": dict(w.sql("SELECT currency, sum(net) FROM fact_balance_transactions "
                                       "WHERE customer_id IS NULL GROUP BY 1").fetchall()),
    }  # fmt: skip
    o = duckdb.connect(str(oltp), read_only=True)
    ledger["oltp"] = {
        c: (n, s) for c, n, s in o.sql(sums.format("balance_transactions")).fetchall()
    }
    refunded_oltp = dict(o.sql(
        "SELECT ip.invoice_id, sum(r.amount) FROM invoice_payments ip "
        "JOIN charges ch ON ch.payment_intent_id = ip.payment_intent_id "
        "JOIN refunds r ON r.charge_id = ch.id AND r.status = 'succeeded' "
        "WHERE ip.status = 'paid' GROUP BY 1"
    ).fetchall())  # fmt: skip
    o.close()
    details = {
        "rows": w.sql(
            "SELECT (SELECT count(*) FROM fact_balance_transactions), count(*), "
            "count(DISTINCT balance_transaction_id) FROM mart_balance_transactions"
        ).fetchone(),
        "unsettled": w.sql(
            "SELECT count(*) FROM mart_balance_transactions WHERE "
            "reporting_category IN ('charge', 'refund', 'dispute', 'dispute_reversal') "
            "AND customer_facing_amount IS NULL"
        ).fetchone()[0],
        "payouts": w.sql(
            "SELECT p.payout_id, p.amount, r.net, -m.amount, r.moves FROM fact_payouts p "
            "LEFT JOIN (SELECT payout_id, sum(net) AS net, min(payout_movement) AS moves "
            "FROM mart_payout_reconciliation "
            "GROUP BY 1) r USING (payout_id) LEFT JOIN fact_balance_transactions m "
            "ON m.source_id = p.payout_id AND m.reporting_category = 'payout' "
            "WHERE p.automatic AND p.status = 'paid'"
        ).fetchall(),
        "invoices": w.sql(
            "SELECT (SELECT count(*) FROM fact_invoice_lines), "
            "(SELECT count(*) FROM mart_invoice_line_details), "
            "(SELECT count(*) FROM mart_invoice_details WHERE "
            "amount_remaining <> amount_due - amount_paid)"
        ).fetchone(),
        "refunded_oltp": refunded_oltp,
        "refunded_mart": dict(w.sql(
            "SELECT invoice_id, amount_refunded FROM mart_invoice_details "
            "WHERE amount_refunded <> 0").fetchall()),
        "refunded_lines": w.sql(
            "SELECT count(*), count(*) FILTER (l.invoice_amount_refunded <> i.amount_refunded "
            "OR l.invoice_amount_paid_net <> i.amount_paid - i.amount_refunded) "
            "FROM mart_invoice_line_details l JOIN mart_invoice_details i USING (invoice_id) "
            "WHERE i.amount_refunded <> 0").fetchone(),
        "refunded_subscriptions": w.sql(
            "SELECT (SELECT sum(amount_refunded) FROM mart_subscription_details), "
            "(SELECT sum(amount_refunded) FROM mart_invoice_details "
            "WHERE subscription_id IS NOT NULL)").fetchone(),
    }  # fmt: skip
    months = sorted(r[0] for r in w.sql("SELECT DISTINCT month_start FROM dim_date").fetchall())
    months = [m for m in months if m <= report.as_of.date()]
    w.close()
    return {
        "ledger": ledger,
        "data": data,
        "as_of": report.as_of,
        "months": months,
        "details": details,
        **tables,
        **marts,
    }


def _reference(account: dict[str, Any]) -> list[Any]:
    rows = subscription_months(
        iter_events(account["data"] / "events.jsonl"), account["prices"], account["discounts"],
        account["coupons"], account["as_of"], first_month=account["months"][0],
    )  # fmt: skip
    return reference_movements(rows, account["months"])


def test_movements_equal_the_recomputation_from_the_event_log(account: dict[str, Any]) -> None:
    mart = sorted(
        (r["customer_id"], r["currency"], r["month"], r["opening_mrr"], r["closing_mrr"],
         r["movement"]) for r in account["mart_mrr_movements"]
    )  # fmt: skip
    ref = sorted(
        (m.customer_id, m.currency, m.month, m.opening_mrr, m.closing_mrr, m.movement)
        for m in _reference(account)
    )
    assert len(mart) > 1000
    assert mart == ref
    assert {r[5] for r in mart} >= {"new", "churn", "none", "expansion"}


def test_last_month_equals_the_oltp_rows_as_they_stand(account: dict[str, Any]) -> None:
    as_of = int(account["as_of"].timestamp())
    prices = {p["id"]: p for p in account["prices"]}
    coupons = {c["id"]: c for c in account["coupons"]}
    items = defaultdict(list)
    for it in account["subscription_items"]:
        items[it["subscription_id"]].append({"price": it["price_id"], "quantity": it["quantity"]})
    now: dict[str, int] = defaultdict(int)
    for s in account["subscriptions"]:
        snap = {"id": s["id"], "customer": s["customer_id"], "status": s["status"],
                "trial_end": s["trial_end"], "items": {"data": items[s["id"]]}}  # fmt: skip
        now[s["customer_id"]] += subscription_mrr(
            snap, prices, account["discounts"], coupons, as_of
        )
    last = account["months"][-1]
    mart = {r["customer_id"]: r["closing_mrr"] for r in account["mart_mrr_movements"]
            if r["month"] == last}  # fmt: skip
    assert {c: v for c, v in now.items() if v} == {c: v for c, v in mart.items() if v}
    assert sum(mart.values()) > 0


def test_bridge_identity_every_month_and_currency(account: dict[str, Any]) -> None:
    bridge = account["mart_mrr_bridge"]
    assert len({r["currency"] for r in bridge}) >= 3, "a multi-currency account"
    for r in bridge:
        o, n, e, re, c, x, z = (r[k] for k in ("opening_mrr", "new_mrr", "expansion_mrr",
                                "reactivation_mrr", "contraction_mrr", "churned_mrr", "closing_mrr"))  # fmt: skip
        assert o + n + e + re - c - x == z, (r["month"], r["currency"])
        rep = [Decimal(r[f"{k}_reporting"]) for k in ("opening_mrr", "new_mrr", "expansion_mrr",
               "reactivation_mrr", "contraction_mrr", "churned_mrr", "closing_mrr")]  # fmt: skip
        assert rep[0] + rep[1] + rep[2] + rep[3] - rep[4] - rep[5] == rep[6]
    # a month's opening is the previous month's closing, per currency
    by = {(r["currency"], r["month"]): r for r in bridge}
    for (cur, month), r in by.items():
        prev = month_starts(month.replace(day=1) - dt.timedelta(days=1), month)[0]
        if (cur, prev) in by:
            assert r["opening_mrr"] == by[(cur, prev)]["closing_mrr"], (cur, month)


def test_no_dbt_stripe_mistakes_on_the_account(account: dict[str, Any]) -> None:
    """Metered prices are 0, nothing past the as-of month, every movement kind is known."""
    metered = {p["id"] for p in account["prices"] if p["recurring_usage_type"] == "metered"}
    items = account["mart_subscription_item_mrr"]
    on_metered = [r for r in items if r["price_id"] in metered]
    assert on_metered, "the account has metered items"
    assert all(r["mrr"] == 0 for r in on_metered)
    last = account["months"][-1]
    assert last == account["as_of"].date().replace(day=1)
    assert max(r["month"] for r in items) == last
    assert {r["movement"] for r in account["mart_mrr_movements"]} <= set(MOVEMENTS)
    keys = [(r["subscription_item_id"], r["month"]) for r in items]
    assert len(keys) == len(set(keys)), "one row per item and month"


def test_overviews_reconcile_with_the_facts_and_the_oltp(account: dict[str, Any]) -> None:
    """Net and sales per currency: customer overview + customerless = facts = OLTP = daily."""
    ledger = account["ledger"]
    assert ledger["fact"] == ledger["oltp"]
    per_customer: dict[str, int] = defaultdict(int)
    for r in account["mart_customer_overview"]:
        per_customer[r["currency"]] += r["total_net"]
    daily_net: dict[str, int] = defaultdict(int)
    daily_sales: dict[str, int] = defaultdict(int)
    for r in account["mart_daily_overview"]:
        daily_net[r["currency"]] += r["net"]
        daily_sales[r["currency"]] += r["sales"]
    for cur, (net, sales) in ledger["oltp"].items():
        assert per_customer[cur] + ledger["fact_no_customer"].get(cur, 0) == net, cur
        assert (daily_net[cur], daily_sales[cur]) == (net, sales or 0), cur
    last = max(r["date"] for r in account["mart_daily_overview"])
    assert last == account["as_of"].date()
    balances = {r["currency"]: r["running_balance"] for r in account["mart_daily_overview"]
                if r["date"] == last}  # fmt: skip
    # failed attempts are in the charge's currency; the ledger settles in another
    assert {c: b for c, b in balances.items() if b} == {
        c: n for c, (n, _) in ledger["oltp"].items()
    }


def test_detail_marts_on_the_account(account: dict[str, Any]) -> None:
    d = account["details"]
    facts, rows, distinct = d["rows"]
    assert facts > 0
    assert rows == distinct == facts, "one row per balance transaction"
    assert d["unsettled"] == 0, "every customer movement has its customer-facing amount"
    payouts = d["payouts"]
    assert len(payouts) > 0, "the account has paid automatic payouts"
    for payout_id, amount, settled, movement, in_mart in payouts:
        assert settled == amount == movement == -in_mart, payout_id
    lines, line_rows, wrong = d["invoices"]
    assert lines > 0
    assert line_rows == lines, "one row per invoice line"
    assert wrong == 0, "amount_remaining = amount_due - amount_paid"


def test_invoice_marts_carry_the_refunds_of_the_charge_that_paid_them(
    account: dict[str, Any],
) -> None:
    """Refunded per invoice, through the star, equals the OLTP's succeeded refunds of the
    charges of the payment intent its invoice payment names; its lines repeat the invoice's
    figure without multiplying rows, and subscriptions add up their invoices'."""
    d = account["details"]
    assert len(d["refunded_oltp"]) > 3, "the account has refunded invoice payments"
    assert d["refunded_mart"] == d["refunded_oltp"]
    lines, wrong = d["refunded_lines"]
    assert lines >= len(d["refunded_oltp"])
    assert wrong == 0, "each line carries its invoice's refunded and net figures"
    by_subscription, by_invoice = d["refunded_subscriptions"]
    assert by_subscription == by_invoice > 0
