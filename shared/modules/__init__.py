"""LightningModules, one job each, and the parts they share (tokenised data, reference log-probs)."""

from shared.modules.group_rl import GroupRLModule
from shared.modules.data import EncodedPair, PreferenceCollator, encode_completion, encode_pairs, encode_prompt
from shared.modules.preference import PreferenceModule
from shared.modules.reward_model import RewardModel, RewardModelModule
from shared.modules.sft import SFTCollator, SFTModule, encode_sft
from shared.modules.reference import (
    AdapterDisabledReference,
    FrozenCopyReference,
    PrecomputedReference,
    Reference,
    build_reference,
)

__all__ = [
    "GroupRLModule",
    "RewardModel",
    "RewardModelModule",
    "SFTCollator",
    "SFTModule",
    "encode_sft",
    "AdapterDisabledReference",
    "EncodedPair",
    "FrozenCopyReference",
    "PrecomputedReference",
    "PreferenceCollator",
    "PreferenceModule",
    "Reference",
    "build_reference",
    "encode_completion",
    "encode_pairs",
    "encode_prompt",
]
