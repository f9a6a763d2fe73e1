"""The video LLM app's configuration: the kit's sections and the domain ones (configs/videollm/*.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from apps.videollm.data import DataArgs
from apps.videollm.model import VideoLLMSpec
from shared.kit import AppConfig, EvalArgs, PreferenceArgs, SFTArgs


@dataclass
class TempleArgs(PreferenceArgs):
    """TEMPLE's DPO curriculum: one stage per perturbation magnitude, easy (large m) to hard, each from the
    previous stage's merged model (`steps` is unused: each stage runs `epochs` passes over its pairs).

    Attributes:
        magnitudes: perturbation magnitudes m, one curriculum stage each (ordered by the core's curriculum builder).
        operations: perturbations drawn from (drop, shuffle, reverse), one per (video, magnitude).
        epochs: passes over each stage's pairs (TEMPLE: 1).
        writer: model (the base model writes both captions of a pair, as TEMPLE) or join (the lists joined
            with ", then ": for a model that cannot write yet, e.g. a few-step tiny model in tests).
        writer_max_new_tokens: tokens the model may write per caption of a description list.
        ablations: also train the ablations: SFT then DPO, and DPO without the curriculum (all magnitudes mixed).
    """

    lr: float = 5e-5
    batch_size: int = 8
    beta: float = 0.1
    magnitudes: list[int] = field(default_factory=lambda: [8, 4, 2])
    operations: list[str] = field(default_factory=lambda: ["drop", "shuffle", "reverse"])
    epochs: int = 1
    writer: str = "model"
    writer_max_new_tokens: int = 128
    ablations: bool = True


@dataclass
class VideoEvalArgs(EvalArgs):
    """Held-out evaluation (apps.videollm.eval).

    Attributes:
        max_new_tokens: tokens per caption or answer.
        batch_size: prompts per generate call.
        examples: held-out videos shown in the examples grid (grid.gif / grid.mp4 and examples.md).
        skip: do not evaluate at the end of training.
    """

    max_new_tokens: int = 96
    batch_size: int = 32
    examples: int = 4
    skip: bool = False


@dataclass
class VideoLLMConfig(AppConfig):
    """TEMPLE on a video LLM.

    Attributes:
        model: the video LLM (tiny Qwen2.5-VL from config, or a checkpoint by path).
        data: embedded stories or users' JSONL.
        pretrain: the stand-in for a pre-trained video LLM: captioning single clips, short stories and
            description lists (init_from: a saved base model folder instead; steps 0: the model as loaded).
        sft: the instruction SFT (captions and temporal questions) after the DPO curriculum ("pre-SFT alignment").
        temple: the DPO curriculum and its pairs.
        train_seeds: every stage after pre-training runs once per seed (data order; DPO and SFT draws).
        eval: the held-out evaluation; its seeds are the train seeds.
    """

    model: VideoLLMSpec = field(default_factory=VideoLLMSpec)
    data: DataArgs = field(default_factory=DataArgs)
    pretrain: SFTArgs = field(default_factory=lambda: SFTArgs(steps=2000, lr=1e-3, batch_size=16))
    sft: SFTArgs = field(default_factory=lambda: SFTArgs(steps=300, lr=2e-4, batch_size=16))
    temple: TempleArgs = field(default_factory=TempleArgs)
    train_seeds: list[int] = field(default_factory=lambda: [0, 1])
    eval: VideoEvalArgs = field(default_factory=VideoEvalArgs)
    run_dir: Path = Path("runs/videollm/temple")
