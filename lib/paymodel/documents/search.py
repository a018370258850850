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

import bm25s
import numpy as np
import Stemmer

__all__ = ["TextIndex"]

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
