"""Generate images with a trained text-to-image pipeline, or serve them as PNG over HTTP.

    python -m apps.t2i.infer --model runs/t2i/ospo --prompt "a photo of a red circle left of a blue square" --seeds 0 1 --out images/
    python -m apps.t2i.infer serve --model runs/t2i/ospo --port 8000
    curl -s localhost:8000/generate -H 'content-type: application/json' \\
         -d '{"prompts": ["a photo of two blue squares"], "params": {"seed": 0, "steps": 25, "guidance": 3.0}}'

--model is a training run folder (its final_model.json names OSPO's model; --which picks another
of the run's models: sft, ospo, ospo_mask, diffusion_dpo, diffusion_kto) or any pipeline folder.
Each output is {"image_png_base64", "width", "height", "seed", "check"}: "check" is the object
checker's verdict ({"passed", "score", "answers"}) when the prompt is one the scene grammar
reads ("a photo of ..."), else null. The server has /health and /generate only: images have no
OpenAI text routes.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

from shared.scenes.checker import check
from apps.t2i.model import T2IModel, load_saved
from apps.t2i.preference import png_bytes
from shared.scenes.image import parse_prompt
from shared.atomic import write_bytes
from shared.kit.diffusion import resolve_pipeline
from shared.serving.cli import infer_parser, serve, serve_kwargs
from shared.serving.protocol import Param

PROG = "python -m apps.t2i.infer"


class ImageGenerator:
    """Serves a T2IModel: one PNG per prompt, with the object checker's verdict when the prompt is a scene."""

    accepted_params = {"seed": Param(int, 0, 2**63 - 1), "steps": Param(int, 1, 200),
                       "guidance": Param(float, 0.0, 30.0)}

    def __init__(self, model: T2IModel, *, steps: int = 25, guidance: float = 3.0):
        self.model, self.steps, self.guidance = model, steps, guidance
        self.name = "t2i"

    def generate(self, prompts: list[str], seed: int = 0, steps: int | None = None,
                 guidance: float | None = None) -> list[dict[str, Any]]:
        seeds = [seed + i for i in range(len(prompts))]
        images = self.model.generate(list(prompts), seeds, steps=steps or self.steps,
                                     guidance=self.guidance if guidance is None else guidance)
        out = []
        for prompt, s, image in zip(prompts, seeds, images):
            scene = parse_prompt(prompt)
            verdict = None
            if scene is not None:
                v = check(image, scene)
                verdict = {"passed": v["passed"], "score": v["score"], "answers": v["answers"]}
            out.append({"image_png_base64": base64.b64encode(png_bytes(image)).decode("ascii"),
                        "width": int(image.shape[1]), "height": int(image.shape[0]), "seed": s, "check": verdict})
        return out


def main(argv: list[str] | None = None) -> None:
    parser, rest, serving = infer_parser(PROG, __doc__, list(sys.argv[1:] if argv is None else argv), text=False)
    parser.add_argument("--which", help="which of the run's models (default: its final model, OSPO)")
    parser.add_argument("--steps", type=int, default=25, help="DDIM steps")
    parser.add_argument("--guidance", type=float, default=3.0, help="classifier-free guidance scale")
    if not serving:
        parser.add_argument("--prompt", required=True)
        parser.add_argument("--seeds", type=int, nargs="+", default=[0])
        parser.add_argument("--out", type=Path, help="write the images as PNG into this folder")
    args = parser.parse_args(rest)
    try:
        folder = resolve_pipeline(args.model, args.which)
    except ValueError as exc:
        parser.error(str(exc))
    generator = ImageGenerator(load_saved(folder), steps=args.steps, guidance=args.guidance)
    if serving:
        serve(generator, **serve_kwargs(args))
        return
    for s in args.seeds:
        record = generator.generate([args.prompt], seed=s)[0]
        if args.out:
            record["path"] = str(write_bytes(args.out / f"seed_{s}.png", base64.b64decode(record["image_png_base64"])))
        print(json.dumps({k: v for k, v in record.items() if k != "image_png_base64"}))


if __name__ == "__main__":
    main()
