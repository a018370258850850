"""A small flat payments export, as a dashboard's "Export CSV" button gives it.

One row per succeeded card charge, with the facts of its customer, card, price,
product and currency repeated on every row, and Stripe's fee lines as a repeating group:
two parallel comma-separated lists, ``fee_types`` (``stripe_fee,tax``) and
``fee_amounts`` (``59,12``). Every succeeded charge has at least one fee line, so
flattening the lists never leaves a charge without a row.

It is the starting point of notebook 02 (normalisation): :data:`DEPENDENCIES` are the
functional dependencies that hold by construction (and in the domain), and the
normalisation tools of :mod:`paymodel.model.normalization` check them on the rows.

Built with numpy from fixed pools (no fake-data library), deterministic per seed.

Example:
    >>> export = payments_export(n_rows=12, seed=1)
    >>> len(export), export["charge_id"].is_unique
    (12, True)
    >>> from paymodel.model.normalization import holds
    >>> holds(export, "customer_id", ["customer_email", "customer_name"])
    True
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from paymodel.model.normalization import FunctionalDependency, fd
from paymodel.model.reference import CURRENCIES, EXPONENTS

__all__ = ["COLUMNS", "DEPENDENCIES", "FEE_LISTS", "KEY_CANDIDATES", "payments_export"]

COLUMNS = (
    "charge_id",
    "created",
    "amount",
    "amount_refunded",
    "currency",
    "currency_name",
    "currency_exponent",
    "customer_id",
    "customer_email",
    "customer_name",
    "payment_method_id",
    "card_brand",
    "card_funding",
    "card_last4",
    "card_exp_month",
    "card_exp_year",
    "card_country",
    "price_id",
    "price_nickname",
    "product_id",
    "product_name",
    "fee_types",
    "fee_amounts",
)
"""The export's columns, in order."""

FEE_LISTS = {"fee_types": "fee_type", "fee_amounts": "fee_amount"}
"""The repeating group: list column -> the column of its items after flattening."""

DEPENDENCIES: tuple[FunctionalDependency, ...] = (
    fd("charge_id -> created, amount, amount_refunded, currency, customer_id, "
       "payment_method_id, price_id"),
    fd("charge_id, fee_type -> fee_amount"),
    fd("customer_id -> customer_email, customer_name"),
    fd("payment_method_id -> customer_id, card_brand, card_funding, card_last4, "
       "card_exp_month, card_exp_year, card_country"),
    fd("price_id -> product_id, price_nickname"),
    fd("product_id -> product_name"),
    fd("currency -> currency_name, currency_exponent"),
)  # fmt: skip
"""The functional dependencies of the flattened export (one row per charge and fee line).

They hold because of what the columns mean, not because of this sample: a payment
method belongs to one customer, a price to one product, a charge has one fee line per
fee type. Two that do *not* hold: ``customer_email -> customer_id`` (Stripe lets two
customers share an email) and ``price_id -> amount`` (quantities differ).
"""

KEY_CANDIDATES = ("charge_id", "fee_type", "customer_id", "payment_method_id", "price_id",
                  "product_id", "currency")  # fmt: skip
"""Columns that can be part of a key in the domain (identifiers and codes)."""

_CURRENCIES = ("usd", "eur", "gbp", "jpy")
_UNITS_PER_USD = {"usd": 1.0, "eur": 0.9, "gbp": 0.8, "jpy": 150.0}
_FIXED_FEE = {"usd": 30, "eur": 25, "gbp": 20, "jpy": 0}
_FEE_VAT = {"eur": 20, "gbp": 20}
"""Percent of VAT Stripe charges on its fee, as a separate ``tax`` fee line."""

_PRODUCTS = (("prod_QkA1", "Starter plan"), ("prod_QkB2", "Team plan"), ("prod_QkC3", "Extra seats"))
_PRICES = (  # price id, product index, nickname, list price in USD
    ("price_1Aa", 0, "Starter monthly", 12.0),
    ("price_1Ab", 0, "Starter yearly", 120.0),
    ("price_1Ba", 1, "Team monthly", 49.0),
    ("price_1Ca", 2, "Seat add-on", 8.0),
)
_FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia",
          "Tim", "Margaret", "John")  # fmt: skip
_LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson",
         "Perlman", "Berners-Lee", "Hamilton", "Backus")  # fmt: skip
_BRANDS = ("visa", "mastercard", "amex")
_FUNDING = ("credit", "debit")
_CARD_COUNTRIES = ("US", "GB", "DE", "FR", "JP")
_ALPHABET = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))
_START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _ids(rng: np.random.Generator, prefix: str, n: int, length: int = 14) -> list[str]:
    chars = _ALPHABET[rng.integers(0, len(_ALPHABET), size=(n, length))]
    ids = [prefix + "".join(row) for row in chars]
    if len(set(ids)) != n:  # 62^14 makes this practically impossible; never silently
        raise ValueError(f"{prefix} ids collided; use another seed")
    return ids


