"""The warehouse's transforms: pure Ibis functions, ``Table -> Table``, one per dimension and fact.

Each function takes the tables it needs (staged OLTP tables, the event history, tables
built before it) as Ibis expressions and returns an expression; nothing here executes a
query, so the same functions compile to DuckDB, PostgreSQL and Spark SQL. Side effects
(reading the OLTP, creating the DDL, inserting) live in :mod:`paymodel.olap.build`.

Inputs are the OLTP tables *as of* the build time: rows created after it are filtered
out before the transforms see them (:func:`as_of`), and the state of an object at that
time (a status, an amount paid) comes from its last event snapshot at or before it
(:func:`event_history`, :func:`latest_state`), or from its OLTP row when it has no
events at all (data loaded without its event log).

Example:
    >>> import ibis
    >>> t = ibis.memtable({"ts": ["2024-03-05T10:00:00"]}).mutate(ts=ibis._.ts.cast("timestamp"))
    >>> ibis.to_sql(t.select(k=date_key(t.ts)), dialect="duckdb").count("10000") >= 1
    True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from paymodel.model.core import Table as ModelTable
from paymodel.model.oltp import OLTP

__all__ = [
    "LIVE_STATUSES",
    "MRR_STATUSES",
    "REGIONS",
    "BuildParams",
    "as_of",
    "conform",
    "date_key",
    "dim_currency",
    "dim_customer",
    "dim_customer_snowflake",
    "dim_date",
    "dim_geography",
    "dim_payment_method",
    "dim_payment_outcome",
    "dim_price",
    "dim_price_snowflake",
    "dim_product",
    "event_history",
    "fact_balance_transactions",
    "fact_disputes",
    "fact_invoice_lines",
    "fact_payment_attempts",
    "fact_payment_intents",
    "fact_payouts",
    "fact_refunds",
    "fact_subscription_item_months",
    "latest_state",
    "monthly_amount",
    "subscription_history",
    "subscription_item_events",
    "to_reporting_currency",
    "union_all",
    "version_at",
]

LIVE_STATUSES = ("trialing", "active", "past_due")
"""Subscription statuses in which a subscription is live (its items have a month row)."""
MRR_STATUSES = ("active", "past_due")
"""Statuses whose items count as MRR (trials do not)."""
UNKNOWN_COUNTRY = "ZZ"
_OPEN_END = datetime(9999, 12, 31, tzinfo=UTC)
"""The instant an open SCD2 version (``valid_to`` NULL) is treated as ending at in joins."""

REGIONS = {
    "US": "North America", "CA": "North America",
    "MX": "Latin America", "BR": "Latin America", "AR": "Latin America", "CL": "Latin America",
    "CO": "Latin America",
    "GB": "Europe", "DE": "Europe", "FR": "Europe", "CH": "Europe", "SE": "Europe", "NL": "Europe",
    "ES": "Europe", "IT": "Europe", "IE": "Europe", "DK": "Europe", "NO": "Europe", "PL": "Europe",
    "AT": "Europe", "BE": "Europe", "FI": "Europe", "PT": "Europe", "CZ": "Europe",
    "JP": "Asia Pacific", "AU": "Asia Pacific", "IN": "Asia Pacific", "SG": "Asia Pacific",
    "NZ": "Asia Pacific", "KR": "Asia Pacific", "HK": "Asia Pacific", "CN": "Asia Pacific",
    "AE": "Middle East and Africa", "KW": "Middle East and Africa", "ZA": "Middle East and Africa",
    "IL": "Middle East and Africa", "SA": "Middle East and Africa",
}  # fmt: skip
"""Sales region of each country dim_geography knows; any other country is Unknown."""

_FACTOR = dt.Decimal(24, 16)
_MINOR = dt.Decimal(12, 0)
_REPORTING = dt.Decimal(20, 6)
_SECOND = ibis.interval(seconds=1)


@dataclass(frozen=True)
class BuildParams:
    """What a build depends on besides its tables.

    Attributes:
        as_of: the instant the warehouse describes (UTC, tz-aware).
        reporting_currency: lowercase ISO code of the ``*_reporting`` amounts.
        fiscal_year_start_month: first month of the fiscal year (1 = calendar year).
    """

    as_of: datetime
    reporting_currency: str = "usd"
    fiscal_year_start_month: int = 1

    def __post_init__(self) -> None:
        if self.as_of.tzinfo is None:
            raise ValueError("as_of must be timezone-aware (UTC)")
        if not 1 <= self.fiscal_year_start_month <= 12:
            raise ValueError("fiscal_year_start_month must be 1-12")

    @property
    def as_of_literal(self) -> ir.TimestampScalar:
        return ibis.timestamp(self.as_of)


# --- helpers ---------------------------------------------------------------------------------


def date_key(value: ir.Value) -> ir.IntegerValue:
    """The dim_date key (YYYYMMDD) of a timestamp or date; NULL stays NULL."""
    d = value.date() if value.type().is_timestamp() else value
    return (d.year() * 10000 + d.month() * 100 + d.day()).cast("int32")


def as_of(table: ir.Table, column: str, when: datetime) -> ir.Table:
    """Rows of ``table`` that existed at ``when``: ``column`` at or before it."""
    return table.filter(table[column] <= ibis.timestamp(when))


def _logical_dtype(col) -> dt.DataType:  # type: ignore[no-untyped-def]
    sql = col.type.sql
    base = {
        "text": dt.string,
        "bigint": dt.int64,
        "integer": dt.int32,
        "smallint": dt.int16,
        "boolean": dt.boolean,
        "timestamptz": dt.Timestamp(timezone="UTC"),
        "date": dt.date,
        "json": dt.string,
    }.get(sql)
    if sql == "decimal":
        base = dt.Decimal(col.type.precision, col.type.scale)
    if base is None:  # pragma: no cover - every logical type is mapped
        raise ValueError(f"column {col.name}: no Ibis type for {sql}")
    return base.copy(nullable=col.nullable)


def conform(expr: ir.Table, table: ModelTable) -> ir.Table:
    """``expr``'s columns in the model's order, cast to the model's types.

    Every engine then returns the same types, and inserting into the DDL needs no guess.
    A missing or extra column is an error naming the table.
    """
    missing = [c for c in table.column_names if c not in expr.columns]
    extra = [c for c in expr.columns if c not in table.column_names]
    if missing or extra:
        raise ValueError(f"{table.name}: transform gives extra {extra} and lacks {missing}")
    return expr.select(*(expr[c.name].cast(_logical_dtype(c).copy(nullable=True)).name(c.name)
                         for c in table.columns))  # fmt: skip


def _renamed(table: ir.Table, prefix: str, columns: Iterable[str] | None = None) -> ir.Table:
    cols = list(columns) if columns is not None else list(table.columns)
    return table.select(**{f"{prefix}{c}": table[c] for c in cols})


def union_all(*parts: ir.Table) -> ir.Table:
    """UNION ALL of tables with the same columns, every column made nullable first.

    Engines disagree on which columns of a staged table are NOT NULL; a set operation
    needs identical schemas.
    """
    first = parts[0]
    types = {c: first[c].type().copy(nullable=True) for c in first.columns}
    cast = [p.select(*(p[c].cast(types[c]).name(c) for c in first.columns)) for p in parts]
    out = cast[0]
    for p in cast[1:]:
        out = out.union(p)
    return out


def latest_state(
    points: ir.Table,
    history: ir.Table,
    match: dict[str, str],
    at: str,
    *,
    by: str,
    tie: str,
) -> ir.Table:
    """Each row of ``points`` with the last ``history`` row (``by`` at or before ``at``).

    ``match`` maps columns of ``points`` to columns of ``history`` that must be equal;
    ``history``'s column names must differ from ``points``' (prefix them). Ties on ``by``
    are broken by the larger ``tie``. Points with no such history row are dropped:
    left-join the result back to keep them.
    """
    preds = [points[p] == history[h] for p, h in match.items()] + [history[by] <= points[at]]
    j = points.join(history, preds)
    w = ibis.window(
        group_by=[j[c] for c in points.columns], order_by=[ibis.desc(j[by]), ibis.desc(j[tie])]
    )
    return j.mutate(_rn=ibis.row_number().over(w)).filter(ibis._._rn == 0).drop("_rn")


def version_at(facts: ir.Table, dim_customer: ir.Table, at: str) -> ir.Table:
    """``facts`` with ``customer_key`` and ``_country`` of the customer version valid at ``at``.

    A left join on the natural key and the validity interval ``[valid_from, valid_to)``;
    facts without a customer (or before its first version) get NULL.
    """
    d = dim_customer.select(
        _v_customer_id=dim_customer.customer_id,
        _v_from=dim_customer.valid_from,
        _v_to=dim_customer.valid_to,
        customer_key=dim_customer.customer_key,
        _country=dim_customer.country,
    )
    # The open end as a far-future instant, not ``valid_to IS NULL OR ...``: a disjunction
    # is not a join condition, so DuckDB plans the left join as a nested loop (6.5x slower
    # at scale 1); three comparisons keep it a hash join on customer_id.
    open_end = ibis.literal(_OPEN_END).cast(d._v_to.type())
    j = facts.left_join(
        d,
        [
            facts.customer_id == d._v_customer_id,
            d._v_from <= facts[at],
            facts[at] < d._v_to.fill_null(open_end),
        ],
    )
    return j.drop("_v_customer_id", "_v_from", "_v_to")


def to_reporting_currency(
    table: ir.Table,
    fx_factors: ir.Table,
    amounts: Sequence[str],
    *,
    on: str,
    reporting_currency: str,
    currency: str = "currency",
) -> ir.Table:
    """Add ``<amount>_reporting`` (decimal, major units) and ``reporting_currency``.

    ``fx_factors`` has one row per ``(rate_date, currency)`` with ``factor``: the value of
    one minor unit of the currency in the reporting currency's major units, an exact
    decimal (see :func:`paymodel.olap.staging.fx_factors`). The amount is multiplied by
    the factor of the day of ``on`` (a timestamp or date column) and rounded half away
    from zero to six places: exact decimal arithmetic on every engine, never a float.
    """
    f = fx_factors.select(
        _fx_date=fx_factors.rate_date, _fx_currency=fx_factors.currency, _fx_factor=fx_factors.factor
    )
    day = table[on].date() if table[on].type().is_timestamp() else table[on]
    t = table.mutate(_fx_day=day)
    j = t.left_join(f, [t._fx_day == f._fx_date, t[currency] == f._fx_currency])
    converted = {
        f"{a}_reporting": (j[a].cast(_MINOR) * j._fx_factor.cast(_FACTOR)).round(6).cast(_REPORTING)
        for a in amounts
    }
    return j.mutate(**converted, reporting_currency=ibis.literal(reporting_currency)).drop(
        "_fx_day", "_fx_date", "_fx_currency", "_fx_factor"
    )


def monthly_amount(
    unit_amount: ir.IntegerValue,
    quantity: ir.IntegerValue,
    interval: ir.StringValue,
    interval_count: ir.IntegerValue,
    discount_basis_points: ir.IntegerValue,
) -> ir.IntegerValue:
    """A recurring price's amount per month in minor units, rounded half up, in integers.

    day x 365/12, week x 52/12, month / count, year / (12 x count); quantity multiplies;
    a percentage discount (in basis points, 10000 = 100%) reduces it. Integer arithmetic
    end to end, so every engine gives the same result.
    """
    per_year = ibis.cases(
        (interval == "day", 365), (interval == "week", 52), (interval == "month", 12),
        (interval == "year", 1), else_=0,
    ).cast("int64")  # fmt: skip
    numerator = unit_amount.cast("int64") * quantity.cast("int64") * per_year * (
        10000 - discount_basis_points.cast("int64")
    )
    denominator = interval_count.cast("int64") * 12 * 10000
    return ((numerator * 2 + denominator) // (denominator * 2)).cast("int64")


# --- the event history (runs on the OLTP engine) ---------------------------------------------


def event_history(events: ir.Table) -> ir.Table:
    """One row per event with the fields of its snapshot the warehouse tracks.

    ``customer_id`` is the customer of a customer, subscription, invoice or payment
    intent snapshot; ``status``, ``currency``, ``delinquent``, ``country`` (of the
    address), ``amount_paid`` and ``amount_received`` are NULL where the object has none.
    """
    d = events.data_object
    customer = ibis.coalesce(d["customer"].str, d["customer"]["id"].str)
    return events.select(
        event_id=events.id,
        created=events.created,
        type=events.type,
        object_type=events.object_type,
        object_id=events.object_id,
        customer_id=ibis.ifelse(events.object_type == "customer", events.object_id, customer),
        status=d["status"].str,
        currency=d["currency"].str,
        delinquent=d["delinquent"].bool,
        country=d["address"]["country"].str,
        amount_paid=d["amount_paid"].int,
        amount_received=d["amount_received"].int,
    )


def subscription_item_events(events: ir.Table) -> ir.Table:
    """One row per subscription snapshot per item in it: status, price and quantity then."""
    s = events.filter(events.object_type == "subscription")
    d = s.data_object
    x = s.select(
        event_id=s.id,
        created=s.created,
        type=s.type,
        subscription_id=s.object_id,
        customer_id=ibis.coalesce(d["customer"].str, d["customer"]["id"].str),
        status=d["status"].str,
        items=d["items"]["data"].array,
    ).unnest("items")
    item = x["items"]
    return x.select(
        "event_id", "created", "type", "subscription_id", "customer_id", "status",
        subscription_item_id=item["id"].str,
        price_id=ibis.coalesce(item["price"].str, item["price"]["id"].str),
        quantity=item["quantity"].int,
    )  # fmt: skip


def subscription_history(
    subscription_item_events: ir.Table, subscriptions: ir.Table, subscription_items: ir.Table
) -> ir.Table:
    """Every item of every subscription snapshot, from the events or, without them, the OLTP.

    A subscription with no events at all (data loaded without its event log) gets one
    row per item at its creation (``active``, or its status if still live) and, if it
    ended, one at ``ended_at`` with its final status: the best the OLTP rows can say.
    """
    ev = subscription_item_events
    seen = ev.select(_seen=ev.subscription_id).distinct()
    s = subscriptions.left_join(seen, subscriptions.id == seen._seen).filter(ibis._._seen.isnull())
    items = subscription_items.select(
        _si_id=subscription_items.id,
        _si_sub=subscription_items.subscription_id,
        _si_price=subscription_items.price_id,
        _si_qty=subscription_items.quantity,
    )
    s = s.join(items, s.id == items._si_sub)
    ended = s.ended_at.notnull()
    start = s.select(
        event_id="oltp:" + s.id,
        created=s.created,
        type=ibis.literal("oltp.subscription"),
        subscription_id=s.id,
        customer_id=s.customer_id,
        status=ibis.ifelse(ended, ibis.literal("active"), s.status),
        subscription_item_id=s._si_id,
        price_id=s._si_price,
        quantity=s._si_qty.cast("int64"),
    )
    end = s.filter(ended).select(
        event_id="oltp:end:" + s.id,
        created=s.ended_at,
        type=ibis.literal("oltp.subscription"),
        subscription_id=s.id,
        customer_id=s.customer_id,
        status=s.status,
        subscription_item_id=s._si_id,
        price_id=s._si_price,
        quantity=s._si_qty.cast("int64"),
    )
    cols = start.columns
    return union_all(ev.select(*cols), start, end.select(*cols))


# --- dimensions ------------------------------------------------------------------------------


def dim_date(calendar: ir.Table, params: BuildParams) -> ir.Table:
    """One row per day of ``calendar`` (a ``date`` column) with its calendar attributes."""
    d = calendar.date
    dow = d.day_of_week.index()  # 0 = Monday on every backend
    thursday = d + (3 - dow).as_interval("D")  # ISO weeks belong to the year of their Thursday
    s = params.fiscal_year_start_month
    month = d.month()
    fiscal_year = d.year() + ibis.ifelse(month >= s, 1, 0) if s != 1 else d.year()
    return calendar.select(
        date_key=date_key(d),
        date=d,
        year=d.year(),
        quarter=d.quarter(),
        month=month,
        month_start=d.truncate("M"),
        day_of_month=d.day(),
        day_of_week=dow + 1,
        is_weekend=dow >= 5,
        iso_year=thursday.year(),
        iso_week=(thursday.day_of_year() - 1) // 7 + 1,
        fiscal_year=fiscal_year,
        fiscal_quarter=((month - s + 12) % 12) // 3 + 1,
    )


def dim_currency(currencies: ir.Table) -> ir.Table:
    """One row per currency, with its minor-unit exponent."""
    return currencies.select(currency=currencies.code, name=currencies.name, exponent=currencies.exponent)


def dim_geography() -> ir.Table:
    """One row per country of :data:`REGIONS`, and ``ZZ`` for unknown."""
    rows = [*sorted(REGIONS.items()), (UNKNOWN_COUNTRY, "Unknown")]
    t = ibis.memtable({"country": [c for c, _ in rows], "region": [r for _, r in rows]})
    return t.select(geography_key=t.country, country=t.country, region=t.region)


def dim_product(products: ir.Table) -> ir.Table:
    """One row per product (type 1)."""
    p = products
    return p.select(product_key=p.id, product_id=p.id, name=p.name, active=p.active)


def dim_price(prices: ir.Table, products: ir.Table) -> ir.Table:
    """One row per price, with its product's name (denormalised)."""
    p = products.select(_product_id=products.id, product_name=products.name)
    j = prices.join(p, prices.product_id == p._product_id)
    return j.select(
        price_key=j.id,
        price_id=j.id,
        product_id=j.product_id,
        product_name=j.product_name,
        currency=j.currency,
        unit_amount=j.unit_amount,
        type=j.type,
        recurring_interval=j.recurring_interval,
        recurring_interval_count=j.recurring_interval_count,
        recurring_usage_type=j.recurring_usage_type,
        nickname=j.nickname,
    )


