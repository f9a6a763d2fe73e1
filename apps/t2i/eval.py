"""Evaluate a text-to-image run's models (SFT, OSPO and the baselines) GenEval-style on held-out prompts.

    python -m apps.t2i.eval --run runs/t2i/ospo
    python -m apps.t2i.eval --run runs/t2i/ospo --seeds 0 1 2 3 --out runs/t2i/ospo/eval_4seeds
    python -m apps.t2i.eval --run runs/t2i/ospo --model other=path/to/pipeline --prompts my_prompts.jsonl

An image is correct when the checker answers yes to every object question its prompt implies
(GenEval's per-image rule); a category's accuracy is the share of correct images, and overall is
the mean over categories (GenEval's overall score). Each model draws eval.images_per_prompt images
per prompt for each seed (the same image seeds for every model); the 95% intervals come from the
core's bootstrap over prompts (all of a prompt's images resampled together; overall resamples
each category on its own). Writes the core's results table into <out> (table.md, results.json,
results.csv, a PNG per metric), each model's images and verdicts (<out>/<model>/seed_<s>/), and
image grids: grid_<model>.png (the same prompts and seeds for every model) and
before_after_<model>.png (SFT beside each aligned model). Results of a (model, seed) already in
<out> are reused (training writes <run>/eval with the run's settings).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw

from shared.scenes.checker import check
from apps.t2i.data import load_prompts
from apps.t2i.model import load_saved
from apps.t2i.preference import png_bytes
from shared.scenes.image import CATEGORIES, Scene, prompt_of
from shared.atomic import write_bytes, write_text
from shared.config import ConfigError, load_yaml
from shared.evaluation import Metric, ResultsTable, evaluate_models
from shared.kit import EvalArgs, eval_parser, fail, set_threads
from shared.kit.diffusion import run_pipelines
from shared.training import quiet_lightning

if TYPE_CHECKING:  # the config imports this module's eval section
    from apps.t2i.config import T2IConfig

PROG = "python -m apps.t2i.eval"
METRICS = [Metric(c, field="passed", where=("category", c), cluster="prompt_index") for c in CATEGORIES] + [
    Metric("overall", field="passed", cluster="prompt_index", stratify="category")]


@dataclass
class ImageEvalArgs(EvalArgs):
    """GenEval-style evaluation on held-out prompts.

    Attributes:
        prompts_per_category: held-out prompts per category.
        images_per_prompt: images per prompt and seed.
        grid_prompts: prompts per category shown in the image grids.
        grid_seeds: images per prompt in the grids.
    """

    prompts_per_category: int = 8
    images_per_prompt: int = 4
    grid_prompts: int = 1
    grid_seeds: int = 4


def image_seed(seed: int, prompt_index: int, k: int) -> int:
    return 7_919 * seed + 1_000 * prompt_index + k


def score_model(folder: Path, scenes: Sequence[Scene], cfg: T2IConfig, seed: int, out: Path) -> list[dict]:
    """Per image: prompt index, category, passed; images written to out/images (skipped when out has results)."""
    done = out / "results.jsonl"
    if done.is_file():
        return [json.loads(line) for line in done.read_text().splitlines()]
    model = load_saved(folder, cfg.model.resolution)
    e, s = cfg.eval, cfg.sample
    prompts = [prompt_of(sc) for sc in scenes for _ in range(e.images_per_prompt)]
    seeds = [image_seed(seed, i, k) for i in range(len(scenes)) for k in range(e.images_per_prompt)]
    images = model.generate(prompts, seeds, steps=s.steps, guidance=s.guidance, batch_size=s.batch_size)
    rows = []
    for n, image in enumerate(images):
        i = n // e.images_per_prompt
        verdict = check(image, scenes[i])
        name = f"images/{i:03d}_{n % e.images_per_prompt}.png"
        write_bytes(out / name, png_bytes(image))
        rows.append({"prompt_index": i, "prompt": prompts[n], "category": scenes[i].category, "image": name,
                     "passed": bool(verdict["passed"]), "reason": verdict["reason"]})
    write_text(done, "".join(json.dumps(r) + "\n" for r in rows))
    return rows


def grid(rows: list[list[np.ndarray]], labels: Sequence[str], scale: int = 3, label_width: int = 330,
         split_after: int | None = None) -> Image.Image:
    """A labelled grid: one row per prompt, images upscaled by `scale` (nearest) with a 2-pixel gap
    (12 pixels after column `split_after`, which separates a before / after grid's halves)."""
    side = rows[0][0].shape[0] * scale
    cols = max(len(r) for r in rows)
    extra = 10 if split_after is not None else 0
    canvas = Image.new("RGB", (label_width + cols * (side + 2) + extra, len(rows) * (side + 2)), "white")
    draw = ImageDraw.Draw(canvas)
    for y, (row, label) in enumerate(zip(rows, labels)):
        draw.text((4, y * (side + 2) + side // 2 - 6), label, fill="black")
        for x, image in enumerate(row):
            tile = Image.fromarray(image).resize((side, side), Image.NEAREST)
            shift = extra if split_after is not None and x >= split_after else 0
            canvas.paste(tile, (label_width + x * (side + 2) + shift, y * (side + 2)))
    return canvas


def write_grids(cfg: T2IConfig, models: dict[str, Path], scenes: Sequence[Scene], out: Path) -> list[Path]:
    """grid_<model>.png for every model and before_after_<model>.png (SFT | model) for every aligned one."""
    e, s = cfg.eval, cfg.sample
    chosen = [sc for c in CATEGORIES for sc in [x for x in scenes if x.category == c][:e.grid_prompts]]
    if not chosen:
        return []
    prompts = [prompt_of(sc) for sc in chosen for _ in range(e.grid_seeds)]
    seeds = [image_seed(0, i, k) for i in range(len(chosen)) for k in range(e.grid_seeds)]
    images = {}
    for name, folder in models.items():
        drawn = load_saved(folder, cfg.model.resolution).generate(prompts, seeds, steps=s.steps, guidance=s.guidance,
                                                                  batch_size=s.batch_size)
        images[name] = [list(drawn[i * e.grid_seeds:(i + 1) * e.grid_seeds]) for i in range(len(chosen))]
    labels = [prompt_of(sc) for sc in chosen]
    paths = []
    for name, rows in images.items():
        paths.append(write_bytes(out / f"grid_{name}.png", png_bytes(grid(rows, labels))))
        if name != "sft" and "sft" in images:
            both = [before + after for before, after in zip(images["sft"], rows)]
            pair_grid = grid(both, labels, split_after=e.grid_seeds)
            paths.append(write_bytes(out / f"before_after_{name}.png", png_bytes(pair_grid)))
    return paths


def evaluate(cfg: T2IConfig, models: dict[str, Path], scenes: Sequence[Scene], out: Path) -> ResultsTable:
    """Score every model on the held-out scenes for each seed through the core's driver; write the table and the grids."""
    e = cfg.eval
    caption = (f"Held-out prompts: {len(scenes)} ({', '.join(f'{sum(s.category == c for s in scenes)} {c}' for c in CATEGORIES)}); "
               f"{e.images_per_prompt} images per prompt and seed, seeds {e.seeds}; accuracy = share of images whose every "
               f"object question passes, with {e.level:.0%} bootstrap intervals over prompts.")
    table = evaluate_models(models, lambda name, folder, seed: score_model(Path(folder), scenes, cfg, seed,
                                                                           out / name / f"seed_{seed}"),
                            METRICS, seeds=e.seeds, out_dir=out, caption=caption, headline="overall",
                            resamples=e.resamples, level=e.level, info={n: {"model": str(f)} for n, f in models.items()},
                            settings={"steps": cfg.sample.steps, "guidance": cfg.sample.guidance})
    write_grids(cfg, models, scenes, out)
    return table


def main(argv: list[str] | None = None) -> dict:
    parser = eval_parser(PROG, __doc__)
    parser.add_argument("--prompts", type=Path, help="a JSONL prompt file instead of the run's held-out prompts")
    args = parser.parse_args(argv)
    try:
        models = run_pipelines(args.run, args.model, "t2i")
        from apps.t2i.config import T2IConfig

        cfg = load_yaml(T2IConfig, args.run / "config.yaml")
        scenes = [r.scene for r in load_prompts(args.prompts or args.run / "data" / "heldout_prompts.jsonl")]
    except (ValueError, ConfigError, OSError) as exc:
        fail(PROG, exc)
    if args.seeds:
        cfg.eval.seeds = args.seeds
    cfg.eval.resamples = args.resamples or cfg.eval.resamples
    cfg.eval.level = args.level or cfg.eval.level
    quiet_lightning()
    set_threads()
    return evaluate(cfg, models, scenes, args.out or args.run / "eval").as_json()


if __name__ == "__main__":
    main()
