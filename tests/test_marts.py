"""The marts on a hand-built star: known answers for every metric, the columns the model
declares, and the same rows on DuckDB, PostgreSQL and PySpark.

The star below is a handful of rows typed exactly like the warehouse model declares its
tables (every other column NULL), so the marts are checked against the star's contract.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import ibis
import pandas as pd
import pyarrow as pa
import pytest

from paymodel.model.marts import MARTS, METRICS
from paymodel.model.oltp import OLTP
from paymodel.model.warehouse import WAREHOUSE
from paymodel.olap import metrics
from paymodel.olap.marts import STAR_INPUTS, mart_expressions
from paymodel.olap.mrr import mrr_bridge
from paymodel.olap.transforms import BuildParams, _logical_dtype

UTC = dt.UTC
JAN, FEB, MAR = dt.date(2024, 1, 1), dt.date(2024, 2, 1), dt.date(2024, 3, 1)
PARAMS = BuildParams(dt.datetime(2024, 3, 31, 12, tzinfo=UTC), "usd", 1)


def _typed(table_name: str, rows: list[dict[str, Any]], model: Any = WAREHOUSE) -> ibis.Table:
    """A memtable with every column of the model's table, typed as declared.

    Decimal columns the rows leave out are 0, not NULL: Ibis 12's PySpark backend maps
    ``Decimal`` over a memtable's decimal columns and fails on NULL.
    """
    table = model.table(table_name)
    schema = ibis.schema({c.name: _logical_dtype(c).copy(nullable=True) for c in table.columns})
    zero = {c.name: Decimal(0) for c in table.columns if c.type.sql == "decimal"}
    full = [{c: row.get(c, zero.get(c)) for c in table.column_names} for row in rows]
    return ibis.memtable(pa.Table.from_pylist(full, schema=schema.to_pyarrow()))


def _t(month: int, day: int) -> dt.datetime:
    return dt.datetime(2024, month, day, 12, tzinfo=UTC)


def _attempt(cid: str, pm: str | None, outcome: str, success: bool, captured: int = 0,
             refunded: int = 0, disputed: bool = False, score: int | None = None,
             intent: str | None = None) -> dict:  # fmt: skip
    return {
        "charge_id": cid, "payment_intent_id": intent, "payment_method_key": pm,
        "payment_outcome_key": outcome,
        "currency": "usd", "created": _t(1, 10), "is_success": success, "is_disputed": disputed,
        "amount": max(captured, 1000), "amount_captured": captured, "amount_refunded": refunded,
        "risk_score": score, "customer_id": "cus_1",
    }  # fmt: skip


def _outcome(key: str, status: str, network: str, risk: str, failure: str) -> dict:
    return {"payment_outcome_key": key, "charge_status": status, "network_status": network,
            "risk_level": risk, "failure_code": failure, "outcome_type": "authorized"}  # fmt: skip


def _txn(tid: str, category: str, customer: str | None, day: dt.date, amount: int,
         fee: int, source: str | None = None, charge: str | None = None,
         payout: str | None = None) -> dict:  # fmt: skip
    return {"balance_transaction_id": tid, "reporting_category": category, "type": category,
            "customer_id": customer, "created_date_key": int(f"{day:%Y%m%d}"),
            "currency": "usd", "amount": amount, "fee": fee, "net": amount - fee,
            "source_id": source, "charge_id": charge, "payout_id": payout,
            "status": "available", "reporting_currency": "usd",
            "net_reporting": Decimal(amount - fee) / 100}  # fmt: skip


def _line(lid: str, inv: str, sub: str | None, customer: str, status: str, amount: int,
          discount: int = 0, proration: bool = False, intent: str | None = None) -> dict:  # fmt: skip
    return {"invoice_line_item_id": lid, "invoice_id": inv, "subscription_id": sub,
            "payment_intent_id": intent,
            "customer_id": customer, "invoice_status": status, "amount": amount,
            "discount_amount": discount, "proration": proration, "currency": "usd",
            "billing_reason": "subscription_cycle", "created_date_key": 20240201,
            "quantity": 1}  # fmt: skip


def _item(item: str, sub: str, customer: str, month: dt.date, status: str, mrr: int) -> dict:
    return {
        "subscription_item_id": item, "subscription_id": sub, "customer_id": customer,
        "month": month, "status": status, "mrr": mrr, "quantity": 1, "price_id": "price_1",
        "product_id": "prod_1", "currency": "usd",
    }  # fmt: skip


def star() -> dict[str, ibis.Table]:
    """Five charges, three disputes, four intents, three customers' subscriptions."""
    days = pd.date_range("2024-01-01", "2024-05-31").date  # dim_date runs past the as-of
    return {
        "dim_date": _typed("dim_date", [
            {"date": d, "month_start": d.replace(day=1), "date_key": int(f"{d:%Y%m%d}"),
             "iso_year": d.isocalendar()[0], "iso_week": d.isocalendar()[1]} for d in days]),
        "fact_balance_transactions": _typed("fact_balance_transactions", [
            _txn("txn_1", "charge", "cus_1", dt.date(2024, 1, 10), 1000, 59,
                 source="ch_1", charge="ch_1", payout="po_1"),
            _txn("txn_2", "charge", "cus_1", dt.date(2024, 3, 5), 2000, 88,
                 source="ch_3", charge="ch_3", payout="po_1"),
            _txn("txn_3", "refund", "cus_1", dt.date(2024, 3, 6), -500, 0,
                 source="re_1", charge="ch_3", payout="po_1"),
            _txn("txn_4", "dispute", "cus_2", dt.date(2024, 3, 20), -500, 1500,
                 source="dp_2", charge="ch_5"),  # not paid out yet
            _txn("txn_5", "payout", None, dt.date(2024, 3, 25), -2353, 0, source="po_1",
                 payout="po_1"),  # Stripe lists a payout's own movement among its own
        ]),
        "currencies": _typed("currencies", [{"code": "usd", "exponent": 2},
                                            {"code": "eur", "exponent": 2}], OLTP),
        "fx_rates": fx_rates(),
        "dim_payment_method": _typed("dim_payment_method", [
            {"payment_method_key": "pm_visa", "card_brand": "visa", "card_funding": "credit",
             "card_country": "US"},
            {"payment_method_key": "pm_mc", "card_brand": "mastercard", "card_funding": "debit",
             "card_country": "GB"},
        ]),
        "dim_payment_outcome": _typed("dim_payment_outcome", [
            _outcome("ok_normal", "succeeded", "approved_by_network", "normal", "none"),
            _outcome("ok_elevated", "succeeded", "approved_by_network", "elevated", "none"),
            _outcome("declined", "failed", "declined_by_network", "normal", "insufficient_funds"),
            _outcome("blocked", "failed", "not_sent_to_network", "highest", "fraudulent"),
        ]),
        "fact_payment_attempts": _typed("fact_payment_attempts", [
            _attempt("ch_1", "pm_visa", "ok_normal", True, 1000, score=10),
            # pi_a pays in_1: declined first (ch_2), then ch_3, with two partial refunds
            _attempt("ch_2", "pm_visa", "declined", False, score=20, intent="pi_a"),
            _attempt("ch_3", "pm_mc", "ok_elevated", True, 2000, 500, True, score=70,
                     intent="pi_a"),
            _attempt("ch_4", "pm_mc", "blocked", False, score=90),
            _attempt("ch_5", None, "ok_normal", True, 500, disputed=True),
        ]),
        "fact_disputes": _typed("fact_disputes", [
            {"dispute_id": "dp_1", "charge_id": "ch_3", "reason": "fraudulent", "status": "lost"},
            {"dispute_id": "dp_2", "charge_id": "ch_5", "reason": "product_not_received",
             "status": "won", "amount": 500, "currency": "usd"},
            {"dispute_id": "dp_3", "charge_id": "ch_5", "reason": "product_not_received",
             "status": "needs_response"},
        ]),
        "fact_refunds": _typed("fact_refunds", [  # two partial refunds of ch_3, one settled
            {"refund_id": "re_1", "charge_id": "ch_3", "amount": 500, "currency": "usd",
             "status": "succeeded", "reason": "requested_by_customer"},
            {"refund_id": "re_2", "charge_id": "ch_3", "amount": 300, "currency": "usd",
             "status": "pending"},
        ]),
        "fact_payouts": _typed("fact_payouts", [
            {"payout_id": "po_1", "currency": "usd", "status": "paid", "automatic": True,
             "method": "standard", "created_date_key": 20240325, "arrival_date_key": 20240327,
             "amount": 2353, "settled_net": 0, "settled_count": 4,
             "reporting_currency": "usd", "amount_reporting": Decimal("23.53")},
        ]),
        "dim_customer": _typed("dim_customer", [
            {"customer_key": "cus_1@1", "customer_id": "cus_1", "is_current": False,
             "country": "US", "region": "North America"},
            {"customer_key": "cus_1@2", "customer_id": "cus_1", "is_current": True,
             "country": "GB", "region": "Europe"},
            {"customer_key": "cus_2@1", "customer_id": "cus_2", "is_current": True,
             "country": "FR", "region": "Europe"},
        ]),
        "fact_invoice_lines": _typed("fact_invoice_lines", [
            _line("il_1", "in_1", "sub_a", "cus_1", "paid", 1000, 100, intent="pi_a"),
            _line("il_2", "in_1", "sub_a", "cus_1", "paid", 500, proration=True, intent="pi_a"),
            _line("il_3", "in_2", "sub_a", "cus_1", "open", 1000),
            _line("il_4", "in_3", None, "cus_2", "open", 300),
            _line("il_5", "in_4", "sub_b", "cus_2", "paid", -200),
        ]),
        "fact_payment_intents": _typed("fact_payment_intents", [
            {"payment_intent_id": "pi_1", "created_at": _t(1, 1), "first_confirmed_at": _t(1, 1),
             "succeeded_at": _t(1, 1)},
            {"payment_intent_id": "pi_2", "created_at": _t(1, 2), "first_confirmed_at": _t(1, 2),
             "requires_action_at": _t(1, 2), "succeeded_at": _t(1, 3)},
            {"payment_intent_id": "pi_3", "created_at": _t(1, 3), "first_confirmed_at": _t(1, 3),
             "requires_action_at": _t(1, 3), "failed_at": _t(1, 4)},
            {"payment_intent_id": "pi_4", "created_at": _t(1, 4)},
        ]),
        "fact_subscription_item_months": _typed("fact_subscription_item_months", [
            # A: new in January, churns in March
            _item("si_a", "sub_a", "cus_a", JAN, "active", 1000),
            _item("si_a", "sub_a", "cus_a", FEB, "active", 1000),
            # B: new in January, expands in February
            _item("si_b", "sub_b", "cus_b", JAN, "active", 2000),
            _item("si_b", "sub_b", "cus_b", FEB, "active", 3000),
            _item("si_b", "sub_b", "cus_b", MAR, "active", 3000),
            # C: a January trial, paid from February, contracts in March
            _item("si_c", "sub_c", "cus_c", JAN, "trialing", 0),
            _item("si_c", "sub_c", "cus_c", FEB, "active", 500),
            _item("si_c", "sub_c", "cus_c", MAR, "active", 250),
            # D: a January trial canceled before paying; E: a trial still running
            _item("si_d", "sub_d", "cus_d", JAN, "trialing", 0),
            _item("si_e", "sub_e", "cus_e", MAR, "trialing", 0),
        ]),
    }  # fmt: skip


