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
# # 01 · The conceptual model: from Stripe's API objects to entities
#
# Stripe's API returns nested JSON objects that point at each other by id. A database
# needs **entities** (one table each, with a stated grain), **relationships** (foreign
# keys) and their **cardinalities**. This notebook reads them all from the one model,
# `paymodel.model.oltp.OLTP`, and shows:
#
# 1. each entity, the Stripe object it holds, its grain and why it exists;
# 2. the relationships and their cardinalities, read from the foreign keys;
# 3. the conceptual ER diagram (entities and relationships, no columns), each
#    relationship read as a sentence;
# 4. the design decisions the diagram encodes: why `invoice_payments` exists and which
#    tables resolve many-to-many relationships, why `customer_addresses` is one-to-one and
#    where else a customer's personal data ends up, why no relationship points both ways,
#    why the ledger has one typed foreign key per source.
#
# Every claim is asserted, so running this notebook is a test.

# %%
import json
from pathlib import Path

import pandas as pd

from paymodel.display import configure, diagram
from paymodel.model import OLTP, PII, Model
from paymodel.model.conceptual import associations, many_to_many, relationships
from paymodel.model.mermaid import er_diagram
from paymodel.model.oltp import STRIPE_TABLES
from paymodel.model.render import render_schemas
from paymodel.model.stripe import from_stripe_object, row_problems
from paymodel.oltp.erase import ERASERS
from paymodel.paths import DATA_DIR

# %% tags=["parameters"]
out_dir = "build/notebooks/01"

# %%
out = Path(out_dir)
out.mkdir(parents=True, exist_ok=True)
configure()
stripe = Model("stripe", "Stripe's objects and their reference data.", STRIPE_TABLES)
operational = [t for t in OLTP.table_names if t not in stripe.table_names]
print(f"{len(stripe.tables)} entities of Stripe's objects and reference data; the OLTP schema "
      f"adds {len(operational)} operational tables: {', '.join(operational)}")  # fmt: skip

# %% [markdown]
# ## Step 1 · From API objects to entities
#
# Each Stripe object type becomes one entity with a stated **grain** ("one row per ...")
# and a reason to exist. A few entities are not Stripe objects: reference data
# (`currencies`, `fx_rates`) and `customer_addresses`, split out of the customer. Nested
# lists become their own entities (first normal form): invoice lines, subscription
# items, fee details. (The OLTP schema of notebook 03 adds operational tables that are not
# entities of the business: idempotency keys and the ingestion's bookkeeping. They appear
# there.)

# %%
entities = pd.DataFrame(
    [{"entity": t.name, "Stripe object": t.stripe_object or "", "id prefix": t.id_prefix or "",
      "grain": t.grain, "why": t.why} for t in stripe.tables]
).set_index("entity")  # fmt: skip
assert all(t.grain.startswith("One row per") and t.why for t in stripe.tables)
assert entities["Stripe object"].ne("").sum() >= 16
assert set(operational) == {"idempotency_keys", "ingest_versions", "ingest_pending",
                            "ingest_quarantine"}  # fmt: skip
entities

# %% [markdown]
# The story in `data/stripe/events.jsonl` (Stripe's current API shape) shows the
# objects as Stripe sends them. The first snapshot of each object type maps to rows of
# the entities above through `paymodel.model.stripe.from_stripe_object`. (A later event
# of the story is malformed on purpose, for the ingestion notebook's quarantine.)

# %%
snapshots = {}
with (DATA_DIR / "stripe" / "events.jsonl").open() as events:
    for line in events:
        obj = json.loads(line)["data"]["object"]
        snapshots.setdefault(obj["object"], obj)
mapped = {kind: sorted({table for table, _ in from_stripe_object(obj)}) for kind, obj in snapshots.items()}
assert set(mapped["invoice_payment"]) == {"invoice_payments"}
assert all(set(tables) <= set(stripe.table_names) for tables in mapped.values())
pd.Series({k: ", ".join(v) for k, v in sorted(mapped.items())}, name="rows in")

# %% [markdown]
# ## Step 2 · Relationships and cardinalities, from the foreign keys
#
# Each foreign key is a relationship. Its cardinality follows from the column:
# a NOT NULL foreign key means each child has **exactly one** parent, a nullable one
# **zero or one** (a charge without a payment intent, an invoice without a subscription);
# a parent has **zero or more** children unless the foreign key is also unique in the
# child, which makes it **one-to-one**. (References to `currencies`, one per money
# column, are left out to keep the picture readable.) Each relationship has a verb phrase
# that reads from parent to child as a sentence, the way the diagram below reads.

# %%
rels = pd.DataFrame(
    [{"reads": r.sentence, "foreign key": f"{r.child}.{', '.join(r.columns)}",
      "parents per child": r.child_side} for r in relationships(stripe)]
)  # fmt: skip
rels.to_csv(out / "relationships.csv", index=False)
by_key = {(r.child, r.columns): r for r in relationships(stripe)}
assert by_key["charges", ("payment_intent_id",)].child_side == "zero or one"
assert by_key["invoice_line_items", ("invoice_id",)].child_side == "exactly one"
assert by_key["subscriptions", ("customer_id",)].parent_side == "zero or more"
assert "A product is priced by zero or more prices." in set(rels["reads"])
rels

