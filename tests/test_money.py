"""Money edge cases, where a wrong rounding or a wrong unit costs real money.

Half-unit fees (half-up, never banker's rounding), zero- and three-decimal currencies,
the largest amount Stripe accepts, and refunds of charges in other currencies: a full
refund's balance transaction is exactly minus its charge's, in the settlement currency,
and partial refunds add up to it. Each runs through the payment flows on DuckDB and on
PostgreSQL; the pure functions are checked on their own too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest
import sqlalchemy as sa

from paymodel.model.core import MAX_AMOUNT
from paymodel.model.oltp import THREE_DECIMAL_CURRENCIES, ZERO_DECIMAL_CURRENCIES
from paymodel.model.reference import EXPONENTS
from paymodel.oltp.flows import InvalidRequest, ManualClock, Payments, SequentialIds
from paymodel.oltp.flows.inspect import rows
from paymodel.oltp.flows.money import (
    US_CARD_PRICING,
    FeeSchedule,
    add_interval,
    card_fees,
    convert,
    dispute_fees,
    prorate,
    quantum,
    round_amount,
)
from paymodel.oltp.invariants import check_invariants
from paymodel.oltp.schema import create_schema, oltp_tables

START = dt.datetime(2026, 1, 1, 9, 0, tzinfo=dt.UTC)


# --------------------------------------------------------------------- pure functions


def test_a_500_cent_us_card_charge_pays_a_fee_of_45_half_up() -> None:
    """2.9% of 500 is 14.5: half-up gives 15 (+ 30 fixed) = 45; banker's rounding gives 44."""
    (line,) = card_fees(500, international=False, converted=False)
    assert line.amount == 45


@pytest.mark.parametrize(
    ("amount", "international", "converted", "fees"),
    [
        (500, False, False, [45]),  # 14.5 -> 15
        (1_500, False, False, [74]),  # 43.5 -> 44, an even neighbour below: not 43
        (100, True, False, [33, 2]),  # international 1.5% of 100 = 1.5 -> 2
        (50, False, True, [31, 1]),  # conversion 1% of 50 = 0.5 -> 1
        (300, True, True, [39, 5, 3]),  # 8.7 -> 9, 4.5 -> 5, 3
    ],
)
def test_every_fee_line_rounds_half_up(
    amount: int, international: bool, converted: bool, fees: list[int]
) -> None:
    lines = card_fees(amount, international=international, converted=converted)
    assert [f.amount for f in lines] == fees


def test_fee_schedule_fields_each_count() -> None:
    schedule = FeeSchedule(percent=Decimal("1"), fixed=7, international_percent=Decimal("2"),
                           conversion_percent=Decimal("3"))  # fmt: skip
    assert [f.amount for f in card_fees(1_000, international=True, converted=True,
                                        schedule=schedule)] == [17, 20, 30]  # fmt: skip
    assert US_CARD_PRICING.dispute_fee == 1_500


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [("12.5", "usd", 13), ("13.5", "usd", 14), ("12.49", "usd", 12), ("0.5", "jpy", 1),
     ("1235", "kwd", 1240), ("1234.9", "kwd", 1230), ("1225", "kwd", 1230), ("5", "kwd", 10)],
)  # fmt: skip
def test_round_amount_is_half_up_to_the_currency_step(
    value: str, currency: str, expected: int
) -> None:
    assert round_amount(Decimal(value), currency) == expected


def test_quantum_is_10_exactly_for_three_decimal_currencies() -> None:
    assert {c: quantum(c) for c in THREE_DECIMAL_CURRENCIES} == dict.fromkeys(THREE_DECIMAL_CURRENCIES, 10)
    assert {quantum(c) for c in (*ZERO_DECIMAL_CURRENCIES, "usd", "eur")} == {1}


@pytest.mark.parametrize(
    ("amount", "source", "target", "rate", "expected"),
    [
        (1_000, "jpy", "usd", "0.0067", 670),  # 1000 yen (no minor unit) -> 6.70 USD
        (1, "jpy", "usd", "0.005", 1),  # 0.5 cent rounds half-up, away from zero
        (-1, "jpy", "usd", "0.005", -1),  # and symmetrically for a refund
        (1_000, "kwd", "usd", "3.25", 325),  # 1.000 KWD (three decimals) -> 3.25 USD
        (100, "usd", "kwd", "0.3075", 310),  # 0.3075 KWD = 307.5 fils -> step 10: 310
        (100, "usd", "jpy", "150.5", 151),  # 150.5 yen -> 151
        (MAX_AMOUNT, "usd", "usd", "1", MAX_AMOUNT),
    ],
)
def test_convert_handles_each_exponent(
    amount: int, source: str, target: str, rate: str, expected: int
) -> None:
    assert convert(amount, source, target, Decimal(rate)) == expected


