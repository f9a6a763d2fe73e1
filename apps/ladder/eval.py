"""Evaluate ladder program generators on held-out tasks: parse rate, exact match, simulation equivalence.

    python -m apps.ladder.eval --run runs/ladder/raft_dpo                  # base, base k-shot, SFT, RAFT, RAFT+DPO
    python -m apps.ladder.eval --run runs/ladder/raft_dpo --tasks 50 --model other=runs/ladder/other
    python -m apps.ladder.eval --model sft=runs/ladder/raft_dpo/sft/model --k 0
    python -m apps.ladder.eval --run runs/ladder/raft_dpo --heldout embedded:seen --out runs/ladder/raft_dpo/eval_seen

With --run, the table has the base model (plain prompt and with the k retrieved examples RAFT
uses, i.e. retrieval without fine-tuning), the run's plain SFT model, the RAFT model and the
RAFT + DPO model, plus every --model (`NAME=SOURCE`, prompted with --k retrieved examples).
Each model writes one program per held-out task greedily (decoding does not depend on the seed,
so each model runs once); each program is scored (apps/ladder/score.py): parsed, exact match
after canonicalisation, equivalent under simulation (program-level accuracy) and the share of
the task's outputs that behave as the reference's (partial credit), the last also per pattern
composition. Intervals: bootstrap over tasks. Programs with their scores go to
--out/<model>/programs.jsonl (with generation.json: a rerun with the same model, tasks and settings
scores them again instead of regenerating); the table to --out/table.md (+ results.json, results.csv, a PNG per
metric); a drawing of the first generated programs of each fine-tuned model to --out/<model>/rungs.png.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from apps.ladder.prompts import task_prompt
from apps.ladder.score import Reference, score_program
from apps.ladder.tasks import Task
from shared.evaluation import Metric
from shared.kit import EvalArgs

if TYPE_CHECKING:
    from apps.ladder.config import LadderConfig

PROG = "python -m apps.ladder.eval"
SPLITS = {"embedded:heldout": ": pattern combinations training never has",
          "embedded:seen": ": new tasks of the training combinations"}


@dataclass
class LadderEvalArgs(EvalArgs):
    """How programs are generated for evaluation, and the quick check during training.

    Attributes:
        tasks: held-out tasks in the eval CLI (0: data.max_heldout, or all).
        quick: held-out tasks of the quick check after each training stage (0: no quick check).
        max_new_tokens: program length limit (tokens).
        batch_size: sequences per generate call.
        draw: programs drawn as rungs (PNG) per fine-tuned model.
    """

    tasks: int = 0
    quick: int = 0
    max_new_tokens: int = 160
    batch_size: int = 16
    draw: int = 3


def composition(task: Task) -> str:
    """The task's pattern families joined in sorted order (`delay+seal_in`), its breakdown key."""
    return "+".join(sorted(task.families))


def write_programs(model, tokenizer, tasks: Sequence[Task], retriever, k: int, *, max_new_tokens: int,
                   batch_size: int, seed: int = 0) -> list[str]:
    """One greedy program text per task (k retrieved examples in each prompt when k > 0)."""
    from shared.generation import sample_texts

    prompts = [task_prompt(t, retriever.examples(t, k) if k else ()) for t in tasks]
    out = sample_texts(model, tokenizer, prompts, samples=1, temperature=0.0, max_new_tokens=max_new_tokens,
                       batch_size=batch_size, seed=seed)
    return [texts[0] for texts in out]


def score_rows(tasks: Sequence[Task], texts: Sequence[str], refs: dict[str, Reference]) -> list[dict]:
    """One row per task: id, composition, number of patterns, the program text and its parsed / exact / equivalent scores."""
    rows = []
    for t, text in zip(tasks, texts):
        s = score_program(text, refs[t.id])
        rows.append({"id": t.id, "composition": composition(t), "patterns": len(t.patterns), "program": text,
                     **{k: float(v) if isinstance(v, bool) else v for k, v in s.items()}})
    return rows


MAX_COMPOSITION_COLUMNS = 10


