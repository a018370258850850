"""MRR movements and the bridge: hand-built cases with known answers, on three engines.

Each case is a few ``customer.subscription.*`` snapshots priced by OLTP-shaped rows
(``PRICES``, ``COUPONS``, ``DISCOUNTS``). ``EXPECTED`` is written out by hand, month by
month, from the MRR rules; it is computed by no code under test. The reference
recomputation (:mod:`paymodel.olap.mrr_reference`) turns the snapshots into subscription
months, and the Ibis transforms (:mod:`paymodel.olap.mrr`) classify them on DuckDB,
PostgreSQL and PySpark.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import ibis
import pandas as pd
import pytest

from paymodel.olap.mrr import (
    BRIDGE_COMPONENTS,
    MOVEMENTS,
    monthly_fx,
    mrr_bridge,
    mrr_movements,
    subscription_item_mrr,
)
from paymodel.olap.mrr_reference import reference_movements, subscription_months

AS_OF = dt.datetime(2024, 8, 15, 12, 0, tzinfo=dt.UTC)
MONTHS = [dt.date(2024, m, 1) for m in range(1, 9)]


def _t(month: int, day: int) -> int:
    return int(dt.datetime(2024, month, day, 12, tzinfo=dt.UTC).timestamp())


def _price(pid: str, currency: str, amount: int, interval: str = "month", usage: str = "licensed",
           count: int = 1) -> dict[str, Any]:  # fmt: skip
    return {
        "id": pid, "product_id": "prod_" + pid, "currency": currency, "unit_amount": amount,
        "type": "recurring", "billing_scheme": "per_unit", "recurring_interval": interval,
        "recurring_interval_count": count, "recurring_usage_type": usage,
    }  # fmt: skip


PRICES = [
    _price("p_usd_1000", "usd", 1000),
    _price("p_usd_2000", "usd", 2000),
    _price("p_usd_500", "usd", 500),
    _price("p_usd_5000", "usd", 5000),
    _price("p_usd_3000", "usd", 3000),
    _price("p_usd_year", "usd", 120_000, "year"),
    _price("p_usd_metered", "usd", 7, usage="metered"),
    _price("p_eur_900", "eur", 900),
    _price("p_jpy_5000", "jpy", 5000),
    _price("p_usd_quarter", "usd", 3000, count=3),
]
COUPONS = [
    {"id": "FOREVER10", "percent_off": 10, "amount_off": None, "duration": "forever",
     "duration_in_months": None},
    {"id": "LAUNCH20", "percent_off": 20, "amount_off": None, "duration": "repeating",
     "duration_in_months": 3},
    {"id": "ONCE25", "percent_off": 25, "amount_off": None, "duration": "once",
     "duration_in_months": None},
]  # fmt: skip
DISCOUNTS = [
    {"coupon_id": "FOREVER10", "customer_id": "c_forever", "subscription_id": "s_forever",
     "starts_at": _t(1, 10), "ends_at": None},
    {"coupon_id": "LAUNCH20", "customer_id": "c_repeating", "subscription_id": "s_repeating",
     "starts_at": _t(1, 15), "ends_at": _t(4, 15)},
    {"coupon_id": "ONCE25", "customer_id": "c_new", "subscription_id": "s_new_1",
     "starts_at": _t(1, 10), "ends_at": None},
]  # fmt: skip


def _snap(sub: str, customer: str, status: str, currency: str, items: list[tuple[str, int | None]],
          trial_end: int | None = None) -> dict[str, Any]:  # fmt: skip
    return {
        "id": sub, "object": "subscription", "customer": customer, "status": status,
        "currency": currency, "trial_end": trial_end,
        "items": {"data": [{"id": f"si_{sub}_{i}", "price": p, "quantity": q}
                           for i, (p, q) in enumerate(items)]},
    }  # fmt: skip


def _ev(at: int, snap: dict[str, Any], kind: str = "updated") -> dict[str, Any]:
    return {"type": f"customer.subscription.{kind}", "created": at, "data": {"object": snap}}


EVENTS = [
    # new, churn, then a second subscription: reactivation (not expansion, not new)
    _ev(_t(1, 10), _snap("s_new_1", "c_new", "active", "usd", [("p_usd_1000", 1)]), "created"),
    _ev(_t(3, 5), _snap("s_new_1", "c_new", "canceled", "usd", [("p_usd_1000", 1)]), "deleted"),
    _ev(_t(5, 3), _snap("s_new_2", "c_new", "active", "usd", [("p_usd_1000", 1)]), "created"),
    # two subscriptions: the first ending is a contraction, the last ending is the churn
    _ev(_t(1, 2), _snap("s_multi_a", "c_multi", "active", "usd", [("p_usd_2000", 1)]), "created"),
    _ev(_t(2, 2), _snap("s_multi_b", "c_multi", "active", "usd", [("p_usd_500", 1)]), "created"),
    _ev(_t(4, 2), _snap("s_multi_a", "c_multi", "canceled", "usd", [("p_usd_2000", 1)]), "deleted"),
    _ev(_t(6, 2), _snap("s_multi_b", "c_multi", "canceled", "usd", [("p_usd_500", 1)]), "deleted"),
    # an annual plan: 120,000 a year is 10,000 a month; a second seat in July
    _ev(_t(1, 20), _snap("s_annual", "c_annual", "active", "usd", [("p_usd_year", 1)]), "created"),
    _ev(_t(7, 1), _snap("s_annual", "c_annual", "active", "usd", [("p_usd_year", 2)])),
    # forever 10% off 5,000
    _ev(_t(1, 10), _snap("s_forever", "c_forever", "active", "usd", [("p_usd_5000", 1)]), "created"),
    # repeating 20% off for 3 months: 4,000 until April, then 5,000 (expansion)
    _ev(_t(1, 15), _snap("s_repeating", "c_repeating", "active", "usd", [("p_usd_5000", 1)]),
        "created"),
    # a trial in January: February, the first paid month, is new
    _ev(_t(1, 5), _snap("s_trial", "c_trial", "trialing", "usd", [("p_usd_3000", 1)], _t(2, 5)),
        "created"),
    _ev(_t(2, 5), _snap("s_trial", "c_trial", "active", "usd", [("p_usd_3000", 1)], _t(2, 5))),
    # past_due in March still counts; unpaid in April does not (churn)
    _ev(_t(1, 3), _snap("s_pastdue", "c_pastdue", "active", "usd", [("p_usd_2000", 2)]), "created"),
    _ev(_t(3, 10), _snap("s_pastdue", "c_pastdue", "past_due", "usd", [("p_usd_2000", 2)])),
    _ev(_t(4, 20), _snap("s_pastdue", "c_pastdue", "unpaid", "usd", [("p_usd_2000", 2)])),
    # metered usage is not MRR; a quarterly price of 3,000 is 1,000 a month
    _ev(_t(2, 1), _snap("s_metered", "c_metered", "active", "usd",
                        [("p_usd_quarter", 1), ("p_usd_metered", None)]), "created"),
    # two more currencies; a downgrade in June (900 x 3 -> 900 x 2)
    _ev(_t(2, 14), _snap("s_eur", "c_eur", "active", "eur", [("p_eur_900", 3)]), "created"),
    _ev(_t(6, 14), _snap("s_eur", "c_eur", "active", "eur", [("p_eur_900", 2)])),
    _ev(_t(3, 1), _snap("s_jpy", "c_jpy", "active", "jpy", [("p_jpy_5000", 1)]), "created"),
]  # fmt: skip


def _run(customer: str, currency: str, start: int, closings: list[int],
         kinds: list[str]) -> list[tuple[str, str, dt.date, int, int, str]]:  # fmt: skip
    """Rows from month ``start`` on: (customer, currency, month, opening, closing, movement)."""
    out, opening = [], 0
    for i, (closing, kind) in enumerate(zip(closings, kinds, strict=True)):
        if closing or opening:
            out.append((customer, currency, dt.date(2024, start + i, 1), opening, closing, kind))
        opening = closing
    return out


N, E, C, X, R, Z = "new", "expansion", "contraction", "churn", "reactivation", "none"
EXPECTED = sorted(
    _run("c_new", "usd", 1, [1000, 1000, 0, 0, 1000, 1000, 1000, 1000], [N, Z, X, Z, R, Z, Z, Z])
    + _run("c_multi", "usd", 1, [2000, 2500, 2500, 500, 500, 0, 0, 0], [N, E, Z, C, Z, X, Z, Z])
    + _run("c_annual", "usd", 1, [10000] * 6 + [20000] * 2, [N, Z, Z, Z, Z, Z, E, Z])
    + _run("c_forever", "usd", 1, [4500] * 8, [N] + [Z] * 7)
    + _run("c_repeating", "usd", 1, [4000] * 3 + [5000] * 5, [N, Z, Z, E, Z, Z, Z, Z])
    + _run("c_trial", "usd", 2, [3000] * 7, [N] + [Z] * 6)
    + _run("c_pastdue", "usd", 1, [4000, 4000, 4000, 0, 0, 0, 0, 0], [N, Z, Z, X, Z, Z, Z, Z])
    + _run("c_metered", "usd", 2, [1000] * 7, [N] + [Z] * 6)
    + _run("c_eur", "eur", 2, [2700] * 4 + [1800] * 3, [N, Z, Z, Z, C, Z, Z])
    + _run("c_jpy", "jpy", 3, [5000] * 6, [N] + [Z] * 5)
)
"""Every (customer, currency, month, opening, closing, movement) row, by hand."""


# --- helpers ---------------------------------------------------------------------


def _frame(con: Any, expr: ibis.Table, order: list[str]) -> pd.DataFrame:
    df = con.to_pyarrow(expr).to_pandas()
    return df.sort_values(order).reset_index(drop=True)


@pytest.fixture(scope="module")
def sub_months() -> list[dict[str, Any]]:
    return subscription_months(EVENTS, PRICES, DISCOUNTS, COUPONS, AS_OF, first_month=MONTHS[0])


def _tables(rows: list[dict[str, Any]]) -> tuple[ibis.Table, ibis.Table]:
    items = ibis.memtable(pd.DataFrame(rows)[["customer_id", "currency", "month", "mrr"]])
    return items, ibis.memtable(pd.DataFrame({"month": MONTHS}))


def _rows(df: pd.DataFrame) -> list[tuple[str, str, dt.date, int, int, str]]:
    return sorted(
        (r.customer_id, r.currency, pd.Timestamp(r.month).date(), int(r.opening_mrr),
         int(r.closing_mrr), r.movement)
        for r in df.itertuples()
    )  # fmt: skip


# --- the reference recomputation ----------------------------------------------------


def test_reference_recomputation_gives_the_hand_answers(sub_months: list[dict[str, Any]]) -> None:
    got = sorted(
        (m.customer_id, m.currency, m.month, m.opening_mrr, m.closing_mrr, m.movement)
        for m in reference_movements(sub_months, MONTHS)
    )
    assert got == EXPECTED


# --- the Ibis transforms, on every engine --------------------------------------------


def test_movements_give_the_hand_answers(ibis_con: Any, sub_months: list[dict[str, Any]]) -> None:
    items, months = _tables(sub_months)
    df = _frame(ibis_con, mrr_movements(items, months), ["customer_id", "month"])
    assert _rows(df) == EXPECTED
    assert set(df.movement) == set(MOVEMENTS), "every movement kind is exercised"
    assert (df.mrr_change == df.closing_mrr - df.opening_mrr).all()


def _fx() -> ibis.Table:
    """Reporting-currency major units per minor unit: 1 cent, 1.08 USD per EUR, 0.0067 per JPY."""
    return ibis.memtable(pd.DataFrame({
        "month": MONTHS * 3, "currency": ["usd"] * 8 + ["eur"] * 8 + ["jpy"] * 8,
        "to_reporting": [Decimal("0.01")] * 8 + [Decimal("0.0108")] * 8
        + [Decimal("0.0067")] * 8, "reporting_currency": ["usd"] * 24,
    })).cast({"to_reporting": "decimal(38, 12)"})  # fmt: skip


def test_bridge_identity_and_known_month(ibis_con: Any, sub_months: list[dict[str, Any]]) -> None:
    items, months = _tables(sub_months)
    bridge = _frame(
        ibis_con, mrr_bridge(mrr_movements(items, months), _fx()), ["month", "currency"]
    )
    o, n, e, r, c, x, z = (bridge[col] for col in BRIDGE_COMPONENTS)
    assert (o + n + e + r - c - x == z).all()
    rep = [bridge[f"{col}_reporting"].map(Decimal) for col in BRIDGE_COMPONENTS]
    assert (rep[0] + rep[1] + rep[2] + rep[3] - rep[4] - rep[5] == rep[6]).all()
    april = bridge[(bridge.currency == "usd") & (bridge.month.map(pd.Timestamp) == "2024-04-01")]
    # by hand: c_repeating +1000 (discount ends), c_multi -2000 (one of two subscriptions),
    # c_pastdue -4000 (unpaid is not MRR); opening = 2500+10000+4500+4000+3000+4000+1000
    got = april[list(BRIDGE_COMPONENTS)].iloc[0].astype(int).tolist()
    assert got == [29000, 0, 1000, 0, 2000, 4000, 24000]
    assert april[["customers_opening", "customers_churned", "customers_closing"]].iloc[
        0
    ].tolist() == [7, 1, 6]
    may = bridge[(bridge.currency == "usd") & (bridge.month.map(pd.Timestamp) == "2024-05-01")]
    assert int(may.reactivation_mrr.iloc[0]) == 1000
    eur = bridge[bridge.currency == "eur"].sort_values("month")
    assert eur.closing_mrr.astype(int).tolist() == [2700] * 4 + [1800] * 3
    assert Decimal(eur.closing_mrr_reporting.iloc[0]) == Decimal("29.16")


def test_spark_gives_the_same_marts(spark_ibis: Any, sub_months: list[dict[str, Any]]) -> None:
    """The same expressions on PySpark: the hand answers, and DuckDB's bridge row for row."""
    items, months = _tables(sub_months)
    movements = mrr_movements(items, months)
    bridge = mrr_bridge(movements, _fx())
    assert _rows(_frame(spark_ibis, movements, ["customer_id", "month"])) == EXPECTED
    order = ["month", "currency"]
    on_spark = _frame(spark_ibis, bridge, order)
    on_duckdb = _frame(ibis.duckdb.connect(), bridge, order)
    pd.testing.assert_frame_equal(on_spark.astype(str), on_duckdb.astype(str), check_dtype=False)


