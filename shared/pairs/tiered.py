"""Tier rules: candidates fall into ordered tiers; rules pair each member of a better tier with k of a worse one."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from shared.pairs.common import GroupSpec, Seed, base_seed, derived_rng, group_candidates, make_pair
from shared.records import Candidate, Pair

Rule = tuple[str, str, int | None]


def assign_tiers(
    members: Sequence[Candidate], tiers: Mapping[str, Callable[[Candidate], bool]]
) -> dict[str, list[Candidate]]:
    """Return tier name -> members (in input order); the first matching tier wins, unmatched are dropped."""
    out: dict[str, list[Candidate]] = {name: [] for name in tiers}
    for c in members:
        for name, predicate in tiers.items():
            if predicate(c):
                out[name].append(c)
                break
    return out


def tiered_pairs(
    cands: Iterable[Candidate],
    tiers: Mapping[str, Callable[[Candidate], bool]],
    rules: Sequence[Rule],
    seed: Seed = 0,
    group_by: GroupSpec = "prompt_id",
    builder: str = "tiered_pairs",
) -> list[Pair]:
    """Return pairs where each candidate of a rule's better tier meets k seeded draws (without replacement,
    all if fewer or k is None) from the worse tier of its group; rules apply in order."""
    for better, worse, k in rules:
        for name in (better, worse):
            if name not in tiers:
                raise ValueError(
                    f"{builder}: rule ({better!r}, {worse!r}, {k}) names unknown tier {name!r}; tiers are {list(tiers)}"
                )
        if k is not None and k < 1:
            raise ValueError(f"{builder}: rule ({better!r}, {worse!r}, {k}) needs k >= 1 or None")
    base = base_seed(seed)
    pairs = []
    for key, members in group_candidates(cands, group_by):
        by_tier = assign_tiers(members, tiers)
        rng = derived_rng(base, key)
        for better, worse, k in rules:
            pool = by_tier[worse]
            for chosen in by_tier[better]:
                if k is None or k >= len(pool):
                    picked = pool
                else:
                    picked = [pool[i] for i in sorted(rng.sample(range(len(pool)), k))]
                for rejected in picked:
                    pairs.append(make_pair(chosen, rejected, builder, chosen_tier=better, rejected_tier=worse))
    return pairs
