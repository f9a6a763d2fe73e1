"""Helpers every pair builder shares: score lookup, canonical ordering, grouping, seeded RNGs."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from shared.records import Candidate, Pair

ScoreSpec = str | Callable[[Candidate], float]
GroupSpec = str | Callable[[Candidate], Hashable] | None
Seed = int | random.Random


def resolve_score(score: ScoreSpec) -> Callable[[Candidate], float]:
    """Return a function giving a candidate's finite score (an aspect name or a callable)."""

    def get(c: Candidate) -> float:
        if callable(score):
            value = score(c)
        elif score in c.scores:
            value = c.scores[score]
        else:
            raise ValueError(f"candidate of prompt_id={c.prompt_id!r} has no score {score!r} (has {sorted(c.scores)})")
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"candidate of prompt_id={c.prompt_id!r} has a non-finite score {value}")
        return value

    return get


def canonical_key(record: Candidate | Pair) -> str:
    """Return a string that orders records independently of the order they arrived in."""
    return json.dumps(record.to_dict(), sort_keys=True, ensure_ascii=False, default=repr)


def group_candidates(
    cands: Iterable[Candidate], group_by: GroupSpec = "prompt_id"
) -> list[tuple[Any, list[Candidate]]]:
    """Return (group key, candidates) pairs, groups and members both in canonical order."""
    groups: dict[Any, list[Candidate]] = {}
    for c in cands:
        if group_by is None:
            key = None
        elif callable(group_by):
            key = group_by(c)
        else:
            key = getattr(c, group_by)
        groups.setdefault(key, []).append(c)
    ordered = sorted(groups.items(), key=lambda kv: json.dumps(kv[0], sort_keys=True, default=repr))
    return [(key, sorted(members, key=canonical_key)) for key, members in ordered]


def base_seed(seed: Seed) -> int:
    """Return an integer seed: the int itself, or one draw from a given random.Random."""
    return seed.getrandbits(64) if isinstance(seed, random.Random) else int(seed)


def derived_rng(base: int, *parts: Any) -> random.Random:
    """Return a Random seeded from the base seed and parts (e.g. a group key), stable across runs."""
    # String seeds are hashed with SHA-512 by random.Random, so this does not depend on PYTHONHASHSEED.
    return random.Random(json.dumps([base, *parts], sort_keys=True, default=repr))


def make_pair(chosen: Candidate, rejected: Candidate, builder: str, margin: float | None = None, **extra: Any) -> Pair:
    """Return a Pair of two candidates of the same prompt, with provenance in metadata."""
    if chosen.prompt != rejected.prompt:
        raise ValueError(
            f"{builder}: cannot pair outputs of different prompts "
            f"(prompt_id {chosen.prompt_id!r} vs {rejected.prompt_id!r})"
        )
    metadata = {"builder": builder, "prompt_id": chosen.prompt_id, **extra}
    return Pair(prompt=chosen.prompt, chosen=chosen.output, rejected=rejected.output, margin=margin, metadata=metadata)
