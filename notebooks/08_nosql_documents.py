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
# # 08 · Documents: TinyDB that survives crashes, with search, schemas and a PostgreSQL JSONB twin
#
# Some payments data is better kept as documents: Stripe's events (their payload varies by
# type and a log is read as it came), a customer 360 read whole, clickstream bucketed per
# day, free-text feedback. This notebook designs those collections from their access
# patterns and shows:
#
# 1. the **access patterns** first, then each collection's **document shape** and why
#    (embedding against referencing, with measured sizes and read costs);
# 2. **validation** refusing a bad document with its path and rule, writing nothing;
# 3. **schema versioning**: a version 1 profile read and migrated to version 2;
# 4. **a query for every access pattern**, on TinyDB and on the PostgreSQL JSONB twin, which
#    answer the same;
# 5. a **keyword search** with ranked results (BM25 on TinyDB, `tsvector` on PostgreSQL);
# 6. the **same question** answered by the document store and by the relational model;
# 7. **where TinyDB stops being the right tool**, measured.
#
# Every claim below is asserted, so running this notebook is a test.

# %%
import json
import time
from contextlib import ExitStack
from pathlib import Path

import duckdb
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display
from matplotlib.ticker import (
    FixedLocator,
    FuncFormatter,
    LogLocator,
    NullFormatter,
    NullLocator,
    ScalarFormatter,
)

from paymodel.display import configure
from paymodel.documents import (
    InvalidDocuments,
    build_documents,
    erase_customer,
    migrate_profiles,
    open_store,
    profile_v1,
    read_profile,
)
from paymodel.documents.measure import growth_costs
from paymodel.documents.postgres_store import index_ddl
from paymodel.documents.search import LABELLED_QUERIES, search_quality
from paymodel.model.documents import COLLECTIONS, FEATURE_SET_VERSION, RECENT_CHARGES
from paymodel.olap import build_warehouse, resolve_pii_key
from paymodel.oltp.engines import (
    drop_postgres_database,
    dsn_database,
    fresh_postgres_database,
    temporary_postgres,
)
from paymodel.oltp.ingest import open_target
from paymodel.synthetic import generate
from paymodel.synthetic.load import load_into_oltp

configure()  # whole values in tables: no '...' cutting a rule or an error

# %% tags=["parameters"]
pg_dsn = None  # None: start an embedded PostgreSQL for this notebook
out_dir = "build/notebooks/08"
scale = 0.02
seed = 0
growth_sizes = [500, 2000, 8000]

# %% [markdown]
# ## Setup
#
# A small account is generated (`scale` 0.02, about 200 customers), loaded into an OLTP
# DuckDB file, and its warehouse is built (`paymodel olap`; synthetic data, so identifiers
# are hashed with the published demo key unless `PAYMODEL_PII_KEY` is set). The collections
# are built from the three into a folder of TinyDB files (one per collection) and into a
# PostgreSQL database of their own on the server of `pg_dsn` (dropped at the end), exactly
# as `paymodel documents` does.

# %%
out = Path(out_dir)
out.mkdir(parents=True, exist_ok=True)
resources = ExitStack()
if pg_dsn is None:
    pg_dsn = fresh_postgres_database(resources.enter_context(temporary_postgres()))
docs_dsn = fresh_postgres_database(pg_dsn)
resources.callback(drop_postgres_database, pg_dsn, dsn_database(docs_dsn))
data = out / "data"
generate(data, scale=scale, seed=seed, progress=False)
oltp_path = out / "oltp.duckdb"
oltp_path.unlink(missing_ok=True)
engine = open_target(str(oltp_path))
load_into_oltp(data, engine)
engine.dispose()
warehouse = out / "warehouse.duckdb"
pii_key = resolve_pii_key(demo=True)
print(build_warehouse(str(oltp_path), str(warehouse), pii_key=pii_key))
tiny_dir = out / "documents"
built = build_documents(str(oltp_path), data, tiny_dir, warehouse=warehouse, pii_key=pii_key.key, progress=False)
build_documents(str(oltp_path), data, docs_dsn, warehouse=warehouse, pii_key=pii_key.key, progress=False)
print(built)
assert all(not r.rejected for r in built.reports.values())

