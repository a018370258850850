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
# # 03 · The OLTP schema on DuckDB and PostgreSQL
#
# The entities of notebook 01, plus the operational tables the database needs to do its
# work, are rendered to DDL per engine (`paymodel.model.sql`, written to `schemas/`); this
# notebook runs that DDL on **DuckDB** and on **PostgreSQL** and shows:
#
# 1. the logical model, one ER diagram per subject area, and the physical model: a real
#    `CREATE TABLE` of `schemas/` per engine and where the two differ; the schema created
#    from it on both engines, with every declared key and check (DuckDB keeps none of the
#    constraint names);
# 2. a small valid story (a customer pays an invoice by card) accepted by both;
# 3. **each kind of constraint** (NOT NULL, PRIMARY KEY, UNIQUE, FOREIGN KEY, CHECK) and
#    the money rules refusing a bad row, with each engine's own error;
# 4. where the engines **differ**: cascades, deferrable constraints, DuckDB's foreign-key
#    check when a referenced row's key column is updated, and the constraints the model
#    therefore declares on PostgreSQL only.
#
# Every claim is asserted, so running this notebook is a test.

# %%
from contextlib import ExitStack
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from IPython.display import Markdown, display

from paymodel.display import configure, diagram, nulls
from paymodel.model import OLTP
from paymodel.model.core import SUBJECT_AREAS
from paymodel.model.render import check_schemas
from paymodel.model.sql import create_table_statement, statements
from paymodel.oltp.constraints_demo import (
    CASCADE_DDL,
    CASES,
    DEFERRABLE_DDL,
    POSTGRES_ONLY_CASE,
    declared_constraints,
    expected_error,
    insert_valid_rows,
    oltp_tables,
    run_case,
    try_ddl,
    update_key_to_same_value,
    valid_rows,
)
from paymodel.oltp.engines import (
    drop_postgres_database,
    dsn_database,
    duckdb_engine,
    fresh_postgres_database,
    postgres_engine,
    temporary_postgres,
)
from paymodel.oltp.schema import create_schema
from paymodel.paths import SCHEMAS_DIR

# %% tags=["parameters"]
out_dir = "build/notebooks/03"
pg_dsn = None

# %% [markdown]
# ## Connect
#
# DuckDB runs in a file under `out_dir`. PostgreSQL is the server of `pg_dsn` or, when it
# is `None`, an embedded server started for this notebook. The schema goes into a fresh
# database of its own on that server, so the database `pg_dsn` names is left untouched
# for the notebooks after this one. An `ExitStack` disposes of the engines, drops the
# database and stops the server at the end.

# %%
out = Path(out_dir)
out.mkdir(parents=True, exist_ok=True)
duckdb_file = out / "oltp_schema.duckdb"
duckdb_file.unlink(missing_ok=True)
stack = ExitStack()
if pg_dsn is None:
    pg_dsn = fresh_postgres_database(stack.enter_context(temporary_postgres()))
schema_dsn = fresh_postgres_database(pg_dsn)
stack.callback(drop_postgres_database, pg_dsn, dsn_database(schema_dsn))
engines = {"duckdb": duckdb_engine(duckdb_file), "postgresql": postgres_engine(schema_dsn)}
for engine in engines.values():
    stack.callback(engine.dispose)
configure()
print("engines:", ", ".join(engines))

# %% [markdown]
# ## Step 1 · The logical model, one subject area at a time
#
# The schema has more tables than notebook 01's entities: besides Stripe's objects and
# their reference data it holds **operational** tables, which are not facts of the
# business but what the database needs to work safely: `idempotency_keys` (a retried
# request gets the stored result, notebook 05) and the ingestion's bookkeeping,
# `ingest_versions` (which snapshot of each object is applied), `ingest_pending` (records
# waiting for a parent) and `ingest_quarantine` (records refused, with the rule). Each
# table belongs to one subject area, and each area has a logical ER diagram of its own
# (`schemas/oltp_<area>.svg`), small enough for a screen: every table of the area with its
# key columns, and the tables of other areas it connects to as bare boxes. Dotted lines
# are columns that name another table without a foreign key (an event id that may not
# exist yet). Every column of every table is in `schemas/oltp.dictionary.md`.

# %%
areas = pd.DataFrame([{"subject area": SUBJECT_AREAS[t.subject_area], "table": t.name,
                       "grain": t.grain} for t in OLTP.tables])  # fmt: skip
