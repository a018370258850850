"""The simulation's knobs: every distribution and rate the generator draws from, in one place.

The generator is a small, explicit model of a B2B SaaS business billed through Stripe.
Each constant below is a modelling decision; the notebook ``04_synthetic_data`` shows
their effect on the data.

* **Sign-ups** arrive as a Poisson process whose daily intensity grows exponentially
  (:data:`SIGNUP_GROWTH_PER_YEAR`), peaks in January and dips in August
  (:data:`SIGNUP_SEASONALITY`) and drops at weekends (:data:`WEEKEND_FACTOR`).
* Every customer has a latent **engagement** in ``[0, 1]`` (a Beta draw, higher for
  referrals): engaged customers convert their trials more often, churn less, use the
  product more (clickstream) and leave better feedback.
* **Churn** is a per-period hazard that depends on the plan tier and engagement; failed
  payments that dunning cannot recover end subscriptions too (involuntary churn).
* **Fraud**: a small share of customers are fraudsters. Their charges carry high
  Radar risk scores, are declined and blocked more often, and are disputed as fraudulent.

Money is in minor units; rates are integers scaled by :data:`RATE_SCALE` (the
``RATE`` columns hold them as exact decimals).

Example:
    >>> sum(c.weight for c in COUNTRIES) == 100
    True
    >>> sorted({c.currency for c in COUNTRIES}) == sorted(CURRENCIES)
    True
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ACCOUNT_COUNTRY",
    "COUNTRIES",
    "CURRENCIES",
    "CUSTOMERS_PER_SCALE",
    "RATE_SCALE",
    "SETTLEMENT_CURRENCY",
    "Country",
]

CUSTOMERS_PER_SCALE = 10_000
"""Customers signed up over the simulated window at scale 1."""

CHUNK_CUSTOMERS = 2_000
"""Customers simulated together (one cohort of consecutive sign-ups); bounds memory."""

RATE_SCALE = 10**10
"""Rates (FX, percentages) are integers scaled by 10^10, the scale of the ``RATE`` type."""

ACCOUNT_COUNTRY = "US"
"""Country of the Stripe account: cards issued elsewhere are international."""

SETTLEMENT_CURRENCY = "usd"
"""Currency of the account's balance: every balance transaction is in it."""


@dataclass(frozen=True)
class Country:
    """A market: where customers live, their currency, language and share of sign-ups."""

    code: str
    currency: str
    locale: str
    weight: int
    usd_per_unit: float
    """Reference FX rate at the start of the simulation (US dollars per major unit)."""
    three_ds_share: float
    """Share of card payments that go through 3-D Secure (high under PSD2 / in Japan)."""


COUNTRIES: tuple[Country, ...] = (
    Country("US", "usd", "en-US", 36, 1.0, 0.02),
    Country("GB", "gbp", "en-GB", 10, 1.27, 0.30),
    Country("DE", "eur", "de-DE", 9, 1.09, 0.35),
    Country("FR", "eur", "fr-FR", 6, 1.09, 0.35),
    Country("JP", "jpy", "ja-JP", 7, 0.0068, 0.40),
    Country("CA", "cad", "en-CA", 6, 0.74, 0.03),
    Country("AU", "aud", "en-AU", 5, 0.66, 0.05),
    Country("BR", "brl", "pt-BR", 4, 0.20, 0.10),
    Country("IN", "inr", "en-IN", 4, 0.012, 0.60),
    Country("MX", "mxn", "es-MX", 3, 0.058, 0.05),
    Country("SE", "sek", "sv-SE", 3, 0.095, 0.35),
    Country("CH", "chf", "de-CH", 4, 1.13, 0.30),
    Country("KW", "kwd", "ar-KW", 3, 3.25, 0.20),
)
"""Markets; JPY is zero-decimal and KWD three-decimal."""

CURRENCIES: tuple[str, ...] = tuple(dict.fromkeys(c.currency for c in COUNTRIES))
"""Currencies customers are billed in, in order of first appearance."""

# ---------------------------------------------------------------- sign-ups
SIGNUP_GROWTH_PER_YEAR = 0.6
"""Sign-up intensity grows by e^0.6 (x1.8) per year."""
SIGNUP_SEASONALITY = 0.25
"""Amplitude of the yearly cycle: +25% in January, -25% in July/August."""
WEEKEND_FACTOR = 0.6
"""Sign-ups on Saturdays and Sundays relative to weekdays."""

SIGNUP_CHANNELS = ("organic", "paid_search", "referral", "partner")
SIGNUP_CHANNEL_WEIGHTS = (0.45, 0.30, 0.15, 0.10)

# ---------------------------------------------------------------- customers
SUBSCRIBER_SHARE = 0.82
"""Share of sign-ups that start a subscription (the rest only browse or buy one-offs)."""
ONE_OFF_BUYER_SHARE = 0.12
"""Share of customers that buy a one-time product on a manual invoice."""
FRAUDSTER_SHARE = 0.015
"""Share of customers who pay with stolen cards."""
ADDRESS_SHARE = 0.85
"""Share of customers with an address on file."""
CARD_REPLACEMENT_SHARE = 0.08
"""Share of card holders who replace their card (the old one is detached)."""
INTERNATIONAL_CARD_SHARE = 0.06
"""Share of customers whose card was issued outside their country."""

