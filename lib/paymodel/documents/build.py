"""Build every collection from the OLTP tables and the generated documents.

Sources, one way (model -> synthetic -> OLTP -> documents):

* ``events``: ``events.jsonl`` of a ``paymodel generate`` folder, the Stripe events as received;
* ``customer_profiles``: the OLTP tables (customers, addresses, payment methods,
  subscriptions, charges, disputes) of a DuckDB file or PostgreSQL database;
* ``behaviour``: ``documents/behaviour_events.jsonl`` bucketed per customer per day;
* ``feedback``: ``documents/feedback.jsonl``, with tags, a sentiment, and the charge or
  dispute it is about looked up in the OLTP tables;
* ``ml_features``: the warehouse (``paymodel olap``), pseudonymised with its key.

:func:`build_documents` (the ``paymodel documents`` command) clears each collection and
writes it again in a fixed order, so a rebuild gives byte-identical TinyDB files.
"""

from __future__ import annotations

import bisect
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from paymodel.documents.profiles import profile_v2
from paymodel.documents.store import DocumentStore, WriteReport, open_store
from paymodel.model.documents import FUNNEL_STEPS

__all__ = [
    "BuildReport",
    "OltpLinks",
    "behaviour_documents",
    "build_documents",
    "event_documents",
    "feedback_documents",
    "oltp_links",
    "profile_documents",
    "read_jsonl",
]

_CHUNK = 20_000

# Subjects a text mentions, as tags (the texts are English).
_SUBJECTS = {
    "card": r"\bcards?\b",
    "payment_failed": r"\bdeclined\b|\bretry\b",
    "invoice": r"\binvoices?\b",
    "charge": r"\bcharged\b",
    "price": r"\bprices?\b|\bexpensive\b|\bcost\b|\bcheaper\b|\bbudget\b",
    "export": r"\bexports?\b",
    "reports": r"\breports?\b|\breporting\b",
    "dashboards": r"\bdashboards?\b",
    "sso": r"\bsso\b",
    "integrations": r"\bintegrations?\b|\bcrm\b",
    "performance": r"\bslow\b|\bfail\b",
    "team": r"\bteam(mate)?s?\b|\bseats?\b|\broles\b",
}
_SUBJECT_RE = {tag: re.compile(rx, re.IGNORECASE) for tag, rx in _SUBJECTS.items()}


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The objects of a JSON Lines file; an unparsable line raises naming the file and line."""
    with path.open("rb") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield orjson.loads(line)
                except orjson.JSONDecodeError as err:
                    raise ValueError(f"{path}:{n}: not JSON: {err}") from None


def event_documents(data_dir: Path) -> Iterator[dict[str, Any]]:
    """Stripe events as received, in the order they were sent."""
    return read_jsonl(Path(data_dir) / "events.jsonl")


def behaviour_documents(data_dir: Path) -> list[dict[str, Any]]:
    """One bucket per customer per UTC day, in (customer, day) order."""
    buckets: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for e in read_jsonl(Path(data_dir) / "documents" / "behaviour_events.jsonl"):
        buckets[(e["customer_id"], e["timestamp"][:10])].append(e)
    out = []
    for (customer, day), evs in sorted(buckets.items()):
        evs.sort(key=lambda e: (e["timestamp"], e["event_id"]))
        pages: dict[str, int] = defaultdict(int)
        names: dict[str, int] = defaultdict(int)
        items = []
        for e in evs:
            pages[e["page"]] += 1
            names[e["event"]] += 1
            p = e["properties"]
            item = {"event_id": e["event_id"], "t": e["timestamp"], "event": e["event"],
                    "page": e["page"], "session_id": e["session_id"], "device": p["device"],
                    "duration_ms": p["duration_ms"]}  # fmt: skip
            if "feature" in p:
                item["feature"] = p["feature"]
            items.append(item)
        out.append({
            "bucket_id": f"{customer}:{day}",
            "customer_id": customer,
            "day": day,
            "n_events": len(evs),
            "n_sessions": len({e["session_id"] for e in evs}),
            "pages": dict(sorted(pages.items())),
            "funnel": {step: names[step] for step in FUNNEL_STEPS},
            "cancel_flow_started": names["cancel_flow_started"],
            "events": items,
        })  # fmt: skip
    return out


@dataclass
class OltpLinks:
    """What feedback links to: each customer's charges and disputes, in time order."""

    charges: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    """customer -> [(created, charge id, status)] sorted."""
    disputes: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    """customer -> [(created, dispute id, charge id)] sorted."""


