"""Ranked keyword search for the embedded store: BM25 (the ``bm25s`` library) with English stemming.

TinyDB has no text index; the PostgreSQL twin uses ``tsvector`` with a GIN index. Here the
ranking is Okapi BM25 from ``bm25s`` (sparse-matrix BM25 on NumPy), with English stop words
removed and words stemmed by PyStemmer (Snowball), so "declined" finds "decline". DuckDB's
fts extension would need another DuckDB version than the project's pin.

Example:
    >>> index = TextIndex(["fb_1", "fb_2", "fb_3"], [
    ...     "My card was declined", "Too expensive for a small team", "Card declined again, retry please"])
    >>> [key for key, _ in index.query("declining card", limit=2)]
    ['fb_1', 'fb_3']
    >>> index.query("zebra")
    []
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import bm25s
import numpy as np
import Stemmer

__all__ = ["LABELLED_QUERIES", "TextIndex", "search_quality"]

_STEMMER = Stemmer.Stemmer("english")


def _tokens(texts: Sequence[str]) -> list[list[str]]:
    return bm25s.tokenize(
        list(texts), stopwords="en", stemmer=_STEMMER, return_ids=False, show_progress=False
    )


class TextIndex:
    """A BM25 index over ``texts``, answering with their ``keys``; ties broken by key."""

    def __init__(self, keys: Sequence[str], texts: Sequence[str]) -> None:
        # Kept in key order, so that a position is also the tie-break rank.
        pairs = sorted(zip(keys, texts, strict=True))
        self.keys = [k for k, _ in pairs]
        self._bm25 = bm25s.BM25()
        self._vocab: set[str] = set()
        if self.keys:
            tokens = _tokens([t for _, t in pairs])
            self._vocab = {t for doc in tokens for t in doc}
            self._bm25.index(tokens, show_progress=False)

    def query(self, text: str, limit: int = 10) -> list[tuple[str, float]]:
        """``(key, score)`` of the best ``limit`` matches, best first; only scores above 0."""
        terms = [t for t in _tokens([text])[0] if t in self._vocab]
        if not terms or not self.keys:
            return []
        scores = np.asarray(self._bm25.get_scores(terms), dtype=np.float64)
        hits = np.flatnonzero(scores > 0)
        order = hits[np.lexsort((hits, -np.round(scores[hits], 6)))][:limit]
        return [(self.keys[i], float(scores[i])) for i in order]


LABELLED_QUERIES: tuple[tuple[str, str], ...] = (
    (
        "card declined even though I have money",
        "My card was declined but I have funds, can you retry the payment?",
    ),
    (
        "subscription cancelled after I updated my card",
        "Why was my subscription canceled? I updated my card.",
    ),
    ("charged but the invoice is still open", "I was charged but my invoice still shows as open."),
    ("add a teammate to the workspace", "How do I add a teammate to my workspace?"),
    ("export button broken in safari", "The export button does nothing in Safari."),
    ("change the billing email", "Can I change the billing email on my account?"),
    ("export to google sheets", "Good overall, but I miss an export to Google Sheets."),
    ("need SSO on the team plan", "Please add SSO on the Team plan."),
    ("more granular roles", "It works, but we need more granular roles."),
    ("per seat pricing adds up", "Useful, but the per-seat price adds up quickly for us."),
    ("dashboard slow this month", "The dashboard was slow several times this month."),
    (
        "reports fail to load, need to refresh",
        "Reports sometimes fail to load and I have to refresh.",
    ),
    ("cancel, too expensive for our use", "Canceling because it is too expensive for what we use."),
    ("budget cuts, cannot justify cost", "Budget cuts, we cannot justify the cost right now."),
    ("integrations you do not offer", "We need integrations you do not offer yet."),
    ("project ended, no longer needed", "The project ended, we no longer need it."),
    (
        "competitor bundles it with the CRM",
        "Moving to a competitor that bundles this with our CRM.",
    ),
    ("found a cheaper alternative", "Found a cheaper alternative."),
    ("support answered within an hour", "Support answered within the hour, really impressed."),
    ("setup took five minutes", "Great product, setup took five minutes."),
    ("reports save hours every week", "Reports save me hours every week. Keep it up!"),
    ("only evaluating, not the right time", "We were only evaluating; not the right time for us."),
    (
        "switching to a tool with better reporting features",
        "Switching to a tool that has the reporting features we need.",
    ),
    ("too expensive for a small team", "Too expensive for a small team."),
)
"""A held set of labelled queries for the feedback collection: (query, the relevant text).

Queries paraphrase a feedback text (other word forms, missing words, extra words); a
query's relevant documents are the ones with that text. Written by hand, not tuned on
the results.
"""


def search_quality(
    collection: Any, queries: Sequence[tuple[str, str]] = LABELLED_QUERIES
) -> tuple[int, int]:
    """``(hits, asked)``: of the queries whose relevant text is in ``collection``, how many
    have a relevant document as their best match."""
    present = {d["text"] for d in collection.all()}
    asked = [(q, text) for q, text in queries if text in present]
    hits = 0
    for q, text in asked:
        best = collection.search(q, limit=1)
        hits += bool(best) and best[0].doc["text"] == text
    return hits, len(asked)
