"""Inputs and outputs shared by every loss: per-sample implicit-reward terms in, a LossOutput out."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch
from torch import Tensor


class LossInputError(ValueError):
    """A loss was given tensors of the wrong shape, or non-finite values."""


def check_tensors(where: str, expected_shape: tuple[int, ...] | None = None, **tensors: Tensor | None) -> None:
    """Raise LossInputError unless every given tensor has `expected_shape` (or the first one's) and is finite."""
    shape = expected_shape
    for name, value in tensors.items():
        if value is None:
            continue
        if not isinstance(value, Tensor):
            raise LossInputError(f"{where}: field '{name}' must be a torch.Tensor, got {type(value).__name__}")
        if shape is None:
            shape = tuple(value.shape)
        elif tuple(value.shape) != tuple(shape):
            raise LossInputError(
                f"{where}: field '{name}' has shape {tuple(value.shape)}, expected {tuple(shape)}"
            )
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise LossInputError(f"{where}: field '{name}' contains NaN or infinite values")


@dataclass(frozen=True)
class PairTerms:
    """Per-pair terms for pairwise losses; every tensor has shape (batch,).

    `*_logps` are sequence sums of policy log-probs (or, for diffusion, negated weighted denoising
    errors); `ref_*` the same under the reference. Lengths are completion token counts, used by
    the losses that length-normalise (IPO, sigmoid_norm, SimPO, ORPO). `chosen_nll` is the
    token-mean negative log-likelihood of the chosen completion (ORPO, the `sft` term), either per
    pair or one scalar for the batch. `strength` is a per-pair preference probability
    P(chosen > rejected) for the strength-aware losses; `weight` scales each pair's loss; `margin`
    is a per-pair offset the implicit-reward gap must exceed (losses that take one say how).
    """

    chosen_logps: Tensor
    rejected_logps: Tensor
    ref_chosen_logps: Tensor | None = None
    ref_rejected_logps: Tensor | None = None
    chosen_lengths: Tensor | None = None
    rejected_lengths: Tensor | None = None
    chosen_nll: Tensor | None = None
    strength: Tensor | None = None
    weight: Tensor | None = None
    margin: Tensor | None = None

    def __post_init__(self) -> None:
        if self.chosen_logps.dim() != 1:
            raise LossInputError(
                f"PairTerms: field 'chosen_logps' must have shape (batch,), got {tuple(self.chosen_logps.shape)}"
            )
        per_pair = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "chosen_nll"}
        check_tensors("PairTerms", tuple(self.chosen_logps.shape), **per_pair)
        if self.chosen_nll is not None and self.chosen_nll.dim() != 0:
            check_tensors("PairTerms", tuple(self.chosen_logps.shape), chosen_nll=self.chosen_nll)
        elif self.chosen_nll is not None:
            check_tensors("PairTerms", (), chosen_nll=self.chosen_nll)
        if (self.ref_chosen_logps is None) != (self.ref_rejected_logps is None):
            raise LossInputError("PairTerms: give both 'ref_chosen_logps' and 'ref_rejected_logps', or neither")
        if self.strength is not None and bool(((self.strength < 0) | (self.strength > 1)).any()):
            raise LossInputError("PairTerms: field 'strength' must lie in [0, 1]")

    def require(self, loss: str, *names: str) -> None:
        """Raise LossInputError naming the loss and the first missing field among `names`."""
        for name in names:
            if getattr(self, name) is None:
                raise LossInputError(f"loss '{loss}' needs PairTerms field '{name}', which is None")

    def logratios(self, loss: str) -> tuple[Tensor, Tensor]:
        """Return (rho_chosen, rho_rejected) = policy minus reference sequence log-probs."""
        self.require(loss, "ref_chosen_logps", "ref_rejected_logps")
        return self.chosen_logps - self.ref_chosen_logps, self.rejected_logps - self.ref_rejected_logps

    def lengths(self, loss: str) -> tuple[Tensor, Tensor]:
        """Return (chosen_lengths, rejected_lengths) clamped to >= 1, as floats."""
        self.require(loss, "chosen_lengths", "rejected_lengths")
        return self.chosen_lengths.float().clamp(min=1.0), self.rejected_lengths.float().clamp(min=1.0)