def fx_rates() -> ibis.Table:
    rows = [{"rate_date": d, "currency": c, "usd_per_unit": Decimal(r)}
            for d in (dt.date(2024, 1, 31), dt.date(2024, 2, 29), dt.date(2024, 3, 31))
            for c, r in (("usd", "1"), ("eur", "1.08"))]  # fmt: skip
    return _typed("fx_rates", rows, OLTP)


def _run(con: Any) -> dict[str, pd.DataFrame]:
    marts = mart_expressions(star(), PARAMS)
    out = {}
    for name, expr in marts.items():
        df = con.to_pyarrow(expr).to_pandas()
        key = list(MARTS.table(name).primary_key)
        out[name] = df.sort_values(key).reset_index(drop=True)
    return out


@pytest.fixture(scope="module")
def on_duckdb() -> dict[str, pd.DataFrame]:
    return _run(ibis.duckdb.connect())


def _d(value: Any) -> Decimal | None:
    return None if value is None or pd.isna(value) else Decimal(str(value))


def _by(df: pd.DataFrame, *key: str) -> dict:
    return {tuple(r[k] for k in key) if len(key) > 1 else r[key[0]]: r for _, r in df.iterrows()}


# --- the contract ----------------------------------------------------------------------


def test_every_metric_has_its_function_docstring_and_column() -> None:
    for m in METRICS.values():
        func = getattr(metrics, m.name)
        assert m.formula in func.__doc__, m.name
        assert m.description in func.__doc__, m.name
        MARTS.table(m.mart).column(m.column)


