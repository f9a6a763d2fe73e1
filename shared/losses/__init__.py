"""Preference losses: pure tensor functions registered by config name.

    from shared.losses import get_loss, PairTerms
    out = get_loss("sigmoid")(PairTerms(...), beta=0.1)   # LossOutput(loss, losses, rewards, metrics)

One module per family: pairwise, unpaired, strength, listwise, group, diffusion. See
docs/losses.md for every formula, paper and TRL equivalent.
"""

from shared.losses import diffusion, group, listwise, pairwise, strength, unpaired  # noqa: F401  (registers)
from shared.losses.diffusion import DenoisingErrors, DenoisingPairErrors
from shared.losses.group import aggregate, group_advantages, informative_groups, k3_kl, rloo_advantages, sequence_kl
from shared.losses.registry import LossSpec, combine_losses, get_loss, list_losses, register_loss
from shared.losses.types import (
    GroupTerms,
    ListTerms,
    LossInputError,
    LossOutput,
    PairTerms,
    UnpairedTerms,
)

__all__ = [
    "DenoisingErrors",
    "DenoisingPairErrors",
    "GroupTerms",
    "ListTerms",
    "LossInputError",
    "LossOutput",
    "LossSpec",
    "PairTerms",
    "UnpairedTerms",
    "aggregate",
    "combine_losses",
    "get_loss",
    "group_advantages",
    "informative_groups",
    "k3_kl",
    "list_losses",
    "register_loss",
    "rloo_advantages",
    "sequence_kl",
]
