"""The detail marts (fivetran/dbt_stripe's parity models), pure Ibis over the star.

Every join is to a table on its primary key, or to an aggregate by the joined key, so a
mart keeps the grain of its driving fact: one row per balance transaction, per invoice
line, per invoice, per subscription, per payout and reporting category.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

__all__ = [
    "mart_balance_transactions",
    "mart_invoice_details",
    "mart_invoice_line_details",
    "mart_payout_reconciliation",
    "mart_subscription_details",
]


def _current_customers(dim_customer: ir.Table) -> ir.Table:
    c = dim_customer.filter(dim_customer.is_current)
    return c.select(
        c_id=c.customer_id, customer_country=c.country, customer_region=c.region,
        customer_plan_tier=c.plan_tier, customer_email_hash=c.email_hash,
    )  # fmt: skip


def _count(condition: ir.BooleanValue) -> ir.IntegerScalar:
    """Rows where ``condition`` holds (PostgreSQL cannot cast a boolean to a bigint)."""
    return ibis.ifelse(condition, 1, 0).sum().cast("int64")


def _days(dim_date: ir.Table, prefix: str) -> ir.Table:
    return dim_date.select(**{f"{prefix}_key": dim_date.date_key, f"{prefix}_day": dim_date.date})


def mart_balance_transactions(
    fact_balance_transactions: ir.Table,
    fact_payment_attempts: ir.Table,
    fact_refunds: ir.Table,
    fact_disputes: ir.Table,
    fact_payouts: ir.Table,
    dim_customer: ir.Table,
    dim_date: ir.Table,
) -> ir.Table:
    """Every balance transaction with its customer (current version), charge, refund,
    dispute and payout, and the amount in the customer's currency (signed as the
    movement: a refund or a lost dispute is negative)."""
    b = fact_balance_transactions
    a = fact_payment_attempts
    ch = a.select(
        ch_id=a.charge_id, charge_amount=a.amount, charge_currency=a.currency,
        charge_is_success=a.is_success, payment_intent_id=a.payment_intent_id,
        payment_method_key=a.payment_method_key,
    )  # fmt: skip
    r = fact_refunds
    re = r.select(refund_id=r.refund_id, refund_amount=r.amount, refund_currency=r.currency,
                  refund_status=r.status, refund_reason=r.reason)  # fmt: skip
    d = fact_disputes
    dp = d.select(dispute_id=d.dispute_id, dispute_amount=d.amount, dispute_currency=d.currency,
                  dispute_status=d.status, dispute_reason=d.reason)  # fmt: skip
    p = fact_payouts
    po = p.select(po_id=p.payout_id, payout_status=p.status, payout_arrival_key=p.arrival_date_key)
    cu = _current_customers(dim_customer)
    cd, ad, rd = (_days(dim_date, r) for r in ("created", "available", "arrival"))
    j = (
        b.left_join(cu, b.customer_id == cu.c_id)
        .left_join(ch, b.charge_id == ch.ch_id)
        .left_join(re, b.source_id == re.refund_id)
        .left_join(dp, b.source_id == dp.dispute_id)
        .left_join(po, b.payout_id == po.po_id)
        .left_join(cd, b.created_date_key == cd.created_key)
        .left_join(ad, b.available_date_key == ad.available_key)
        .left_join(rd, po.payout_arrival_key == rd.arrival_key)
    )
    sign = ibis.ifelse(j.amount < 0, -1, 1)
    cat = j.reporting_category
    facing_amount = ibis.cases(
        (cat == "charge", j.charge_amount),
        (j.refund_id.notnull(), sign * j.refund_amount),
        (j.dispute_id.notnull(), sign * j.dispute_amount),
        else_=ibis.null("int64"),
    )
    facing_currency = ibis.cases(
        (cat == "charge", j.charge_currency),
        (j.refund_id.notnull(), j.refund_currency),
        (j.dispute_id.notnull(), j.dispute_currency),
        else_=ibis.null("string"),
    )
    return j.select(
        balance_transaction_id=j.balance_transaction_id, created_date=j.created_day,
        available_date=j.available_day, type=j.type, reporting_category=cat, status=j.status,
        source_id=j.source_id, currency=j.currency, amount=j.amount, fee=j.fee, net=j.net,
        exchange_rate=j.exchange_rate, reporting_currency=j.reporting_currency,
        amount_reporting=j.amount_reporting, fee_reporting=j.fee_reporting,
        net_reporting=j.net_reporting, customer_facing_amount=facing_amount,
        customer_facing_currency=facing_currency, customer_id=j.customer_id,
        customer_country=j.customer_country, customer_region=j.customer_region,
        customer_plan_tier=j.customer_plan_tier, customer_email_hash=j.customer_email_hash,
        charge_id=j.charge_id, charge_amount=j.charge_amount, charge_currency=j.charge_currency,
        charge_is_success=j.charge_is_success, payment_intent_id=j.payment_intent_id,
        payment_method_key=j.payment_method_key, refund_id=j.refund_id,
        refund_status=j.refund_status, refund_reason=j.refund_reason, dispute_id=j.dispute_id,
        dispute_status=j.dispute_status, dispute_reason=j.dispute_reason, payout_id=j.payout_id,
        payout_status=j.payout_status, payout_arrival_date=j.arrival_day,
    )  # fmt: skip


def _invoices(fact_invoice_lines: ir.Table) -> ir.Table:
    """One row per invoice: its totals summed from its lines (each line once)."""
    li = fact_invoice_lines
    inv = li.group_by("invoice_id").aggregate(
        customer_id=li.customer_id.max(), subscription_id=li.subscription_id.max(),
        currency=li.currency.max(), status=li.invoice_status.max(),
        billing_reason=li.billing_reason.max(), created_date_key=li.created_date_key.max(),
        due_date_key=li.due_date_key.max(), paid_date_key=li.paid_date_key.max(),
        payment_intent_id=li.payment_intent_id.max(),
        line_count=li.count(), proration_line_count=_count(li.proration),
        total_quantity=li.quantity.sum(), subtotal=li.amount.sum(),
        discount_amount=li.discount_amount.sum(), reporting_currency=li.reporting_currency.max(),
        subtotal_reporting=li.amount_reporting.sum(),
        discount_amount_reporting=li.discount_amount_reporting.sum(),
    )  # fmt: skip
    total = inv.subtotal - inv.discount_amount
    due = ibis.greatest(total, 0)
    paid = ibis.ifelse(inv.status == "paid", due, 0)
    return inv.mutate(total=total, amount_due=due, amount_paid=paid, amount_remaining=due - paid)


def _with_dates(t: ir.Table, dim_date: ir.Table, *roles: str) -> ir.Table:
    for role in roles:
        days = _days(dim_date, role)
        t = t.left_join(days, t[f"{role}_date_key"] == days[f"{role}_key"]).drop(f"{role}_key")
    return t


def _payments(fact_payment_attempts: ir.Table) -> ir.Table:
    """One row per payment intent: its succeeded charge and what was refunded of its charges.

    ``amount_refunded`` is already one figure per charge in the fact (its succeeded refunds
    summed), so adding it up per intent counts each refund once, however many refunds a
    charge has: what dbt_stripe gets wrong when it joins refunds to invoice lines.
    """
    a = fact_payment_attempts.filter(fact_payment_attempts.payment_intent_id.notnull())
    return a.group_by(p_intent=a.payment_intent_id).aggregate(
        charge_id=ibis.ifelse(a.is_success, a.charge_id, ibis.null("string")).max(),
        amount_refunded=a.amount_refunded.sum().cast("int64"),
    )


def mart_invoice_details(
    fact_invoice_lines: ir.Table,
    fact_payment_attempts: ir.Table,
    dim_customer: ir.Table,
    dim_date: ir.Table,
) -> ir.Table:
    """One row per invoice with its lines' totals, what is due, paid and remaining, the
    payment intent and charge that paid it, what was refunded of that charge and what was
    paid net of refunds, and its customer's current attributes."""
    inv = _with_dates(_invoices(fact_invoice_lines), dim_date, "created", "due", "paid")
    pay = _payments(fact_payment_attempts)
    inv = inv.left_join(pay, inv.payment_intent_id == pay.p_intent).drop("p_intent")
    refunded = ibis.coalesce(inv.amount_refunded, 0).cast("int64")
    inv = inv.mutate(amount_refunded=refunded, amount_paid_net=inv.amount_paid - refunded)
    cu = _current_customers(dim_customer)
    j = inv.left_join(cu, inv.customer_id == cu.c_id)
    return j.select(
        "invoice_id", "customer_id", "subscription_id", "currency", "status", "billing_reason",
        "payment_intent_id", "charge_id",
        "line_count", "proration_line_count", "total_quantity", "subtotal", "discount_amount",
        "total", "amount_due", "amount_paid", "amount_remaining", "amount_refunded",
        "amount_paid_net", "reporting_currency",
        "subtotal_reporting", "discount_amount_reporting", "customer_country",
        "customer_region", "customer_plan_tier", "customer_email_hash",
        created_date=j.created_day, due_date=j.due_day, paid_date=j.paid_day,
    )  # fmt: skip