def test_marts_read_only_columns_the_warehouse_declares() -> None:
    """Building every mart over the model's empty tables compiles and types as declared."""
    empty = {n: _typed(n, []) for n in STAR_INPUTS}
    empty |= {n: _typed(n, [], OLTP) for n in ("fx_rates", "currencies")}
    marts = mart_expressions(empty, PARAMS)
    assert list(marts) == list(MARTS.table_names)
    con = ibis.duckdb.connect()
    for name, expr in marts.items():
        table = MARTS.table(name)
        assert expr.columns == table.column_names
        assert con.to_pyarrow(expr).num_rows == 0


# --- known answers ---------------------------------------------------------------------


def test_mrr_metrics(on_duckdb: dict[str, pd.DataFrame]) -> None:
    m = _by(on_duckdb["mart_mrr_metrics"], "month")
    feb, mar = m[pd.Timestamp(FEB).date()], m[pd.Timestamp(MAR).date()]
    assert (feb.closing_mrr, feb.arr, feb.customers_closing) == (4500, 54000, 3)
    assert _d(feb.arpa) == Decimal(1500)
    assert _d(feb.nrr) == Decimal("1.3333333333"), "(3000 + 1000) / 3000"
    assert _d(feb.grr) == 1
    assert _d(feb.logo_churn_rate) == 0
    assert _d(feb.ltv) is None, "nobody churned"
    assert _d(mar.logo_churn_rate) == Decimal("0.3333333333")
    assert _d(mar.revenue_churn_rate) == Decimal("0.2777777778"), "(250 + 1000) / 4500"
    assert _d(mar.grr) == _d(mar.nrr) == Decimal("0.7222222222")
    assert _d(mar.arpa) == Decimal(1625)
    assert _d(mar.ltv) == Decimal(4875), "1625 / (1/3)"


