"""Score-based pair selection: best vs worst, all pairs above a margin, thresholded top (Prompt-A-Video)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from shared.pairs.common import (
    GroupSpec,
    ScoreSpec,
    Seed,
    base_seed,
    derived_rng,
    group_candidates,
    make_pair,
    resolve_score,
)
from shared.records import Candidate, Pair


def _ranked(members: list[Candidate], score: ScoreSpec) -> list[tuple[float, Candidate]]:
    """Members with scores, best first; ties keep canonical order."""
    get = resolve_score(score)
    scored = [(get(c), c) for c in members]
    order = sorted(range(len(scored)), key=lambda i: (-scored[i][0], i))
    return [scored[i] for i in order]


def best_vs_worst(
    cands: Iterable[Candidate], score: ScoreSpec = "total", min_margin: float = 0.0, group_by: GroupSpec = "prompt_id"
) -> list[Pair]:
    """Return one pair per group, highest vs lowest score, skipping groups whose gap is 0 or below min_margin."""
    pairs = []
    for _, members in group_candidates(cands, group_by):
        ranked = _ranked(members, score)
        if len(ranked) < 2:
            continue
        (best, c_best), (worst, c_worst) = ranked[0], ranked[-1]
        gap = best - worst
        if gap <= 0 or gap < min_margin:
            continue
        pairs.append(make_pair(c_best, c_worst, "best_vs_worst", margin=gap, chosen_score=best, rejected_score=worst))
    return pairs


def margin_pairs(
    cands: Iterable[Candidate],
    score: ScoreSpec = "total",
    margin: float = 0.0,
    max_pairs_per_prompt: int | None = None,
    seed: Seed = 0,
    group_by: GroupSpec = "prompt_id",
) -> list[Pair]:
    """Return every (better, worse) pair per group with a gap > 0 and >= margin, capped by a seeded subsample."""
    if max_pairs_per_prompt is not None and max_pairs_per_prompt < 1:
        raise ValueError(f"max_pairs_per_prompt must be >= 1 or None, got {max_pairs_per_prompt}")
    base = base_seed(seed)
    pairs = []
    for key, members in group_candidates(cands, group_by):
        ranked = _ranked(members, score)
        found = [
            (i, j)
            for i in range(len(ranked))
            for j in range(i + 1, len(ranked))
            if ranked[i][0] - ranked[j][0] > 0 and ranked[i][0] - ranked[j][0] >= margin
        ]
        if max_pairs_per_prompt is not None and len(found) > max_pairs_per_prompt:
            keep = sorted(derived_rng(base, key).sample(range(len(found)), max_pairs_per_prompt))
            found = [found[k] for k in keep]
        for i, j in found:
            (si, ci), (sj, cj) = ranked[i], ranked[j]
            pairs.append(make_pair(ci, cj, "margin_pairs", margin=si - sj, chosen_score=si, rejected_score=sj))
    return pairs


def threshold_pairs(
    cands: Iterable[Candidate],
    score: ScoreSpec = "total",
    chosen_threshold: float | None = None,
    margin: float = 0.0,
    per_dimension_thresholds: Mapping[str, float] | None = None,
    group_by: GroupSpec = "prompt_id",
    tries: int = 1,
) -> list[Pair]:
    """Return, per group, a chosen candidate paired against every candidate more than `margin` below it
    (Prompt-A-Video's DPO data).

    The chosen one is the first of the group's `tries` best candidates that clears chosen_threshold and
    every per-dimension threshold (Prompt-A-Video tries the top, then the second: tries=2); a group
    where none clears gives no pair.
    """
    if tries < 1:
        raise ValueError(f"threshold_pairs: tries must be at least 1, got {tries}")
    pairs = []
    for _, members in group_candidates(cands, group_by):
        ranked = _ranked(members, score)
        if len(ranked) < 2:
            continue
        for top_score, top in ranked[:tries]:
            if chosen_threshold is not None and top_score < chosen_threshold:
                break  # the ones below score lower still
            if _clears(top, per_dimension_thresholds or {}):
                break
        else:
            continue
        if chosen_threshold is not None and top_score < chosen_threshold:
            continue
        for s, c in ranked:
            if c is not top and top_score - s > margin:
                pairs.append(
                    make_pair(top, c, "threshold_pairs", margin=top_score - s, chosen_score=top_score, rejected_score=s)
                )
    return pairs


def _clears(c: Candidate, thresholds: Mapping[str, float]) -> bool:
    for aspect, threshold in thresholds.items():
        if aspect not in c.scores:
            raise ValueError(f"candidate of prompt_id={c.prompt_id!r} has no score {aspect!r} for its threshold")
        if c.scores[aspect] < threshold:
            return False
    return True