# --- where fivetran/dbt_stripe goes wrong --------------------------------------------


def test_first_paid_month_after_a_trial_is_new_then_none(sub_months: list[dict[str, Any]]) -> None:
    """dbt_stripe labels it ``unknown``, and the month after ``expansion``."""
    items, months = _tables(sub_months)
    df = ibis.duckdb.connect().to_pyarrow(mrr_movements(items, months)).to_pandas()
    trial = df[df.customer_id == "c_trial"].sort_values("month")
    assert trial.movement.tolist()[:3] == ["new", "none", "none"]
    assert pd.Timestamp(trial.month.iloc[0]) == pd.Timestamp("2024-02-01"), "trial month is 0"
    assert "unknown" not in set(df.movement)


def test_metered_prices_are_not_mrr(sub_months: list[dict[str, Any]]) -> None:
    """dbt_stripe multiplies a metered price by a quantity of 1 and counts it."""
    metered = [r for r in sub_months if r["customer_id"] == "c_metered" and r["mrr"]]
    assert metered
    assert {r["mrr"] for r in metered} == {1000}, "3,000 a quarter; the metered item adds 0"


def test_live_items_are_not_carried_past_the_data_nor_churned(
    sub_months: list[dict[str, Any]],
) -> None:
    """dbt_stripe extends every item to today's date, then churns it."""
    items, months = _tables(sub_months)
    df = ibis.duckdb.connect().to_pyarrow(mrr_movements(items, months)).to_pandas()
    assert df.month.map(pd.Timestamp).max() == pd.Timestamp(MONTHS[-1])
    live = df[df.month.map(pd.Timestamp) == pd.Timestamp(MONTHS[-1])]
    assert set(live[live.closing_mrr > 0].customer_id) == {
        "c_new", "c_annual", "c_forever", "c_repeating", "c_trial", "c_metered", "c_eur", "c_jpy",
    }  # fmt: skip
    churned = set(df[df.movement == "churn"].customer_id)
    assert churned == {"c_new", "c_multi", "c_pastdue"}


