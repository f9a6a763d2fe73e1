"""The text-to-image app's configuration: one dataclass tree (configs/t2i/*.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from apps.t2i.model import ModelArgs
from shared.training import TrainerArgs

METHODS = ("ospo", "ospo_mask", "diffusion_dpo", "diffusion_kto")


@dataclass
class DataArgs:
    """Prompts and images.

    Attributes:
        sft_images: rendered training scenes (one image each, all categories equally) for SFT.
        train_prompts: a JSONL prompt file ({"scene": {...}, "prompt": optional}) of OSPO's initial
            prompts instead of generated training scenes ("": generated).
        heldout_prompts: a JSONL prompt file for evaluation instead of the generated held-out split.
    """

    sft_images: int = 6000
    train_prompts: str = ""
    heldout_prompts: str = ""


@dataclass
class SFTArgs:
    """Plain denoising fine-tuning on rendered training scenes (the UNet and the tiny text encoder).

    Attributes:
        steps: optimiser steps (0: no SFT; the model as loaded is the baseline).
        lr: AdamW learning rate.
        batch_size: images per step.
        condition_dropout: share of images trained on the empty prompt (classifier-free guidance).
        train_text_encoder: also train the text encoder (the tiny one starts from random weights).
    """

    steps: int = 3000
    lr: float = 1e-3
    batch_size: int = 32
    condition_dropout: float = 0.1
    train_text_encoder: bool = True


@dataclass
class OSPOArgs:
    """OSPO's data construction from the SFT model's own images.

    Attributes:
        prompts_per_category: initial (training-split) prompts per category.
        negatives_per_prompt: hard negative prompts per initial prompt.
        images_per_prompt: images drawn per base and per negative prompt.
        max_pairs_per_prompt: pairs kept per initial prompt and method.
    """

    prompts_per_category: int = 16
    negatives_per_prompt: int = 2
    images_per_prompt: int = 4
    max_pairs_per_prompt: int = 4


@dataclass
class PreferenceArgs:
    """Preference training from the SFT model, one run per method on the same pool of images.

    Attributes:
        methods: any of ospo (pair + conditional + SFT terms), ospo_mask (the same with object-mask
            weighted errors), diffusion_dpo (pairs without hard negatives), diffusion_kto.
        steps: optimiser steps per method.
        lr: AdamW learning rate.
        batch_size: pairs (KTO: images) per step.
        beta: the losses' beta (Diffusion-DPO's scale for denoising errors).
        mask_weight: ospo_mask's pixel weight 1 + mask_weight * object mask.
        pair_weight: OSPO's pair term weight.
        cond_weight: OSPO's conditional term weight.
        sft_weight: OSPO's SFT term weight.
    """

    methods: list[str] = field(default_factory=lambda: list(METHODS))
    steps: int = 200
    lr: float = 2e-5
    batch_size: int = 8
    beta: float = 5000.0
    mask_weight: float = 2.0
    pair_weight: float = 0.8
    cond_weight: float = 0.5
    sft_weight: float = 1.5


@dataclass
class SamplingArgs:
    """How images are drawn (OSPO's pool, evaluation, serving defaults).

    Attributes:
        steps: DDIM steps.
        guidance: classifier-free guidance scale (1: none).
        batch_size: images per pipeline call.
    """

    steps: int = 25
    guidance: float = 3.0
    batch_size: int = 64


@dataclass
class EvalArgs:
    """GenEval-style evaluation on held-out prompts.

    Attributes:
        prompts_per_category: held-out prompts per category.
        images_per_prompt: images per prompt and seed.
        seeds: evaluation seeds (each draws its own images).
        grid_prompts: prompts per category shown in the image grids.
        grid_seeds: images per prompt in the grids.
    """

    prompts_per_category: int = 8
    images_per_prompt: int = 4
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    grid_prompts: int = 1
    grid_seeds: int = 4


@dataclass
class T2IConfig:
    """Train a text-to-image model: SFT on rendered scenes, then OSPO and its baselines from the SFT model.

    Attributes:
        seed: seed for rendering, sampling, data order and initialisation.
        run_dir: the run folder.
    """

    model: ModelArgs = field(default_factory=ModelArgs)
    data: DataArgs = field(default_factory=DataArgs)
    sft: SFTArgs = field(default_factory=SFTArgs)
    ospo: OSPOArgs = field(default_factory=OSPOArgs)
    pref: PreferenceArgs = field(default_factory=PreferenceArgs)
    sampling: SamplingArgs = field(default_factory=SamplingArgs)
    eval: EvalArgs = field(default_factory=EvalArgs)
    trainer: TrainerArgs = field(default_factory=lambda: TrainerArgs(accelerator="cpu", devices="1", progress_bar=False))
    seed: int = 0
    run_dir: Path = Path("runs/t2i/ospo")
