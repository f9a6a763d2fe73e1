"""Group policy-gradient parts (GRPO family, RLOO): advantages, KL estimates and clipped losses.

Shapes: per-token tensors are (batch, time) with a completion mask; rewards are (batch,) laid out
group after group (group_size consecutive samples share a prompt), as TRL lays them out.
"""

from __future__ import annotations

import torch
from torch import Tensor

from shared.losses.registry import register_loss
from shared.losses.types import GroupTerms, LossInputError, LossOutput

AGGREGATIONS = ("sequence_mean", "token_mean", "fixed_length", "global_token")


def _nanstd(x: Tensor, dim: int | None = None) -> Tensor:
    """Bessel-corrected standard deviation ignoring NaNs (NaN where fewer than 2 values)."""
    keep = dim is not None
    mean = torch.nanmean(x, dim=dim, keepdim=True) if keep else torch.nanmean(x)
    count = (~torch.isnan(x)).sum(dim=dim, keepdim=keep) if keep else (~torch.isnan(x)).sum()
    var = torch.nanmean((x - mean) ** 2, dim=dim, keepdim=keep) if keep else torch.nanmean((x - mean) ** 2)
    var = var * torch.where(count > 1, count / (count - 1).clamp(min=1), torch.full_like(var, float("nan")))
    return var.sqrt()


def group_advantages(rewards: Tensor, group_size: int, *, scale: str = "group", eps: float = 1e-4) -> Tensor:
    """Return GRPO advantages A_i = (R_i - mean_g R) / (std + eps) for rewards laid out group by group.

    Std convention (TRL's): Bessel-corrected (divide by n - 1), then + eps = 1e-4; a group of one
    has std 0. `scale`: "group" (std within the group, GRPO), "batch" (std over the whole batch,
    as in REINFORCE++ / Lite PPO), "none" (no division: Dr.GRPO). NaN rewards (unscorable samples)
    are left out of the mean and std and get advantage 0.
    """
    if rewards.dim() != 1 or group_size < 1 or rewards.numel() % group_size:
        raise LossInputError(
            f"group_advantages: rewards of shape {tuple(rewards.shape)} cannot be split into groups of {group_size}"
        )
    grouped = rewards.view(-1, group_size)
    mean = torch.nanmean(grouped, dim=1, keepdim=True)
    advantages = (grouped - mean).reshape(-1)
    if scale == "group":
        std = _nanstd(grouped, dim=1) if group_size > 1 else torch.zeros_like(mean)
        advantages = advantages / (std.expand_as(grouped).reshape(-1) + eps)
    elif scale == "batch":
        std = _nanstd(rewards) if rewards.numel() > 1 else torch.zeros(())
        advantages = advantages / (std + eps)
    elif scale != "none":
        raise LossInputError(f"group_advantages: scale must be 'group', 'batch' or 'none', got '{scale}'")
    return torch.nan_to_num(advantages, nan=0.0)