def test_proration_rounds_half_up_and_keeps_the_sign() -> None:
    assert prorate(3, remaining=1, period=2, currency="usd") == 2  # 1.5 -> 2
    assert prorate(-3, remaining=1, period=2, currency="usd") == -2
    assert prorate(1_000, remaining=1, period=2, currency="kwd") == 500
    with pytest.raises(ValueError, match="not within a period"):
        prorate(1_000, remaining=3, period=2, currency="usd")


def test_fee_lines_say_what_each_rule_is() -> None:
    lines = card_fees(10_000, international=True, converted=True)
    assert [(f.type, f.description) for f in lines] == [
        ("stripe_fee", "Stripe processing fee: 2.9% + 30"),
        ("stripe_fee", "International card fee: 1.5%"),
        ("stripe_fee", "Currency conversion fee: 1%"),
    ]
    (dispute,) = dispute_fees()
    assert (dispute.type, dispute.amount, dispute.description) == ("stripe_fee", 1_500, "Dispute fee")
    assert dispute_fees(FeeSchedule(dispute_fee=2_000))[0].amount == 2_000


@pytest.mark.parametrize(
    ("start", "interval", "count", "expected"),
    [
        ((2026, 1, 31), "month", 1, (2026, 2, 28)),  # month ends clamp
        ((2024, 1, 31), "month", 1, (2024, 2, 29)),  # leap year
        ((2026, 11, 30), "month", 3, (2027, 2, 28)),  # across a year end
        ((2026, 12, 15), "month", 1, (2027, 1, 15)),
        ((2026, 1, 15), "month", 12, (2027, 1, 15)),
        ((2024, 2, 29), "year", 1, (2025, 2, 28)),
        ((2026, 3, 10), "year", 2, (2028, 3, 10)),
        ((2026, 1, 1), "week", 2, (2026, 1, 15)),
        ((2026, 1, 30), "day", 3, (2026, 2, 2)),
    ],
)
def test_add_interval(start: tuple, interval: str, count: int, expected: tuple) -> None:
    begin = dt.datetime(*start, 9, 30, tzinfo=dt.UTC)
    end = add_interval(begin, interval, count)
    assert (end.year, end.month, end.day) == expected
    assert (end.hour, end.minute, end.tzinfo) == (9, 30, dt.UTC)


def test_add_interval_defaults_to_one_and_refuses_an_unknown_interval() -> None:
    begin = dt.datetime(2026, 1, 31, tzinfo=dt.UTC)
    assert add_interval(begin, "month") == dt.datetime(2026, 2, 28, tzinfo=dt.UTC)
    assert add_interval(begin, "day") == dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="unknown billing interval 'fortnight'"):
        add_interval(begin, "fortnight")


def test_proration_bounds() -> None:
    assert prorate(1_000, remaining=0, period=10, currency="usd") == 0
    assert prorate(1_000, remaining=10, period=10, currency="usd") == 1_000
    assert prorate(1_000, remaining=1, period=3, currency="jpy") == 333
    assert prorate(1_000, remaining=1, period=3, currency="kwd") == 330  # step of 10
    assert prorate(1_000, remaining=1, period=1, currency="usd") == 1_000  # a 1-second period
    assert prorate(1_000, remaining=3, period=4, currency="usd") == 750  # x remaining, / period
    for remaining, period in ((-1, 10), (11, 10), (0, 0), (1, -5)):
        with pytest.raises(ValueError, match=f"remaining {remaining}s is not within a period of {period}s"):
            prorate(1_000, remaining=remaining, period=period, currency="usd")


# --------------------------------------------------------------------- through the flows


@pytest.fixture
def pay(engine: sa.Engine) -> Iterator[Payments]:
    """Payments on a fresh schema, FX rates for the currencies used; invariants hold after."""
    create_schema(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(oltp_tables(engine)["fx_rates"]), [
            {"rate_date": START.date(), "currency": c, "usd_per_unit": Decimal(r)}
            for c, r in (("jpy", "0.0067"), ("kwd", "3.2547"), ("brl", "0.1789"), ("eur", "1.0873"))
        ])  # fmt: skip
    yield Payments(engine, clock=ManualClock(START), ids=SequentialIds())
    assert [r for r in check_invariants(engine) if not r.ok] == []


