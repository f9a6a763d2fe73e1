"""Curriculum ordering of pairs, easy to hard (Curry-DPO, TEMPLE)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from shared.pairs.common import canonical_key
from shared.records import Pair


def margin_difficulty(pair: Pair) -> float:
    """Return -margin: a larger score gap is an easier pair (Curry-DPO's rating gap)."""
    if pair.margin is None:
        raise ValueError("margin_difficulty needs Pair.margin; pass difficulty= for pairs without one")
    return -pair.margin


def curriculum_order(
    pairs: Iterable[Pair], difficulty: Callable[[Pair], float] = margin_difficulty, stages: int | None = 1
) -> list[list[Pair]]:
    """Return non-empty stages of pairs sorted easy to hard: `stages` contiguous chunks of near-equal size
    (earlier chunks take the remainder), or one stage per distinct difficulty when stages is None."""
    if stages is not None and stages < 1:
        raise ValueError(f"stages must be >= 1 or None, got {stages}")
    keyed = sorted(((difficulty(p), canonical_key(p), p) for p in pairs), key=lambda t: (t[0], t[1]))
    if stages is None:
        out: list[list[Pair]] = []
        last = object()
        for d, _, p in keyed:
            if d != last:
                out.append([])
                last = d
            out[-1].append(p)
        return out
    size, extra = divmod(len(keyed), stages)
    out, start = [], 0
    for s in range(stages):
        end = start + size + (1 if s < extra else 0)
        if end > start:
            out.append([p for _, _, p in keyed[start:end]])
        start = end
    return out
