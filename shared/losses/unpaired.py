"""Unpaired (prospect-theoretic) losses: each sample is only labelled desirable or undesirable."""

from __future__ import annotations

import torch
from torch import Tensor

from shared.losses.registry import register_loss
from shared.losses.types import LossInputError, LossOutput, UnpairedTerms


def kto_reference_point(terms: UnpairedTerms, reference_point: str) -> Tensor:
    """Return KTO's detached reference point z0 = max(0, mean KL estimate) for the batch.

    "mismatched": mean(kl_logps - ref_kl_logps) over mismatched (prompt, completion) pairs, as in
    the KTO paper and TRL; "batch": mean of the samples' own log-ratios (Diffusion-KTO's
    estimate); "zero": z0 = 0 (TRL's calculate_KL=False). In distributed training the caller
    averages z0 across processes before calling the loss (it is a batch statistic).
    """
    rho = terms.logps - terms.ref_logps
    if reference_point == "mismatched":
        if terms.kl_logps is None:
            raise LossInputError("loss 'kto': reference_point='mismatched' needs 'kl_logps' and 'ref_kl_logps'")
        estimate = (terms.kl_logps - terms.ref_kl_logps).mean()
    elif reference_point == "batch":
        estimate = rho.mean()
    elif reference_point == "zero":
        return torch.zeros((), dtype=rho.dtype, device=rho.device)
    else:
        raise LossInputError(f"loss 'kto': reference_point must be 'mismatched', 'batch' or 'zero', got '{reference_point}'")
    return estimate.detach().clamp(min=0)


@register_loss("kto", "unpaired", paper="Ethayarajh et al. 2024, KTO (arXiv:2402.01306), Eq. 7", trl="KTOTrainer loss_type='kto'")
def kto_loss(
    terms: UnpairedTerms,
    *,
    beta: float = 0.1,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
    reference_point: str = "mismatched",
    z0: Tensor | None = None,
) -> LossOutput:
    """KTO with rho = logp_policy - logp_ref and a detached reference point z0 >= 0:

    desirable:   lambda_D * (1 - sigma(beta (rho - z0)))
    undesirable: lambda_U * (1 - sigma(beta (z0 - rho)))
    loss = mean over all samples. `z0` overrides the estimate (e.g. already averaged across
    processes); otherwise see `kto_reference_point`. Rewards are beta * rho of the desirable
    (chosen) and undesirable (rejected) samples.
    """
    rho = terms.logps - terms.ref_logps
    ref_point = kto_reference_point(terms, reference_point) if z0 is None else z0.detach()
    good = terms.desirable.bool()
    losses = torch.where(
        good,
        desirable_weight * (1 - torch.sigmoid(beta * (rho - ref_point))),
        undesirable_weight * (1 - torch.sigmoid(beta * (ref_point - rho))),
    )
    rewards = (beta * rho).detach()
    return LossOutput(losses.mean(), losses, rewards[good], rewards[~good], {"kl": ref_point.detach()})


@register_loss("apo_zero_unpaired", "unpaired", paper="D'Oosterlinck et al. 2024, APO (arXiv:2408.06266), unpaired Eq. 7", trl="KTOTrainer loss_type='apo_zero_unpaired'")
def apo_zero_unpaired_loss(
    terms: UnpairedTerms, *, beta: float = 0.1, desirable_weight: float = 1.0, undesirable_weight: float = 1.0
) -> LossOutput:
    """Unpaired APO-zero: loss = lambda_D (1 - sigma(beta rho)) if desirable, lambda_U sigma(beta rho) if not."""
    rho = terms.logps - terms.ref_logps
    good = terms.desirable.bool()
    losses = torch.where(
        good, desirable_weight * (1 - torch.sigmoid(beta * rho)), undesirable_weight * torch.sigmoid(beta * rho)
    )
    rewards = (beta * rho).detach()
    return LossOutput(losses.mean(), losses, rewards[good], rewards[~good])
