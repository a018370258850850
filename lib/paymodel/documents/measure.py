"""Measurements shared by notebook 08 and ``benchmarks/bench_documents.py``.

Example:
    >>> docs = [{"feedback_id": "fb_1", "customer_id": "cus_a", "text": "hi"}]
    >>> [d["feedback_id"] + " " + d["customer_id"] for d in clone_documents(docs, 3)]
    ['fb_1 cus_a', 'fb_1X1 cus_aX1', 'fb_1X2 cus_aX2']
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

__all__ = ["clone_documents", "growth_costs"]

_ID = re.compile(
    rb'"((?:evt|cus|ch|pm|sub|fb|dp|bev|sess|pi|in|req|prod|price|si|re|txn|il|ii|dc|cpn)_[A-Za-z0-9]+)'
)


def clone_documents(docs: Sequence[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """``n`` documents: the originals, then copies whose every Stripe-style id gets ``X<k>``.

    Ids change together (a cloned event keeps pointing at its cloned customer), so
    per-customer questions keep their size as the collection grows.
    """
    out = list(docs[:n])
    k = 1
    while len(out) < n and docs:
        suffix = b"X%d" % k
        for d in docs[: n - len(out)]:
            out.append(
                orjson.loads(_ID.sub(lambda m, s=suffix: b'"' + m.group(1) + s, orjson.dumps(d)))
            )
        k += 1
    return out


def _ms(fn: Callable[[], Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return 1000 * best


def _bytes_written(store: Any, collection: str, write: Callable[[], Any]) -> int:
    """Bytes one write puts on disk: the whole file for TinyDB, the WAL for PostgreSQL."""
    from paymodel.documents.postgres_store import PostgresStore

    if isinstance(store, PostgresStore):
        (start,) = store.conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()
        write()
        (n,) = store.conn.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s)", (start,)
        ).fetchone()
        return int(n)
    write()
    return (store.folder / f"{collection}.json").stat().st_size


def growth_costs(
    collection: str,
    docs: Sequence[dict[str, Any]],
    sizes: Sequence[int],
    query: Callable[[Any], Any],
    targets: dict[str, Callable[[Path], str]],
    repeat: int = 3,
) -> list[dict[str, Any]]:
    """For each store and size: the cost of adding one document and of one query.

    Args:
        collection: the collection to fill.
        docs: documents to clone up to each size.
        sizes: collection sizes to measure at.
        query: a question asked of the collection (``lambda c: c.find(...)``).
        targets: store name -> a function giving the store's target for a scratch folder.
        repeat: best of this many timings.

    Returns:
        One dict per (store, size): ``store``, ``documents``, ``insert_one_ms``, ``query_ms``,
        and ``bytes_written`` by one insert (TinyDB rewrites its whole file; PostgreSQL's
        figure is the write-ahead log it appended).
    """
    from paymodel.documents.store import open_store

    pool = clone_documents(docs, max(sizes) + repeat + 1)
    rows = []
    for name, target in targets.items():
        for n in sizes:
            with tempfile.TemporaryDirectory() as tmp, open_store(target(Path(tmp))) as store:
                c = store.collection(collection)
                c.clear()
                with store.batch():
                    c.insert(pool[:n])
                extra = iter(pool[n : n + repeat + 1])
                insert_ms = _ms(lambda c=c, extra=extra: c.insert([next(extra)]), repeat)
                written = _bytes_written(
                    store, collection, lambda c=c, extra=extra: c.insert([next(extra)])
                )
                query_ms = _ms(lambda c=c: query(c), repeat)
                c.clear()
            rows.append({"store": name, "documents": n, "insert_one_ms": insert_ms,
                         "query_ms": query_ms, "bytes_written": written})  # fmt: skip
    return rows