def dim_price_snowflake(dim_price: ir.Table) -> ir.Table:
    """dim_price with the product normalised out (a key into dim_product)."""
    return dim_price.drop("product_name").rename(product_key="product_id")


def dim_payment_method(payment_methods: ir.Table) -> ir.Table:
    """One row per payment method: type, brand, funding, country, wallet, expiry; no digits."""
    pm = payment_methods
    return pm.select(
        payment_method_key=pm.id,
        payment_method_id=pm.id,
        type=pm.type,
        card_brand=pm.card_brand,
        card_funding=pm.card_funding,
        card_country=pm.card_country,
        wallet=ibis.ifelse(pm.type == "link", ibis.literal("link"), ibis.null("string")),
        card_exp_month=pm.card_exp_month,
        card_exp_year=pm.card_exp_year,
    )


_OUTCOME_COLUMNS = (
    ("charge_status", "status"),
    ("outcome_type", "outcome_type"),
    ("network_status", "outcome_network_status"),
    ("risk_level", "outcome_risk_level"),
    ("failure_code", "failure_code"),
)


def dim_payment_outcome() -> ir.Table:
    """The cross product of the values the OLTP model accepts for the five outcome columns."""
    import itertools

    charges = OLTP.table("charges")
    values = []
    for _, col in _OUTCOME_COLUMNS:
        column = charges.column(col)
        accepted = list(column.accepted or ())
        values.append(accepted + (["none"] if column.nullable else []))
    rows = list(itertools.product(*values))
    data = {name: [r[i] for r in rows] for i, (name, _) in enumerate(_OUTCOME_COLUMNS)}
    data["payment_outcome_key"] = ["|".join(r) for r in rows]
    t = ibis.memtable(data)
    return t.select("payment_outcome_key", *(name for name, _ in _OUTCOME_COLUMNS))


