"""Rows written per second by ``paymodel generate``, against two references in the same run.

* **floor**: writing the same number of rows per table, of random columns with the
  same Arrow types, to Parquet with the same writer settings (numpy + Arrow). Nothing
  can write the tables faster than this; target: the generator within 5x of it.
* **per-row Faker**: ``faker_reference.generate_per_row``, one dict per row and one Faker
  call per field, at a small scale. Target: the generator at least 100x faster.

The generator is measured writing the tables (Parquet) and, separately, with the
events and documents (which render one JSON object per row and dominate the time).

Usage::

    python benchmarks/bench_generate.py [--scale 1] [--faker-scale 0.02] [--out build/bench]

Prints a table and writes ``<out>/bench_generate.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds

from paymodel.model.oltp import OLTP
from paymodel.paths import BUILD_DIR
from paymodel.synthetic import TABLES, generate
from paymodel.synthetic.parquet import arrow_schema, write_parquet

sys.path.insert(0, str(Path(__file__).resolve().parent))
from faker_reference import generate_per_row


def _random_column(gen: np.random.Generator, typ: pa.DataType, n: int) -> pa.Array:
    if pa.types.is_string(typ):
        codes = gen.integers(97, 123, size=(n, 18), dtype=np.uint8)
        return pa.array(codes.view("S18").ravel().astype("U18"))
    if pa.types.is_boolean(typ):
        return pa.array(gen.random(n) < 0.5)
    if pa.types.is_timestamp(typ):
        return pa.array(gen.integers(1.7e15, 1.77e15, n)).cast(typ)
    if pa.types.is_date32(typ):
        return pa.array(gen.integers(19000, 20000, n).astype(np.int32)).cast(typ)
    if pa.types.is_decimal(typ):
        return pa.array(gen.integers(0, 10**6, n)).cast(pa.decimal128(20, 0)).cast(typ)
    return pa.array(gen.integers(0, 10_000, n)).cast(typ)


def floor(rows: dict[str, int], out: Path) -> float:
    """Seconds to write ``rows[table]`` random rows of each table's schema to Parquet."""
    gen = np.random.default_rng(0)
    t0 = time.perf_counter()
    for name, n in rows.items():
        schema = arrow_schema(OLTP.table(name))
        table = pa.Table.from_arrays(
            [_random_column(gen, f.type, n) for f in schema], schema=schema
        )
        write_parquet(table, out / name / "part-00000.parquet")
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--faker-scale", type=float, default=0.02)
    p.add_argument("--out", type=Path, default=BUILD_DIR / "bench")
    args = p.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    generate(args.out / "warmup", scale=0.01, progress=False)  # imports, caches

    t0 = time.perf_counter()
    rep = generate(
        args.out / "tables", scale=args.scale, progress=False, events=False, documents=False
    )
    gen_tables_s = time.perf_counter() - t0
    rows = {t: rep.rows[t] for t in TABLES}
    total = sum(rows.values())

    floor_s = floor(rows, args.out / "floor")

    t0 = time.perf_counter()
    full = generate(args.out / "full", scale=args.scale, progress=False)
    gen_full_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    small = generate(
        args.out / "small", scale=args.faker_scale, progress=False, events=False, documents=False
    )
    small_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    faker_rows = generate_per_row(args.out / "faker", args.faker_scale)
    faker_s = time.perf_counter() - t0
    faker_total = sum(faker_rows.values())
    assert faker_total == sum(
        ds.dataset(args.out / "faker" / t).to_table().num_rows for t in faker_rows
    )

    rate = total / gen_tables_s
    result = {
        "scale": args.scale,
        "rows": total,
        "generator_tables_rows_per_s": round(rate),
        "generator_tables_seconds": round(gen_tables_s, 2),
        "floor_rows_per_s": round(total / floor_s),
        "floor_seconds": round(floor_s, 2),
        "ratio_floor_over_generator": round((total / floor_s) / rate, 2),
        "generator_full_rows": full.total_rows,
        "generator_full_rows_per_s": round(full.total_rows / gen_full_s),
        "generator_full_seconds": round(gen_full_s, 2),
        "faker_scale": args.faker_scale,
        "faker_rows": faker_total,
        "faker_rows_per_s": round(faker_total / faker_s),
        "generator_small_rows_per_s": round(small.total_rows / small_s),
        "ratio_generator_over_faker": round(rate / (faker_total / faker_s), 1),
        "ratio_generator_over_faker_same_scale": round(
            (small.total_rows / small_s) / (faker_total / faker_s), 1
        ),
    }
    (args.out / "bench_generate.json").write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"generator (tables)  scale {args.scale:g}: {total:>11,} rows in {gen_tables_s:7.2f} s = {rate:>12,.0f} rows/s"
    )
    print(
        f"floor (random cols) same rows      : {total:>11,} rows in {floor_s:7.2f} s = {total / floor_s:>12,.0f} rows/s"
        f"  -> generator is {result['ratio_floor_over_generator']}x the floor (target <= 5)"
    )
    print(
        f"generator (tables + events + documents): {full.total_rows:,} rows in {gen_full_s:.2f} s = "
        f"{result['generator_full_rows_per_s']:,} rows/s"
    )
    print(
        f"per-row Faker       scale {args.faker_scale:g}: {faker_total:>11,} rows in {faker_s:7.2f} s = "
        f"{faker_total / faker_s:>12,.0f} rows/s -> generator is {result['ratio_generator_over_faker']}x faster "
        f"(target >= 100); at the same scale {result['ratio_generator_over_faker_same_scale']}x"
    )


if __name__ == "__main__":
    main()
