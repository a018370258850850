# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · OLTP transactions: Stripe's payment flows, safely
#
# An OLTP schema is only proven by the work it carries. This notebook runs Stripe's
# payment flows through `paymodel.oltp.flows.Payments`, one ACID transaction per
# operation, on the schema of notebook 03 (an empty one of its own), and shows:
#
# 1. the payment intent **state machine**, drawn from the same data that enforces it;
# 2. **each flow** and the rows it writes: charge, balance transaction and Stripe's fees,
#    refunds, disputes, subscriptions with proration, invoices;
# 3. **refusals**: an illegal transition raises an error naming the object and the rule,
#    and writes nothing;
# 4. **idempotent retries** with Stripe's semantics;
# 5. **concurrency on PostgreSQL**: many threads, each with its own connection, confirm
#    one payment intent and refund one charge at the same time;
# 6. **ingestion** of Stripe objects and events, with its counts and quarantine, a record
#    parked until its parent arrives, an older snapshot that does not overwrite a newer
#    one, a record the database refuses found inside its batch, and a generated account
#    replayed against the bulk load of the same rows;
# 7. **erasure** of a customer's personal data everywhere the database keeps it.
#
# Every claim below is asserted, so running this notebook is a test.

# %%
import datetime as dt
import json
import os
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from paymodel.display import check_plot, configure, diagram, nulls
from paymodel.model.stripe import to_stripe_object
from paymodel.oltp.engines import (
    drop_postgres_database,
    dsn_database,
    duckdb_engine,
    fresh_postgres_database,
    postgres_engine,
    temporary_postgres,
)
from paymodel.oltp.erase import erase_customer, find_traces
from paymodel.oltp.flows import (
    PAYMENT_INTENT,
    AmountExceeded,
    IdempotencyKeyReused,
    IllegalTransition,
    ManualClock,
    Payments,
    SequentialIds,
)
from paymodel.oltp.flows.concurrency import run_concurrently, summary
from paymodel.oltp.flows.inspect import count_rows, database_state, event_types, rows
from paymodel.oltp.ingest import ingest
from paymodel.oltp.ingest_engine import ENGINE_OBJECTS
from paymodel.oltp.schema import create_schema
from paymodel.paths import DATA_DIR, SCHEMAS_DIR
from paymodel.synthetic import TABLES, generate
from paymodel.synthetic.load import load_into_oltp

# %% tags=["parameters"]
pg_dsn = None  # None: start an embedded PostgreSQL for this notebook
out_dir = "build/notebooks/05"
concurrency = 50
replay_scale = 0.01  # the generated account replayed against its bulk load (section 5)

# %% [markdown]
# ## Setup
#
# The flows run on an in-memory DuckDB database with a manual clock and readable ids,
# so that every run prints the same rows. The concurrency section uses PostgreSQL: a
# database of its own on the server of `pg_dsn` (dropped at the end), so the database
# `pg_dsn` names, shared by the notebooks of a run, is left untouched.

# %%
out = Path(out_dir)
out.mkdir(parents=True, exist_ok=True)
configure()
resources = ExitStack()
if pg_dsn is None:
    pg_dsn = fresh_postgres_database(resources.enter_context(temporary_postgres()))
flows_dsn = fresh_postgres_database(pg_dsn)
resources.callback(drop_postgres_database, pg_dsn, dsn_database(flows_dsn))

duck = duckdb_engine()
create_schema(duck)
clock = ManualClock(dt.datetime(2026, 1, 1, 9, 0, tzinfo=dt.UTC))
pay = Payments(duck, clock=clock, ids=SequentialIds())


def show(table: str, columns: list[str], **equals) -> pd.DataFrame:
    """The rows of ``table`` matching ``equals``, a few columns, NULL shown as NULL."""
    return nulls(pd.DataFrame(rows(duck, table, **equals), columns=columns))


# %% [markdown]
# ## 1. The payment intent state machine
#
# `PAYMENT_INTENT` is a list of allowed transitions. The flows call
# `PAYMENT_INTENT.require(...)` before acting and `.move(...)` before writing a status; the
# diagram below, `schemas/oltp_payment_intent_states.svg`, is rendered from the same list
# (`paymodel schemas` writes its Mermaid source), so picture and rules cannot drift.

