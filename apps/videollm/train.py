"""Train a video LLM with TEMPLE (temporal preference alignment) on the embedded default or users' videos.

    python -m apps.videollm.train                                          # the embedded default (CPU, about 30 minutes)
    python -m apps.videollm.train --config configs/videollm/tiny.yaml      # a small run
    python -m apps.videollm.train --config configs/videollm/paper_qwen25vl.yaml model.path=... data.train_file=...

Stages, each in its own folder of the run and skipped when done (a rerun resumes):
  pretrain/                 the base video LLM (embedded: captioning clips, short stories, description lists)
  pairs/                    TEMPLE's pairs: the base model captions each video's clip list in order and perturbed
                            (plans.jsonl, written.jsonl with every caption and filter verdict, pairs.jsonl kept)
  seed_<s>/sft/             baseline: instruction SFT (captions and temporal questions) from the base
  seed_<s>/temple_m<m>/     the DPO curriculum, one stage per magnitude (easy -> hard), each from the last
  seed_<s>/temple/          TEMPLE: instruction SFT after the curriculum ("pre-SFT alignment")
  seed_<s>/sft_dpo_m<m>/    ablation: the curriculum after SFT (SFT then DPO)
  seed_<s>/flat_dpo/, flat/ ablation: DPO on all magnitudes mixed (no curriculum), then SFT
  eval/                     the held-out table (apps.videollm.eval)
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

from apps.videollm.config import VideoLLMConfig
from apps.videollm.data import VideoItem, embedded_stories, read_video_jsonl, writer_prompt
from apps.videollm.questions import CAPTION_PROMPT, CLIP_PROMPT
from apps.videollm.stages import Example, dpo_stage, load_at, sft_stage
from apps.videollm.stories import SEPARATOR, sample_story
from apps.videollm.temple import magnitude_difficulty, plan_perturbations, write_pairs
from shared.atomic import write_json
from shared.kit import fail, finish_run, start_run
from shared.models import is_complete
from shared.pairs import curriculum_order
from shared.records import Pair, read_jsonl, write_jsonl

PROG = "python -m apps.videollm.train"


@dataclass
class VideoData:
    """What the recipe trains and evaluates on (pre-training examples are made only when that stage trains)."""

    instruct: list[VideoItem]
    pair_videos: list[VideoItem]
    heldout: list[VideoItem]


def pretrain_examples(cfg: VideoLLMConfig) -> list[Example]:
    """The embedded base model's data: single clips, 2-3 clip stories and text-only description lists."""
    d, rng = cfg.data, random.Random(f"videollm:pretrain:{cfg.seed}")
    out: list[Example] = []
    for _ in range(d.pretrain_clips):
        story = sample_story(rng, 1, "train")
        out.append((CLIP_PROMPT, story.render(d.frames_per_clip, d.resolution), story.caption))
    for _ in range(d.pretrain_stories):
        story = sample_story(rng, rng.randint(2, 3), "train")
        out.append((CAPTION_PROMPT, story.render(d.frames_per_clip, d.resolution), story.caption))
    for _ in range(d.pretrain_lists):
        clips = sample_story(rng, rng.randint(2, d.clips_max)).descriptions
        out.append((writer_prompt(clips), None, SEPARATOR.join(clips)))
    return out


def load_data(cfg: VideoLLMConfig) -> VideoData:
    """Return the recipe's data: users' files where given, else embedded stories (ValueError names file and line)."""
    d = cfg.data
    if not 1 <= d.clips_min <= d.clips_max:
        raise ValueError(f"data.clips_min / clips_max: expected 1 <= min <= max, got {d.clips_min}, {d.clips_max}")
    if cfg.temple.epochs < 1 or not cfg.temple.magnitudes or any(m < 1 for m in cfg.temple.magnitudes):
        raise ValueError("temple: expected epochs >= 1 and magnitudes >= 1")
    bad = set(cfg.temple.operations) - {"drop", "shuffle", "reverse"}
    if bad or not cfg.temple.operations:
        raise ValueError(f"temple.operations: expected some of drop, shuffle, reverse, got {cfg.temple.operations}")
    if cfg.temple.writer not in ("model", "join"):
        raise ValueError(f"temple.writer: expected model or join, got {cfg.temple.writer!r}")
    if cfg.sft.init_from:
        raise ValueError("sft.init_from: not used here (the instruction SFT runs after the curriculum); "
                         "pretrain.init_from names a base model")
    if not cfg.train_seeds:
        raise ValueError("train_seeds: expected at least one seed")
    instruct = (read_video_jsonl(d.train_file) if d.train_file
                else embedded_stories(d, "train", d.instruct_stories, cfg.seed, tag="instruct"))
    pairs = (read_video_jsonl(d.pairs_file) if d.pairs_file
             else embedded_stories(d, "train", d.pair_stories, cfg.seed, tag="pairs"))
    return VideoData(instruct, pairs, heldout_items(cfg))


def heldout_items(cfg: VideoLLMConfig) -> list[VideoItem]:
    """The evaluation's videos: data.heldout_file, else embedded held-out stories."""
    d = cfg.data
    return read_video_jsonl(d.heldout_file) if d.heldout_file else embedded_stories(d, "heldout", d.heldout_stories, cfg.seed)


def instruct_examples(items: list[VideoItem]) -> list[Example]:
    """The instruction SFT: each video's caption and its questions."""
    out: list[Example] = []
    for item in items:
        frames = item.frames()
        if item.caption:
            out.append((CAPTION_PROMPT, frames, item.caption))
        out.extend((q["question"], frames, q["answer"]) for q in item.questions)
    if not out:
        raise ValueError("instruction data: no captions or questions")
    return out


