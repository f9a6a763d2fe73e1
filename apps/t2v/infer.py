"""Generate videos with a trained text-to-video pipeline, or rewrite requests with a Prompt-A-Video booster; serve either.

    python -m apps.t2v.infer --model runs/t2v/ipo --prompt "a red circle moving left" --seeds 0 1 --out videos/
    python -m apps.t2v.infer serve --model runs/t2v/ipo --port 8000
    curl -s localhost:8000/generate -H 'content-type: application/json' \\
         -d '{"prompts": ["a blue square moving up"], "params": {"seed": 0, "steps": 20, "guidance": 3.0}}'

    python -m apps.t2v.infer --model runs/t2v/prompt_a_video --prompt "a big crimson ball drifting leftwards" --render --out v/
    python -m apps.t2v.infer serve --model runs/t2v/prompt_a_video --port 8000
    curl -s localhost:8000/generate -d '{"prompts": ["a tiny navy box vanishing"], "params": {"render": 1}}'
    curl -s localhost:8000/v1/chat/completions -d '{"messages": [...], "max_tokens": 48}'   # the booster itself

A Prompt-A-Video run folder (its final_model.json names a booster and the video model) serves the
booster: each output is {"request", "rewrite", "usable", "reason"} (reason: empty, endless,
too_long or not_text when the rewrite is unusable); with --render / "render": 1, also the video of
the rewrite as for a video model below (its critic verdict judges the video against the request
when the request is a caption the critic reads, else null). The server then also speaks OpenAI's
API for the booster (/v1/chat/completions: send the booster's chat, apps/t2v/booster.py).

--model is a training run folder (its final_model.json names the last DPO round's model; --which
picks another of the run's models: sft, dpo_r1, dpo_r2, kto_r1, ...) or any pipeline folder (ours
or a CogVideoX one). Each output is {"video_mp4_base64", "frames", "width", "height", "seed",
"critic"}: "critic" holds the critic's per-dimension scores, "overall" and "passed" when the prompt
is a caption it reads ("a red circle moving left"), else null. --out also writes <seed>.mp4 and
<seed>.gif. A video model's server has /health and /generate only: videos have no OpenAI routes.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from apps.t2v.booster import RewriteArgs, booster_spec, check_rewrite, clean_rewrite, rewrite
from apps.t2v.critic import RuleCritic
from apps.t2v.model import T2VModel, load_saved
from shared.models import load_policy
from shared.serving import HFTextGenerator
from shared.kit.diffusion import resolve_pipeline
from shared.scenes.video import parse_caption
from shared.serving.cli import infer_parser, serve, serve_kwargs
from shared.serving.protocol import Param
from shared.video_io import mp4_bytes, write_gif, write_mp4

PROG = "python -m apps.t2v.infer"


class VideoGenerator:
    """Serves a T2VModel: one MP4 per prompt, with the critic's verdict when the prompt is a caption it reads."""

    accepted_params = {"seed": Param(int, 0, 2**31 - 1), "steps": Param(int, 1, 200),
                       "guidance": Param(float, 0.0, 30.0)}

    def __init__(self, model: T2VModel, *, steps: int = 20, guidance: float = 3.0, scale: int = 4):
        self.model, self.steps, self.guidance, self.scale = model, steps, guidance, scale
        self.critic = RuleCritic()
        self.name = "t2v"

    def generate(self, prompts: list[str], seed: int = 0, steps: int | None = None,
                 guidance: float | None = None) -> list[dict[str, Any]]:
        return self.draw(prompts, seed, steps, guidance)[0]

    def draw(self, prompts: list[str], seed: int = 0, steps: int | None = None,
             guidance: float | None = None) -> tuple[list[dict[str, Any]], np.ndarray]:
        """The JSON records of one video per prompt (seeds seed, seed + 1, ...) and the videos' frames."""
        seeds = [seed + i for i in range(len(prompts))]
        videos = self.model.generate(list(prompts), seeds, steps=steps or self.steps,
                                     guidance=self.guidance if guidance is None else guidance)
        out = []
        for prompt, s, video in zip(prompts, seeds, videos):
            verdict = None
            if parse_caption(prompt) is not None:
                verdict = {k: v for k, v in self.critic.score([video], [prompt])[0].items() if k != "readable"}
            out.append({"video_mp4_base64": base64.b64encode(mp4_bytes(video, scale=self.scale)).decode("ascii"),
                        "frames": int(video.shape[0]), "width": int(video.shape[2]), "height": int(video.shape[1]),
                        "seed": s, "critic": verdict})
        return out, videos