# %%
assert (SCHEMAS_DIR / "oltp_payment_intent_states.mmd").read_text().endswith(
    PAYMENT_INTENT.mermaid() + "\n"
)
diagram("oltp_payment_intent_states")
assert {t.target for t in PAYMENT_INTENT.transitions} == set(PAYMENT_INTENT.statuses) - {
    "processing"
}
assert not PAYMENT_INTENT.targets("succeeded", "cancel")
assert not PAYMENT_INTENT.targets("canceled", "capture")

# %% [markdown]
# `processing` belongs to asynchronous payment methods (bank debits); card payments, the
# only kind these flows make, never pass through it, so no transition leads there.
# `succeeded` and `canceled` are final.
#
# ## 2. The flows and their rows
#
# ### A customer, a card, a payment
# A payment intent confirmed with Stripe's test card `visa` succeeds at once: one charge,
# one balance transaction with Stripe's US card fee (2.9% + 30 cents), funds available two
# days later.

# %%
ada = pay.create_customer(email="ada@example.com", name="Ada Lovelace")["id"]
visa = pay.create_payment_method("visa")["id"]
pay.attach_payment_method(visa, customer_id=ada)
pi = pay.create_payment_intent(10_000, "usd", customer_id=ada, payment_method_id=visa)
pi = pay.confirm_payment_intent(pi["id"])
charge = pi["latest_charge"]
txn = rows(duck, "balance_transactions", charge_id=charge)[0]
assert pi["status"] == "succeeded"
assert count_rows(duck, "charges", payment_intent_id=pi["id"]) == 1
assert (txn["amount"], txn["fee"], txn["net"]) == (10_000, 320, 9_680)  # 290 + 30
show(
    "balance_transactions",
    ["id", "type", "amount", "fee", "net", "status", "available_on"],
    charge_id=charge,
)

# %%
assert event_types(duck, pi["id"]) == ["payment_intent.created", "payment_intent.succeeded"]
show("events", ["id", "type", "object_type", "object_id", "request_id"])

# %% [markdown]
# ### A decline, 3-D Secure, and a manual capture
# The card decides (Stripe's test cards, see `paymodel.oltp.flows.cards`): a declined card
# leaves a failed charge and sends the intent back to `requires_payment_method`; a card that
# needs 3-D Secure stops at `requires_action` until the cardholder authenticates; with
# `capture_method="manual"` the charge is only authorised until captured.

# %%
declined = pay.create_payment_method("insufficient_funds")["id"]
secure = pay.create_payment_method("three_d_secure")["id"]
for pm in (declined, secure):
    pay.attach_payment_method(pm, customer_id=ada)
failed = pay.create_payment_intent(
    2_500, "usd", customer_id=ada, payment_method_id=declined, confirm=True
)
sca = pay.create_payment_intent(
    2_500, "usd", customer_id=ada, payment_method_id=secure, confirm=True
)
assert (failed["status"], sca["status"]) == ("requires_payment_method", "requires_action")
sca = pay.authenticate_payment_intent(sca["id"])
held = pay.create_payment_intent(
    8_000, "usd", customer_id=ada, payment_method_id=visa, capture_method="manual", confirm=True
)
assert (held["status"], held["amount_capturable"]) == ("requires_capture", 8_000)
held = pay.capture_payment_intent(held["id"], amount_to_capture=6_000)
assert (sca["status"], held["status"], held["amount_received"]) == ("succeeded", "succeeded", 6_000)
show("charges", ["id", "payment_intent_id", "amount", "amount_captured", "status", "failure_code",
                 "outcome_type", "three_d_secure_result"])  # fmt: skip

# %% [markdown]
# ### Refunds, and a refusal that writes nothing
# Two partial refunds of the 100.00 charge; a third asking for more than is left is refused
# with an error that names the charge and the rule, and the database is byte-for-byte
# unchanged (every row of every table compared).

# %%
pay.refund_charge(charge, amount=3_000)
pay.refund_charge(charge, amount=5_000)
before = database_state(duck)
try:
    pay.refund_charge(charge, amount=2_500)
except AmountExceeded as error:
    refusal = str(error)
