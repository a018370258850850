"""Pick the JSON Schema library by measurement: jsonschema, fastjsonschema, jsonschema-rs.

Validates the same documents (Stripe events and feedback from a generated data folder)
with each library against the schemas of ``paymodel.model.documents``, in one run, and
prints documents per second, the ratio to the fastest, and the error each one gives for a
document that breaks two rules (what a caller would see).

    .venv/bin/python benchmarks/bench_validation.py build/data

jsonschema and fastjsonschema come with nbformat (the notebook extra); jsonschema-rs is
the library's dependency.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import orjson

from paymodel.model.documents import COLLECTIONS


def _docs(data_dir: Path, limit: int) -> dict[str, list[dict]]:
    from paymodel.documents.build import feedback_documents

    events = []
    with (data_dir / "events.jsonl").open("rb") as f:
        for line in f:
            events.append(orjson.loads(line))
            if len(events) == limit:
                break
    feedback = list(feedback_documents(data_dir, charges={}, disputes={}))[:limit]
    return {"events": events, "feedback": feedback}


def main() -> None:
    import fastjsonschema
    import jsonschema
    import jsonschema_rs

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data_dir", type=Path)
    p.add_argument("--limit", type=int, default=20_000)
    args = p.parse_args()
    docs = _docs(args.data_dir, args.limit)
    makers = {
        "jsonschema": lambda s: (
            jsonschema.Draft202012Validator(
                s, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
            ).is_valid
        ),
        "fastjsonschema": lambda s: fastjsonschema.compile(s),
        "jsonschema-rs": lambda s: jsonschema_rs.validator_for(s, validate_formats=True).is_valid,
    }
    print(f"{'collection':12} {'library':16} {'compile ms':>10} {'docs/s':>12} {'x fastest':>10}")
    for name, items in docs.items():
        schema = COLLECTIONS[name].json_schema()
        rates = {}
        for lib, make in makers.items():
            t0 = time.perf_counter()
            check = make(schema)
            compile_ms = (time.perf_counter() - t0) * 1000
            t0 = time.perf_counter()
            for d in items:
                check(d)
            rates[lib] = (len(items) / (time.perf_counter() - t0), compile_ms)
        best = max(r for r, _ in rates.values())
        for lib, (rate, compile_ms) in rates.items():
            print(f"{name:12} {lib:16} {compile_ms:10.1f} {rate:12,.0f} {best / rate:10.1f}")
    bad = dict(docs["feedback"][0], rating=11, channel="email")
    schema = COLLECTIONS["feedback"].json_schema()
    print("\nerrors for a feedback document with rating 11 and channel 'email':")
    errs = jsonschema.Draft202012Validator(schema).iter_errors(bad)
    print("  jsonschema:    ", [(list(e.absolute_path), e.validator, e.message) for e in errs])
    try:
        fastjsonschema.compile(schema)(bad)
    except fastjsonschema.JsonSchemaValueException as e:
        print("  fastjsonschema:", [(e.path, e.rule, e.message)], "(first error only)")
    errs = jsonschema_rs.validator_for(schema).iter_errors(bad)
    print(
        "  jsonschema-rs: ",
        [(list(e.instance_path), list(e.schema_path)[-1], e.message) for e in errs],
    )


if __name__ == "__main__":
    main()
