"""Listwise preference losses over ranked lists (best first), on implicit rewards rho = logp - logp_ref."""

from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import Tensor

from shared.losses.registry import register_loss
from shared.losses.types import ListTerms, LossInputError, LossOutput


def _very_negative(x: Tensor) -> float:
    # A finite stand-in for -inf: exp() underflows to 0 yet gradients through torch.where stay finite.
    return torch.finfo(x.dtype).min / 4


def _list_rewards(beta_rho: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    last = valid.long().cumsum(dim=1).argmax(dim=1)  # index of the last real entry
    return beta_rho[:, 0].detach(), beta_rho.gather(1, last[:, None]).squeeze(1).detach()


def _check_lists(loss: str, terms: ListTerms) -> Tensor:
    valid = terms.valid()
    if bool((valid.sum(dim=1) < 2).any()):
        raise LossInputError(f"loss '{loss}': every list needs at least 2 real entries")
    return valid


@register_loss("plackett_luce", "listwise", paper="Plackett 1975 / Luce 1959; listwise DPO as in Rafailov et al. 2023, Appendix A.3")
def plackett_luce_loss(terms: ListTerms, *, beta: float = 0.1) -> LossOutput:
    """Plackett-Luce negative log-likelihood of the given order (best first), s_k = beta rho_k:

    loss = -sum_{k < K-1} [s_k - log sum_{j >= k} exp(s_j)], over real entries only.
    For K = 2 this is exactly DPO's -log sigma(beta (rho_1 - rho_2)).
    """
    valid = _check_lists("plackett_luce", terms)
    s = beta * (terms.logps - terms.ref_logps)
    s_masked = s.masked_fill(~valid, _very_negative(s))
    tail_lse = torch.flip(torch.logcumsumexp(torch.flip(s_masked, [1]), dim=1), [1])
    has_successor = torch.flip(torch.cumsum(torch.flip(valid.long(), [1]), dim=1), [1]) > 1
    per_position = torch.where(valid & has_successor, s_masked - tail_lse, torch.zeros_like(s))
    losses = -per_position.sum(dim=1)
    chosen, rejected = _list_rewards(s, valid)
    return LossOutput(losses.mean(), losses, chosen, rejected)


def dcg_pair_weights(scores: Tensor, rho: Tensor, valid: Tensor) -> Tensor:
    """Return RankDPO's pair weights Delta_ij = |G_i - G_j| * |1/D(tau_i) - 1/D(tau_j)| for score_i > score_j.

    G = 2^score - 1 (gain); tau = 1-based rank of each entry under the current implicit rewards
    (detached); D(tau) = log2(1 + tau). Pairs with equal scores or a masked entry get weight 0.
    """
    gains = torch.pow(2.0, scores) - 1
    order_key = rho.detach().masked_fill(~valid, _very_negative(rho))
    ranks = torch.argsort(torch.argsort(order_key, dim=1, descending=True), dim=1).to(rho.dtype) + 1
    inv_discount = 1.0 / torch.log2(1 + ranks)
    weight = (gains[:, :, None] - gains[:, None, :]).abs() * (inv_discount[:, :, None] - inv_discount[:, None, :]).abs()
    better = scores[:, :, None] > scores[:, None, :]
    both_real = valid[:, :, None] & valid[:, None, :]
    return torch.where(better & both_real, weight, torch.zeros_like(weight))


@register_loss("rankdpo", "listwise", paper="Karthik et al. 2024, Scalable Ranked Preference Optimization (RankDPO)")
def rankdpo_loss(terms: ListTerms, *, beta: float = 0.1) -> LossOutput:
    """RankDPO: DCG-weighted pairwise DPO over a ranked list (needs ListTerms.scores):

    loss = sum_{i,j: score_i > score_j} Delta_ij * -log sigma(beta (rho_i - rho_j)),
    Delta_ij from `dcg_pair_weights`. Summed over pairs as in the paper, averaged over lists.
    The rank tau under the model's current rewards is our reading of the paper (unverified).
    """
    if terms.scores is None:
        raise LossInputError("loss 'rankdpo' needs ListTerms field 'scores', which is None")
    valid = _check_lists("rankdpo", terms)
    rho = terms.logps - terms.ref_logps
    weight = dcg_pair_weights(terms.scores.to(rho.dtype), rho, valid)
    pair_loss = -F.logsigmoid(beta * (rho[:, :, None] - rho[:, None, :]))
    losses = (weight * pair_loss).sum(dim=(1, 2))
    chosen, rejected = _list_rewards(beta * rho, valid)
    return LossOutput(losses.mean(), losses, chosen, rejected)


@register_loss("tpo_list", "listwise", paper="Liao et al. 2024, TPO: Multi-branch & Multi-step Preference Trees (list ranking)")
def tpo_list_loss(terms: ListTerms, *, beta: float = 0.1, temperature: float = 1.0) -> LossOutput:
    """TPO-style preference list ranking as listwise softmax cross-entropy (ListNet form):

    target q = softmax(scores / temperature), model p = softmax(beta rho), both over real entries;
    loss = -sum_k q_k log p_k. Without scores, q is the list's order taken as scores K-1, ..., 0.
    The exact ranking objective of the TPO paper is not verified; this form is ours and documented
    as such. TPO's adaptive step reward shapes the scores before they reach this loss.
    """
    valid = _check_lists("tpo_list", terms)
    rho = terms.logps - terms.ref_logps
    neg = _very_negative(rho)
    if terms.scores is None:
        k = terms.logps.size(1)
        scores = torch.arange(k - 1, -1, -1, dtype=rho.dtype, device=rho.device).expand_as(rho)
    else:
        scores = terms.scores.to(rho.dtype)
    target = torch.softmax((scores / temperature).masked_fill(~valid, neg), dim=1)
    log_p = torch.log_softmax((beta * rho).masked_fill(~valid, neg), dim=1)
    losses = -(target * torch.where(valid, log_p, torch.zeros_like(log_p))).sum(dim=1)
    chosen, rejected = _list_rewards(beta * rho, valid)
    return LossOutput(losses.mean(), losses, chosen, rejected, {"list_entropy_floor": -(target * target.clamp_min(1e-30).log()).sum(1).mean()})


__all__ = ["dcg_pair_weights", "plackett_luce_loss", "rankdpo_loss", "tpo_list_loss"]