print(refusal)
assert refusal == f"charge {charge}: refund of 2500 exceeds the 2000 left to refund"
assert database_state(duck) == before
assert rows(duck, "charges", id=charge)[0]["amount_refunded"] == 8_000
show("refunds", ["id", "charge_id", "amount", "status"], charge_id=charge)

# %% [markdown]
# The same holds for every illegal transition: capturing a canceled intent, refunding a
# failed charge.

# %%
refusals = []
canceled = pay.create_payment_intent(
    1_000, "usd", customer_id=ada, payment_method_id=visa, capture_method="manual"
)
pay.cancel_payment_intent(canceled["id"])
before = database_state(duck)
for attempt in (
    lambda: pay.capture_payment_intent(canceled["id"]),
    lambda: pay.refund_charge(failed["latest_charge"]),
):
    try:
        attempt()
    except IllegalTransition as error:
        refusals.append(str(error))
assert len(refusals) == 2
assert database_state(duck) == before
refusals

# %% [markdown]
# ### A dispute, lost, with the fee
# A dispute withdraws the disputed amount and Stripe's 15 USD dispute fee at once; lost,
# nothing comes back.

# %%
other = pay.create_payment_intent(
    4_000, "usd", customer_id=ada, payment_method_id=visa, confirm=True
)
dispute = pay.open_dispute(other["latest_charge"], reason="product_not_received")
pay.submit_dispute_evidence(dispute["id"])
dispute = pay.close_dispute(dispute["id"], won=False)
withdrawal = rows(duck, "balance_transactions", dispute_id=dispute["id"])
assert dispute["status"] == "lost"
assert len(withdrawal) == 1
assert (withdrawal[0]["amount"], withdrawal[0]["fee"], withdrawal[0]["net"]) == (
    -4_000,
    1_500,
    -5_500,
)
show(
    "balance_transactions",
    ["id", "type", "reporting_category", "amount", "fee", "net"],
    dispute_id=dispute["id"],
)

# %% [markdown]
# ### A subscription: created, upgraded with proration, canceled
# Three seats at 31.00 a month are invoiced and charged at creation. Ten days into the
# 31-day period the customer goes to five seats: the change is prorated to the second, a
# credit for the unused time on three seats and a charge for the remaining time on five,
# invoiced and paid at once.

# %%
product = pay.create_product("Team plan")["id"]
seat = pay.create_price(product, 3_100, "usd", recurring_interval="month")["id"]
sub = pay.create_subscription(ada, [{"price": seat, "quantity": 3}], default_payment_method_id=visa)
assert sub["status"] == "active"
assert rows(duck, "invoices", id=sub["latest_invoice"])[0]["status"] == "paid"
clock.advance(days=10)
sub = pay.update_subscription(sub["id"], quantity=5)
lines = show(
    "invoice_line_items",
    ["description", "amount", "quantity", "proration"],
    invoice_id=sub["latest_invoice"],
)
assert lines["amount"].tolist() == [-6_300, 10_500]  # -3 x 3100 x 21/31, +5 x 3100 x 21/31
lines

# %%
upgrade = rows(duck, "invoices", id=sub["latest_invoice"])[0]
assert (upgrade["billing_reason"], upgrade["total"], upgrade["status"]) == (
    "subscription_update",
    4_200,
    "paid",
)
sub = pay.cancel_subscription(sub["id"], at_period_end=True)
assert sub["status"] == "active"
assert sub["cancel_at_period_end"] is True
show("invoices", ["id", "number", "billing_reason", "status", "total", "amount_due", "amount_paid"])

# %% [markdown]
# ### A one-off invoice, finalised and paid

# %%
setup = pay.create_price(product, 25_000, "usd")["id"]
invoice = pay.create_invoice(ada, [{"price": setup}])
invoice = pay.finalize_invoice(invoice["id"])
invoice = pay.pay_invoice(invoice["id"], payment_method_id=visa)
payment = rows(duck, "invoice_payments", invoice_id=invoice["id"])
assert invoice["status"] == "paid"
assert [p["status"] for p in payment] == ["paid"]
nulls(pd.DataFrame(payment)[
    ["id", "invoice_id", "payment_intent_id", "amount_requested", "amount_paid", "status"]
])

# %% [markdown]
# ## 3. Idempotent retries
# The same key with the same parameters returns the stored result without doing the
# work again (the database does not change at all); the same key with other parameters
# is an error.