def rloo_advantages(rewards: Tensor, group_size: int, *, kl: Tensor | None = None, beta: float = 0.0,
                    normalize: bool = False, reward_clip: tuple[float, float] | None = None,
                    eps: float = 1e-4) -> Tensor:
    """Return RLOO advantages A_i = R_i - (1 / (k - 1)) sum_{j != i} R_j for rewards laid out group by group.

    RLOO (Ahmadian et al. 2024, "Back to Basics: Revisiting REINFORCE Style Optimization for
    Learning from Human Feedback in LLMs", arXiv:2402.14740): each sample's baseline is the mean
    reward of the other k - 1 samples of its prompt (the leave-one-out baseline). As TRL 1.16.0's
    RLOOTrainer computes it (`_generate_and_score_completions`), in this order:

    - `reward_clip` (min, max) clamps the rewards first (TRL's `reward_clip_range`);
    - with `beta` != 0 the KL to the reference is a reward penalty, R_i <- R_i - beta kl_i, where
      `kl` (batch,) is the first-order estimate summed over the completion,
      kl_i = sum_t (logp_old - logp_ref) (`sequence_kl`), not a loss term as in GRPO;
    - NaN rewards mark unscorable samples: they are left out of their siblings' baselines (k is
      the group's count of scorable samples) and get advantage 0; so does the only scorable
      sample of a group (its baseline is 0/0); a group of one (group_size 1) gets 0 throughout;
    - `normalize` (TRL's `normalize_advantages`, default off) standardises over the whole batch,
      (A - mean) / (Bessel std + eps), scorable samples only.
    """
    if rewards.dim() != 1 or group_size < 1 or rewards.numel() % group_size:
        raise LossInputError(
            f"rloo_advantages: rewards of shape {tuple(rewards.shape)} cannot be split into groups of {group_size}"
        )
    if reward_clip is not None:
        rewards = rewards.clamp(min=reward_clip[0], max=reward_clip[1])
    if beta != 0.0:
        if kl is None:
            raise LossInputError("rloo_advantages: beta != 0 needs the per-sequence 'kl' (see sequence_kl)")
        if tuple(kl.shape) != tuple(rewards.shape):
            raise LossInputError(f"rloo_advantages: 'kl' has shape {tuple(kl.shape)}, expected {tuple(rewards.shape)}")
        rewards = rewards - beta * kl
    if group_size == 1:
        return torch.zeros_like(rewards)
    grouped = rewards.view(-1, group_size)
    scorable = (~torch.isnan(grouped)).sum(dim=1, keepdim=True)
    baselines = (torch.nansum(grouped, dim=1, keepdim=True) - grouped) / (scorable - 1)
    advantages = rewards - baselines.reshape(-1)
    if normalize:
        advantages = (advantages - torch.nanmean(advantages)) / (_nanstd(advantages) + eps)
    return torch.nan_to_num(advantages, nan=0.0)


def sequence_kl(old_logps: Tensor, ref_logps: Tensor, mask: Tensor) -> Tensor:
    """Return the first-order KL estimate summed over each completion, sum_t (logp_old - logp_ref) (batch,).

    RLOO's reward penalty (TRL's RLOOTrainer); unlike k3 it can be negative per token.
    """
    return ((old_logps - ref_logps) * mask.to(old_logps.dtype)).sum(-1)


def informative_groups(rewards: Tensor, group_size: int) -> Tensor:
    """Return a (num_groups,) mask of groups whose rewards are not all equal (DAPO's dynamic sampling keeps these)."""
    grouped = rewards.view(-1, group_size)
    return (grouped.max(dim=1).values - grouped.min(dim=1).values) > 0


def k3_kl(logps: Tensor, ref_logps: Tensor) -> Tensor:
    """Per-token k3 estimate of KL(policy || ref) (Schulman 2020): exp(r) - r - 1 with r = ref - logp; >= 0."""
    r = ref_logps - logps
    return torch.exp(r) - r - 1