def payments_export(n_rows: int = 40, seed: int = 7) -> pd.DataFrame:
    """A flat export of ``n_rows`` succeeded card charges (deterministic per ``seed``).

    Args:
        n_rows: number of charges (rows), at least 1.
        seed: seed of the random choices.

    Returns:
        A DataFrame with :data:`COLUMNS`: money as int64 minor units, ``created`` as
        tz-aware UTC whole seconds, ``customer_name`` NULL for about one customer in
        eight, ``fee_types``/``fee_amounts`` as comma-separated text. Customers have one
        or two cards; about a quarter of charges are partly or fully refunded.

    Example:
        >>> payments_export(3, seed=2).equals(payments_export(3, seed=2))
        True
    """
    if n_rows < 1:
        raise ValueError(f"payments_export: n_rows={n_rows}; need at least one charge")
    rng = np.random.default_rng(seed)
    n_customers = max(1, n_rows // 3)

    # Customers and their cards (one or two each).
    first = rng.integers(0, len(_FIRST), n_customers)
    last = rng.integers(0, len(_LAST), n_customers)
    customer_ids = _ids(rng, "cus_", n_customers)
    names = [f"{_FIRST[f]} {_LAST[la]}" for f, la in zip(first, last, strict=True)]
    emails = [
        f"{_FIRST[f].lower()}.{_LAST[la].lower()}{i}@example.com"
        for i, (f, la) in enumerate(zip(first, last, strict=True))
    ]
    nameless = rng.random(n_customers) < 0.125
    cards_per_customer = rng.integers(1, 3, n_customers)
    card_owner = np.repeat(np.arange(n_customers), cards_per_customer)
    n_cards = len(card_owner)
    card_ids = _ids(rng, "pm_", n_cards)
    brand = rng.integers(0, len(_BRANDS), n_cards)
    funding = rng.integers(0, len(_FUNDING), n_cards)
    last4 = rng.integers(0, 10_000, n_cards)
    exp_month = rng.integers(1, 13, n_cards)
    exp_year = rng.integers(2027, 2032, n_cards)
    card_country = rng.integers(0, len(_CARD_COUNTRIES), n_cards)

    # Charges.
    card = rng.integers(0, n_cards, n_rows)
    price = rng.integers(0, len(_PRICES), n_rows)
    quantity = rng.integers(1, 4, n_rows)
    currency = rng.integers(0, len(_CURRENCIES), n_rows)
    seconds = np.sort(rng.choice(90 * 86_400, size=n_rows, replace=False))
    charge_ids = _ids(rng, "ch_", n_rows)
    refund_kind = rng.choice(3, size=n_rows, p=[0.75, 0.15, 0.10])  # none, partial, full

    rows = []
    names_by_code = dict(CURRENCIES)
    for i in range(n_rows):
        code = _CURRENCIES[currency[i]]
        exponent = EXPONENTS[code]
        price_id, product, nickname, usd = _PRICES[price[i]]
        amount = round(usd * quantity[i] * _UNITS_PER_USD[code] * 10**exponent)
        refunded = (0, amount // 2, amount)[refund_kind[i]]
        stripe_fee = amount * 29 // 1000 + _FIXED_FEE[code]
        fees = [("stripe_fee", stripe_fee)]
        if code in _FEE_VAT:
            fees.append(("tax", stripe_fee * _FEE_VAT[code] // 100))
        c = card[i]
        owner = card_owner[c]
        rows.append(
            (
                charge_ids[i],
                _START + dt.timedelta(seconds=int(seconds[i])),
                amount,
                refunded,
                code,
                names_by_code[code],
                exponent,
                customer_ids[owner],
                emails[owner],
                None if nameless[owner] else names[owner],
                card_ids[c],
                _BRANDS[brand[c]],
                _FUNDING[funding[c]],
                f"{last4[c]:04d}",
                int(exp_month[c]),
                int(exp_year[c]),
                _CARD_COUNTRIES[card_country[c]],
                price_id,
                nickname,
                _PRODUCTS[product][0],
                _PRODUCTS[product][1],
                ",".join(t for t, _ in fees),
                ",".join(str(a) for _, a in fees),
            )
        )
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    ints = ["amount", "amount_refunded", "currency_exponent", "card_exp_month", "card_exp_year"]
    df[ints] = df[ints].astype("int64")
    df["created"] = pd.to_datetime(df["created"], utc=True).astype("datetime64[s, UTC]")
    return df