def payment_outcome_key(charges: ir.Table) -> ir.StringValue:
    """The dim_payment_outcome key of each charge."""
    parts = [charges[col].fill_null("none") for _, col in _OUTCOME_COLUMNS]
    key = parts[0]
    for p in parts[1:]:
        key = key + "|" + p
    return key


def _live_tier(
    points: ir.Table, subscription_history: ir.Table, prices: ir.Table, products: ir.Table
) -> ir.Table:
    """Per ``(customer_id, at)`` point, the product of its live item with the highest monthly amount."""
    h = subscription_history
    subs = h.select(_cs_customer=h.customer_id, _cs_sub=h.subscription_id).distinct()
    ps = points.join(subs, points.customer_id == subs._cs_customer).select(
        "customer_id", "at", subscription_id=ibis._._cs_sub
    )
    ev = h.select(
        s_subscription_id=h.subscription_id, s_created=h.created, s_event_id=h.event_id
    ).distinct()
    last = latest_state(
        ps, ev, {"subscription_id": "s_subscription_id"}, "at", by="s_created", tie="s_event_id"
    ).select("customer_id", "at", "s_event_id")
    items = h.select(
        i_event_id=h.event_id, i_status=h.status, i_price=h.price_id, i_quantity=h.quantity
    )
    j = last.join(items, last.s_event_id == items.i_event_id).filter(
        ibis._.i_status.isin(LIVE_STATUSES)
    )
    pr = prices.select(
        p_id=prices.id,
        p_product=prices.product_id,
        p_unit=prices.unit_amount,
        p_interval=prices.recurring_interval,
        p_count=prices.recurring_interval_count,
        p_usage=prices.recurring_usage_type,
    )
    pn = products.select(n_id=products.id, n_name=products.name)
    j = j.join(pr, j.i_price == pr.p_id).join(pn, ibis._.p_product == pn.n_id)
    j = j.filter(j.p_usage == "licensed").mutate(
        _amount=monthly_amount(
            j.p_unit.fill_null(0), j.i_quantity.fill_null(1), j.p_interval, j.p_count, ibis.literal(0)
        )
    )
    w = ibis.window(
        group_by=[j.customer_id, j.at], order_by=[ibis.desc(j._amount), j.n_name]
    )
    j = j.mutate(_rn=ibis.row_number().over(w)).filter(ibis._._rn == 0)
    return j.select("customer_id", "at", plan_tier=j.n_name)


