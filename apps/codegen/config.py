"""The codegen app's configuration: one dataclass tree for every recipe (configs/codegen/*.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from shared.models import LoraSpec, ModelSpec
from shared.training import TrainerArgs

ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class DataArgs:
    """Where tasks come from: "embedded:train", "embedded:heldout", "humaneval", or a HumanEval/MBPP JSONL path.

    Attributes:
        train: tasks to train on (SFT targets, DSTC sampling, GRPO prompts).
        heldout: tasks for the per-round evaluation.
        max_train_tasks: use only the first N training tasks (0: all).
        max_heldout_tasks: evaluate on the first N held-out tasks (0: all).
    """

    train: str = "embedded:train"
    heldout: str = "embedded:heldout"
    max_train_tasks: int = 0
    max_heldout_tasks: int = 0


@dataclass
class SFTArgs:
    """Supervised fine-tuning on the training tasks' reference solutions, tests and reasoning traces.

    Attributes:
        init_from: a saved SFT model folder (save_pretrained); when set, SFT is skipped and this is the start.
        steps: optimiser steps (0: no SFT, start from the base model).
        lr: AdamW learning rate.
        batch_size: examples per step.
        formats: which instructions to teach: code, tests (DSTC's self-tests), reasoning (think then code).
    """

    init_from: str = ""
    steps: int = 60
    lr: float = 2e-4
    batch_size: int = 8
    formats: list[str] = field(default_factory=lambda: ["code", "tests", "reasoning"])


@dataclass
class SampleArgs:
    """How the policy samples during training (DSTC candidates, GRPO groups).

    Attributes:
        temperature: sampling temperature.
        top_p: nucleus sampling threshold.
        max_new_tokens: completion length limit.
        batch_size: sequences per generate call.
    """

    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 192
    batch_size: int = 16


@dataclass
class DSTCArgs:
    """DSTC: self-generated codes x tests, minimax pairs, DPO or KTO; one or more rounds.

    Attributes:
        rounds: sample -> execute -> pair -> train rounds, each from the previous round's model.
        tasks_per_round: training tasks sampled per round (0: all).
        codes: code candidates sampled per task (n).
        test_samples: test-writing completions sampled per task.
        max_tests: distinct asserts kept per task (m).
        loss: a registered pairwise loss (sigmoid = DPO) or kto.
        beta: the loss's beta.
        steps: optimiser steps per round.
        lr: AdamW learning rate.
        batch_size: pairs per step.
        reuse_samples_from: another DSTC run's folder whose sampled and scored candidates each round reuses
            (e.g. KTO on exactly the pairs a DPO run built); empty: sample afresh.
    """

    rounds: int = 1
    tasks_per_round: int = 0
    codes: int = 4
    test_samples: int = 2
    max_tests: int = 6
    loss: str = "sigmoid"
    beta: float = 0.1
    steps: int = 40
    lr: float = 5e-5
    batch_size: int = 4
    reuse_samples_from: str = ""


@dataclass
class RewardModelArgs:
    """Posterior-GRPO's reasoning reward model: Bradley-Terry on optimized/degraded reasoning pairs.

    Attributes:
        pairs_per_task: degraded variants per training task (kinds cycle: factual, logic, coherence).
        steps: optimiser steps.
        lr: AdamW learning rate.
        batch_size: pairs per step.
        lora_r: LoRA rank of the reward model's backbone (0: train the whole backbone).
    """

    pairs_per_task: int = 3
    steps: int = 60
    lr: float = 2e-4
    batch_size: int = 8
    lora_r: int = 8


@dataclass
class GRPOArgs:
    """Online GRPO on reasoning-then-code completions.

    Attributes:
        posterior: Posterior-GRPO (R = format + outcome + outcome * reasoning score, reward model trained first);
            false: the outcome-only baseline R = format + outcome.
        loss: a registered group loss (grpo, bnpo, dr_grpo, dapo).
        beta: k3 KL coefficient to the SFT model (0: no KL term).
        steps: optimiser steps (one group generation each).
        prompts_per_step: tasks per step.
        group_size: completions per task.
        lr: AdamW learning rate.
    """

    posterior: bool = True
    loss: str = "grpo"
    beta: float = 0.0
    steps: int = 30
    prompts_per_step: int = 4
    group_size: int = 4
    lr: float = 2e-5


@dataclass
class SandboxArgs:
    """Limits for executing generated code (shared.sandbox).

    Attributes:
        timeout_s: wall-clock (and CPU) seconds per program.
        memory_mb: address-space limit per program.
        workers: programs run in parallel (0: one per CPU core).
    """

    timeout_s: float = 5.0
    memory_mb: int = 512
    workers: int = 0


@dataclass
class QuickEvalArgs:
    """The per-round held-out check inside training (the full table comes from `python -m apps.codegen.eval`).

    Attributes:
        max_new_tokens: completion length limit.
        batch_size: sequences per generate call.
    """

    max_new_tokens: int = 256
    batch_size: int = 16


@dataclass
class CodegenConfig:
    """Train a code generator: SFT, then DSTC (DPO/KTO on self-tested pairs) or (Posterior-)GRPO.

    Attributes:
        recipe: sft (stop after SFT), dstc, or grpo (Posterior-GRPO or its outcome-only baseline, see grpo.posterior).
        seed: seed for sampling, data order and initialisation.
        run_dir: the run folder.
    """

    recipe: Literal["sft", "dstc", "grpo"] = "dstc"
    model: ModelSpec = field(default_factory=lambda: ModelSpec(
        source="smollm2", lora=LoraSpec(r=16, alpha=32, target_modules=list(ALL_LINEAR))))
    data: DataArgs = field(default_factory=DataArgs)
    sft: SFTArgs = field(default_factory=SFTArgs)
    sample: SampleArgs = field(default_factory=SampleArgs)
    dstc: DSTCArgs = field(default_factory=DSTCArgs)
    reward_model: RewardModelArgs = field(default_factory=RewardModelArgs)
    grpo: GRPOArgs = field(default_factory=GRPOArgs)
    sandbox: SandboxArgs = field(default_factory=SandboxArgs)
    eval: QuickEvalArgs = field(default_factory=QuickEvalArgs)
    trainer: TrainerArgs = field(default_factory=lambda: TrainerArgs(accelerator="cpu", devices="1", progress_bar=False))
    seed: int = 0
    run_dir: Path = Path("runs/codegen/dstc")
