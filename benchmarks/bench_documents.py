"""Every access pattern of the document collections on TinyDB, PostgreSQL JSONB and DuckDB tables.

For each collection: take the documents built from a generated folder, clone them (ids
suffixed, so per-customer questions keep their size) up to ``--n`` documents, load them
into a TinyDB store, a PostgreSQL JSONB store (embedded server, or PAYMODEL_PG_DSN) and,
flattened into relational tables, an in-memory DuckDB database; then answer each access
pattern for the same sampled parameters on all three, in one run, and print the mean
latency and the ratios to DuckDB. Then search latency and quality on feedback: the share
of the held set of labelled queries (paymodel.documents.search.LABELLED_QUERIES) whose
best match is a relevant document, for BM25 (TinyDB), tsvector (PostgreSQL), and DuckDB
without full-text search (any-word ILIKE, no ranking: the pinned DuckDB has no fts).

    .venv/bin/paymodel generate --scale 0.1 --out build/data
    .venv/bin/paymodel load build/data --db build/oltp.duckdb
    .venv/bin/paymodel olap build/oltp.duckdb --out build/warehouse.duckdb --demo
    .venv/bin/python benchmarks/bench_documents.py --data build/data --db build/oltp.duckdb \
        --warehouse build/warehouse.duckdb --n 100000
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import random
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pandas as pd

from paymodel.documents import open_store
from paymodel.documents.build import (
    behaviour_documents,
    event_documents,
    feedback_documents,
    oltp_links,
    profile_documents,
)
from paymodel.documents.measure import clone_documents
from paymodel.documents.search import LABELLED_QUERIES
from paymodel.oltp.engines import (
    PG_DSN_ENV,
    duckdb_engine,
    fresh_postgres_database,
    temporary_postgres,
)


def _bound(query: Callable[[Any, Any], Any], collection: Any) -> Callable[[Any], Any]:
    return lambda value: query(collection, value)


def _mean_ms(fn: Callable[[Any], Any], params: list[Any]) -> float:
    """Mean latency over ``params``, after one untimed call (caches, search index, plans)."""
    fn(params[0])
    times = []
    for p in params:
        t0 = time.perf_counter()
        fn(p)
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.fmean(times)


def _relational(name: str, docs: list[dict[str, Any]]) -> dict[str, pd.DataFrame]:
    """The same data as relational tables (what the OLTP model or a clickstream table holds)."""
    if name == "events":
        return {"events": pd.DataFrame({
            "id": [d["id"] for d in docs], "type": [d["type"] for d in docs],
            "created": [d["created"] for d in docs], "object_id": [d["data"]["object"]["id"] for d in docs],
            "payload": [orjson.dumps(d).decode() for d in docs]})}  # fmt: skip
    if name == "customer_profiles":
        cust = [
            {
                "id": d["customer_id"],
                **d["contact"],
                "currency": d["currency"],
                "created": d["created"],
            }
            for d in docs
        ]
        pms = [{"customer_id": d["customer_id"], "id": p["id"], "type": p["type"],
                **(p["card"] or {})} for d in docs for p in d["payment_methods"]]  # fmt: skip
        subs = [
            {"customer_id": d["customer_id"], **s}
            for d in docs
            for s in d["subscriptions"]["current"]
        ]
        charges = [
            {"customer_id": d["customer_id"], **c} for d in docs for c in d["recent_charges"]
        ]
        return {"customers": pd.DataFrame(cust), "payment_methods": pd.DataFrame(pms),
                "subscriptions": pd.DataFrame(subs), "charges": pd.DataFrame(charges)}  # fmt: skip
    if name == "behaviour":
        rows = [{"customer_id": d["customer_id"], "day": d["day"], **{k: v for k, v in e.items() if k != "feature"}}
                for d in docs for e in d["events"]]  # fmt: skip
        return {"clicks": pd.DataFrame(rows)}
    if name == "ml_features":
        return {"features": pd.DataFrame([{"feature_id": d["feature_id"], "subject": d["subject"],
                 "feature_set_version": d["feature_set_version"], "as_of": d["as_of"],
                 **{f"{g}_{k}": v for g in ("churn", "payments", "fraud") for k, v in d[g].items()}}
                for d in docs])}  # fmt: skip
    fb = pd.DataFrame([{k: d[k] for k in ("feedback_id", "customer_id", "created", "channel", "rating", "text")}
                       for d in docs])  # fmt: skip
    tags = pd.DataFrame(
        [{"feedback_id": d["feedback_id"], "tag": t} for d in docs for t in d["tags"]]
    )
    return {"feedback": fb, "feedback_tags": tags}


def _patterns(
    name: str, docs: list[dict[str, Any]], rng: random.Random, k: int
) -> list[tuple[str, list, Callable, Callable]]:
    """(pattern, params, document query, DuckDB query) for the collection."""

    def pick(values: Any) -> list:
        distinct = sorted(set(values))
        return rng.sample(distinct, min(k, len(distinct)))

    if name == "events":
        t = [d["created"] for d in docs]
        return [
            ("events by type", pick(d["type"] for d in docs),
             lambda s, p: s.find({"type": p}), "SELECT payload FROM events WHERE type = ? ORDER BY id"),
            ("events of one object", pick(d["data"]["object"]["id"] for d in docs),
             lambda s, p: s.find({"data.object.id": p}), "SELECT payload FROM events WHERE object_id = ? ORDER BY id"),
            ("events in one hour", [rng.randint(min(t), max(t)) for _ in range(k)],
             lambda s, p: s.find(between=("created", p, p + 3600)),
             "SELECT payload FROM events WHERE created >= ? AND created < ? + 3600 ORDER BY id"),
        ]  # fmt: skip
    if name == "customer_profiles":
        return [("customer 360 by id", pick(d["customer_id"] for d in docs), lambda s, p: s.get(p), [
            "SELECT * FROM customers WHERE id = ?",
            "SELECT * FROM payment_methods WHERE customer_id = ?",
            "SELECT * FROM subscriptions WHERE customer_id = ?",
            "SELECT * FROM charges WHERE customer_id = ? ORDER BY created DESC LIMIT 10",
            "SELECT currency, count(*), sum(amount) FROM charges WHERE customer_id = ? GROUP BY currency",
        ])]  # fmt: skip
    if name == "behaviour":
        return [
            ("a customer's activity", pick(d["customer_id"] for d in docs),
             lambda s, p: s.find({"customer_id": p}), "SELECT * FROM clicks WHERE customer_id = ? ORDER BY t"),
            ("activity of one day", pick(d["day"] for d in docs),
             lambda s, p: s.find({"day": p}),
             "SELECT customer_id, count(*), count(DISTINCT session_id) FROM clicks WHERE day = ? GROUP BY 1 ORDER BY 1"),
        ]  # fmt: skip
    if name == "ml_features":
        return [
            ("features of one customer", pick(d["feature_id"] for d in docs), lambda s, p: s.get(p),
             "SELECT * FROM features WHERE feature_id = ?"),
            ("training set (one version)", [1], lambda s, p: s.find({"feature_set_version": p}),
             "SELECT * FROM features WHERE feature_set_version = ? ORDER BY feature_id"),
        ]  # fmt: skip
    return [
        ("a customer's feedback", pick(d["customer_id"] for d in docs),
         lambda s, p: s.find({"customer_id": p}), "SELECT * FROM feedback WHERE customer_id = ? ORDER BY feedback_id"),
        ("feedback with a tag", pick(t for d in docs for t in d["tags"]),
         lambda s, p: s.find(contains=("tags", p)),
         "SELECT f.* FROM feedback f JOIN feedback_tags t USING (feedback_id) WHERE t.tag = ? ORDER BY feedback_id"),
        ("keyword search (top 10)", [q for q, _ in rng.sample(LABELLED_QUERIES, min(k, len(LABELLED_QUERIES)))],
         lambda s, p: s.search(p, 10), "ILIKE"),
    ]  # fmt: skip


def _ilike(con: duckdb.DuckDBPyConnection, query: str, limit: int = 10) -> list[tuple]:
    words = [w for w in re.findall(r"[A-Za-z0-9]+", query.lower()) if len(w) > 2]
    cond = " OR ".join(["lower(text) LIKE ?"] * len(words))
    sql = f"SELECT feedback_id, text FROM feedback WHERE {cond} ORDER BY feedback_id LIMIT {limit}"
    return con.execute(sql, [f"%{w}%" for w in words]).fetchall()


def _duckdb_query(con: duckdb.DuckDBPyConnection, sql: str | list[str]) -> Callable[[Any], Any]:
    if sql == "ILIKE":
        return lambda p: _ilike(con, p)
    statements = sql if isinstance(sql, list) else [sql]

    def run(p: Any) -> list:
        return [con.execute(s, [p] * s.count("?")).fetchall() for s in statements]

    return run


@contextlib.contextmanager
def _postgres() -> Iterator[str]:
    if os.environ.get(PG_DSN_ENV):
        yield fresh_postgres_database(os.environ[PG_DSN_ENV])
    else:
        with temporary_postgres() as server:
            yield fresh_postgres_database(server)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="a paymodel generate folder")
    p.add_argument("--db", required=True, help="its OLTP DuckDB file (paymodel load)")
    p.add_argument("--warehouse", help="its warehouse (paymodel olap): adds ml_features")
    p.add_argument("--collections", nargs="*", help="only these collections (default: all)")
    p.add_argument("--n", type=int, default=100_000, help="documents per collection")
    p.add_argument("--queries", type=int, default=10, help="sampled parameters per access pattern")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    rng = random.Random(args.seed)
    engine = duckdb_engine(args.db)
    links = oltp_links(engine)
    sources = {
        "events": lambda: list(event_documents(args.data)),
        "customer_profiles": lambda: profile_documents(engine),
        "behaviour": lambda: behaviour_documents(args.data),
        "feedback": lambda: feedback_documents(args.data, links.charges, links.disputes),
    }
    if args.warehouse:
        from paymodel.documents.features import feature_documents
        from paymodel.olap import resolve_pii_key

        key = resolve_pii_key(demo=True).key
        sources["ml_features"] = lambda: list(feature_documents(args.warehouse, key))
    if args.collections:
        sources = {k: v for k, v in sources.items() if k in args.collections}
    rows, quality = [], {}
    with _postgres() as dsn, tempfile.TemporaryDirectory() as tmp, open_store(dsn) as pg:
        tiny_dir = Path(tmp) / "tinydb"
        with open_store(tiny_dir) as tiny:
            for name, source in sources.items():
                docs = clone_documents(source(), args.n)
                load = {}
                for label, store in (("tinydb", tiny), ("postgres", pg)):
                    t0 = time.perf_counter()
                    with store.batch():
                        store.collection(name).insert(docs)
                    load[label] = time.perf_counter() - t0
                con = duckdb.connect()
                t0 = time.perf_counter()
                for table, frame in _relational(name, docs).items():
                    con.register("frame", frame)
                    con.execute(f"CREATE TABLE {table} AS SELECT * FROM frame")
                    con.unregister("frame")
                load["duckdb"] = time.perf_counter() - t0
                size = (tiny_dir / f"{name}.json").stat().st_size
                print(f"{name}: {len(docs):,} documents; load s: tinydb {load['tinydb']:.1f}, "
                      f"postgres {load['postgres']:.1f}, duckdb {load['duckdb']:.1f}; "
                      f"TinyDB file {size / 1e6:.0f} MB", flush=True)  # fmt: skip
                for pattern, params, doc_query, sql in _patterns(name, docs, rng, args.queries):
                    t = {
                        label: _mean_ms(_bound(doc_query, store.collection(name)), params)
                        for label, store in (("tinydb", tiny), ("postgres", pg))
                    }
                    t["duckdb"] = _mean_ms(_duckdb_query(con, sql), params)
                    rows.append((name, pattern, t))
                if name == "feedback":
                    quality = _quality(tiny.collection(name), pg.collection(name), con)
                con.close()
                tiny.collection(name).clear()  # free the memory and disk of this collection
                del docs
                gc.collect()
    print(f"\n{'collection':18} {'access pattern':26} {'TinyDB ms':>10} {'PG ms':>8} {'DuckDB ms':>10}"
          f" {'TinyDB/DuckDB':>14} {'PG/DuckDB':>10}")  # fmt: skip
    for name, pattern, t in rows:
        print(f"{name:18} {pattern:26} {t['tinydb']:10.2f} {t['postgres']:8.2f} {t['duckdb']:10.2f}"
              f" {t['tinydb'] / t['duckdb']:14.3g} {t['postgres'] / t['duckdb']:10.3g}")  # fmt: skip
    if quality:
        print("\nsearch quality on the held labelled queries (best match relevant):")
    for label, (hits, asked) in quality.items():
        print(f"  {label:34} {hits}/{asked} = {hits / asked:.0%}")


def _quality(tiny: Any, pg: Any, con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, int]]:
    present = {r[0] for r in con.execute("SELECT DISTINCT text FROM feedback").fetchall()}
    asked = [(q, text) for q, text in LABELLED_QUERIES if text in present]
    out = {}
    for label, run in (
        ("TinyDB + bm25s (BM25, stemmed)", lambda q: [h.doc["text"] for h in tiny.search(q, 1)]),
        ("PostgreSQL tsvector, ts_rank_cd", lambda q: [h.doc["text"] for h in pg.search(q, 1)]),
        ("DuckDB any-word ILIKE, unranked", lambda q: [r[1] for r in _ilike(con, q, 1)]),
    ):
        out[label] = (sum(run(q)[:1] == [text] for q, text in asked), len(asked))
    return out


if __name__ == "__main__":
    main()
