"""The text-to-image app's configuration: the kit's sections and the domain ones its modules declare (configs/t2i/*.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from apps.t2i.data import DataArgs
from apps.t2i.model import ModelArgs
from apps.t2i.eval import ImageEvalArgs
from apps.t2i.preference import OSPOArgs
from shared.kit import AppConfig, DiffusionSampleArgs, FitArgs
from shared.kit.sections import DiffusionSFTArgs

METHODS = ("ospo", "ospo_mask", "diffusion_dpo", "diffusion_kto")


@dataclass
class ImagePreferenceArgs(FitArgs):
    """Preference training from the SFT model, one run per method on the same pool of images (batch: pairs, KTO: images).

    Attributes:
        methods: any of ospo (pair + conditional + SFT terms), ospo_mask (the same with object-mask
            weighted errors), diffusion_dpo (pairs without hard negatives), diffusion_kto.
        beta: the losses' beta (Diffusion-DPO's scale for denoising errors).
        mask_weight: ospo_mask's pixel weight 1 + mask_weight * object mask.
        pair_weight: OSPO's pair term weight.
        cond_weight: OSPO's conditional term weight.
        sft_weight: OSPO's SFT term weight.
    """

    methods: list[str] = field(default_factory=lambda: list(METHODS))
    beta: float = 5000.0
    mask_weight: float = 2.0
    pair_weight: float = 0.8
    cond_weight: float = 0.5
    sft_weight: float = 1.5


@dataclass
class T2IConfig(AppConfig):
    """Train a text-to-image model: SFT on rendered scenes, then OSPO and its baselines from the SFT model.

    Attributes:
        model: the text-to-image pipeline.
        data: prompts and SFT images.
        sft: denoising SFT on rendered scenes (the UNet and the tiny text encoder).
        ospo: OSPO's prompts, hard negatives and pairs.
        pref: the preference fits.
        sample: how images are drawn (OSPO's pool, evaluation, serving defaults).
        eval: the GenEval-style evaluation.
    """

    model: ModelArgs = field(default_factory=ModelArgs)
    data: DataArgs = field(default_factory=DataArgs)
    sft: DiffusionSFTArgs = field(default_factory=lambda: DiffusionSFTArgs(steps=3000, lr=1e-3, batch_size=32))
    ospo: OSPOArgs = field(default_factory=OSPOArgs)
    pref: ImagePreferenceArgs = field(default_factory=lambda: ImagePreferenceArgs(steps=200, lr=2e-5, batch_size=8))
    sample: DiffusionSampleArgs = field(default_factory=DiffusionSampleArgs)
    eval: ImageEvalArgs = field(default_factory=lambda: ImageEvalArgs(seeds=[0, 1]))
    run_dir: Path = Path("runs/t2i/ospo")