class BoosterGenerator:
    """Serves a Prompt-A-Video booster: greedy rewrites, and with `render` the rewrite's video (see the docstring)."""

    accepted_params = {**VideoGenerator.accepted_params, "render": Param(int, 0, 1)}

    def __init__(self, model, tokenizer, video: VideoGenerator, args: RewriteArgs):
        self.model, self.tokenizer, self.video, self.args = model, tokenizer, video, args
        self.text_model = HFTextGenerator(model, tokenizer, max_new_tokens=args.max_new_tokens, chat=True,
                                          name="t2v-booster")
        self.name = "t2v-booster"

    def generate(self, prompts: list[str], seed: int = 0, render: int = 0, steps: int | None = None,
                 guidance: float | None = None) -> list[dict[str, Any]]:
        return self.draw(prompts, seed, bool(render), steps, guidance)[0]

    def draw(self, prompts: list[str], seed: int = 0, render: bool = False, steps: int | None = None,
             guidance: float | None = None) -> tuple[list[dict[str, Any]], list[np.ndarray | None]]:
        """The records of one rewrite per request and, with render, the videos of the usable ones (else None)."""
        sampled = [row[0] for row in rewrite(self.model, self.tokenizer, prompts, self.args, greedy=True)]
        out, videos = [], []
        for i, (request, s) in enumerate(zip(prompts, sampled)):
            reason = check_rewrite(s, self.args.max_words)
            record = {"request": request, "rewrite": clean_rewrite(s.text), "usable": reason is None, "reason": reason}
            video = None
            if render and reason is None:
                drawn, frames = self.video.draw([record["rewrite"]], seed + i, steps, guidance)
                record.update({k: v for k, v in drawn[0].items() if k != "critic"})
                video = frames[0]
                scene = parse_caption(request)
                record["critic"] = None if scene is None else {
                    k: v for k, v in self.video.critic.score([video], [request], [scene])[0].items() if k != "readable"}
            out.append(record)
            videos.append(video)
        return out, videos


def booster_run(folder: Path) -> dict | None:
    """final_model.json of a Prompt-A-Video run folder, or None for anything else."""
    final = folder / "final_model.json"
    if not final.is_file():
        return None
    record = json.loads(final.read_text())
    return record if record.get("method") == "prompt_a_video" else None


def main_booster(args, run: dict, serving: bool) -> None:
    from apps.t2v.config import T2VConfig
    from shared.config import load_yaml

    cfg = load_yaml(T2VConfig, Path(args.model) / "config.yaml")
    folder = run["models"][args.which] if args.which else run["path"]
    model, tok = load_policy(booster_spec(cfg.booster, folder, cfg.seed))
    video = VideoGenerator(load_saved(Path(run["video_model"]), cfg.model), steps=args.steps, guidance=args.guidance)
    generator = BoosterGenerator(model, tok, video, cfg.rewrite)
    if serving:
        serve(generator, **serve_kwargs(args))
        return
    for s in args.seeds:
        records, videos = generator.draw([args.prompt], seed=s, render=args.render)
        record, frames = records[0], videos[0]
        if args.out and frames is not None:
            record["path"] = str(write_mp4(args.out / f"seed_{s}.mp4", frames, scale=4))
            write_gif(args.out / f"seed_{s}.gif", frames, scale=4)
        print(json.dumps({k: v for k, v in record.items() if k != "video_mp4_base64"}))
        if not args.render:
            break  # greedy: every seed gives the same rewrite


def main(argv: list[str] | None = None) -> None:
    parser, rest, serving = infer_parser(PROG, __doc__, list(sys.argv[1:] if argv is None else argv), text=False)
    parser.add_argument("--which", help="which of the run's models (default: its final model)")
    parser.add_argument("--steps", type=int, default=20, help="DDIM steps")
    parser.add_argument("--guidance", type=float, default=3.0, help="classifier-free guidance scale")
    if not serving:
        parser.add_argument("--prompt", required=True)
        parser.add_argument("--seeds", type=int, nargs="+", default=[0])
        parser.add_argument("--out", type=Path, help="write the videos as MP4 and GIF into this folder")
        parser.add_argument("--render", action="store_true", help="a booster run: also draw the rewrite's video")
    args = parser.parse_args(rest)
    run = booster_run(Path(args.model))
    if run is not None:
        if args.which and args.which not in run.get("models", {}):
            parser.error(f"{args.model}: the run has no booster {args.which!r} (has: {', '.join(run.get('models', {}))})")
        main_booster(args, run, serving)
        return
    try:
        folder = resolve_pipeline(args.model, args.which)
    except ValueError as exc:
        parser.error(str(exc))
    generator = VideoGenerator(load_saved(folder), steps=args.steps, guidance=args.guidance)
    if serving:
        serve(generator, **serve_kwargs(args))
        return
    for s in args.seeds:
        records, videos = generator.draw([args.prompt], seed=s)
        record, frames = records[0], videos[0]
        if args.out:
            record["path"] = str(write_mp4(args.out / f"seed_{s}.mp4", frames, scale=4))
            write_gif(args.out / f"seed_{s}.gif", frames, scale=4)
        print(json.dumps({k: v for k, v in record.items() if k != "video_mp4_base64"}))


if __name__ == "__main__":
    main()