# %% [markdown]
# ## 1. Access patterns first
#
# A document design starts from the questions, not from the entities: each collection's
# grain and key, and each question it must answer beyond reading by key. The PostgreSQL twin
# creates one index per question (below); TinyDB scans.

# %%
patterns = pd.DataFrame(
    [
        {"collection": c.name, "grain": c.grain, "key": c.key,
         "question": ix.pattern, "path": ix.path, "index kind": ix.kind}
        for c in COLLECTIONS.values()
        for ix in (c.indexes or [None])
        if ix is not None
    ]
    + [{"collection": "customer_profiles", "grain": COLLECTIONS["customer_profiles"].grain,
        "key": "customer_id", "question": "the whole customer by id", "path": "customer_id",
        "index kind": "primary key"}]
)
display(patterns)
assert set(patterns["collection"]) == set(COLLECTIONS)

# %%
for statement in index_ddl(COLLECTIONS["events"]):
    print(statement.as_string(None) + ";")

# %% [markdown]
# ## 2. Each document's shape, and why
#
# **events** are kept exactly as Stripe sent them, with `data.object` of any type: the JSON
# Schema fixes only the envelope and lets fields Stripe adds later through. **behaviour**
# buckets a customer's clicks per day: one document per customer-day instead of one per
# click, with the day's counts computed once. **feedback** references its charge or dispute
# by id (the charge lives in OLTP and changes there). **customer_profiles** embeds what is
# read with the customer and bounded in number (payment methods, a subscription summary,
# the last 10 charges) and computes the lifetime totals. **ml_features** holds one customer's
# churn and fraud features as of the warehouse's build, under a feature-set version, with
# the customer only as the warehouse's keyed hash. A behaviour bucket, a feature document,
# and the sizes of all:

# %%
with open_store(tiny_dir, read_only=True) as tiny:
    samples = {name: tiny.collection(name).all()[0] for name in COLLECTIONS}
    sizes = {
        name: pd.Series([len(json.dumps(d)) for d in tiny.collection(name).all()])
        for name in COLLECTIONS
    }
    profiles = tiny.collection("customer_profiles").all()
sample_profile = max(profiles, key=lambda p: p["lifetime"]["charges"])
print(json.dumps(samples["behaviour"] | {"events": samples["behaviour"]["events"][:2]}, indent=1)[:1200])
print(json.dumps(samples["ml_features"], indent=1))
assert "cus_" not in (tiny_dir / "ml_features.json").read_text(), "no customer id in clear"
display(pd.DataFrame({n: s.describe()[["count", "mean", "50%", "max"]] for n, s in sizes.items()}).T.round(0)
        .rename(columns={"50%": "median"}).rename_axis("JSON bytes per document"))  # fmt: skip

# %% [markdown]
# **Embed or reference, measured.** Version 1 of the profile embedded *every* charge; its
# size grows with the customer's history, without bound. Version 2 keeps the last
# `RECENT_CHARGES` (subset pattern) and the totals (computed pattern). Both are built from
# the same OLTP rows here, for every customer:

