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
# # 02 · Normalisation: from a dashboard export to 3NF
#
# A payments dashboard exports one flat row per charge, with everything about the customer,
# the card, the price, the product and the currency repeated on every row, and Stripe's fee
# lines crammed into two comma-separated lists. This notebook takes that export to third
# normal form, one step at a time:
#
# 1. **1NF**: one value per cell, by flattening the fee lists into rows;
# 2. the **functional dependencies** (FDs) the columns obey, checked on the rows;
# 3. **2NF**: remove the dependencies on *part* of the key;
# 4. **3NF**: remove the dependencies between non-key columns;
# 5. a **lossless** proof: re-joining the parts gives back exactly the original, and a
#    counter-example of a split that is not lossless.
#
# Each step names the dependencies it removes, and `paymodel.model.normalization` checks
# them, on the data (does X -> Y hold, which rows break it) and in theory (keys, closures,
# normal forms). Every claim is asserted, so running this notebook is a test.

# %%
from pathlib import Path

import pandas as pd
from IPython.display import display

from paymodel.display import configure
from paymodel.model import OLTP
from paymodel.model.normalization import (
    NormalForm,
    candidate_keys,
    compare_rejoin,
    holds,
    implied_keys,
    is_lossless,
    nest,
    non_atomic_columns,
    normal_form,
    partial_dependencies,
    project,
    rejoin,
    split_on,
    synthesize_3nf,
    transitive_dependencies,
    unnest,
    violations,
)
from paymodel.model.oltp import DENORMALISED
from paymodel.synthetic.dashboard_export import (
    DEPENDENCIES,
    FEE_LISTS,
    KEY_CANDIDATES,
    payments_export,
)

# %% tags=["parameters"]
out_dir = "build/notebooks/02"
n_rows = 40
seed = 7

# %%
out = Path(out_dir)
out.mkdir(parents=True, exist_ok=True)
configure()  # whole values, every column

# %% [markdown]
# ## The export
#
# `payments_export` builds a small deterministic export of succeeded card charges, as a
# dashboard's *Export CSV* would give it. We write it as CSV to `out_dir`, like the real
# thing, and keep the typed DataFrame (money in integer minor units, UTC timestamps).

# %%
export = payments_export(n_rows=n_rows, seed=seed)
export.to_csv(out / "payments_export.csv", index=False)
assert len(export) == n_rows
assert export["charge_id"].is_unique
export.head(4).T

# %% [markdown]
# ## Step 1 · First normal form: one value per cell
#
# `fee_types` and `fee_amounts` are a **repeating group**: two parallel lists in one cell
# each. Nobody can ask SQL "how much VAT on fees did we pay?" without parsing strings,
# nor constrain a fee to be non-negative. 1NF puts each fee line on its own row. Every
# succeeded charge has at least one fee line (`stripe_fee`), so no charge loses its row;
# a list that can be empty (refunds, say) would leave rows with NULL where the key goes.

# %%
assert non_atomic_columns(export) == ["fee_types", "fee_amounts"]
first_nf = unnest(export, FEE_LISTS, dtypes={"fee_amount": "int64"}, key="charge_id")
assert non_atomic_columns(first_nf) == []
print(f"{len(export)} charges -> {len(first_nf)} rows, one per charge and fee line")
first_nf[["charge_id", "currency", "amount", "fee_type", "fee_amount"]].head(6)

# %% [markdown]
# The step loses nothing: nesting the fee lines back into lists gives the export again.
#
# And `charge_id` is no longer a key: a charge with a `tax` fee now has two rows, which
# disagree on `fee_amount`. `violations` shows the rows that break `charge_id -> fee_amount`.

# %%
assert is_lossless(export, [nest(first_nf, "charge_id", {v: k for k, v in FEE_LISTS.items()})])
broken = violations(first_nf, "charge_id", "fee_amount")
assert not broken.empty
broken.head(4)

# %% [markdown]
# ## Step 2 · The functional dependencies, and the key
#
# A dependency X -> Y says: two rows that agree on X agree on Y. They come from what the
# columns mean (a payment method belongs to one customer, a price to one product), not
# from the data; the data can only *refute* one. So we state them, and check that the rows
# do not contradict any.

# %%
fd_table = pd.DataFrame(
    {"dependency": [str(d) for d in DEPENDENCIES],
     "holds on the rows": [holds(first_nf, d.lhs, d.rhs) for d in DEPENDENCIES]}
)  # fmt: skip
assert fd_table["holds on the rows"].all()
fd_table

# %% [markdown]
# The key follows from the dependencies: `(charge_id, fee_type)` determines every column,
# and nothing smaller does. Searching the identifier columns of the data finds the same
# key. Searching *all* columns would also "find" `(created, fee_type)`: timestamps happen
# to be unique in 40 rows, but nothing makes them so. Data can refute a dependency, never
# prove one.

