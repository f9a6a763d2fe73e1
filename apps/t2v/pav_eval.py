"""Evaluate Prompt-A-Video's boosters: videos from the request itself, and from each booster's rewrite of it.

Conditions (columns of the grid, rows of the table), all drawn by the same video model with the same
video seeds per request and eval seed:
- original: the user's request as it is;
- base: the booster before training (SmolLM2-135M-Instruct, prompted with the booster's instruction);
- sft: after SFT on the evolved rewrites; dpo_r1, dpo_r2, ...: after each DPO round;
- caption (a reference, not a method): the caption the video model was trained on for the request's
  scene, i.e. what a perfect rewrite into the model's own language would give.
Rewrites are greedy (one per request, seed-independent); the eval seed changes the video's noise.
Every video is judged against the ORIGINAL request's scene by the rule critic: each dimension's
share right, all dimensions right (the checker's accuracy), the weighted reward, the share of
rewrites that are usable, the share that name every object's colour in the model's own colour
words (what the rewrite says, independent of the video) and their length in words. Intervals:
bootstrap over requests.
Writes <out>/table.md (+ results.json / .csv), per condition and seed the rows and videos,
<out>/<condition>/rewrites.jsonl, grid.gif / grid.mp4 (a request per category, a column per
condition) and examples.md (the grid's requests with every condition's rewrite).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from apps.t2v.booster import booster_spec, check_rewrite, clean_rewrite, rewrite
from apps.t2v.critic import DIMENSIONS, RuleCritic, correct
from apps.t2v.data import CATEGORIES, VideoPrompt
from apps.t2v.eval import labelled_grid
from apps.t2v.model import load_saved
from apps.t2v.rewrite_reward import RewriteScorer
from shared.atomic import write_text
from shared.evaluation import Metric, ResultsTable, evaluate_models
from shared.generation import Sampled
from shared.models import load_policy
from shared.records import read_jsonl, write_jsonl
from shared.scenes.video import caption_of
from shared.video_io import read_video, write_gif, write_mp4

if TYPE_CHECKING:
    from apps.t2v.config import T2VConfig

FIXED = ("original", "caption")  # conditions that need no booster
METRICS = [Metric(d, field=d, cluster="request_index") for d in DIMENSIONS] + [
    Metric("passed", label="all dims", field="passed", cluster="request_index", stratify="category"),
    Metric("reward", label="reward", cluster="request_index"),
    Metric("valid", label="usable rewrite", field="valid", cluster="request_index"),
    Metric("names_colours", label="names the colours", field="names_colours", cluster="request_index"),
    Metric("words", label="words", cluster="request_index"),
]


def names_colours(scene, text: str) -> bool:
    """Whether the text names every object's colour in the video model's words (the caption's colour word)."""
    words = set(text.lower().replace(",", " ").split())
    return all(o.colour in words for o in scene.objects)


def eval_seed(seed: int, request_index: int) -> int:
    return (104_729 * seed + 1_009 * request_index + 17) % (2**31)


def condition_rewrites(cfg: T2VConfig, name: str, source: str, requests: Sequence[VideoPrompt],
                       out: Path) -> list[Sampled]:
    """Each request's text for the video model under one condition (cached in <out>/<name>/rewrites.jsonl)."""
    path = out / name / "rewrites.jsonl"
    if path.is_file():
        return [Sampled(r["raw"], r["finished"], r["tokens"]) for r in read_jsonl(path)]
    if name == "original":
        texts = [Sampled(r.prompt, True, 0) for r in requests]
    elif name == "caption":
        texts = [Sampled(caption_of(r.scene), True, 0) for r in requests]
    else:
        model, tok = load_policy(booster_spec(cfg.booster, source, cfg.seed))
        texts = [row[0] for row in rewrite(model, tok, [r.prompt for r in requests], cfg.rewrite, greedy=True)]
    write_jsonl(path, ({"request": r.prompt, "rewrite": clean_rewrite(t.text), "raw": t.text, "finished": t.finished,
                        "tokens": t.tokens, "usable": check_rewrite(t, cfg.rewrite.max_words) is None}
                       for r, t in zip(requests, texts)))
    return texts


class BoosterEval:
    """Scores one condition for one seed (the driver's score function); results of a (condition, seed) are reused."""

    def __init__(self, cfg: T2VConfig, video_model_folder: Path, requests: Sequence[VideoPrompt], out: Path):
        self.cfg, self.requests, self.out = cfg, list(requests), out
        self.scorer = RewriteScorer(load_saved(video_model_folder, cfg.model), RuleCritic(), cfg.reward, cfg.sample,
                                    cfg.rewrite.max_words)

    def __call__(self, name: str, source: str, seed: int) -> list[dict]:
        folder = self.out / name / f"seed_{seed}"
        done = folder / "results.jsonl"
        if done.is_file():
            return read_jsonl(done)
        texts = condition_rewrites(self.cfg, name, source, self.requests, self.out)
        n = len(self.requests)
        videos = [folder / "videos" / f"{i:03d}.npy" for i in range(n)]
        scores = self.scorer.score(self.requests, texts, [eval_seed(seed, i) for i in range(n)], videos)
        rows = []
        for i, (request, text, s) in enumerate(zip(self.requests, texts, scores)):
            rows.append({"request_index": i, "request": request.prompt, "rewrite": clean_rewrite(text.text),
                         "category": request.scene.category, "video": f"videos/{i:03d}.npy" if s["valid"] else None,
                         **{d: correct(s, d) for d in DIMENSIONS}, "passed": bool(s["passed"]), "reward": s["reward"],
                         "valid": bool(s["valid"]), "words": s["words"],
                         "names_colours": names_colours(request.scene, clean_rewrite(text.text))})
        write_jsonl(done, rows)
        return rows


def write_examples(cfg: T2VConfig, conditions: Sequence[str], requests: Sequence[VideoPrompt], out: Path) -> list[Path]:
    """grid.gif / grid.mp4 and examples.md: the first request of each category, one column per condition (seed-0
    videos; an unusable rewrite's cell is black)."""
    import numpy as np

    seed = cfg.eval.seeds[0]
    chosen = [next(i for i, r in enumerate(requests) if r.scene.category == c) for c in CATEGORIES
              if any(r.scene.category == c for r in requests)]
    if not chosen:
        return []
    m = cfg.model
    results = {name: read_jsonl(out / name / f"seed_{seed}" / "results.jsonl") for name in conditions}
    rows, lines = [], ["| request | " + " | ".join(conditions) + " |", "|---" * (len(conditions) + 1) + "|"]
    for i in chosen:
        cells, texts = [], []
        for name in conditions:
            row = results[name][i]
            path = out / name / f"seed_{seed}" / "videos" / f"{i:03d}.npy"
            cells.append(read_video(path) if row["video"] else np.zeros((m.frames, m.resolution, m.resolution, 3), np.uint8))
            verdict = "all right" if row["passed"] else "wrong on " + ", ".join(d for d in DIMENSIONS if not row[d])
            texts.append(f"{row['rewrite'] or '(empty)'} ({verdict})".replace("|", "/"))
        rows.append(cells)
        lines.append(f"| {requests[i].prompt} | " + " | ".join(texts) + " |")
    grid = labelled_grid(rows, [requests[i].prompt for i in chosen], list(conditions))
    write_text(out / "examples.md", f"Seed {seed}; the critic's verdict against the request in brackets.\n\n"
               + "\n".join(lines) + "\n")
    return [write_gif(out / "grid.gif", grid, fps=4), write_mp4(out / "grid.mp4", grid, fps=4), out / "examples.md"]


def evaluate_boosters(cfg: T2VConfig, video_model: Path, boosters: dict[str, str], requests: Sequence[VideoPrompt],
                      out: Path) -> ResultsTable:
    """Score original, every booster and the caption reference on the held-out requests for each seed; write the
    table, grid and examples. `boosters` maps a condition name to "base" or a saved booster folder."""
    conditions = {"original": "original", **boosters, "caption": "caption"}
    e = cfg.eval
    counts = ", ".join(f"{sum(r.scene.category == c for r in requests)} {c}" for c in CATEGORIES)
    caption = (f"Held-out requests: {len(requests)} ({counts}); one video per request and seed (the same video seed "
               f"for every condition), seeds {e.seeds}; greedy rewrites; every video judged by the rule critic against "
               "the original request; each dimension: share right; all dims: right on every one (mean over "
               f"categories); reward: {' + '.join(f'{w:g} {d}' for d, w in cfg.reward.weights.items())} (scores in "
               f"[0, 1]); caption: the video model's own caption of the scene (a reference); {e.level:.0%} bootstrap "
               "intervals over requests.")
    score = BoosterEval(cfg, video_model, requests, out)
    table = evaluate_models(conditions, score, METRICS, seeds=e.seeds, out_dir=out, caption=caption, headline="passed",
                            resamples=e.resamples, level=e.level,
                            info={n: {"booster": str(s)} for n, s in conditions.items()},
                            settings={"video_model": str(video_model), "steps": cfg.sample.steps,
                                      "guidance": cfg.sample.guidance})
    write_examples(cfg, list(conditions), requests, out)
    return table