def test_return_from_zero_is_reactivation_not_expansion(sub_months: list[dict[str, Any]]) -> None:
    """dbt_stripe tests expansion first, so it never assigns reactivation."""
    items, months = _tables(sub_months)
    df = ibis.duckdb.connect().to_pyarrow(mrr_movements(items, months)).to_pandas()
    back = df[(df.customer_id == "c_new") & (df.month.map(pd.Timestamp) == "2024-05-01")]
    assert back.movement.tolist() == ["reactivation"]


# --- conversion and the item-level mart ---------------------------------------------


def test_monthly_fx_uses_the_month_end_rate_and_each_exponent(ibis_con: Any) -> None:
    """1 JPY = 0.0067 USD with no minor unit; 1 KWD = 3.25 USD with three; 1 EUR = 1.08."""
    days = [dt.date(2024, 1, 1), dt.date(2024, 1, 31), dt.date(2024, 2, 29)]
    rates = {"usd": ["1", "1", "1"], "eur": ["1.05", "1.08", "1.10"],
             "jpy": ["0.0070", "0.0067", "0.0066"], "kwd": ["3.20", "3.25", "3.30"]}  # fmt: skip
    fx_rates = ibis.memtable(pd.DataFrame([
        {"rate_date": d, "currency": c, "usd_per_unit": Decimal(r[i])}
        for c, r in rates.items() for i, d in enumerate(days)
    ])).cast({"usd_per_unit": "decimal(20, 10)"})  # fmt: skip
    currencies = ibis.memtable(pd.DataFrame({
        "code": ["usd", "eur", "jpy", "kwd"], "exponent": [2, 2, 0, 3]}))  # fmt: skip
    got = _frame(ibis_con, monthly_fx(fx_rates, currencies, "eur"), ["month", "currency"])
    jan = got[got.month.map(pd.Timestamp) == "2024-01-01"].set_index("currency")
    factor = {c: Decimal(v) for c, v in jan.to_reporting.items()}
    # euros per minor unit, at the 31 January rate (1.08 USD per EUR)
    assert factor["eur"] == Decimal("0.01")
    assert factor["jpy"] == (Decimal("0.0067") / Decimal("1.08")).quantize(Decimal("1e-12"))
    assert factor["kwd"] == (Decimal("3.25") / Decimal("1.08") / 1000).quantize(Decimal("1e-12"))
    assert set(got.reporting_currency) == {"eur"}
    assert len(got) == 8, "two months, four currencies"


