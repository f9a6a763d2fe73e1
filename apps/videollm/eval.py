"""Evaluate a TEMPLE run's models on held-out videos: temporal questions, caption event order, objects and colours.

    python -m apps.videollm.eval --run runs/videollm/temple            # every model of the run, per train seed
    python -m apps.videollm.eval --run RUN --model mine=path/to/model   # also a saved model folder

For every model and seed (seed s: the models trained with seed s, and the s-th draw of questions)
each held-out video gets its caption (greedy) and its temporal questions. Columns: `qa` all
questions; `order_qa` first / last / after / before; `direction`; `count` (counting over time);
`caption order` the caption's events exactly the video's, in order; `order score` longest common
subsequence / longer list; `order score w/o shape` the same over (colour, event); `objects`,
`colours` shares of the video's objects named (shape; colour and shape). Intervals resample
videos (a video's questions together). The run's eval/ gets the table (shared.evaluation),
answers.jsonl per model and seed (reused on a rerun, scores recomputed), examples.md and
grid.gif / grid.mp4.
"""

from __future__ import annotations

import json
import random
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from apps.videollm.config import VideoLLMConfig
from apps.videollm.data import VideoItem
from apps.videollm.generation import generate_answers
from apps.videollm.model import load_video_llm, saved
from apps.videollm.questions import CAPTION_PROMPT, answer_correct, caption_scores, questions
from shared.atomic import write_text
from shared.config import ConfigError, load_yaml
from shared.evaluation import Metric, ResultsTable, evaluate_models
from shared.kit import eval_parser, fail, named
from shared.models import LoraSpec
from shared.records import read_jsonl, write_jsonl
from shared.video_io import write_gif, write_mp4

PROG = "python -m apps.videollm.eval"
ORDER_TYPES = ("first", "last", "after", "before")
METRICS = [
    Metric("qa", field="correct", cluster="video"),
    Metric("order_qa", label="order QA", field="correct", where=("group", "order"), cluster="video"),
    Metric("direction", field="correct", where=("type", "direction"), cluster="video"),
    Metric("count", field="correct", where=("type", "count"), cluster="video"),
    Metric("order", label="caption order"),
    Metric("order_score", label="order score"),
    Metric("order_score_no_shape", label="order score w/o shape"),
    Metric("objects"),
    Metric("colours"),
]


def _questions(item: VideoItem, seed: int) -> list[dict]:
    if item.story is None:
        return item.questions
    return questions(item.story, random.Random(f"videollm:eval:{seed}:{item.id}"), 1)


def score_model(folder: str, cfg: VideoLLMConfig, items: Sequence[VideoItem], seed: int, out: Path) -> list[dict]:
    """Return one row per question and per caption of a model; answers.jsonl in `out` is reused when present."""
    path = out / "answers.jsonl"
    if path.is_file():  # the answers are kept; the scores are recomputed (a metric added later applies to them)
        stories = {item.id: item.story for item in items}
        rows = read_jsonl(path)
        for row in rows:
            if row["kind"] == "caption" and stories.get(row["video"]) is not None:
                row.update(caption_scores(row["output"], stories[row["video"]]))
        return rows
    model, processor = load_video_llm(replace(saved(cfg.model, folder, seed), lora=LoraSpec(r=0)))
    prompts, meta = [], []
    for item in items:
        frames = item.frames()
        if item.caption:
            prompts.append((CAPTION_PROMPT, frames))
            meta.append((item, {"kind": "caption"}))
        for q in _questions(item, seed):
            prompts.append((q["question"], frames))
            meta.append((item, {"kind": "qa", **q}))
    texts = generate_answers(model, processor, prompts, cfg.eval.max_new_tokens, cfg.eval.batch_size)
    rows = []
    for (item, m), text in zip(meta, texts):
        row = {"video": item.id, "output": text, **m}
        if m["kind"] == "caption":
            row["truth"] = item.caption
            if item.story is not None:
                row.update(caption_scores(text, item.story))
        else:
            row["correct"] = answer_correct(text, m["answer"])
            row["group"] = "order" if m["type"] in ORDER_TYPES else m["type"]
        rows.append(row)
    write_jsonl(path, rows)
    return rows