def dim_customer(
    customers: ir.Table,
    customer_addresses: ir.Table,
    customer_pii: ir.Table,
    event_history: ir.Table,
    subscription_history: ir.Table,
    prices: ir.Table,
    products: ir.Table,
    dim_geography: ir.Table,
) -> ir.Table:
    """SCD type 2: a version per change of country, currency, plan tier or delinquency.

    Change points are the customer's creation and every customer and subscription event;
    the attributes are evaluated at each point (the last customer snapshot at or before
    it, the subscriptions live then) and a version starts where they differ from the
    previous point. ``valid_to`` is the next version's start; the last is current.
    """
    c = customers
    cust_ev = event_history.filter(event_history.object_type == "customer")
    pts = union_all(
        c.select(customer_id=c.id, at=c.created, reason=ibis.literal("customer.created")),
        cust_ev.select(customer_id=cust_ev.object_id, at=cust_ev.created, reason=cust_ev.type),
        subscription_history.select(
            customer_id=subscription_history.customer_id,
            at=subscription_history.created,
            reason=subscription_history.type,
        ),
    )
    known = c.select(_known=c.id, _created=c.created)
    pts = pts.join(known, [pts.customer_id == known._known, pts.at >= known._created])
    pts = pts.group_by("customer_id", "at").aggregate(reason=ibis._.reason.min())
    ce = cust_ev.select(
        h_customer_id=cust_ev.object_id,
        h_created=cust_ev.created,
        h_event_id=cust_ev.event_id,
        h_currency=cust_ev.currency,
        h_delinquent=cust_ev.delinquent,
        h_country=cust_ev.country,
    )
    attrs = latest_state(
        pts.select("customer_id", "at"), ce, {"customer_id": "h_customer_id"}, "at",
        by="h_created", tie="h_event_id",
    ).select("customer_id", "at", "h_event_id", "h_currency", "h_delinquent", "h_country")  # fmt: skip
    attrs = _renamed(attrs, "a_")
    tiers = _renamed(_live_tier(pts.select("customer_id", "at"), subscription_history, prices, products), "t_")
    base = c.select(b_id=c.id, b_currency=c.currency, b_delinquent=c.delinquent, b_created=c.created)
    addr = customer_addresses.select(d_id=customer_addresses.customer_id, d_country=customer_addresses.country)
    j = (
        pts.left_join(attrs, [pts.customer_id == attrs.a_customer_id, pts.at == attrs.a_at])
        .left_join(tiers, [pts.customer_id == tiers.t_customer_id, pts.at == tiers.t_at])
        .join(base, pts.customer_id == base.b_id)
        .left_join(addr, pts.customer_id == addr.d_id)
    )
    has_event = j.a_h_event_id.notnull()
    state = j.select(
        customer_id=j.customer_id,
        at=j.at,
        reason=j.reason,
        customer_created=j.b_created,
        country=ibis.coalesce(j.a_h_country, j.d_country, ibis.literal(UNKNOWN_COUNTRY)),
        currency=ibis.ifelse(has_event, j.a_h_currency, j.b_currency),
        delinquent=ibis.ifelse(has_event, j.a_h_delinquent, j.b_delinquent).fill_null(False),
        plan_tier=j.t_plan_tier.fill_null("none"),
    )
    signature = (
        state.country + "|" + state.currency.fill_null("-") + "|" + state.plan_tier + "|"
        + state.delinquent.cast("string")
    )  # fmt: skip
    by_customer = ibis.window(group_by=state.customer_id, order_by=state.at)
    state = state.mutate(_sig=signature)
    state = state.mutate(_prev=state._sig.lag().over(by_customer))
    versions = state.filter(state._prev.isnull() | (state._prev != state._sig))
    w = ibis.window(group_by=versions.customer_id, order_by=versions.at)
    versions = versions.mutate(valid_to=versions.at.lead().over(w))
    geo = dim_geography.select(g_country=dim_geography.country, region=dim_geography.region)
    pii = _renamed(customer_pii, "p_")
    v = versions.left_join(geo, versions.country == geo.g_country).left_join(
        pii, versions.customer_id == pii.p_customer_id
    )
    return v.select(
        customer_key=v.customer_id + "@" + v.at.epoch_seconds().cast("int64").cast("string"),
        customer_id=v.customer_id,
        valid_from=v.at,
        valid_to=v.valid_to,
        is_current=v.valid_to.isnull(),
        country=v.country,
        region=v.region.fill_null("Unknown"),
        currency=v.currency,
        plan_tier=v.plan_tier,
        delinquent=v.delinquent,
        email_hash=v.p_email_hash,
        name_hash=v.p_name_hash,
        phone_hash=v.p_phone_hash,
        address_hash=v.p_address_hash,
        customer_created=v.customer_created,
        change_reason=v.reason,
    )


