"""BM25 ranking over a list of texts (`bm25s`, Lucene's scoring: k1 1.5, b 0.75, English stop words dropped).

Used by apps that retrieve: passages for RAG answers, similar training examples for retrieval-augmented
fine-tuning. Texts are tokenised by bm25s (lower-cased words); an index keeps only positions, so
callers map the returned indices back to their own records.
"""

from __future__ import annotations

from collections.abc import Sequence


class BM25Index:
    """`search(query, k)` returns the positions of the k best-matching texts, best first."""

    def __init__(self, texts: Sequence[str]):
        import bm25s

        if not texts:
            raise ValueError("BM25Index needs at least one text")
        self._bm25s = bm25s
        self.size = len(texts)
        self.index = bm25s.BM25()
        self.index.index(bm25s.tokenize(list(texts), stopwords="en", show_progress=False), show_progress=False)

    def search(self, query: str, k: int = 5, exclude: Sequence[int] = ()) -> list[int]:
        """Positions of the k best texts for `query`, best first, skipping the positions in `exclude`."""
        want = min(k + len(exclude), self.size)
        if want <= 0:
            return []
        tokens = self._bm25s.tokenize([query], stopwords="en", show_progress=False)
        ids, _ = self.index.retrieve(tokens, k=want, show_progress=False)
        skip = set(exclude)
        return [int(i) for i in ids[0] if int(i) not in skip][:k]