# %%
con = duckdb.connect(str(oltp_path), read_only=True)
charges = con.execute(
    "SELECT customer_id, id, strftime(created, '%Y-%m-%dT%H:%M:%SZ') AS created, amount, currency, "
    "status, amount_refunded, disputed FROM charges WHERE customer_id IS NOT NULL"
).arrow().read_all().to_pandas()
by_customer = {k: g.drop(columns="customer_id").to_dict("records") for k, g in charges.groupby("customer_id")}
versions = pd.DataFrame(
    [
        {
            "charges": p["lifetime"]["charges"],
            "v1 bytes": len(json.dumps(profile_v1(
                {"id": p["customer_id"], **p["contact"], "currency": p["currency"],
                 "created": p["created"], "delinquent": p["delinquent"]},
                p["payment_methods"], [], by_customer.get(p["customer_id"], [])))),
            "v2 bytes": len(json.dumps(p)),
        }
        for p in profiles
    ]
)
fig, ax = plt.subplots(figsize=(7, 3.8))
ax.scatter(versions["charges"], versions["v1 bytes"] / 1000, s=10, label="v1: every charge embedded")
ax.scatter(versions["charges"], versions["v2 bytes"] / 1000, s=10, label=f"v2: last {RECENT_CHARGES} + totals")
ax.set_xlabel("charges of the customer (count)")
ax.set_ylabel("profile size (kB of JSON)")
ax.set_title(f"Profile size against history, {len(versions)} customers")
ax.legend(loc="upper left")
fig.tight_layout()
fig.savefig(out / "profile_sizes.png", dpi=100)
plt.show()
big = versions[versions["charges"] > 2 * RECENT_CHARGES]
slope_v1 = (big["v1 bytes"] / big["charges"]).median()
small = versions[versions["charges"] < RECENT_CHARGES]
print(f"{len(big)} customers with more than {2 * RECENT_CHARGES} charges: v1 median "
      f"{big['v1 bytes'].median():.0f} B, v2 median {big['v2 bytes'].median():.0f} B; "
      f"v1 grows about {slope_v1:.0f} B per charge. Below {RECENT_CHARGES} charges v2 is the larger "
      f"for {(small['v2 bytes'] > small['v1 bytes']).mean():.0%} of {len(small)} customers "
      "(it also carries the address and the totals).")  # fmt: skip
assert len(big) > 0
assert (big["v2 bytes"] < big["v1 bytes"]).all()
assert versions["v2 bytes"].max() < versions["v1 bytes"].max()
assert (small["v2 bytes"] > small["v1 bytes"]).mean() > 0.5

# %% [markdown]
# **Read cost.** The document answers "everything about this customer" in one read by key;
# the relational model needs five queries (customer, payment methods, subscriptions, last
# charges, totals). Mean over the same 50 customers, on this machine:

# %%
sample_ids = sorted(p["customer_id"] for p in profiles)[:50]
relational_read = [
    "SELECT * FROM customers WHERE id = $1",
    "SELECT * FROM payment_methods WHERE customer_id = $1",
    "SELECT * FROM subscriptions WHERE customer_id = $1",
    "SELECT * FROM charges WHERE customer_id = $1 ORDER BY created DESC, id DESC LIMIT 10",
    "SELECT currency, count(*), sum(amount) FILTER (WHERE status = 'succeeded') FROM charges "
    "WHERE customer_id = $1 GROUP BY currency",
]


def mean_ms(fn):
    t0 = time.perf_counter()
    for cid in sample_ids:
        fn(cid)
    return 1000 * (time.perf_counter() - t0) / len(sample_ids)


with open_store(tiny_dir, read_only=True) as tiny, open_store(docs_dsn) as pg:
    tiny.collection("customer_profiles").get(sample_ids[0])  # first read loads the file
    read_costs = pd.Series({
        "TinyDB: get(profile)": mean_ms(tiny.collection("customer_profiles").get),
        "PostgreSQL JSONB: get(profile)": mean_ms(pg.collection("customer_profiles").get),
        "DuckDB OLTP: 5 queries": mean_ms(lambda c: [con.execute(q, [c]).fetchall() for q in relational_read]),
    }).round(3).rename("ms per customer")  # fmt: skip
display(read_costs.to_frame())
assert read_costs["TinyDB: get(profile)"] < read_costs["DuckDB OLTP: 5 queries"]

# %% [markdown]
# ## 3. Validation refuses a bad document, and writes nothing of it
#
# Every write is validated against the collection's JSON Schema (rendered into
# `schemas/documents/` by `paymodel schemas`; the validator is jsonschema-rs, picked by
# `benchmarks/bench_validation.py`). PCI DSS forbids keeping a card number: the card object
# is closed, so a profile carrying one cannot be written. The error names the document, the
# path and the rule.

# %%
leaky = json.loads(json.dumps(sample_profile))
card_pm = next(pm for pm in leaky["payment_methods"] if pm["card"])
card_pm["card"]["number"] = "4242424242424242"
leaky["recent_charges"][0]["amount"] = -1
with open_store(out / "scratch") as scratch:
    profiles_c = scratch.collection("customer_profiles")
    try:
        profiles_c.insert([sample_profile, leaky])
    except InvalidDocuments as err:
        refusal = err
    print(refusal)
    rules = {(e.path, e.rule) for e in refusal.errors}
    card_path = f"/payment_methods/{leaky['payment_methods'].index(card_pm)}/card"
    assert (card_path, "additionalProperties") in rules
    assert ("/recent_charges/0/amount", "minimum") in rules
    assert profiles_c.count() == 0, "the good profile of the refused batch was not written either"
    report = profiles_c.insert([sample_profile, leaky], on_invalid="skip")
    print(report)
    assert (report.written, report.rejected_keys) == (1, [leaky["customer_id"]])