# ---------------------------------------------------------------- plans
TIERS = ("starter", "team", "business")
TIER_WEIGHTS = (0.5, 0.32, 0.18)
TIER_MONTHLY_USD = (19.0, 12.0, 30.0)
"""Monthly list price in USD (starter is one seat; team and business are per seat)."""
YEARLY_SHARE = 0.2
"""Share of subscriptions billed yearly (ten months' price)."""
TEAM_SEATS_MEAN = 6
"""Mean seats of a team subscription (1 + geometric)."""
METERED_USD_PER_1000 = 0.5
"""Metered API usage: price per 1,000 requests (a monthly metered price, not MRR)."""
METERED_SHARE = 0.25
"""Share of monthly team and business subscriptions with a metered usage item."""
ONE_TIME_PRODUCTS_USD = (("onboarding", "Onboarding package", 500.0), ("support_pack", "Priority support pack", 150.0))

# ---------------------------------------------------------------- lifecycles
TRIAL_SHARE = 0.35
"""Share of first subscriptions that start with a trial."""
TRIAL_DAYS = 14
TRIAL_CONVERSION_BASE = 0.35
"""Trial conversion is 0.35 + 0.5 x engagement."""
MONTHLY_CHURN_BY_TIER = (0.06, 0.035, 0.02)
"""Voluntary churn hazard per month at engagement 0.5; x(0.2 + 1.6 (1 - engagement)): from x0.2 to x1.8."""
IMMEDIATE_CANCEL_SHARE = 0.3
"""Share of voluntary cancellations that take effect immediately (else at period end)."""
CHANGE_SHARE = 0.3
"""Share of subscriptions with one plan or quantity change."""
COMEBACK_SHARE = 0.3
"""Share of churned customers who subscribe again later."""
COMEBACK_DAYS = (30, 240)
UNPAID_SHARE = 0.1
"""When dunning fails: share left unpaid (else canceled for payment_failed)."""

# ---------------------------------------------------------------- coupons
COUPONS = (
    # id, name, percent_off, amount_off_usd_cents, duration, months, share of subscriptions
    ("WELCOME25", "Welcome 25% off", 25, None, "once", None, 0.06),
    ("LAUNCH20", "Launch 20% off for 3 months", 20, None, "repeating", 3, 0.05),
    ("PARTNER10", "Partner 10% off", 10, None, "forever", None, 0.04),
    ("FIVEOFF", "5 USD off the first invoice", None, 500, "once", None, 0.02),
)
"""Coupons; the amount-off one is USD only and goes to USD subscriptions."""

# ---------------------------------------------------------------- payments
FIRST_ATTEMPT_DECLINE = 0.05
"""Probability that the first attempt on an invoice is declined (honest customer)."""
FRAUDSTER_DECLINE = 0.35
RETRY_DECLINE = 0.6
"""Probability that each dunning retry is declined again."""
RETRY_DAYS = (0, 3, 8, 15)
"""Smart Retries schedule: days after finalisation of each attempt (max 4 attempts)."""
FIRST_INVOICE_RETRY_HOURS = (0, 2)
"""A new subscription's first invoice gets two attempts; it expires after 23 hours."""
INCOMPLETE_EXPIRY_HOURS = 23
DECLINE_CODES = (
    ("generic_decline", 0.28),
    ("insufficient_funds", 0.30),
    ("do_not_honor", 0.10),
    ("incorrect_cvc", 0.05),
    ("lost_card", 0.03),
    ("stolen_card", 0.02),
    ("processing_error", 0.05),
    ("card_velocity_exceeded", 0.04),
    ("fraudulent", 0.05),
)
"""Issuer decline codes and their shares among random declines. ``expired_card`` is not
drawn: it comes from the cards themselves (:data:`CARD_UPDATER_SHARE`)."""
CARD_UPDATER_SHARE = 0.4
"""Share of cards expiring in the window that the issuer's card updater renews (a
``payment_method.updated`` with the new expiry); the others decline with ``expired_card``
from their expiry, and dunning ends the subscription."""
THREE_DS_FAILURE = 0.07
"""Share of 3-D Secure challenges the cardholder fails."""
RISK_ELEVATED, RISK_HIGHEST = 65, 75
"""Radar risk score thresholds of the elevated and highest risk levels."""
RADAR_BLOCK_SCORE = 90
"""Charges at or above this score are blocked by Radar (half of them)."""
REFUND_SHARE = 0.025
"""Share of succeeded charges refunded (60% fully, the rest partially)."""
DISPUTE_RATE = {"normal": 0.0025, "elevated": 0.012, "highest": 0.03}
"""Probability that an honest customer's succeeded charge is disputed, by risk level
(never as fraudulent: product not received, canceled subscription, unrecognised...)."""
FRAUD_DISPUTE_DAYS = (16, 60)
"""A fraudster's subscription: days from its first period until the card's owner disputes
the first charge as fraudulent and the merchant cancels it (``payment_disputed``)."""
DISPUTE_WIN_RATE = {"fraudulent": 0.2, "other": 0.45}

# ---------------------------------------------------------------- fees (US account)
FEE_PERCENT_PER_MILLE = 29
FEE_FIXED_USD_CENTS = 30
INTERNATIONAL_FEE_PER_MILLE = 15
CONVERSION_FEE_PER_MILLE = 10
DISPUTE_FEE_USD_CENTS = 1500
PAYOUT_DELAY_DAYS = 2
"""Funds from a charge become available this many days later."""
PAYOUT_FAILURE_SHARE = 0.02
"""Share of automatic payouts the bank refuses (their funds join a later payout)."""
FX_DAILY_VOLATILITY = 0.004
"""Daily standard deviation of log FX rates (a random walk from the reference rates)."""
