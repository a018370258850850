"""What the account sells (products, prices, coupons) and the daily FX rates.

These small tables are built once per run, before any customer, from their own
random streams.

Example:
    >>> import datetime as dt
    >>> cat = build_catalog(0, int(dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp()))
    >>> int(cat.prices["unit_amount"][cat.price_index("starter", "month", "jpy")])
    2800
    >>> int(cat.prices["unit_amount"][cat.price_index("starter", "month", "kwd")]) % 10
    0
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from paymodel.model.reference import EXPONENTS
from paymodel.synthetic import config as C
from paymodel.synthetic.primitives import DAY, NA, rng, stripe_ids

__all__ = ["Catalog", "Frame", "build_catalog", "build_fx_rates"]

Frame = dict[str, np.ndarray]
"""Columns of one table as numpy arrays (object arrays for text, :data:`NA` for NULL ints)."""

CATALOG_LEAD_DAYS = 30
"""The catalog is created this many days before the first customer."""

_FX = {c.currency: c.usd_per_unit for c in C.COUNTRIES}


def _nice_price(usd: float, currency: str) -> int:
    """A list price in minor units: the USD price converted and rounded to a round figure."""
    major = usd / _FX[currency]
    exp = EXPONENTS[currency]
    step = 100 if major >= 1000 else (1 if major >= 5 else 0.1)
    if exp == 0:
        step = max(step, 100 if major >= 1000 else 10)
    rounded = max(step, round(major / step) * step)
    minor = round(rounded * 10**exp)
    return minor - minor % 10 if exp == 3 else minor


@dataclass(frozen=True)
class Catalog:
    """Products, prices and coupons, with lookups the simulation uses."""

    products: Frame
    prices: Frame
    coupons: Frame
    created: int
    price_keys: dict[tuple[str, str, str], int]
    """(product key, interval or 'one_time', currency) -> row index in ``prices``."""

    def price_index(self, product: str, interval: str, currency: str) -> int:
        return self.price_keys[(product, interval, currency)]

    def tier_price_table(self) -> np.ndarray:
        """Row index of the licensed price per (tier, yearly?, currency index)."""
        out = np.zeros((len(C.TIERS), 2, len(C.CURRENCIES)), dtype=np.int64)
        for t, tier in enumerate(C.TIERS):
            for y, interval in enumerate(("month", "year")):
                for k, cur in enumerate(C.CURRENCIES):
                    out[t, y, k] = self.price_keys[(tier, interval, cur)]
        return out


def build_catalog(seed: int, start_ts: int) -> Catalog:
    """Products, prices in every currency (monthly, yearly, metered, one-time) and coupons."""
    gen = rng(seed, "catalog")
    created = start_ts - CATALOG_LEAD_DAYS * DAY
    product_specs = [
        ("starter", "Starter", "For individuals: one workspace, core reports."),
        ("team", "Team", "Per seat: shared workspaces, roles, audit log."),
        ("business", "Business", "SSO, priority support and unlimited history."),
        ("api", "API usage", "Metered API requests, billed per 1,000 in arrears."),
        *((key, name, f"One-time {name.lower()}.") for key, name, _ in C.ONE_TIME_PRODUCTS_USD),
    ]
    n_prod = len(product_specs)
    prod_ids = stripe_ids(gen, "prod_", n_prod)
    products: Frame = {
        "id": prod_ids,
        "name": np.array([p[1] for p in product_specs], dtype=object),
        "description": np.array([p[2] for p in product_specs], dtype=object),
        "active": np.ones(n_prod, dtype=bool),
        "created": created + np.arange(n_prod, dtype=np.int64),
        "metadata": np.array([json.dumps({"key": p[0]}) for p in product_specs], dtype=object),
    }
    prod_of = {p[0]: i for i, p in enumerate(product_specs)}
    rows: list[dict[str, object]] = []
    keys: dict[tuple[str, str, str], int] = {}
    for cur in C.CURRENCIES:
        for t, tier in enumerate(C.TIERS):
            monthly = C.TIER_MONTHLY_USD[t]
            for interval, usd in (("month", monthly), ("year", monthly * 10)):
                keys[(tier, interval, cur)] = len(rows)
                rows.append(dict(product=tier, currency=cur, unit_amount=_nice_price(usd, cur),
                                 type="recurring", interval=interval, usage="licensed",
                                 nickname=f"{product_specs[t][1]} {interval}ly ({cur.upper()})"))  # fmt: skip
        keys[("api", "month", cur)] = len(rows)
        exp = EXPONENTS[cur]
        metered = max(1, round(C.METERED_USD_PER_1000 / _FX[cur] * 10**exp))
        if exp == 3:
            metered = max(10, metered - metered % 10)
        rows.append(dict(product="api", currency=cur, unit_amount=metered, type="recurring",
                         interval="month", usage="metered", nickname=f"API per 1,000 ({cur.upper()})"))  # fmt: skip
        for key, name, usd in C.ONE_TIME_PRODUCTS_USD:
            keys[(key, "one_time", cur)] = len(rows)
            rows.append(dict(product=key, currency=cur, unit_amount=_nice_price(usd, cur),
                             type="one_time", interval=None, usage=None, nickname=f"{name} ({cur.upper()})"))  # fmt: skip
    # A retired price nobody uses any more: the catalog has history.
    rows.append(dict(product="starter", currency="usd", unit_amount=1500, type="recurring",
                     interval="month", usage="licensed", nickname="Starter monthly (2023 price)",
                     retired=True))  # fmt: skip
    n = len(rows)
    price_ids = stripe_ids(gen, "price_", n)
    interval = np.array([r["interval"] for r in rows], dtype=object)
    prices: Frame = {
        "id": price_ids,
        "product_id": np.array([prod_ids[prod_of[str(r["product"])]] for r in rows], dtype=object),
        "currency": np.array([r["currency"] for r in rows], dtype=object),
        "unit_amount": np.array([r["unit_amount"] for r in rows], dtype=np.int64),
        "type": np.array([r["type"] for r in rows], dtype=object),
        "billing_scheme": np.full(n, "per_unit", dtype=object),
        "recurring_interval": interval,
        "recurring_interval_count": np.where(interval == None, NA, 1).astype(np.int64),  # noqa: E711
        "recurring_usage_type": np.array([r["usage"] for r in rows], dtype=object),
        "nickname": np.array([r["nickname"] for r in rows], dtype=object),
        "lookup_key": np.array(
            [None if r.get("retired") else f"{r['product']}_{r['interval'] or 'once'}_{r['currency']}"
             for r in rows], dtype=object),
        "active": np.array([not r.get("retired") for r in rows], dtype=bool),
        "created": created + n_prod + np.arange(n, dtype=np.int64),
        "metadata": np.full(n, "{}", dtype=object),
    }
    nc = len(C.COUPONS)
    coupons: Frame = {
        "id": np.array([c[0] for c in C.COUPONS], dtype=object),
        "name": np.array([c[1] for c in C.COUPONS], dtype=object),
        "percent_off": np.array(
            [NA if c[2] is None else c[2] * C.RATE_SCALE for c in C.COUPONS], dtype=np.int64
        ),
        "amount_off": np.array([NA if c[3] is None else c[3] for c in C.COUPONS], dtype=np.int64),
        "currency": np.array([None if c[3] is None else "usd" for c in C.COUPONS], dtype=object),
        "duration": np.array([c[4] for c in C.COUPONS], dtype=object),
        "duration_in_months": np.array([NA if c[5] is None else c[5] for c in C.COUPONS], dtype=np.int64),
        "valid": np.ones(nc, dtype=bool),
        "created": created + n_prod + n + np.arange(nc, dtype=np.int64),
        "metadata": np.full(nc, "{}", dtype=object),
    }
    return Catalog(products, prices, coupons, created, keys)


def build_fx_rates(seed: int, first_day: int, last_day: int) -> Frame:
    """Daily rates (USD per major unit) from ``first_day`` to ``last_day`` (day numbers).

    Each currency follows a random walk in log space around its reference rate; USD is 1.
    Rates are integers scaled by 10^10 (exact decimals with 10 places in the table).
    """
    gen = rng(seed, "fx")
    days = np.arange(first_day, last_day + 1, dtype=np.int64)
    cols_day, cols_cur, cols_rate = [], [], []
    for cur in C.CURRENCIES:
        if cur == "usd":
            walk = np.zeros(len(days))
        else:
            steps = gen.normal(0.0, C.FX_DAILY_VOLATILITY, len(days))
            walk = np.cumsum(steps) - steps[0]
        rate = np.round(_FX[cur] * np.exp(walk) * C.RATE_SCALE).astype(np.int64)
        cols_day.append(days)
        cols_cur.append(np.full(len(days), cur, dtype=object))
        cols_rate.append(rate)
    return {
        "rate_date": np.concatenate(cols_day),
        "currency": np.concatenate(cols_cur),
        "usd_per_unit": np.concatenate(cols_rate),
    }
