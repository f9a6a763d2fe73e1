"""Plain denoising fine-tuning (diffusion SFT) of a conditional UNet, optionally with its text encoder.

loss = mean ||target - unet(x_t, t, c)||^2 with x_t = add_noise(x_0, eps, t), target eps or v
(the scheduler's prediction type), t uniform over the training timesteps: the DDPM objective
(Ho et al. 2020) as diffusers' text-to-image training example computes it. With probability
`condition_dropout` a sample is trained on the empty prompt's embedding instead, so the model
also learns the unconditional prediction that classifier-free guidance needs.

Batches: {"samples": (B, C, H, W) images or (B, F, C, H, W) videos (a video transformer, called by
keyword: `call_denoiser`) in model space (pixels in [-1, 1] or VAE latents),
"input_ids": (B, L) padded to the tokenizer's fixed length} when the module encodes prompts
itself (Stable Diffusion's convention: the text encoder sees the ids without an attention mask,
as the pipelines call it), or {"samples", "encoder_hidden_states": (B, S, D)} with precomputed
embeddings (dropped rows become zeros). Noise and
timesteps come from a generator seeded by (seed, stage, global step, batch index), so a resumed
run draws the same noise as an uninterrupted one.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from shared.modules.base import StepModule
from shared.modules.diffusion import (
    call_denoiser,
    denoiser_input,
    denoising_target,
    per_sample_error,
    sample_noise_and_timesteps,
)


class DiffusionSFTModule(StepModule):
    """Train `unet` (and `text_encoder` when `train_text_encoder`) with the denoising loss."""

    def __init__(self, unet: torch.nn.Module, noise_scheduler, *, text_encoder: torch.nn.Module | None = None,
                 empty_ids: Tensor | None = None, train_text_encoder: bool = False, condition_dropout: float = 0.1,
                 lr: float = 1e-4, weight_decay: float = 0.0, seed: int = 0):
        super().__init__()
        if not 0.0 <= condition_dropout < 1.0:
            raise ValueError(f"condition_dropout must lie in [0, 1), got {condition_dropout}")
        if condition_dropout > 0 and text_encoder is not None and empty_ids is None:
            raise ValueError("condition_dropout with a text encoder needs empty_ids (the empty prompt's token ids)")
        self.unet = unet
        self.input_name = denoiser_input(unet)
        self.text_encoder = text_encoder
        self.noise_scheduler = noise_scheduler
        self.train_text_encoder = train_text_encoder and text_encoder is not None
        if text_encoder is not None and not self.train_text_encoder:
            text_encoder.requires_grad_(False)
        self.register_buffer("empty_ids", empty_ids.clone() if empty_ids is not None else None, persistent=False)
        self.condition_dropout, self.lr, self.weight_decay, self.seed = condition_dropout, lr, weight_decay, seed
        self.save_hyperparameters(ignore=["unet", "noise_scheduler", "text_encoder", "empty_ids"])

    def trainable_module(self) -> torch.nn.Module:
        if self.train_text_encoder:
            return torch.nn.ModuleList([self.unet, self.text_encoder])
        return self.unet

    def step_generator(self, stage: str, batch_idx: int) -> torch.Generator:
        step = self.global_step if stage == "train" else 0
        entropy = [self.seed, ("train", "val").index(stage), self.global_rank, step, batch_idx]
        return torch.Generator().manual_seed(int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0]))

    def conditioning(self, batch: dict[str, Tensor], drop: Tensor) -> Tensor:
        """The batch's prompt embeddings, with the rows in `drop` replaced by the empty prompt's."""
        if "encoder_hidden_states" in batch:
            cond = batch["encoder_hidden_states"]
            if drop.any():
                cond = torch.where(drop.view(-1, 1, 1).to(cond.device), torch.zeros_like(cond), cond)
            return cond
        if self.text_encoder is None:
            raise ValueError("batch has no 'encoder_hidden_states' and the module has no text encoder")
        ids = batch["input_ids"]
        if drop.any():
            empty = self.empty_ids.to(ids.device)
            if empty.shape[0] != ids.shape[1]:
                raise ValueError(f"batch 'input_ids' has length {ids.shape[1]}, the empty prompt {empty.shape[0]}; "
                                 "pad every prompt to the tokenizer's fixed length")
            ids = torch.where(drop.to(ids.device).view(-1, 1), empty.expand_as(ids), ids)
        with torch.set_grad_enabled(self.train_text_encoder and torch.is_grad_enabled()):
            return self.text_encoder(ids)[0]

    def _step(self, batch: dict[str, Tensor], stage: str, batch_idx: int = 0) -> Tensor:
        samples = batch["samples"]
        g = self.step_generator(stage, batch_idx)
        noise, timesteps = sample_noise_and_timesteps(samples.shape, self.noise_scheduler, g)
        drop = torch.rand(samples.shape[0], generator=g) < (self.condition_dropout if stage == "train" else 0.0)
        noise, timesteps = noise.to(samples), timesteps.to(samples.device)
        cond = self.conditioning(batch, drop)
        noisy = self.noise_scheduler.add_noise(samples, noise, timesteps)
        prediction = call_denoiser(self.unet, self.input_name, noisy, timesteps, cond)
        loss = per_sample_error(prediction, denoising_target(self.noise_scheduler, samples, noise, timesteps)).mean()
        self.log_metrics({"loss": loss.detach()}, stage, batch_size=samples.shape[0])
        return loss