def test_bridge_in_the_reporting_currency(on_duckdb: dict[str, pd.DataFrame]) -> None:
    b = on_duckdb["mart_mrr_bridge"]
    assert set(b.reporting_currency) == {"usd"}
    assert b.to_reporting.map(_d).tolist() == [Decimal("0.01")] * 3
    assert b.closing_mrr_reporting.map(_d).tolist() == [Decimal(30), Decimal(45), Decimal("32.5")]


def test_cohort_retention(on_duckdb: dict[str, pd.DataFrame]) -> None:
    c = _by(on_duckdb["mart_cohort_retention"], "cohort_month", "months_since")
    jan = [c[(JAN, k)] for k in (0, 1, 2)]
    assert [r.customers_retained for r in jan] == [2, 2, 1]
    assert [r.mrr_retained for r in jan] == [3000, 4000, 3000]
    assert [_d(r.revenue_retention) for r in jan] == [1, Decimal("1.3333333333"), 1]
    assert [_d(r.logo_retention) for r in jan] == [1, 1, Decimal("0.5")]
    feb = [c[(FEB, k)] for k in (0, 1)]
    assert [_d(r.revenue_retention) for r in feb] == [1, Decimal("0.5")], "C is cohort Feb"
    assert len(c) == 5


def test_trial_conversion(on_duckdb: dict[str, pd.DataFrame]) -> None:
    t = _by(on_duckdb["mart_trial_conversion"], "trial_month")
    assert (t[JAN].trials, t[JAN].trials_ended, t[JAN].trials_converted) == (2, 2, 1)
    assert _d(t[JAN].conversion_rate) == Decimal("0.5")
    assert (t[MAR].trials, t[MAR].trials_ended) == (1, 0), "E is still trialing"
    assert _d(t[MAR].conversion_rate) is None


def test_payment_health(on_duckdb: dict[str, pd.DataFrame]) -> None:
    h = _by(on_duckdb["mart_payment_health"], "dimension", "value")
    visa, mc = h[("card_brand", "visa")], h[("card_brand", "mastercard")]
    assert (visa.attempts, visa.sent_to_network, visa.approved) == (2, 2, 1)
    assert _d(visa.authorisation_rate) == Decimal("0.5")
    assert (mc.attempts, mc.sent_to_network, mc.approved) == (2, 1, 1), "Radar blocked one"
    assert _d(mc.authorisation_rate) == 1
    assert h[("card_country", "unknown")].attempts == 1, "the charge without a card"
    for dim in ("card_brand", "card_funding", "card_country"):
        assert sum(r.attempts for k, r in h.items() if k[0] == dim) == 5