def aggregate(per_token: Tensor, mask: Tensor, mode: str, *, max_length: int | None = None,
              num_items: Tensor | float | None = None) -> Tensor:
    """Reduce a (batch, time) per-token loss to a scalar.

    "sequence_mean": mean over sequences of each sequence's token mean (GRPO);
    "token_mean": sum over all tokens / number of tokens (BNPO);
    "fixed_length": sum / (batch * max_length) (Dr.GRPO; max_length defaults to time);
    "global_token": sum / num_items, the global completion-token count (DAPO).
    """
    mask = mask.to(per_token.dtype)
    total = per_token * mask
    if mode == "sequence_mean":
        return (total.sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    if mode == "token_mean":
        return total.sum() / mask.sum().clamp(min=1.0)
    if mode == "fixed_length":
        return total.sum() / (per_token.size(0) * (max_length or per_token.size(1)))
    if mode == "global_token":
        count = mask.sum() if num_items is None else torch.as_tensor(num_items, dtype=per_token.dtype)
        return total.sum() / count.clamp(min=1.0)
    raise LossInputError(f"aggregate: mode must be one of {', '.join(AGGREGATIONS)}, got '{mode}'")


def clipped_policy_loss(
    terms: GroupTerms,
    *,
    aggregation: str,
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.2,
    beta: float = 0.0,
    importance_sampling: str = "token",
    max_completion_length: int | None = None,
) -> LossOutput:
    """PPO-clip surrogate with optional k3 KL to the reference (GRPO family).

    c = exp(logp - logp_old) per token ("token") or exp(mean_t(logp - logp_old)) per sequence
    ("sequence", GSPO); per-token loss = -min(c A, clip(c, 1 - eps_low, 1 + eps_high) A)
    + beta * k3(logp, logp_ref); reduced by `aggregate(aggregation)`.
    """
    mask = terms.mask.to(terms.logps.dtype)
    old = terms.logps.detach() if terms.old_logps is None else terms.old_logps
    log_ratio = terms.logps - old
    if importance_sampling == "token":
        log_weights = log_ratio
    elif importance_sampling == "sequence":
        log_weights = ((log_ratio * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).unsqueeze(-1)
    else:
        raise LossInputError(f"group loss: importance_sampling must be 'token' or 'sequence', got '{importance_sampling}'")
    advantages = terms.advantages if terms.advantages.dim() == 2 else terms.advantages.unsqueeze(1)
    ratio = torch.exp(log_weights)
    clipped = torch.clamp(ratio, 1 - epsilon_low, 1 + epsilon_high)
    per_token = -torch.min(ratio * advantages, clipped * advantages)
    metrics = {}
    if beta != 0.0:
        if terms.ref_logps is None:
            raise LossInputError("group loss: beta != 0 needs GroupTerms field 'ref_logps', which is None")
        kl = k3_kl(terms.logps, terms.ref_logps)
        per_token = per_token + beta * kl
        metrics["kl"] = ((kl * mask).sum() / mask.sum().clamp(min=1.0)).detach()
    per_token = per_token.expand_as(terms.logps)
    low = (ratio < 1 - epsilon_low) & (advantages < 0)
    high = (ratio > 1 + epsilon_high) & (advantages > 0)
    metrics["clip_ratio/region_mean"] = (((low | high).expand_as(mask) * mask).sum() / mask.sum().clamp(min=1.0)).detach()
    loss = aggregate(per_token, mask, aggregation, max_length=max_completion_length, num_items=terms.num_items)
    per_sequence = (per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)
    return LossOutput(loss, per_sequence.detach(), metrics=metrics)


@register_loss("grpo", "group", paper="Shao et al. 2024, DeepSeekMath / GRPO (arXiv:2402.03300)", trl="GRPOTrainer loss_type='grpo'")
def grpo_loss(terms: GroupTerms, *, epsilon_low: float = 0.2, epsilon_high: float = 0.2, beta: float = 0.0,
              importance_sampling: str = "token") -> LossOutput:
    """GRPO: loss = (1/B) sum_i (1/|o_i|) sum_t l_it, l_it the clipped surrogate + beta k3 KL (clipped_policy_loss)."""
    return clipped_policy_loss(terms, aggregation="sequence_mean", epsilon_low=epsilon_low,
                               epsilon_high=epsilon_high, beta=beta, importance_sampling=importance_sampling)


@register_loss("bnpo", "group", paper="Xiao et al. 2025, BNPO; token-level mean over the batch", trl="GRPOTrainer loss_type='bnpo'")
def bnpo_loss(terms: GroupTerms, *, epsilon_low: float = 0.2, epsilon_high: float = 0.2, beta: float = 0.0,
              importance_sampling: str = "token") -> LossOutput:
    """BNPO: loss = sum_it l_it / sum_i |o_i|, the surrogate averaged over all completion tokens of the batch."""
    return clipped_policy_loss(terms, aggregation="token_mean", epsilon_low=epsilon_low,
                               epsilon_high=epsilon_high, beta=beta, importance_sampling=importance_sampling)


@register_loss("dr_grpo", "group", paper="Liu et al. 2025, Understanding R1-Zero-Like Training (Dr. GRPO, arXiv:2503.20783)", trl="GRPOTrainer loss_type='dr_grpo'")
def dr_grpo_loss(terms: GroupTerms, *, epsilon_low: float = 0.2, epsilon_high: float = 0.2, beta: float = 0.0,
                 max_completion_length: int | None = None, importance_sampling: str = "token") -> LossOutput:
    """Dr.GRPO: loss = sum_it l_it / (B * max_completion_length); pair with group_advantages(scale='none')."""
    return clipped_policy_loss(terms, aggregation="fixed_length", epsilon_low=epsilon_low,
                               epsilon_high=epsilon_high, beta=beta, importance_sampling=importance_sampling,
                               max_completion_length=max_completion_length)


@register_loss("dapo", "group", paper="Yu et al. 2025, DAPO (arXiv:2503.14476)", trl="GRPOTrainer loss_type='dapo'")
def dapo_loss(terms: GroupTerms, *, epsilon_low: float = 0.2, epsilon_high: float = 0.28, beta: float = 0.0,
              importance_sampling: str = "token") -> LossOutput:
    """DAPO: loss = sum_it l_it / N_global with clip-higher (eps_high = 0.28); N_global = GroupTerms.num_items.

    Dynamic sampling (dropping groups whose rewards are all equal) is `informative_groups`.
    """
    return clipped_policy_loss(terms, aggregation="global_token", epsilon_low=epsilon_low,
                               epsilon_high=epsilon_high, beta=beta, importance_sampling=importance_sampling)


@register_loss("rloo", "group",
               paper="Ahmadian et al. 2024, Back to Basics: Revisiting REINFORCE Style Optimization (RLOO, arXiv:2402.14740)",
               trl="RLOOTrainer (advantages: rloo_advantages)")
def rloo_loss(terms: GroupTerms, *, epsilon_low: float = 0.2, epsilon_high: float = 0.2) -> LossOutput:
    """RLOO: loss = -(1/B) sum_i min(c_i A_i, clip(c_i, 1 - eps_low, 1 + eps_high) A_i), c_i = exp(logp_i - logp_old_i).

    logp_i = sum_t logp_it over the completion (the ratio is per sequence, of summed log-probs,
    unlike GSPO's token mean); A_i are per-sequence `rloo_advantages`. On policy (old = None) c = 1
    and this is REINFORCE with the leave-one-out baseline. There is no KL term in the loss: as in
    TRL's RLOOTrainer, the KL to the reference is a reward penalty inside `rloo_advantages`.
    """
    if terms.advantages.dim() != 1:
        raise LossInputError("loss 'rloo' needs per-sequence advantages of shape (batch,), got "
                             f"{tuple(terms.advantages.shape)}")
    mask = terms.mask.to(terms.logps.dtype)
    old = terms.logps.detach() if terms.old_logps is None else terms.old_logps
    log_ratio = (terms.logps * mask).sum(-1) - (old * mask).sum(-1)
    ratio = torch.exp(log_ratio)
    clipped = torch.clamp(ratio, 1 - epsilon_low, 1 + epsilon_high)
    losses = -torch.min(ratio * terms.advantages, clipped * terms.advantages)
    low = (ratio < 1 - epsilon_low) & (terms.advantages < 0)
    high = (ratio > 1 + epsilon_high) & (terms.advantages > 0)
    metrics = {"clip_ratio/low_mean": low.float().mean().detach(), "clip_ratio/high_mean": high.float().mean().detach(),
               "clip_ratio/region_mean": (low | high).float().mean().detach()}
    return LossOutput(losses.mean(), losses.detach(), metrics=metrics)
