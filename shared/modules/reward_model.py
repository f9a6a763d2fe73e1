"""A learned reward model (Bradley-Terry on preference pairs) as a LightningModule.

Used for learned rewards such as Posterior-GRPO's reasoning reward model and OneRec's user
simulator: a causal LM's decoder plus a scalar head read at each sequence's last token.
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

