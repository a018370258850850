"""Synthetic Stripe-like data: every OLTP table as Parquet, the events that led to it, documents.

``generate(out_dir, scale=..., seed=...)`` (or ``paymodel generate``) simulates a
subscription business billed through Stripe and writes:

* ``<table>/part-NNNNN.parquet`` for every Stripe table of the OLTP model and the
  reference tables (``currencies``, ``fx_rates``), typed from the model, rows sorted by
  key within each file. Load them with :func:`paymodel.synthetic.load.load_into_oltp`.
* ``payouts/``: the account's daily automatic payouts (:mod:`paymodel.synthetic.payouts`);
  every balance transaction names the payout that settled it.
* ``events.jsonl``: Stripe Event objects for every state change, in time order; replayed
  in order they rebuild the Stripe-object tables exactly (see
  :mod:`paymodel.synthetic.events` for the contract).
* ``documents/behaviour_events.jsonl`` and ``documents/feedback.jsonl``: clickstream and
  customer feedback for the document layer (:mod:`paymodel.synthetic.documents`).

Customers are simulated in cohorts of consecutive sign-ups (:data:`config.CHUNK_CUSTOMERS`
each), every cohort from its own random streams keyed by ``(seed, stream, cohort)``,
so memory stays bounded as the scale grows and output does not depend on scheduling.
Same seed and scale: byte-identical files.

Example:
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     report = generate(pathlib.Path(d), scale=0.005, seed=1, months=3, progress=False,
    ...                       events=False, documents=False)
    ...     report.rows["customers"], (pathlib.Path(d) / "charges").is_dir()
    (50, True)
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
from tqdm import tqdm

from paymodel.model.reference import currency_rows
from paymodel.safe_write import make_dir
from paymodel.synthetic import config as C
from paymodel.synthetic.catalog import build_catalog, build_fx_rates
from paymodel.synthetic.lifecycle import simulate_chunk
from paymodel.synthetic.parquet import to_arrow, write_parquet
from paymodel.synthetic.payouts import payout_schedule
from paymodel.synthetic.primitives import DAY, add_months, rng

__all__ = ["GenerationReport", "generate", "signup_times"]

REFERENCE_TABLES = ("currencies", "fx_rates", "products", "prices", "coupons")
CHUNKED_TABLES = (
    "customers", "customer_addresses", "payment_methods", "subscriptions", "subscription_items",
    "discounts", "invoices", "invoice_line_items", "payment_intents", "invoice_payments",
    "charges", "refunds", "disputes", "balance_transactions", "balance_transaction_fee_details",
)  # fmt: skip
ACCOUNT_TABLES = ("payouts",)
"""Tables of the whole account, written once after the cohorts (see :mod:`.payouts`)."""
TABLES = REFERENCE_TABLES + ACCOUNT_TABLES + CHUNKED_TABLES
"""Every table written, parents first."""


@dataclass
class GenerationReport:
    """What :func:`generate` wrote.

    Attributes:
        out_dir: the output folder.
        rows: rows written per table (and ``events``, ``behaviour_events``, ``feedback``).
        paths: files written per table.
        seconds: wall time.
    """

    out_dir: Path
    scale: float
    seed: int
    start: date
    months: int
    rows: dict[str, int] = field(default_factory=dict)
    paths: dict[str, list[Path]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total_rows(self) -> int:
        """Rows of every table, events and documents."""
        return sum(self.rows.values())

    def __str__(self) -> str:
        width = max(len(k) for k in self.rows) if self.rows else 0
        lines = [f"{k:<{width}}  {v:>12,}" for k, v in self.rows.items()]
        head = (
            f"paymodel generate: scale {self.scale}, seed {self.seed}, {self.start} + "
            f"{self.months} months -> {self.out_dir} ({self.total_rows:,} rows in "
            f"{self.seconds:.1f} s)"
        )
        return "\n".join([head, *lines])


def _ts(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())


def signup_times(seed: int, n: int, start_ts: int, horizon_ts: int) -> np.ndarray:
    """``n`` sign-up instants (sorted unix seconds) with growth, seasonality and weekends.

    The daily intensity is ``exp(g t) x (1 + a cos(2 pi (day of year - 15) / 365.25))``,
    x :data:`config.WEEKEND_FACTOR` on Saturdays and Sundays.

    Example:
        >>> t = signup_times(0, 1000, 1704067200, 1704067200 + 730 * 86400)
        >>> bool((np.diff(t) >= 0).all()), int((t >= 1704067200 + 365 * 86400).sum()) > 500
        (True, True)
    """
    gen = rng(seed, "signups")
    days = (horizon_ts - start_ts) // DAY
    d = np.arange(days)
    day_ts = start_ts + d * DAY
    doy = (day_ts.astype("datetime64[s]") - day_ts.astype("datetime64[s]").astype("datetime64[Y]")).astype(
        "timedelta64[D]"
    ).astype(np.int64)
    weekday = (day_ts // DAY + 3) % 7  # 0 = Monday (1970-01-01 was a Thursday)
    w = np.exp(C.SIGNUP_GROWTH_PER_YEAR * d / 365.25)
    w *= 1 + C.SIGNUP_SEASONALITY * np.cos(2 * np.pi * (doy - 15) / 365.25)
    w *= np.where(weekday >= 5, C.WEEKEND_FACTOR, 1.0)
    chosen = gen.choice(days, size=n, p=w / w.sum())
    t = start_ts + chosen.astype(np.int64) * DAY + gen.integers(0, DAY, n)
    return np.sort(t)


def generate(
    out_dir: Path | str,
    *,
    scale: float = 1.0,
    seed: int = 0,
    start: date = date(2024, 1, 1),
    months: int = 24,
    progress: bool = True,
    events: bool = True,
    documents: bool = True,
) -> GenerationReport:
    """Simulate the business and write its tables, events and documents to ``out_dir``.

    Args:
        out_dir: output folder (created; existing files of the same names are replaced).
            Nothing is written through a symbolic link inside it (a link named
            ``events.jsonl`` or ``customers`` is refused with :class:`SymlinkRefused`).
        scale: 1 means about 10,000 customers signing up over the window; continuous.
        seed: the random seed: same seed and scale give byte-identical output.
        start: first day simulated (UTC).
        months: length of the window in months.
        progress: show a progress bar.
        events: also write ``events.jsonl``.
        documents: also write the document-layer inputs.

    Returns:
        A :class:`GenerationReport` with the rows written per table.

    Raises:
        paymodel.safe_write.SymlinkRefused: an output path is a symbolic link.
    """
    if scale <= 0:
        raise ValueError(f"scale {scale}: must be positive")
    if months < 1:
        raise ValueError(f"months {months}: must be at least 1")
    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start_ts = _ts(start)
    horizon = int(add_months(np.array([start_ts]), months)[0])
    report = GenerationReport(out, scale, seed, start, months)

    def emit(name: str, frame: dict, part: int) -> None:
        table = to_arrow(name, frame)
        path = out / name / f"part-{part:05d}.parquet"
        write_parquet(table, path)
        report.rows[name] = report.rows.get(name, 0) + table.num_rows
        report.paths.setdefault(name, []).append(path)

    for name in TABLES:  # a rerun into the same folder must not leave stale parts behind
        for old in make_dir(out / name).glob("part-*.parquet"):
            old.unlink()
    cat = build_catalog(seed, start_ts)
    fx = build_fx_rates(seed, cat.created // DAY, horizon // DAY)
    cur = currency_rows()
    emit("currencies", {
        "code": np.array([r["code"] for r in cur], dtype=object),
        "name": np.array([r["name"] for r in cur], dtype=object),
        "exponent": np.array([r["exponent"] for r in cur], dtype=np.int64),
    }, 0)  # fmt: skip
    emit("fx_rates", fx, 0)
    emit("products", cat.products, 0)
    emit("prices", cat.prices, 0)
    emit("coupons", cat.coupons, 0)

    n_customers = max(1, round(C.CUSTOMERS_PER_SCALE * scale))
    signups = signup_times(seed, n_customers, start_ts, horizon)
    bounds = [*list(range(0, n_customers, C.CHUNK_CUSTOMERS)), n_customers]

    writer = None
    if events:
        from paymodel.synthetic.events import EventWriter

        writer = EventWriter(out, seed, cat, horizon)
        writer.catalog()
    doc_writer = None
    if documents:
        from paymodel.synthetic.documents import DocumentWriter

        doc_writer = DocumentWriter(out, seed, horizon)
    chunks = list(itertools.pairwise(bounds))
    # Payouts sweep every cohort's balance: a first pass collects when each balance
    # transaction becomes available and its net, the schedule is computed once, and the
    # cohorts are simulated again (same random streams, same rows) to be written with
    # the payout that settled each transaction. One cohort is kept, not simulated twice.
    bar = tqdm(total=2 * n_customers, unit="customer", desc="generate", disable=not progress)
    kept = {}
    avail, net, cur = [], [], []
    for chunk, (lo, hi) in enumerate(chunks):
        result = simulate_chunk(seed, chunk, signups[lo:hi], cat, fx, horizon, months)
        bt = result.tables["balance_transactions"]
        avail.append(bt["available_on"])
        net.append(bt["net"])
        cur.append(bt["currency"])
        if len(chunks) == 1:
            kept[chunk] = result
        bar.update(hi - lo)
    schedule = payout_schedule(
        seed, np.concatenate(avail), np.concatenate(net), np.concatenate(cur),
        start=start_ts, horizon=horizon,
    )  # fmt: skip
    emit("payouts", schedule.payouts, 0)
    for chunk, (lo, hi) in enumerate(chunks):
        result = kept.pop(chunk, None) or simulate_chunk(
            seed, chunk, signups[lo:hi], cat, fx, horizon, months
        )
        bt = result.tables["balance_transactions"]
        bt["payout_id"] = schedule.payout_of(bt["available_on"], bt["currency"])
        for name in CHUNKED_TABLES:
            emit(name, result.tables[name], chunk)
        if writer is not None:
            writer.chunk(chunk, result, schedule)
        if doc_writer is not None:
            doc_writer.chunk(chunk, result)
        bar.update(hi - lo)
    bar.close()
    emit("balance_transactions", schedule.transactions, len(chunks))
    if writer is not None:
        writer.payouts(schedule, report.paths["balance_transactions"],
                       report.paths.get("balance_transaction_fee_details", []))  # fmt: skip
    if writer is not None:
        report.rows["events"] = writer.finish()
        report.paths["events"] = [out / "events.jsonl"]
    if doc_writer is not None:
        counts = doc_writer.finish()
        report.rows.update(counts)
        report.paths.update(doc_writer.paths)
    report.seconds = time.perf_counter() - t0
    return report