# %%
key = implied_keys(list(first_nf.columns), DEPENDENCIES)
assert key == [("charge_id", "fee_type")]
assert candidate_keys(first_nf, among=KEY_CANDIDATES) == key
assert ("created", "fee_type") in candidate_keys(first_nf, max_size=2)
key

# %% [markdown]
# What a broken dependency looks like: the same customer exported with two emails (an
# export taken while the customer changed address). This **update anomaly** is what
# repeating a fact on every row invites; `violations` names the rows.

# %%
stale = first_nf.copy()
customer = stale.loc[stale["customer_id"].duplicated(keep=False), "customer_id"].iloc[0]
stale.loc[stale.index[stale["customer_id"] == customer][0], "customer_email"] = "old@example.com"
stale_rows = violations(stale, "customer_id", "customer_email")
assert not holds(stale, "customer_id", "customer_email")
assert len(stale_rows) == 2
stale_rows

# %% [markdown]
# ## Step 3 · Second normal form: no dependency on part of the key
#
# The key is `(charge_id, fee_type)`, but almost every column depends on `charge_id` alone
# (a **partial dependency**): the charge's amount, currency, customer and card are
# repeated on each of its fee lines. 2NF moves them to a relation keyed by `charge_id`.

# %%
assert normal_form(list(first_nf.columns), DEPENDENCIES) is NormalForm.FIRST
(partial,) = partial_dependencies(list(first_nf.columns), DEPENDENCIES)
assert partial.lhs == ("charge_id",)
assert "fee_amount" not in partial.rhs
print(partial)

# %% [markdown]
# Splitting on `charge_id -> ...` gives `charges` (one row per charge) and `charge_fees`
# (one row per fee line, `fee_amount` depending on the whole key). By Heath's theorem a
# split on a dependency that holds is lossless; we check it on the rows anyway.

# %%
charges_2nf, charge_fees = split_on(first_nf, partial)
assert normal_form(list(charge_fees.columns), DEPENDENCIES) is NormalForm.BOYCE_CODD
assert normal_form(list(charges_2nf.columns), DEPENDENCIES) is NormalForm.SECOND
assert is_lossless(first_nf, [charges_2nf, charge_fees])
assert len(charges_2nf) == n_rows
pd.DataFrame(
    {"relation": ["charges (2NF)", "charge_fees"],
     "columns": [charges_2nf.shape[1], charge_fees.shape[1]],
     "rows": [len(charges_2nf), len(charge_fees)],
     "normal form": [str(normal_form(list(r.columns), DEPENDENCIES))
                     for r in (charges_2nf, charge_fees)]}
)  # fmt: skip

# %% [markdown]
# ## Step 4 · Third normal form: no dependency between non-key columns
#
# `charges` is in 2NF, not 3NF: `customer_email` depends on `charge_id` only *through*
# `customer_id` (a **transitive dependency**). Each of these is a fact about another thing
# (a customer, a card, a price, a product, a currency) stored once per charge.

# %%
transitive = transitive_dependencies(list(charges_2nf.columns), DEPENDENCIES)
assert {d.lhs for d in transitive} == {
    ("currency",), ("customer_id",), ("payment_method_id",), ("price_id",), ("product_id",)
}
pd.DataFrame({"transitive dependency removed": [str(d) for d in transitive]})

# %% [markdown]
# Bernstein's synthesis turns a minimal cover of the dependencies into one relation per
# determinant: every dependency is kept inside one relation, and one relation holds the
# key, which makes the decomposition lossless. Each part is named by what its key
# identifies.

# %%
names = {"charge_id": "charges", "currency": "currencies", "customer_id": "customers",
         "payment_method_id": "payment_methods", "price_id": "prices", "product_id": "products"}  # fmt: skip
schemas = synthesize_3nf(list(charges_2nf.columns), DEPENDENCIES)
parts = {names[s[0]]: project(charges_2nf, s) for s in schemas} | {"charge_fees": charge_fees}
forms = {name: normal_form(list(p.columns), DEPENDENCIES) for name, p in parts.items()}
assert all(form >= NormalForm.THIRD for form in forms.values())
pd.DataFrame(
    {"key": [", ".join(implied_keys(list(p.columns), DEPENDENCIES)[0]) for p in parts.values()],
     "columns": [", ".join(p.columns) for p in parts.values()],
     "rows": [len(p) for p in parts.values()],
     "normal form": [str(f) for f in forms.values()]},
    index=list(parts),
)  # fmt: skip

# %% [markdown]
# The dependency `payment_method_id -> customer_id` put `customer_id` on `payment_methods`
# and took it off `charges`: in this export, the card tells who paid. The OLTP model keeps
# `charges.customer_id` anyway, because there the two are *different facts*: the customer
# charged at the time, and the customer a payment method is attached to now, which becomes
# NULL when the card is detached. A dependency that holds in a snapshot need not hold over
# time; the model's nullable `payment_methods.customer_id` says so.

# %%
assert "customer_id" not in parts["charges"].columns
assert "customer_id" in parts["payment_methods"].columns
assert OLTP.table("charges").column("customer_id").nullable
assert OLTP.table("payment_methods").column("customer_id").nullable

