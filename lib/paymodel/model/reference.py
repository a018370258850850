"""Reference data the OLTP schema needs before any Stripe object: currencies.

Example:
    >>> EXPONENTS["jpy"], EXPONENTS["usd"], EXPONENTS["kwd"]
    (0, 2, 3)
"""

from __future__ import annotations

from paymodel.model.oltp import THREE_DECIMAL_CURRENCIES, ZERO_DECIMAL_CURRENCIES

__all__ = ["CURRENCIES", "EXPONENTS", "currency_rows"]

CURRENCIES: tuple[tuple[str, str], ...] = (
    ("aed", "UAE Dirham"),
    ("aud", "Australian Dollar"),
    ("bhd", "Bahraini Dinar"),
    ("bif", "Burundi Franc"),
    ("brl", "Brazilian Real"),
    ("cad", "Canadian Dollar"),
    ("chf", "Swiss Franc"),
    ("clp", "Chilean Peso"),
    ("cny", "Yuan Renminbi"),
    ("czk", "Czech Koruna"),
    ("djf", "Djibouti Franc"),
    ("dkk", "Danish Krone"),
    ("eur", "Euro"),
    ("gbp", "Pound Sterling"),
    ("gnf", "Guinean Franc"),
    ("hkd", "Hong Kong Dollar"),
    ("huf", "Forint"),
    ("idr", "Rupiah"),
    ("ils", "New Israeli Sheqel"),
    ("inr", "Indian Rupee"),
    ("jod", "Jordanian Dinar"),
    ("jpy", "Yen"),
    ("kmf", "Comorian Franc"),
    ("krw", "Won"),
    ("kwd", "Kuwaiti Dinar"),
    ("mga", "Malagasy Ariary"),
    ("mxn", "Mexican Peso"),
    ("myr", "Malaysian Ringgit"),
    ("nok", "Norwegian Krone"),
    ("nzd", "New Zealand Dollar"),
    ("omr", "Rial Omani"),
    ("php", "Philippine Peso"),
    ("pln", "Zloty"),
    ("pyg", "Guarani"),
    ("ron", "Romanian Leu"),
    ("rwf", "Rwanda Franc"),
    ("sek", "Swedish Krona"),
    ("sgd", "Singapore Dollar"),
    ("thb", "Baht"),
    ("tnd", "Tunisian Dinar"),
    ("try", "Turkish Lira"),
    ("twd", "New Taiwan Dollar"),
    ("ugx", "Uganda Shilling"),
    ("usd", "US Dollar"),
    ("vnd", "Dong"),
    ("vuv", "Vatu"),
    ("xaf", "CFA Franc BEAC"),
    ("xof", "CFA Franc BCEAO"),
    ("xpf", "CFP Franc"),
    ("zar", "Rand"),
)
"""Currencies the schema knows, with their ISO 4217 names."""

EXPONENTS: dict[str, int] = {
    code: 0 if code in ZERO_DECIMAL_CURRENCIES else 3 if code in THREE_DECIMAL_CURRENCIES else 2
    for code, _ in CURRENCIES
}
"""Minor-unit digits per currency, following Stripe's zero- and three-decimal lists."""


def currency_rows() -> list[dict[str, object]]:
    """Rows of the ``currencies`` table, sorted by code."""
    return [{"code": c, "name": n, "exponent": EXPONENTS[c]} for c, n in CURRENCIES]
