"""Pairwise preference losses on implicit rewards.

Notation used in every docstring: rho_w = logp_policy(y_w|x) - logp_ref(y_w|x) for the chosen
completion, rho_l the same for the rejected one (sequence sums), h = rho_w - rho_l, sigma the
logistic function. |y| is a completion's token count. Each function returns a LossOutput whose
`loss` is the mean of the per-pair `losses` (times PairTerms.weight when given) and whose rewards
are beta * rho (what TRL logs as rewards/chosen and rewards/rejected).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from shared.losses.registry import register_loss
from shared.losses.types import LossInputError, LossOutput, PairTerms, weighted_mean


def _output(losses: Tensor, terms: PairTerms, chosen_rewards: Tensor, rejected_rewards: Tensor, **metrics) -> LossOutput:
    return LossOutput(
        loss=weighted_mean(losses, terms.weight),
        losses=losses,
        chosen_rewards=chosen_rewards.detach(),
        rejected_rewards=rejected_rewards.detach(),
        metrics={k: v.detach() for k, v in metrics.items()},
    )


def _reference_output(losses: Tensor, terms: PairTerms, beta: float, rho_w: Tensor, rho_l: Tensor) -> LossOutput:
    return _output(losses, terms, beta * rho_w, beta * rho_l)


def _check_smoothing(loss: str, label_smoothing: float, *, open_interval: bool = False) -> None:
    low_ok = label_smoothing > 0 if open_interval else label_smoothing >= 0
    if not (low_ok and label_smoothing < 0.5):
        bound = "(0, 0.5)" if open_interval else "[0, 0.5)"
        raise LossInputError(f"loss '{loss}': label_smoothing must lie in {bound}, got {label_smoothing}")


@register_loss("sigmoid", "pairwise", paper="Rafailov et al. 2023, DPO (arXiv:2305.18290)", trl="DPOTrainer loss_type='sigmoid'")
def sigmoid_loss(terms: PairTerms, *, beta: float = 0.1) -> LossOutput:
    """DPO: loss = -log sigma(beta * (rho_w - rho_l))."""
    rho_w, rho_l = terms.logratios("sigmoid")
    return _reference_output(-F.logsigmoid(beta * (rho_w - rho_l)), terms, beta, rho_w, rho_l)


@register_loss("latency_dpo", "pairwise",
               paper="SimulPL (Wang et al. 2025) latency-aware DPO; our form (the paper's loss is unpublished), offset as ODPO")
def latency_dpo_loss(terms: PairTerms, *, beta: float = 0.1, gamma: float = 1.0) -> LossOutput:
    """Latency-aware DPO with a per-pair latency margin m = PairTerms.margin:

    loss = -log sigma(beta * (rho_w - rho_l) - gamma * m).
    m is how much less latency the chosen translation has than the rejected one (apps/simulmt uses
    (LAAL_l - LAAL_w) / |source|, >= 0), so a pair that saves more latency must be separated by a
    larger implicit-reward gap, as ODPO's offset does for a stronger preference. The read/write
    policy enters through the log-probs: rho sums READ tokens as well as target tokens. gamma = 0
    (or m = 0) is DPO.
    """
    terms.require("latency_dpo", "margin")
    rho_w, rho_l = terms.logratios("latency_dpo")
    losses = -F.logsigmoid(beta * (rho_w - rho_l) - gamma * terms.margin)
    return _reference_output(losses, terms, beta, rho_w, rho_l)


@register_loss("hinge", "pairwise", paper="Zhao et al. 2023, SLiC-HF (arXiv:2305.10425)", trl="DPOTrainer loss_type='hinge'")
def hinge_loss(terms: PairTerms, *, beta: float = 0.1) -> LossOutput:
    """SLiC hinge: loss = max(0, 1 - beta * (rho_w - rho_l))."""
    rho_w, rho_l = terms.logratios("hinge")
    return _reference_output(torch.relu(1 - beta * (rho_w - rho_l)), terms, beta, rho_w, rho_l)


@register_loss("ipo", "pairwise", paper="Azar et al. 2023, IPO (arXiv:2310.12036), Eq. 17", trl="DPOTrainer loss_type='ipo'")
def ipo_loss(terms: PairTerms, *, beta: float = 0.1, length_normalize: bool = True) -> LossOutput:
    """IPO: loss = (rho_w/|y_w| - rho_l/|y_l| - 1/(2 beta))^2.

    beta plays the role of the paper's tau. Each side is divided by its own completion length
    (TRL's convention, confirmed with the IPO authors); `length_normalize=False` uses the
    sequence sums as written in the paper.
    """
    rho_w, rho_l = terms.logratios("ipo")
    if length_normalize:
        len_w, len_l = terms.lengths("ipo")
        delta = rho_w / len_w - rho_l / len_l
    else:
        delta = rho_w - rho_l
    return _reference_output((delta - 1 / (2 * beta)) ** 2, terms, beta, rho_w, rho_l)


@register_loss("robust", "pairwise", paper="Chowdhury et al. 2024, Provably Robust DPO (arXiv:2403.00409)", trl="DPOTrainer loss_type='robust'")
def robust_loss(terms: PairTerms, *, beta: float = 0.1, label_smoothing: float = 0.1) -> LossOutput:
    """Robust DPO (rDPO), unbiased under label flips with rate eps = label_smoothing:

    loss = [-(1 - eps) log sigma(beta h) + eps log sigma(-beta h)] / (1 - 2 eps).
    """
    _check_smoothing("robust", label_smoothing)
    rho_w, rho_l = terms.logratios("robust")
    h = beta * (rho_w - rho_l)
    eps = label_smoothing
    losses = (-(1 - eps) * F.logsigmoid(h) + eps * F.logsigmoid(-h)) / (1 - 2 * eps)
    return _reference_output(losses, terms, beta, rho_w, rho_l)


@register_loss("cdpo", "pairwise", paper="Mitchell 2023, A note on DPO with noisy preferences (cDPO)", trl="CPOTrainer loss_type='sigmoid' with label_smoothing")
def cdpo_loss(terms: PairTerms, *, beta: float = 0.1, label_smoothing: float = 0.1) -> LossOutput:
    """Conservative DPO (label smoothing eps): loss = -(1 - eps) log sigma(beta h) - eps log sigma(-beta h)."""
    _check_smoothing("cdpo", label_smoothing)
    rho_w, rho_l = terms.logratios("cdpo")
    h = beta * (rho_w - rho_l)
    losses = -(1 - label_smoothing) * F.logsigmoid(h) - label_smoothing * F.logsigmoid(-h)
    return _reference_output(losses, terms, beta, rho_w, rho_l)


@register_loss("exo_pair", "pairwise", paper="Ji et al. 2024, EXO (arXiv:2402.00856), Eq. 16", trl="DPOTrainer loss_type='exo_pair'")
def exo_pair_loss(terms: PairTerms, *, beta: float = 0.1, label_smoothing: float = 1e-3) -> LossOutput:
    """EXO-pref for K=2: KL(q || p) with q = softmax(beta * rho) over {w, l}, p = (1 - eps, eps):

    loss = sigma(beta h) (log sigma(beta h) - log(1 - eps)) + sigma(-beta h) (log sigma(-beta h) - log eps).
    """
    _check_smoothing("exo_pair", label_smoothing, open_interval=True)
    rho_w, rho_l = terms.logratios("exo_pair")
    h = beta * (rho_w - rho_l)
    eps = torch.tensor(label_smoothing, dtype=h.dtype, device=h.device)
    losses = torch.sigmoid(h) * (F.logsigmoid(h) - torch.log1p(-eps)) + torch.sigmoid(-h) * (
        F.logsigmoid(-h) - torch.log(eps)
    )
    return _reference_output(losses, terms, beta, rho_w, rho_l)


@register_loss("nca_pair", "pairwise", paper="Chen et al. 2024, Noise Contrastive Alignment (arXiv:2402.05369)", trl="DPOTrainer loss_type='nca_pair'")
def nca_pair_loss(terms: PairTerms, *, beta: float = 0.1) -> LossOutput:
    """NCA (pairwise): loss = -log sigma(beta rho_w) - 1/2 log sigma(-beta rho_w) - 1/2 log sigma(-beta rho_l)."""
    rho_w, rho_l = terms.logratios("nca_pair")
    r_w, r_l = beta * rho_w, beta * rho_l
    losses = -F.logsigmoid(r_w) - 0.5 * F.logsigmoid(-r_w) - 0.5 * F.logsigmoid(-r_l)
    return _reference_output(losses, terms, beta, rho_w, rho_l)


@register_loss("bco_pair", "pairwise", paper="Jung et al. 2024, Binary Classifier Optimization (arXiv:2404.04656)", trl="DPOTrainer loss_type='bco_pair'")
def bco_pair_loss(terms: PairTerms, *, beta: float = 0.1, delta: float = 0.0) -> LossOutput:
    """BCO on pairs: loss = -log sigma(beta rho_w - delta) - log sigma(-(beta rho_l - delta)).

    `delta` is BCO's reward shift (the paper keeps a running mean of the rewards; TRL 1.16's
    DPOTrainer uses delta = 0, the default here). Pass the running mean to reproduce the paper.
    """
    rho_w, rho_l = terms.logratios("bco_pair")
    r_w, r_l = beta * rho_w, beta * rho_l
    losses = -F.logsigmoid(r_w - delta) - F.logsigmoid(-(r_l - delta))
    return _reference_output(losses, terms, beta, rho_w, rho_l)


@register_loss("sppo_hard", "pairwise", paper="Wu et al. 2024, Self-Play Preference Optimization (arXiv:2405.00675), Eq. 4.7", trl="DPOTrainer loss_type='sppo_hard'")
def sppo_hard_loss(terms: PairTerms, *, beta: float = 0.1) -> LossOutput:
    """SPPO with hard probabilities (P = 1 for the winner, 0 for the loser):

    loss = (rho_w - 1/(2 beta))^2 + (rho_l + 1/(2 beta))^2.
    """
    rho_w, rho_l = terms.logratios("sppo_hard")
    losses = (rho_w - 0.5 / beta) ** 2 + (rho_l + 0.5 / beta) ** 2
    return _reference_output(losses, terms, beta, rho_w, rho_l)


@register_loss("apo_zero", "pairwise", paper="D'Oosterlinck et al. 2024, Anchored Preference Optimization (arXiv:2408.06266), Eq. 7", trl="DPOTrainer loss_type='apo_zero'")
def apo_zero_loss(terms: PairTerms, *, beta: float = 0.1) -> LossOutput:
    """APO-zero (chosen better than the model's own outputs): loss = 1 - sigma(beta rho_w) + sigma(beta rho_l)."""
    rho_w, rho_l = terms.logratios("apo_zero")
    losses = 1 - torch.sigmoid(beta * rho_w) + torch.sigmoid(beta * rho_l)
    return _reference_output(losses, terms, beta, rho_w, rho_l)


@register_loss("apo_down", "pairwise", paper="D'Oosterlinck et al. 2024, Anchored Preference Optimization (arXiv:2408.06266), Eq. 8", trl="DPOTrainer loss_type='apo_down'")
def apo_down_loss(terms: PairTerms, *, beta: float = 0.1) -> LossOutput:
    """APO-down (chosen worse than the model's outputs): loss = sigma(beta rho_w) + 1 - sigma(beta (rho_w - rho_l))."""
    rho_w, rho_l = terms.logratios("apo_down")
    losses = torch.sigmoid(beta * rho_w) + 1 - torch.sigmoid(beta * (rho_w - rho_l))
    return _reference_output(losses, terms, beta, rho_w, rho_l)


def _aot(delta: Tensor, beta: float, label_smoothing: float) -> Tensor:
    return -F.logsigmoid(beta * delta) * (1 - label_smoothing) - F.logsigmoid(-beta * delta) * label_smoothing


@register_loss("aot", "pairwise", paper="Melnyk et al. 2024, Distributional Alignment via Optimal Transport (AOT, arXiv:2406.05882)", trl="DPOTrainer loss_type='aot'")
def aot_loss(terms: PairTerms, *, beta: float = 0.1, label_smoothing: float = 0.0) -> LossOutput:
    """AOT (paired): first-order stochastic dominance via sorting over the batch.

    u = sort_batch(logp_w - logp_l), v = sort_batch(ref_w - ref_l), d = u - v;
    loss_i = -(1 - eps) log sigma(beta d_i) - eps log sigma(-beta d_i). The per-sample losses are
    in sorted order, not the batch order (they couple the whole batch).
    """
    _check_smoothing("aot", label_smoothing)
    rho_w, rho_l = terms.logratios("aot")
    policy_sorted, _ = torch.sort(terms.chosen_logps - terms.rejected_logps, dim=0)
    ref_sorted, _ = torch.sort(terms.ref_chosen_logps - terms.ref_rejected_logps, dim=0)
    return _reference_output(_aot(policy_sorted - ref_sorted, beta, label_smoothing), terms, beta, rho_w, rho_l)


@register_loss("aot_unpaired", "pairwise", paper="Melnyk et al. 2024, AOT (arXiv:2406.05882), unpaired form", trl="DPOTrainer loss_type='aot_unpaired'")
def aot_unpaired_loss(terms: PairTerms, *, beta: float = 0.1, label_smoothing: float = 0.0) -> LossOutput:
    """AOT (unpaired): d = sort_batch(rho_w) - sort_batch(rho_l); loss as in `aot`."""
    _check_smoothing("aot_unpaired", label_smoothing)
    rho_w, rho_l = terms.logratios("aot_unpaired")
    delta = torch.sort(rho_w, dim=0)[0] - torch.sort(rho_l, dim=0)[0]
    return _reference_output(_aot(delta, beta, label_smoothing), terms, beta, rho_w, rho_l)


@register_loss("discopop", "pairwise", paper="Chan et al. 2024, DiscoPOP (arXiv:2406.08414), Eq. 5", trl="DPOTrainer loss_type='discopop'")
def discopop_loss(terms: PairTerms, *, beta: float = 0.1, tau: float = 0.05) -> LossOutput:
    """DiscoPOP (log-ratio modulated loss), with z = beta h and m = sigma(z / tau):

    loss = (1 - m) * (-log sigma(z)) + m * exp(-z).
    """
    rho_w, rho_l = terms.logratios("discopop")
    z = beta * (rho_w - rho_l)
    m = torch.sigmoid(z / tau)
    return _reference_output((1 - m) * -F.logsigmoid(z) + m * torch.exp(-z), terms, beta, rho_w, rho_l)


@register_loss("sigmoid_norm", "pairwise", paper="Rafailov et al. 2023 (DPO) with per-token normalisation (TRL)", trl="DPOTrainer loss_type='sigmoid_norm'")
def sigmoid_norm_loss(terms: PairTerms, *, beta: float = 0.1) -> LossOutput:
    """Length-normalised DPO: loss = -log sigma(beta (rho_w/|y_w| - rho_l/|y_l|))."""
    rho_w, rho_l = terms.logratios("sigmoid_norm")
    len_w, len_l = terms.lengths("sigmoid_norm")
    return _reference_output(-F.logsigmoid(beta * (rho_w / len_w - rho_l / len_l)), terms, beta, rho_w, rho_l)


@register_loss("simpo", "pairwise", paper="Meng et al. 2024, SimPO (arXiv:2405.14734), Eq. 6", trl="CPOTrainer loss_type='simpo' (cpo_alpha=0)")
def simpo_loss(terms: PairTerms, *, beta: float = 2.0, gamma: float = 0.5, label_smoothing: float = 0.0) -> LossOutput:
    """SimPO (reference-free, length-normalised, target margin gamma), with a_y = logp(y|x)/|y|:

    z = beta (a_w - a_l) - gamma; loss = -(1 - eps) log sigma(z) - eps log sigma(-z).
    Rewards are beta * a_y. Here gamma is the margin itself (TRL's `simpo_gamma`).
    """
    _check_smoothing("simpo", label_smoothing)
    len_w, len_l = terms.lengths("simpo")
    avg_w, avg_l = terms.chosen_logps / len_w, terms.rejected_logps / len_l
    z = beta * (avg_w - avg_l) - gamma
    losses = -(1 - label_smoothing) * F.logsigmoid(z) - label_smoothing * F.logsigmoid(-z)
    return _output(losses, terms, beta * avg_w, beta * avg_l)


def _log1mexp(x: Tensor) -> Tensor:
    """log(1 - exp(x)) for x < 0, numerically stable (Maechler 2012)."""
    return torch.where(x > -0.6931471805599453, torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


@register_loss("orpo", "pairwise", paper="Hong et al. 2024, ORPO (arXiv:2403.07691), Eqs. 4-7", trl="ORPOTrainer.odds_ratio_loss (+ NLL)")
def orpo_loss(terms: PairTerms, *, beta: float = 0.1) -> LossOutput:
    """ORPO (reference-free): NLL of the chosen plus an odds-ratio term on average log-probs.

    With a_y = logp(y|x)/|y| and odds(y) = p/(1 - p) at p = exp(a_y):
    log_odds = (a_w - a_l) - (log(1 - exp(a_w)) - log(1 - exp(a_l)));
    loss = nll_w - beta log sigma(log_odds). Rewards are beta * a_y. `beta` is ORPO's lambda.
    """
    terms.require("orpo", "chosen_nll")
    len_w, len_l = terms.lengths("orpo")
    avg_w = (terms.chosen_logps / len_w).float()
    avg_l = (terms.rejected_logps / len_l).float()
    if bool((avg_w >= 0).any() or (avg_l >= 0).any()):
        raise LossInputError("loss 'orpo': average log-probs must be negative (a probability below 1)")
    log_odds = (avg_w - avg_l) - (_log1mexp(avg_w) - _log1mexp(avg_l))
    ratio = F.logsigmoid(log_odds)
    losses = terms.chosen_nll - beta * ratio
    return _output(losses, terms, beta * avg_w, beta * avg_l, log_odds_ratio=ratio.mean(), log_odds_chosen=log_odds.mean())


@register_loss("sft", "pairwise", paper="NLL of the chosen completion (RPO: Pang et al. 2024, arXiv:2404.19733)", trl="DPOTrainer loss_type='sft'")
def sft_loss(terms: PairTerms) -> LossOutput:
    """Negative log-likelihood of the chosen completion (token mean); combine it with a preference loss."""
    terms.require("sft", "chosen_nll")
    losses = terms.chosen_nll.expand_as(terms.chosen_logps)
    zeros = torch.zeros_like(terms.chosen_logps)
    return _output(losses, terms, zeros, zeros)