def _rows(conn: sa.Connection, query: str) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(sa.text(query)).mappings()]


def oltp_links(engine: sa.Engine) -> OltpLinks:
    """Charges and disputes per customer, for linking feedback."""
    links = OltpLinks()
    with engine.connect() as conn:
        for r in _rows(
            conn, "SELECT customer_id, created, id, status FROM charges ORDER BY created, id"
        ):
            links.charges.setdefault(r["customer_id"], []).append(
                (_iso(r["created"]), r["id"], r["status"])
            )
        q = ("SELECT c.customer_id, d.created, d.id, d.charge_id FROM disputes d "
             "JOIN charges c ON c.id = d.charge_id ORDER BY d.created, d.id")  # fmt: skip
        for r in _rows(conn, q):
            links.disputes.setdefault(r["customer_id"], []).append(
                (_iso(r["created"]), r["id"], r["charge_id"])
            )
    return links


def _latest_before(items: list[tuple[str, str, str]], t: str) -> list[tuple[str, str, str]]:
    return items[: bisect.bisect_right(items, (t, "\uffff", "\uffff"))]


_DISPUTE_WINDOW_DAYS = 60


def feedback_documents(
    data_dir: Path,
    charges: Mapping[str, list[tuple[str, str, str]]],
    disputes: Mapping[str, list[tuple[str, str, str]]],
) -> list[dict[str, Any]]:
    """Feedback with tags, sentiment and links, in key order.

    A billing ticket is about the customer's latest failed charge before it (else the latest
    charge); any feedback given within 60 days after a dispute of the customer is about that
    dispute (and its charge).
    """
    out = []
    for f in read_jsonl(Path(data_dir) / "documents" / "feedback.jsonl"):
        lo, span = (0, 10) if f["rating_scale"] == "0-10" else (1, 4)
        score = round(2 * (f["rating"] - lo) / span - 1, 3)
        label = "negative" if score < -0.2 else "positive" if score > 0.2 else "neutral"
        subjects = {tag for tag, rx in _SUBJECT_RE.items() if rx.search(f["text"])}
        tags = sorted({f["channel"], f["topic"], *subjects})
        charge_id = dispute_id = None
        if f["topic"] == "billing":
            before = _latest_before(charges.get(f["customer_id"], []), f["created"])
            failed = [c for c in before if c[2] == "failed"]
            if failed or before:
                charge_id = (failed or before)[-1][1]
        recent = _latest_before(disputes.get(f["customer_id"], []), f["created"])
        if recent:
            opened = datetime.fromisoformat(recent[-1][0])
            if (datetime.fromisoformat(f["created"]) - opened).days <= _DISPUTE_WINDOW_DAYS:
                dispute_id, charge_id = recent[-1][1], charge_id or recent[-1][2]
        out.append({
            **f, "tags": tags, "sentiment": {"label": label, "score": score},
            "charge_id": charge_id, "dispute_id": dispute_id,
        })  # fmt: skip
    return sorted(out, key=lambda d: d["feedback_id"])


def profile_documents(engine: sa.Engine) -> list[dict[str, Any]]:
    """One version-2 profile per customer from the OLTP tables, in customer id order."""
    with engine.connect() as conn:
        customers = _rows(
            conn,
            "SELECT id, email, name, phone, currency, delinquent, created FROM customers ORDER BY id",
        )
        addresses = {r.pop("customer_id"): r for r in _rows(
            conn, "SELECT customer_id, line1, line2, city, state, postal_code, country FROM customer_addresses")}  # fmt: skip
        pms: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in _rows(conn, "SELECT * FROM payment_methods ORDER BY created, id"):
            card = None
            if r["card_last4"] is not None:
                card = {"brand": r["card_brand"], "funding": r["card_funding"], "country": r["card_country"],
                        "last4": r["card_last4"], "exp_month": r["card_exp_month"],
                        "exp_year": r["card_exp_year"], "fingerprint": r["card_fingerprint"]}  # fmt: skip
            pms[r["customer_id"]].append(
                {"id": r["id"], "type": r["type"], "card": card, "created": _iso(r["created"])}
            )
        subs: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in _rows(
            conn, "SELECT id, customer_id, status, start_date FROM subscriptions ORDER BY id"
        ):
            subs[r["customer_id"]].append(
                {"id": r["id"], "status": r["status"], "started": _iso(r["start_date"])}
            )
        disputed = {r["charge_id"] for r in _rows(conn, "SELECT charge_id FROM disputes")}
        charges: dict[str, list[dict[str, Any]]] = defaultdict(list)
        q = "SELECT id, customer_id, created, amount, currency, status, amount_refunded FROM charges"
        for r in _rows(conn, q):
            if r["customer_id"] is None:
                continue
            charges[r.pop("customer_id")].append(
                {**r, "created": _iso(r["created"]), "disputed": r["id"] in disputed}
            )
    out = []
    for c in customers:
        c["created"] = _iso(c["created"])
        cid = c["id"]
        out.append(profile_v2(c, addresses.get(cid), pms[cid], subs[cid], charges[cid]))
    return out


