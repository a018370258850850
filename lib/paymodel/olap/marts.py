"""The marts, built from the star: one pure Ibis function per table of ``MARTS``.

Each ``mart_*`` function below is a step of the warehouse build (:data:`STEPS`, appended
to :data:`paymodel.olap.build.STEPS` by :func:`register_marts`): its parameter names are
its inputs, the star's tables or marts built before it, and the staged OLTP ``fx_rates``
and ``currencies`` for the bridge's conversion. :func:`mart_expressions` chains them
without a database, for engineers and tests. An incremental build rebuilds a mart from
the updated warehouse (``whole=True``): a bridge is a sum over every customer, not a
per-customer row. The marts in :data:`PER_CUSTOMER` are recomputed for the changed
customers only, from their rows of the updated warehouse.

The calendar is ``dim_date``'s ``month_start`` up to the build's as-of month, so the last
month is the data's as-of month and nothing is carried past it (nor to "today").
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping

import ibis
import ibis.expr.types as ir

from paymodel.model.marts import MARTS
from paymodel.olap import details, metrics
from paymodel.olap import mrr as M
from paymodel.olap.build import STEPS as BUILD_STEPS
from paymodel.olap.build import Step, register
from paymodel.olap.transforms import BuildParams, conform

__all__ = ["STAR_INPUTS", "STEPS", "mart_expressions", "register_marts"]

STAR_INPUTS = (
    "dim_date",
    "fact_balance_transactions",
    "fact_subscription_item_months",
    "fact_payment_attempts",
    "dim_payment_method",
    "dim_payment_outcome",
    "fact_payment_intents",
    "fact_disputes",
    "fact_refunds",
    "fact_payouts",
    "fact_invoice_lines",
    "dim_customer",
)
"""The warehouse tables the marts read (besides the staged ``fx_rates`` and ``currencies``)."""


def _months(dim_date: ir.Table, params: BuildParams) -> ir.Table:
    """The months of ``dim_date`` up to the as-of month (dim_date runs on past the data)."""
    as_of_month = _date(params.as_of.date().replace(day=1))
    return M.month_calendar(dim_date.filter(dim_date.month_start <= as_of_month), "month_start")


def _date(day: object) -> ir.DateValue:
    """A date literal every engine compiles (Ibis 12 writes DATE_FROM_PARTS for PostgreSQL)."""
    return ibis.literal(str(day)).cast("date")


def mart_subscription_item_mrr(
    fact_subscription_item_months: ir.Table, dim_date: ir.Table, params: BuildParams
) -> ir.Table:
    return M.subscription_item_mrr(fact_subscription_item_months, _months(dim_date, params))


def mart_mrr_movements(
    fact_subscription_item_months: ir.Table, dim_date: ir.Table, params: BuildParams
) -> ir.Table:
    return M.mrr_movements(fact_subscription_item_months, _months(dim_date, params))


def mart_mrr_bridge(
    mart_mrr_movements: ir.Table, fx_rates: ir.Table, currencies: ir.Table, params: BuildParams
) -> ir.Table:
    fx = M.monthly_fx(fx_rates, currencies, params.reporting_currency)
    return M.mrr_bridge(mart_mrr_movements, fx)


def mart_mrr_metrics(mart_mrr_bridge: ir.Table) -> ir.Table:
    return metrics.mart_mrr_metrics(mart_mrr_bridge)


def mart_cohort_retention(
    mart_mrr_movements: ir.Table, dim_date: ir.Table, params: BuildParams
) -> ir.Table:
    return metrics.mart_cohort_retention(mart_mrr_movements, _months(dim_date, params))


def mart_trial_conversion(
    fact_subscription_item_months: ir.Table, dim_date: ir.Table, params: BuildParams
) -> ir.Table:
    return metrics.mart_trial_conversion(fact_subscription_item_months, _months(dim_date, params))


def mart_payment_health(
    fact_payment_attempts: ir.Table, dim_payment_method: ir.Table, dim_payment_outcome: ir.Table
) -> ir.Table:
    return metrics.mart_payment_health(
        fact_payment_attempts, dim_payment_method, dim_payment_outcome
    )


def mart_decline_codes(fact_payment_attempts: ir.Table, dim_payment_outcome: ir.Table) -> ir.Table:
    return metrics.mart_decline_codes(fact_payment_attempts, dim_payment_outcome)


def mart_three_d_secure(fact_payment_intents: ir.Table) -> ir.Table:
    return metrics.mart_three_d_secure(fact_payment_intents)


def mart_refund_rates(fact_payment_attempts: ir.Table) -> ir.Table:
    return metrics.mart_refund_rates(fact_payment_attempts)


def mart_risk_levels(
    fact_payment_attempts: ir.Table, dim_payment_outcome: ir.Table, fact_disputes: ir.Table
) -> ir.Table:
    return metrics.mart_risk_levels(fact_payment_attempts, dim_payment_outcome, fact_disputes)


def mart_dispute_outcomes(fact_disputes: ir.Table) -> ir.Table:
    return metrics.mart_dispute_outcomes(fact_disputes)


def mart_customer_overview(
    fact_balance_transactions: ir.Table,
    fact_payment_attempts: ir.Table,
    dim_date: ir.Table,
    params: BuildParams,
) -> ir.Table:
    as_of_month = _date(params.as_of.date().replace(day=1))
    return metrics.mart_customer_overview(
        fact_balance_transactions, fact_payment_attempts, dim_date, as_of_month
    )


def mart_daily_overview(
    fact_balance_transactions: ir.Table,
    fact_payment_attempts: ir.Table,
    dim_date: ir.Table,
    params: BuildParams,
) -> ir.Table:
    return metrics.mart_daily_overview(
        fact_balance_transactions, fact_payment_attempts, dim_date, _date(params.as_of.date())
    )


mart_balance_transactions = details.mart_balance_transactions
mart_invoice_details = details.mart_invoice_details
mart_invoice_line_details = details.mart_invoice_line_details
mart_subscription_details = details.mart_subscription_details
mart_payout_reconciliation = details.mart_payout_reconciliation


PER_CUSTOMER = frozenset({
    "mart_mrr_movements", "mart_invoice_details", "mart_invoice_line_details",
    "mart_subscription_details",
})  # fmt: skip
"""Marts whose rows of a customer follow from that customer's rows alone: an update
recomputes only the changed customers' (:attr:`paymodel.olap.build.Step.per_customer`).
Not the bridge and its metrics (sums over customers); not the customer overview (its
this-month figures change for every customer when the month turns), nor the item MRR
mart (an ended item has a row in every month up to the as-of month, whether or not its
customer changed); not the balance transactions mart (the account's own movements
belong to no customer)."""

STEPS = [Step(t, globals()[t.name], model=MARTS, whole=True, per_customer=t.name in PER_CUSTOMER)
         for t in MARTS.tables]  # fmt: skip
"""One build step per mart, in the model's order."""


def register_marts() -> None:
    """Append the marts' steps to the warehouse build (once)."""
    for step in STEPS:
        if all(s.table.name != step.table.name for s in BUILD_STEPS):
            register(step)


def mart_expressions(tables: Mapping[str, ir.Table], params: BuildParams) -> dict[str, ir.Table]:
    """Every mart as an expression over ``tables``, conformed to the model, in order.

    Args:
        tables: the :data:`STAR_INPUTS` warehouse tables, and the OLTP ``fx_rates`` and
            ``currencies`` (``code``, ``exponent``).
        params: the build's parameters (its reporting currency).
    """
    missing = [n for n in (*STAR_INPUTS, "fx_rates", "currencies") if n not in tables]
    if missing:
        raise ValueError(f"marts: no input table {', '.join(missing)}")
    ns = dict(tables)
    for step in STEPS:
        args = {i: ns[i] for i in step.inputs}
        if "params" in inspect.signature(step.build).parameters:
            args["params"] = params
        ns[step.table.name] = conform(step.build(**args), step.table)
    return {t.name: ns[t.name] for t in MARTS.tables}
