"""The ``paymodel`` command line.

Each subcommand is a thin shell over a library function, so everything the command
does can also be done from Python. Imports are lazy: ``paymodel --help`` stays fast.

Exit codes: 0 success; 1 a check failed (``schemas --check``, ``load``'s invariants); 2 usage error;
3 ``ingest`` quarantined at least one record. A reader that stops early (``| head``) ends the
command quietly with status 1.

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
