"""Errors of the payment flows: each one names the object and the rule it broke.

One hierarchy, rooted at :class:`PaymentError`. Every error carries the object it is
about (``"charge ch_9"``) and the rule, and its message is ``"<object>: <rule>"``:

Example:
    >>> err = AmountExceeded("charge ch_9", "refund of 500 exceeds the 300 left to refund")
    >>> str(err)
    'charge ch_9: refund of 500 exceeds the 300 left to refund'
    >>> isinstance(err, PaymentError), err.status
    (True, 400)

Errors round-trip through JSON, so that an idempotent retry raises the stored error
again, with the same class and message:

    >>> error_from_dict(err.to_dict()) == err
    True

An operation that raises one of these errors has written nothing to the Stripe tables
(its transaction rolled back); with an idempotency key, the error itself is stored so
that retries get it back, as Stripe does.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AmountExceeded",
    "IdempotencyConflict",
    "IdempotencyError",
    "IdempotencyKeyReused",
    "IllegalTransition",
    "InvalidRequest",
    "NotFound",
    "PaymentError",
    "error_from_dict",
]


class PaymentError(Exception):
    """A payment operation refused: ``object`` broke ``rule``.

    Attributes:
        object: The object concerned, as ``"<type> <id>"`` (``"payment_intent pi_1"``).
        rule: The rule it broke, in words.
        status: The HTTP-like status Stripe would answer with (4xx).
        code: A short machine-readable code (Stripe's ``error.code`` where one exists).
    """

    status: ClassVar[int] = 400
    code: ClassVar[str] = "payment_error"

    def __init__(self, object: str, rule: str) -> None:  # Stripe's word
        self.object = object
        self.rule = rule
        super().__init__(f"{object}: {rule}")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and (other.object, other.rule) == (self.object, self.rule)  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.object, self.rule))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.object, self.rule))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able rendering, in the shape of Stripe's ``error`` object."""
        return {
            "error": {
                "type": type(self).__name__,
                "code": self.code,
                "object": self.object,
                "rule": self.rule,
                "message": str(self),
            }
        }


class InvalidRequest(PaymentError):
    """The parameters are wrong whatever the state (unknown currency, negative amount...)."""

    code = "parameter_invalid"


class IllegalTransition(PaymentError):
    """The object's current status does not allow the operation (capture a canceled intent)."""

    code = "unexpected_state"


class AmountExceeded(PaymentError):
    """An amount exceeds what is left (refund more than captured minus refunded)."""

    code = "amount_too_large"


class NotFound(PaymentError):
    """The object does not exist."""

    status = 404
    code = "resource_missing"


class IdempotencyError(PaymentError):
    """The idempotency key cannot be used for this request."""

    code = "idempotency_error"


class IdempotencyKeyReused(IdempotencyError):
    """The key was used before with other parameters (or for another operation)."""

    code = "idempotency_key_reused"


class IdempotencyConflict(IdempotencyError):
    """Another request with the same key is in flight; this one had no effect. Retry later."""

    status = 409
    code = "idempotency_key_in_use"


_ERRORS: dict[str, type[PaymentError]] = {
    cls.__name__: cls
    for cls in (
        PaymentError,
        InvalidRequest,
        IllegalTransition,
        AmountExceeded,
        NotFound,
        IdempotencyError,
        IdempotencyKeyReused,
        IdempotencyConflict,
    )
}


def error_from_dict(body: dict[str, Any]) -> PaymentError:
    """Rebuild the error that :meth:`PaymentError.to_dict` rendered.

    Raises:
        ValueError: ``body`` is not a rendered :class:`PaymentError`.
    """
    try:
        error = body["error"]
        cls = _ERRORS[error["type"]]
        return cls(error["object"], error["rule"])
    except (KeyError, TypeError):
        raise ValueError(f"not a stored payment error: {body!r}") from None
