"""The text-to-video app's configuration: the kit's sections and the domain ones its modules declare (configs/t2v/*.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from apps.t2v.critic import CriticArgs
from apps.t2v.data import DataArgs
from apps.t2v.eval import VideoEvalArgs
from apps.t2v.ipo import IPOArgs
from apps.t2v.model import ModelArgs
from shared.kit import AppConfig, DiffusionSampleArgs
from shared.kit.sections import DiffusionSFTArgs


@dataclass
class T2VConfig(AppConfig):
    """Train a text-to-video model: SFT on rendered clips, then IPO rounds (critic-labelled Diffusion-DPO and -KTO).

    Attributes:
        model: the text-to-video pipeline.
        data: prompts and SFT clips.
        sft: denoising SFT on rendered clips (the transformer and the tiny text encoder).
        critic: which critic labels the generated videos (rule-based, or a learned one).
        ipo: the iterative preference rounds.
        sample: how videos are drawn (IPO's rounds, evaluation, serving defaults).
        eval: the evaluation on held-out prompts.
    """

    model: ModelArgs = field(default_factory=ModelArgs)
    data: DataArgs = field(default_factory=DataArgs)
    sft: DiffusionSFTArgs = field(default_factory=lambda: DiffusionSFTArgs(steps=2000, lr=1e-3, batch_size=16))
    critic: CriticArgs = field(default_factory=CriticArgs)
    ipo: IPOArgs = field(default_factory=IPOArgs)
    sample: DiffusionSampleArgs = field(default_factory=lambda: DiffusionSampleArgs(steps=20, guidance=3.0, batch_size=32))
    eval: VideoEvalArgs = field(default_factory=lambda: VideoEvalArgs(seeds=[0, 1]))
    run_dir: Path = Path("runs/t2v/ipo")
