"""The marts, built from the star: one pure Ibis expression per table of ``MARTS``.

:func:`mart_expressions` takes the star's tables (by name) and the OLTP ``fx_rates`` and
returns an expression per mart, each with exactly the columns and types that
:mod:`paymodel.model.marts` declares (:func:`conform`), ready to be inserted into the
DDL of ``schemas/marts.*``. Nothing here touches a database: the caller's backend runs
the expressions, on DuckDB, PostgreSQL or PySpark alike.

The star tables read: ``dim_date`` (``month_start``: the calendar, so the last month is
the data's as-of month), ``dim_currency``, ``fact_subscription_item_months``,
``fact_payment_attempts``, ``dim_payment_method``, ``dim_payment_outcome``,
``fact_payment_intents`` and ``fact_disputes``.
"""

from __future__ import annotations

from collections.abc import Mapping

import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from paymodel.model.core import LogicalType, Table
from paymodel.model.marts import MARTS
from paymodel.olap import metrics
from paymodel.olap.mrr import (
    month_calendar,
    monthly_fx,
    mrr_bridge,
    mrr_movements,
    subscription_item_mrr,
)

__all__ = ["STAR_INPUTS", "conform", "ibis_type", "mart_expressions"]

STAR_INPUTS = (
    "dim_date",
    "dim_currency",
    "fact_subscription_item_months",
    "fact_payment_attempts",
    "dim_payment_method",
    "dim_payment_outcome",
    "fact_payment_intents",
    "fact_disputes",
)
"""The warehouse tables the marts are built from."""

_SQL_TYPES = {
    "text": dt.string,
    "bigint": dt.int64,
    "integer": dt.int32,
    "smallint": dt.int16,
    "boolean": dt.boolean,
    "date": dt.date,
}


def ibis_type(t: LogicalType) -> dt.DataType:
    """The Ibis type a column of logical type ``t`` is written with."""
    if t.sql == "decimal":
        return dt.Decimal(t.precision, t.scale)
    if t.sql == "timestamptz":
        return dt.Timestamp(timezone="UTC")
    return _SQL_TYPES[t.sql]


def conform(expr: ir.Table, table: Table) -> ir.Table:
    """``expr`` with ``table``'s columns, in its order, cast to its types.

    A column missing from ``expr`` is an error that names the mart and the column.
    """
    missing = [c for c in table.column_names if c not in expr.columns]
    if missing:
        raise ValueError(f"mart {table.name}: the transform gives no column {', '.join(missing)}")
    return expr.select(*(expr[c.name].cast(ibis_type(c.type)).name(c.name) for c in table.columns))


def mart_expressions(
    star: Mapping[str, ir.Table],
    fx_rates: ir.Table,
    reporting_currency: str = "usd",
) -> dict[str, ir.Table]:
    """An expression per mart, in the order of :data:`paymodel.model.marts.MARTS`.

    Args:
        star: the warehouse tables named in :data:`STAR_INPUTS`.
        fx_rates: the OLTP ``fx_rates`` table (``rate_date``, ``currency``, ``usd_per_unit``),
            limited to the build's as-of date.
        reporting_currency: the currency of the bridge's ``*_reporting`` columns.
    """
    missing = [n for n in STAR_INPUTS if n not in star]
    if missing:
        raise ValueError(f"marts: the warehouse has no table {', '.join(missing)}")
    months = month_calendar(star["dim_date"], "month_start")
    items = star["fact_subscription_item_months"]
    movements = mrr_movements(items, months)
    fx = monthly_fx(fx_rates, star["dim_currency"], reporting_currency)
    bridge = mrr_bridge(movements, fx)
    attempts, outcomes = star["fact_payment_attempts"], star["dim_payment_outcome"]
    built = {
        "mart_subscription_item_mrr": subscription_item_mrr(items, months),
        "mart_mrr_movements": movements,
        "mart_mrr_bridge": bridge,
        "mart_mrr_metrics": metrics.mart_mrr_metrics(bridge),
        "mart_cohort_retention": metrics.mart_cohort_retention(movements, months),
        "mart_trial_conversion": metrics.mart_trial_conversion(items, months),
        "mart_payment_health": metrics.mart_payment_health(
            attempts, star["dim_payment_method"], outcomes
        ),
        "mart_decline_codes": metrics.mart_decline_codes(attempts, outcomes),
        "mart_three_d_secure": metrics.mart_three_d_secure(star["fact_payment_intents"]),
        "mart_refund_rates": metrics.mart_refund_rates(attempts),
        "mart_risk_levels": metrics.mart_risk_levels(attempts, outcomes, star["fact_disputes"]),
        "mart_dispute_outcomes": metrics.mart_dispute_outcomes(star["fact_disputes"]),
    }
    return {t.name: conform(built[t.name], t) for t in MARTS.tables}
