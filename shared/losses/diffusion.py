"""Diffusion preference losses: the language-model losses fed denoising errors as implicit rewards.

For a sample x_0 noised to x_t with noise eps at timestep t (the SAME eps and t for both sides of
a pair, and for policy and reference), e = mean ||eps - eps_hat(x_t, t, c)||^2 per sample. The
implicit reward is rho = -s * (e_policy - e_ref), where s is the method's weight (Diffusion-DPO's
official code uses s = 1/2, i.e. beta/2; a per-sample tensor such as T * w(t) also works).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor

from shared.losses.pairwise import sigmoid_loss
from shared.losses.registry import register_loss
from shared.losses.strength import smoothed_preference_loss
from shared.losses.types import LossInputError, LossOutput, PairTerms, UnpairedTerms, check_tensors
from shared.losses.unpaired import kto_loss


@dataclass(frozen=True)
class DenoisingPairErrors:
    """Per-pair mean squared denoising errors, shape (batch,), at shared noise and timestep."""

    policy_chosen: Tensor
    policy_rejected: Tensor
    ref_chosen: Tensor
    ref_rejected: Tensor
    strength: Tensor | None = None
    # The chosen sample denoised under its pair's negative (conflicting) prompt, same noise and timestep (OSPO).
    policy_chosen_negative: Tensor | None = None
    ref_chosen_negative: Tensor | None = None

    def __post_init__(self) -> None:
        check_tensors("DenoisingPairErrors", None, policy_chosen=self.policy_chosen,
                      policy_rejected=self.policy_rejected, ref_chosen=self.ref_chosen,
                      ref_rejected=self.ref_rejected, strength=self.strength,
                      policy_chosen_negative=self.policy_chosen_negative, ref_chosen_negative=self.ref_chosen_negative)

    def to_pair_terms(self, scale: float | Tensor = 0.5, swap: bool = False) -> PairTerms:
        """Return PairTerms with logps = -scale * error, so rho = -scale * (e_policy - e_ref)."""
        w, l = (self.policy_rejected, self.policy_chosen) if swap else (self.policy_chosen, self.policy_rejected)
        rw, rl = (self.ref_rejected, self.ref_chosen) if swap else (self.ref_chosen, self.ref_rejected)
        return PairTerms(chosen_logps=-scale * w, rejected_logps=-scale * l,
                         ref_chosen_logps=-scale * rw, ref_rejected_logps=-scale * rl, strength=self.strength)


@dataclass(frozen=True)
class DenoisingErrors:
    """Per-sample mean squared denoising errors for unpaired (KTO) training, shape (batch,)."""

    policy: Tensor
    ref: Tensor
    desirable: Tensor

    def to_unpaired_terms(self, scale: float | Tensor = 1.0) -> UnpairedTerms:
        """Return UnpairedTerms with rho = -scale * (e_policy - e_ref)."""
        return UnpairedTerms(logps=-scale * self.policy, ref_logps=-scale * self.ref, desirable=self.desirable)


@register_loss("diffusion_dpo", "diffusion", paper="Wallace et al. 2024, Diffusion-DPO (arXiv:2311.12908); SalesforceAIResearch/DiffusionDPO")
def diffusion_dpo_loss(errors: DenoisingPairErrors, *, beta: float = 5000.0, scale: float = 0.5) -> LossOutput:
    """Diffusion-DPO: loss = -log sigma(-beta s ((e_pol_w - e_pol_l) - (e_ref_w - e_ref_l))), s = 1/2.

    This is `sigmoid` on rho = -s (e_policy - e_ref). beta = 5000 is the official SD1.5 setting;
    the diffusers research example folds the 1/2 into beta (use scale=1 to match it).
    """
    return sigmoid_loss(errors.to_pair_terms(scale), beta=beta)


@register_loss("diffusion_npo", "diffusion", paper="Wang et al. 2025, Diffusion-NPO: negative preference optimisation")
def diffusion_npo_loss(errors: DenoisingPairErrors, *, beta: float = 5000.0, scale: float = 0.5) -> LossOutput:
    """Diffusion-NPO: loss = -log sigma(+beta s ((e_pol_w - e_pol_l) - (e_ref_w - e_ref_l))), DPO with w and l swapped.

    The model trained this way is used as the negative (unconditional) branch of classifier-free
    guidance; the rewards returned are for the swapped roles.
    """
    return sigmoid_loss(errors.to_pair_terms(scale, swap=True), beta=beta)


@register_loss("diffusion_smpo", "diffusion", paper="Lu et al. 2025, SmPO-Diffusion (smoothed preference)")
def diffusion_smpo_loss(errors: DenoisingPairErrors, *, beta: float = 5000.0, scale: float = 0.5,
                        gamma: float = 1.0) -> LossOutput:
    """SmPO-Diffusion: loss = -log sigma((2 p - gamma) beta h), h = rho_w - rho_l from denoising errors, p = errors.strength."""
    return smoothed_preference_loss(errors.to_pair_terms(scale), beta=beta, gamma=gamma)


@register_loss("diffusion_ospo", "diffusion", paper="Oh et al. 2025, OSPO (arXiv:2506.02015), adapted to denoising errors")
def diffusion_ospo_loss(errors: DenoisingPairErrors, *, beta: float = 5000.0, scale: float = 0.5, pair_weight: float = 0.8,
                        cond_weight: float = 0.5, sft_weight: float = 1.5) -> LossOutput:
    """OSPO's conditional preference loss on denoising errors: pair term + conditional term + SFT term.

    With rho(x | c) = -s (e_pol(x, c) - e_ref(x, c)) at one shared noise and timestep, c the base
    prompt, c' its hard negative prompt, x_w chosen and x_l rejected:

        loss = pair_weight * -log sigma(beta (rho(x_w | c) - rho(x_l | c)))      (Diffusion-DPO pair term)
             + cond_weight * -log sigma(beta (rho(x_w | c) - rho(x_w | c')))     (x_w fits its own prompt better)
             + sft_weight  * e_pol(x_w, c)                                       (denoising loss on the chosen)

    Weights 0.8 / 0.5 / 1.5 are OSPO's release values. OSPO trains an autoregressive image model
    with SimPO-style length-normalised log-likelihoods; a denoising model has no likelihood, so the
    implicit reward here is Diffusion-DPO's reference-relative one. Object-mask weighting (OSPO's
    later version) enters through the errors: the module weights each pixel's squared error.
    """
    if errors.policy_chosen_negative is None or errors.ref_chosen_negative is None:
        raise LossInputError("diffusion_ospo needs the chosen sample's errors under the negative prompt "
                             "(batch 'negative_encoder_hidden_states')")
    pair = sigmoid_loss(errors.to_pair_terms(scale), beta=beta)
    rho_w = -scale * (errors.policy_chosen - errors.ref_chosen)
    rho_neg = -scale * (errors.policy_chosen_negative - errors.ref_chosen_negative)
    cond = -F.logsigmoid(beta * (rho_w - rho_neg))
    sft = errors.policy_chosen
    losses = pair_weight * pair.losses + cond_weight * cond + sft_weight * sft
    metrics = {"ospo/pair": pair.losses.mean().detach(), "ospo/cond": cond.mean().detach(), "ospo/sft": sft.mean().detach(),
               "ospo/cond_acc": (rho_w > rho_neg).float().mean().detach()}
    return LossOutput(loss=losses.mean(), losses=losses, chosen_rewards=pair.chosen_rewards,
                      rejected_rewards=pair.rejected_rewards, metrics=metrics)


@register_loss("diffusion_kto", "diffusion", paper="Li et al. 2024, Diffusion-KTO (arXiv:2404.04465)")
def diffusion_kto_loss(errors: DenoisingErrors, *, beta: float = 5000.0, desirable_weight: float = 1.0,
                       undesirable_weight: float = 1.0, scale: float = 1.0) -> LossOutput:
    """Diffusion-KTO: g = s (e_ref - e_pol), z = max(0, mean_batch g) detached;

    loss = w_y (1 - sigma(sign_y beta (g - z))), sign_y = +1 desirable, -1 undesirable. This is
    `kto` with reference_point="batch".
    """
    return kto_loss(errors.to_unpaired_terms(scale), beta=beta, desirable_weight=desirable_weight,
                    undesirable_weight=undesirable_weight, reference_point="batch")
