"""Learned reward models as LightningModules.

`RewardModelModule`: Bradley-Terry on preference pairs over a causal LM's decoder plus a scalar head
read at each sequence's last token (Posterior-GRPO's reasoning reward model).
`SignalRewardModule`: a pointwise model with a BCE tower per engagement signal (OneRec's reward
model standing in for the user).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from shared.logprobs import _backbone_and_head, hidden_states, last_token_positions
from shared.modules.base import StepModule


class RewardModel(torch.nn.Module):
    """Scalar reward r(x, y) = w . h_last + b on a causal LM's decoder states."""

    def __init__(self, lm: torch.nn.Module):
        super().__init__()
        self.lm = lm
        self.backbone, _ = _backbone_and_head(lm)
        self.head = torch.nn.Linear(self.backbone.config.hidden_size, 1)
        torch.nn.init.zeros_(self.head.bias)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """Return one reward per sequence of the batch."""
        hidden = hidden_states(self.backbone, batch, self.head.weight.dtype)
        last = hidden.reshape(-1, hidden.size(-1))[last_token_positions(batch)]
        return self.head(last.float()).squeeze(-1)


class RewardModelModule(StepModule):
    """Bradley-Terry training: loss = -log sigma(r(x, y_w) - r(x, y_l) - m), m the optional pair margin.

    Batches come from PreferenceCollator (chosen sequences first, then rejected). With
    `use_margin`, the pairs' `margin` field gives Llama-2-style margins (m = 0 otherwise). Logs
    loss, accuracy and mean reward gap.
    """

    def __init__(self, reward_model: RewardModel, *, lr: float = 1e-4, weight_decay: float = 0.0,
                 use_margin: bool = False):
        super().__init__()
        self.reward_model = reward_model
        self.lr, self.weight_decay, self.use_margin = lr, weight_decay, use_margin
        self.save_hyperparameters(ignore=["reward_model"])

    def trainable_module(self) -> torch.nn.Module:
        return self.reward_model

    def _step(self, batch: dict[str, Tensor], stage: str, batch_idx: int = 0) -> Tensor:
        n = int(batch["num_pairs"])
        rewards = self.reward_model(batch)
        gap = rewards[:n] - rewards[n:]
        if self.use_margin and "margin" not in batch:
            raise ValueError("RewardModelModule(use_margin=True): the batch's pairs carry no 'margin'")
        margin = batch["margin"] if self.use_margin else torch.zeros_like(gap)
        loss = -F.logsigmoid(gap - margin).mean()
        self.log_metrics({"loss": loss.detach(), "accuracy": (gap > 0).float().mean(),
                          "reward_gap": gap.detach().mean()}, stage, batch_size=n)
        return loss



class SignalRewardModule(StepModule):
    """Pointwise reward model with one binary head (tower) per signal, trained with BCE (OneRec's reward model).

    loss = sum_s w_s * mean_i BCE(sigma(f_s(x_i)), y_{i,s}) / sum_s w_s, over the items i of the batch
    whose label for s is present (`label_mask`). `model(batch)` returns logits (items, signals); the
    batch carries `labels` (items, signals) in [0, 1] (soft labels allowed) and optionally
    `label_mask`. Logs loss, loss/<signal> and accuracy/<signal> (threshold 0.5).
    """

    def __init__(self, model: torch.nn.Module, signals: tuple[str, ...] | list[str], *, weights=None,
                 lr: float = 1e-3, weight_decay: float = 0.0):
        super().__init__()
        if not signals:
            raise ValueError("SignalRewardModule needs at least one signal")
        if weights is not None and len(weights) != len(signals):
            raise ValueError(f"SignalRewardModule: {len(weights)} weights for {len(signals)} signals")
        self.model, self.signals = model, tuple(signals)
        self.register_buffer("weights", torch.tensor(weights or [1.0] * len(signals), dtype=torch.float32),
                             persistent=False)
        self.lr, self.weight_decay = lr, weight_decay

    def trainable_module(self) -> torch.nn.Module:
        return self.model

    def _step(self, batch: dict[str, Tensor], stage: str, batch_idx: int = 0) -> Tensor:
        logits = self.model(batch).float()
        labels = batch["labels"].float()
        if logits.shape != labels.shape or logits.size(-1) != len(self.signals):
            raise ValueError(f"SignalRewardModule: logits {tuple(logits.shape)} vs labels {tuple(labels.shape)} "
                             f"for {len(self.signals)} signals")
        mask = batch.get("label_mask", torch.ones_like(labels)).float()
        per = F.binary_cross_entropy_with_logits(logits, labels, reduction="none") * mask
        per_signal = per.sum(0) / mask.sum(0).clamp(min=1)
        loss = (per_signal * self.weights).sum() / self.weights.sum()
        correct = ((logits > 0).float() == (labels > 0.5).float()).float() * mask
        accuracy = correct.sum(0) / mask.sum(0).clamp(min=1)
        metrics = {"loss": loss.detach()}
        for i, name in enumerate(self.signals):
            metrics[f"loss/{name}"] = per_signal[i].detach()
            metrics[f"accuracy/{name}"] = accuracy[i]
        self.log_metrics(metrics, stage, batch_size=labels.size(0))
        return loss