def _panel(lines: list[str], width: int, min_height: int) -> np.ndarray:
    """A white image with the lines wrapped to `width` (PIL's default font, 11 px a line), at least min_height tall."""
    wrapped = [part for line in lines for part in (textwrap.wrap(line, width // 6) or [""])]
    image = Image.new("RGB", (width, max(min_height, 11 * len(wrapped) + 4)), "white")
    draw = ImageDraw.Draw(image)
    for k, part in enumerate(wrapped):
        draw.text((4, 2 + 11 * k), part, fill="black")
    return np.asarray(image)


def write_examples(out: Path, items: Sequence[VideoItem], rows: dict[str, list[dict]], count: int) -> None:
    """Write examples.md (each model's caption of the first `count` videos) and grid.gif / grid.mp4 with them."""
    picked = list(items[:count])
    captions = {name: {r["video"]: r["output"] for r in rs if r["kind"] == "caption"} for name, rs in rows.items()}
    md = ["# Held-out examples (seed shown: the first)", ""]
    tiles = []
    for item in picked:
        lines = [f"truth: {item.caption}"] + [f"{n}: {captions[n].get(item.id, '')}" for n in rows]
        md += [f"## {item.id}", "", *[f"- {line}" for line in lines], ""]
        frames = np.repeat(np.repeat(item.frames(), 4, axis=1), 4, axis=2)
        panel = _panel(lines, 640, frames.shape[1])
        video = np.full((len(frames), panel.shape[0], frames.shape[2], 3), 255, dtype=np.uint8)
        video[:, :frames.shape[1]] = frames
        tiles.append(np.concatenate([video, np.broadcast_to(panel, (len(frames), *panel.shape))], axis=2))
    write_text(out / "examples.md", "\n".join(md))
    if tiles:
        length = max(len(t) for t in tiles)
        tiles = [np.concatenate([t, np.repeat(t[-1:], length - len(t), axis=0)]) for t in tiles]
        grid = np.concatenate(tiles, axis=1)  # one tile under the other
        write_gif(out / "grid.gif", grid, fps=4)
        write_mp4(out / "grid.mp4", grid, fps=4)


def evaluate_run(run: Path, models: dict[str, dict[str, str]], items: Sequence[VideoItem], cfg: VideoLLMConfig,
                 out: Path | None = None, seeds: Sequence[int] | None = None) -> ResultsTable:
    """Evaluate every model (name -> {seed: folder}) on the held-out items; write the table to out (run/eval)."""
    out = out or run / "eval"
    seeds = list(seeds or cfg.train_seeds)

    def score(name: str, by_seed: dict[str, str], seed: int) -> list[dict]:
        folder = by_seed.get(str(seed)) or next(iter(by_seed.values()))
        return score_model(folder, cfg, items, seed, out / name / f"seed_{seed}")

    table = evaluate_models(models, score, METRICS, seeds=seeds, out_dir=out, headline="qa",
                            caption=f"Held-out videos ({len(items)}): temporal QA accuracy and caption scores",
                            resamples=cfg.eval.resamples, level=cfg.eval.level,
                            info={n: {"folders": m} for n, m in models.items()})
    first = {name: read_jsonl(out / name / f"seed_{seeds[0]}" / "answers.jsonl") for name in models}
    write_examples(out, items, first, cfg.eval.examples)
    return table


def main(argv: list[str] | None = None) -> ResultsTable:
    parser = eval_parser(PROG, __doc__)
    args = parser.parse_args(argv)
    try:
        cfg = load_yaml(VideoLLMConfig, args.run / "config.yaml")
        models = json.loads((args.run / "models.json").read_text())
        for entry in args.model:
            name, source = named(entry)
            models[name] = {"any": source}
        from apps.videollm.train import heldout_items

        items = heldout_items(cfg)
    except (ConfigError, ValueError, OSError) as exc:
        fail(PROG, exc)
    if args.resamples:
        cfg.eval.resamples = args.resamples
    if args.level:
        cfg.eval.level = args.level
    return evaluate_run(args.run, models, items, cfg, args.out, args.seeds)


if __name__ == "__main__":
    main(sys.argv[1:])
