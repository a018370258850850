"""The ``paymodel`` command line.

Each subcommand is a thin shell over a library function, so everything the command
does can also be done from Python. Imports are lazy: ``paymodel --help`` stays fast.

Exit codes: 0 success; 1 a check failed (``schemas --check``, ``load``'s invariants, a document
``documents`` built broke its schema); 2 usage error; 3 ``ingest`` quarantined at least one
record; ``erase`` exits 1 when the customer is unknown.
A reader that stops early (``| head``) ends the command quietly with status 1.

What the commands print never shows a password (DSNs are masked) and shows control
characters as escapes (:func:`paymodel.oltp.ingest_guard.printable`): a value read from
input cannot move the cursor or rewrite a line of the terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

__all__ = ["main"]


def _schemas(args: argparse.Namespace) -> int:
    from paymodel.model.render import check_schemas, write_schemas

    out = Path(args.out)
    if args.check:
        result = check_schemas(out)
        for line in result.messages():
            print(f"{out / line}", file=sys.stderr)
        if not result.ok:
            return 1
        print(f"{out}: up to date with the model")
        return 0
    changed = write_schemas(out)
    for path in changed:
        print(f"wrote {path}")
    print(f"{out}: {len(changed)} file(s) changed")
    return 0


def _notebooks(args: argparse.Namespace) -> int:
    from paymodel.notebooks import run_all

    params = {}
    for item in args.parameter or []:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"-p {item}: expected NAME=VALUE", file=sys.stderr)
            return 2
        params[key] = _literal(value)
    run_all(args.out, params or None, args.notebook or None)
    return 0


def _literal(value: str) -> object:
    import ast

    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def _generate(args: argparse.Namespace) -> int:
    from paymodel.safe_write import SymlinkRefused
    from paymodel.synthetic import generate

    try:
        report = generate(
            Path(args.out),
            scale=args.scale,
            seed=args.seed,
            start=args.start,
            months=args.months,
            progress=not args.no_progress,
        )
    except SymlinkRefused as err:
        from paymodel.oltp.ingest_guard import printable

        print(f"paymodel generate: {printable(err)}", file=sys.stderr)
        return 2
    print(report)
    return 0


def _load(args: argparse.Namespace) -> int:
    from paymodel.oltp.engines import redact_dsn
    from paymodel.oltp.ingest import open_target
    from paymodel.oltp.ingest_guard import printable
    from paymodel.oltp.invariants import check_invariants
    from paymodel.synthetic.load import load_into_oltp

    shown = printable(redact_dsn(args.db))
    try:
        engine = open_target(args.db)
    except ValueError as err:
        print(printable(redact_dsn(str(err))), file=sys.stderr)
        return 2
    import sqlalchemy as sa

    try:
        try:
            counts = load_into_oltp(Path(args.data_dir), engine)
        except (sa.exc.DBAPIError, FileNotFoundError) as err:
            message = printable(redact_dsn(str(getattr(err, "orig", None) or err).splitlines()[0]))
            print(f"{shown}: load refused, nothing written: {message}", file=sys.stderr)
            return 1
        for table, n in counts.items():
            print(f"{table:34} {n:>12,}")
        results = check_invariants(engine)
    finally:
        engine.dispose()
    for result in results:
        print(f"invariant {result}")
    broken = sum(not r.ok for r in results)
    print(
        f"{shown}: {sum(counts.values()):,} rows loaded; {len(results) - broken} invariants hold,"
        f" {broken} broken"
    )
    return 1 if broken else 0


def _ingest(args: argparse.Namespace) -> int:
    from paymodel.oltp.ingest import main_ingest

    return main_ingest(args.files, args.db, args.json, args.max_record_bytes, args.strict)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be a positive number of bytes")
    return value


def _erase(args: argparse.Namespace) -> int:
    from paymodel.oltp.erase import main_erase

    return main_erase(args.customer_id, args.db, args.json)


def _documents(args: argparse.Namespace) -> int:
    from paymodel.documents import InvalidDocuments, StoreLockedError, build_documents
    from paymodel.olap import MissingPIIKeyError, resolve_pii_key

    data_dir = Path(args.data)
    if not (data_dir / "events.jsonl").is_file():
        print(
            f"--data {data_dir}: no events.jsonl (a folder written by paymodel generate)",
            file=sys.stderr,
        )
        return 2
    if "://" not in args.warehouse and not Path(args.warehouse).is_file():
        print(
            f"--warehouse {args.warehouse}: no such file (build it with paymodel olap)",
            file=sys.stderr,
        )
        return 2
    try:
        key = resolve_pii_key(args.pii_key_file, demo=args.demo)
    except (MissingPIIKeyError, OSError) as err:
        print(f"paymodel documents: {err}", file=sys.stderr)
        return 2
    try:
        report = build_documents(
            args.oltp, data_dir, args.out, warehouse=args.warehouse, pii_key=key.key,
            progress=not args.no_progress,
        )  # fmt: skip
    except (ValueError, StoreLockedError) as err:
        print(err, file=sys.stderr)
        return 1 if isinstance(err, InvalidDocuments) else 2
    print(report)
    return 0


def _olap(args: argparse.Namespace) -> int:
    from paymodel.olap import MissingPIIKeyError, build_warehouse, resolve_pii_key, update_warehouse

    try:
        key = resolve_pii_key(args.pii_key_file, demo=args.demo)
    except (MissingPIIKeyError, OSError) as err:
        print(f"paymodel olap: {err}", file=sys.stderr)
        return 2
    if args.demo and key.source.startswith("the published demo key"):
        print("paymodel olap: --demo: identifiers are hashed with the published demo key, "
              "which protects nothing (synthetic data only)")  # fmt: skip
    common = {"pii_key": key, "engine": args.engine, "as_of": args.as_of,
              "progress": not args.no_progress}  # fmt: skip
    try:
        if args.update:
            report = update_warehouse(args.oltp, args.out, **common)
        else:
            report = build_warehouse(
                args.oltp, args.out, reporting_currency=args.reporting_currency,
                fiscal_year_start_month=args.fiscal_year_start_month, **common,
            )  # fmt: skip
    except (ValueError, FileNotFoundError) as err:
        print(f"paymodel olap: {err}", file=sys.stderr)
        return 2
    print(report)
    return 0


def _parser() -> argparse.ArgumentParser:
    from paymodel.paths import BUILD_DIR, SCHEMAS_DIR

    p = argparse.ArgumentParser(
        prog="paymodel",
        description="Stripe-style payments data: one model, OLTP, OLAP and documents.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("schemas", help="render DDL, diagrams, dictionary and JSON Schema")
    s.add_argument("--out", default=str(SCHEMAS_DIR), help="folder (default: %(default)s)")
    s.add_argument(
        "--check", action="store_true", help="fail (exit 1) naming each stale file; write nothing"
    )
    s.set_defaults(func=_schemas)

    n = sub.add_parser("notebooks", help="execute the notebooks under papermill")
    n.add_argument("--out", default=str(BUILD_DIR / "notebooks"), help="default: %(default)s")
    n.add_argument("-p", "--parameter", action="append", metavar="NAME=VALUE",
                   help="a notebook parameter (repeatable)")  # fmt: skip
    n.add_argument("notebook", nargs="*", help="notebooks to run (default: all, in order)")
    n.set_defaults(func=_notebooks)

    g = sub.add_parser("generate", help="write synthetic Stripe-like data (Parquet + events)")
    g.add_argument("--scale", type=float, default=1.0, help="1 = about 10,000 customers")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--out", required=True, help="output folder")
    g.add_argument("--start", type=date.fromisoformat, default=date(2024, 1, 1),
                   help="first day simulated (YYYY-MM-DD, default: %(default)s)")  # fmt: skip
    g.add_argument("--months", type=int, default=24, help="months simulated (default: 24)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.set_defaults(func=_generate)

    ld = sub.add_parser(
        "load",
        help="bulk-load generated Parquet into an OLTP database and check the invariants",
        epilog="Exit status: 0 loaded and every invariant holds; 1 an invariant is broken; "
        "2 usage error. A constraint violation aborts the load with the engine's error.",
    )
    ld.add_argument("data_dir", metavar="DATA_DIR", help="a folder written by paymodel generate")
    ld.add_argument(
        "--db", required=True, help="DuckDB file (created if missing) or postgresql:// URL"
    )
    ld.set_defaults(func=_load)

    i = sub.add_parser(
        "ingest",
        help="load Stripe API objects and events into an OLTP database",
        epilog="Exit status: 0 all records applied, duplicate or pending; 3 some records "
        "were quarantined (or, with --strict, an invariant of the objects written is "
        "broken); 2 usage error (unreadable file, bad --db).",
    )
    i.add_argument("files", nargs="+", metavar="FILE", help="JSON Lines, JSON array or list")
    i.add_argument(
        "--db", required=True, help="DuckDB file (created if missing) or postgresql:// URL"
    )
    i.add_argument("--json", action="store_true", help="print the counts as one JSON object")
    i.add_argument("--max-record-bytes", type=_positive_int, default=1 << 20, metavar="N",
                   help="quarantine records larger than N bytes as too_large "
                   "(default: %(default)s, 1 MiB)")  # fmt: skip
    i.add_argument(
        "--strict",
        action="store_true",
        help="exit 3 also when an invariant of the objects the run wrote is broken",
    )
    i.set_defaults(func=_ingest)

    e = sub.add_parser(
        "erase",
        help="erase a customer's personal data everywhere the OLTP database keeps it (GDPR)",
        epilog="Keeps ids, amounts, currencies, dates and statuses. One transaction, verified: "
        "it is rolled back if a personal value remains. Exit status: 0 erased; 1 no such "
        "customer, or a value remained (nothing changed); 2 usage error.",
    )
    e.add_argument("customer_id", metavar="CUSTOMER_ID", help="the customer (cus_...)")
    e.add_argument("--db", required=True, help="DuckDB file or postgresql:// URL")
    e.add_argument("--json", action="store_true", help="print the report as one JSON object")
    e.set_defaults(func=_erase)

    d = sub.add_parser(
        "documents",
        help="build the document collections (TinyDB files or PostgreSQL JSONB)",
        epilog="Exit status: 0 built; 1 a built document broke its schema (that collection "
        "keeps its previous content); 2 usage error (bad target, no PII key, folder locked by "
        "another writer). The key must be the warehouse's (--pii-key-file or $PAYMODEL_PII_KEY).",
    )
    d.add_argument("oltp", metavar="OLTP_TARGET", help="OLTP DuckDB file or postgresql:// URL")
    d.add_argument("--data", required=True, metavar="DATA_DIR",
                   help="folder written by paymodel generate (events.jsonl, documents/)")  # fmt: skip
    d.add_argument("--warehouse", required=True, metavar="WAREHOUSE",
                   help="the warehouse built by paymodel olap (DuckDB file or URL): ml_features")  # fmt: skip
    d.add_argument("--out", required=True, metavar="DIR_OR_URL",
                   help="folder of TinyDB files (one per collection) or postgresql:// URL")  # fmt: skip
    d.add_argument("--pii-key-file", metavar="FILE",
                   help="file holding the warehouse's pseudonymisation key (else $PAYMODEL_PII_KEY)")  # fmt: skip
    d.add_argument("--demo", action="store_true",
                   help="without a key, hash with the published demo key (synthetic data only)")  # fmt: skip
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    d.set_defaults(func=_documents)

    o = sub.add_parser(
        "olap",
        help="build the warehouse (star schema) from an OLTP database with Ibis",
        epilog="Exit status: 0 built; 2 usage error (no PII key, bad target, as-of before the "
        "last build). The PII key comes from --pii-key-file or $PAYMODEL_PII_KEY.",
    )
    o.add_argument(
        "oltp", metavar="OLTP_TARGET", help="DuckDB file or postgresql:// URL (read only)"
    )
    o.add_argument("--out", required=True, metavar="WAREHOUSE",
                   help="DuckDB file (created if missing) or postgresql:// URL")  # fmt: skip
    o.add_argument("--engine", choices=("duckdb", "postgres", "pyspark"), default="duckdb",
                   help="engine that runs the transforms (default: %(default)s)")  # fmt: skip
    o.add_argument("--as-of", metavar="TIMESTAMP",
                   help="ISO time the warehouse describes (default: the latest in the OLTP)")  # fmt: skip
    o.add_argument("--reporting-currency", default="usd", type=str.lower,
                   help="currency of the *_reporting amounts (default: %(default)s)")  # fmt: skip
    o.add_argument("--fiscal-year-start-month", type=int, default=1, metavar="N",
                   help="first month of the fiscal year, 1-12 (default: %(default)s)")  # fmt: skip
    o.add_argument("--update", action="store_true",
                   help="move the warehouse forward from its last build to --as-of, recomputing "
                   "only the customers that changed")  # fmt: skip
    o.add_argument("--pii-key-file", metavar="FILE", help="file holding the pseudonymisation key")
    o.add_argument("--demo", action="store_true",
                   help="without a key, hash with the published demo key (synthetic data only)")  # fmt: skip
    o.add_argument("--no-progress", action="store_true", help="no progress bar")
    o.set_defaults(func=_olap)
    return p


class _EscapedOutput(io.TextIOBase):
    """Standard output with control characters escaped (newlines and tabs kept)."""

    def __init__(self, stream: io.TextIOBase) -> None:
        from paymodel.oltp.ingest_guard import printable

        self._stream = stream
        self._printable = printable

    def write(self, text: str) -> int:
        self._stream.write(self._printable(text, keep="\n\t"))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    stdout = sys.stdout
    sys.stdout = _EscapedOutput(stdout)
    try:
        status = int(args.func(args) or 0)
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and point stdout at /dev/null so
        # that the interpreter's final flush does not report the broken pipe either.
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
            os.dup2(os.open(os.devnull, os.O_WRONLY), stdout.fileno())
        return 1
    finally:
        sys.stdout = stdout


if __name__ == "__main__":
    raise SystemExit(main())