def mart_invoice_line_details(
    fact_invoice_lines: ir.Table, mart_invoice_details: ir.Table, dim_date: ir.Table
) -> ir.Table:
    """One row per invoice line with its invoice's status, totals (refunds included, once
    per invoice: never summed over its lines) and customer."""
    li = _with_dates(fact_invoice_lines, dim_date, "period_start")
    i = mart_invoice_details
    inv = i.select(
        i_id=i.invoice_id, invoice_created_date=i.created_date, invoice_paid_date=i.paid_date,
        invoice_amount_due=i.amount_due, invoice_amount_paid=i.amount_paid,
        invoice_amount_remaining=i.amount_remaining, invoice_amount_refunded=i.amount_refunded,
        invoice_amount_paid_net=i.amount_paid_net, invoice_payment_intent_id=i.payment_intent_id,
        invoice_charge_id=i.charge_id, customer_country=i.customer_country,
        customer_region=i.customer_region,
    )  # fmt: skip
    j = li.left_join(inv, li.invoice_id == inv.i_id)
    return j.select(
        "invoice_line_item_id", "invoice_id", "subscription_id", "subscription_item_id",
        "customer_id", "price_key", "product_key", "currency", "invoice_status",
        "billing_reason", "proration", "quantity", "amount", "discount_amount",
        "reporting_currency", "amount_reporting", "discount_amount_reporting",
        "invoice_created_date", "invoice_paid_date", "invoice_amount_due",
        "invoice_amount_paid", "invoice_amount_remaining", "invoice_amount_refunded",
        "invoice_amount_paid_net", "invoice_payment_intent_id", "invoice_charge_id",
        "customer_country", "customer_region", period_start_date=j.period_start_day,
        net_amount=j.amount - j.discount_amount,
    )  # fmt: skip


