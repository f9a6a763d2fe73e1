"""Strength-aware pairwise losses: the preference itself is a probability, not a hard label."""

from __future__ import annotations

import torch.nn.functional as F

from shared.losses.registry import register_loss
from shared.losses.types import LossInputError, LossOutput, PairTerms, weighted_mean


def _soft_cross_entropy(h, p):
    return -(p * F.logsigmoid(h) + (1 - p) * F.logsigmoid(-h))


@register_loss("soft_preference", "strength", paper="Online Self-Preferring LMs (OSP), soft-preference cross-entropy")
def soft_preference_loss(terms: PairTerms, *, beta: float = 0.1, label_smoothing: float = 0.0) -> LossOutput:
    """Soft-preference cross-entropy with a per-pair preference probability p = PairTerms.strength:

    loss = -(p log sigma(beta h) + (1 - p) log sigma(-beta h)),  h = rho_w - rho_l.
    With `label_smoothing` eps > 0, p is shrunk toward 1/2: p' = (1 - 2 eps) p + eps (so p = 1
    becomes cDPO's 1 - eps). p = 1/2 gives the constant log 2 and a zero gradient.
    """
    terms.require("soft_preference", "strength")
    if not 0 <= label_smoothing < 0.5:
        raise LossInputError(f"loss 'soft_preference': label_smoothing must lie in [0, 0.5), got {label_smoothing}")
    rho_w, rho_l = terms.logratios("soft_preference")
    p = (1 - 2 * label_smoothing) * terms.strength + label_smoothing
    losses = _soft_cross_entropy(beta * (rho_w - rho_l), p)
    return LossOutput(weighted_mean(losses, terms.weight), losses, (beta * rho_w).detach(), (beta * rho_l).detach())


@register_loss("smoothed_preference", "strength", paper="Lu et al. 2025, SmPO-Diffusion (smoothed preference distribution)")
def smoothed_preference_loss(terms: PairTerms, *, beta: float = 0.1, gamma: float = 1.0) -> LossOutput:
    """SmPO: the DPO logit is scaled by the smoothed preference, with p = PairTerms.strength:

    loss = -log sigma((2 p - gamma) * beta * h). With gamma = 1, p = 1 is DPO, p = 1/2 contributes
    no gradient and p < 1/2 reverses the pair. (The form `2 alpha - gamma` follows our method
    notes; the paper's reward-model averaging that produces p belongs to the app.)
    """
    terms.require("smoothed_preference", "strength")
    rho_w, rho_l = terms.logratios("smoothed_preference")
    losses = -F.logsigmoid((2 * terms.strength - gamma) * beta * (rho_w - rho_l))
    return LossOutput(weighted_mean(losses, terms.weight), losses, (beta * rho_w).detach(), (beta * rho_l).detach())