def _charge(pay: Payments, amount: int, currency: str, card: str = "visa") -> str:
    cus = pay.create_customer(email="ana@example.com")["id"]
    pm = pay.create_payment_method(card)["id"]
    pay.attach_payment_method(pm, customer_id=cus)
    pi = pay.create_payment_intent(amount, currency, customer_id=cus, payment_method_id=pm,
                                   confirm=True)  # fmt: skip
    assert pi["status"] == "succeeded"
    return pi["latest_charge"]


def _txn(engine: sa.Engine, **where: str) -> dict:
    (row,) = rows(engine, "balance_transactions", **where)
    return row


def test_a_500_cent_us_card_charge_settles_with_a_fee_of_45(engine: sa.Engine, pay: Payments) -> None:
    charge = _charge(pay, 500, "usd")
    txn = _txn(engine, charge_id=charge)
    assert (txn["amount"], txn["fee"], txn["net"]) == (500, 45, 455)


def test_the_largest_amount_is_accepted_and_one_more_is_refused(
    engine: sa.Engine, pay: Payments
) -> None:
    charge = _charge(pay, MAX_AMOUNT, "usd")
    txn = _txn(engine, charge_id=charge)
    assert txn["amount"] == MAX_AMOUNT
    assert txn["fee"] == round_amount(Decimal(MAX_AMOUNT) * Decimal("0.029"), "usd") + 30
    with pytest.raises(InvalidRequest, match=f"not between 1 and {MAX_AMOUNT}"):
        pay.create_payment_intent(MAX_AMOUNT + 1, "usd")
    assert rows(engine, "payment_intents", amount=MAX_AMOUNT + 1) == []


def test_a_zero_decimal_charge_is_whole_yen_settled_in_cents(engine: sa.Engine, pay: Payments) -> None:
    assert EXPONENTS["jpy"] == 0
    charge = _charge(pay, 500, "jpy")  # 500 yen, not 5.00
    (row,) = rows(engine, "charges", id=charge)
    assert (row["amount"], row["currency"]) == (500, "jpy")
    txn = _txn(engine, charge_id=charge)
    assert (txn["currency"], txn["amount"]) == ("usd", 335)  # 500 x 0.0067 USD = 3.35
    assert txn["exchange_rate"] == Decimal("0.0067")
    assert txn["fee"] == sum(f.amount for f in card_fees(335, international=False, converted=True))


def test_a_three_decimal_amount_must_end_in_zero(engine: sa.Engine, pay: Payments) -> None:
    with pytest.raises(InvalidRequest, match="amount 1005 in kwd must be a multiple of 10"):
        pay.create_payment_intent(1_005, "kwd")
    charge = _charge(pay, 1_010, "kwd")  # 1.010 KWD
    txn = _txn(engine, charge_id=charge)
    assert txn["amount"] == 329  # 1.010 x 3.2547 = 3.287 USD -> 329 cents
    with pytest.raises(InvalidRequest, match="must be a multiple of 10"):
        pay.refund_charge(charge, amount=5)


@pytest.mark.parametrize(("amount", "currency"), [(46_745, "brl"), (7_000, "jpy"), (2_370, "kwd")])
def test_a_full_refund_settles_to_minus_the_charge(
    engine: sa.Engine, pay: Payments, amount: int, currency: str
) -> None:
    charge = _charge(pay, amount, currency)
    refund = pay.refund_charge(charge)
    assert refund["amount"] == amount
    settled = _txn(engine, charge_id=charge)
    back = _txn(engine, refund_id=refund["id"])
    assert back["currency"] == settled["currency"] == "usd"
    assert back["amount"] == -settled["amount"]
    assert back["exchange_rate"] == settled["exchange_rate"]


@pytest.mark.parametrize(
    ("amount", "currency", "parts"),
    [(46_745, "brl", (1, 20_000, 26_744)), (7_001, "jpy", (1, 3_500, 3_500)),
     (2_370, "kwd", (10, 1_180, 1_180))],
)  # fmt: skip
def test_partial_refunds_settle_to_minus_the_charge(
    engine: sa.Engine, pay: Payments, amount: int, currency: str, parts: tuple[int, ...]
) -> None:
    charge = _charge(pay, amount, currency)
    for part in parts:
        pay.refund_charge(charge, amount=part)
    settled = _txn(engine, charge_id=charge)["amount"]
    refunds = rows(engine, "refunds", charge_id=charge)
    back = [_txn(engine, refund_id=r["id"])["amount"] for r in refunds]
    assert sum(back) == -settled
    assert all(b <= 0 for b in back)
    (row,) = rows(engine, "charges", id=charge)
    assert (row["amount_refunded"], row["refunded"]) == (amount, True)