def temple_pairs(cfg: VideoLLMConfig, base: Path, items: list[VideoItem]) -> list[Pair]:
    """TEMPLE's pairs written by the base model (pairs/pairs.jsonl; reused when present)."""
    folder = cfg.run_dir / "pairs"
    t = cfg.temple
    settings = {"magnitudes": t.magnitudes, "operations": t.operations, "writer": t.writer, "seed": cfg.seed,
                "max_new_tokens": t.writer_max_new_tokens, "base": str(base), "videos": [i.id for i in items]}
    if (folder / "pairs.jsonl").is_file():
        if json.loads((folder / "settings.json").read_text()) != settings:
            fail(PROG, f"{folder}: its pairs were written under other settings (temple.magnitudes, operations, writer, "
                       "the base model or the videos); use a new run_dir or delete that folder")
        return read_jsonl(folder / "pairs.jsonl", Pair)
    write_json(folder / "settings.json", settings)
    plans = plan_perturbations(items, cfg.temple.magnitudes, cfg.temple.operations, cfg.seed)
    write_jsonl(folder / "plans.jsonl", plans)
    model, processor = load_at(cfg.model, base, cfg.seed) if cfg.temple.writer == "model" else (None, None)
    pairs, written = write_pairs(model, processor, items, plans, cfg.temple.writer_max_new_tokens,
                                 cfg.eval.batch_size)
    write_jsonl(folder / "written.jsonl", written)
    dropped: dict[str, int] = {}
    for r in written:
        dropped[str(r["dropped"])] = dropped.get(str(r["dropped"]), 0) + 1
    by_m = {str(m): sum(p.metadata["magnitude"] == m for p in pairs) for m in cfg.temple.magnitudes}
    exact = [r["chosen"] == SEPARATOR.join(r["clips"]) for r in written]
    faithful = sum(exact) / max(1, len(exact))  # how often the writer's chosen caption is the list, joined
    write_json(folder / "stats.json", {"planned": len(plans), "kept": len(pairs), "verdicts": dropped,
                                       "kept_per_magnitude": by_m, "chosen_is_the_list": faithful})
    print(f"pairs: {len(pairs)} kept of {len(plans)} written; per magnitude {by_m}; verdicts {dropped}; "
          f"chosen caption = the clip list joined in {faithful:.0%}", flush=True)
    write_jsonl(folder / "pairs.jsonl", pairs)
    return pairs


def curriculum(cfg: VideoLLMConfig, run: Path, start: Path, stages: list[list[Pair]], frames_of, seed: int,
               name: str) -> Path:
    """Run the DPO stages in order, each from the previous stage's model; return the last model."""
    model = start
    for stage in stages:
        m = stage[0].metadata["magnitude"]
        steps = math.ceil(len(stage) / cfg.temple.batch_size) * cfg.temple.epochs
        model = dpo_stage(run / f"{name}_m{m}", cfg.model, model, stage, frames_of, cfg.temple, cfg.trainer, seed, steps)
    return model


def main(argv: list[str] | None = None) -> dict:
    cfg, data = start_run(VideoLLMConfig, argv, doc=__doc__, prog=PROG, prepare=load_data)
    run = cfg.run_dir
    if cfg.pretrain.init_from:
        base = Path(cfg.pretrain.init_from)
    else:
        examples = [] if is_complete(run / "pretrain" / "model") else pretrain_examples(cfg)
        base = sft_stage(run / "pretrain", cfg.model, None, examples, cfg.pretrain, cfg.trainer, cfg.seed)
    pairs = temple_pairs(cfg, base, data.pair_videos)
    if not pairs:
        fail(PROG, f"no TEMPLE pair survived the filters (see {run / 'pairs' / 'written.jsonl'})")
    frames_of = {item.id: item.frames() for item in data.pair_videos}
    stages = curriculum_order(pairs, magnitude_difficulty, stages=None)  # easy (large m) first
    instruct = instruct_examples(data.instruct)
    models: dict[str, dict[str, str]] = {"base": {}, "sft": {}, "temple": {}}
    if cfg.temple.ablations:
        models.update({"sft_then_dpo": {}, "dpo_no_curriculum": {}})
    for seed in cfg.train_seeds:
        sd = run / f"seed_{seed}"
        models["base"][str(seed)] = str(base)
        sft = sft_stage(sd / "sft", cfg.model, base, instruct, cfg.sft, cfg.trainer, seed)
        models["sft"][str(seed)] = str(sft)
        aligned = curriculum(cfg, sd, base, stages, frames_of, seed, "temple")
        models["temple"][str(seed)] = str(sft_stage(sd / "temple", cfg.model, aligned, instruct, cfg.sft, cfg.trainer, seed))
        if cfg.temple.ablations:
            models["sft_then_dpo"][str(seed)] = str(curriculum(cfg, sd, sft, stages, frames_of, seed, "sft_dpo"))
            steps = sum(math.ceil(len(s) / cfg.temple.batch_size) for s in stages) * cfg.temple.epochs
            flat = dpo_stage(sd / "flat_dpo", cfg.model, base, pairs, frames_of, cfg.temple, cfg.trainer, seed, steps)
            models["dpo_no_curriculum"][str(seed)] = str(sft_stage(sd / "flat", cfg.model, flat, instruct, cfg.sft,
                                                                   cfg.trainer, seed))
    write_json(run / "models.json", models)
    summary = {"pairs": len(pairs), "stages": [len(s) for s in stages], "models": models}
    if not cfg.eval.skip:
        from apps.videollm.eval import evaluate_run

        table = evaluate_run(run, models, data.heldout, cfg)
        summary["eval"] = {name: {k: e.value for k, e in r.estimates.items()} for name, r in table.models.items()}
    first = str(cfg.train_seeds[0])
    return finish_run(run, models["temple"][first], summary, mode="video_llm")


if __name__ == "__main__":
    main()
