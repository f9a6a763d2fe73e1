"""The codegen reward aspects: format, outcome (hidden tests in the sandbox) and the reasoning score.

`CodeReward` scores completions of tasks named by `context["task_id"]`:
- outcome: 1.0 when the function extracted from the completion passes every hidden test of its
  task in the sandbox, else 0.0 (Posterior-GRPO's binary R_outcome);
- format: 1.0 when the completion has the expected shape (reasoning mode: a `<think>...</think>`
  block followed by a code block that defines the entry point; code mode: a function definition
  of the entry point that parses), else 0.0;
- process (only with a `reasoning_scorer`): the reasoning reward model's score of the think block,
  sigmoid(r) in (0, 1), 0.0 when there is no think block.
A completion with no extractable function is invalid (valid = 0, every aspect 0): scored, never raised.
Wrap it in `shared.rewards.OutcomeGate` for R = format + outcome + outcome * process.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from apps.codegen.data import Task
from apps.codegen.execution import new_marker, passed, task_program
from apps.codegen.parsing import extract_function, strip_think
from shared.rewards import RewardFunction
from shared.sandbox import Limits, run_programs


def split_completion(output: str, entry_point: str, reasoning: bool) -> tuple[str | None, str | None]:
    """Return (the reasoning or None, the extracted function or None) of a completion in the given mode."""
    think, rest = strip_think(output) if reasoning else (None, output)
    return think, extract_function(rest, entry_point)


class CodeReward(RewardFunction):
    """Sandboxed hidden-test outcome plus format (and, given a scorer, the reasoning score) per completion."""

    output_types = (str,)
    max_output_len = 20_000

    def __init__(self, tasks: Mapping[str, Task] | Sequence[Task], limits: Limits = Limits(timeout_s=5.0, memory_mb=512),
                 *, workers: int | None = None, reasoning: bool = False, reasoning_scorer=None):
        self.tasks = dict(tasks) if isinstance(tasks, Mapping) else {t.task_id: t for t in tasks}
        self.limits, self.workers, self.reasoning, self.scorer = limits, workers, reasoning, reasoning_scorer
        self.aspects = ("format", "outcome") + (("process",) if reasoning_scorer is not None else ())

    def _task(self, context: dict) -> Task:
        try:
            return self.tasks[context["task_id"]]
        except KeyError:
            raise KeyError(f"no task with id {context.get('task_id')!r} (context needs a known 'task_id')") from None

    def score_batch(self, prompts: list, outputs: list[str], contexts: list[dict]) -> list[dict[str, float]]:
        tasks = [self._task(c) for c in contexts]
        parts = [split_completion(o, t.entry_point, self.reasoning) for t, o in zip(tasks, outputs)]
        marker = new_marker()
        runnable = [i for i, (_, code) in enumerate(parts) if code is not None]
        verdicts = run_programs([task_program(tasks[i], parts[i][1], marker) for i in runnable], self.limits,
                                workers=self.workers)
        outcome = dict.fromkeys(range(len(outputs)), 0.0)
        outcome.update({i: float(passed(v, marker)) for i, v in zip(runnable, verdicts)})
        process = {}
        if self.scorer is not None:
            scored = [i for i in runnable if parts[i][0] is not None]
            process = dict(zip(scored, self.scorer([prompts[i] for i in scored], [parts[i][0] for i in scored])))
        out = []
        for i, (think, code) in enumerate(parts):
            if code is None:
                out.append({**dict.fromkeys(self.aspects, 0.0), "valid": 0.0})
                continue
            fmt = float(think is not None) if self.reasoning else 1.0
            score = {"format": fmt, "outcome": outcome[i]}
            if self.scorer is not None:
                score["process"] = process.get(i, 0.0)
            out.append(score)
        return out
