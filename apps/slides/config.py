"""The slides app's configuration: the kit's sections and the domain ones (configs/slides/*.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from apps.slides.data import DataArgs
from apps.slides.reward import RewardArgs
from shared.kit import AppConfig, EvalArgs, PreferenceArgs, SampleArgs, SFTArgs, all_linear_lora, cpu_trainer
from shared.models import ModelSpec
from shared.training import TrainerArgs

TOP_LAYERS = 10  # LoRA on the top layers only: the backward pass stops there (long prompts, 2 CPU cores)


def embedded_lora():
    lora = all_linear_lora()
    lora.layers = list(range(-TOP_LAYERS, 0))
    return lora


def embedded_trainer() -> TrainerArgs:
    trainer = cpu_trainer()
    trainer.precision = "bf16-mixed"  # about 1.4x faster steps on a CPU with AVX512-BF16 (measured: docs)
    return trainer


@dataclass
class DeckDPOArgs(PreferenceArgs):
    """DPO on sampled plans ranked by the reward (apps/slides/reward.py).

    Attributes:
        tasks: training tasks sampled per round (a seeded draw; 0: all).
        pairs: best_vs_worst (one pair per task) or margin (every pair at least min_margin apart, at most
            pairs_per_task per task).
        min_margin: smallest reward gap of a pair.
        pairs_per_task: cap of margin pairs per task.
    """

    tasks: int = 16
    pairs: str = "best_vs_worst"
    min_margin: float = 0.05
    pairs_per_task: int = 2


@dataclass
class SlidesEvalArgs(EvalArgs):
    """How plans are written for evaluation and the quick check after each stage.

    Attributes:
        tasks: held-out tasks in the eval CLI (0: all).
        quick: held-out tasks of the quick check after training stages (0: none).
        max_new_tokens: plan length limit (tokens).
        batch_size: sequences per generate call.
        decks: held-out decks written as .pptx (and rendered when LibreOffice is installed) per model.
    """

    tasks: int = 0
    quick: int = 0
    max_new_tokens: int = 448
    batch_size: int = 16
    decks: int = 3


@dataclass
class SlidesConfig(AppConfig):
    """Train a deck planner: SFT on reference decks, then DPO on its own sampled plans ranked by the reward.

    Attributes:
        model: the planner (the embedded SmolLM2-135M-Instruct with LoRA on every projection of the top ten
            layers by default).
        data: tasks.
        sft: supervised fine-tuning on the reference decks of the training tasks.
        sample: how the SFT model samples plans for DPO (sample.n per task, always grammar-constrained).
        pref: DPO rounds.
        reward: the total reward's weights.
        eval: evaluation and the quick held-out check.
        trainer: how Lightning runs (bf16 autocast on the CPU by default).
    """

    model: ModelSpec = field(default_factory=lambda: ModelSpec(source="smollm2", lora=embedded_lora()))
    data: DataArgs = field(default_factory=DataArgs)
    sft: SFTArgs = field(default_factory=lambda: SFTArgs(steps=80, lr=3e-4, batch_size=4, max_length=1536))
    sample: SampleArgs = field(default_factory=lambda: SampleArgs(n=3, temperature=0.9, max_new_tokens=448,
                                                                  batch_size=24, constrained=True))
    pref: DeckDPOArgs = field(default_factory=lambda: DeckDPOArgs(steps=8, lr=5e-5, batch_size=2, max_length=1536))
    reward: RewardArgs = field(default_factory=RewardArgs)
    eval: SlidesEvalArgs = field(default_factory=SlidesEvalArgs)
    trainer: TrainerArgs = field(default_factory=embedded_trainer)
    run_dir: Path = Path("runs/slides/dpo")
