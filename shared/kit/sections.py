"""Config sections every recipe composes: an app's config is these plus its own domain sections.

    @dataclass
    class MyConfig(AppConfig):
        model: ModelSpec = field(default_factory=lambda: ModelSpec(source="smollm2", lora=all_linear_lora()))
        data: MyData = field(default_factory=MyData)
        sft: SFTArgs = field(default_factory=lambda: SFTArgs(steps=60))
        sample: SampleArgs = field(default_factory=SampleArgs)
        pref: PreferenceArgs = field(default_factory=PreferenceArgs)
        eval: MyEval = field(default_factory=MyEval)      # MyEval(EvalArgs) adds the app's counts

An app extends a section by subclassing it (its fields come after the core's, each documented in
the subclass's `Attributes:`) and changes a default with `field(default_factory=lambda: ...)`.
Every field has a docstring entry, so `python -m apps.<domain>.train --help` lists it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from shared.models import LoraSpec
from shared.training import TrainerArgs

ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def all_linear_lora(r: int = 16, alpha: int = 32) -> LoraSpec:
    """Return a LoRA spec on every linear projection of a Llama-style block (attention and MLP)."""
    return LoraSpec(r=r, alpha=alpha, target_modules=list(ALL_LINEAR))


def cpu_trainer() -> TrainerArgs:
    """Return the trainer settings of the embedded defaults: one CPU process, no progress bar."""
    return TrainerArgs(accelerator="cpu", devices="1", progress_bar=False)


@dataclass
class FitArgs:
    """An optimisation stage: how long and how fast.

    Attributes:
        steps: optimiser steps (0: skip the stage).
        lr: AdamW learning rate.
        batch_size: examples per optimiser step.
    """

    steps: int = 100
    lr: float = 1e-4
    batch_size: int = 8

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0 (0: skip the stage), got {self.steps}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


@dataclass
class SFTArgs(FitArgs):
    """Supervised fine-tuning on (prompt, target) examples.

    Attributes:
        init_from: a saved SFT model folder (save_pretrained); when set, SFT is skipped and this is the start.
        max_length: tokens kept per example (prompt + target).
    """

    init_from: str = ""
    max_length: int = 2048


@dataclass
class DiffusionSFTArgs(FitArgs):
    """Denoising fine-tuning of a diffusion model on (prompt, image) examples.

    Attributes:
        init_from: a saved pipeline folder; when set, SFT is skipped and this is the start.
        condition_dropout: share of examples trained on the empty prompt (for classifier-free guidance).
        train_text_encoder: also train the text encoder (when the app's model allows it).
    """

    init_from: str = ""
    condition_dropout: float = 0.1
    train_text_encoder: bool = True


@dataclass
class PreferenceArgs(FitArgs):
    """Offline preference training (DPO family) on pairs or ranked lists, in one or more rounds.

    Attributes:
        rounds: sample -> score -> pair -> fit rounds, each from the previous round's model.
        loss: a registered pairwise, strength, listwise or unpaired loss (sigmoid = DPO; docs/losses.md).
        beta: the loss's beta.
        reference: auto (adapter_disabled with LoRA, else frozen_copy), frozen_copy or adapter_disabled.
        max_pairs: train on at most this many pairs per round (a seeded draw; 0: all).
        max_length: tokens kept per sequence (prompt + completion).
    """

    steps: int = 40
    lr: float = 5e-5
    batch_size: int = 4
    rounds: int = 1
    loss: str = "sigmoid"
    beta: float = 0.1
    reference: str = "auto"
    max_pairs: int = 0
    max_length: int = 2048


@dataclass
class GroupRLArgs:
    """Online group RL (GRPO family): sample a group per prompt, reward it, train on group advantages.

    Attributes:
        loss: a registered group loss (grpo, bnpo, dr_grpo, dapo, rloo); rloo trains on leave-one-out
            advantages (rloo_advantages), as TRL's RLOOTrainer.
        beta: KL coefficient to the starting model (0: no KL, no reference kept): a k3 KL loss term for
            the GRPO family; for rloo a reward penalty beta * sum_t (logp - logp_ref), as TRL's RLOO.
        steps: optimiser steps (one group generation each).
        prompts_per_step: prompts per step.
        group_size: completions per prompt.
        lr: AdamW learning rate.
        checkpoint_every: save a resumable Lightning checkpoint every N steps.
    """

    loss: str = "grpo"
    beta: float = 0.0
    steps: int = 30
    prompts_per_step: int = 4
    group_size: int = 4
    lr: float = 2e-5
    checkpoint_every: int = 10


@dataclass
class SampleArgs:
    """How a text policy samples during training.

    Attributes:
        n: samples per prompt (the app's docs say which prompts).
        temperature: sampling temperature.
        temperatures: per-round temperature schedule (round 1 first; the last value repeats; empty: temperature).
        top_p: nucleus sampling threshold.
        max_new_tokens: completion length limit (tokens).
        batch_size: sequences per generate call.
        constrained: sample through the app's format automaton (shared.constrained), where the app has one.
    """

    n: int = 4
    temperature: float = 0.8
    temperatures: list[float] = field(default_factory=list)
    top_p: float = 0.95
    max_new_tokens: int = 192
    batch_size: int = 16
    constrained: bool = False

    def temperature_at(self, round_index: int) -> float:
        """Return the temperature of the 0-based round: the schedule's entry (its last one past the end), else temperature."""
        if not self.temperatures:
            return self.temperature
        return self.temperatures[min(round_index, len(self.temperatures) - 1)]

    def schedule(self, rounds: int) -> list[float]:
        """Return one temperature per round."""
        return [self.temperature_at(r) for r in range(rounds)]


@dataclass
class DiffusionSampleArgs:
    """How a diffusion pipeline draws images (training pools, evaluation, serving defaults).

    Attributes:
        steps: denoising (DDIM) steps.
        guidance: classifier-free guidance scale (1: none).
        batch_size: images per pipeline call.
    """

    steps: int = 25
    guidance: float = 3.0
    batch_size: int = 64


@dataclass
class SandboxArgs:
    """Limits for running model-generated programs (shared.sandbox).

    Attributes:
        timeout_s: wall-clock (and CPU) seconds per program.
        memory_mb: address-space limit per program.
        workers: programs run in parallel (0: one per CPU core).
        read_only_paths: host files or folders programs may read (absolute); as root, programs see
            nothing else of the host but the interpreter and its libraries.
    """

    timeout_s: float = 5.0
    memory_mb: int = 512
    workers: int = 0
    read_only_paths: list[str] = field(default_factory=list)

    def limits(self):
        """Return the shared.sandbox.Limits of one program; a read-only path that does not exist is a ValueError."""
        from shared.sandbox import Limits

        missing = [p for p in self.read_only_paths if not os.path.exists(p)]
        if missing:
            raise ValueError(f"sandbox.read_only_paths: {missing[0]} does not exist")
        return Limits(timeout_s=self.timeout_s, memory_mb=self.memory_mb, read_only_paths=tuple(self.read_only_paths))

    def worker_count(self) -> int | None:
        """Return the number of parallel workers (None: one per CPU core)."""
        return self.workers or None


@dataclass
class EvalArgs:
    """Evaluation on held-out data: seeds and intervals (shared.evaluation).

    Attributes:
        seeds: evaluation seeds; every model is evaluated with each, and rates pool over them.
        resamples: bootstrap resamples behind each interval.
        level: the intervals' coverage (0.95: 95% percentile intervals).
    """

    seeds: list[int] = field(default_factory=lambda: [0])
    resamples: int = 2000
    level: float = 0.95


@dataclass
class AppConfig:
    """What every app's config has: how Lightning runs, the seed and the run folder.

    Attributes:
        trainer: how Lightning runs every fit of the recipe (max_steps and seed come from each stage).
        seed: seed for sampling, data order, splits and initialisation.
        run_dir: the run folder.
    """

    trainer: TrainerArgs = field(default_factory=cpu_trainer)
    seed: int = 0
    run_dir: Path = Path("runs/app")
