"""Operational tables: what the OLTP database needs to do its work safely.

Not Stripe objects, but part of the same schema (and rendered with it):
idempotency keys for the payment flows, and the ingestion bookkeeping
(pending records waiting for a parent, quarantined records with the rule they broke).
"""

from __future__ import annotations

from paymodel.model.core import INTEGER, JSON, PII, SMALLINT, TEXT, TIMESTAMP, Check, Column, Table
from paymodel.model.rules import CROSS_ROW_RULES

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
    subject_area="operational",
)

IDEMPOTENCY_TABLES: list[Table] = [idempotency_keys]

# --- ingestion (paymodel.oltp.ingest) ---------------------------------------------
_SOURCE = Column(
    "source",
    TEXT,
    "File the record came from, or <records> for records passed in memory.",
)
_SOURCE_LINE = Column(
    "source_line",
    INTEGER,
    "Line of the record in a JSON Lines file, or its position (from 1) in a JSON array or "
    "list; NULL for a whole file that is not JSON.",
    nullable=True,
    minimum=1,
)

ingest_versions = Table(
    "ingest_versions",
    "One row per Stripe object the ingester has written.",
    None,
    [
        Column("object_type", TEXT, "Stripe object type, such as charge."),
        Column("object_id", TEXT, "Stripe id of the object."),
        Column(
            "version",
            TIMESTAMP,
            "Instant of the snapshot applied: the event's created, or for a plain object "
            "its own created. An older snapshot never overwrites a newer one.",
        ),
        Column(
            "event_id",
            TEXT,
            "Event whose snapshot is applied; NULL when a plain object was applied.",
            nullable=True,
            mentions="events",
        ),
        Column("applied_at", TIMESTAMP, "When the ingester applied it (UTC)."),
    ],
    primary_key=("object_type", "object_id"),
    why="Events arrive out of order and more than once: the version of the snapshot applied "
    "per object decides whether a later arrival is newer (apply) or older (keep the row). "
    "Ingestion reads it per batch of records, for the objects the batch names only, so "
    "its cost follows the batch, not the database.",
    subject_area="operational",
)

ingest_pending = Table(
    "ingest_pending",
    "One row per record waiting for a parent object that has not arrived yet.",
    None,
    [
        Column("id", TEXT, "Digest of the record (sha256, 32 hex digits)."),
        Column("object_type", TEXT, "Type of the waiting object."),
        Column("object_id", TEXT, "Id of the waiting object."),
        Column(
            "event_id",
            TEXT,
            "Event that carried it; NULL for a plain object.",
            nullable=True,
            mentions="events",
        ),
        Column("version", TIMESTAMP, "Instant of the snapshot (see ingest_versions.version)."),
        Column("waiting_for_table", TEXT, "Table of the missing parent."),
        Column("waiting_for_id", TEXT, "Key of the missing parent."),
        Column("raw", TEXT, "The record as received (JSON text); records holding card data never wait here.", pii=PII.DIRECT),
        _SOURCE,
        _SOURCE_LINE,
        Column("received_at", TIMESTAMP, "When the record was first read (UTC)."),
    ],
    why="Webhooks arrive in no guaranteed order: a charge can come before its customer. It "
    "waits here, foreign keys stay enforced, and it is applied when the parent arrives.",
    subject_area="operational",
)

ingest_quarantine = Table(
    "ingest_quarantine",
    "One row per distinct rejected record and rule (a record rejected again counts up).",
    None,
    [
        Column("id", TEXT, "Digest of the rule and the record (sha256, 32 hex digits)."),
        Column(
            "rule",
            TEXT,
            "Kind of rule broken (a cross-row rule of paymodel.model.rules by its name).",
            accepted=(
                "malformed_json",
                "not_an_object",
                "unknown_object_type",
                "invalid_event",
                "invalid_object",
                "unknown_reference",
                "database_constraint",
                "card_data",
                "invalid_id",
                "metadata_limits",
                "future_version",
                "too_large",
                "repeated_key",
                "nested_too_deeply",
                *(rule.name for rule in CROSS_ROW_RULES),
            ),
        ),
        Column("error", TEXT, "The rule in words, naming the record and object."),
        Column("object_type", TEXT, "Type of the object, when readable.", nullable=True),
        Column("object_id", TEXT, "Id of the object, when readable.", nullable=True),
        Column(
            "event_id",
            TEXT,
            "Id of the event that carried it, if any.",
            nullable=True,
            mentions="events",
        ),
        Column(
            "raw",
            TEXT,
            "The record as received, card data redacted (a card number or CVC is "
            "stored as [redacted]; a record over the size limit as a short preview); "
            "characters a database cannot store (NUL, lone surrogates) are backslash-escaped.",
            pii=PII.DIRECT,
        ),
        _SOURCE,
        _SOURCE_LINE,
        Column("first_seen_at", TIMESTAMP, "When the record was first rejected (UTC)."),
        Column("last_seen_at", TIMESTAMP, "When it was last rejected (UTC)."),
        Column("times_seen", INTEGER, "How many times it was rejected.", minimum=1),
    ],
    why="Nothing is silently dropped: a record that cannot be applied is kept with the rule "
    "it broke, so it can be fixed and ingested again. A record only the database refuses "
    "(rule database_constraint) is found by narrowing the refused batch: its file is "
    "replayed with the batch split in parts of about the square root of its size, then "
    "the part's records written one by one.",
    subject_area="operational",
)

INGESTION_TABLES: list[Table] = [ingest_versions, ingest_pending, ingest_quarantine]