def mart_subscription_details(mart_invoice_details: ir.Table) -> ir.Table:
    """One row per subscription with an invoice: invoices, amounts billed, paid, remaining,
    refunded and paid net of refunds, first and latest invoice."""
    i = mart_invoice_details.filter(mart_invoice_details.subscription_id.notnull())
    return i.group_by("subscription_id").aggregate(
        customer_id=i.customer_id.max(), currency=i.currency.max(), invoice_count=i.count(),
        paid_invoice_count=_count(i.status == "paid"),
        open_invoice_count=_count(i.status == "open"),
        first_invoice_date=i.created_date.min(), latest_invoice_date=i.created_date.max(),
        amount_billed=i.amount_due.sum(), amount_paid=i.amount_paid.sum(),
        amount_remaining=i.amount_remaining.sum(), amount_refunded=i.amount_refunded.sum(),
        amount_paid_net=i.amount_paid_net.sum(), discount_amount=i.discount_amount.sum(),
    )  # fmt: skip


def mart_payout_reconciliation(
    fact_balance_transactions: ir.Table, fact_payouts: ir.Table, dim_date: ir.Table
) -> ir.Table:
    """Per payout and reporting category, the balance transactions it settled: their
    count, gross, fees and net (the payout's own withdrawal, which Stripe lists among its
    balance transactions, is its ``payout_movement``, not a settled row); the nets of a
    payout's rows add up to its amount."""
    t = fact_balance_transactions.filter(fact_balance_transactions.payout_id.notnull())
    own = t.source_id == t.payout_id  # the payout's own withdrawal, in its own list (Stripe)
    b = t.filter(~own)
    s = b.group_by("payout_id", "reporting_category").aggregate(
        settled_count=b.count(), gross=b.amount.sum(), fee=b.fee.sum(), net=b.net.sum(),
        net_reporting=b.net_reporting.sum(),
    )  # fmt: skip
    m = t.filter(own)
    moves = m.group_by(m_id=m.payout_id).aggregate(payout_movement=m.amount.sum())
    s = s.left_join(moves, s.payout_id == moves.m_id).drop("m_id")
    p = fact_payouts
    po = p.select(
        po_id=p.payout_id, currency=p.currency, payout_status=p.status, automatic=p.automatic,
        method=p.method, created_date_key=p.created_date_key, arrival_date_key=p.arrival_date_key,
        payout_amount=p.amount,
        reporting_currency=p.reporting_currency, payout_amount_reporting=p.amount_reporting,
    )  # fmt: skip
    j = _with_dates(s.join(po, s.payout_id == po.po_id), dim_date, "created", "arrival")
    return j.select(
        "payout_id", "reporting_category", "currency", "payout_status", "automatic", "method",
        "settled_count", "gross", "fee", "net", "payout_amount", "payout_movement",
        "reporting_currency", "net_reporting", "payout_amount_reporting",
        payout_created_date=j.created_day, payout_arrival_date=j.arrival_day,
    )  # fmt: skip