def metrics_for(compositions: Sequence[str]) -> list[Metric]:
    """Parse rate, exact match, equivalence and outputs correct overall, then outputs correct (the partial credit,
    which separates models where whole programs rarely pass) per composition, or per number of composed
    patterns when there are more than MAX_COMPOSITION_COLUMNS compositions. Per-composition equivalence is
    in each model's programs.jsonl."""
    out = [Metric("parsed", "parse rate", field="parsed"), Metric("exact", "exact match", field="exact"),
           Metric("equivalent", "sim. equivalent", field="equivalent"),
           Metric("outputs", "outputs correct", field="outputs")]
    if len(compositions) > MAX_COMPOSITION_COLUMNS:
        sizes = sorted({c.count("+") + 1 for c in compositions})
        return out + [Metric(f"outputs/{n}_patterns", f"outputs, {n} pattern{'s' * (n > 1)}", field="outputs",
                             where=("patterns", n)) for n in sizes]
    return out + [Metric(f"outputs/{c}", f"outputs, {c}", field="outputs", where=("composition", c))
                  for c in compositions]


def summary(rows: list[dict]) -> dict[str, float]:
    """Overall point values (the training run's quick check)."""
    return {m.name: m.point(rows) for m in metrics_for([])}


def draw_programs(rows: list[dict], path: Path, count: int) -> None:
    """A PNG of the first `count` programs that parse (each as its rungs), for a look at what the model writes."""
    from apps.ladder.program import Program, try_parse
    from apps.ladder.render import render_rungs
    from apps.ladder.score import extract_program

    rungs = []
    for r in rows:
        p, _ = try_parse(extract_program(r["program"]))
        if p is not None:
            rungs.extend(p.rungs)
            count -= 1
            if count <= 0:
                break
    if rungs:
        render_rungs(Program(tuple(rungs)), path, title=f"first generated programs ({path.parent.name})")


def generation_record(source: str, k: int, cfg: "LadderConfig", tasks: Sequence[Task]) -> dict:
    """What a model's programs depend on: the model (path and the newest file time of its folder), k, the length
    limit and the tasks. Equal records mean the saved programs can be scored again instead of regenerated."""
    folder = Path(source)
    stamp = max((f.stat().st_mtime_ns for f in folder.rglob("*") if f.is_file()), default=0) if folder.is_dir() else 0
    return {"source": str(source), "model_mtime_ns": stamp, "k": k, "max_new_tokens": cfg.eval.max_new_tokens,
            "heldout": cfg.data.heldout, "seed": cfg.data.seed, "tasks": [t.id for t in tasks]}


