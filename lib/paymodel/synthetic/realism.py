"""How close a generated account is to a real one: the measures and the ranges they must hit.

Each :class:`Measure` is one SQL query over the OLTP tables (DuckDB or PostgreSQL, a
loaded database or :func:`parquet_views` over a generated folder) returning one number,
with the range a real card-billed SaaS account sits in:

* **expired cards**: no charge succeeds on a card after its expiry month; cards that
  expire decline with ``expired_card`` unless the issuer updated them.
* **disputes**: between 0.2% and 0.75% of succeeded charges (Stripe's monitoring starts
  at 0.75%); no charge after a lost fraud dispute; repeat disputers rare.
* **dunning**: failed payments end 15-40% of the cancellations of paying subscriptions
  (involuntary churn is usually 20-40% of churn for card-billed SaaS).

Example:
    >>> import tempfile
    >>> from paymodel.synthetic import generate
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = generate(d, scale=0.02, seed=1, months=12, progress=False, events=False,
    ...                  documents=False)
    ...     engine = parquet_views(d)
    ...     values = measure(engine)
    ...     engine.dispose()
    >>> values["charges_succeeded_after_card_expiry"]
    0
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from paymodel.model.oltp import STRIPE_TABLES

__all__ = ["MEASURES", "Measure", "measure", "out_of_range", "parquet_views"]

# the first instant after a card's expiry month (exp_year, exp_month), in SQL both engines run
_EXPIRY = (
    "CAST(CAST(pm.card_exp_year AS TEXT) || '-' || LPAD(CAST(pm.card_exp_month AS TEXT), 2, '0') "
    "|| '-01' AS DATE) + INTERVAL '1 month'"
)


@dataclass(frozen=True)
class Measure:
    """One number about an account, and the range it must lie in (inclusive; None: open)."""

    name: str
    description: str
    sql: str
    low: float | None = None
    high: float | None = None

    def ok(self, value: float) -> bool:
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)


MEASURES: tuple[Measure, ...] = (
    Measure(
        "charges_succeeded_after_card_expiry",
        "succeeded charges made on a card after its expiry month",
        "SELECT COUNT(*) FROM charges c JOIN payment_methods pm ON pm.id = c.payment_method_id "
        f"WHERE c.status = 'succeeded' AND c.created >= {_EXPIRY}",
        0,
        0,
    ),
    Measure(
        "expired_card_declines",
        "charges declined with expired_card (failure_code and outcome.reason)",
        "SELECT COUNT(*) FROM charges WHERE failure_code = 'expired_card' "
        "AND outcome_reason = 'expired_card'",
        1,
        None,
    ),
    Measure(
        "expired_card_declines_before_expiry",
        "expired_card declines on a card not yet expired",
        "SELECT COUNT(*) FROM charges c JOIN payment_methods pm ON pm.id = c.payment_method_id "
        f"WHERE c.failure_code = 'expired_card' AND c.created < {_EXPIRY}",
        0,
        0,
    ),
    Measure(
        "dispute_rate",
        "disputes per succeeded charge",
        "SELECT CAST((SELECT COUNT(*) FROM disputes) AS DOUBLE PRECISION) "
        "/ NULLIF((SELECT COUNT(*) FROM charges WHERE status = 'succeeded'), 0)",
        0.002,
        0.0075,
    ),
    Measure(
        "charges_after_lost_fraud_dispute",
        "charges of a customer after one of their fraud disputes was lost",
        "SELECT COUNT(*) FROM charges c JOIN (SELECT ch.customer_id, MIN(d.created) AS t "
        "FROM disputes d JOIN charges ch ON ch.id = d.charge_id "
        "WHERE d.reason = 'fraudulent' AND d.status = 'lost' GROUP BY ch.customer_id) f "
        "ON f.customer_id = c.customer_id WHERE c.created > f.t",
        0,
        0,
    ),
    Measure(
        "repeat_disputer_share",
        "share of disputing customers with more than one dispute",
        "SELECT CAST(SUM(CASE WHEN n > 1 THEN 1 ELSE 0 END) AS DOUBLE PRECISION) "
        "/ NULLIF(COUNT(*), 0) FROM (SELECT ch.customer_id, COUNT(*) AS n FROM disputes d "
        "JOIN charges ch ON ch.id = d.charge_id GROUP BY ch.customer_id) x",
        0,
        0.1,
    ),
    Measure(
        "failed_payment_cancellation_share",
        "share of the cancellations of paying subscriptions (a paid invoice, then canceled) "
        "that failed payments caused (cancellation_reason payment_failed)",
        "SELECT CAST(SUM(CASE WHEN s.cancellation_reason = 'payment_failed' THEN 1 ELSE 0 END) "
        "AS DOUBLE PRECISION) / NULLIF(COUNT(*), 0) FROM subscriptions s "
        "WHERE s.status = 'canceled' AND EXISTS (SELECT 1 FROM invoices i "
        "WHERE i.subscription_id = s.id AND i.status = 'paid' AND i.amount_paid > 0)",
        0.15,
        0.40,
    ),
)
"""The measures, with the ranges a generated account must hit at a meaningful scale."""


def measure(engine: sa.Engine | sa.Connection) -> dict[str, float]:
    """Every measure's value on a database holding the OLTP tables (NULL reads as 0)."""
    from paymodel.oltp.engines import connection

    with connection(engine) as conn:
        return {m.name: conn.execute(sa.text(m.sql)).scalar_one() or 0 for m in MEASURES}


def out_of_range(values: dict[str, float]) -> dict[str, float]:
    """The measures whose value is outside their range."""
    return {m.name: values[m.name] for m in MEASURES if not m.ok(values[m.name])}


def parquet_views(data_dir: Path | str) -> sa.Engine:
    """An in-memory DuckDB engine with a view per generated table over its Parquet files."""
    from paymodel.oltp.engines import duckdb_engine
    from paymodel.synthetic.load import parquet_files

    engine = duckdb_engine()
    with engine.begin() as conn:
        for t in STRIPE_TABLES:
            files = [str(f) for f in parquet_files(data_dir, t.name)]
            if files:
                listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
                conn.exec_driver_sql(
                    f'CREATE VIEW "{t.name}" AS SELECT * FROM read_parquet([{listed}])'
                )
    return engine
