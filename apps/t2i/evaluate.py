"""GenEval-style evaluation: per-category accuracy of every model on held-out prompts, and image grids.

An image is correct when the checker answers yes to every object question its prompt implies
(GenEval's per-image rule); a category's accuracy is the share of correct images, and overall is
the mean over categories (GenEval's overall score). Each model draws `images_per_prompt` images
per prompt for each seed in `eval.seeds` (the same image seeds for every model); the 95% intervals
come from a bootstrap over prompts (all of a prompt's images resampled together). Grids show the
same prompts and seeds for every model, and SFT beside each aligned model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from apps.t2i.checker import check
from apps.t2i.config import T2IConfig
from apps.t2i.model import load_saved
from apps.t2i.preference import png_bytes
from apps.t2i.scenes import CATEGORIES, Scene, prompt_of
from shared.atomic import write_bytes, write_json, write_text

BOOTSTRAP = 2000


def image_seed(seed: int, prompt_index: int, k: int) -> int:
    return 7_919 * seed + 1_000 * prompt_index + k


def score_model(folder: Path, scenes: Sequence[Scene], cfg: T2IConfig, seed: int, out: Path) -> list[dict]:
    """Per image: prompt index, category, passed; images written to out/images (skipped when out has results)."""
    done = out / "results.jsonl"
    if done.is_file():
        return [json.loads(line) for line in done.read_text().splitlines()]
    model = load_saved(folder, cfg.model.resolution)
    e, s = cfg.eval, cfg.sampling
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


def accuracies(rows: Sequence[dict]) -> dict[str, float]:
    """Per-category accuracy and overall (mean over the categories present)."""
    out = {}
    for c in CATEGORIES:
        hits = [r["passed"] for r in rows if r["category"] == c]
        if hits:
            out[c] = float(np.mean(hits))
    out["overall"] = float(np.mean([out[c] for c in CATEGORIES if c in out])) if out else float("nan")
    return out


def bootstrap(rows: Sequence[dict], seed: int = 0) -> dict[str, tuple[float, float]]:
    """95% intervals of every accuracy, resampling prompts within each category."""
    rng = np.random.default_rng(seed)
    by_prompt: dict[str, dict[int, list[bool]]] = {}
    for r in rows:
        by_prompt.setdefault(r["category"], {}).setdefault(r["prompt_index"], []).append(r["passed"])
    draws: dict[str, list[float]] = {k: [] for k in [*by_prompt, "overall"]}
    for _ in range(BOOTSTRAP):
        means = []
        for c, prompts in by_prompt.items():
            groups = list(prompts.values())
            pick = rng.integers(0, len(groups), len(groups))
            value = float(np.mean([x for j in pick for x in groups[j]]))
            draws[c].append(value)
            means.append(value)
        draws["overall"].append(float(np.mean(means)))
    return {k: (float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))) for k, v in draws.items() if v}


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
    e, s = cfg.eval, cfg.sampling
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


def evaluate_models(cfg: T2IConfig, models: dict[str, Path], scenes: Sequence[Scene], out: Path) -> dict:
    """Score every model on the held-out scenes for each seed; write table.md, results.json and the grids."""
    results = {}
    for name, folder in models.items():
        pooled, per_seed = [], {}
        for seed in cfg.eval.seeds:
            rows = score_model(Path(folder), scenes, cfg, seed, out / name / f"seed_{seed}")
            per_seed[seed] = accuracies(rows)["overall"]
            pooled += [{**r, "prompt_index": r["prompt_index"]} for r in rows]
        acc, ci = accuracies(pooled), bootstrap(pooled, cfg.seed)
        results[name] = {"accuracy": acc, "ci95": ci, "overall_per_seed": per_seed, "images": len(pooled),
                         "model": str(folder)}
        print(f"{name}: overall {acc['overall']:.3f} [{ci['overall'][0]:.3f}, {ci['overall'][1]:.3f}]", flush=True)
    columns = [c for c in CATEGORIES if any(c in r["accuracy"] for r in results.values())] + ["overall"]
    e = cfg.eval
    lines = [f"Held-out prompts: {len(scenes)} ({', '.join(f'{sum(s.category == c for s in scenes)} {c}' for c in CATEGORIES)}); "
             f"{e.images_per_prompt} images per prompt and seed, seeds {e.seeds}; accuracy = share of images whose every "
             "object question passes, with 95% bootstrap intervals over prompts.", "",
             "| model | " + " | ".join(columns) + " | overall per seed |", "|---" * (len(columns) + 2) + "|"]
    for name, r in results.items():
        cells = [f"{r['accuracy'][c]:.3f} [{r['ci95'][c][0]:.2f}, {r['ci95'][c][1]:.2f}]" if c in r["accuracy"] else "-"
                 for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " | "
                     + ", ".join(f"{v:.3f}" for v in r["overall_per_seed"].values()) + " |")
    table = "\n".join(lines) + "\n"
    write_text(out / "table.md", table)
    write_json(out / "results.json", results)
    write_grids(cfg, models, scenes, out)
    print(table, flush=True)
    return results
