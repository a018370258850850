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

from paymodel.model.marts import MOVEMENTS

__all__ = [
    "BRIDGE_COMPONENTS",
    "MOVEMENTS",
    "month_calendar",
    "monthly_fx",
    "mrr_bridge",
    "mrr_movements",
    "subscription_item_mrr",
]

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
# amount (13 digits) x factor (24 digits, 12 places) needs 38 digits: exact on every engine,
# Spark included (it drops decimal places from products wider than 38 digits).
_AMOUNT = ibis.dtype("decimal(13, 0)")
_FACTOR = ibis.dtype("decimal(24, 12)")
_EXACT = ibis.dtype("decimal(38, 12)")


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
    out = with_open.filter((with_open.opening_mrr != 0) | (with_open.closing_mrr != 0))
    return out.select(
        *_KEY,
        "month",
        opening_mrr=out.opening_mrr.cast("int64"),
        closing_mrr=out.closing_mrr.cast("int64"),
        mrr_change=(out.closing_mrr - out.opening_mrr).cast("int64"),
        movement=_movement(out.opening_mrr, out.closing_mrr, out.month == out.first_paid_month),
    )


def _movement(
    before: ir.IntegerValue, after: ir.IntegerValue, first_paid: ir.BooleanValue
) -> ir.StringValue:
    """The movement from ``before`` to ``after``; reactivation is tested before expansion."""
    return ibis.cases(
        ((before == 0) & (after > 0) & first_paid, "new"),
        ((before == 0) & (after > 0), "reactivation"),
        ((before > 0) & (after == 0), "churn"),
        (after > before, "expansion"),
        (after < before, "contraction"),
        else_="none",
    )


def subscription_item_mrr(item_months: ir.Table, months: ir.Table) -> ir.Table:
    """``mart_subscription_item_mrr``: each item-month with its MRR movement.

    One row per row of ``item_months`` (the star's ``fact_subscription_item_months``:
    ``subscription_item_id``, ``month``, ``subscription_id``, ``customer_id``, ``price_id``,
    ``product_id``, ``currency``, ``status``, ``quantity``, ``mrr``), plus, for an item that
    left the snapshot before the calendar's last month, one row for the month after its
    last (status ``ended``, MRR 0: the churn). Nothing is carried past the calendar.
    The movement compares the item's MRR with its previous row's; an item going from 0
    to positive is ``new`` the first time and ``reactivation`` after.
    """
    f = item_months
    cols = ["subscription_id", "customer_id", "price_id", "product_id", "currency"]
    live = f.select("subscription_item_id", *cols, "status", "quantity", "mrr",
                    month=f.month.cast("date"))  # fmt: skip
    last = live.group_by("subscription_item_id").aggregate(last_month=live.month.max())
    cal = months.select(cal_month=months.month.cast("date")).distinct()
    after = (
        last.join(cal, cal.cal_month > last.last_month)
        .group_by("subscription_item_id", "last_month")
        .aggregate(month=cal.cal_month.min())
    )
    tail = after.join(
        live, [after.subscription_item_id == live.subscription_item_id,
               after.last_month == live.month]
    ).select(
        after.subscription_item_id, *(live[c] for c in cols),
        status=ibis.literal("ended"), quantity=live.quantity,
        mrr=ibis.literal(0).cast(live.mrr.type()), month=after.month,
    )  # fmt: skip
    rows = live.union(tail.select(*live.columns))
    w = ibis.window(group_by="subscription_item_id", order_by="month")
    whole = ibis.window(group_by="subscription_item_id")
    rows = rows.mutate(
        previous_mrr=ibis.coalesce(rows.mrr.lag().over(w), 0),
        first_paid_month=ibis.ifelse(rows.mrr > 0, rows.month, None).min().over(whole),
        item_month_number=(ibis.row_number().over(w) + 1).cast("int32"),
    )
    return rows.select(
        "subscription_item_id", "month", *cols, "status",
        quantity=rows.quantity.cast("int32"),
        mrr=rows.mrr.cast("int64"),
        previous_mrr=rows.previous_mrr.cast("int64"),
        mrr_change=(rows.mrr - rows.previous_mrr).cast("int64"),
        movement=_movement(rows.previous_mrr, rows.mrr, rows.month == rows.first_paid_month),
        item_month_number="item_month_number",
    )  # fmt: skip


def monthly_fx(
    fx_rates: ir.Table, currencies: ir.Table, reporting_currency: str = "usd"
) -> ir.Table:
    """The factor converting one minor unit of each currency into the reporting currency.

    One row per month and currency: ``month``, ``currency``, ``reporting_currency``,
    ``to_reporting`` (decimal, the reporting currency's major units per minor unit of
    ``currency``), from the rate of the month's last day in ``fx_rates`` (``rate_date``,
    ``currency``, ``usd_per_unit``: pass it filtered to the as-of date) and the minor-unit
    exponent of ``currencies`` (``currency`` or ``code``, ``exponent``).

    ``to_reporting = usd_per_unit(currency) / usd_per_unit(reporting) / 10 ** exponent``,
    rounded to 12 decimal places so that every engine multiplies by the same exact decimal.
    """
    month = fx_rates.rate_date.truncate("M").cast("date")
    last_day = fx_rates.group_by(month=month).aggregate(rate_date=fx_rates.rate_date.max())
    fx = fx_rates.join(last_day, "rate_date").select("rate_date", "month", "currency",
                                                     "usd_per_unit")  # fmt: skip
    rep = fx.filter(fx.currency == reporting_currency).select(
        rate_date="rate_date", rep_usd="usd_per_unit"
    )
    code = "currency" if "currency" in currencies.columns else "code"
    cur = currencies.select(currency=code, exponent="exponent")
    joined = fx.join(rep, "rate_date").join(cur, "currency")
    factor = (
        joined.usd_per_unit.cast("float64")
        / joined.rep_usd.cast("float64")
        / (ibis.literal(10.0) ** joined.exponent.cast("float64"))
    )
    return joined.select(
        month="month",
        currency="currency",
        reporting_currency=ibis.literal(reporting_currency),
        to_reporting=factor.round(12).cast(_FACTOR),
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
        customers_new=(m.movement == "new").sum(),
        customers_reactivated=(m.movement == "reactivation").sum(),
        customers_churned=(m.movement == "churn").sum(),
        customers_closing=(m.closing_mrr > 0).sum(),
    )
    counts = [c for c in bridge.columns if c.startswith("customers_")]
    bridge = bridge.mutate(**{c: bridge[c].cast("int64") for c in (*BRIDGE_COMPONENTS, *counts)})
    if fx is None:
        return bridge
    j = bridge.join(fx, ["month", "currency"])
    return j.select(
        *bridge.columns,
        reporting_currency="reporting_currency",
        to_reporting=j.to_reporting.cast(_EXACT),
        **{
            f"{c}_reporting": (j[c].cast(_AMOUNT) * j.to_reporting.cast(_FACTOR)).cast(_EXACT)
            for c in BRIDGE_COMPONENTS
        },
    )
