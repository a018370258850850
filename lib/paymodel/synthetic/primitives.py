"""Vectorised building blocks: random streams, Stripe-like ids, calendar arithmetic, money.

Every random draw comes from a :class:`numpy.random.Generator` keyed by
``(seed, stream, chunk)``, so a chunk's output does not depend on which chunks ran
before it, and adding a draw to one stream never shifts another.

Example:
    >>> ids = stripe_ids(rng(7, "ids", 0), "cus_", 3)
    >>> [len(i) for i in ids], all(i.startswith("cus_") for i in ids)
    ([18, 18, 18], True)
    >>> list(stripe_ids(rng(7, "ids", 0), "cus_", 3)) == list(ids)
    True
    >>> import datetime as dt
    >>> jan31 = int(dt.datetime(2024, 1, 31, 12, tzinfo=dt.UTC).timestamp())
    >>> [dt.datetime.fromtimestamp(int(t), dt.UTC).date().isoformat()
    ...  for t in add_months(np.array([jan31] * 3), np.array([1, 2, 13]))]
    ['2024-02-29', '2024-03-31', '2025-02-28']
    >>> quantize(np.array([12345, 12345]), np.array([3, 2])).tolist()
    [12340, 12345]
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "DAY",
    "HOUR",
    "NA",
    "add_months",
    "convert_minor",
    "per_mille",
    "quantize",
    "rng",
    "stripe_ids",
    "zero_padded",
]

DAY = 86_400
HOUR = 3_600
NA = np.iinfo(np.int64).min
"""Sentinel for a NULL in an integer or timestamp column."""

_STREAMS = (
    "catalog", "fx", "signups", "customers", "ids", "subscriptions", "invoices",
    "payments", "refunds", "disputes", "documents", "pools", "events", "payouts", "cards",
)  # fmt: skip
_ALPHABET = np.frombuffer(
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8
)


def rng(seed: int, stream: str, chunk: int = 0) -> np.random.Generator:
    """The random generator of one stream of one chunk (independent of every other)."""
    key = (_STREAMS.index(stream), chunk)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


def stripe_ids(gen: np.random.Generator, prefix: str, n: int, length: int = 14) -> np.ndarray:
    """``n`` ids shaped like Stripe's: ``prefix`` + ``length`` base62 characters."""
    codes = _ALPHABET[gen.integers(0, 62, size=(n, length), dtype=np.uint8)]
    raw = np.ascontiguousarray(codes).view(f"S{length}").ravel().astype(f"U{length}")
    return np.char.add(prefix, raw).astype(object)


def zero_padded(values: np.ndarray, width: int) -> np.ndarray:
    """Integers as zero-padded decimal strings (an object array; empty input is fine).

    Example:
        >>> zero_padded(np.array([7, 1234]), 4).tolist()
        ['0007', '1234']
    """
    values = np.asarray(values, dtype=np.int64)
    if values.size == 0:
        return np.zeros(0, dtype=object)
    return np.char.zfill(values.astype(str), width).astype(object)


def add_months(ts: np.ndarray, months: np.ndarray | int) -> np.ndarray:
    """Unix seconds ``ts`` moved by ``months`` calendar months, day clamped to the month end.

    This is Stripe's billing-cycle rule: a subscription anchored on the 31st renews on
    the last day of shorter months and on the 31st again when the month has one.
    """
    d = np.asarray(ts, dtype=np.int64).astype("datetime64[s]")
    day = d.astype("datetime64[D]")
    tod = (d - day.astype("datetime64[s]")).astype(np.int64)
    month = day.astype("datetime64[M]")
    dom = (day - month.astype("datetime64[D]")).astype(np.int64)
    target = month + np.asarray(months, dtype=np.int64)
    dim = ((target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(np.int64)
    out = target.astype("datetime64[D]") + np.minimum(dom, dim - 1)
    return out.astype("datetime64[s]").astype(np.int64) + tod


def quantize(amount: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """Round amounts down to what the currency allows (a multiple of 10 with 3 decimals)."""
    amount = np.asarray(amount, dtype=np.int64)
    q = np.where(np.asarray(exponent) == 3, 10, 1)
    return (amount // q) * q


def per_mille(amount: np.ndarray, rate: int | np.ndarray) -> np.ndarray:
    """``amount * rate / 1000`` rounded half up, in integers."""
    x = np.asarray(amount, dtype=np.int64) * rate
    return (x + 500) // 1000


def convert_minor(
    amount: np.ndarray, exponent: np.ndarray, usd_per_unit_scaled: np.ndarray
) -> np.ndarray:
    """Convert minor units of a currency to US cents, exactly, rounding half up.

    Args:
        amount: amounts in the currency's minor unit (may be negative).
        exponent: the currency's exponent per amount (0, 2 or 3).
        usd_per_unit_scaled: US dollars per major unit, times 10^10.

    Returns:
        ``round(amount / 10^exponent * usd_per_unit * 100)`` computed in int64
        (amounts up to 10^8 and rates up to 9 x 10^10 stay below 2^63).
    """
    amount = np.asarray(amount, dtype=np.int64)
    sign = np.sign(amount)
    num = np.abs(amount) * np.asarray(usd_per_unit_scaled, dtype=np.int64)
    den = (10 ** np.asarray(exponent, dtype=np.int64)) * 10**8
    return sign * ((num + den // 2) // den)