@dataclass
class BuildReport:
    """What :func:`build_documents` wrote, per collection."""

    target: str
    reports: dict[str, WriteReport] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [str(r) for r in self.reports.values()]
        total = sum(r.written + r.replaced for r in self.reports.values())
        return "\n".join(
            [*lines, f"{self.target}: {total:,} documents in {len(self.reports)} collections"]
        )


def _write(
    store: DocumentStore, name: str, docs: Iterable[dict[str, Any]], bar: Any
) -> WriteReport:
    c = store.collection(name)
    total = WriteReport(name)
    with store.batch():
        c.clear()
        chunk: list[dict[str, Any]] = []
        for doc in docs:
            chunk.append(doc)
            if len(chunk) == _CHUNK:
                _add(total, c.insert(chunk))
                bar.update(len(chunk))
                chunk = []
        if chunk:
            _add(total, c.insert(chunk))
            bar.update(len(chunk))
    return total


def _add(total: WriteReport, r: WriteReport) -> None:
    total.written += r.written
    total.replaced += r.replaced
    total.duplicates += r.duplicates
    total.rejected += r.rejected


def build_documents(
    oltp: str | sa.Engine,
    data_dir: str | Path,
    out: str | Path,
    *,
    warehouse: str | Path | None = None,
    pii_key: bytes | None = None,
    progress: bool = True,
) -> BuildReport:
    """Build every collection into ``out`` (a folder of TinyDB files, or a ``postgresql://`` URL).

    Args:
        oltp: the OLTP database (DuckDB file, ``postgresql://`` URL, or an engine).
        data_dir: a folder written by ``paymodel generate`` (events and documents).
        out: where the collections go; each is cleared and rewritten.
        warehouse: the warehouse built from that OLTP database (DuckDB file or URL), the
            source of ``ml_features``; without it ``ml_features`` is left as it is.
        pii_key: the warehouse's pseudonymisation key (required with ``warehouse``).
        progress: show a progress bar (documents written).

    Raises:
        InvalidDocuments: a built document breaks its schema (nothing of that collection
            is written: the batch is refused whole).
    """
    from tqdm import tqdm

    from paymodel.oltp.ingest import open_target

    if warehouse is not None and pii_key is None:
        raise ValueError("ml_features: a warehouse needs its pseudonymisation key (pii_key)")
    data_dir = Path(data_dir)
    engine = open_target(oltp) if isinstance(oltp, str) else oltp
    try:
        links = oltp_links(engine)
        sources = {
            "events": lambda: event_documents(data_dir),
            "customer_profiles": lambda: profile_documents(engine),
            "behaviour": lambda: behaviour_documents(data_dir),
            "feedback": lambda: feedback_documents(data_dir, links.charges, links.disputes),
        }
        if warehouse is not None:
            from paymodel.documents.features import feature_documents

            sources["ml_features"] = lambda: feature_documents(warehouse, pii_key)
        report = BuildReport(str(out))
        with (
            open_store(out) as store,
            tqdm(desc="documents", unit="doc", disable=not progress) as bar,
        ):
            for name, source in sources.items():
                bar.set_postfix_str(name)
                report.reports[name] = _write(store, name, source(), bar)
    finally:
        if isinstance(oltp, str):
            engine.dispose()
    return report
