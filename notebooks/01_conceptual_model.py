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
# 3. the conceptual ER diagram (entities and relationships, no columns);
# 4. the design decisions the diagram encodes: why `invoice_payments` exists, why
#    `customer_addresses` is one-to-one, why no relationship points both ways, why the
#    ledger has one typed foreign key per source.
#
# Every claim is asserted, so running this notebook is a test.

# %%
import json
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from paymodel.model import PII, Model
from paymodel.model.conceptual import associations, relationships
from paymodel.model.mermaid import er_diagram
from paymodel.model.oltp import STRIPE_TABLES
from paymodel.model.stripe import from_stripe_object
from paymodel.paths import DATA_DIR

# %% tags=["parameters"]
out_dir = "build/notebooks/01"

# %%
out = Path(out_dir)
out.mkdir(parents=True, exist_ok=True)
pd.set_option("display.max_colwidth", 200, "display.width", 200)
stripe = Model("stripe", "Stripe's objects and their reference data.", STRIPE_TABLES)
len(stripe.tables)

# %% [markdown]
# ## Step 1 · From API objects to entities
#
# Each Stripe object type becomes one entity with a stated **grain** ("one row per ...")
# and a reason to exist. A few entities are not Stripe objects: reference data
# (`currencies`, `fx_rates`) and `customer_addresses`, split out of the customer. Nested
# lists become their own entities (first normal form): invoice lines, subscription
# items, fee details.

# %%
entities = pd.DataFrame(
    [{"entity": t.name, "Stripe object": t.stripe_object or "", "id prefix": t.id_prefix or "",
      "grain": t.grain, "why": t.why} for t in stripe.tables]
).set_index("entity")  # fmt: skip
assert all(t.grain.startswith("One row per") and t.why for t in stripe.tables)
assert entities["Stripe object"].ne("").sum() >= 16
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
# column, are left out to keep the picture readable.)

# %%
rels = pd.DataFrame(
    [{"parent": r.parent, "relationship": r.label, "child": r.child,
      "foreign key": ", ".join(r.columns), "parents per child": r.child_side,
      "children per parent": r.parent_side} for r in relationships(stripe)]
)  # fmt: skip
by_key = {(r.child, r.columns): r for r in relationships(stripe)}
assert by_key["charges", ("payment_intent_id",)].child_side == "zero or one"
assert by_key["invoice_line_items", ("invoice_id",)].child_side == "exactly one"
assert by_key["subscriptions", ("customer_id",)].parent_side == "zero or more"
rels

# %% [markdown]
# ## Step 3 · The conceptual ER diagram
#
# Rendered from the same model by `paymodel.model.mermaid.er_diagram(..., columns=False)`:
# entities and relationships only. `||` is exactly one, `|o` zero or one, `o{` zero or
# more. The text is also written to `out_dir` as `conceptual.mmd`.

# %%
diagram = er_diagram(stripe, columns=False)
(out / "conceptual.mmd").write_text(diagram)
assert diagram.startswith("erDiagram")
assert 'invoices ||--o{ invoice_payments : "is paid by"' in diagram
assert 'payment_intents ||--o{ invoice_payments : "pays"' in diagram
assert "customers ||--o| customer_addresses" in diagram
assert "{" not in diagram.replace("o{", "").replace("|{", "")  # no column blocks
display(Markdown("```mermaid\n" + diagram + "\n```"))

# %% [markdown]
# ## Step 4 · Why `invoice_payments` exists
#
# In Stripe's current API an invoice **no longer names a charge or a payment intent**:
# several payments can pay one invoice (a partial payment, then the rest), and a payment
# can be retried. The link is an object of its own, `invoice_payment`. In the model it
# is an association table: two NOT NULL foreign keys and a unique `(invoice_id,
# payment_intent_id)`, so a payment intent pays a given invoice at most once. It is the
# only many-to-many relationship of the model.

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

# %% [markdown]
# ## Step 5 · One-to-one: the customer's address
#
# Stripe nests an address in the customer. All of it is optional and all of it is
# personal data, so it lives in `customer_addresses`, whose primary key is also its
# foreign key to `customers`: one customer, zero or one address, erasable in one place
# (GDPR).

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
# Stripe's `balance_transaction.source` may be a charge, a refund, a dispute, a payout...
# A polymorphic column cannot be a foreign key. The model gives the ledger one nullable
# foreign key per source kind (`charge_id`, `refund_id`, `dispute_id`, `source_payout_id`
# for a payout's own movement and its failure's return), each enforced by the database on
# both engines, and a check that at most one is set. Apart from its source, a movement
# names the automatic payout that settled it (`payout_id`): set after the row exists, so
# that key is declared on PostgreSQL only (DuckDB refuses updates of indexed columns of
# referenced rows) and checked by the ingester everywhere. A payout has no pointer back
# to its own movement: child -> parent only.

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
assert any(c.name == "ck_balance_transactions_one_source" for c in ledger.checks)
pd.DataFrame([{"parent": r.parent, "foreign key": r.columns[0],
               "engines": "PostgreSQL only" if r.columns == ("payout_id",) else "both"}
              for r in sources])  # fmt: skip

# %% [markdown]
# ## Summary
#
# - Each Stripe object is one entity with a grain and a reason; nested lists and the
#   customer's address became entities of their own.
# - Cardinalities come from the foreign keys: NOT NULL means exactly one parent,
#   nullable zero or one, a unique foreign key one-to-one.
# - `invoice_payments` is the model's one many-to-many link: invoices no longer name a
#   charge, and several payments can pay one invoice.
# - Relationships point child -> parent only, so the tables can be created parents
#   first, and the ledger has one typed foreign key per source instead of a polymorphic
#   `source`.
#
# Next: [02 · Normalisation](02_normalization.ipynb) derives such tables from a flat
# dashboard export, one functional dependency at a time.