assert areas["subject area"].nunique() == len(SUBJECT_AREAS) == 4
assert set(areas[areas["subject area"] == "Operational"]["table"]) == {
    "events", "idempotency_keys", "ingest_versions", "ingest_pending", "ingest_quarantine"}  # fmt: skip
areas.groupby("subject area", sort=False)["table"].apply(", ".join).to_frame("tables")

# %% [markdown]
# **Catalogue and billing**: who pays for what. Products and their prices, customers and
# their addresses, subscriptions with their items and discounts, invoices with their lines.

# %%
diagram("oltp_catalogue_billing")

# %% [markdown]
# **Payments**: how money is asked for and moved. A payment intent is attempted by
# charges on a payment method, pays invoices through invoice payments, and may be refunded
# or disputed.

# %%
diagram("oltp_payments")

# %% [markdown]
# **Ledger and payouts**: every movement of the balance, its fee lines, and the currencies
# and daily rates money is counted in.

# %%
diagram("oltp_ledger_payouts")

# %% [markdown]
# **Operational**: the event log and the tables introduced above. They have no foreign
# keys on purpose: an idempotency key may store an error about an object that does not
# exist, and a quarantined record may name objects that never arrive.

# %%
diagram("oltp_operational")

# %% [markdown]
# ## Step 2 · The physical model: `CREATE TABLE` per engine
#
# `schemas/oltp.duckdb.sql` and `schemas/oltp.postgresql.sql` hold the DDL each engine
# runs, generated from the model (`paymodel schemas --check` fails if they drift). Here is
# the ledger's table as DuckDB gets it:

# %%
assert check_schemas(SCHEMAS_DIR).ok
files = {name: (SCHEMAS_DIR / f"oltp.{name}.sql").read_text() for name in engines}
ledger_ddl = {name: create_table_statement(text, "balance_transactions")
              for name, text in files.items()}  # fmt: skip
print(ledger_ddl["duckdb"])

# %% [markdown]
# PostgreSQL's statement differs in two places: the ISO check is a regular-expression
# match written once in PostgreSQL's SQL and transpiled for DuckDB by sqlglot
# (`currency ~ '^[a-z]{3}$'` becomes `REGEXP_MATCHES(...)`), and the "at most one source"
# check is in PostgreSQL's DDL only (step 6 says why). The lines that differ, for this table
# and for `events`, whose JSON snapshots are `JSON` on DuckDB and `JSONB` on PostgreSQL:

# %%
def differing(table: str) -> pd.DataFrame:
    """The lines of ``table``'s CREATE TABLE that only one engine has."""
    lines = {n: create_table_statement(t, table).splitlines() for n, t in files.items()}
    only = {n: [line.strip().rstrip(",") for line in lines[n] if line not in lines[other]]
            for n, other in (("duckdb", "postgresql"), ("postgresql", "duckdb"))}  # fmt: skip
    return pd.DataFrame([{"table": table, "engine": n, "line": line}
                         for n, found in only.items() for line in found])  # fmt: skip


ddl_differences = pd.concat([differing("balance_transactions"), differing("events")])
lines_of = ddl_differences.groupby(["table", "engine"])["line"].apply(" ".join)
assert "REGEXP_MATCHES(currency" in lines_of["balance_transactions", "duckdb"]
assert "ck_balance_transactions_one_source" in lines_of["balance_transactions", "postgresql"]
assert "JSONB" in lines_of["events", "postgresql"]
ddl_differences.set_index(["table", "engine"])

# %% [markdown]
# ## Step 3 · Create the schema from the generated DDL
#
# `create_schema` runs the same `CREATE TABLE` statements that `schemas/` holds, parents
# first (DuckDB cannot add a foreign key later), then seeds the currencies.

# %%
for engine in engines.values():
    create_schema(engine)
tables = {name: set(sa.inspect(e).get_table_names()) for name, e in engines.items()}
operational = set(areas[areas["subject area"] == "Operational"]["table"]) - {"events"}
assert tables["duckdb"] == tables["postgresql"] == set(OLTP.table_names)
assert all(statement in files["duckdb"] for statement in statements(OLTP, "duckdb"))
print(f"{len(OLTP.table_names)} tables on both engines: {len(OLTP.table_names) - len(operational)} "
      f"from notebook 01 and {len(operational)} operational")  # fmt: skip

