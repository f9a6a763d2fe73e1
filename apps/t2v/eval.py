"""Evaluate a text-to-video run's models (SFT and each IPO round, DPO and KTO labelling) on held-out prompts.

    python -m apps.t2v.eval --run runs/t2v/ipo
    python -m apps.t2v.eval --run runs/t2v/ipo --seeds 0 1 2 3 --out runs/t2v/ipo/eval_4seeds
    python -m apps.t2v.eval --run runs/t2v/ipo --model other=path/to/pipeline --prompts my_prompts.jsonl
    python -m apps.t2v.eval --run runs/t2v/prompt_a_video --seeds 0 1 2   # a Prompt-A-Video run: its boosters

A Prompt-A-Video run (method prompt_a_video) is evaluated by apps/t2v/pav_eval.py instead: the
request itself, each booster of the run (and --model NAME=FOLDER boosters) and the caption
reference, with the run's video model, on its held-out requests (or --prompts).

Prompts: the moving and two-moving categories use held-out (colour, motion) compositions that no
training prompt has; still, appearing and disappearing prompts hold seen compositions (their objects
do not move, so the motion split does not apply) and are drawn from a separate random stream.
Each model draws eval.videos_per_prompt videos per prompt and seed (the same video seeds for every
model). Per video, the critic (the rule critic, whatever labelled training) says whether each
dimension is right: object, colour, motion, consistency, smoothness and all of them (passed);
VBench's temporal flickering (exact) and a motion-smoothness proxy (linear interpolation in place
of AMT-S: named as a proxy) are computed on the frames. Intervals: the core's bootstrap over
prompts (a prompt's videos resampled together). Writes the core's results table into <out>
(table.md, results.json, results.csv, a PNG per metric), each model's videos (.npy) and rows
(<out>/<model>/seed_<s>/), and grid_<model>.gif / .mp4 and before_after.gif / .mp4 (SFT beside
each aligned model on the same prompts and seeds). Results of a (model, seed) already in <out>
are reused.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw

from apps.t2v.critic import DIMENSIONS, RuleCritic, correct
from apps.t2v.data import CATEGORIES, VideoPrompt, build_split, load_prompts
from apps.t2v.model import load_saved
from apps.t2v.vbench import motion_smoothness_proxy, temporal_flickering
from shared.atomic import write_text
from shared.config import ConfigError, load_yaml
from shared.evaluation import Metric, ResultsTable, evaluate_models
from shared.kit import EvalArgs, eval_parser, fail, set_threads
from shared.kit.diffusion import run_pipelines
from shared.scenes.video import sample_video_scene
from shared.training import quiet_lightning
from shared.video_io import read_video, video_grid, write_gif, write_mp4, write_npy

if TYPE_CHECKING:  # the config imports this module's eval section
    from apps.t2v.config import T2VConfig

PROG = "python -m apps.t2v.eval"
MOVING = ("moving", "two_moving")
METRICS = [Metric(d, field=d, cluster="prompt_index") for d in DIMENSIONS] + [
    Metric("passed", label="all dims", field="passed", cluster="prompt_index", stratify="category"),
    Metric("heldout_passed", label="all dims (held-out motion)", field="passed", cluster="prompt_index",
           where=("composition", "heldout")),
    Metric("flickering", label="temporal flickering (VBench)", cluster="prompt_index"),
    Metric("smoothness_proxy", label="motion smoothness (proxy)", cluster="prompt_index"),
]


@dataclass
class VideoEvalArgs(EvalArgs):
    """Evaluation on held-out prompts.

    Attributes:
        prompts_per_category: prompts per category (moving categories: held-out compositions).
        videos_per_prompt: videos per prompt and seed.
        grid_prompts: prompts per category shown in the grids.
    """

    prompts_per_category: int = 8
    videos_per_prompt: int = 2
    grid_prompts: int = 1


def heldout_prompts(args: VideoEvalArgs, seed: int) -> list[VideoPrompt]:
    """Held-out (colour, motion) prompts for the moving categories; seen-composition prompts for the others."""
    split = build_split(0, args.prompts_per_category, seed, MOVING)["heldout"]
    out = [VideoPrompt(p.prompt, p.scene, {"composition": "heldout"}) for c in MOVING for p in map(VideoPrompt.of, split[c])]
    for category in CATEGORIES:
        if category in MOVING:
            continue
        rng = random.Random(f"t2v-eval:{seed}:{category}")
        for _ in range(args.prompts_per_category):
            p = VideoPrompt.of(sample_video_scene(rng, category))
            out.append(VideoPrompt(p.prompt, p.scene, {"composition": "seen"}))
    return out


def video_seed(seed: int, prompt_index: int, k: int) -> int:
    return 104_729 * seed + 1_000 * prompt_index + k


def score_model(folder: Path, prompts: Sequence[VideoPrompt], cfg: T2VConfig, seed: int, out: Path) -> list[dict]:
    """Per video: prompt index, category, composition, each dimension's verdict, passed, flickering, smoothness proxy."""
    done = out / "results.jsonl"
    if done.is_file():
        return [json.loads(line) for line in done.read_text().splitlines()]
    model = load_saved(folder, cfg.model)
    k, s = cfg.eval.videos_per_prompt, cfg.sample
    texts = [p.prompt for p in prompts for _ in range(k)]
    seeds = [video_seed(seed, i, j) for i in range(len(prompts)) for j in range(k)]
    videos = model.generate(texts, seeds, steps=s.steps, guidance=s.guidance, batch_size=s.batch_size)
    verdicts = RuleCritic().score(list(videos), texts, [prompts[n // k].scene for n in range(len(texts))])
    rows = []
    for n, (video, verdict) in enumerate(zip(videos, verdicts)):
        i = n // k
        name = f"videos/{i:03d}_{n % k}.npy"
        write_npy(out / name, video)
        rows.append({"prompt_index": i, "prompt": texts[n], "category": prompts[i].scene.category,
                     "composition": prompts[i].metadata.get("composition", "given"), "video": name,
                     **{d: correct(verdict, d) for d in DIMENSIONS}, "passed": bool(verdict["passed"]),
                     "overall": verdict["overall"], "flickering": temporal_flickering(video),
                     "smoothness_proxy": motion_smoothness_proxy(video)})
    write_text(done, "".join(json.dumps(r) + "\n" for r in rows))
    return rows


def labelled_grid(rows: list[list[np.ndarray]], row_labels: Sequence[str], column_labels: Sequence[str],
                  scale: int = 3, label_width: int = 300, header: int = 14) -> np.ndarray:
    """A grid video: one row per prompt (its text on the left), one column per model (named on top)."""
    grid = video_grid([[c.repeat(scale, axis=1).repeat(scale, axis=2) for c in r] for r in rows])
    side = rows[0][0].shape[1] * scale
    frames = []
    for frame in grid:
        canvas = Image.new("RGB", (label_width + frame.shape[1], header + frame.shape[0]), "white")
        canvas.paste(Image.fromarray(frame), (label_width, header))
        draw = ImageDraw.Draw(canvas)
        for x, label in enumerate(column_labels):
            draw.text((label_width + x * (side + 2) + 2, 1), label, fill="black")
        for y, label in enumerate(row_labels):
            draw.text((4, header + y * (side + 2) + side // 2 - 6), label, fill="black")
        frames.append(np.asarray(canvas))
    return np.stack(frames)


def write_grids(cfg: T2VConfig, models: dict[str, Path], prompts: Sequence[VideoPrompt], out: Path) -> list[Path]:
    """grid.gif / grid.mp4: each category's first eval.grid_prompts prompts, one column per model, from the eval's
    seed-0 videos (the same seeds for every model)."""
    seed = cfg.eval.seeds[0]
    chosen = [i for c in CATEGORIES for i in [j for j, p in enumerate(prompts) if p.scene.category == c][:cfg.eval.grid_prompts]]
    if not chosen:
        return []
    rows = [[read_video(out / name / f"seed_{seed}" / f"videos/{i:03d}_0.npy") for name in models] for i in chosen]
    grid = labelled_grid(rows, [prompts[i].prompt for i in chosen], list(models))
    return [write_gif(out / "grid.gif", grid, fps=4), write_mp4(out / "grid.mp4", grid, fps=4)]


def evaluate(cfg: T2VConfig, models: dict[str, Path], prompts: Sequence[VideoPrompt], out: Path) -> ResultsTable:
    """Score every model on the held-out prompts for each seed through the core's driver; write the table and grids."""
    e = cfg.eval
    counts = ", ".join(f"{sum(p.scene.category == c for p in prompts)} {c}" for c in CATEGORIES)
    caption = (f"Held-out prompts: {len(prompts)} ({counts}); {e.videos_per_prompt} videos per prompt and seed, seeds "
               f"{e.seeds}; each dimension: share of videos the rule critic finds right on it; all dims: right on every "
               f"one (mean over categories); flickering exact (VBench), smoothness a proxy; {e.level:.0%} bootstrap "
               "intervals over prompts.")
    table = evaluate_models(models, lambda name, folder, seed: score_model(Path(folder), prompts, cfg, seed,
                                                                           out / name / f"seed_{seed}"),
                            METRICS, seeds=e.seeds, out_dir=out, caption=caption, headline="passed",
                            resamples=e.resamples, level=e.level, info={n: {"model": str(f)} for n, f in models.items()},
                            settings={"steps": cfg.sample.steps, "guidance": cfg.sample.guidance})
    write_grids(cfg, models, prompts, out)
    return table


def main(argv: list[str] | None = None) -> dict:
    parser = eval_parser(PROG, __doc__)
    parser.add_argument("--prompts", type=Path, help="a JSONL prompt file instead of the run's held-out prompts")
    args = parser.parse_args(argv)
    try:
        from apps.t2v.config import T2VConfig

        if not (args.run / "config.yaml").is_file():
            raise ValueError(f"{args.run}: not a t2v training run folder (no config.yaml)")
        cfg = load_yaml(T2VConfig, args.run / "config.yaml")
        if cfg.method == "prompt_a_video":
            return _evaluate_boosters(args, cfg)
        models = run_pipelines(args.run, args.model, "t2v")
        prompts = load_prompts(args.prompts or args.run / "data" / "heldout_prompts.jsonl")
    except (ValueError, ConfigError, OSError) as exc:
        fail(PROG, exc)
    _apply_eval_options(cfg, args)
    return evaluate(cfg, models, prompts, args.out or args.run / "eval").as_json()


def _apply_eval_options(cfg: T2VConfig, args) -> None:
    if args.seeds:
        cfg.eval.seeds = args.seeds
    cfg.eval.resamples = args.resamples or cfg.eval.resamples
    cfg.eval.level = args.level or cfg.eval.level
    quiet_lightning()
    set_threads()


def _evaluate_boosters(args, cfg: T2VConfig) -> dict:
    """A Prompt-A-Video run's evaluation (apps/t2v/pav_eval.py) with the run's boosters and --model NAME=FOLDER ones."""
    from apps.t2v.pav_eval import evaluate_boosters
    from shared.kit.cli import named

    final = args.run / "final_model.json"
    if not final.is_file():
        raise ValueError(f"{args.run}: not a finished Prompt-A-Video run (no final_model.json)")
    record = json.loads(final.read_text())
    boosters = dict(record["models"])
    for entry in args.model:
        name, folder = named(entry, "BOOSTER_FOLDER")
        if not (Path(folder) / "config.json").is_file():
            raise ValueError(f"--model {entry!r}: {folder} is not a saved booster (no config.json)")
        boosters[name] = folder
    requests = load_prompts(args.prompts or args.run / "data" / "heldout_requests.jsonl")
    _apply_eval_options(cfg, args)
    return evaluate_boosters(cfg, Path(record["video_model"]), boosters, requests, args.out or args.run / "eval").as_json()


if __name__ == "__main__":
    main()
