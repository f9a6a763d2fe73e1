"""What every training module shares: train/val steps through one `_step`, TRL-style logging, AdamW."""

from __future__ import annotations

import lightning as L
import torch
from torch import Tensor


class StepModule(L.LightningModule):
    """Base for the core's LightningModules.

    Subclasses implement `_step(batch, stage, batch_idx)` returning the loss and name the module
    whose trainable parameters AdamW updates (`trainable_module`). Training metrics are logged per
    step, validation metrics per epoch and synchronised across processes.
    """

    lr: float
    weight_decay: float

    def trainable_module(self) -> torch.nn.Module:
        """Return the module whose trainable parameters are optimised (default: `self.policy`)."""
        return self.policy

    def on_fit_start(self) -> None:
        # `from_pretrained` returns a model in eval mode and Lightning keeps each submodule's mode, so
        # without this a loaded model trains with its layers in eval mode: dropout off and, silently,
        # gradient checkpointing off too (transformers only checkpoints in training mode).
        self.trainable_module().train()

    def _step(self, batch, stage: str, batch_idx: int = 0) -> Tensor:
        raise NotImplementedError

    def log_metrics(self, metrics: dict[str, Tensor], stage: str, batch_size: int) -> None:
        """Log `metrics` under `<stage>/` (train: per step; val: per epoch, synced across processes)."""
        self.log_dict({f"{stage}/{k}": v for k, v in metrics.items()}, batch_size=batch_size, prog_bar=False,
                      on_step=stage == "train", on_epoch=stage != "train", sync_dist=stage != "train")

    def training_step(self, batch, batch_idx: int) -> Tensor:
        return self._step(batch, "train", batch_idx)

    def validation_step(self, batch, batch_idx: int) -> Tensor:
        return self._step(batch, "val", batch_idx)

    def configure_optimizers(self):
        params = [p for p in self.trainable_module().parameters() if p.requires_grad]
        return torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