def test_item_mrr_mart(ibis_con: Any) -> None:
    """Trial then paid is new; metered stays 0; an ended item gets one churn row, no more."""
    d = dt.date
    rows = [
        # (item, month, status, quantity, mrr)
        ("si_trial", d(2024, 1, 1), "trialing", 1, 0),
        ("si_trial", d(2024, 2, 1), "active", 1, 3000),
        ("si_trial", d(2024, 3, 1), "active", 1, 3000),
        ("si_metered", d(2024, 1, 1), "active", None, 0),
        ("si_metered", d(2024, 2, 1), "active", None, 0),
        ("si_metered", d(2024, 3, 1), "active", None, 0),
        ("si_ends", d(2024, 1, 1), "active", 2, 2000),
        ("si_ends", d(2024, 2, 1), "past_due", 1, 1000),
    ]
    frame = pd.DataFrame(rows, columns=["subscription_item_id", "month", "status", "quantity",
                                        "mrr"])  # fmt: skip
    frame = frame.assign(subscription_id="sub", customer_id="cus", price_id="price",
                         product_id="prod", currency="usd")  # fmt: skip
    items = ibis.memtable(frame).cast({"quantity": "int32", "mrr": "int64"})
    cal = ibis.memtable(pd.DataFrame({"month": [d(2024, m, 1) for m in (1, 2, 3)]}))
    got = _frame(ibis_con, subscription_item_mrr(items, cal), ["subscription_item_id", "month"])
    by_item = {k: g for k, g in got.groupby("subscription_item_id")}
    assert by_item["si_trial"].movement.tolist() == ["none", "new", "none"]
    assert by_item["si_metered"].movement.tolist() == ["none"] * 3
    assert by_item["si_ends"].movement.tolist() == ["new", "contraction", "churn"]
    assert by_item["si_ends"].status.tolist() == ["active", "past_due", "ended"]
    assert by_item["si_ends"].item_month_number.tolist() == [1, 2, 3]
    assert got.month.map(pd.Timestamp).max() == pd.Timestamp("2024-03-01")
    assert len(got) == 9
