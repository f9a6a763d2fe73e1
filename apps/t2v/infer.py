"""Generate videos with a trained text-to-video pipeline, or serve them as MP4 over HTTP, with the critic's verdict.

    python -m apps.t2v.infer --model runs/t2v/ipo --prompt "a red circle moving left" --seeds 0 1 --out videos/
    python -m apps.t2v.infer serve --model runs/t2v/ipo --port 8000
    curl -s localhost:8000/generate -H 'content-type: application/json' \\
         -d '{"prompts": ["a blue square moving up"], "params": {"seed": 0, "steps": 20, "guidance": 3.0}}'

--model is a training run folder (its final_model.json names the last DPO round's model; --which
picks another of the run's models: sft, dpo_r1, dpo_r2, kto_r1, ...) or any pipeline folder (ours
or a CogVideoX one). Each output is {"video_mp4_base64", "frames", "width", "height", "seed",
"critic"}: "critic" holds the critic's per-dimension scores, "overall" and "passed" when the prompt
is a caption it reads ("a red circle moving left"), else null. --out also writes <seed>.mp4 and
<seed>.gif. The server has /health and /generate only: videos have no OpenAI routes.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from apps.t2v.critic import RuleCritic
from apps.t2v.model import T2VModel, load_saved
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


def main(argv: list[str] | None = None) -> None:
    parser, rest, serving = infer_parser(PROG, __doc__, list(sys.argv[1:] if argv is None else argv), text=False)
    parser.add_argument("--which", help="which of the run's models (default: its final model)")
    parser.add_argument("--steps", type=int, default=20, help="DDIM steps")
    parser.add_argument("--guidance", type=float, default=3.0, help="classifier-free guidance scale")
    if not serving:
        parser.add_argument("--prompt", required=True)
        parser.add_argument("--seeds", type=int, nargs="+", default=[0])
        parser.add_argument("--out", type=Path, help="write the videos as MP4 and GIF into this folder")
    args = parser.parse_args(rest)
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