# %%
retry_pi = pay.create_payment_intent(1_500, "usd", customer_id=ada, payment_method_id=visa)["id"]
first = pay.confirm_payment_intent(retry_pi, idempotency_key="checkout-42")
before = database_state(duck)
again = pay.confirm_payment_intent(retry_pi, idempotency_key="checkout-42")
assert again == first
assert database_state(duck) == before
try:
    pay.refund_charge(first["latest_charge"], amount=100, idempotency_key="checkout-42")
except IdempotencyKeyReused as error:
    reuse = str(error)
assert database_state(duck) == before
print(reuse)
show(
    "idempotency_keys",
    ["idempotency_key", "operation", "recovery_point", "locked_at", "response_status"],
)

# %% [markdown]
# ## 4. Concurrency on PostgreSQL
# `concurrency` threads, each with its own connection, are released together and all
# confirm the same payment intent with the same idempotency key: exactly one charge is
# made; every other thread gets either the stored result or a conflict
# (`IdempotencyConflict`, no effect).

# %%
pg = postgres_engine(flows_dsn)
create_schema(pg)
pg_pay = Payments(pg)
bob = pg_pay.create_customer(email="bob@example.com")["id"]
card = pg_pay.create_payment_method("visa")["id"]
pg_pay.attach_payment_method(card, customer_id=bob)
race_pi = pg_pay.create_payment_intent(4_200, "usd", customer_id=bob, payment_method_id=card)["id"]
confirmations = run_concurrently(
    pg, concurrency, lambda p, i: p.confirm_payment_intent(race_pi, idempotency_key="race-confirm")
)
confirm_counts = summary(confirmations)
assert set(confirm_counts) <= {"succeeded", "IdempotencyConflict"}
assert count_rows(pg, "charges", payment_intent_id=race_pi) == 1
confirm_counts

# %% [markdown]
# Then twice as many threads refund the same 100.00 charge, 1.50 each. The charge's row
# lock serialises them: the refunds that fit succeed, the rest are refused, and the
# refunded total equals the sum of the refunds that reported success (Jepsen's bank test:
# the total is conserved).