# %% [markdown]
# ## Step 3 · The conceptual ER diagram
#
# `paymodel schemas` renders it from the same model (`er_diagram(..., columns=False)`) into
# `schemas/oltp_conceptual.mmd`, and `make diagrams` draws that as
# `schemas/oltp_conceptual.svg`, shown here: entities and relationships only, each line
# read from the parent above to the child below ("a product is priced by prices"). At the
# ends of a line, `||` is exactly one, `|o` zero or one, `o{` zero or more. What one engine
# or another can enforce is not a concern of this level: notebook 03 shows it.

# %%
conceptual = er_diagram(stripe, columns=False)
assert render_schemas()["oltp_conceptual.mmd"].endswith(conceptual)  # the file is this model
assert 'invoices ||--o{ invoice_payments : "is paid by"' in conceptual
assert 'payment_intents ||--o{ invoice_payments : "is applied as"' in conceptual
assert "customers ||--o| customer_addresses" in conceptual
assert "{" not in conceptual.replace("o{", "").replace("|{", "")  # no column blocks
assert "PostgreSQL" not in conceptual
diagram("oltp_conceptual")

# %% [markdown]
# ## Step 4 · Why `invoice_payments` exists
#
# In Stripe's current API an invoice **no longer names a charge or a payment intent**:
# several payments can pay one invoice (a partial payment, then the rest), and a payment
# can be retried. The link is an object of its own, `invoice_payment`. In the model it
# is an association table: two NOT NULL foreign keys and a unique `(invoice_id,
# payment_intent_id)`, so a payment intent pays a given invoice at most once. It is the
# model's one pure association table (its unique key is the pair of foreign keys). It is
# not the only many-to-many relationship: three entities resolve others, and are things
# in their own right with their own id and attributes (a subscription item has a
# quantity and a period, an invoice line an amount, a discount a start and an end).

# %%
invoices, invoice_payments = stripe.table("invoices"), stripe.table("invoice_payments")
assert not {"charge", "payment_intent"} & set(snapshots["invoice"])  # Stripe's own object
assert not {"charge_id", "payment_intent_id"} & set(invoices.column_names)
assert ("invoice_id", "payment_intent_id") in invoice_payments.unique_keys
assert not invoice_payments.column("invoice_id").nullable
assert not invoice_payments.column("payment_intent_id").nullable
assert [(a.table, a.left, a.right) for a in associations(stripe)] == [
    ("invoice_payments", "invoices", "payment_intents")
]
print(invoice_payments.why)
resolved = pd.DataFrame([vars(m) for m in many_to_many(stripe)])
assert set(resolved["table"]) == {"invoice_payments", "subscription_items", "invoice_line_items",
                                  "discounts"}  # fmt: skip
assert resolved.set_index("table")["once_per_pair"].to_dict()["invoice_payments"]
resolved.rename(columns={"table": "resolved by", "once_per_pair": "each pair at most once"})

# %% [markdown]
# ## Step 5 · One-to-one: the customer's address, and where personal data ends up
#
# Stripe nests an address in the customer. All of it is optional and all of it is
# personal data, so it lives in `customer_addresses`, whose primary key is also its
# foreign key to `customers`: one customer, zero or one address, and no six nullable
# columns on `customers`.

# %%
address = by_key["customer_addresses", ("customer_id",)]
assert stripe.table("customer_addresses").primary_key == ("customer_id",)
assert address.kind == "one-to-one"
assert {c.name for c in stripe.table("customer_addresses").columns if c.pii is PII.DIRECT} == {
    "line1", "line2"
}
assert {"line1", "city", "postal_code"}.isdisjoint(stripe.table("customers").column_names)
pd.DataFrame([vars(address)])

# %% [markdown]
# The rows are not the only place personal data lives. Every `customer.*` event keeps a
# snapshot of the customer (and the old values of what changed), records parked or
# quarantined by the ingestion keep what was received, and idempotency keys keep the
# parameters of each request. The model marks each such column with its PII class, so
# erasure (GDPR's right to be forgotten) has a list of places to visit:
# `paymodel erase CUSTOMER_ID --db TARGET` (`paymodel.oltp.erase.erase_customer`) clears
# them all in one transaction and keeps ids, amounts and dates; notebook 05 runs it.

# %%
personal = pd.DataFrame(
    [{"table": t.name, "column": c.name, "PII": c.pii.value, "type": c.type.name}
     for t in OLTP.tables for c in t.columns if c.pii is PII.DIRECT]
)  # fmt: skip
assert {("events", "data_object"), ("ingest_quarantine", "raw"), ("ingest_pending", "raw"),
        ("idempotency_keys", "request_params")} <= set(zip(personal["table"], personal["column"], strict=True))  # fmt: skip
assert "oltp" in ERASERS
personal

