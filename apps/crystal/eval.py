"""Evaluate a crystal run's models (SFT and every DPO round) on fresh samples with several seeds.

    python -m apps.crystal.eval --run runs/crystal/plaid --seeds 0 1 2
    python -m apps.crystal.eval --run runs/crystal/plaid --model other=path/to/save_pretrained --seeds 0

For each model and seed: the run's eval requests (eval.unconditional unconditional samples, and
eval.per_spacegroup samples for each of eval.spacegroups held-out space groups) at eval.temperature,
scored exactly as in training (same CHGNet settings, hull cache and training set for novelty).
Writes <run>/eval/<model>/seed_<s>/ (samples.jsonl, best_cifs/, summary.json; the run's own seed
reuses the evaluation training already wrote), and
<run>/eval/table.md + results.json: each rate over the pooled seeds with its 95% bootstrap interval,
and the per-seed S.U.N. rates. --decoding constrained|free overrides the run's sample.constrained
(results then go to <run>/eval/<decoding>/ and nothing from training is reused), e.g. to measure
what the format automaton adds.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from apps.crystal.config import CrystalConfig
from apps.crystal.data import read_crystals
from apps.crystal.pipeline import summarize_candidates
from apps.crystal.reward import NoveltyChecker
from apps.crystal.train import Evaluator, scoring_service
from shared.atomic import write_json, write_text
from shared.config import ConfigError, load_yaml
from shared.records import Candidate, read_jsonl
from shared.training import quiet_lightning

PROG = "python -m apps.crystal.eval"
COLUMNS = (("valid", "valid"), ("stable", "stable"), ("metastable", "meta-stable"), ("unique", "unique"),
           ("novel", "novel"), ("sun", "S.U.N."), ("msun", "meta S.U.N."), ("sg_match", "sg match"))


def run_models(run: Path) -> dict[str, Path]:
    """SFT and each finished DPO round of a run, in order."""
    models = {}
    if (run / "sft" / "model" / "config.json").is_file():
        models["sft"] = run / "sft" / "model"
    for folder in sorted((run / "plaid").glob("round_*")):
        if (folder / "checkpoint" / "model" / "config.json").is_file():
            models[f"dpo_round{int(folder.name.split('_')[1]) + 1}"] = folder / "checkpoint" / "model"
    return models


def training_eval_dir(run: Path, name: str) -> Path | None:
    """The folder where training already evaluated this model with the run's seed and eval settings."""
    if name == "sft":
        return run / "sft" / "eval"
    if name.startswith("dpo_round"):
        return run / "plaid" / f"round_{int(name[len('dpo_round'):]) - 1:03d}" / "eval"
    return None


def fmt(m: dict, name: str) -> str:
    if name not in m:
        return "-"
    return f"{m[name]:.3f} [{m[f'{name}_low']:.2f}, {m[f'{name}_high']:.2f}]"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a training run folder (python -m apps.crystal.train)")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=FOLDER",
                        help="also evaluate this save_pretrained folder (repeatable)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--unconditional", type=int, help="unconditional samples per model and seed (default: the run's eval.unconditional)")
    parser.add_argument("--decoding", choices=["run", "constrained", "free"], default="run",
                        help="format-constrained or free sampling (run: as the training run sampled)")
    args = parser.parse_args(argv)
    try:
        if not (args.run / "config.yaml").is_file() or not (args.run / "data" / "train.jsonl").is_file():
            raise ValueError(f"{args.run}: not a crystal training run folder (no config.yaml or data/)")
        cfg = load_yaml(CrystalConfig, args.run / "config.yaml")
        models = run_models(args.run)
        for entry in args.model:
            name, sep, folder = entry.partition("=")
            if not sep or not (Path(folder) / "config.json").is_file():
                raise ValueError(f"--model {entry!r}: expected NAME=FOLDER with a save_pretrained folder")
            models[name] = Path(folder)
        if not models:
            raise ValueError(f"{args.run}: no finished model to evaluate")
    except (ValueError, ConfigError, OSError) as exc:
        parser.error(str(exc))
    if args.unconditional:
        cfg.eval.unconditional = args.unconditional
    cfg.run_dir = args.run
    eval_dir = args.run / "eval"
    if args.decoding != "run":
        cfg.sample.constrained = args.decoding == "constrained"
        eval_dir = eval_dir / args.decoding
    quiet_lightning()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    train = read_crystals(args.run / "data" / "train.jsonl")
    heldout = read_crystals(args.run / "data" / "heldout.jsonl")
    service = scoring_service(cfg, train)
    evaluator = Evaluator(cfg, heldout, service, NoveltyChecker([c.structure for c in train]))
    results = {}
    for name, folder in models.items():
        pooled, per_seed = [], []
        for seed in args.seeds:
            out = eval_dir / name / f"seed_{seed}"
            reuse = training_eval_dir(args.run, name)
            if seed == cfg.seed and not args.unconditional and args.decoding == "run" and reuse is not None and (reuse / "summary.json").is_file():
                out = reuse  # the same model, seed and requests were evaluated during training
            per_seed.append(evaluator(folder, out, seed))
            pooled += read_jsonl(out / "samples.jsonl", Candidate)
            print(f"{name} seed {seed}: S.U.N. {per_seed[-1]['sun']:.3f}  valid {per_seed[-1]['valid']:.3f}", flush=True)
        results[name] = {**summarize_candidates(pooled), "seeds": args.seeds, "sun_per_seed": [m["sun"] for m in per_seed],
                         "model": str(folder)}
    decoding = "format-constrained" if cfg.sample.constrained else "free"
    lines = [f"Seeds {args.seeds}; {decoding} sampling; per model and seed {cfg.eval.unconditional} unconditional samples and "
             f"{cfg.eval.per_spacegroup} per requested space group; rates over the pooled seeds with 95% bootstrap intervals.",
             "", "| model | " + " | ".join(label for _, label in COLUMNS) + " | S.U.N. per seed |",
             "|---" * (len(COLUMNS) + 2) + "|"]
    for name, m in results.items():
        lines.append(f"| {name} | " + " | ".join(fmt(m, key) for key, _ in COLUMNS) + " | "
                     + ", ".join(f"{v:.3f}" for v in m["sun_per_seed"]) + " |")
    table = "\n".join(lines) + "\n"
    write_text(eval_dir / "table.md", table)
    write_json(eval_dir / "results.json", {"results": results, "scoring": service.stats()})
    print(table)
    return results


if __name__ == "__main__":
    main()
