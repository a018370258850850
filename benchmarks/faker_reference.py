"""A per-row reference generator: the same tables, one Python dict per row, Faker per field.

This is how synthetic payment data is often written: a loop over customers, and every
random value of every row drawn from Faker (``fake.name()``, ``fake.date_time_between()``,
``fake.random_int()``, ``fake.random_element()``, ``fake.boolean()``...); values that are
constant in this simplified lifecycle stay literals, which flatters the reference. It exists only as the baseline of
``bench_generate.py``; it follows the same lifecycle in simplified form (monthly
renewals with declines and retries, refunds, disputes, fees) so the row mix is
comparable, and writes the same Parquet schemas.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
from faker import Faker

from paymodel.model.oltp import OLTP
from paymodel.synthetic import config as C
from paymodel.synthetic.parquet import arrow_schema, write_parquet

DAY = 86_400


def _ts(t: int) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def generate_per_row(
    out_dir: Path, scale: float, seed: int = 0, months: int = 24
) -> dict[str, int]:
    """Generate with one Faker call per field and one dict per row; return rows per table."""
    fake = Faker()
    Faker.seed(seed)
    start = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())
    horizon = start + months * 30 * DAY
    rows: dict[str, list[dict]] = {t: [] for t in (
        "customers", "customer_addresses", "payment_methods", "subscriptions", "subscription_items",
        "invoices", "invoice_line_items", "payment_intents", "invoice_payments", "charges",
        "refunds", "disputes", "balance_transactions", "balance_transaction_fee_details")}  # fmt: skip

    def sid(prefix: str) -> str:
        return prefix + fake.pystr(min_chars=14, max_chars=14)

    for _ in range(round(C.CUSTOMERS_PER_SCALE * scale)):
        created = int(fake.date_time_between(_ts(start), _ts(horizon), tzinfo=UTC).timestamp())
        country = fake.random_element(C.COUNTRIES)
        cus = sid("cus_")
        rows["customers"].append({
            "id": cus, "email": fake.email(), "name": fake.name(), "phone": fake.phone_number(),
            "currency": country.currency, "balance": 0, "delinquent": False,
            "preferred_locale": country.locale[:2], "created": _ts(created), "metadata": None})  # fmt: skip
        rows["customer_addresses"].append({
            "customer_id": cus, "line1": fake.street_address(), "line2": None, "city": fake.city(),
            "state": None, "postal_code": fake.postcode(), "country": country.code})  # fmt: skip
        pm = sid("pm_")
        rows["payment_methods"].append({
            "id": pm, "customer_id": cus, "type": "card", "card_brand": fake.random_element(["visa", "mastercard"]),
            "card_funding": fake.random_element(["credit", "debit"]), "card_country": country.code, "card_last4": fake.numerify("####"),
            "card_exp_month": fake.random_int(1, 12), "card_exp_year": fake.random_int(2026, 2030),
            "card_fingerprint": fake.pystr(min_chars=16, max_chars=16), "created": _ts(created + 60)})  # fmt: skip
        if not fake.boolean(chance_of_getting_true=round(100 * C.SUBSCRIBER_SHARE)):
            continue
        sub = sid("sub_")
        t = created + 120
        rows["subscriptions"].append({
            "id": sub, "customer_id": cus, "status": "active", "currency": country.currency,
            "collection_method": "charge_automatically", "default_payment_method_id": None,
            "start_date": _ts(t), "billing_cycle_anchor": _ts(t), "trial_start": None, "trial_end": None,
            "cancel_at_period_end": False, "cancel_at": None, "canceled_at": None, "ended_at": None,
            "cancellation_reason": None, "created": _ts(t), "metadata": None})  # fmt: skip
        si = sid("si_")
        amount = fake.random_element([1900, 1200, 3000]) * fake.random_int(1, 5)
        rows["subscription_items"].append({
            "id": si, "subscription_id": sub, "price_id": sid("price_"), "quantity": 1,
            "current_period_start": _ts(t), "current_period_end": _ts(t + 30 * DAY),
            "created": _ts(t), "metadata": None})  # fmt: skip
        while t < horizon and fake.boolean(chance_of_getting_true=96):
            inv, pi = sid("in_"), sid("pi_")
            rows["invoices"].append({
                "id": inv, "customer_id": cus, "subscription_id": sub, "number": fake.bothify("????####-####"),
                "status": "paid", "billing_reason": "subscription_cycle", "collection_method": "charge_automatically",
                "currency": country.currency, "subtotal": amount, "discount_amount": 0, "tax": 0, "total": amount,
                "starting_balance": 0, "amount_due": amount, "amount_paid": amount, "amount_remaining": 0,
                "attempt_count": 1, "period_start": _ts(t), "period_end": _ts(t + 30 * DAY), "due_date": None,
                "finalized_at": _ts(t), "paid_at": _ts(t + 2), "voided_at": None, "created": _ts(t), "metadata": None})  # fmt: skip
            rows["invoice_line_items"].append({
                "id": sid("il_"), "invoice_id": inv, "subscription_item_id": si, "price_id": None,
                "currency": country.currency, "amount": amount, "discount_amount": 0, "quantity": 1,
                "description": fake.sentence(nb_words=4), "proration": False, "period_start": _ts(t),
                "period_end": _ts(t + 30 * DAY)})  # fmt: skip
            rows["payment_intents"].append({
                "id": pi, "customer_id": cus, "payment_method_id": pm, "currency": country.currency,
                "amount": amount, "amount_capturable": 0, "amount_received": amount, "status": "succeeded",
                "capture_method": "automatic", "last_payment_error_code": None, "cancellation_reason": None,
                "canceled_at": None, "description": None, "created": _ts(t), "metadata": None})  # fmt: skip
            rows["invoice_payments"].append({
                "id": sid("inpay_"), "invoice_id": inv, "payment_intent_id": pi, "currency": country.currency,
                "amount_requested": amount, "amount_paid": amount, "status": "paid", "is_default": True,
                "paid_at": _ts(t + 2), "canceled_at": None, "created": _ts(t + 2)})  # fmt: skip
            while True:
                ok = fake.boolean(chance_of_getting_true=95)
                ch = sid("ch_")
                rows["charges"].append({
                    "id": ch, "payment_intent_id": pi, "customer_id": cus, "payment_method_id": pm,
                    "currency": country.currency, "amount": amount, "amount_captured": amount if ok else 0,
                    "amount_refunded": 0, "status": "succeeded" if ok else "failed", "paid": ok, "captured": ok,
                    "refunded": False, "disputed": False, "failure_code": None if ok else fake.random_element(["generic_decline", "insufficient_funds"]),
                    "failure_message": None if ok else fake.sentence(), "outcome_type": "authorized",
                    "outcome_network_status": "approved_by_network", "outcome_risk_level": "normal",
                    "outcome_risk_score": fake.random_int(0, 60), "three_d_secure_result": None,
                    "created": _ts(t + 1), "metadata": None})  # fmt: skip
                if ok:
                    break
            txn = sid("txn_")
            fee = amount * 29 // 1000 + 30
            rows["balance_transactions"].append({
                "id": txn, "type": "charge", "reporting_category": "charge", "amount": amount, "fee": fee,
                "net": amount - fee, "currency": "usd", "exchange_rate": None, "status": "available",
                "available_on": _ts(t + 2 * DAY), "description": None, "charge_id": ch, "refund_id": None,
                "dispute_id": None, "created": _ts(t + 1)})  # fmt: skip
            rows["balance_transaction_fee_details"].append({
                "balance_transaction_id": txn, "line": 0, "type": "stripe_fee", "amount": fee,
                "currency": "usd", "description": "Stripe processing fees"})  # fmt: skip
            if fake.boolean(chance_of_getting_true=3):
                rows["refunds"].append({
                    "id": sid("re_"), "charge_id": ch, "payment_intent_id": pi, "currency": country.currency,
                    "amount": amount, "status": "succeeded", "reason": "requested_by_customer",
                    "failure_reason": None, "created": _ts(t + DAY), "metadata": None})  # fmt: skip
            elif fake.pyfloat(min_value=0, max_value=1) < 0.003:
                rows["disputes"].append({
                    "id": sid("dp_"), "charge_id": ch, "payment_intent_id": pi, "currency": country.currency,
                    "amount": amount, "status": "lost", "reason": "fraudulent", "evidence_due_by": None,
                    "is_charge_refundable": False, "created": _ts(t + 20 * DAY), "metadata": None})  # fmt: skip
            t += 30 * DAY
    counts = {}
    for name, table_rows in rows.items():
        table = pa.Table.from_pylist(table_rows, schema=arrow_schema(OLTP.table(name)))
        write_parquet(table, Path(out_dir) / name / "part-00000.parquet")
        counts[name] = table.num_rows
    return counts