def dim_customer_snowflake(dim_customer: ir.Table, dim_geography: ir.Table) -> ir.Table:
    """dim_customer with geography normalised out: a key into dim_geography instead."""
    g = dim_geography.select(_g_key=dim_geography.geography_key, _g_country=dim_geography.country)
    j = dim_customer.left_join(g, dim_customer.country == g._g_country)
    return j.mutate(geography_key=j._g_key.fill_null(UNKNOWN_COUNTRY)).drop(
        "country", "region", "_g_key", "_g_country"
    )


# --- facts -----------------------------------------------------------------------------------


def _charge_customers(charges: ir.Table) -> ir.Table:
    return charges.select(
        _ch_id=charges.id, _ch_customer=charges.customer_id, _ch_pi=charges.payment_intent_id
    )


def _last_status(event_history: ir.Table, object_type: str) -> ir.Table:
    """Per object of ``object_type``, the status and amounts of its last snapshot."""
    e = event_history.filter(event_history.object_type == object_type)
    w = ibis.window(group_by=e.object_id, order_by=[ibis.desc(e.created), ibis.desc(e.event_id)])
    e = e.mutate(_rn=ibis.row_number().over(w)).filter(ibis._._rn == 0)
    return e.select(
        s_id=e.object_id, s_status=e.status, s_amount_paid=e.amount_paid,
        s_amount_received=e.amount_received,
    )  # fmt: skip


def _first_of(event_history: ir.Table, types: dict[str, str]) -> ir.Table:
    """Per object, the time of its first event of each type (``{column: event type}``)."""
    e = event_history.filter(event_history.type.isin(list(types.values())))
    return e.group_by(m_id=e.object_id).aggregate(
        **{col: e.created.min(where=e.type == t) for col, t in types.items()}
    )


def fact_payment_attempts(
    charges: ir.Table,
    refunds: ir.Table,
    disputes: ir.Table,
    dim_customer: ir.Table,
    dim_geography: ir.Table,
    fx_factors: ir.Table,
    params: BuildParams,
) -> ir.Table:
    """One row per charge attempt, with what was refunded and disputed by the as-of time."""
    ch = charges
    ok = refunds.filter(refunds.status == "succeeded")
    refunded = ok.group_by(r_charge=ok.charge_id).aggregate(r_amount=ok.amount.sum())
    disputed = disputes.select(d_charge=disputes.charge_id).distinct()
    w = ibis.window(group_by=ch.payment_intent_id, order_by=[ch.created, ch.id])
    t = ch.mutate(attempt_number=ibis.row_number().over(w) + 1, payment_outcome_key=payment_outcome_key(ch))
    t = t.left_join(refunded, t.id == refunded.r_charge).left_join(disputed, t.id == disputed.d_charge)
    t = version_at(t, dim_customer, "created")
    geo = dim_geography.select(_geo=dim_geography.geography_key)
    t = t.left_join(geo, t._country == geo._geo)
    t = t.mutate(amount_refunded_asof=t.r_amount.fill_null(0))
    t = t.select(
        charge_id=t.id,
        payment_intent_id=t.payment_intent_id,
        customer_id=t.customer_id,
        customer_key=t.customer_key,
        payment_method_key=t.payment_method_id,
        payment_outcome_key=t.payment_outcome_key,
        geography_key=t._geo.fill_null(UNKNOWN_COUNTRY),
        created_date_key=date_key(t.created),
        captured_date_key=ibis.ifelse(t.amount_captured > 0, date_key(t.created), ibis.null("int32")),
        currency=t.currency,
        created=t.created,
        attempt_number=t.attempt_number,
        is_success=t.status == "succeeded",
        is_disputed=t.d_charge.notnull(),
        amount=t.amount,
        amount_captured=t.amount_captured,
        amount_refunded=t.amount_refunded_asof,
        risk_score=t.outcome_risk_score,
    )
    return to_reporting_currency(
        t, fx_factors, ["amount", "amount_captured", "amount_refunded"], on="created",
        reporting_currency=params.reporting_currency,
    )  # fmt: skip