# %% [markdown]
# ## 4. Schema versioning: a version 1 profile, read and migrated
#
# Both versions may sit in the collection at once. `read_profile` upgrades an old document
# as it reads it; `migrate_profiles` rewrites the old ones in place when convenient.

# %%
cid = sample_profile["customer_id"]
with open_store(out / "scratch") as scratch:
    old = profile_v1({"id": cid, **sample_profile["contact"], "currency": sample_profile["currency"],
                      "created": sample_profile["created"], "delinquent": sample_profile["delinquent"]},
                     sample_profile["payment_methods"], [], by_customer[cid])  # fmt: skip
    scratch.collection("customer_profiles").insert([old])
    upgraded = read_profile(scratch, cid)
    print(f"stored: version {scratch.collection('customer_profiles').get(cid)['schema_version']}, "
          f"{len(old['charges'])} charges embedded; read: version {upgraded['schema_version']}, "
          f"{len(upgraded['recent_charges'])} recent charges")  # fmt: skip
    assert upgraded["recent_charges"] == sample_profile["recent_charges"]
    assert upgraded["lifetime"] == sample_profile["lifetime"]
    migrated = migrate_profiles(scratch)
    assert migrated == 1
    assert scratch.collection("customer_profiles").get(cid)["schema_version"] == 2

# %% [markdown]
# ## 5. A query for every access pattern, on both stores
#
# The same calls run on the TinyDB folder and on the PostgreSQL twin; the answers are equal.

# %%
with open_store(tiny_dir, read_only=True) as tiny:
    charge_event = tiny.collection("events").find({"type": "charge.succeeded"}, limit=1)[0]
    object_id = charge_event["data"]["object"]["id"]
    t0 = charge_event["created"]
    busy_customer = max(profiles, key=lambda p: p["lifetime"]["charges"])["customer_id"]
    day = samples["behaviour"]["day"]
    questions = {
        "events by type (charge.refunded)": lambda s: s["events"].find({"type": "charge.refunded"}),
        f"events about {object_id}": lambda s: s["events"].find({"data.object.id": object_id}, order_by="created"),
        "events in the hour after it": lambda s: s["events"].find(between=("created", t0, t0 + 3600)),
        f"profile of {busy_customer}": lambda s: [s["customer_profiles"].get(busy_customer)],
        f"behaviour of {busy_customer}": lambda s: s["behaviour"].find({"customer_id": busy_customer}),
        f"behaviour on {day}": lambda s: s["behaviour"].find({"day": day}),
        f"feedback of {busy_customer}": lambda s: s["feedback"].find({"customer_id": busy_customer}),
        "feedback tagged billing": lambda s: s["feedback"].find(contains=("tags", "billing")),
        f"ml_features, version {FEATURE_SET_VERSION}": lambda s: s["ml_features"].find(
            {"feature_set_version": FEATURE_SET_VERSION}
        ),
    }
    with open_store(docs_dsn) as pg:
        answers = pd.DataFrame(
            [{"question": q, "documents (TinyDB)": len(ask(tiny)), "documents (PostgreSQL)": len(ask(pg)),
              "same answer": ask(tiny) == ask(pg)} for q, ask in questions.items()]
        )
display(answers)
assert answers["same answer"].all()
assert (answers["documents (TinyDB)"] > 0).all()

# %% [markdown]
# On PostgreSQL each question has its index. With a few hundred rows the planner rightly
# prefers a scan, so plans are shown with sequential scans disabled, to prove the indexes
# match the queries' expressions:

# %%
with open_store(docs_dsn) as pg:
    pg.conn.execute("SET enable_seqscan = off")
    plan = pg.conn.execute(
        "EXPLAIN SELECT doc FROM documents.events WHERE (((doc -> 'data') -> 'object') -> 'id') = %s::jsonb",
        (json.dumps(object_id),),
    ).fetchall()
print("\n".join(r[0] for r in plan))
assert "events_data_object_id_btree" in " ".join(r[0] for r in plan)

# %% [markdown]
# ## 6. Keyword search, ranked
#
# Feedback is searched by relevance: BM25 with English stemming (`bm25s`) on TinyDB,
# `tsvector` with a GIN index and `ts_rank_cd` on PostgreSQL. A question a support agent
# might type:

# %%
query = "customer says the card got declined, wants a retry"
with open_store(tiny_dir, read_only=True) as tiny, open_store(docs_dsn) as pg:
    for label, store in (("TinyDB (BM25)", tiny), ("PostgreSQL (ts_rank_cd)", pg)):
        hits = store.collection("feedback").search(query, limit=5)
        display(Markdown(f"**{label}**"))
        display(pd.DataFrame([{"score": round(h.score, 3), "feedback": h.doc["feedback_id"],
                               "tags": ", ".join(h.doc["tags"]), "text": h.doc["text"]} for h in hits]))  # fmt: skip
        assert "declined" in hits[0].doc["text"]
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    quality = {label: search_quality(store.collection("feedback"))
               for label, store in (("TinyDB (BM25)", tiny), ("PostgreSQL (ts_rank_cd)", pg))}  # fmt: skip
for label, (hits_n, asked) in quality.items():
    print(f"{label}: best match relevant for {hits_n} of {asked} held labelled queries")
