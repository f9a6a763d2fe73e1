"""Train a text-to-video model (IPO) or a prompt booster for it (Prompt-A-Video), then evaluate.

    python -m apps.t2v.train --config configs/t2v/ipo.yaml               # embedded default (tiny pixel denoiser, CPU)
    python -m apps.t2v.train --config configs/t2v/paper_cogvideox.yaml   # CogVideoX-2b + LoRA, GPU
    python -m apps.t2v.train --config configs/t2v/prompt_a_video.yaml \
        sft.init_from=runs/t2v/ipo/sft/model                              # a SmolLM2 booster for that video model
    python -m apps.t2v.train --help                                      # every option with its default

method prompt_a_video: the video model is sft.init_from or trained here as below (SFT); then the
booster's stages (apps/t2v/prompt_a_video.py: evolution, SFT, DPO rounds) and the evaluation of the
request, each booster and the caption reference on held-out requests (apps/t2v/pav_eval.py); the
run folder's final_model.json names the last DPO round's booster and the video model (read by infer).

method ipo:

Stages, each skipped when a rerun finds it complete (a killed run resumes): prompts (data/),
SFT (sft/model: a diffusers pipeline), then for each labelling in ipo.labellings its rounds through
shared.loop (ipo_<labelling>/round_NNN/: videos/*.npy, candidates, critic scores, pairs or ranked
lists, the fit and its model, a per-round evaluation), and the evaluation of every model on
held-out prompts (eval/: table.md, results.json, videos, before/after grids as GIF and MP4). The
run folder ends with final_model.json (the last DPO round's model, read by infer).
"""

from __future__ import annotations

import random
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from apps.t2v.config import METHODS, T2VConfig
from apps.t2v.critic import load_critic
from apps.t2v.data import CATEGORIES, VideoPrompt, build_split, load_prompts, write_prompts
from apps.t2v.eval import evaluate, heldout_prompts
from apps.t2v.ipo import LABELLINGS, build_labels, ipo_fit, round_metrics, sample_videos, score_videos
from apps.t2v.model import T2VModel, load_model, load_saved
from apps.t2v.pav_eval import evaluate_boosters
from apps.t2v.prompt_a_video import run_booster_dpo, run_booster_sft
from apps.t2v.rewrite_reward import RewriteScorer
from apps.t2v.user_prompts import user_prompt_split
from shared.kit import finish_run, loop_errors, record_final_model, start_run
from shared.kit.diffusion import run_diffusion_sft
from shared.loop import RecipeFunctions, RunLayout, run_loop
from shared.models.saved import mark_complete
from shared.models.tokenizer import fixed_length_ids
from shared.records import Candidate
from shared.scenes.video import caption_of, render_video, sample_video_scene

PROG = "python -m apps.t2v.train"


def prompt_sets(cfg: T2VConfig) -> tuple[list[VideoPrompt], list[VideoPrompt]]:
    """(IPO's training prompts, held-out evaluation prompts), from files or generated; written to data/.

    An unknown labelling or critic, or a malformed prompt file, raises ValueError with one line."""
    unknown = [m for m in cfg.ipo.labellings if m not in LABELLINGS]
    if unknown:
        raise ValueError(f"ipo.labellings: unknown labelling {unknown[0]!r} (known: {', '.join(LABELLINGS)})")
    load_critic(cfg.critic)
    data = cfg.run_dir / "data"
    if cfg.data.train_prompts:
        train = load_prompts(cfg.data.train_prompts)
        leaked = [p.prompt for p in train if p.scene.split != "train"]
        if leaked:
            raise ValueError(f"{cfg.data.train_prompts}: {len(leaked)} prompts use held-out (colour, motion) combinations, "
                             f"e.g. {leaked[0]!r}")
    else:
        split = build_split(cfg.ipo.prompts_per_category, 0, cfg.seed)["train"]
        train = [VideoPrompt.of(s) for c in CATEGORIES for s in split[c]]
    heldout = load_prompts(cfg.data.heldout_prompts) if cfg.data.heldout_prompts else heldout_prompts(cfg.eval, cfg.seed)
    write_prompts(data / "train_prompts.jsonl", train)
    write_prompts(data / "heldout_prompts.jsonl", heldout)
    return train, heldout


