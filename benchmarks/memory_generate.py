"""Peak memory (RSS) of ``paymodel generate`` at growing scales, each in a fresh process.

Usage::

    python benchmarks/memory_generate.py --scales 1 10 [--no-events] [--out build/bench-memory]

Prints one line per scale: rows written, seconds, peak RSS (``ru_maxrss`` of the child).
Memory should stay flat as the scale grows: customers are simulated in cohorts of
``config.CHUNK_CUSTOMERS`` and every file is written cohort by cohort.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from paymodel.paths import BUILD_DIR

CHILD = """
import json, resource, sys, time
from paymodel.synthetic import generate
scale, out, events = float(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
t = time.perf_counter()
r = generate(out, scale=scale, seed=0, progress=False, events=events, documents=True)
print(json.dumps({"scale": scale, "rows": r.total_rows, "seconds": round(time.perf_counter() - t, 1),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                  "events": r.rows.get("events", 0)}))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0])
    p.add_argument("--no-events", action="store_true", help="skip events.jsonl")
    p.add_argument("--out", type=Path, default=BUILD_DIR / "bench-memory")
    args = p.parse_args()
    for scale in args.scales:
        out = args.out / f"scale-{scale:g}"
        shutil.rmtree(out, ignore_errors=True)
        res = subprocess.run(
            [sys.executable, "-c", CHILD, str(scale), str(out), "0" if args.no_events else "1"],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        line = json.loads(res.stdout.strip().splitlines()[-1])
        print(
            f"scale {line['scale']:>6g}: {line['rows']:>12,} rows ({line['events']:,} events) in "
            f"{line['seconds']:>7.1f} s, peak RSS {line['peak_rss_mb']:>8.1f} MB",
            flush=True,
        )
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