def test_decline_codes_3ds_refunds(on_duckdb: dict[str, pd.DataFrame]) -> None:
    codes = _by(on_duckdb["mart_decline_codes"], "failure_code")
    assert set(codes) == {"insufficient_funds", "fraudulent"}
    assert all(_d(r.share) == Decimal("0.5") for r in codes.values())
    tds = on_duckdb["mart_three_d_secure"].iloc[0]
    assert (tds.intents_confirmed, tds.intents_challenged, tds.challenged_succeeded) == (3, 2, 1)
    assert _d(tds.challenge_rate) == Decimal("0.6666666667")
    assert _d(tds.success_rate) == Decimal("0.5")
    r = on_duckdb["mart_refund_rates"].iloc[0]
    assert (r.charges_succeeded, r.charges_refunded, r.amount_captured, r.amount_refunded) == (
        3, 1, 3500, 500,
    )  # fmt: skip
    assert _d(r.refund_rate) == Decimal("0.1428571429")


def test_risk_levels_and_dispute_outcomes(on_duckdb: dict[str, pd.DataFrame]) -> None:
    risk = _by(on_duckdb["mart_risk_levels"], "risk_level")
    assert set(risk) == {"normal", "elevated"}, "only succeeded charges"
    n, e = risk["normal"], risk["elevated"]
    assert (n.charges_succeeded, n.charges_disputed, n.charges_fraud_disputed) == (2, 1, 0)
    assert (_d(n.dispute_rate), _d(n.fraud_rate), _d(n.mean_risk_score)) == (
        Decimal("0.5"), 0, 10,
    )  # fmt: skip
    assert (_d(e.dispute_rate), _d(e.fraud_rate)) == (1, 1)
    d = _by(on_duckdb["mart_dispute_outcomes"], "reason")
    assert (d["fraudulent"].disputes_lost, _d(d["fraudulent"].win_rate)) == (1, 0)
    pnr = d["product_not_received"]
    assert (pnr.disputes, pnr.disputes_won, _d(pnr.win_rate)) == (2, 1, 1), "one undecided"


def test_customer_overview(on_duckdb: dict[str, pd.DataFrame]) -> None:
    c = _by(on_duckdb["mart_customer_overview"], "customer_id")
    one, two = c["cus_1"], c["cus_2"]
    got = [one[k] for k in ("total_sales", "total_refunds", "total_fees", "total_net",
                            "total_sales_count", "total_refund_count", "sales_this_month",
                            "refunds_this_month", "net_this_month", "failed_charge_count",
                            "failed_charge_amount", "failed_charge_count_this_month")]  # fmt: skip
    assert got == [3000, 500, 147, 2353, 2, 1, 2000, 500, 1412, 2, 2000, 0]
    assert (one.first_sale_date, one.most_recent_sale_date) == (
        dt.date(2024, 1, 10), dt.date(2024, 3, 5),
    )  # fmt: skip
    assert (two.total_disputes, two.total_fees, two.total_net, two.total_sales) == (
        500, 1500, -2000, 0,
    )  # fmt: skip
    assert set(c) == {"cus_1", "cus_2"}, "the payout has no customer"
    assert len(on_duckdb["mart_customer_overview"]) == 2, "one row per customer and currency"


def test_a_charge_without_a_customer_is_no_customer_overview_row() -> None:
    """Stripe charges need no customer (a guest checkout). Its failure counts in the daily
    overview, but is no ``(NULL, currency)`` row of the customer overview, whose key is
    NOT NULL (the row came out with every count 0)."""
    t = star()
    guest = {**_attempt("ch_guest", "pm_visa", "declined", False), "customer_id": None}
    attempts = t["fact_payment_attempts"].union(_typed("fact_payment_attempts", [guest]))
    con = ibis.duckdb.connect()
    c = con.to_pyarrow(metrics.mart_customer_overview(
        t["fact_balance_transactions"], attempts, t["dim_date"], ibis.literal(MAR)
    )).to_pandas()  # fmt: skip
    assert c.customer_id.notna().all(), c
    assert sorted(c.customer_id) == ["cus_1", "cus_2"]
    assert c.failed_charge_count.sum() == 2, "cus_1's two, not the guest's"
    d = con.to_pyarrow(metrics.mart_daily_overview(
        t["fact_balance_transactions"], attempts, t["dim_date"], ibis.literal(dt.date(2024, 3, 31))
    )).to_pandas()  # fmt: skip
    assert d.failed_charge_count.sum() == 3, "the guest's failure is a failure of its day"