def request_sets(cfg: T2VConfig) -> tuple[list[VideoPrompt], list[VideoPrompt]]:
    """(Prompt-A-Video's training requests, held-out requests), from files or generated; written to data/."""
    load_critic(cfg.critic)
    cfg.reward.check()
    generated = user_prompt_split(cfg.pav.prompts_per_category, cfg.pav.heldout_per_category, cfg.seed, cfg.pav.plain)
    train = load_prompts(cfg.data.train_prompts) if cfg.data.train_prompts else generated["train"]
    heldout = load_prompts(cfg.data.heldout_prompts) if cfg.data.heldout_prompts else generated["heldout"]
    write_prompts(cfg.run_dir / "data" / "train_requests.jsonl", train)
    write_prompts(cfg.run_dir / "data" / "heldout_requests.jsonl", heldout)
    return train, heldout


def prepare(cfg: T2VConfig) -> tuple[list[VideoPrompt], list[VideoPrompt]]:
    if cfg.method not in METHODS:
        raise ValueError(f"method: {cfg.method!r} is not one of {', '.join(METHODS)}")
    return request_sets(cfg) if cfg.method == "prompt_a_video" else prompt_sets(cfg)


def sft_dataset(model: T2VModel, n: int, seed: int) -> list[dict[str, torch.Tensor]]:
    """n rendered training-split clips (categories in turn), as model-space samples and prompt token ids."""
    rng = random.Random(f"t2v-sft:{seed}")
    scenes = [sample_video_scene(rng, CATEGORIES[i % len(CATEGORIES)], "train") for i in range(n)]
    samples = []
    for start in range(0, n, 128):
        chunk = np.stack([render_video(s, model.frames, model.height, seed * 1_000_003 + start + i).frames
                          for i, s in enumerate(scenes[start:start + 128])])
        samples.append(model.to_model_space(chunk))
    x = torch.cat(samples) if samples else torch.zeros(0)
    ids = fixed_length_ids(model.tokenizer, [caption_of(s) for s in scenes])
    return [{"samples": x[i], "input_ids": ids[i]} for i in range(n)]


def save_model(model: T2VModel, folder: Path) -> Path:
    return mark_complete(model.save(folder))


def run_sft(cfg: T2VConfig) -> Path:
    """The SFT pipeline folder (skipped when complete)."""
    return run_diffusion_sft(cfg.run_dir, cfg.sft, cfg.trainer, cfg.seed, load=lambda: load_model(cfg.model, cfg.seed),
                             dataset=lambda model: sft_dataset(model, cfg.data.sft_videos, cfg.seed),
                             empty_ids=lambda model: fixed_length_ids(model.tokenizer, [""])[0], save=save_model,
                             train_text_encoder=cfg.model.source == "tiny")


