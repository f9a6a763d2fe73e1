"""Top-K ranking metrics for one held-out target item per user, as RecBole's `Hit` and `NDCG` define them.

With a single relevant item at 1-based rank r in the recommended list (r = inf when absent):
    HR@K   = 1 if r <= K else 0
    NDCG@K = 1 / log2(r + 1) if r <= K else 0      (the ideal DCG of one relevant item is 1)
RecBole's `evaluator/metrics.py` gives the same numbers for one positive (its NDCG divides by the
ideal DCG of min(#positives, K) items).
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def target_rank(ranked: Sequence[str], target: str) -> int | None:
    """1-based rank of target in the list; None when absent."""
    for i, item in enumerate(ranked):
        if item == target:
            return i + 1
    return None


def ranking_row(ranked: Sequence[str], target: str, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """{"hit@K": 0/1, "ndcg@K": ...} for each K, from a ranked list (best first) and the target."""
    rank = target_rank(ranked, target)
    row = {}
    for k in ks:
        inside = rank is not None and rank <= k
        row[f"hit@{k}"] = 1.0 if inside else 0.0
        row[f"ndcg@{k}"] = 1.0 / math.log2(rank + 1) if inside else 0.0
    return row
