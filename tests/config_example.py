"""A small entry point on shared.config, used by tests/test_config.py (run with `python -m tests.config_example`)."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from shared.config import parse_or_exit, to_dict


class Precision(enum.Enum):
    FP32 = "32-true"
    BF16 = "bf16-mixed"


@dataclass
class ModelConfig:
    """Which policy to train.

    Attributes:
        name: Hugging Face id or local path of the policy.
        lora_rank: LoRA rank; null trains every weight.
    """

    name: str = "tiny-gpt"
    lora_rank: int | None = None


@dataclass
class TrainArgs:
    """Optimisation settings.

    Attributes:
        lr: Peak learning rate of AdamW.
        epochs: Passes over the pairs.
        compile: Wrap the model in torch.compile.
        precision: Lightning precision plugin.
    """

    lr: float = 1e-3
    epochs: int = 1
    compile: bool = False
    precision: Precision = Precision.FP32

    def __post_init__(self):
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")


@dataclass
class LossConfig:
    """The preference loss.

    Attributes:
        name: A registered loss, by name.
        beta: Temperature of the implicit reward; a long
            sentence that continues on the next line.
    """

    name: Literal["sigmoid", "ipo", "hinge"] = "sigmoid"
    beta: float = 0.1


@dataclass
class ExampleConfig:
    """Train a tiny policy on pairs.

    Attributes:
        out_dir: Run folder.
        seed: Random seed.
        tags: Labels for the run.
        aspect_weights: Weight of each reward aspect; empty weighs all equally.
        betas: AdamW betas.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainArgs = field(default_factory=lambda: TrainArgs(epochs=3))
    loss: LossConfig = field(default_factory=LossConfig)
    out_dir: Path = Path("runs/example")
    seed: int = 0
    tags: list[str] = field(default_factory=lambda: ["tiny"])
    aspect_weights: dict[str, float] = field(default_factory=dict)
    betas: tuple[float, float] = (0.9, 0.999)
    notes: str | None = field(default=None, metadata={"help": "Free text kept with the run."})


def main(argv: list[str] | None = None) -> None:
    """Print the resolved config as JSON."""
    cfg = parse_or_exit(ExampleConfig, argv, description=__doc__, prog="python -m tests.config_example")
    print(json.dumps(to_dict(cfg)))


if __name__ == "__main__":
    main()
