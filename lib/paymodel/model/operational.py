"""Operational tables: what the OLTP database needs to do its work safely.

Not Stripe objects, but part of the same schema (and rendered with it):
idempotency keys for the payment flows, and the ingestion bookkeeping
(pending records waiting for a parent, quarantined records with the rule they broke).
"""

from __future__ import annotations

from paymodel.model.core import Table

__all__ = ["IDEMPOTENCY_TABLES", "INGESTION_TABLES"]

# --- idempotency (paymodel.oltp.flows) -------------------------------------------
IDEMPOTENCY_TABLES: list[Table] = []

# --- ingestion (paymodel.oltp.ingest) ---------------------------------------------
INGESTION_TABLES: list[Table] = []
