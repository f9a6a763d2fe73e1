"""PLaID++ pair rules for iterative DPO on crystal structures (andaero/PLaID, DPO_preprocess.py).

Energies above hull in eV/atom come from `Candidate.scores[e_hull]`; a missing or non-finite value
(a structure that failed to parse or relax) counts as unstable, as in the code's later versions.

- Rounds before `tiered_from_round` (rounds 1-2 by default): every candidate with E_hull < threshold
  is chosen against 3 random candidates with E_hull >= threshold (code: `random.sample(rejects, 3)`).
- Later rounds, tiers: stable (E_hull <= 0) split into novel / not novel, metastable
  (0 < E_hull <= threshold), unstable. Rules: stable&novel over stable&not-novel x1; every stable
  over metastable x1 and over unstable x2; metastable over unstable x2.
- METHODS.md says "x3 in round 1" for metastable over unstable. Read literally that can only apply
  when the tiered rules run in round 1, i.e. with `tiered_from_round=1`; the code takes this count
  from its `--ratio` flag (default 2), so the 3 is a run setting, not a separate rule.
Draws are without replacement (the code samples with replacement); all are taken when fewer exist.

`plaid_spacegroup_pairs` is the space-group-conditioned variant (code: create_sg_preference_dataset_novel),
per requested space group: "stable" there means E_hull <= threshold; stable with the requested space
group over stable without it x2; stable & novel & matching over stable & not novel & matching x2;
stable over unstable (E_hull above the threshold, or no energy at all) x2.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from shared.pairs.common import GroupSpec, Seed
from shared.pairs.tiered import tiered_pairs
from shared.records import Candidate, Pair


def plaid_pairs(
    cands: Iterable[Candidate],
    round_index: int,
    e_hull: str = "e_hull",
    novel: str = "novel",
    threshold: float = 0.08,
    seed: Seed = 0,
    group_by: GroupSpec = None,
    tiered_from_round: int = 3,
) -> list[Pair]:
    """Return the PLaID++ pairs for a (1-based) round over one pool of candidates (group_by=None)."""
    if round_index < 1:
        raise ValueError(f"round_index is 1-based, got {round_index}")

    def energy(c: Candidate) -> float:
        value = c.scores.get(e_hull, math.inf)
        return value if math.isfinite(value) else math.inf

    def is_novel(c: Candidate) -> bool:
        return c.scores.get(novel, 0.0) >= 0.5

    if round_index < tiered_from_round:
        tiers = {"below": lambda c: energy(c) < threshold, "above": lambda c: True}
        rules = [("below", "above", 3)]
    else:
        tiers = {
            "stable_novel": lambda c: energy(c) <= 0 and is_novel(c),
            "stable_not_novel": lambda c: energy(c) <= 0,
            "metastable": lambda c: energy(c) <= threshold,
            "unstable": lambda c: True,
        }
        rules = [
            ("stable_novel", "stable_not_novel", 1),
            ("stable_novel", "metastable", 1),
            ("stable_not_novel", "metastable", 1),
            ("stable_novel", "unstable", 2),
            ("stable_not_novel", "unstable", 2),
            ("metastable", "unstable", 3 if round_index == 1 else 2),
        ]
    return tiered_pairs(cands, tiers, rules, seed=seed, group_by=group_by, builder="plaid_pairs")


def plaid_spacegroup_pairs(
    cands: Iterable[Candidate],
    e_hull: str = "e_hull",
    novel: str = "novel",
    sg_match: str = "sg_match",
    threshold: float = 0.08,
    per_rule: int = 2,
    seed: Seed = 0,
    group_by: GroupSpec = "prompt_id",
) -> list[Pair]:
    """Return PLaID++'s space-group-conditioned pairs within each group (one group per requested space group)."""

    def energy(c: Candidate) -> float:
        value = c.scores.get(e_hull, math.inf)
        return value if math.isfinite(value) else math.inf

    def flag(c: Candidate, name: str) -> bool:
        return c.scores.get(name, 0.0) >= 0.5

    tiers = {
        "matching_novel": lambda c: energy(c) <= threshold and flag(c, sg_match) and flag(c, novel),
        "matching_not_novel": lambda c: energy(c) <= threshold and flag(c, sg_match),
        "not_matching": lambda c: energy(c) <= threshold,
        "unstable": lambda c: True,
    }
    rules = [
        ("matching_novel", "not_matching", per_rule),
        ("matching_not_novel", "not_matching", per_rule),
        ("matching_novel", "matching_not_novel", per_rule),
        ("matching_novel", "unstable", per_rule),
        ("matching_not_novel", "unstable", per_rule),
        ("not_matching", "unstable", per_rule),
    ]
    return tiered_pairs(cands, tiers, rules, seed=seed, group_by=group_by, builder="plaid_spacegroup_pairs")
