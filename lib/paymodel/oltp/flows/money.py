"""Money arithmetic of the flows: fees, currency conversion, proration. Pure functions.

Amounts are integers in minor units; rates and percentages are :class:`~decimal.Decimal`;
every rounding is half-up to the unit (a three-decimal currency rounds to a multiple of
10, Stripe's rule that its last digit is 0).

Example:
    >>> [(f.description, f.amount) for f in card_fees(10_000, international=True, converted=False)]
    [('Stripe processing fee: 2.9% + 30', 320), ('International card fee: 1.5%', 150)]
    >>> prorate(3_000, remaining=15 * 86_400, period=30 * 86_400, currency="usd")
    1500
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from paymodel.model.oltp import THREE_DECIMAL_CURRENCIES
from paymodel.model.reference import EXPONENTS

__all__ = [
    "US_CARD_PRICING",
    "FeeLine",
    "FeeSchedule",
    "add_interval",
    "card_fees",
    "convert",
    "dispute_fees",
    "prorate",
    "quantum",
    "round_amount",
]


@dataclass(frozen=True)
class FeeSchedule:
    """Stripe's published card pricing for an account in the United States.

    Attributes:
        currency: Settlement currency; fixed fees are in its minor units.
        percent: Percentage of every successful card charge.
        fixed: Fixed fee per successful card charge, minor units.
        international_percent: Extra percentage when the card is issued abroad.
        conversion_percent: Extra percentage when the charge is converted.
        dispute_fee: Fee withdrawn when a dispute opens, minor units.
    """

    currency: str = "usd"
    percent: Decimal = Decimal("2.9")
    fixed: int = 30
    international_percent: Decimal = Decimal("1.5")
    conversion_percent: Decimal = Decimal("1")
    dispute_fee: int = 1_500


US_CARD_PRICING = FeeSchedule()
"""2.9% + 30 cents, +1.5% international, +1% conversion, 15 USD per dispute."""


@dataclass(frozen=True)
class FeeLine:
    """One line of a balance transaction's ``fee_details``."""

    type: str
    amount: int
    description: str


def quantum(currency: str) -> int:
    """The smallest amount step of a currency, minor units (10 for three-decimal ones).

    Example:
        >>> quantum("usd"), quantum("kwd")
        (1, 10)
    """
    return 10 if currency in THREE_DECIMAL_CURRENCIES else 1


def round_amount(value: Decimal, currency: str) -> int:
    """Round a fractional minor-unit amount half-up to the currency's step.

    Example:
        >>> round_amount(Decimal("12.5"), "usd"), round_amount(Decimal("1234"), "kwd")
        (13, 1230)
    """
    step = quantum(currency)
    return int((value / step).quantize(Decimal(1), rounding=ROUND_HALF_UP)) * step


def _percent_of(amount: int, percent: Decimal) -> int:
    return int((Decimal(amount) * percent / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _pct(p: Decimal) -> str:
    return f"{p.normalize():f}%"


def card_fees(
    settled_amount: int,
    *,
    international: bool,
    converted: bool,
    schedule: FeeSchedule = US_CARD_PRICING,
) -> list[FeeLine]:
    """Stripe fees on a successful card charge, one line per rule, each rounded to the unit.

    Args:
        settled_amount: The charge in the settlement currency, minor units.
        international: The card was issued outside the account's country.
        converted: The charge's currency differs from the settlement currency.
        schedule: The pricing.

    Returns:
        The fee lines; the balance transaction's fee is their sum.

    Example:
        >>> sum(f.amount for f in card_fees(2_000, international=False, converted=True))
        108
    """
    lines = [
        FeeLine(
            "stripe_fee",
            _percent_of(settled_amount, schedule.percent) + schedule.fixed,
            f"Stripe processing fee: {_pct(schedule.percent)} + {schedule.fixed}",
        )
    ]
    if international:
        lines.append(
            FeeLine(
                "stripe_fee",
                _percent_of(settled_amount, schedule.international_percent),
                f"International card fee: {_pct(schedule.international_percent)}",
            )
        )
    if converted:
        lines.append(
            FeeLine(
                "stripe_fee",
                _percent_of(settled_amount, schedule.conversion_percent),
                f"Currency conversion fee: {_pct(schedule.conversion_percent)}",
            )
        )
    return lines


def dispute_fees(schedule: FeeSchedule = US_CARD_PRICING) -> list[FeeLine]:
    """The fee withdrawn when a dispute opens.

    Example:
        >>> dispute_fees()[0].amount
        1500
    """
    return [FeeLine("stripe_fee", schedule.dispute_fee, "Dispute fee")]


def convert(amount: int, source: str, target: str, rate: Decimal) -> int:
    """Convert minor units of ``source`` into minor units of ``target``.

    Args:
        amount: Minor units of ``source`` (may be negative).
        source: Currency of ``amount``.
        target: Currency wanted.
        rate: Major units of ``target`` per major unit of ``source``.

    Example:
        >>> convert(1_000, "jpy", "usd", Decimal("0.0067"))  # 1000 JPY at 0.0067 USD/JPY
        670
        >>> convert(-1_000, "jpy", "usd", Decimal("0.0067"))
        -670
    """
    major = Decimal(amount) / (Decimal(10) ** EXPONENTS[source])
    value = major * rate * (Decimal(10) ** EXPONENTS[target])
    sign = -1 if value < 0 else 1
    return sign * round_amount(abs(value), target)


def prorate(amount: int, *, remaining: int, period: int, currency: str) -> int:
    """The share of ``amount`` for ``remaining`` seconds of a ``period``-second period.

    Example:
        >>> prorate(1_000, remaining=1, period=3, currency="usd")
        333
    """
    if period <= 0 or not 0 <= remaining <= period:
        raise ValueError(f"proration: remaining {remaining}s is not within a period of {period}s")
    sign = -1 if amount < 0 else 1
    return sign * round_amount(Decimal(abs(amount)) * remaining / period, currency)


def add_interval(start: dt.datetime, interval: str, count: int = 1) -> dt.datetime:
    """``start`` plus ``count`` billing intervals; month ends clamp (Jan 31 + 1 month = Feb 28/29).

    Example:
        >>> add_interval(dt.datetime(2026, 1, 31, tzinfo=dt.UTC), "month").date()
        datetime.date(2026, 2, 28)
        >>> add_interval(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "week", 2).date()
        datetime.date(2026, 1, 15)
    """
    if interval == "day":
        return start + dt.timedelta(days=count)
    if interval == "week":
        return start + dt.timedelta(weeks=count)
    if interval not in ("month", "year"):
        raise ValueError(f"unknown billing interval {interval!r}")
    months = count * (12 if interval == "year" else 1)
    month0 = start.month - 1 + months
    year, month = start.year + month0 // 12, month0 % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)
