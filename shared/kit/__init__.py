"""The app kit: config sections, resumable recipe stages and entry-point helpers every app composes.

Evaluation over models x seeds and the results table live in shared.evaluation; serving in
shared.serving; the iterative rounds in shared.loop. docs/architecture.md walks through an app.
"""

from shared.kit.cli import eval_parser, fail, finish_run, loop_errors, named, record_final_model, start_run
from shared.kit.sections import (
    ALL_LINEAR,
    AppConfig,
    DiffusionSampleArgs,
    EvalArgs,
    FitArgs,
    GroupRLArgs,
    PreferenceArgs,
    SampleArgs,
    SandboxArgs,
    SFTArgs,
    all_linear_lora,
    cpu_trainer,
)
from shared.kit.stages import (
    GroupSampleWriter,
    fit_preference,
    limit_pairs,
    policy_at,
    preference_round_fit,
    reference_for,
    run_group_rl,
    run_sft,
    set_threads,
    train_stage,
)

__all__ = [
    "ALL_LINEAR",
    "AppConfig",
    "DiffusionSampleArgs",
    "EvalArgs",
    "FitArgs",
    "GroupRLArgs",
    "GroupSampleWriter",
    "PreferenceArgs",
    "SFTArgs",
    "SampleArgs",
    "SandboxArgs",
    "all_linear_lora",
    "cpu_trainer",
    "eval_parser",
    "fail",
    "loop_errors",
    "finish_run",
    "fit_preference",
    "limit_pairs",
    "named",
    "policy_at",
    "preference_round_fit",
    "record_final_model",
    "reference_for",
    "run_group_rl",
    "run_sft",
    "set_threads",
    "start_run",
    "train_stage",
]
