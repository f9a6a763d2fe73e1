"""Reward adapters that add a derived aspect: weighted sum, per-group normalisation, outcome gate.

An adapter is itself a Reward. It computes its aspect from the wrapped reward's numbers as they
are, so an invalid sample contributes its `invalid_score` values (a failed rollout still counts in
its GRPO group); `valid` passes through unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from shared.rewards.protocol import VALID, Reward, normalize_batch


class _Adapter:
    """Wraps a reward, adds one aspect, forwards `invalid_score` and `last_errors`."""

    def __init__(self, reward: Reward, name: str, needs: Sequence[str]) -> None:
        missing = [a for a in needs if a not in reward.aspects]
        if missing:
            raise ValueError(
                f"{type(self).__name__}: wrapped reward has no aspect {missing[0]!r} (has {list(reward.aspects)})"
            )
        if name in reward.aspects or name == VALID:
            raise ValueError(f"{type(self).__name__}: aspect name {name!r} is already taken")
        self.reward = reward
        self.name = name
        self.aspects = (*reward.aspects, name)
        self.invalid_score = getattr(reward, "invalid_score", 0.0)

    @property
    def last_errors(self) -> list[str | None] | None:
        """Return the wrapped reward's per-sample failure reasons of the last call, if it records them."""
        return getattr(self.reward, "last_errors", None)

    def __call__(
        self, prompts: Sequence[Any], outputs: Sequence[Any], contexts: Sequence[dict] | None = None
    ) -> list[dict[str, float]]:
        """Return the wrapped reward's scores with this adapter's aspect added."""
        prompts, outputs, contexts = normalize_batch(prompts, outputs, contexts)
        scores = [dict(s) for s in self.reward(prompts, outputs, contexts)]
        for s, value in zip(scores, self.derive(scores, contexts)):
            s[self.name] = value
        return scores

    def derive(self, scores: list[dict[str, float]], contexts: list[dict]) -> list[float]:
        """Return the added aspect's value per sample."""
        raise NotImplementedError


class WeightedSum(_Adapter):
    """Adds `name` = sum of weight * aspect over the given weights."""

    def __init__(self, reward: Reward, weights: Mapping[str, float], name: str = "total") -> None:
        super().__init__(reward, name, list(weights))
        self.weights = dict(weights)

    def derive(self, scores: list[dict[str, float]], contexts: list[dict]) -> list[float]:
        """Return the weighted sum per sample."""
        return [sum(w * s[a] for a, w in self.weights.items()) for s in scores]


class GroupNormalize(_Adapter):
    """Adds `<aspect>/normalized` = (x - group mean) / (group std + eps), GRPO's advantage.

    The std is Bessel-corrected (n - 1) and eps = 1e-4 is added to it, as in TRL's GRPOTrainer; a
    group of one sample gets 0. Groups are consecutive runs of `group_size` samples, or, when
    group_size is None, the samples sharing `context["group"]`.
    """

    def __init__(self, reward: Reward, aspect: str, group_size: int | None = None, eps: float = 1e-4) -> None:
        super().__init__(reward, f"{aspect}/normalized", [aspect])
        if group_size is not None and group_size < 1:
            raise ValueError(f"group_size must be >= 1 or None, got {group_size}")
        self.aspect, self.group_size, self.eps = aspect, group_size, eps

    def _groups(self, n: int, contexts: list[dict]) -> list[Hashable]:
        if self.group_size is not None:
            if n % self.group_size:
                raise ValueError(f"GroupNormalize: batch of {n} is not a multiple of group_size {self.group_size}")
            return [i // self.group_size for i in range(n)]
        if any("group" not in c for c in contexts):
            raise ValueError("GroupNormalize without group_size needs context['group'] for every sample")
        return [c["group"] for c in contexts]

    def derive(self, scores: list[dict[str, float]], contexts: list[dict]) -> list[float]:
        """Return each sample's score normalised within its group."""
        keys = self._groups(len(scores), contexts)
        members: dict[Hashable, list[float]] = {}
        for key, s in zip(keys, scores):
            members.setdefault(key, []).append(s[self.aspect])
        stats = {}
        for key, xs in members.items():
            mean = sum(xs) / len(xs)
            std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
            stats[key] = (mean, std)
        return [(s[self.aspect] - stats[k][0]) / (stats[k][1] + self.eps) for k, s in zip(keys, scores)]


class OutcomeGate(_Adapter):
    """Posterior-GRPO: adds `name` = format + outcome + outcome * process, the process reward counting
    only when the outcome succeeded (outcome == 1); `gate=False` gives the outcome-only baseline
    format + outcome. `format=None` drops the format term."""

    def __init__(
        self,
        reward: Reward,
        outcome: str = "outcome",
        process: str = "process",
        format: str | None = "format",
        name: str = "total",
        gate: bool = True,
    ) -> None:
        needs = [outcome] + ([process] if gate else []) + ([format] if format else [])
        super().__init__(reward, name, needs)
        self.outcome, self.process, self.format, self.gate = outcome, process, format, gate

    def derive(self, scores: list[dict[str, float]], contexts: list[dict]) -> list[float]:
        """Return the gated total per sample."""
        out = []
        for s in scores:
            total = s[self.outcome] + (s[self.format] if self.format else 0.0)
            # Literal "counts only when all tests pass": a partial outcome (e.g. 0.9) earns no process reward.
            if self.gate and s[self.outcome] == 1.0:
                total += s[self.process]
            out.append(total)
        return out