def reuse_programs(folder: Path, made: dict) -> list[str] | None:
    """The programs saved in folder/programs.jsonl when folder/generation.json equals `made`, else None."""
    import json

    try:
        if json.loads((folder / "generation.json").read_text()) != made:
            return None
        rows = [json.loads(line) for line in (folder / "programs.jsonl").read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return None
    if [r.get("id") for r in rows] != made["tasks"] or not all(isinstance(r.get("program"), str) for r in rows):
        return None
    print(f"{folder.name}: scoring the saved programs again (same model, tasks and settings)", flush=True)
    return [r["program"] for r in rows]


def run_models(cfg: "LadderConfig", run: Path | None) -> dict[str, tuple[str, int]]:
    """Name -> (model source, retrieved examples k) of a run: base (plain and k-shot), sft, raft, raft_dpo."""
    models: dict[str, tuple[str, int]] = {}
    if run is None:
        return models
    base = cfg.model.path if cfg.model.source == "hf" else cfg.model.source
    if base and base != "tiny":
        models["base"] = (base, 0)
        if cfg.raft.k:
            models[f"base {cfg.raft.k}-shot"] = (base, cfg.raft.k)
    for name, folder, k in (("sft", run / "sft" / "model", 0), ("raft", run / "raft" / "model", cfg.raft.k),
                            ("raft_dpo", run / "dpo" / "round_000" / "checkpoint" / "model", cfg.raft.k)):
        if folder.exists():
            models[name] = (str(folder), k)
    return models


def main(argv: list[str] | None = None) -> None:
    from apps.ladder.config import LadderConfig
    from apps.ladder.data import load_split
    from apps.ladder.retrieval import ExampleRetriever
    from shared.config import ConfigError, load_yaml
    from shared.evaluation import evaluate_models
    from shared.kit import eval_parser, fail, named
    from shared.kit.stages import set_threads
    from shared.models import load_policy, resolve_model
    from shared.atomic import write_json
    from shared.records import write_jsonl

    parser = eval_parser(PROG, __doc__, run=False)
    parser.add_argument("--run", type=Path, help="a training run folder: its base, SFT, RAFT and RAFT+DPO models and data")
    parser.add_argument("--tasks", type=int, help="held-out tasks (default: eval.tasks, else data.max_heldout, 0: all)")
    parser.add_argument("--k", type=int, help="retrieved examples in the prompts of --model models (default: raft.k)")
    parser.add_argument("--heldout", help="held-out tasks: embedded:heldout (unseen pattern combinations), embedded:seen "
                                          "(new tasks of the training combinations) or a JSONL file (default: data.heldout)")
    args = parser.parse_args(argv)
    try:
        cfg = load_yaml(LadderConfig, args.run / "config.yaml") if args.run else LadderConfig()
        models = run_models(cfg, args.run)
        k = cfg.raft.k if args.k is None else args.k
        models.update({name: (source, k) for name, source in (named(m) for m in args.model)})
        if not models:
            raise ValueError("nothing to evaluate: give --run or --model NAME=SOURCE")
        if args.heldout:
            cfg.data.heldout = args.heldout
        limit = args.tasks if args.tasks is not None else cfg.eval.tasks
        tasks = load_split(cfg.data, "heldout")
        tasks = tasks[:limit] if limit else tasks
        train = load_split(cfg.data, "train")
        resolved = {name: resolve_model(source)[0] for name, (source, _) in models.items()}
    except (ValueError, OSError, ConfigError) as exc:
        fail(PROG, exc)
    set_threads()
    retriever = ExampleRetriever(train)
    refs = {t.id: Reference.of(t, cfg.data.seed) for t in tasks}
    out_dir = args.out or ((args.run / "eval") if args.run else Path("runs/ladder/eval"))
    comps = sorted({composition(t) for t in tasks})

    def score(name: str, source, seed: int) -> list[dict]:
        made = generation_record(source, models[name][1], cfg, tasks)
        texts = reuse_programs(out_dir / name, made)
        if texts is None:
            model, tok = load_policy(resolved[name])
            texts = write_programs(model, tok, tasks, retriever, models[name][1], max_new_tokens=cfg.eval.max_new_tokens,
                                   batch_size=cfg.eval.batch_size, seed=seed)
        rows = score_rows(tasks, texts, refs)
        write_jsonl(out_dir / name / "programs.jsonl", rows)
        write_json(out_dir / name / "generation.json", made)
        if name != "base" and not name.startswith("base ") and cfg.eval.draw:
            draw_programs(rows, out_dir / name / "rungs.png", cfg.eval.draw)
        print(f"{name}: " + " ".join(f"{k} {v:.3f}" for k, v in summary(rows).items()), flush=True)
        return rows

    level = args.level or cfg.eval.level
    evaluate_models({n: s for n, (s, _) in models.items()}, score, metrics_for(comps),
                    seeds=[(args.seeds or cfg.eval.seeds)[0]], out_dir=out_dir,
                    resamples=args.resamples or cfg.eval.resamples, level=level,
                    caption=f"{len(tasks)} held-out tasks ({cfg.data.heldout}{SPLITS.get(cfg.data.heldout, '')}), greedy "
                            f"programs; equivalence by PLC simulation; {level:.0%} bootstrap intervals over tasks.",
                    headline="equivalent",
                    settings={"tasks": len(tasks), "models": {n: {"source": s, "k": kk} for n, (s, kk) in models.items()}})


if __name__ == "__main__":
    main()
