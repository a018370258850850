"""The reading edge of the build: OLTP tables as of a time, the event history, FX factors, PII hashes.

Everything here runs against the OLTP database (DuckDB or PostgreSQL) through Ibis, or
in Python on small reference data, and hands the transforms Arrow tables to stage on
the engine that runs them:

* :func:`oltp_tables`: the OLTP tables as of a time, without their JSON or direct-PII
  columns (clear identifiers never reach the engine; :func:`customer_pii` hashes them),
  optionally restricted to some customers (an incremental update);
* :func:`changed_customers`: the customers whose rows a change between two times touches;
* :func:`fx_factors`: per day and currency, one minor unit's value in the reporting
  currency, an exact decimal computed with :class:`decimal.Decimal` (DuckDB divides
  decimals in floating point; a factor table makes every engine multiply exact decimals);
* :func:`calendar`: the days dim_date spans.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import duckdb
import ibis
import ibis.expr.types as ir
import pyarrow as pa
from ibis.backends import BaseBackend

from paymodel.model.core import COUNTRY, JSON, PII
from paymodel.model.oltp import OLTP
from paymodel.olap import transforms as T
from paymodel.olap.pii import PIIKey, pseudonymise

__all__ = [
    "CUSTOMER_OWNED",
    "REFERENCE",
    "calendar",
    "changed_customers",
    "connect",
    "customer_pii",
    "default_as_of",
    "fx_factors",
    "oltp_tables",
    "staged_columns",
]

REFERENCE = ("currencies", "fx_rates", "products", "prices", "coupons")
"""OLTP tables read whole by every build and update (small reference data)."""
ACCOUNT = ("payouts",)
"""OLTP tables of the account itself (no customer): an update reads the rows changed since."""
CUSTOMER_OWNED = (
    "customers", "customer_addresses", "payment_methods", "subscriptions", "subscription_items",
    "discounts", "invoices", "invoice_line_items", "invoice_payments", "payment_intents",
    "charges", "refunds", "disputes", "balance_transactions", "balance_transaction_fee_details",
)  # fmt: skip
"""OLTP tables whose rows belong to one customer (an update reads only the changed ones')."""

_CREATED = {"discounts": "starts_at"}
_FACTOR_PLACES = Decimal("1e-16")
CALENDAR_DAYS_AFTER_LAST_RATE = 366
"""dim_date runs this many days past the last FX rate, so due and availability dates resolve."""


def connect(target: str | os.PathLike[str], *, read_only: bool = False) -> BaseBackend:
    """An Ibis connection to a DuckDB file or a ``postgresql://`` database."""
    text = os.fspath(target)
    if text.startswith(("postgresql://", "postgres://")) or "dbname=" in text:
        from psycopg.conninfo import conninfo_to_dict

        params = conninfo_to_dict(text)
        kwargs = {
            "host": params.get("host"),
            "port": int(params["port"]) if params.get("port") else None,
            "user": params.get("user"),
            "password": params.get("password") or None,
            "database": params.get("dbname"),
        }
        return ibis.postgres.connect(**{k: v for k, v in kwargs.items() if v is not None})
    if text != ":memory:" and read_only and not Path(text).exists():
        raise FileNotFoundError(f"{text}: no such DuckDB file")
    con = ibis.duckdb.connect(text, read_only=read_only)
    # The build shows its own bar per table; DuckDB's would print over it on long queries.
    # In a Jupyter kernel without ipywidgets DuckDB refuses the setting (it renders no bar
    # there anyway), so a refusal is not an error.
    with contextlib.suppress(duckdb.InvalidInputException):
        con.raw_sql("SET enable_progress_bar = false")
    return con


def staged_columns(table: str) -> list[str]:
    """Columns of an OLTP table the warehouse reads: no JSON, no personal text but countries."""
    return [
        c.name
        for c in OLTP.table(table).columns
        if c.type is not JSON and (c.pii is PII.NONE or c.type is COUNTRY)
    ]


def default_as_of(con: BaseBackend) -> datetime:
    """The latest instant recorded in the OLTP database (events, or rows' creation)."""
    names = ("events", "charges", "invoices", "subscriptions", "customers", "refunds")
    parts = [con.table(n).select(at=con.table(n).created.max()) for n in names]
    union = parts[0]
    for p in parts[1:]:
        union = union.union(p)
    value = union.at.max().to_pyarrow().as_py()
    if value is None:
        raise ValueError("the OLTP database holds no rows: nothing to build a warehouse from")
    return _utc(value)


def _utc(value: object) -> datetime:
    ts = value.to_pydatetime() if hasattr(value, "to_pydatetime") else value
    assert isinstance(ts, datetime)
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _existing(con: BaseBackend, as_of: datetime) -> dict[str, ir.Table]:
    """Every staged OLTP table with only the rows that existed at ``as_of``."""
    names = (*REFERENCE, *ACCOUNT, *CUSTOMER_OWNED)
    t = {name: con.table(name).select(*staged_columns(name)) for name in names}
    for name in names:
        if name in ("currencies", "fx_rates", "customer_addresses", "invoice_line_items",
                    "balance_transaction_fee_details"):  # fmt: skip
            continue
        t[name] = T.as_of(t[name], _CREATED.get(name, "created"), as_of)
    t["customer_addresses"] = t["customer_addresses"].filter(
        t["customer_addresses"].customer_id.isin(t["customers"].id)
    )
    t["invoice_line_items"] = t["invoice_line_items"].filter(
        t["invoice_line_items"].invoice_id.isin(t["invoices"].id)
    )
    fd = t["balance_transaction_fee_details"]
    t["balance_transaction_fee_details"] = fd.filter(
        fd.balance_transaction_id.isin(t["balance_transactions"].id)
    )
    return t


def _owned(
    t: dict[str, ir.Table], customers: ir.Table, events: ir.Table, since: datetime
) -> dict[str, ir.Table]:
    """The tables restricted to ``customers`` and, for the account's own, to changes since ``since``."""
    ids = customers.select("customer_id").distinct().customer_id
    lo = ibis.timestamp(since)
    out = dict(t)
    po = t["payouts"]
    touched = events.filter((events.object_type == "payout") & (events.created > lo)).object_id
    out["changed_payouts"] = po.filter((po.created > lo) | po.id.isin(touched))
    for name in ("customers",):
        out[name] = t[name].filter(t[name].id.isin(ids))
    for name in ("customer_addresses", "subscriptions", "discounts", "invoices", "payment_intents",
                 "charges"):  # fmt: skip
        out[name] = t[name].filter(t[name].customer_id.isin(ids))
    pm = t["payment_methods"]
    out["payment_methods"] = pm.filter(
        pm.customer_id.isin(ids)
        | pm.id.isin(out["charges"].payment_method_id)
        | pm.id.isin(out["payment_intents"].payment_method_id)
    )
    out["subscription_items"] = t["subscription_items"].filter(
        t["subscription_items"].subscription_id.isin(out["subscriptions"].id)
    )
    for name in ("invoice_line_items", "invoice_payments"):
        out[name] = t[name].filter(t[name].invoice_id.isin(out["invoices"].id))
    charge_ids = out["charges"].id
    out["refunds"] = t["refunds"].filter(t["refunds"].charge_id.isin(charge_ids))
    out["disputes"] = t["disputes"].filter(t["disputes"].charge_id.isin(charge_ids))
    bt = t["balance_transactions"]
    out["balance_transactions"] = bt.filter(
        bt.charge_id.isin(charge_ids)
        | bt.refund_id.isin(out["refunds"].id)
        | bt.dispute_id.isin(out["disputes"].id)
        # the account's own movements (payouts, their failures) belong to no customer
        | (
            bt.charge_id.isnull() & bt.refund_id.isnull() & bt.dispute_id.isnull()
            & ((bt.created > lo) | (bt.available_on > lo) | bt.source_payout_id.isin(out["changed_payouts"].id))
        )
    )
    fd = t["balance_transaction_fee_details"]
    out["balance_transaction_fee_details"] = fd.filter(
        fd.balance_transaction_id.isin(out["balance_transactions"].id)
    )
    return out


def _owners(t: dict[str, ir.Table]) -> ir.Table:
    """``(object_type, object_id, customer_id)`` of every customer-owned Stripe object."""
    ch = t["charges"].select(c_id=t["charges"].id, c_customer=t["charges"].customer_id)
    parts = [
        t["customers"].select(object_type=ibis.literal("customer"), object_id=t["customers"].id,
                              customer_id=t["customers"].id),
    ]
    for name, kind in (("subscriptions", "subscription"), ("invoices", "invoice"),
                       ("payment_intents", "payment_intent"), ("charges", "charge"),
                       ("payment_methods", "payment_method"), ("discounts", "discount")):  # fmt: skip
        x = t[name]
        parts.append(x.select(object_type=ibis.literal(kind), object_id=x.id, customer_id=x.customer_id))
    for name, kind in (("refunds", "refund"), ("disputes", "dispute")):
        x = t[name].join(ch, t[name].charge_id == ch.c_id)
        parts.append(x.select(object_type=ibis.literal(kind), object_id=x.id, customer_id=x.c_customer))
    return _union(parts).filter(ibis._.customer_id.notnull())


def _union(parts: list[ir.Table]) -> ir.Table:
    """UNION ALL of tables of string columns (cast: key columns differ in nullability)."""
    return T.union_all(*(p.select(*(p[c].cast("string").name(c) for c in p.columns)) for p in parts))


def changed_customers(con: BaseBackend, since: datetime, until: datetime) -> ir.Table:
    """The customers (``customer_id``) whose warehouse rows may differ between two as-of times.

    Those with a row created, an event, a balance transaction becoming available or a
    discount ending in ``(since, until]``; and, when ``until`` is in a later month than
    ``since``, every customer with a subscription still live at ``since`` (its items get a
    row for the new month).
    """
    t = _existing(con, until)
    lo, hi = ibis.timestamp(since), ibis.timestamp(until)
    owners = _owners(t)
    ev = con.table("events")
    ev = ev.filter((ev.created > lo) & (ev.created <= hi))
    touched = ev.join(owners, [ev.object_type == owners.object_type, ev.object_id == owners.object_id])
    ids = [touched.select("customer_id")]
    for name in ("customers", "subscriptions", "discounts", "invoices", "payment_intents", "charges",
                 "payment_methods"):  # fmt: skip
        x = t[name]
        col = _CREATED.get(name, "created")
        key = x.id if name == "customers" else x.customer_id
        ids.append(x.filter(x[col] > lo).select(customer_id=key))
    ch = t["charges"].select(c_id=t["charges"].id, customer_id=t["charges"].customer_id)
    for name in ("refunds", "disputes"):
        x = t[name].filter(t[name].created > lo)
        ids.append(x.join(ch, x.charge_id == ch.c_id).select("customer_id"))
    bt = t["balance_transactions"]
    new_payouts = t["payouts"].filter(t["payouts"].created > lo).id
    bt = bt.filter(
        ((bt.available_on > lo) & (bt.available_on <= hi))
        | (bt.created > lo)
        | bt.payout_id.isin(new_payouts)  # settled by a payout made since: its link appears
    )
    rf = t["refunds"].select(r_id=t["refunds"].id, r_charge=t["refunds"].charge_id)
    dp = t["disputes"].select(d_id=t["disputes"].id, d_charge=t["disputes"].charge_id)
    b = bt.left_join(rf, bt.refund_id == rf.r_id).left_join(dp, bt.dispute_id == dp.d_id)
    b = b.mutate(_charge=ibis.coalesce(b.charge_id, b.r_charge, b.d_charge))
    ids.append(b.join(ch, b._charge == ch.c_id).select("customer_id"))
    di = t["discounts"]
    ids.append(di.filter((di.ends_at > lo) & (di.ends_at <= hi)).select("customer_id"))
    su = t["subscriptions"]
    ids.append(su.filter((su.ended_at > lo) & (su.ended_at <= hi)).select("customer_id"))
    if (until.year, until.month) != (since.year, since.month):
        live = su.filter(su.ended_at.isnull() | (su.ended_at > lo))
        ids.append(live.select("customer_id"))
    return _union(ids).filter(ibis._.customer_id.notnull()).distinct()


def oltp_tables(
    con: BaseBackend,
    as_of: datetime,
    customers: ir.Table | None = None,
    since: datetime | None = None,
) -> dict[str, ir.Table]:
    """The OLTP inputs of the transforms as of ``as_of``, as expressions on ``con``.

    With ``customers`` (an expression with a ``customer_id`` column) and ``since`` (the
    previous as-of time), the customer-owned tables and the events are restricted to
    those customers, and the payouts to those made or changed since. Also returns
    ``event_history`` and ``subscription_item_events`` (:func:`transforms.event_history`),
    built from the events at or before ``as_of``.
    """
    t = _existing(con, as_of)
    events = T.as_of(con.table("events"), "created", as_of)
    if customers is not None:
        assert since is not None, "an update restricts to the changes since the last build"
        t = _owned(t, customers, events, since)
        owners = _owners(_existing(con, as_of))
        ids = customers.select("customer_id").distinct()
        owners = owners.filter(owners.customer_id.isin(ids.customer_id))
        # The keys from their own narrow read of the log: were they taken from ``events``,
        # the SQL would share it, and DuckDB would materialise every event's JSON once more.
        keys = T.as_of(con.table("events").select("id", "object_type", "object_id", "created"),
                       "created", as_of)  # fmt: skip
        owned = keys.join(
            owners, [keys.object_type == owners.object_type, keys.object_id == owners.object_id]
        ).id
        events = events.filter(
            events.id.isin(owned)
            | ((events.object_type == "payout") & events.object_id.isin(t["changed_payouts"].id))
        )
    changed = t.pop("changed_payouts", t["payouts"])
    t["payout_settlements"] = _settlements(changed, _existing(con, as_of)["balance_transactions"])
    t["event_history"] = T.event_history(events)
    t["subscription_item_events"] = T.subscription_item_events(events)
    return t


def _settlements(payouts: ir.Table, balance_transactions: ir.Table) -> ir.Table:
    """Per payout of ``payouts``: the count and net of the balance transactions it settled.

    Computed on the OLTP side over every balance transaction, so that an update that
    reads only some customers' movements still gives each changed payout its whole total.
    """
    bt = balance_transactions.filter(balance_transactions.payout_id.notnull())
    agg = bt.group_by(b_payout=bt.payout_id).aggregate(b_count=bt.count(), b_net=bt.net.sum())
    j = payouts.left_join(agg, payouts.id == agg.b_payout)
    return j.select(
        payout_id=j.id,
        settled_count=j.b_count.fill_null(0).cast("int64"),
        settled_net=j.b_net.fill_null(0).cast("int64"),
    )


def customer_pii(con: BaseBackend, key: PIIKey, customers: ir.Table) -> pa.Table:
    """Keyed hashes of the direct identifiers of ``customers`` (an OLTP customers expression).

    The only place clear emails, names, phones and street addresses are read; they are
    hashed here, in Python, and only the hashes are staged on the engine.
    """
    c = con.table("customers")
    a = con.table("customer_addresses")
    ids = customers.select(_id=customers.id)
    rows = (
        c.join(ids, c.id == ids._id)
        .left_join(a, c.id == a.customer_id)
        .select(c.id, c.email, c.name, c.phone, a.line1, a.line2, a.postal_code)
        .to_pyarrow()
        .to_pylist()
    )
    k = key.key

    def address(r: dict) -> str | None:
        parts = [r[p] for p in ("line1", "line2", "postal_code") if r[p]]
        return "\n".join(parts) if parts else None

    return pa.table(
        {
            "customer_id": pa.array([r["id"] for r in rows], pa.string()),
            "email_hash": pa.array([pseudonymise(r["email"], k, kind="email") for r in rows], pa.string()),
            "name_hash": pa.array([pseudonymise(r["name"], k) for r in rows], pa.string()),
            "phone_hash": pa.array([pseudonymise(r["phone"], k) for r in rows], pa.string()),
            "address_hash": pa.array([pseudonymise(address(r), k) for r in rows], pa.string()),
        }
    )


def calendar(first: date, last: date) -> pa.Table:
    """One row per day from ``first`` to ``last`` inclusive (column ``date``)."""
    days = (last - first).days + 1
    return pa.table({"date": pa.array([first + timedelta(days=i) for i in range(days)], pa.date32())})


def calendar_span(fx_rates: pa.Table) -> tuple[date, date]:
    """dim_date's span: the first FX day to :data:`CALENDAR_DAYS_AFTER_LAST_RATE` after the last."""
    days = fx_rates.column("rate_date").to_pylist()
    if not days:
        raise ValueError("fx_rates is empty: the warehouse needs a rate per currency and day")
    return min(days), max(days) + timedelta(days=CALENDAR_DAYS_AFTER_LAST_RATE)


def fx_factors(
    fx_rates: pa.Table, currencies: pa.Table, reporting_currency: str, days: Iterable[date]
) -> pa.Table:
    """Per day of ``days`` and currency: one minor unit's value in the reporting currency.

    ``factor = usd_per_unit(currency) / usd_per_unit(reporting) / 10^exponent(currency)``
    at the day's rates, each rate carried forward from the last day that has one (and
    back from the first), rounded half-even to 16 places. USD is 1 when fx_rates has no
    row for it. A currency without any rate gets no factor (its amounts convert to NULL,
    and the NOT NULL columns of the warehouse refuse them, naming the table).

    Example:
        >>> import pyarrow as pa
        >>> fx = pa.table({"rate_date": [date(2024, 1, 1)] * 2, "currency": ["jpy", "kwd"],
        ...                "usd_per_unit": [Decimal("0.007"), Decimal("3.25")]})
        >>> cur = pa.table({"code": ["jpy", "kwd", "usd"], "exponent": [0, 3, 2]})
        >>> f = fx_factors(fx, cur, "usd", [date(2024, 1, 2)]).to_pylist()
        >>> [(r["currency"], str(r["factor"])) for r in f]
        [('jpy', '0.0070000000000000'), ('kwd', '0.0032500000000000'), ('usd', '0.0100000000000000')]
    """
    reporting_currency = reporting_currency.lower()
    exponents = dict(zip(currencies.column("code").to_pylist(), currencies.column("exponent").to_pylist(), strict=True))
    if reporting_currency not in exponents:
        raise ValueError(f"reporting currency {reporting_currency!r} is not in currencies")
    rates: dict[str, list[tuple[date, Decimal]]] = {}
    for d, cur, rate in zip(
        fx_rates.column("rate_date").to_pylist(),
        fx_rates.column("currency").to_pylist(),
        fx_rates.column("usd_per_unit").to_pylist(),
        strict=True,
    ):
        rates.setdefault(cur, []).append((d, Decimal(rate)))
    if "usd" not in rates:
        rates["usd"] = [(date.min, Decimal(1))]
    if reporting_currency not in rates:
        raise ValueError(f"fx_rates has no rate for the reporting currency {reporting_currency!r}")
    for series in rates.values():
        series.sort()
    days = sorted(days)

    def carried(series: list[tuple[date, Decimal]]) -> list[Decimal]:
        out, i, current = [], 0, series[0][1]
        for d in days:
            while i < len(series) and series[i][0] <= d:
                current = series[i][1]
                i += 1
            out.append(current)
        return out

    reporting = carried(rates[reporting_currency])
    cols: dict[str, list] = {"rate_date": [], "currency": [], "factor": []}
    for cur in sorted(rates):
        if cur not in exponents:
            continue
        scale = Decimal(10) ** exponents[cur]
        for d, rate, rep in zip(days, carried(rates[cur]), reporting, strict=True):
            cols["rate_date"].append(d)
            cols["currency"].append(cur)
            cols["factor"].append((rate / rep / scale).quantize(_FACTOR_PLACES, ROUND_HALF_EVEN))
    return pa.table(
        {
            "rate_date": pa.array(cols["rate_date"], pa.date32()),
            "currency": pa.array(cols["currency"], pa.string()),
            "factor": pa.array(cols["factor"], pa.decimal128(24, 16)),
        }
    )