# %% [markdown]
# Each engine holds every key and check its DDL declares: the PostgreSQL catalog and
# DuckDB's `duckdb_constraints()` count as many of each kind as `declared_constraints`
# reads from the model for that engine. DuckDB holds fewer: a few references and checks
# are declared on PostgreSQL only (step 6 says why). And the names differ: PostgreSQL
# keeps the names the DDL gives (`ck_prices_currency_iso`), DuckDB replaces them with its
# own (`prices_currency_check`), which is why DuckDB's errors below quote a check's
# expression where PostgreSQL's name the constraint.

# %%
catalog_sql = {
    "postgresql": "select case contype when 'p' then 'PRIMARY KEY' when 'u' then 'UNIQUE' "
    "when 'f' then 'FOREIGN KEY' when 'c' then 'CHECK' end, conname from pg_constraint c "
    "join pg_namespace n on n.oid = c.connamespace where n.nspname = 'public'",
    "duckdb": "select constraint_type, constraint_name from duckdb_constraints()",
}
catalog, declared = {}, {}
for name, engine in engines.items():
    with engine.connect() as conn:
        catalog[name] = conn.execute(sa.text(catalog_sql[name])).all()
    declared[name] = declared_constraints(name)
kinds = ["PRIMARY KEY", "UNIQUE", "FOREIGN KEY", "CHECK"]
constraint_counts = pd.DataFrame({
    f"{name} {source}": {k: sum(row[-1] == k if source == "declared" else row[0] == k
                                for row in rows) for k in kinds}
    for name in engines
    for source, rows in (("declared", declared[name]), ("catalog", catalog[name]))
})  # fmt: skip
for name in engines:
    assert (constraint_counts[f"{name} declared"] == constraint_counts[f"{name} catalog"]).all()
assert {n for _, n, _ in declared["postgresql"]} <= {n for _, n in catalog["postgresql"]}
assert not {n for _, n, _ in declared["duckdb"]} & {n for _, n in catalog["duckdb"]}
constraint_counts

# %% [markdown]
# ## Step 4 · A valid story is accepted
#
# One customer with a card pays one invoice: a payment intent, its invoice payment, its
# charge and the balance transaction with Stripe's fee. Every row satisfies every
# constraint, on both engines.

# %%
for engine in engines.values():
    insert_valid_rows(engine)
counts = {}
for name, engine in engines.items():
    tables_ = oltp_tables(engine)
    with engine.connect() as conn:
        counts[name] = {t: conn.execute(sa.select(sa.func.count()).select_from(tables_[t])).scalar()
                        for t in valid_rows()}  # fmt: skip
assert counts["duckdb"] == counts["postgresql"] == {t: len(r) for t, r in valid_rows().items()}
pd.DataFrame(counts)

# %% [markdown]
# ## Step 5 · Each constraint refuses a bad row, with the engine's own error
#
# For each case, a valid row is tried first (accepted), then the same row with one change
# that breaks one constraint. Both are rolled back. DuckDB raises
# `duckdb.ConstraintException` for every kind and quotes the check's expression;
# PostgreSQL raises one class per SQLSTATE and names the constraint.

# %%
results = []
for case in CASES:
    for name, engine in engines.items():
        result = run_case(engine, case)
        assert result.valid.accepted, (case.name, name, result.valid.message)
        assert isinstance(result.bad.error, expected_error(name, case.kind)), (case.name, name)
        if name == "postgresql" and case.constraint:
            assert result.bad.error.diag.constraint_name == case.constraint
        results.append({"constraint": case.name, "engine": name,
                        "error": result.bad.error_type, "message": result.bad.message})  # fmt: skip
refusals = pd.DataFrame(results)
assert len(refusals) == 2 * len(CASES)
assert {c.kind for c in CASES} == {"not_null", "primary_key", "unique", "foreign_key", "check"}
refusals.set_index(["constraint", "engine"])

# %% [markdown]
# ## Step 6 · Where the engines differ
#
# **Cascades and deferrable constraints.** PostgreSQL accepts `ON DELETE CASCADE` and
# `DEFERRABLE INITIALLY DEFERRED`; DuckDB's parser refuses the first and it does not
# implement the second. So the model declares neither: deletes go child-first, and
# parents are inserted before children (the model has no reference cycles).

# %%
ddl = {"ON DELETE CASCADE": CASCADE_DDL, "DEFERRABLE": DEFERRABLE_DDL}
differences = {
    (feature, name): try_ddl(engine, statements_)
    for feature, statements_ in ddl.items()
    for name, engine in engines.items()
}
assert differences["ON DELETE CASCADE", "postgresql"].accepted
assert differences["DEFERRABLE", "postgresql"].accepted
assert differences["ON DELETE CASCADE", "duckdb"].error_type == "duckdb.ParserException"
assert differences["DEFERRABLE", "duckdb"].error_type == "duckdb.NotImplementedException"
nulls(pd.DataFrame(
    [{"feature": f, "engine": n, "accepted": o.accepted, "error": o.error_type, "message": o.message}
     for (f, n), o in differences.items()]
))  # fmt: skip