# %% [markdown]
# ## Step 6 · Every relationship points one way: child to parent
#
# Stripe has pointers both ways: `customer.invoice_settings.default_payment_method`,
# `payment_intent.latest_charge`, `subscription.latest_invoice`, `product.default_price`.
# The model keeps only the child -> parent direction; the other is a query ("the latest
# charge of this payment intent"). A cycle of foreign keys could not even be created on
# DuckDB, which cannot add a foreign key after `CREATE TABLE`. The model checks that its
# tables can be created parents first.

# %%
back_pointers = {
    "customers": "default_payment_method_id", "payment_intents": "latest_charge_id",
    "subscriptions": "latest_invoice_id", "products": "default_price_id",
}  # fmt: skip
for table, column in back_pointers.items():
    assert column not in stripe.table(table).column_names, (table, column)
position = {name: i for i, name in enumerate(stripe.table_names)}
assert all(position[r.parent] < position[r.child] for r in relationships(stripe, currencies=True)
           if r.parent != r.child)  # fmt: skip
list(stripe.table_names)

# %% [markdown]
# ## Step 7 · The ledger: one typed foreign key per source
#
# Stripe's `balance_transaction.source` may be a charge, a refund, a dispute or a payout.
# A polymorphic column cannot be a foreign key. The model gives the ledger one nullable
# foreign key per source kind (`charge_id`, `refund_id`, `dispute_id`, and `source_payout_id`
# for a payout's own movement and its failure's return), and a rule that at most one is
# set. Apart from its source, a movement names the automatic payout that settled it
# (`payout_id`). A payout has no pointer back to its own movement: child -> parent only.
# What holds where:
#
# * the **source foreign keys** are declared for both engines: DuckDB and PostgreSQL refuse
#   a source that does not exist;
# * `payout_id` is set after the movement exists, so its foreign key is declared on
#   PostgreSQL only (DuckDB refuses updates of indexed columns of referenced rows) and
#   checked by the ingester everywhere;
# * the **at most one source** check is declared in PostgreSQL's DDL only. On DuckDB a
#   check over three indexed columns breaks ordinary updates of the row (notebook 03 shows
#   that limit), so there the writers check it: the ingestion validates every row against
#   every check of the model, PostgreSQL-only ones included (`row_problems`, below), and
#   the payment flows write one source per movement by construction.

# %%
ledger = stripe.table("balance_transactions")
sources = [r for r in relationships(stripe) if r.child == "balance_transactions"]
source_fks = [r for r in sources if r.columns != ("payout_id",)]
assert {r.parent for r in source_fks} == {"charges", "refunds", "disputes", "payouts"}
assert all(r.child_side == "zero or one" for r in sources)
settled_by = [fk for fk in ledger.all_foreign_keys if fk.columns == ("payout_id",)]
assert [fk.dialects for fk in settled_by] == [("postgresql",)]
assert all(fk.dialects is None for fk in ledger.all_foreign_keys
           if fk.table != "currencies" and fk.columns != ("payout_id",))  # fmt: skip
one_source = next(c for c in ledger.checks if c.name == "ck_balance_transactions_one_source")
assert one_source.dialects == ("postgresql",)
two_sources = {c.name: None for c in ledger.columns} | {
    "id": "txn_1", "type": "charge", "reporting_category": "charge", "amount": 1000, "fee": 59,
    "net": 941, "currency": "usd", "status": "available", "charge_id": "ch_1", "refund_id": "re_1",
    "available_on": pd.Timestamp("2026-01-03", tz="UTC").to_pydatetime(),
    "created": pd.Timestamp("2026-01-01", tz="UTC").to_pydatetime(),
}  # fmt: skip
assert row_problems("balance_transactions", two_sources) == [f"{one_source.description} ({one_source.name})"]
rules = [{"rule": f"{r.columns[0]} references {r.parent}",
          "DuckDB": "ingester" if r.columns == ("payout_id",) else "database",
          "PostgreSQL": "database"} for r in sources]  # fmt: skip
rules.append({"rule": one_source.description, "DuckDB": "writers (row_problems)",
              "PostgreSQL": "database"})  # fmt: skip
print("row_problems on a movement with two sources:", row_problems("balance_transactions", two_sources))
pd.DataFrame(rules).set_index("rule")

# %% [markdown]
# ## Summary
#
# - Each Stripe object is one entity with a grain and a reason; nested lists and the
#   customer's address became entities of their own.
# - Cardinalities come from the foreign keys: NOT NULL means exactly one parent,
#   nullable zero or one, a unique foreign key one-to-one.
# - `invoice_payments` is the model's one pure association (its unique key is its two
#   foreign keys): invoices no longer name a charge, and several payments can pay one
#   invoice. Subscription items, invoice lines and discounts resolve the other
#   many-to-many relationships.
# - The address lives in one table, but personal data also sits in event snapshots, raw
#   ingested records and stored request parameters; the model marks each place, and
#   `paymodel erase` visits them all.
# - Relationships point child -> parent only, so the tables can be created parents
#   first, and the ledger has one typed foreign key per source instead of a polymorphic
#   `source`: enforced by both engines, while the "at most one" rule is PostgreSQL's DDL
#   on one engine and the writers' check on the other.
#
# Next: [02 · Normalisation](02_normalization.ipynb) derives such tables from a flat
# dashboard export, one functional dependency at a time.
