"""Evaluate deck planners on held-out tasks: coverage, flow, adherence, faithfulness, template fit, total.

    python -m apps.slides.eval --run runs/slides/dpo                 # reference decks, base, SFT, DPO
    python -m apps.slides.eval --run runs/slides/dpo --tasks 50 --model other=runs/slides/other
    python -m apps.slides.eval --model sft=runs/slides/dpo/sft/model --heldout my_tasks.jsonl

With --run, the table has the reference decks themselves (what the presenter's profile gives for the
paper: coverage and flow are 1 by construction; the other scores show what the reference reaches),
the base model (SmolLM2 with the same prompt and grammar), the run's SFT model and its DPO model, plus
every --model NAME=SOURCE. Each model writes one plan per held-out task greedily (the seed does not
change greedy plans, so each model runs once), grammar-constrained so that every plan parses.
Intervals: bootstrap over tasks. Per model, --out/<model>/plans.jsonl keeps every plan with its
scores (with generation.json: a rerun with the same model, tasks and settings scores them again
instead of regenerating) and --out/<model>/decks/<task>.pptx every deck built on the task's template,
each checked (`pptx ok`: python-pptx reads it back with every slide and its speaker notes, and the package
check finds nothing); the first
eval.decks decks are rendered to PNG with a contact sheet when LibreOffice is installed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from apps.slides.data import Task
from apps.slides.plan import PlanError, format_plan, parse_plan
from apps.slides.reward import SCORES, score_plan
from shared.evaluation import Metric

if TYPE_CHECKING:
    from apps.slides.config import SlidesConfig

PROG = "python -m apps.slides.eval"
PARTS = ("count", "bullets", "words", "style", "emphasis")


def metrics() -> list[Metric]:
    labels = {"valid": "parses", "coverage": "coverage", "flow": "flow", "adherence": "adherence",
              "faithfulness": "faithful", "fit": "fits template", "total": "total", "pptx_ok": "pptx ok"}
    out = [Metric(k, labels[k]) for k in ("total", *SCORES, "valid", "pptx_ok")]
    return out + [Metric(f"adherence/{p}", p) for p in PARTS]


def score_rows(tasks: Sequence[Task], texts: Sequence[str], weights: dict[str, float]) -> list[dict]:
    """One row per task: id, template, style, the plan text and its scores."""
    rows = []
    for task, text in zip(tasks, texts):
        s = score_plan(text, task, weights)
        rows.append({"id": task.id, "template": task.template.stem, "style": task.profile.style,
                     "slides_wanted": task.slides, "plan": text, **s})
    return rows


def build_decks(rows: list[dict], tasks: Sequence[Task], folder: Path, render: int) -> None:
    """Write every parsed plan as folder/<task>.pptx on its template (setting row["pptx_ok"]); render the first
    `render` decks to PNG (with a contact sheet) when LibreOffice is installed."""
    from apps.slides.pptx_io import DeckError, build_deck, check_package, contact_sheet, libreoffice, read_deck, render_pngs

    rendered = 0
    for row, task in zip(rows, tasks):
        try:
            plan = parse_plan(row["plan"])
        except PlanError:
            row["pptx_ok"] = None
            continue
        path = build_deck(plan, task.template, folder / f"{task.id}.pptx")
        try:
            problems = check_package(path)
            back = read_deck(path)
            notes = all(b.speech == p.speech for b, p in zip(back.slides, plan.slides))
            row["pptx_ok"] = float(not problems and len(back.slides) == len(plan.slides) and notes)
        except DeckError:
            row["pptx_ok"] = 0.0
        if rendered < render and libreoffice():
            pngs = render_pngs(path, folder / task.id)
            if pngs:
                contact_sheet(pngs, folder / f"{task.id}.png")
                rendered += 1


def generation_record(source: str, cfg: "SlidesConfig", tasks: Sequence[Task]) -> dict:
    """What a model's plans depend on; equal records mean saved plans can be scored again."""
    folder = Path(source)
    stamp = max((f.stat().st_mtime_ns for f in folder.rglob("*") if f.is_file()), default=0) if folder.is_dir() else 0
    return {"source": str(source), "model_mtime_ns": stamp, "max_new_tokens": cfg.eval.max_new_tokens,
            "heldout": cfg.data.heldout, "seed": cfg.data.seed, "tasks": [t.id for t in tasks]}