def run_ipo(cfg: T2VConfig, labelling: str, sft: Path, train: list[VideoPrompt], heldout: list[VideoPrompt]):
    """IPO's rounds for one labelling through shared.loop; returns the LoopResult."""
    critic, s, p = load_critic(cfg.critic), cfg.sample, cfg.ipo
    sampling = {"steps": s.steps, "guidance": s.guidance, "batch_size": s.batch_size}
    scenes = {v.prompt: v.scene for v in train}
    probe = heldout[:p.eval_prompts]

    def sample(round, checkpoint, schedule) -> list[Candidate]:
        model = load_saved(checkpoint or sft, cfg.model)
        print(f"{labelling} round {round.index + 1}: {p.videos_per_prompt} videos for each of {len(train)} prompts",
              flush=True)
        return sample_videos(model, train, p.videos_per_prompt, round.seed, round.dir, **sampling)

    def score(round, candidates):
        return score_videos(critic, candidates, round.dir)

    def build(round, scored):
        records = build_labels(labelling, scored, p, round.seed)
        passed = sum(c.scores["passed"] for c in scored)
        print(f"{labelling} round {round.index + 1}: {len(records)} {'pairs' if labelling == 'dpo' else 'prompts'}; "
              f"{passed:.0f} of {len(scored)} videos pass the critic", flush=True)
        return records

    def evaluate_round(round, checkpoint):
        return round_metrics(critic, load_saved(Path(checkpoint), cfg.model), probe, cfg.seed, **sampling)

    fit = ipo_fit(labelling, p, cfg.model.lora, cfg.trainer, sft, scenes)
    return run_loop(RecipeFunctions(sample, score, build, fit, evaluate_round), cfg.run_dir / f"ipo_{labelling}", p.rounds,
                    seed=cfg.seed, initial_checkpoint=sft,
                    config={"ipo": {k: v for k, v in asdict(p).items() if k not in ("rounds", "labellings")},
                            "sample": asdict(s), "critic": asdict(cfg.critic), "train": [v.prompt for v in train]})


def run_prompt_a_video(cfg: T2VConfig, train: list[VideoPrompt], heldout: list[VideoPrompt]) -> dict:
    """The video model (SFT or sft.init_from), the booster's evolution, SFT and DPO rounds, and the evaluation."""
    video = run_sft(cfg)
    scorer = RewriteScorer(load_saved(video, cfg.model), load_critic(cfg.critic), cfg.reward, cfg.sample,
                           cfg.rewrite.max_words, cfg.pav.videos_per_rewrite)
    video_model = str(Path(video).resolve())
    with loop_errors(PROG):
        sft = run_booster_sft(cfg.run_dir, train, scorer, cfg.pav, cfg.rewrite, cfg.booster, cfg.booster_sft,
                              cfg.trainer, cfg.seed, video_model)
        result = run_booster_dpo(cfg.run_dir, train, scorer, cfg.pav, cfg.rewrite, cfg.booster, cfg.booster_dpo,
                                 cfg.trainer, sft, cfg.seed, video_model)
    layout = RunLayout(result.run_dir)
    boosters = {"base": "base", "sft": str(Path(sft).resolve()),
                **{f"dpo_r{r + 1}": str((layout.checkpoint(r) / "model").resolve()) for r in range(cfg.booster_dpo.rounds)}}
    final = boosters[f"dpo_r{cfg.booster_dpo.rounds}"]
    extra = {"models": boosters, "video_model": video_model, "method": "prompt_a_video"}
    record_final_model(cfg.run_dir, final, **extra)
    table = evaluate_boosters(cfg, Path(video), boosters, heldout, cfg.run_dir / "eval")
    return finish_run(cfg.run_dir, final, table.as_json(), **extra)


def main(argv: list[str] | None = None) -> dict:
    cfg, (train, heldout) = start_run(T2VConfig, argv, doc=__doc__, prog=PROG, prepare=prepare)
    if cfg.method == "prompt_a_video":
        return run_prompt_a_video(cfg, train, heldout)
    sft = run_sft(cfg)
    models = {"sft": sft}
    with loop_errors(PROG):
        for labelling in cfg.ipo.labellings:
            result = run_ipo(cfg, labelling, sft, train, heldout)
            layout = RunLayout(result.run_dir)
            for r in range(cfg.ipo.rounds):
                models[f"{labelling}_r{r + 1}"] = layout.checkpoint(r) / "model"
    final = models.get(f"dpo_r{cfg.ipo.rounds}", models.get(f"kto_r{cfg.ipo.rounds}", sft))
    every = {k: str(Path(v).resolve()) for k, v in models.items()}
    record_final_model(cfg.run_dir, final, models=every)  # before the evaluation, so a finished model is served
    table = evaluate(cfg, models, heldout, cfg.run_dir / "eval")
    return finish_run(cfg.run_dir, final, table.as_json(), models=every)


if __name__ == "__main__":
    main()
