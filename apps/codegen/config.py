"""The codegen app's configuration: the kit's sections and the domain ones its modules declare (configs/codegen/*.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from apps.codegen.data import DataArgs
from apps.codegen.dstc import DSTCArgs
from apps.codegen.eval import CodeEvalArgs
from apps.codegen.reasoning_rm import RewardModelArgs
from shared.kit import AppConfig, GroupRLArgs, PreferenceArgs, SampleArgs, SandboxArgs, SFTArgs, all_linear_lora
from shared.models import ModelSpec


@dataclass
class CodeSFTArgs(SFTArgs):
    """Supervised fine-tuning on the training tasks' reference solutions, tests and reasoning traces.

    Attributes:
        formats: which instructions to teach: code, tests (DSTC's self-tests), reasoning (think then code).
    """

    formats: list[str] = field(default_factory=lambda: ["code", "tests", "reasoning"])


@dataclass
class CodeGroupRLArgs(GroupRLArgs):
    """Online GRPO on reasoning-then-code completions.

    Attributes:
        posterior: Posterior-GRPO (R = format + outcome + outcome * reasoning score, reward model trained first);
            false: the outcome-only baseline R = format + outcome.
    """

    posterior: bool = True


@dataclass
class CodegenConfig(AppConfig):
    """Train a code generator: SFT, then DSTC (DPO/KTO on self-tested pairs) or (Posterior-)GRPO.

    Attributes:
        recipe: sft (stop after SFT), dstc, or grpo (Posterior-GRPO or its outcome-only baseline, see grpo.posterior).
        model: the policy (the embedded SmolLM2-135M-Instruct with LoRA on every projection by default).
        data: the tasks.
        sft: supervised fine-tuning.
        sample: how the policy samples (sample.n: DSTC's code candidates per task).
        dstc: DSTC's test sampling and pass matrix.
        pref: DSTC's preference fit on the minimax pairs (pref.loss kto for DSTC-KTO).
        reward_model: Posterior-GRPO's reasoning reward model.
        grpo: (Posterior-)GRPO.
        sandbox: limits for running generated code.
        eval: the held-out check after training.
    """

    recipe: Literal["sft", "dstc", "grpo"] = "dstc"
    model: ModelSpec = field(default_factory=lambda: ModelSpec(source="smollm2", lora=all_linear_lora()))
    data: DataArgs = field(default_factory=DataArgs)
    sft: CodeSFTArgs = field(default_factory=lambda: CodeSFTArgs(steps=60, lr=2e-4, batch_size=8))
    sample: SampleArgs = field(default_factory=SampleArgs)
    dstc: DSTCArgs = field(default_factory=DSTCArgs)
    pref: PreferenceArgs = field(default_factory=PreferenceArgs)
    reward_model: RewardModelArgs = field(default_factory=lambda: RewardModelArgs(steps=60, lr=2e-4, batch_size=8))
    grpo: CodeGroupRLArgs = field(default_factory=CodeGroupRLArgs)
    sandbox: SandboxArgs = field(default_factory=SandboxArgs)
    eval: CodeEvalArgs = field(default_factory=CodeEvalArgs)
    run_dir: Path = Path("runs/codegen/dstc")
