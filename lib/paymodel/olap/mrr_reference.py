"""MRR recomputed from the OLTP tables and the event log, in plain Python: the oracle.

A second, deliberately independent implementation of the MRR rules, used by the tests
and notebook 07 to check the Ibis marts (:mod:`paymodel.olap.mrr`) and the star they read.
It shares no code with them: no Ibis, no SQL beyond reading whole tables, no star.
It replays each subscription's ``customer.subscription.*`` snapshots from the event log
and prices them with the OLTP ``prices``, ``discounts`` and ``coupons`` rows.

The rules (the project's MRR definition):

* a subscription counts in a month when, at the month's end (the data's as-of time for
  the last month), its latest snapshot has status ``active`` or ``past_due``; trials,
  ``unpaid``, ``incomplete`` and ended subscriptions count 0;
* an item counts ``unit_amount x quantity`` of a recurring, licensed, per-unit price,
  normalised to a month: day x 365/12, week x 52/12, month / interval_count,
  year / (12 x interval_count). Metered and one-time prices count 0;
* a ``forever`` or ``repeating`` discount applying at that instant reduces the
  subscription's MRR (percent_off on the amount; amount_off normalised by the
  subscription's interval like a price, never below 0); a subscription's own discount
  wins over its customer's. ``once`` coupons reduce one invoice, not MRR;
* each subscription's MRR is rounded to the minor unit, half away from zero.

Example:
    >>> price = {"id": "p", "currency": "usd", "unit_amount": 12000, "type": "recurring",
    ...          "billing_scheme": "per_unit", "recurring_interval": "year",
    ...          "recurring_interval_count": 1, "recurring_usage_type": "licensed"}
    >>> sub = {"id": "s", "customer": "c", "status": "active", "currency": "usd",
    ...        "items": {"data": [{"price": "p", "quantity": 2}]}}
    >>> subscription_mrr(sub, {"p": price}, [], {}, at=0)
    2000
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

__all__ = [
    "LIVE_STATUSES",
    "ReferenceMovement",
    "month_starts",
    "reference_movements",
    "subscription_months",
    "subscription_mrr",
]

LIVE_STATUSES = frozenset({"active", "past_due"})
"""Subscription statuses whose items count in MRR."""

_PER_MONTH = {
    "day": Fraction(365, 12),
    "week": Fraction(52, 12),
    "month": Fraction(1),
    "year": Fraction(1, 12),
}


def _epoch(value: Any) -> int:
    """Unix seconds of an int, a datetime (naive means UTC) or a date."""
    if value is None:
        raise ValueError("no time given")
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return int(value.timestamp())
    if isinstance(value, dt.date):
        return int(dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC).timestamp())
    raise TypeError(f"not a time: {value!r}")


def _per_month(interval: str, count: int) -> Fraction:
    return _PER_MONTH[interval] / count


def _round(value: Fraction) -> int:
    return int(
        (Decimal(value.numerator) / Decimal(value.denominator)).quantize(
            Decimal(1), rounding=ROUND_HALF_UP
        )
    )


def _discount_applies(d: Mapping[str, Any], coupon: Mapping[str, Any], at: int) -> bool:
    if coupon["duration"] == "once":
        return False
    if _epoch(d["starts_at"]) > at:
        return False
    ends = d.get("ends_at")
    if ends is None and coupon["duration"] == "repeating":
        start = dt.datetime.fromtimestamp(_epoch(d["starts_at"]), dt.UTC)
        months = int(coupon["duration_in_months"])
        y, m = divmod(start.month - 1 + months, 12)
        ends = start.replace(year=start.year + y, month=m + 1)
    return ends is None or at < _epoch(ends)


def subscription_mrr(
    sub: Mapping[str, Any],
    prices: Mapping[str, Mapping[str, Any]],
    discounts: Sequence[Mapping[str, Any]],
    coupons: Mapping[str, Mapping[str, Any]],
    at: int,
) -> int:
    """MRR of one subscription snapshot (Stripe shape) at unix time ``at``, minor units."""
    if sub["status"] not in LIVE_STATUSES:
        return 0
    trial_end = sub.get("trial_end")
    if trial_end is not None and _epoch(trial_end) > at:
        return 0
    total = Fraction(0)
    interval = None
    for item in sub["items"]["data"]:
        price = prices[item["price"]]
        if price["type"] != "recurring":
            continue
        interval = (price["recurring_interval"], int(price["recurring_interval_count"]))
        if price["recurring_usage_type"] != "licensed" or price["unit_amount"] is None:
            continue
        qty = item.get("quantity")
        qty = 1 if qty is None else int(qty)
        total += Fraction(int(price["unit_amount"]) * qty) * _per_month(*interval)
    customer = sub["customer"]
    own = [d for d in discounts if d.get("subscription_id") == sub["id"]]
    mine = own or [
        d for d in discounts if d.get("subscription_id") is None and d["customer_id"] == customer
    ]
    for d in mine:
        coupon = coupons[d["coupon_id"]]
        if not _discount_applies(d, coupon, at):
            continue
        if coupon["percent_off"] is not None:
            total *= 1 - Fraction(Decimal(str(coupon["percent_off"]))) / 100
        elif interval is not None:
            total = max(Fraction(0), total - int(coupon["amount_off"]) * _per_month(*interval))
    return _round(total)


def month_starts(first: dt.date, last: dt.date) -> list[dt.date]:
    """First days of every month from ``first``'s month to ``last``'s month, inclusive."""
    out, y, m = [], first.year, first.month
    while (y, m) <= (last.year, last.month):
        out.append(dt.date(y, m, 1))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _next_month(day: dt.date) -> dt.date:
    return dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)


def subscription_months(
    events: Iterable[Mapping[str, Any]],
    prices: Iterable[Mapping[str, Any]],
    discounts: Iterable[Mapping[str, Any]],
    coupons: Iterable[Mapping[str, Any]],
    as_of: Any,
    first_month: dt.date | None = None,
) -> list[dict[str, Any]]:
    """One row per subscription and month with its MRR at the month's end.

    Args:
        events: Stripe events (``type``, ``created``, ``data.object``); only
            ``customer.subscription.*`` ones are read, in ``created`` order.
        prices, discounts, coupons: OLTP rows (dicts keyed by column name).
        as_of: the data's as-of time; the last month is measured there.
        first_month: first month reported (default: the first subscription event's).

    Returns:
        dicts with ``subscription_id``, ``customer_id``, ``currency``, ``month``, ``status``,
        ``mrr``, for every month from the subscription's first snapshot to the as-of month.
    """
    at_end = _epoch(as_of)
    history: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for ev in events:
        if ev["type"].startswith("customer.subscription."):
            created = _epoch(ev["created"])
            if created <= at_end:
                history[ev["data"]["object"]["id"]].append((created, ev["data"]["object"]))
    by_price = {p["id"]: p for p in prices}
    by_coupon = {c["id"]: c for c in coupons}
    discount_rows = list(discounts)
    last = dt.datetime.fromtimestamp(at_end, dt.UTC).date()
    out = []
    for sub_id in sorted(history):
        snaps = sorted(history[sub_id], key=lambda s: s[0])
        start = dt.datetime.fromtimestamp(snaps[0][0], dt.UTC).date()
        months = month_starts(first_month or start.replace(day=1), last)
        i, current = 0, None
        for month in months:
            at = min(_epoch(_next_month(month)) - 1, at_end)
            while i < len(snaps) and snaps[i][0] <= at:
                current = snaps[i][1]
                i += 1
            if current is None:
                continue
            out.append(
                {
                    "subscription_id": sub_id,
                    "customer_id": current["customer"],
                    "currency": current["currency"],
                    "month": month,
                    "status": current["status"],
                    "mrr": subscription_mrr(current, by_price, discount_rows, by_coupon, at),
                }
            )
    return out


@dataclass(frozen=True)
class ReferenceMovement:
    """One customer's MRR movement in one month and currency."""

    customer_id: str
    currency: str
    month: dt.date
    opening_mrr: int
    closing_mrr: int
    movement: str


def reference_movements(
    rows: Iterable[Mapping[str, Any]], months: Sequence[dt.date]
) -> list[ReferenceMovement]:
    """Movements per customer, month and currency, classified with plain ``if``s.

    ``rows`` carry ``customer_id``, ``currency``, ``month``, ``mrr`` (several per customer and
    month are summed); ``months`` is the calendar, ending at the as-of month.
    """
    closing: dict[tuple[str, str], dict[dt.date, int]] = defaultdict(lambda: defaultdict(int))
    for r in rows:
        closing[(r["customer_id"], r["currency"])][r["month"]] += int(r["mrr"])
    out = []
    for (customer, currency), by_month in sorted(closing.items()):
        opening, churned_before, paid_before = 0, False, False
        for month in sorted(months):
            value = by_month.get(month, 0)
            if opening == 0 and value == 0:
                continue
            if opening == 0:
                kind = "reactivation" if paid_before and churned_before else "new"
            elif value == 0:
                kind, churned_before = "churn", True
            elif value > opening:
                kind = "expansion"
            elif value < opening:
                kind = "contraction"
            else:
                kind = "none"
            paid_before = paid_before or value > 0
            out.append(ReferenceMovement(customer, currency, month, opening, value, kind))
            opening = value
    return out