# %% [markdown]
# ## Step 5 · Lossless: the re-join is the original
#
# The natural join of the seven parts gives back the 1NF relation row for row, and nesting
# the fee lines gives back the export we started from. The normalised design stores each
# fact once: far fewer cells for the same information.

# %%
rejoined = rejoin(list(parts.values()))
assert is_lossless(first_nf, list(parts.values()))
assert is_lossless(export, [nest(rejoined[list(first_nf.columns)], "charge_id",
                                 {v: k for k, v in FEE_LISTS.items()})])  # fmt: skip
cells_before = first_nf.size
cells_after = sum(p.size for p in parts.values())
assert cells_after < cells_before
print(f"cells: {cells_before} in 1NF -> {cells_after} in 3NF; re-join equals the original")

# %% [markdown]
# Not every split is lossless. Splitting `charges` on `currency`, which determines neither
# side, invents rows: every charge in a currency pairs with every amount in that currency.
# `compare_rejoin` shows the **spurious** rows.

# %%
lossy = compare_rejoin(
    charges_2nf[["charge_id", "currency", "amount"]],
    [project(charges_2nf, ["charge_id", "currency"]), project(charges_2nf, ["currency", "amount"])],
)
assert not lossy.lossless
assert lossy.missing.empty
assert len(lossy.spurious) > 0
assert not holds(charges_2nf, "currency", "amount")
print(f"{len(lossy.spurious)} spurious rows, for example:")
lossy.spurious.head(3)

# %% [markdown]
# ## The parts are the model's tables
#
# Each part has the grain of a table of the OLTP model (`paymodel.model.oltp`). The fee
# lines live there per balance transaction rather than per charge, as Stripe keeps them.

# %%
model_tables = {name: name if name in OLTP.table_names else "balance_transaction_fee_details"
                for name in parts}  # fmt: skip
assert all(t in OLTP.table_names for t in model_tables.values())
pd.DataFrame({"model table": model_tables.values(),
              "grain": [OLTP.table(t).grain for t in model_tables.values()]}, index=list(model_tables))  # fmt: skip

# %% [markdown]
# ## Where the model keeps a transitive dependency, on purpose
#
# The OLTP model is not 3NF everywhere, and says where. Two kinds of column repeat what
# another path already gives, because Stripe's objects carry them and consumers read them
# without a join:
#
# * **Derived values** (`paymodel.model.oltp.DENORMALISED`): an invoice's `subtotal`,
#   `total` and `amount_remaining`, a charge's `amount_refunded`, `refunded` and
#   `disputed`, a payment intent's `amount_received`, a customer's `balance`. Each is
#   guarded by a check constraint or a dataset invariant so it cannot drift from its
#   derivation; the table below names the guard (`customers.balance` has none: the model
#   does not hold Stripe's customer balance transactions it is derived from).
# * **Redundant references**: a refund's or dispute's `payment_intent_id` is also its
#   charge's, a charge's `customer_id` its payment intent's, an invoice's or discount's
#   `customer_id` its subscription's. The database makes them agree with an *agreement
#   key*, a composite foreign key onto a `UNIQUE (id, ...)` of the parent.

# %%
derived = pd.DataFrame([{"column": f"{d.table}.{d.column}", "derived from": d.derived_from,
                         "guarded by": d.guard} for d in DENORMALISED])  # fmt: skip
assert len(derived) == 8
assert (derived["guarded by"].str.contains("check|invariant") | derived["column"].eq("customers.balance")).all()
display(derived)
agreements = pd.DataFrame([
    {"table": t.name, "columns": ", ".join(fk.columns), "references": f"{fk.table} ({', '.join(fk.referred)})",
     "declared on": "both engines" if fk.dialects is None else " and ".join(fk.dialects)}
    for t in OLTP.tables for fk in t.agreement_keys
])  # fmt: skip
assert set(agreements["table"]) == {"refunds", "disputes", "charges", "invoices", "discounts"}
agreements

# %% [markdown]
# ## Summary
#
# - 1NF flattened the fee lists into rows; nesting them back gives the export.
# - The key `(charge_id, fee_type)` follows from the dependencies; the rows contradict none.
# - 2NF removed the partial dependency `charge_id -> ...`; 3NF removed five transitive ones
#   (customer, card, price, product, currency facts).
# - All seven parts are in BCNF, and their natural join is the original: lossless.
# - Where the OLTP model keeps a transitive dependency (Stripe's derived values and
#   redundant references), it names it, and a check, an invariant or an agreement key
#   keeps it equal to its derivation.
#
# The parts are the OLTP model's `charges`, `customers`, `payment_methods`, `prices`,
# `products`, `currencies` and (per balance transaction rather than per charge)
# `balance_transaction_fee_details`. The next notebook creates that schema on DuckDB and
# PostgreSQL and shows each constraint at work:
# [03 · The OLTP schema](03_oltp_schema.ipynb).