def fact_payment_intents(
    payment_intents: ir.Table,
    charges: ir.Table,
    event_history: ir.Table,
    dim_customer: ir.Table,
    fx_factors: ir.Table,
    params: BuildParams,
) -> ir.Table:
    """An accumulating snapshot: one row per payment intent with the time of each milestone."""
    pi = payment_intents
    ev = event_history.filter(event_history.object_type == "payment_intent")
    firsts = _first_of(ev, {
        "m_requires_action": "payment_intent.requires_action",
        "m_succeeded": "payment_intent.succeeded",
        "m_failed": "payment_intent.payment_failed",
        "m_canceled": "payment_intent.canceled",
    })  # fmt: skip
    ch = charges
    att = ch.group_by(a_pi=ch.payment_intent_id).aggregate(
        a_count=ch.count(),
        a_first=ch.created.min(),
        a_first_ok=ch.created.min(where=ch.status == "succeeded"),
        a_first_failed=ch.created.min(where=ch.status == "failed"),
        a_pm=ch.payment_method_id.max(),
    )
    last = _last_status(ev, "payment_intent")
    t = (
        pi.left_join(firsts, pi.id == firsts.m_id)
        .left_join(att, pi.id == att.a_pi)
        .left_join(last, pi.id == last.s_id)
    )
    has_events = t.s_id.notnull()
    succeeded_at = ibis.ifelse(has_events, t.m_succeeded, t.a_first_ok)
    canceled_at = ibis.ifelse(has_events, t.m_canceled, t.canceled_at)
    confirmed = ibis.least(t.a_first, t.m_requires_action - _SECOND)
    confirmed = ibis.coalesce(confirmed, t.a_first, t.m_requires_action - _SECOND)
    t = t.mutate(
        _succeeded_at=succeeded_at, _canceled_at=canceled_at, _confirmed=confirmed,
        _status=ibis.ifelse(has_events, t.s_status, t.status),
        _received=ibis.ifelse(has_events, t.s_amount_received, t.amount_received).fill_null(0),
    )  # fmt: skip
    t = version_at(t, dim_customer, "created")
    t = t.select(
        payment_intent_id=t.id,
        customer_id=t.customer_id,
        customer_key=t.customer_key,
        payment_method_key=ibis.coalesce(t.payment_method_id, t.a_pm),
        created_date_key=date_key(t.created),
        succeeded_date_key=date_key(t._succeeded_at),
        currency=t.currency,
        status=t._status,
        capture_method=t.capture_method,
        created_at=t.created,
        first_confirmed_at=t._confirmed,
        requires_action_at=t.m_requires_action,
        succeeded_at=t._succeeded_at,
        failed_at=ibis.ifelse(has_events, t.m_failed, t.a_first_failed),
        canceled_at=t._canceled_at,
        attempt_count=t.a_count.fill_null(0),
        seconds_to_first_confirmation=(t._confirmed.epoch_seconds() - t.created.epoch_seconds()).cast("int64"),
        seconds_to_success=(t._succeeded_at.epoch_seconds() - t.created.epoch_seconds()).cast("int64"),
        amount=t.amount,
        amount_received=t._received,
    )
    return to_reporting_currency(
        t, fx_factors, ["amount", "amount_received"], on="created_at",
        reporting_currency=params.reporting_currency,
    )  # fmt: skip


def _invoice_payment_intents(invoice_payments: ir.Table, params: BuildParams) -> ir.Table:
    """Per invoice, the payment intent that pays it (``ip_invoice``, ``ip_payment_intent``).

    Stripe's invoice names no charge any more; its invoice payments link it to payment
    intents, possibly several. The one kept is the payment paid by the as-of time, else the
    default one, else the latest created (ties by id), so an invoice has at most one.
    """
    ip = invoice_payments
    paid = (ip.status == "paid") & (ip.paid_at <= params.as_of_literal)
    w = ibis.window(
        group_by=ip.invoice_id,
        order_by=[ibis.ifelse(paid, 0, 1), ibis.ifelse(ip.is_default, 0, 1),
                  ibis.desc(ip.created), ibis.desc(ip.id)],
    )  # fmt: skip
    ranked = ip.mutate(_rn=ibis.row_number().over(w)).filter(ibis._._rn == 0)
    return ranked.select(ip_invoice=ranked.invoice_id, ip_payment_intent=ranked.payment_intent_id)


def fact_invoice_lines(
    invoice_line_items: ir.Table,
    invoices: ir.Table,
    invoice_payments: ir.Table,
    prices: ir.Table,
    event_history: ir.Table,
    dim_customer: ir.Table,
    fx_factors: ir.Table,
    params: BuildParams,
) -> ir.Table:
    """One row per invoice line, with its invoice's status, payment and paying payment
    intent as of the build time."""
    ev = event_history.filter(event_history.object_type == "invoice")
    last = _last_status(ev, "invoice")
    paid = _first_of(ev, {"m_paid": "invoice.paid"})
    inv = invoices.select(
        i_id=invoices.id, customer_id=invoices.customer_id, i_sub=invoices.subscription_id,
        i_status=invoices.status, i_reason=invoices.billing_reason, i_due=invoices.due_date,
        i_paid_at=invoices.paid_at, i_created=invoices.created,
    )  # fmt: skip
    pr = prices.select(p_id=prices.id, p_product=prices.product_id)
    ipi = _invoice_payment_intents(invoice_payments, params)
    li = invoice_line_items
    t = (
        li.join(inv, li.invoice_id == inv.i_id)
        .left_join(last, ibis._.i_id == last.s_id)
        .left_join(paid, ibis._.i_id == paid.m_id)
        .left_join(pr, li.price_id == pr.p_id)
        .left_join(ipi, ibis._.i_id == ipi.ip_invoice)
    )
    has_events = t.s_id.notnull()
    t = t.mutate(
        _status=ibis.ifelse(has_events, t.s_status, t.i_status),
        _paid_at=ibis.ifelse(has_events, t.m_paid, t.i_paid_at),
    )
    t = version_at(t, dim_customer, "i_created")
    t = t.select(
        invoice_line_item_id=t.id,
        invoice_id=t.invoice_id,
        payment_intent_id=t.ip_payment_intent,
        subscription_id=ibis.ifelse(t.subscription_item_id.notnull(), t.i_sub, ibis.null("string")),
        subscription_item_id=t.subscription_item_id,
        customer_id=t.customer_id,
        customer_key=t.customer_key,
        price_key=t.price_id,
        product_key=t.p_product,
        created_date_key=date_key(t.i_created),
        due_date_key=date_key(t.i_due),
        paid_date_key=date_key(t._paid_at),
        period_start_date_key=date_key(t.period_start),
        currency=t.currency,
        invoice_status=t._status,
        billing_reason=t.i_reason,
        proration=t.proration,
        quantity=t.quantity,
        amount=t.amount,
        discount_amount=t.discount_amount,
        _created=t.i_created,
    )
    return to_reporting_currency(
        t, fx_factors, ["amount", "discount_amount"], on="_created",
        reporting_currency=params.reporting_currency,
    ).drop("_created")  # fmt: skip