@dataclass(frozen=True)
class UnpairedTerms:
    """Per-sample terms for unpaired (KTO-style) losses; tensors of shape (batch,).

    `desirable` marks good samples. `kl_logps` / `ref_kl_logps` are log-probs of mismatched
    (prompt, completion) pairs used for KTO's reference point; any batch size.
    """

    logps: Tensor
    ref_logps: Tensor
    desirable: Tensor
    kl_logps: Tensor | None = None
    ref_kl_logps: Tensor | None = None

    def __post_init__(self) -> None:
        if self.logps.dim() != 1:
            raise LossInputError(f"UnpairedTerms: field 'logps' must have shape (batch,), got {tuple(self.logps.shape)}")
        check_tensors("UnpairedTerms", tuple(self.logps.shape), logps=self.logps, ref_logps=self.ref_logps,
                      desirable=self.desirable)
        if (self.kl_logps is None) != (self.ref_kl_logps is None):
            raise LossInputError("UnpairedTerms: give both 'kl_logps' and 'ref_kl_logps', or neither")
        check_tensors("UnpairedTerms", None, kl_logps=self.kl_logps, ref_kl_logps=self.ref_kl_logps)


@dataclass(frozen=True)
class ListTerms:
    """Per-list terms for listwise losses; tensors of shape (batch, list_size), best first.

    `mask` marks real entries (lists may be shorter than list_size; masked entries are ignored).
    `scores` are the graded relevance of each entry (used by DCG weights and target distributions).
    """

    logps: Tensor
    ref_logps: Tensor
    mask: Tensor | None = None
    scores: Tensor | None = None

    def __post_init__(self) -> None:
        if self.logps.dim() != 2:
            raise LossInputError(
                f"ListTerms: field 'logps' must have shape (batch, list_size), got {tuple(self.logps.shape)}"
            )
        check_tensors("ListTerms", tuple(self.logps.shape), logps=self.logps, ref_logps=self.ref_logps,
                      mask=self.mask, scores=self.scores)

    def valid(self) -> Tensor:
        """Return the boolean mask of real list entries."""
        return torch.ones_like(self.logps, dtype=torch.bool) if self.mask is None else self.mask.bool()


@dataclass(frozen=True)
class GroupTerms:
    """Per-token terms for group policy-gradient losses; tensors of shape (batch, time).

    `old_logps` are the sampling policy's log-probs (None: on-policy, taken as `logps.detach()`);
    `ref_logps` enable the KL penalty; `advantages` has shape (batch,) or (batch, time);
    `mask` marks completion tokens. `num_items` is the global completion-token count that DAPO
    divides by (defaults to this batch's `mask.sum()`).
    """

    logps: Tensor
    advantages: Tensor
    mask: Tensor
    old_logps: Tensor | None = None
    ref_logps: Tensor | None = None
    num_items: Tensor | float | None = None

    def __post_init__(self) -> None:
        if self.logps.dim() != 2:
            raise LossInputError(f"GroupTerms: field 'logps' must have shape (batch, time), got {tuple(self.logps.shape)}")
        check_tensors("GroupTerms", tuple(self.logps.shape), logps=self.logps, mask=self.mask,
                      old_logps=self.old_logps, ref_logps=self.ref_logps)
        adv_shape = tuple(self.advantages.shape)
        if adv_shape not in (tuple(self.logps.shape[:1]), tuple(self.logps.shape)):
            raise LossInputError(
                f"GroupTerms: field 'advantages' has shape {adv_shape}, expected {tuple(self.logps.shape[:1])} "
                f"or {tuple(self.logps.shape)}"
            )
        check_tensors("GroupTerms", adv_shape, advantages=self.advantages)


@dataclass
class LossOutput:
    """A loss value and what a trainer logs with it.

    `loss` is the scalar to minimise; `losses` the per-sample values it averages; the rewards are
    the detached implicit rewards that TRL logs as `rewards/chosen` and `rewards/rejected`.
    """

    loss: Tensor
    losses: Tensor
    chosen_rewards: Tensor | None = None
    rejected_rewards: Tensor | None = None
    metrics: dict[str, Tensor] = field(default_factory=dict)


def weighted_mean(losses: Tensor, weight: Tensor | None) -> Tensor:
    """Return mean(losses * weight), or the plain mean without weights."""
    return losses.mean() if weight is None else (losses * weight).mean()
