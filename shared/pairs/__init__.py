"""Pair builders: scored candidates in, preference pairs or ranked lists out (seeded, order-independent)."""

from shared.pairs.common import canonical_key, group_candidates, resolve_score
from shared.pairs.curriculum import curriculum_order, margin_difficulty
from shared.pairs.minimax import minimax_pairs
from shared.pairs.perturb import PerturbationError, perturbation_negatives
from shared.pairs.plaid import plaid_pairs, plaid_spacegroup_pairs
from shared.pairs.ranked import ranked_lists
from shared.pairs.select import best_vs_worst, margin_pairs, threshold_pairs
from shared.pairs.tiered import assign_tiers, tiered_pairs

__all__ = [
    "PerturbationError",
    "assign_tiers",
    "best_vs_worst",
    "canonical_key",
    "curriculum_order",
    "group_candidates",
    "margin_difficulty",
    "margin_pairs",
    "minimax_pairs",
    "perturbation_negatives",
    "plaid_pairs",
    "plaid_spacegroup_pairs",
    "ranked_lists",
    "resolve_score",
    "threshold_pairs",
    "tiered_pairs",
]