# %% [markdown]
# **Updating a referenced row's key column.** `UPDATE customers SET id = id` changes
# nothing, yet DuckDB refuses it because `payment_methods` (and others) reference
# `cus_demo1`: DuckDB rewrites an indexed (PRIMARY KEY or UNIQUE) column as a delete plus
# an insert, and the delete trips the foreign key. PostgreSQL accepts it. Hence the
# project's rule: update only the columns that change, never the key, and keep UNIQUE off
# mutable columns of referenced tables (why `subscription_items` has no unique
# `(subscription_id, price_id)`).

# %%
same_value = {name: update_key_to_same_value(e, "customers", "id", "cus_demo1")
              for name, e in engines.items()}  # fmt: skip
assert same_value["postgresql"].accepted
assert same_value["duckdb"].error_type == "duckdb.ConstraintException"
assert "still referenced by a foreign key" in same_value["duckdb"].message
unreferenced = update_key_to_same_value(engines["duckdb"], "balance_transactions", "id", "txn_demo1")
assert unreferenced.accepted
display(Markdown(f"DuckDB: `{same_value['duckdb'].message}`"))

# %% [markdown]
# **Constraints declared on PostgreSQL only.** That DuckDB limit reaches further: a
# foreign key on a column that changes while its row is referenced (a payment method is
# detached from its customer, a subscription item changes price, a payment balance
# transaction is settled by a payout later), or a multi-column check on an indexed
# column, would make ordinary updates fail on DuckDB. The model declares those on
# PostgreSQL only (`ForeignKey.dialects`, `Check.dialects`), with the UNIQUE key such a
# foreign key refers to (`payment_intents (id, customer_id)`, the target of the agreement
# key that makes a charge's customer its payment intent's), and on DuckDB the payment
# flows and the ingester enforce them instead. On DuckDB the database itself lets such a
# bad row in.

# %%
postgres_only = sorted(set(declared["postgresql"]) - set(declared["duckdb"]))
assert postgres_only
assert all(kind in ("FOREIGN KEY", "CHECK") for _, _, kind in postgres_only if kind != "UNIQUE")
assert [c for _, c, kind in postgres_only if kind == "UNIQUE"] == ["uq_payment_intents_id_customer_id"]
only_pg = {name: run_case(e, POSTGRES_ONLY_CASE) for name, e in engines.items()}
assert only_pg["duckdb"].valid.accepted
assert only_pg["postgresql"].valid.accepted
assert only_pg["duckdb"].bad.accepted  # DuckDB does not check this reference
assert isinstance(only_pg["postgresql"].bad.error, expected_error("postgresql", "foreign_key"))
display(Markdown(f"{POSTGRES_ONLY_CASE.name}: DuckDB accepts it; PostgreSQL: "
                 f"`{only_pg['postgresql'].bad.message}`"))  # fmt: skip
pd.DataFrame(postgres_only, columns=["table", "constraint", "kind"])

# %%
stack.close()

# %% [markdown]
# ## Summary
#
# - The logical model has four subject areas, each with a diagram a screen holds; the
#   operational tables (idempotency keys, the ingestion's bookkeeping) sit beside the
#   event log.
# - The physical model is the generated DDL of `schemas/`: the same tables on DuckDB and
#   PostgreSQL, with every key and check declared for each; checks are written once and
#   transpiled, and the two engines' `CREATE TABLE` differ where shown. PostgreSQL keeps
#   the constraint names, DuckDB makes up its own.
# - A valid story is accepted; each constraint kind, and each money rule (`net = amount -
#   fee`, `amount_refunded <= amount_captured <= amount`, `amount_remaining = amount_due -
#   amount_paid`, non-negative amounts, lowercase currency codes, accepted statuses),
#   refuses a bad row on both engines with the engine's own error.
# - DuckDB has no cascades and no deferrable constraints, and refuses a key update of a
#   referenced row even to the same value. So a few references and checks are declared on
#   PostgreSQL only, and the payment flows enforce them on DuckDB.
#
# Next: [04 · Synthetic data](04_synthetic_data.ipynb) generates a whole Stripe account
# and loads it into this schema. (Notebook 05 then runs the payment flows, on an empty
# schema of its own.)