def reuse_plans(folder: Path, made: dict) -> list[str] | None:
    try:
        if json.loads((folder / "generation.json").read_text()) != made:
            return None
        rows = [json.loads(line) for line in (folder / "plans.jsonl").read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return None
    if [r.get("id") for r in rows] != made["tasks"] or not all(isinstance(r.get("plan"), str) for r in rows):
        return None
    print(f"{folder.name}: scoring the saved plans again (same model, tasks and settings)", flush=True)
    return [r["plan"] for r in rows]


def run_models(cfg: "SlidesConfig", run: Path | None) -> dict[str, str]:
    """Name -> source of a run's models: reference, base, sft, dpo (the last round)."""
    models: dict[str, str] = {}
    if run is None:
        return models
    models["reference"] = "reference decks"
    base = cfg.model.path if cfg.model.source == "hf" else cfg.model.source
    if base and base != "tiny":
        models["base"] = base
    if (run / "sft" / "model").exists():
        models["sft"] = str(run / "sft" / "model")
    rounds = sorted((run / "dpo").glob("round_*/checkpoint/model")) if (run / "dpo").exists() else []
    if rounds:
        models["dpo"] = str(rounds[-1])
    return models


def main(argv: list[str] | None = None) -> None:
    from apps.slides.config import SlidesConfig
    from apps.slides.data import load_split
    from apps.slides.generate import write_plans
    from shared.atomic import write_json
    from shared.config import ConfigError, load_yaml
    from shared.evaluation import evaluate_models
    from shared.kit import eval_parser, fail, named
    from shared.kit.stages import set_threads
    from shared.models import load_policy, resolve_model
    from shared.records import write_jsonl

    parser = eval_parser(PROG, __doc__, run=False)
    parser.add_argument("--run", type=Path, help="a training run folder: its reference decks, base, SFT and DPO models")
    parser.add_argument("--tasks", type=int, help="held-out tasks (default: eval.tasks; 0: all)")
    parser.add_argument("--heldout", help="held-out tasks: embedded:heldout or a JSONL file (default: data.heldout)")
    args = parser.parse_args(argv)
    try:
        cfg = load_yaml(SlidesConfig, args.run / "config.yaml") if args.run else SlidesConfig()
        models = run_models(cfg, args.run)
        models.update(dict(named(m) for m in args.model))
        if not models:
            raise ValueError("nothing to evaluate: give --run or --model NAME=SOURCE")
        if args.heldout:
            cfg.data.heldout = args.heldout
        limit = args.tasks if args.tasks is not None else cfg.eval.tasks
        out_dir = args.out or ((args.run / "eval") if args.run else Path("runs/slides/eval"))
        tasks = load_split(cfg.data, "heldout", (args.run or out_dir) / "data")
        tasks = tasks[:limit] if limit else tasks
        if "reference" in models and any(t.reference is None for t in tasks):
            models.pop("reference")
        resolved = {name: resolve_model(source)[0] for name, source in models.items() if name != "reference"}
    except (ValueError, OSError, ConfigError) as exc:
        fail(PROG, exc)
    set_threads()

    def score(name: str, source, seed: int) -> list[dict]:
        if name == "reference":
            texts = [format_plan(t.reference) for t in tasks]
        else:
            made = generation_record(source, cfg, tasks)
            texts = reuse_plans(out_dir / name, made)
            if texts is None:
                model, tok = load_policy(resolved[name])
                texts = [t[0] for t in write_plans(model, tok, tasks, max_new_tokens=cfg.eval.max_new_tokens,
                                                   batch_size=cfg.eval.batch_size, seed=seed)]
            write_json(out_dir / name / "generation.json", made)
        rows = score_rows(tasks, texts, cfg.reward.weights)
        build_decks(rows, tasks, out_dir / name / "decks", cfg.eval.decks)
        write_jsonl(out_dir / name / "plans.jsonl", rows)
        summary = {k: sum(r[k] or 0.0 for r in rows) / len(rows) for k in ("total", *SCORES)}
        print(f"{name}: " + " ".join(f"{k} {v:.3f}" for k, v in summary.items()), flush=True)
        return rows

    level = args.level or cfg.eval.level
    evaluate_models(models, score, metrics(), seeds=[(args.seeds or cfg.eval.seeds)[0]], out_dir=out_dir,
                    resamples=args.resamples or cfg.eval.resamples, level=level,
                    caption=f"{len(tasks)} held-out tasks ({cfg.data.heldout}: new papers and presenters), greedy "
                            f"grammar-constrained plans; total = mean of coverage, flow, adherence, faithfulness and "
                            f"template fit; {level:.0%} bootstrap intervals over tasks.",
                    headline="total",
                    settings={"tasks": len(tasks), "models": models})


if __name__ == "__main__":
    main()