def test_daily_overview(on_duckdb: dict[str, pd.DataFrame]) -> None:
    d = on_duckdb["mart_daily_overview"]
    assert len(d) == 82, "every day from 10 January to the as-of day, 31 March"
    assert d.net.sum() == 941 + 1912 - 500 - 2000 - 2353
    last = d.iloc[-1]
    assert last.date == dt.date(2024, 3, 31)
    assert (last.running_balance, last.rolling_30d_sales, last.rolling_30d_net) == (
        -2000, 2000, 1912 - 500 - 2000 - 2353,
    )  # fmt: skip
    assert last.quarter_start == dt.date(2024, 1, 1)
    jan10 = d[d.date == dt.date(2024, 1, 10)].iloc[0]
    assert (jan10.sales, jan10.fees, jan10.failed_charge_count, jan10.failed_charge_amount) == (
        1000, 59, 2, 2000,
    )  # fmt: skip
    assert d[d.date == dt.date(2024, 3, 25)].payouts.iloc[0] == -2353
    assert d.groupby("month_start").sales.sum().tolist() == [1000, 0, 2000], "monthly roll-up"


def test_balance_transactions(on_duckdb: dict[str, pd.DataFrame]) -> None:
    b = _by(on_duckdb["mart_balance_transactions"], "balance_transaction_id")
    assert len(on_duckdb["mart_balance_transactions"]) == 5, "one row per balance transaction"
    assert (b["txn_2"].charge_id, b["txn_2"].customer_facing_amount) == ("ch_3", 2000)
    refund = b["txn_3"]
    assert (refund.refund_id, refund.refund_reason, refund.customer_facing_amount) == (
        "re_1", "requested_by_customer", -500,
    ), "its own refund only, though ch_3 has two"  # fmt: skip
    assert pd.isna(b["txn_2"].refund_id), "a charge's movement is not joined to its refunds"
    assert (b["txn_4"].dispute_id, b["txn_4"].dispute_status) == ("dp_2", "won")
    assert (b["txn_4"].customer_facing_amount, b["txn_4"].customer_facing_currency) == (-500, "usd")
    assert (b["txn_1"].customer_country, b["txn_4"].customer_country) == ("GB", "FR"), "current"
    assert (b["txn_1"].payout_status, b["txn_1"].payout_arrival_date) == (
        "paid", dt.date(2024, 3, 27),
    )  # fmt: skip
    assert pd.isna(b["txn_5"].customer_facing_amount), "the account's own movement"
    assert pd.isna(b["txn_5"].customer_id)
    assert b["txn_1"].created_date == dt.date(2024, 1, 10)


def test_payout_reconciliation(on_duckdb: dict[str, pd.DataFrame]) -> None:
    r = on_duckdb["mart_payout_reconciliation"]
    rows = _by(r, "payout_id", "reporting_category")
    assert set(rows) == {("po_1", "charge"), ("po_1", "refund")}, "txn_4 is not paid out"
    charge = rows[("po_1", "charge")]
    assert (charge.settled_count, charge.gross, charge.fee, charge.net) == (2, 3000, 147, 2853)
    assert rows[("po_1", "refund")].net == -500
    payout_movement = on_duckdb["mart_balance_transactions"].set_index("source_id").amount["po_1"]
    assert r.net.sum() == -payout_movement == charge.payout_amount == 2353
    assert (r.payout_movement == -2353).all(), "its own withdrawal is not a settled row"
    assert sum(_d(x) for x in r.net_reporting) == Decimal("23.53")
    assert charge.payout_created_date == dt.date(2024, 3, 25)