def fact_refunds(
    refunds: ir.Table, charges: ir.Table, dim_customer: ir.Table, fx_factors: ir.Table,
    params: BuildParams,
) -> ir.Table:  # fmt: skip
    """One row per refund."""
    r = refunds
    cc = _charge_customers(charges)
    t = r.left_join(cc, r.charge_id == cc._ch_id)
    t = t.mutate(customer_id=t._ch_customer)
    t = version_at(t, dim_customer, "created")
    t = t.select(
        refund_id=t.id,
        charge_id=t.charge_id,
        payment_intent_id=t.payment_intent_id,
        customer_id=t.customer_id,
        customer_key=t.customer_key,
        created_date_key=date_key(t.created),
        currency=t.currency,
        status=t.status,
        reason=t.reason,
        amount=t.amount,
        _created=t.created,
    )
    return to_reporting_currency(
        t, fx_factors, ["amount"], on="_created", reporting_currency=params.reporting_currency
    ).drop("_created")


def fact_disputes(
    disputes: ir.Table, charges: ir.Table, event_history: ir.Table, dim_customer: ir.Table,
    fx_factors: ir.Table, params: BuildParams,
) -> ir.Table:  # fmt: skip
    """One row per dispute, with its status as of the build time."""
    d = disputes
    last = _last_status(event_history, "dispute")
    cc = _charge_customers(charges)
    t = d.left_join(cc, d.charge_id == cc._ch_id).left_join(last, d.id == last.s_id)
    t = t.mutate(customer_id=t._ch_customer, _status=ibis.coalesce(t.s_status, t.status))
    t = version_at(t, dim_customer, "created")
    t = t.select(
        dispute_id=t.id,
        charge_id=t.charge_id,
        payment_intent_id=t.payment_intent_id,
        customer_id=t.customer_id,
        customer_key=t.customer_key,
        created_date_key=date_key(t.created),
        due_date_key=date_key(t.evidence_due_by),
        currency=t.currency,
        status=t._status,
        reason=t.reason,
        amount=t.amount,
        _created=t.created,
    )
    return to_reporting_currency(
        t, fx_factors, ["amount"], on="_created", reporting_currency=params.reporting_currency
    ).drop("_created")


def fact_balance_transactions(
    balance_transactions: ir.Table,
    balance_transaction_fee_details: ir.Table,
    payouts: ir.Table,
    charges: ir.Table,
    refunds: ir.Table,
    disputes: ir.Table,
    dim_customer: ir.Table,
    fx_factors: ir.Table,
    params: BuildParams,
) -> ir.Table:
    """One row per balance transaction, with its fee breakdown and its status at the as-of time."""
    bt = balance_transactions
    po = payouts.select(_po_id=payouts.id)
    bt = bt.left_join(po, bt.payout_id == po._po_id).mutate(payout_id=ibis._._po_id).drop("_po_id")
    fd = balance_transaction_fee_details
    fees = fd.group_by(f_id=fd.balance_transaction_id).aggregate(
        f_stripe=fd.amount.sum(where=fd.type == "stripe_fee"),
        f_application=fd.amount.sum(where=fd.type == "application_fee"),
        f_tax=fd.amount.sum(where=fd.type == "tax"),
    )
    rf = refunds.select(r_id=refunds.id, r_charge=refunds.charge_id)
    dp = disputes.select(d_id=disputes.id, d_charge=disputes.charge_id)
    t = bt.left_join(fees, bt.id == fees.f_id).left_join(rf, bt.refund_id == rf.r_id)
    t = t.left_join(dp, t.dispute_id == dp.d_id)
    t = t.mutate(_charge=ibis.coalesce(t.charge_id, t.r_charge, t.d_charge))
    cc = _charge_customers(charges)
    t = t.left_join(cc, t._charge == cc._ch_id)
    t = t.mutate(customer_id=t._ch_customer)
    t = version_at(t, dim_customer, "created")
    t = t.select(
        balance_transaction_id=t.id,
        type=t.type,
        reporting_category=t.reporting_category,
        source_id=ibis.coalesce(t.charge_id, t.refund_id, t.dispute_id, t.source_payout_id),
        payout_id=t.payout_id,
        charge_id=t._charge,
        customer_id=t.customer_id,
        customer_key=t.customer_key,
        created_date_key=date_key(t.created),
        available_date_key=date_key(t.available_on),
        currency=t.currency,
        status=ibis.ifelse(t.available_on <= params.as_of_literal, "available", "pending"),
        exchange_rate=t.exchange_rate,
        amount=t.amount,
        fee=t.fee,
        stripe_fee=t.f_stripe.fill_null(0),
        application_fee=t.f_application.fill_null(0),
        tax_fee=t.f_tax.fill_null(0),
        net=t.net,
        _created=t.created,
    )
    return to_reporting_currency(
        t, fx_factors, ["amount", "fee", "net"], on="_created",
        reporting_currency=params.reporting_currency,
    ).drop("_created")  # fmt: skip


