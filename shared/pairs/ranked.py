"""Ranked lists per prompt (RankDPO, TPO, Plackett-Luce losses)."""

from __future__ import annotations

from collections.abc import Iterable

from shared.pairs.common import GroupSpec, ScoreSpec, group_candidates, resolve_score
from shared.records import Candidate, RankedList


def ranked_lists(
    cands: Iterable[Candidate], score: ScoreSpec = "total", min_size: int = 2, group_by: GroupSpec = "prompt_id"
) -> list[RankedList]:
    """Return one best-first RankedList per group with at least min_size candidates (ties in canonical order)."""
    get = resolve_score(score)
    lists = []
    for _, members in group_candidates(cands, group_by):
        if len(members) < min_size:
            continue
        prompts = {repr(c.prompt) for c in members}
        if len(prompts) > 1:
            raise ValueError(f"ranked_lists: a group mixes {len(prompts)} different prompts")
        scored = sorted(((get(c), i, c) for i, c in enumerate(members)), key=lambda t: (-t[0], t[1]))
        lists.append(
            RankedList(
                prompt=members[0].prompt,
                outputs=[c.output for _, _, c in scored],
                scores=[s for s, _, _ in scored],
                metadata={"builder": "ranked_lists", "prompt_id": members[0].prompt_id},
            )
        )
    return lists
