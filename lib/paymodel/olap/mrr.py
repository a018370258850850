"""MRR movements and the MRR bridge: pure Ibis transforms over subscription item months.

The input is a table of the shape of the star's ``fact_subscription_item_months`` (one
row per subscription item per month it was live), of which these transforms read
``customer_id``, ``currency``, ``month`` (the month's first day) and ``mrr`` (integer minor
units, already normalised to a month, trials and metered usage excluded, discounts
applied), plus a calendar of months (one row per month the data spans, column ``month``)
whose last month is the data's as-of month. Nothing here reads the clock: a customer
whose items are live in the last month of the data stays live, it is never churned at
"today" (one of fivetran/dbt_stripe's mistakes).

Movements follow ChartMogul's definitions, per customer, month and currency:

* ``new``: MRR goes from 0 to positive in the customer's first paid month;
* ``reactivation``: MRR goes from 0 to positive in any later month (the customer had
  churned). Tested *before* expansion: dbt_stripe tests expansion first and so never
  assigns reactivation;
* ``expansion`` / ``contraction``: MRR rises / falls and stays positive;
* ``churn``: MRR falls to 0 (the customer's last live subscription ended: a customer
  with several subscriptions churns only when the last one ends);
* ``none``: MRR is unchanged and positive.

Months in which the customer's MRR is 0 both before and after carry no information and
are left out, so a churned customer does not add a row per month forever.

Example:
    >>> import datetime as dt
    >>> import ibis
    >>> d = dt.date
    >>> items = ibis.memtable({
    ...     "customer_id": ["c1"] * 4, "currency": ["usd"] * 4,
    ...     "month": [d(2024, 1, 1), d(2024, 2, 1), d(2024, 4, 1), d(2024, 5, 1)],
    ...     "mrr": [1000, 1500, 1500, 1500],
    ... })
    >>> months = ibis.memtable({"month": [d(2024, m, 1) for m in range(1, 6)]})
    >>> con = ibis.duckdb.connect()
    >>> out = con.to_pyarrow(mrr_movements(items, months).order_by("month"))
    >>> out.column("movement").to_pylist()
    ['new', 'expansion', 'churn', 'reactivation', 'none']
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

__all__ = [
    "BRIDGE_COMPONENTS",
    "MOVEMENTS",
    "month_calendar",
    "monthly_fx",
    "mrr_bridge",
    "mrr_movements",
]

MOVEMENTS = ("new", "expansion", "contraction", "churn", "reactivation", "none")
"""The movement kinds of ``mart_mrr_movements``."""

BRIDGE_COMPONENTS = (
    "opening_mrr",
    "new_mrr",
    "expansion_mrr",
    "reactivation_mrr",
    "contraction_mrr",
    "churned_mrr",
    "closing_mrr",
)
"""The columns of ``mart_mrr_bridge``, in the order of the identity
opening + new + expansion + reactivation - contraction - churned = closing."""

_KEY = ("customer_id", "currency")


def month_calendar(days: ir.Table, column: str = "month") -> ir.Table:
    """One row per distinct month first day found in ``days[column]``.

    Any calendar works (``dim_date``'s month column, or the item months themselves
    when every month of the data has at least one live item).
    """
    return days.select(month=days[column].cast("date")).distinct()


def mrr_movements(item_months: ir.Table, months: ir.Table) -> ir.Table:
    """``mart_mrr_movements``: one row per customer, month and currency with a movement.

    Args:
        item_months: rows with ``customer_id``, ``currency``, ``month`` (date, first day),
            ``mrr`` (integer minor units); several rows per customer and month are
            summed (several items, several subscriptions).
        months: the calendar, one row per month (column ``month``) from the first month
            of the data to the as-of month. A customer's rows run from its first month
            with positive MRR to the last month of this calendar.

    Returns:
        ``customer_id``, ``currency``, ``month``, ``opening_mrr``, ``closing_mrr``,
        ``mrr_change`` (closing - opening) and ``movement`` (one of :data:`MOVEMENTS`).
        A month is left out when opening and closing MRR are both 0.
    """
    im = item_months
    closing = im.group_by(*_KEY, month=im.month.cast("date")).aggregate(
        closing_mrr=im.mrr.sum().cast("int64")
    )
    first = (
        closing.filter(closing.closing_mrr > 0)
        .group_by(*_KEY)
        .aggregate(first_paid_month=closing.month.min())
    )
    cal = months.select(month=months.month.cast("date")).distinct()
    grid = first.join(cal, cal.month >= first.first_paid_month).select(
        *_KEY, "first_paid_month", "month"
    )
    filled = grid.left_join(closing, [*_KEY, "month"]).select(
        *_KEY,
        "first_paid_month",
        "month",
        closing_mrr=ibis.coalesce(closing.closing_mrr, 0),
    )
    w = ibis.window(group_by=list(_KEY), order_by="month")
    with_open = filled.mutate(opening_mrr=ibis.coalesce(filled.closing_mrr.lag().over(w), 0))
    o, c = with_open.opening_mrr, with_open.closing_mrr
    movement = ibis.cases(
        ((o == 0) & (c > 0) & (with_open.month == with_open.first_paid_month), "new"),
        ((o == 0) & (c > 0), "reactivation"),
        ((o > 0) & (c == 0), "churn"),
        (c > o, "expansion"),
        (c < o, "contraction"),
        else_="none",
    )
    out = with_open.filter((o != 0) | (c != 0))
    return out.select(
        *_KEY,
        "month",
        opening_mrr=out.opening_mrr.cast("int64"),
        closing_mrr=out.closing_mrr.cast("int64"),
        mrr_change=(out.closing_mrr - out.opening_mrr).cast("int64"),
        movement=movement,
    )


def monthly_fx(
    fx_rates: ir.Table, currencies: ir.Table, reporting_currency: str = "usd"
) -> ir.Table:
    """The factor converting one minor unit of each currency into the reporting currency.

    One row per month and currency: ``month``, ``currency``, ``to_reporting`` (decimal, the
    reporting currency's major units per minor unit of ``currency``), from the rate of the
    month's first day in ``fx_rates`` (``rate_date``, ``currency``, ``usd_per_unit``) and the
    minor-unit exponent of ``currencies`` (``code``, ``exponent``).

    ``to_reporting = usd_per_unit(currency) / usd_per_unit(reporting) / 10 ** exponent``,
    rounded to 12 decimal places so that every engine multiplies by the same exact decimal.
    """
    fx = fx_rates.filter(fx_rates.rate_date.day() == 1)
    rep = fx.filter(fx.currency == reporting_currency).select(
        rate_date="rate_date", rep_usd="usd_per_unit"
    )
    cur = currencies.select(currency="code", exponent="exponent")
    joined = fx.join(rep, "rate_date").join(cur, "currency")
    factor = (
        joined.usd_per_unit.cast("float64")
        / joined.rep_usd.cast("float64")
        / (ibis.literal(10.0) ** joined.exponent.cast("float64"))
    )
    return joined.select(
        month=joined.rate_date.cast("date"),
        currency="currency",
        to_reporting=factor.round(12).cast(ibis.dtype("decimal(38, 12)")),
    )


def mrr_bridge(movements: ir.Table, fx: ir.Table | None = None) -> ir.Table:
    """``mart_mrr_bridge``: one row per month and currency, the movements summed.

    ``opening_mrr + new_mrr + expansion_mrr + reactivation_mrr - contraction_mrr
    - churned_mrr = closing_mrr`` holds on every row, because every customer row adds
    its ``mrr_change`` to exactly one component (``none`` rows add 0).

    With ``fx`` (from :func:`monthly_fx`), each component also appears converted to the
    reporting currency at the month's rate (``*_reporting`` decimals, major units). All
    components of a row are multiplied by the same factor, so the identity holds in the
    reporting currency too; last month's converted closing and this month's converted
    opening differ by the change of the rate, which is not a movement of MRR.
    """
    m = movements
    change = m.mrr_change

    def part(kind: str, amount: ir.IntegerValue) -> ir.IntegerScalar:
        return ibis.ifelse(m.movement == kind, amount, 0).sum()

    bridge = m.group_by("month", "currency").aggregate(
        opening_mrr=m.opening_mrr.sum(),
        new_mrr=part("new", change),
        expansion_mrr=part("expansion", change),
        reactivation_mrr=part("reactivation", change),
        contraction_mrr=part("contraction", -change),
        churned_mrr=part("churn", -change),
        closing_mrr=m.closing_mrr.sum(),
        customers_opening=(m.opening_mrr > 0).sum(),
        customers_closing=(m.closing_mrr > 0).sum(),
    )
    bridge = bridge.mutate(**{c: bridge[c].cast("int64") for c in BRIDGE_COMPONENTS})
    if fx is None:
        return bridge
    j = bridge.join(fx, ["month", "currency"])
    return j.select(
        *bridge.columns,
        to_reporting="to_reporting",
        **{
            f"{c}_reporting": (j[c].cast(ibis.dtype("decimal(38, 0)")) * j.to_reporting)
            for c in BRIDGE_COMPONENTS
        },
    )
