"""Reward plumbing: the Reward protocol, a never-raising base class, adapters, a cache and a process pool."""

from shared.rewards.adapters import GroupNormalize, OutcomeGate, WeightedSum
from shared.rewards.cache import CachedReward, default_key
from shared.rewards.pool import ProcessPoolReward
from shared.rewards.protocol import VALID, Reward, RewardFunction, describe_error, invalid_scores, normalize_batch

__all__ = [
    "VALID",
    "CachedReward",
    "GroupNormalize",
    "OutcomeGate",
    "ProcessPoolReward",
    "Reward",
    "RewardFunction",
    "WeightedSum",
    "default_key",
    "describe_error",
    "invalid_scores",
    "normalize_batch",
]
