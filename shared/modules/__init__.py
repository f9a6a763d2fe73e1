"""LightningModules, one job each, and the parts they share (tokenised data, reference log-probs)."""

from shared.modules.group_rl import GroupRLModule
from shared.modules.data import (
    EncodedList,
    EncodedPair,
    PreferenceCollator,
    RankedListCollator,
    encode_completion,
    encode_pairs,
    encode_prompt,
    encode_ranked_lists,
)
from shared.modules.media import MediaCollator
from shared.modules.preference import PreferenceModule
from shared.modules.reward_model import RewardModel, RewardModelModule, SignalRewardModule
from shared.modules.sft import SFTCollator, SFTModule, encode_sft
from shared.modules.reference import (
    AdapterDisabledReference,
    FrozenCopyReference,
    PrecomputedReference,
    Reference,
    ReferenceSoftSync,
    build_reference,
    model_fingerprint,
    precompute_reference,
    soft_update,
)

__all__ = [
    "MediaCollator",
    "EncodedList",
    "RankedListCollator",
    "ReferenceSoftSync",
    "encode_ranked_lists",
    "model_fingerprint",
    "precompute_reference",
    "soft_update",
    "GroupRLModule",
    "RewardModel",
    "RewardModelModule",
    "SignalRewardModule",
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
