"""The text-to-video app's configuration: the kit's sections and the domain ones its modules declare (configs/t2v/*.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from apps.t2v.booster import RewriteArgs
from apps.t2v.critic import CriticArgs
from apps.t2v.data import DataArgs
from apps.t2v.eval import VideoEvalArgs
from apps.t2v.ipo import IPOArgs
from apps.t2v.model import ModelArgs
from apps.t2v.prompt_a_video import PromptAVideoArgs
from apps.t2v.rewrite_reward import RewardArgs
from shared.kit import AppConfig, DiffusionSampleArgs, PreferenceArgs, SFTArgs, all_linear_lora
from shared.kit.sections import DiffusionSFTArgs
from shared.models import ModelSpec

METHODS = ("ipo", "prompt_a_video")


def embedded_booster() -> ModelSpec:
    """SmolLM2-135M-Instruct with LoRA r16 / alpha 32 on every linear projection (Prompt-A-Video's DPO rank)."""
    return ModelSpec(source="smollm2", lora=all_linear_lora(16, 32))


@dataclass
class T2VConfig(AppConfig):
    """Align a text-to-video model (method ipo: SFT on rendered clips, then IPO rounds of critic-labelled
    Diffusion-DPO and -KTO) or a prompt booster for it (method prompt_a_video: the video model from SFT or
    sft.init_from, then the booster's evolution, SFT and DPO rounds).

    Attributes:
        method: ipo or prompt_a_video.
        model: the text-to-video pipeline.
        data: prompts and SFT clips.
        sft: denoising SFT on rendered clips (the transformer and the tiny text encoder).
        critic: which critic labels the generated videos (rule-based, or a learned one).
        ipo: the iterative preference rounds.
        sample: how videos are drawn (IPO's rounds, evaluation, serving defaults).
        eval: the evaluation on held-out prompts (prompt_a_video: its seeds, resamples and level).
        booster: Prompt-A-Video's booster LLM (with its LoRA settings).
        rewrite: how the booster samples rewrites, and when a rewrite is unusable.
        reward: how a rewrite's video is rewarded, and which rewrites may be chosen.
        pav: Prompt-A-Video's requests, evolution and DPO candidates.
        booster_sft: the booster's SFT on its best evolved rewrites.
        booster_dpo: the booster's DPO rounds (beta 0.1, as Prompt-A-Video).
    """

    method: str = "ipo"

    model: ModelArgs = field(default_factory=ModelArgs)
    data: DataArgs = field(default_factory=DataArgs)
    sft: DiffusionSFTArgs = field(default_factory=lambda: DiffusionSFTArgs(steps=2000, lr=1e-3, batch_size=16))
    critic: CriticArgs = field(default_factory=CriticArgs)
    ipo: IPOArgs = field(default_factory=IPOArgs)
    sample: DiffusionSampleArgs = field(default_factory=lambda: DiffusionSampleArgs(steps=20, guidance=3.0, batch_size=32))
    eval: VideoEvalArgs = field(default_factory=lambda: VideoEvalArgs(seeds=[0, 1]))
    booster: ModelSpec = field(default_factory=embedded_booster)
    rewrite: RewriteArgs = field(default_factory=RewriteArgs)
    reward: RewardArgs = field(default_factory=RewardArgs)
    pav: PromptAVideoArgs = field(default_factory=PromptAVideoArgs)
    booster_sft: SFTArgs = field(default_factory=lambda: SFTArgs(steps=60, lr=2e-4, batch_size=8, max_length=256))
    booster_dpo: PreferenceArgs = field(default_factory=lambda: PreferenceArgs(steps=40, lr=5e-5, batch_size=8, rounds=2,
                                                                              beta=0.1, max_length=256))
    run_dir: Path = Path("runs/t2v/ipo")
