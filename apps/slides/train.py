"""Train a deck planner: SFT on reference decks, then DPO on its own plans ranked by the reward.

    python -m apps.slides.train                                       # the embedded default (configs/slides/dpo.yaml)
    python -m apps.slides.train --config configs/slides/tiny.yaml     # a few-minute smoke run
    python -m apps.slides.train pref.rounds=2 run_dir=runs/slides/two_rounds
    python -m apps.slides.train --help                                # every option with its default

Stage 1 (SFT): the prompt carries the presenter's profile distilled from their example deck, the
template's capacity, the slide count and the paper (apps/slides/prompts.py); the target is the
reference deck in the chain-of-speech format (apps/slides/plan.py). Stage 2 (DPO, through
shared.loop, resumable): per round the current model samples sample.n grammar-constrained plans for
pref.tasks training tasks; each is scored (apps/slides/reward.py: coverage, flow, adherence,
faithfulness, template fit); pairs are best vs worst per task (or every pair pref.min_margin apart);
DPO from the previous round's model. The run folder keeps sft/model and dpo/round_NNN/ (candidates,
scored candidates, pairs, checkpoint); final_model.json names the last model; `python -m
apps.slides.eval --run RUN` compares base, SFT and DPO.
"""

from __future__ import annotations

import random
from dataclasses import asdict, replace
from pathlib import Path

from apps.slides.config import SlidesConfig
from apps.slides.data import Task, load_split
from apps.slides.generate import task_prompts, write_plans
from apps.slides.plan import format_plan
from apps.slides.reward import SCORES, score_plan
from shared.kit import finish_run, loop_errors, policy_at, preference_round_fit, run_sft, start_run
from shared.loop import LoopError, RecipeFunctions, run_loop
from shared.pairs import best_vs_worst, margin_pairs
from shared.records import Candidate

PROG = "python -m apps.slides.train"


def sft_examples(tasks: list[Task]) -> list[tuple[list[dict], str]]:
    return list(zip(task_prompts(tasks), (format_plan(t.reference) for t in tasks)))


def quick_eval(cfg: SlidesConfig, folder: Path, heldout: list[Task], seed: int) -> dict[str, float]:
    """Mean scores of greedy plans on the first eval.quick held-out tasks ({} when 0)."""
    if not cfg.eval.quick:
        return {}
    tasks = heldout[:cfg.eval.quick]
    model, tok = policy_at(cfg.model, folder, seed, lora=False)
    texts = write_plans(model, tok, tasks, max_new_tokens=cfg.eval.max_new_tokens, batch_size=cfg.eval.batch_size,
                        seed=seed)
    rows = [score_plan(t[0], task, cfg.reward.weights) for t, task in zip(texts, tasks)]
    keys = ("valid", *SCORES, "total")
    return {k: sum(r[k] or 0.0 for r in rows) / len(rows) for k in keys}