# %%
target = pg_pay.create_payment_intent(
    10_000, "usd", customer_id=bob, payment_method_id=card, confirm=True
)
target_charge = target["latest_charge"]
refunds = run_concurrently(
    pg, 2 * concurrency,
    lambda p, i: p.refund_charge(target_charge, amount=150, idempotency_key=f"race-refund-{i}"),
)  # fmt: skip
reported = sum(o.result["amount"] for o in refunds if o.ok)
stored = rows(pg, "charges", id=target_charge)[0]
assert stored["amount_refunded"] == reported <= stored["amount_captured"] == 10_000
assert sum(r["amount"] for r in rows(pg, "refunds", charge_id=target_charge)) == reported
assert summary(refunds).get("succeeded", 0) == min(2 * concurrency, 10_000 // 150)
pd.DataFrame(
    [{"threads": 2 * concurrency, **summary(refunds), "refunded": reported,
      "charge.amount_refunded": stored["amount_refunded"], "captured": stored["amount_captured"]}]
)  # fmt: skip

# %% [markdown]
# ## 5. Ingestion
#
# `paymodel.oltp.ingest.ingest(paths, engine)` loads Stripe objects and webhook events as
# Stripe sends them: deduplicated by event id, never letting an older snapshot overwrite a
# newer one, parking records whose parent has not arrived, and quarantining what is
# malformed with the rule it broke. First the hand-written sample story of `data/stripe/`:
# every record read is applied, a duplicate, pending or quarantined, per object type.

# %%
samples = sorted((DATA_DIR / "stripe").glob("*.json*"))
loaded = duckdb_engine()
create_schema(loaded)
report = ingest(samples, loaded)
assert report.read == report.applied + report.duplicate + report.pending + report.quarantined
assert report.quarantined == count_rows(loaded, "ingest_quarantine") > 0
counts = pd.DataFrame(report.by_type).T
counts.loc["all records"] = counts.sum()
assert counts.loc["all records", "read"] == report.read
counts

# %% [markdown]
# Every refused record is kept with its rule and its whole error, never dropped:

# %%
quarantined = rows(loaded, "ingest_quarantine")
for record in quarantined:
    print(f"{record['rule']} (line {record['source_line']} of {Path(record['source']).name}):")
    print(f"  {record['error']}")
assert len(quarantined) == report.quarantined

# %% [markdown]
# Which snapshot is newer? An event's snapshot is as of the event's `created`; a plain object
# (fetched from the API, not inside an event) is as of its own `updated` field if it has one,
# else its `created`. A version later than the clock (by more than a few minutes) would win
# over every genuine update after it, so it is refused with a rule of its own:

# %%
clock = duckdb_engine()
create_schema(clock)
frozen = {"object": "customer", "id": "cus_FROZEN", "email": "false@example.com", "balance": 0,
          "delinquent": False, "created": 1735689600, "updated": 253402300799}  # fmt: skip
refused = ingest([frozen], clock)
assert (refused.applied, refused.quarantined) == (0, 1)
future_rule = rows(clock, "ingest_quarantine")[0]
clock.dispose()
assert future_rule["rule"] == "future_version"
print(future_rule["rule"], "-", future_rule["error"])

# %% [markdown]
# Delivery is at least once: ingesting the same files again applies nothing new.

# %%
again = ingest(samples, loaded)
assert (again.read, again.applied) == (report.read, 0)
assert again.duplicate == report.read - report.quarantined
runs = ("read", "applied", "duplicate", "pending", "quarantined")
pd.DataFrame({"first run": [getattr(report, k) for k in runs],
              "same files again": [getattr(again, k) for k in runs]}, index=runs)  # fmt: skip

# %% [markdown]
# **A record waits for its parent.** Webhooks arrive in no guaranteed order. The story's
# `charge.succeeded` event, delivered alone into a database that has only the catalogue,
# refers to objects that are not there yet: it is parked in `ingest_pending`, waiting for
# the first missing parent (below), foreign keys intact, and applied when the rest of the
# story arrives.

# %%
story = [json.loads(line) for line in (DATA_DIR / "stripe" / "events.jsonl").read_text().splitlines()
         if line.startswith('{"id": "evt_')]  # fmt: skip
story = [e for e in story if "data" in e and isinstance(e["data"].get("object"), dict)]
catalog = json.loads((DATA_DIR / "stripe" / "catalog.json").read_text())
early = next(e for e in story if e["type"] == "charge.succeeded")
parked = duckdb_engine()
create_schema(parked)
ingest([catalog], parked)
alone = ingest([early], parked)
waiting = rows(parked, "ingest_pending")
display(nulls(pd.DataFrame(waiting)[["object_type", "object_id", "event_id", "waiting_for_table",
                                     "waiting_for_id"]]))  # fmt: skip
rest = ingest([e for e in story if e is not early], parked)
assert (alone.pending, len(waiting)) == (1, 1)
assert rest.released == 1
assert count_rows(parked, "ingest_pending") == 0
assert count_rows(parked, "charges", id=early["data"]["object"]["id"]) == 1
print(f"then the rest of the story: {rest.released} parked record released; "
      f"{count_rows(parked, 'ingest_pending')} left waiting")  # fmt: skip

# %% [markdown]
# **An older snapshot never overwrites a newer one.** In the story, the customer's
# `customer.updated` event is delivered before its `customer.created`. The created event
# is older, and lacks the phone and currency the update set: it is recorded in `events`
# (counted as applied and *superseded*), but the customer keeps the newer snapshot.
# `ingest_versions` holds, per object, the instant of the snapshot applied, which decides.

# %%
updated, created = (next(e for e in story if e["type"] == kind)
                    for kind in ("customer.updated", "customer.created"))  # fmt: skip
assert story.index(updated) < story.index(created)
assert updated["created"] > created["created"]
customer = rows(loaded, "customers", id=updated["data"]["object"]["id"])[0]
version = rows(loaded, "ingest_versions", object_id=customer["id"])[0]
assert report.superseded >= 1
assert (customer["phone"], customer["currency"]) == (updated["data"]["object"]["phone"], "usd")
assert created["data"]["object"]["phone"] is None
assert int(version["version"].timestamp()) == updated["created"]
pd.DataFrame(
    [{"event": e["type"], "delivered": f"#{story.index(e) + 1}", "snapshot taken": pd.Timestamp(
        e["created"], unit="s", tz="UTC"), "phone": e["data"]["object"]["phone"],
      "currency": e["data"]["object"]["currency"]} for e in (updated, created)]
    + [{"event": "customers row", "delivered": "", "snapshot taken": version["version"],
        "phone": customer["phone"], "currency": customer["currency"]}]
).pipe(nulls).set_index("event")  # fmt: skip

# %% [markdown]
# The event log closes the loop. Every flow of section 2 wrote an event per state change,
# with a snapshot of the object; rendered as Stripe event objects and ingested into an
# empty database, they rebuild every Stripe table row for row.

# %%
log = [to_stripe_object("events", event) for event in rows(duck, "events")]
replayed = duckdb_engine()
create_schema(replayed)
replay = ingest(log, replayed)
bookkeeping = ("idempotency_keys", "ingest_versions", "ingest_pending", "ingest_quarantine")
assert (replay.read, replay.applied, replay.quarantined) == (len(log), len(log), 0)
assert database_state(replayed, skip=bookkeeping) == database_state(duck, skip=bookkeeping)
print(replay.summary().splitlines()[0])

# %% [markdown]
# That log was decided set-based (`paymodel.oltp.ingest_set`): staged in the engine, its
# duplicates, the moment each snapshot is applied, the newest snapshot per object and the
# writes were each one statement over the whole log. Decided one record at a time instead
# (`set_based=False`; the path a file takes when it holds plain objects rather than
# events, when the input guard refuses one of its records, or when a row could break a
# cross-row rule), the same log gives the same tables and the same counts.

# %%
one_by_one = duckdb_engine()
create_schema(one_by_one)
slow = ingest(log, one_by_one, set_based=False)
assert (replay.set_based, slow.set_based) == (["<records>"], [])
assert {**replay.as_dict(), "set_based": []} == slow.as_dict()
assert database_state(one_by_one, skip=bookkeeping) == database_state(replayed, skip=bookkeeping)
pd.DataFrame(
    [{"path": "set-based", **{k: replay.as_dict()[k] for k in ("read", "applied", "duplicate")}},
     {"path": "one record at a time", **{k: slow.as_dict()[k] for k in ("read", "applied", "duplicate")}}]
).set_index("path")  # fmt: skip

# %% [markdown]
# Records held in memory, as here, are mapped to rows in Python. A file read from disk
# on DuckDB has most snapshots flattened by SQL in the engine instead
# (`paymodel.oltp.ingest_engine`, generated from the same mapping, checking every value
# the way the Python reader would); `PAYMODEL_INGEST_ENGINE=0` maps all of them in
# Python. The same log written to a JSON Lines file, ingested both ways, gives the same
# tables; the table lists the log's object types and whether the engine takes them.

# %%
log_file = Path(tempfile.mkdtemp()) / "events.jsonl"
log_file.write_text("".join(json.dumps(e, separators=(",", ":")) + "\n" for e in log))
from_file = {}
for flag in ("1", "0"):
    os.environ["PAYMODEL_INGEST_ENGINE"] = flag
    db = duckdb_engine()
    create_schema(db)
    report_from_file = ingest(log_file, db)
    assert report_from_file.set_based == [str(log_file)]
    from_file[flag] = database_state(db, skip=bookkeeping)
del os.environ["PAYMODEL_INGEST_ENGINE"]
assert from_file["1"] == from_file["0"] == database_state(replayed, skip=bookkeeping)
kinds = pd.Series([e["data"]["object"]["object"] for e in log]).value_counts()
taken = [k in ENGINE_OBJECTS for k in kinds.index]
assert kinds[taken].sum() > kinds.sum() / 2  # most of the log's snapshots
pd.DataFrame({"events": kinds, "left to the engine": taken}).rename_axis("object")

# %% [markdown]
# Some records are impossible next to the row they reference: a refund larger than its
# charge, or in another currency than its charge. No arrival order makes them valid, so
# ingestion refuses them, naming the cross-row rule each one broke
# (`paymodel.model.rules`). Here two such refunds go to the replayed database, which holds
# their charge.

# %%
refund = rows(duck, "refunds")[0]
charge = rows(duck, "charges", id=refund["charge_id"])[0]
other_currency = "eur" if charge["currency"] != "eur" else "usd"
impossible = [
    to_stripe_object("refunds", {**refund, "id": "re_too_large", "amount": charge["amount"] + 1}),
    to_stripe_object("refunds", {**refund, "id": "re_other_currency", "currency": other_currency}),
]
refused = ingest(impossible, replayed)
assert (refused.read, refused.quarantined, refused.exit_code) == (2, 2, 3)
refusals = pd.DataFrame(rows(replayed, "ingest_quarantine"), columns=["object_id", "rule", "error"])
assert set(refusals["rule"]) == {"refund_within_charge_amount", "refund_in_charge_currency"}
refusals

# %% [markdown]
# Ingestion writes a file in batches: before each batch it reads only the rows, versions
# and event ids the batch's records name, and it writes one bulk statement per table
# (Arrow on DuckDB, `COPY` on PostgreSQL). A rule only the database knows, such as the
# unique `lookup_key` of prices, refuses a whole batch without naming a record. The file
# is then replayed with that batch narrowed, split in parts of about √n records, then
# the refused part written record by record, and the refused record is quarantined
# (rule `database_constraint`) while the rest of the file lands. Here the 300th price
# reuses the first one's lookup key.

# %%
shop = duckdb_engine()
create_schema(shop)
catalog = [{"object": "product", "id": "prod_batch", "name": "Batch", "active": True,
            "created": 1735689600, "metadata": {}}] + [
    {"object": "price", "id": f"price_batch_{i}", "product": "prod_batch", "currency": "usd",
     "unit_amount": 100 + i, "type": "one_time", "billing_scheme": "per_unit",
     "lookup_key": f"batch_{i % 299}", "active": True, "created": 1735689600 + i,
     "metadata": {}}
    for i in range(300)
]  # fmt: skip
landed = ingest(catalog, shop)
assert (landed.read, landed.applied, landed.quarantined) == (301, 300, 1)
(clash,) = rows(shop, "ingest_quarantine")
assert (clash["rule"], clash["object_id"]) == ("database_constraint", "price_batch_299")
assert count_rows(shop, "prices") == 299
print(f"{clash['object_id']}: {clash['rule']}: {clash['error'][:110]}")

# %% [markdown]
# ### How fast, against a bulk load
#
# The rows of a generated account can reach these tables two ways: bulk-loaded from the
# generator's Parquet files (`paymodel.synthetic.load.load_into_oltp`, which checks
# nothing), or replayed from the account's own event log through every check above. Here
# an account of scale `replay_scale` goes every way on DuckDB, each into an empty
# database holding only the reference data (currencies, rates). The timings are this
# run's, on whatever machine runs the notebook; `benchmarks/bench_ingest.py` measures the
# same at scales 0.1 and 1 on both engines, and the README's *Benchmarks* section gives
# its figures and where a replay spends its time.

# %%
account = out / "account"
generate(account, scale=replay_scale, seed=0, progress=False, documents=False)
account_log = account / "events.jsonl"
n_events = sum(1 for _ in account_log.open())
reference = ("currencies", "fx_rates")
ways = {}
for way in ("bulk load from Parquet", "replay, set-based", "replay, one record at a time"):
    db = duckdb_engine()
    create_schema(db)
    load_into_oltp(account, db, tables=reference)
    start = time.perf_counter()
    if way.startswith("bulk"):
        load_into_oltp(account, db, tables=tuple(t for t in TABLES if t not in reference))
    else:
        account_report = ingest(account_log, db, set_based=way.endswith("set-based"))
        assert (account_report.applied, account_report.quarantined) == (n_events, 0)
    ways[way] = (time.perf_counter() - start, db)
not_rebuilt = ("events", *bookkeeping)  # the bulk load writes no event log
bulk_state = database_state(ways["bulk load from Parquet"][1], skip=not_rebuilt)
for way, (_, db) in ways.items():
    assert database_state(db, skip=not_rebuilt) == bulk_state, way
    db.dispose()
bulk_seconds = ways["bulk load from Parquet"][0]
speed = pd.DataFrame(
    [{"way": way, "seconds": round(took, 2), "events per second": round(n_events / took),
      "x the bulk load": round(took / bulk_seconds, 1)} for way, (took, _) in ways.items()]
).set_index("way")  # fmt: skip
print(f"{n_events:,} events; every way gave the same tables")
speed

# %%
fig, ax = plt.subplots(figsize=(8, 2.6))
ax.barh(range(len(speed)), speed["seconds"], color=["#888", "#3a7", "#c84"])
for i, (took, times) in enumerate(zip(speed["seconds"], speed["x the bulk load"], strict=True)):
    ax.text(took, i, f" {took:.2f} s ({times:.1f}x)", va="center", fontsize=9)
ax.set_yticks(range(len(speed)), speed.index)
ax.invert_yaxis()
ax.set_xlim(0, speed["seconds"].max() * 1.35)
ax.set_xlabel("wall-clock seconds (this run)")
ax.set_ylabel("how the rows came in")
ax.set_title(f"{n_events:,} events of a generated account into DuckDB")
check_plot(ax)
fig.tight_layout()
fig.savefig(out / "replay_vs_bulk_load.png", dpi=110)
plt.show()

# %% [markdown]
# The set-based replay and the one record at a time wrote the same tables as the bulk
# load; the table and the plot give how long each took in this run.

# %% [markdown]
# ## 6. Erasure (GDPR)
#
# A customer's personal data is not only in `customers` and `customer_addresses`: the
# story's customer is also in the snapshots its events carry (below). Elsewhere it can be
# in the old values of an update, in a quarantined or parked record, in a client's stored
# request parameters (`tests/test_erase.py` fills each of those, on both engines).
# `erase_customer` (`paymodel erase CUSTOMER_ID --db TARGET`) clears every such place in
# one transaction, keeps ids, amounts and dates, and searches every text and JSON column
# of every table before it commits.

# %%
jenny = customer["id"]
identifiers = [customer["email"], customer["name"], customer["phone"]]
with loaded.connect() as conn:
    where_before = find_traces(conn, identifiers)
erased = erase_customer(loaded, jenny)
with loaded.connect() as conn:
    assert find_traces(conn, identifiers) == []
assert erased.found
assert count_rows(loaded, "charges", customer_id=jenny) > 0  # the books keep the payments
places = sorted({trace.split(": ")[0] for trace in where_before})
assert "events.data_object" in places
print("before, the customer's email, name or phone was in: " + ", ".join(places))
print(erased.summary())

# %%
(out / "summary.json").write_text(json.dumps({
    "confirmations": confirm_counts, "refunds": summary(refunds), "refunded": reported,
    "ingest": report.as_dict(), "replay": replay.as_dict(), "erased": erased.as_dict(),
}, indent=2, default=str))  # fmt: skip
for engine in (pg, duck, loaded, replayed, one_by_one, parked, shop):
    engine.dispose()
resources.close()

# %% [markdown]
# ## What this notebook showed
#
# * The payment intent lifecycle is data: it drew the diagram and refused every illegal
#   transition above, which wrote nothing.
# * Each flow wrote every row it implies: charges, balance transactions with Stripe's fees,
#   refunds, disputes with the dispute fee, invoices with prorated lines, invoice payments,
#   and an event per state change.
# * Idempotency keys replay stored results and refuse reused keys.
# * On PostgreSQL, concurrent confirmations made one charge, and concurrent refunds
#   conserved the total.
# * Ingestion counted, deduplicated and quarantined Stripe's records, parked a record
#   until its parent arrived, kept a newer snapshot against an older one, and the flows'
#   own event log rebuilt their tables exactly, decided set-based and one record at a
#   time alike, and read from a file with most snapshots flattened by SQL in DuckDB or
#   all in Python alike.
# * Ingestion refused two refunds no Stripe account can produce, each with the cross-row
#   rule it broke, and found the one price in a batch of 300 that the database refused.
# * A generated account's event log, replayed set-based and one record at a time, gave
#   the same tables as the bulk load of its Parquet files; the timings of this run are
#   printed beside it.
# * Erasure removed a customer's email, name and phone from every table that held them,
#   and kept its payments.
#
# Next: [06 · The OLAP star schema](06_olap_star_schema.ipynb) builds a Kimball star schema
# from these tables and their event log, with Ibis.
