"""A small preference fit used by the resume and DDP tests: python tests/train_script.py OUT STEPS DEVICES BATCH."""

from __future__ import annotations

import sys

import lightning as L
import torch
from torch.utils.data import DataLoader, DistributedSampler
from shared.models import LoraSpec, ModelSpec, load_policy
from shared.modules import PreferenceCollator, PreferenceModule, build_reference, encode_pairs
from shared.records import Pair
from shared.training import TrainerArgs, build_trainer, fit, make_loader

WORDS = ["apple", "river", "stone", "cloud", "maple", "tiger", "lemon", "piano"]
PAIRS = [Pair(prompt=f"shout {w}:", chosen=f" {w.upper()}", rejected=f" {w}") for w in WORDS]


class Crash(RuntimeError):
    """Raised by CrashAfter to simulate a run dying mid-training."""


class CrashAfter(L.Callback):
    """Raise Crash at the end of optimiser step `step` (after that step's checkpoint was written)."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            raise Crash(f"simulated crash after step {self.step}")


def run(out: str, steps: int, devices: int, batch: int, checkpoint_every: int | None = None,
        shuffle: bool = True, crash_after: int | None = None) -> PreferenceModule:
    """Fit `steps` optimiser steps in run folder `out` (resuming if it holds a checkpoint); save LoRA weights."""
    policy, tok = load_policy(ModelSpec(seed=3, lora=LoraSpec(r=4)))
    module = PreferenceModule(policy, build_reference("adapter_disabled", policy), loss="sigmoid",
                              loss_kwargs={"beta": 0.5}, lr=1e-2)
    args = TrainerArgs(max_steps=steps, accelerator="cpu", devices=str(devices), logger="csv", log_every_n_steps=1,
                       progress_bar=False, strategy="ddp" if devices > 1 else "auto",
                       checkpoint_every_n_steps=checkpoint_every, gradient_clip_val=None)
    trainer = build_trainer(args, out, callbacks=[CrashAfter(crash_after)] if crash_after else None)
    data, collate = encode_pairs(PAIRS, tok), PreferenceCollator(tok.pad_token_id)
    if devices > 1:
        # An explicit unshuffled DistributedSampler (Lightning keeps it) makes the global batches the
        # same as one process reading the data in order: rank r reads pairs r, r + 2, ...
        sampler = DistributedSampler(data, num_replicas=trainer.world_size, rank=trainer.global_rank, shuffle=False)
        loader = DataLoader(data, batch_size=batch, sampler=sampler, collate_fn=collate)
    else:
        loader = make_loader(data, batch, collate, shuffle=shuffle)
    fit(trainer, module, loader)
    if trainer.global_rank == 0:
        torch.save({k: v for k, v in policy.state_dict().items() if "lora_" in k}, f"{out}/lora.pt")
    return module


if __name__ == "__main__":
    out, steps, devices, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    run(out, steps, devices, batch, shuffle=False)
