"""Evaluate a text-to-image run's models (SFT, OSPO and the baselines) GenEval-style on held-out prompts.

    python -m apps.t2i.eval --run runs/t2i/ospo
    python -m apps.t2i.eval --run runs/t2i/ospo --seeds 0 1 2 3 --out runs/t2i/ospo/eval_4seeds
    python -m apps.t2i.eval --run runs/t2i/ospo --model other=path/to/pipeline --prompts my_prompts.jsonl

Per model and seed: eval.images_per_prompt images for each held-out prompt (the run's
data/heldout_prompts.jsonl, or --prompts), checked by the object checker; writes <out>/table.md
(per-category accuracy with 95% bootstrap intervals, overall per seed), results.json, each
model's images and verdicts (<out>/<model>/seed_<s>/), and the image grids. Results of a
(model, seed) already in <out> are reused (training writes <run>/eval with the run's settings).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

from apps.t2i.config import T2IConfig
from apps.t2i.data import load_prompts
from apps.t2i.evaluate import evaluate_models
from shared.config import ConfigError, load_yaml
from shared.training import quiet_lightning

PROG = "python -m apps.t2i.eval"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a training run folder (python -m apps.t2i.train)")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=FOLDER",
                        help="also evaluate this diffusers pipeline folder (repeatable)")
    parser.add_argument("--seeds", type=int, nargs="+", help="evaluation seeds (default: the run's eval.seeds)")
    parser.add_argument("--prompts", type=Path, help="a JSONL prompt file instead of the run's held-out prompts")
    parser.add_argument("--out", type=Path, help="output folder (default: <run>/eval)")
    args = parser.parse_args(argv)
    try:
        if not (args.run / "config.yaml").is_file() or not (args.run / "final_model.json").is_file():
            raise ValueError(f"{args.run}: not a finished t2i training run folder (no config.yaml or final_model.json)")
        cfg = load_yaml(T2IConfig, args.run / "config.yaml")
        models = {k: Path(v) for k, v in json.loads((args.run / "final_model.json").read_text())["models"].items()}
        for entry in args.model:
            name, sep, folder = entry.partition("=")
            if not sep or not (Path(folder) / "model_index.json").is_file():
                raise ValueError(f"--model {entry!r}: expected NAME=FOLDER with a diffusers pipeline folder")
            models[name] = Path(folder)
        scenes = [r.scene for r in load_prompts(args.prompts or args.run / "data" / "heldout_prompts.jsonl")]
    except (ValueError, ConfigError, OSError) as exc:
        parser.error(str(exc))
    if args.seeds:
        cfg.eval.seeds = args.seeds
    quiet_lightning()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    return evaluate_models(cfg, models, scenes, args.out or args.run / "eval")


if __name__ == "__main__":
    main()