assert all(asked >= len(LABELLED_QUERIES) // 2 for _, asked in quality.values())
assert all(h / a >= 0.8 for h, a in quality.values())

# %% [markdown]
# ## 7. The same question, document store against relational model
#
# *"What are this customer's last 10 charges, and how much did they pay in each currency?"*
# The profile answers with one read; the OLTP model with two queries. The answers agree.

# %%
with open_store(tiny_dir, read_only=True) as tiny:
    doc = tiny.collection("customer_profiles").get(busy_customer)
doc_side = pd.DataFrame(doc["recent_charges"])[["id", "created", "amount", "currency", "status"]]
sql_side = con.execute(relational_read[3], [busy_customer]).arrow().read_all().to_pandas()
totals_sql = dict(con.execute(
    "SELECT currency, sum(amount) FROM charges WHERE customer_id = $1 AND status = 'succeeded' GROUP BY 1",
    [busy_customer]).fetchall())  # fmt: skip
display(pd.concat({"document": doc_side.set_index("id")[["amount", "currency"]],
                   "relational": sql_side.set_index("id")[["amount", "currency"]]}, axis=1))  # fmt: skip
assert list(doc_side["id"]) == list(sql_side["id"])
assert {c: t["charged"] for c, t in doc["lifetime"]["by_currency"].items() if t["charged"]} == totals_sql

# %% [markdown]
# ## 8. Erasure
#
# `erase_customer` removes a customer's documents from every collection (events about the
# customer's objects included; in ml_features the document of the customer's keyed hash,
# so it needs the warehouse's key), the hook a later erasure of every layer calls.

# %%
with open_store(out / "scratch") as scratch:
    scratch.collection("customer_profiles").insert([sample_profile])
    with open_store(tiny_dir, read_only=True) as tiny:
        scratch.collection("feedback").insert(tiny.collection("feedback").find({"customer_id": cid}))
    erased = erase_customer(scratch, cid, pii_key=pii_key.key)
    print(erased)
    assert erased["customer_profiles"] == 1
    assert scratch.collection("customer_profiles").get(cid) is None
    assert scratch.collection("feedback").find({"customer_id": cid}) == []

# %% [markdown]
# ## 9. Where TinyDB stops being the right tool
#
# TinyDB keeps the whole collection in one JSON file and rewrites it on every write; every
# query other than by key scans it. As the feedback collection grows: the bytes one added
# document puts on disk (TinyDB: the whole file; PostgreSQL: the write-ahead log it
# appends), the time of that insert, and the time of one query by customer (best of 5 on
# this shared machine, so the times are noisy; the bytes are not):

# %%
with open_store(tiny_dir, read_only=True) as tiny:
    feedback_docs = tiny.collection("feedback").all()
costs = pd.DataFrame(growth_costs(
    "feedback", feedback_docs, growth_sizes,
    lambda c: c.find({"customer_id": feedback_docs[0]["customer_id"]}),
    {"TinyDB": lambda tmp: str(tmp), "PostgreSQL JSONB": lambda tmp: docs_dsn}, repeat=5,
))  # fmt: skip
display(costs.round(2))
fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
costs["kb_written"] = costs["bytes_written"] / 1000
panels = (("kb_written", "bytes written by one insert", "kilobytes (log scale)"),
          ("insert_one_ms", "time of one insert", "milliseconds (log scale)"),
          ("query_ms", "one query by customer", "milliseconds (log scale)"))  # fmt: skip
for ax, (column, title, unit) in zip(axes, panels, strict=True):
    for store_name, g in costs.groupby("store"):
        ax.plot(g["documents"], g[column], marker="o", label=store_name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(FixedLocator(growth_sizes))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("documents in the collection (log scale)")
    ax.set_ylabel(unit)
    ax.set_title(title)
    ax.legend(loc="best")
fig.tight_layout()
fig.savefig(out / "tinydb_growth.png", dpi=100)
plt.show()
tiny_costs = costs[costs["store"] == "TinyDB"].set_index("documents")
pg_costs = costs[costs["store"] == "PostgreSQL JSONB"].set_index("documents")
grow = tiny_costs["bytes_written"].iloc[-1] / tiny_costs["bytes_written"].iloc[0]
n_ratio = growth_sizes[-1] / growth_sizes[0]
print(f"TinyDB: one insert writes {tiny_costs['bytes_written'].iloc[-1] / 1e6:.1f} MB at "
      f"{growth_sizes[-1]:,} documents, {grow:.0f}x what it wrote at {growth_sizes[0]:,} ({n_ratio:.0f}x "
      f"the documents); PostgreSQL writes {pg_costs['bytes_written'].iloc[-1]:,.0f} bytes of WAL. "
      f"A query by customer: TinyDB {tiny_costs['query_ms'].iloc[-1]:.1f} ms, PostgreSQL "
      f"{pg_costs['query_ms'].iloc[-1]:.1f} ms at {growth_sizes[-1]:,} documents.")  # fmt: skip
assert grow > n_ratio / 2, "a TinyDB write rewrites the whole collection"
assert pg_costs["bytes_written"].max() * 10 < tiny_costs["bytes_written"].iloc[-1]
assert tiny_costs["query_ms"].iloc[-1] > tiny_costs["query_ms"].iloc[0], "a TinyDB query scans"

# %%
(out / "summary.json").write_text(json.dumps({
    "built": {n: r.written for n, r in built.reports.items()},
    "search_quality": quality, "read_costs_ms": read_costs.to_dict(),
}, indent=2))  # fmt: skip
con.close()
resources.close()

# %% [markdown]
# ## What this showed
#
# * Each collection was designed from its access patterns; the PostgreSQL twin has one index
#   per pattern (expression B-trees, GIN on an array, GIN on a `tsvector`).
# * ml_features came from the warehouse with no customer id in clear.
# * Embedding every charge (profile version 1) grows without bound; version 2's subset and
#   computed totals stay bounded, and one read by key beat the relational five-query read.
# * A profile carrying a card number, or a negative amount, was refused with its path and
#   rule, and nothing of the batch was written unless the caller asked for the good ones.
# * A version 1 profile was read as version 2 and migrated in place.
# * Every access pattern gave the same answer on TinyDB and on PostgreSQL JSONB.
# * Keyword search ranked a relevant ticket first for most of the held labelled queries, on
#   both stores.
# * The document store and the relational model gave the same last charges and totals.
# * One TinyDB insert rewrote the whole file, so its cost grew with the collection, and its
#   queries scanned; PostgreSQL appended a few kilobytes of WAL and used its indexes. Past a
#   few thousand documents per file, for many small writes, or with more than one writer,
#   the PostgreSQL twin is the store.
#
# This is the last notebook so far: the [reading order](README.md) lists them all.