def test_invoice_and_subscription_details(on_duckdb: dict[str, pd.DataFrame]) -> None:
    i = _by(on_duckdb["mart_invoice_details"], "invoice_id")
    one = i["in_1"]
    got = [one[k] for k in ("line_count", "proration_line_count", "subtotal", "discount_amount",
                            "amount_due", "amount_paid", "amount_remaining")]  # fmt: skip
    assert got == [2, 1, 1500, 100, 1400, 1400, 0]
    assert (i["in_2"].amount_due, i["in_2"].amount_paid, i["in_2"].amount_remaining) == (
        1000, 0, 1000,
    )  # fmt: skip
    assert (i["in_4"].total, i["in_4"].amount_due) == (-200, 0), "a credit is owed nothing"
    assert pd.isna(i["in_3"].subscription_id), "a one-off invoice"
    assert (one.customer_country, one.created_date) == ("GB", dt.date(2024, 2, 1))
    for r in i.values():
        assert r.amount_remaining == r.amount_due - r.amount_paid
    s = _by(on_duckdb["mart_subscription_details"], "subscription_id")
    assert set(s) == {"sub_a", "sub_b"}
    a = s["sub_a"]
    assert (a.invoice_count, a.paid_invoice_count, a.open_invoice_count) == (2, 1, 1)
    assert (a.amount_billed, a.amount_paid, a.amount_remaining, a.discount_amount) == (
        2400, 1400, 1000, 100,
    )  # fmt: skip
    assert (a.amount_refunded, a.amount_paid_net) == (500, 900), "in_1's refund, once"


def test_two_partial_refunds_repeat_no_line_and_count_once(
    on_duckdb: dict[str, pd.DataFrame],
) -> None:
    """dbt_stripe repeats an invoice's lines when its charge has two partial refunds.

    ch_3 has two partial refunds (re_1 settled, re_2 pending). Each invoice line is one row
    carrying its invoice's totals once (summed from the lines, not fanned out), and each
    refund is joined to its own balance transaction by refund id, not to every movement of
    the charge. in_1 is paid by pi_a, whose succeeded charge ch_3 had 500 refunded (re_1;
    re_2 is still pending): the invoice carries 500 refunded once, its lines each carry
    the invoice's 500 (not a share, not a sum), and no line is repeated.
    """
    lines = on_duckdb["mart_invoice_line_details"]
    assert lines.invoice_line_item_id.tolist() == ["il_1", "il_2", "il_3", "il_4", "il_5"]
    first = lines[lines.invoice_id == "in_1"]
    assert first.invoice_amount_due.tolist() == [1400, 1400]
    assert first.net_amount.sum() == first.invoice_amount_due.iloc[0], "lines add up to the invoice"
    assert first.invoice_amount_refunded.tolist() == [500, 500]
    assert first.invoice_amount_paid_net.tolist() == [900, 900]
    assert set(first.invoice_charge_id) == {"ch_3"}, "the succeeded charge, not the declined one"
    i = _by(on_duckdb["mart_invoice_details"], "invoice_id")
    assert (i["in_1"].payment_intent_id, i["in_1"].charge_id) == ("pi_a", "ch_3")
    assert (i["in_1"].amount_refunded, i["in_1"].amount_paid_net) == (500, 900)
    assert pd.isna(i["in_2"].charge_id), "no payment yet"
    assert i["in_2"].amount_refunded == 0
    assert sum(r.amount_refunded for r in i.values()) == 500, "each refund once over invoices"
    bt = on_duckdb["mart_balance_transactions"]
    assert bt.refund_id.dropna().tolist() == ["re_1"], "each refund once"
    assert (bt.charge_id == "ch_3").sum() == 2, "ch_3's charge and refund, not one per refund"


def test_metric_functions_work_on_any_table_with_their_columns() -> None:
    movements = ibis.memtable(
        pd.DataFrame({
            "customer_id": ["a", "b"], "currency": ["usd", "usd"], "month": [JAN, JAN],
            "opening_mrr": [0, 0], "closing_mrr": [100, 300], "mrr_change": [100, 300],
            "movement": ["new", "new"],
        })
    )  # fmt: skip
    got = ibis.duckdb.connect().execute(mrr_bridge(movements).select(a=metrics.arpa))
    assert Decimal(str(got.a.iloc[0])) == 200


# --- three engines -----------------------------------------------------------------------


def _same(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> None:
    for name in MARTS.table_names:
        left, right = a[name].astype(str), b[name].astype(str)
        pd.testing.assert_frame_equal(left, right, check_dtype=False, obj=name)


def test_postgres_gives_the_same_marts(pg_ibis: Any, on_duckdb: dict[str, pd.DataFrame]) -> None:
    _same(_run(pg_ibis), on_duckdb)


def test_spark_gives_the_same_marts(spark_ibis: Any, on_duckdb: dict[str, pd.DataFrame]) -> None:
    _same(_run(spark_ibis), on_duckdb)