def fact_payouts(
    payout_settlements: ir.Table,
    payouts: ir.Table,
    event_history: ir.Table,
    fx_factors: ir.Table,
    params: BuildParams,
) -> ir.Table:
    """One row per payout of ``payout_settlements``, with its status as of the build time."""
    ps = payout_settlements
    last = _last_status(event_history, "payout")
    t = ps.join(payouts, ps.payout_id == payouts.id).left_join(last, ps.payout_id == last.s_id)
    t = t.select(
        payout_id=t.payout_id,
        created_date_key=date_key(t.created),
        arrival_date_key=date_key(t.arrival_date),
        currency=t.currency,
        status=ibis.coalesce(t.s_status, t.status),
        method=t.method,
        automatic=t.automatic,
        failure_code=t.failure_code,
        settled_count=t.settled_count,
        amount=t.amount,
        settled_net=t.settled_net,
        _created=t.created,
    )
    return to_reporting_currency(
        t, fx_factors, ["amount"], on="_created", reporting_currency=params.reporting_currency
    ).drop("_created")


def fact_subscription_item_months(
    subscription_history: ir.Table,
    prices: ir.Table,
    discounts: ir.Table,
    coupons: ir.Table,
    dim_customer: ir.Table,
    dim_date: ir.Table,
    fx_factors: ir.Table,
    params: BuildParams,
) -> ir.Table:
    """A periodic snapshot: each subscription item in each month from its start to its end.

    A month is measured at its last second, or at the as-of time for the current month:
    the item's last snapshot then gives status, price and quantity. ``mrr_reporting``
    converts at the rate of the month's first day, so a month's row changes only when its
    subscription does (an incremental update need not re-measure every live item daily). ``mrr`` follows the
    usual rules: licensed recurring prices only, normalised to a month, times quantity,
    less the forever or repeating percentage discount live then (a fixed amount off comes
    off the subscription's first item), and 0 unless the subscription is active or
    past_due (trials, metered usage and ended subscriptions count nothing).
    """
    h = subscription_history
    as_of = params.as_of_literal
    # span of each item: from its first snapshot to the first snapshot of its subscription
    # that ends it (canceled, incomplete_expired) or, still live, to the as-of time
    ended = h.filter(h.status.isin(("canceled", "incomplete_expired")))
    ends = ended.group_by(e_sub=ended.subscription_id).aggregate(e_at=ended.created.min())
    spans = h.group_by(h.subscription_item_id, h.subscription_id, h.customer_id).aggregate(
        first_at=h.created.min()
    )
    spans = spans.left_join(ends, spans.subscription_id == ends.e_sub)
    spans = spans.mutate(last_at=ibis.coalesce(spans.e_at, as_of)).drop("e_sub", "e_at")
    months = dim_date.select(m_start=dim_date.month_start).distinct()
    sm = spans.join(
        months,
        [months.m_start >= spans.first_at.date().truncate("M"), months.m_start <= spans.last_at.date()],
    )
    next_month = (sm.m_start + ibis.interval(months=1)).cast(dt.Timestamp(timezone="UTC"))
    sm = sm.mutate(measured_at=ibis.least(next_month - _SECOND, as_of)).drop("first_at", "last_at")
    hist = h.select(
        h_item=h.subscription_item_id, h_created=h.created, h_event_id=h.event_id,
        h_status=h.status, h_price=h.price_id, h_quantity=h.quantity,
    )  # fmt: skip
    state = latest_state(
        sm, hist, {"subscription_item_id": "h_item"}, "measured_at", by="h_created", tie="h_event_id"
    )
    pr = prices.select(
        p_id=prices.id, p_product=prices.product_id, p_currency=prices.currency,
        p_unit=prices.unit_amount, p_interval=prices.recurring_interval,
        p_count=prices.recurring_interval_count, p_usage=prices.recurring_usage_type,
    )  # fmt: skip
    s = state.join(pr, state.h_price == pr.p_id)
    # the best percentage discount live at the measuring instant (forever or repeating)
    cp = coupons.filter(coupons.duration != "once").select(
        c_id=coupons.id, c_pct=coupons.percent_off, c_off=coupons.amount_off,
        c_currency=coupons.currency,
    )  # fmt: skip
    di = discounts.join(cp, discounts.coupon_id == cp.c_id)
    di = di.select(
        di_customer=di.customer_id, di_sub=di.subscription_id, di_start=di.starts_at,
        di_end=di.ends_at, di_bp=(di.c_pct.fill_null(0) * 100).round(0).cast("int64"),
        di_off=di.c_off.fill_null(0).cast("int64"), di_currency=di.c_currency,
    )  # fmt: skip
    s = s.mutate(month_key_=s.m_start)
    applies = s.join(
        di,
        [
            s.customer_id == di.di_customer,
            di.di_sub.isnull() | (di.di_sub == s.subscription_id),
            di.di_start <= s.measured_at,
            di.di_end.isnull() | (s.measured_at < di.di_end),
        ],
    )
    first_item = ibis.window(group_by=[s.subscription_id, s.m_start], order_by=s.subscription_item_id)
    s = s.mutate(_is_first=ibis.row_number().over(first_item) == 0)
    best = applies.group_by(a_item=applies.subscription_item_id, a_month=applies.month_key_).aggregate(
        a_bp=applies.di_bp.max(),
        a_off=applies.di_off.max(where=applies.di_currency == applies.p_currency),
    )
    s = s.left_join(best, [s.subscription_item_id == best.a_item, s.month_key_ == best.a_month])
    counts = s.h_status.isin(MRR_STATUSES) & (s.p_usage == "licensed")
    gross = monthly_amount(
        s.p_unit.fill_null(0), s.h_quantity.fill_null(0), s.p_interval, s.p_count,
        s.a_bp.fill_null(0),
    )  # fmt: skip
    off = ibis.ifelse(s._is_first, s.a_off.fill_null(0), 0)
    mrr = ibis.ifelse(counts, ibis.greatest(gross - off, 0), 0).cast("int64")
    t = s.mutate(_mrr=mrr)
    t = version_at(t, dim_customer, "measured_at")
    t = t.select(
        subscription_item_id=t.subscription_item_id,
        month=t.m_start,
        month_date_key=date_key(t.m_start),
        subscription_id=t.subscription_id,
        customer_id=t.customer_id,
        customer_key=t.customer_key,
        price_id=t.h_price,
        price_key=t.h_price,
        product_id=t.p_product,
        product_key=t.p_product,
        currency=t.p_currency,
        status=t.h_status,
        quantity=t.h_quantity,
        mrr=t._mrr,
        _day=t.m_start,
    )
    return to_reporting_currency(
        t, fx_factors, ["mrr"], on="_day", reporting_currency=params.reporting_currency
    ).drop("_day")
