"""Cards for tests and demos, after Stripe's test cards: each one says what the issuer does.

Stripe's test mode decides a payment's outcome from the card number (4242... succeeds,
...0002 is declined, ...3155 asks for 3-D Secure). We never hold a card number (PCI DSS),
so a :class:`Card` carries what Stripe returns (brand, funding, country, last 4,
fingerprint) plus a :class:`CardBehaviour`: what the issuer does when the card is
charged. A payment method remembers its card by fingerprint, and confirmation looks the
behaviour up by fingerprint; a request may also pass ``card_behaviour`` explicitly,
which wins.

The named cards of :data:`TEST_CARDS` follow Stripe's test cards (same last 4 digits):

======================================  =====  =============================================
name                                    last4  behaviour
======================================  =====  =============================================
visa, mastercard, amex, visa_debit      4242.  succeeds (domestic, US)
visa_gb                                 0000   succeeds, issued in GB (international fee)
declined                                0002   declined: card_declined (generic_decline)
insufficient_funds                      9995   declined: insufficient_funds
lost_card / stolen_card                 9987/  declined: lost_card / stolen_card
                                        9979
expired_card / incorrect_cvc            0069/  declined: expired_card / incorrect_cvc
                                        0127
processing_error                        0119   declined: processing_error
radar_block                             0019   blocked by Radar: fraudulent, highest risk
three_d_secure                          3155   asks for 3-D Secure, then succeeds
three_d_secure_insufficient_funds       3178   asks for 3-D Secure, then is declined
======================================  =====  =============================================

Example:
    >>> TEST_CARDS["three_d_secure"].behaviour.requires_authentication
    True
    >>> behaviour_for_fingerprint(TEST_CARDS["declined"].fingerprint).decline_code
    'generic_decline'
    >>> behaviour_for_fingerprint("someone-elses-card").decline_code is None
    True
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from paymodel.model.oltp import DECLINE_CODES

__all__ = [
    "FAILURE_MESSAGES",
    "SUCCEEDS",
    "TEST_CARDS",
    "Card",
    "CardBehaviour",
    "behaviour_for_fingerprint",
    "test_fingerprint",
]

FAILURE_MESSAGES = {
    "authentication_required": "Your card was declined. This transaction requires authentication.",
    "card_declined": "Your card was declined.",
    "card_velocity_exceeded": "Your card has exceeded its velocity limit.",
    "do_not_honor": "Your card was declined.",
    "expired_card": "Your card has expired.",
    "fraudulent": "Your card was declined.",
    "generic_decline": "Your card was declined.",
    "incorrect_cvc": "Your card's security code is incorrect.",
    "insufficient_funds": "Your card has insufficient funds.",
    "lost_card": "Your card was declined.",
    "processing_error": "An error occurred while processing your card. Try again in a little bit.",
    "stolen_card": "Your card was declined.",
}
"""Stripe's customer-facing message for each decline code."""


@dataclass(frozen=True)
class CardBehaviour:
    """What the issuer (and Radar) do when the card is charged.

    Attributes:
        decline_code: Decline the charge with this code, or ``None`` to authorise it.
        requires_authentication: Ask for 3-D Secure before charging.
        blocked: Radar blocks the charge (outcome ``blocked``, not sent to the network).
        risk_level: Radar's risk level.
        risk_score: Radar's risk score, 0-99.
    """

    decline_code: str | None = None
    requires_authentication: bool = False
    blocked: bool = False
    risk_level: str = "normal"
    risk_score: int = 20

    def __post_init__(self) -> None:
        if self.decline_code is not None and self.decline_code not in DECLINE_CODES:
            raise ValueError(f"card behaviour: unknown decline code {self.decline_code!r}")
        if self.blocked and self.decline_code is None:
            raise ValueError("card behaviour: a blocked charge needs a decline code")
        if not 0 <= self.risk_score <= 99:
            raise ValueError(f"card behaviour: risk score {self.risk_score} is not in 0-99")


SUCCEEDS = CardBehaviour()
"""An ordinary card: authorised at once."""


def test_fingerprint(name: str) -> str:
    """A stable 16-character fingerprint for a named test card.

    Example:
        >>> test_fingerprint("visa") == test_fingerprint("visa"), len(test_fingerprint("visa"))
        (True, 16)
    """
    return "tc" + hashlib.sha256(f"paymodel test card {name}".encode()).hexdigest()[:14]


@dataclass(frozen=True)
class Card:
    """A card as Stripe returns it (no number, no CVC), and how it behaves.

    Attributes:
        brand: Network (visa, mastercard, amex...).
        last4: Last four digits.
        country: Issuing country, ISO 3166-1 alpha-2.
        funding: credit, debit, prepaid or unknown.
        exp_month, exp_year: Expiry.
        fingerprint: Identifies the card number across customers.
        behaviour: What happens when it is charged.
    """

    brand: str
    last4: str
    country: str = "US"
    funding: str = "credit"
    exp_month: int = 12
    exp_year: int = 2034
    fingerprint: str = ""
    behaviour: CardBehaviour = field(default=SUCCEEDS)


def _card(
    name: str, brand: str, last4: str, behaviour: CardBehaviour = SUCCEEDS, **kw: str
) -> Card:
    return Card(brand, last4, fingerprint=test_fingerprint(name), behaviour=behaviour, **kw)  # type: ignore[arg-type]


TEST_CARDS: dict[str, Card] = {
    "visa": _card("visa", "visa", "4242"),
    "visa_debit": _card("visa_debit", "visa", "5556", funding="debit"),
    "mastercard": _card("mastercard", "mastercard", "4444"),
    "amex": _card("amex", "amex", "8431"),
    "visa_gb": _card("visa_gb", "visa", "0000", country="GB"),
    "declined": _card("declined", "visa", "0002", CardBehaviour("generic_decline")),
    "insufficient_funds": _card(
        "insufficient_funds", "visa", "9995", CardBehaviour("insufficient_funds")
    ),
    "lost_card": _card("lost_card", "visa", "9987", CardBehaviour("lost_card")),
    "stolen_card": _card("stolen_card", "visa", "9979", CardBehaviour("stolen_card")),
    "expired_card": _card("expired_card", "visa", "0069", CardBehaviour("expired_card")),
    "incorrect_cvc": _card("incorrect_cvc", "visa", "0127", CardBehaviour("incorrect_cvc")),
    "processing_error": _card(
        "processing_error", "visa", "0119", CardBehaviour("processing_error")
    ),
    "radar_block": _card(
        "radar_block",
        "visa",
        "0019",
        CardBehaviour("fraudulent", blocked=True, risk_level="highest", risk_score=95),
    ),
    "three_d_secure": _card(
        "three_d_secure", "visa", "3155", CardBehaviour(requires_authentication=True)
    ),
    "three_d_secure_insufficient_funds": _card(
        "three_d_secure_insufficient_funds",
        "visa",
        "3178",
        CardBehaviour("insufficient_funds", requires_authentication=True),
    ),
}
"""Named test cards (see the module docstring)."""

_BY_FINGERPRINT = {card.fingerprint: card.behaviour for card in TEST_CARDS.values()}


def behaviour_for_fingerprint(fingerprint: str | None) -> CardBehaviour:
    """The behaviour of a test card by fingerprint; any other card succeeds."""
    return _BY_FINGERPRINT.get(fingerprint or "", SUCCEEDS)