def run_dpo(cfg: SlidesConfig, start: Path, train: list[Task], heldout: list[Task]) -> tuple[Path, dict]:
    """DPO rounds through shared.loop: sample plans, score them, pair best vs worst, fit."""
    pool = list(train)
    random.Random(cfg.seed).shuffle(pool)
    chosen = pool[:cfg.pref.tasks or len(pool)]
    tasks = {t.id: t for t in chosen}
    prompts = dict(zip(tasks, task_prompts(chosen)))
    s = cfg.sample

    def sample(round, checkpoint, schedule):
        model, tok = policy_at(cfg.model, checkpoint or start, round.seed, lora=False)
        print(f"dpo: sampling {s.n} plans for {len(chosen)} training tasks", flush=True)
        texts = write_plans(model, tok, chosen, samples=s.n, temperature=schedule["temperature"], top_p=s.top_p,
                            max_new_tokens=s.max_new_tokens, batch_size=s.batch_size, seed=round.seed,
                            constrained=s.constrained)
        return [Candidate(t.id, prompts[t.id], text, metadata={"sample": j})
                for t, outs in zip(chosen, texts) for j, text in enumerate(outs)]

    def score(round, candidates):
        out = []
        for c in candidates:
            sc = score_plan(c.output, tasks[c.prompt_id], cfg.reward.weights)
            numeric = {k: float(v) for k, v in sc.items() if isinstance(v, (int, float)) and v is not None}
            out.append(Candidate(c.prompt_id, c.prompt, c.output, numeric, {**c.metadata, "reason": sc["reason"]}))
        mean = sum(c.scores["total"] for c in out) / max(1, len(out))
        print(f"dpo: mean reward of the samples {mean:.3f}", flush=True)
        return out

    def build(round, scored):
        if cfg.pref.pairs == "margin":
            pairs = margin_pairs(scored, "total", margin=cfg.pref.min_margin,
                                 max_pairs_per_prompt=cfg.pref.pairs_per_task, seed=round.seed)
        elif cfg.pref.pairs == "best_vs_worst":
            pairs = best_vs_worst(scored, "total", min_margin=cfg.pref.min_margin)
        else:
            raise LoopError(f"pref.pairs: {cfg.pref.pairs!r} is not best_vs_worst or margin")
        print(f"dpo: {len(pairs)} pairs from {len(tasks)} tasks (reward gap >= {cfg.pref.min_margin})", flush=True)
        if not pairs:
            raise LoopError("dpo: no pair (every task's samples scored within pref.min_margin); raise sample.n or "
                            "sample.temperature, or lower pref.min_margin")
        return pairs

    def evaluate(round, checkpoint):
        return quick_eval(cfg, checkpoint, heldout, round.seed)

    pref = replace(cfg.pref, max_pairs=cfg.pref.max_pairs or cfg.pref.steps * cfg.pref.batch_size)
    fit = preference_round_fit(cfg.model, pref, cfg.trainer, start)
    result = run_loop(RecipeFunctions(sample, score, build, fit, evaluate), cfg.run_dir / "dpo", cfg.pref.rounds,
                      schedule={"temperature": s.schedule(cfg.pref.rounds)}, seed=cfg.seed, initial_checkpoint=start,
                      config={"pref": {k: v for k, v in asdict(cfg.pref).items() if k != "rounds"},
                              "sample": {k: v for k, v in asdict(s).items() if k != "temperatures"},
                              "reward": asdict(cfg.reward), "data": asdict(cfg.data), "tasks": sorted(tasks)})
    return result.checkpoint, (result.metrics[-1] if result.metrics else {})


def load_data(cfg: SlidesConfig):
    folder = cfg.run_dir / "data"
    train = load_split(cfg.data, "train", folder)
    heldout = load_split(cfg.data, "heldout", folder)[:cfg.eval.quick]
    return train, heldout


def main(argv: list[str] | None = None) -> dict:
    cfg, (train, heldout) = start_run(SlidesConfig, argv, doc=__doc__, prog=PROG, prepare=load_data)
    metrics = {}
    sft = run_sft(cfg.run_dir, cfg.model, cfg.sft, cfg.trainer, cfg.seed, lambda: sft_examples(train),
                  f"from the reference decks of {len(train)} tasks")
    metrics["sft"] = quick_eval(cfg, sft, heldout, cfg.seed)
    _print("sft", metrics["sft"])
    model = sft
    if cfg.pref.steps:
        with loop_errors(PROG):
            model, metrics["dpo"] = run_dpo(cfg, sft, train, heldout)
        _print("dpo", metrics["dpo"])
    return finish_run(cfg.run_dir, model, {"final_model": str(model), "heldout": metrics})


def _print(name: str, m: dict[str, float]) -> None:
    if m:
        print(f"held-out ({name}): " + "  ".join(f"{k} {v:.3f}" for k, v in m.items()), flush=True)


if __name__ == "__main__":
    main()
