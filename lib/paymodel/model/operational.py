"""Operational tables: what the OLTP database needs to do its work safely.

Not Stripe objects, but part of the same schema (and rendered with it):
idempotency keys for the payment flows, and the ingestion bookkeeping
(pending records waiting for a parent, quarantined records with the rule they broke).
"""

from __future__ import annotations

from paymodel.model.core import JSON, PII, SMALLINT, TEXT, TIMESTAMP, Check, Column, Table

__all__ = ["IDEMPOTENCY_TABLES", "INGESTION_TABLES"]

# --- idempotency (paymodel.oltp.flows) -------------------------------------------
idempotency_keys = Table(
    "idempotency_keys",
    "One row per idempotency key a client has sent.",
    None,
    [
        Column("idempotency_key", TEXT, "Key chosen by the client (at most 255 characters)."),
        Column("operation", TEXT, "Flow the key was first used for, such as refund_charge."),
        Column(
            "request_fingerprint",
            TEXT,
            "SHA-256 of the operation and its canonical parameters; a reuse must match it.",
        ),
        Column(
            "request_params",
            JSON,
            "Canonical parameters of the first request, kept to explain a mismatch.",
            pii=PII.DIRECT,
        ),
        Column(
            "recovery_point",
            TEXT,
            "Progress of the request: started (work not committed) or finished.",
            accepted=("started", "finished"),
        ),
        Column(
            "locked_at",
            TIMESTAMP,
            "When the request now running took the key; NULL when none runs.",
            nullable=True,
        ),
        Column("locked_by", TEXT, "Request id (req_) holding the lock.", nullable=True),
        Column(
            "response_status",
            SMALLINT,
            "HTTP-like status of the stored result: 200, or the error's 4xx.",
            nullable=True,
            minimum=200,
            maximum=599,
        ),
        Column(
            "response_body",
            JSON,
            "Stored result returned to retries: the object, or the error.",
            nullable=True,
            pii=PII.DIRECT,
        ),
        Column("created", TIMESTAMP, "When the key was first used (UTC); pruned after 24 hours."),
        Column("last_run_at", TIMESTAMP, "When a request last started work under the key."),
    ],
    primary_key=("idempotency_key",),
    checks=[
        Check(
            "ck_idempotency_keys_length",
            "length(idempotency_key) BETWEEN 1 AND 255",
            "idempotency_key has 1 to 255 characters",
        ),
        Check(
            "ck_idempotency_keys_finished",
            "(recovery_point = 'finished') = "
            "(response_status IS NOT NULL AND response_body IS NOT NULL)",
            "a response is stored exactly when the request finished",
        ),
        Check(
            "ck_idempotency_keys_lock",
            "(locked_at IS NULL) = (locked_by IS NULL) "
            "AND (recovery_point = 'started' OR locked_at IS NULL)",
            "locked_at and locked_by go together, and a finished request holds no lock",
        ),
    ],
    why="Stripe-like idempotency (brandur.org, 'Implementing Stripe-like Idempotency Keys in "
    "Postgres'): a retry with the same key and parameters gets the stored result, a key "
    "reused with other parameters is refused, and a request racing one in flight gets a "
    "conflict. No foreign keys: a stored error may name an object that does not exist.",
)

IDEMPOTENCY_TABLES: list[Table] = [idempotency_keys]

# --- ingestion (paymodel.oltp.ingest) ---------------------------------------------
INGESTION_TABLES: list[Table] = []
