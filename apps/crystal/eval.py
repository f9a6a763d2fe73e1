"""Evaluate a crystal run's models (SFT and every DPO round) on fresh samples with several seeds.

    python -m apps.crystal.eval --run runs/crystal/plaid --seeds 0 1 2
    python -m apps.crystal.eval --run runs/crystal/plaid --model other=path/to/save_pretrained --seeds 0

For each model and seed: the run's eval requests (eval.unconditional unconditional samples, and
eval.per_spacegroup samples for each of eval.spacegroups held-out space groups) at eval.temperature,
scored exactly as in training (same CHGNet settings, hull cache and training set for novelty).
Writes <run>/eval/<model>/seed_<s>/ (samples.jsonl, best_cifs/, summary.json; the run's own seed
reuses the evaluation training already wrote) and the core's results table in <run>/eval/ (table.md,
results.json, results.csv, a PNG per rate): each rate over the pooled seeds with its 95% bootstrap
interval over samples, and the S.U.N. rate per seed. --decoding constrained|free overrides the run's
sample.constrained (results then go to <run>/eval/<decoding>/ and nothing from training is reused);
--unconditional N gets its own folder too (<run>/eval/unconditional_N/).

Rates are over all unconditional samples, so a text that does not parse counts as a failure in
every rate. Stable: E_hull <= 0 eV/atom against the local CHGNet hull; metastable: E_hull <= 0.08
eV/atom (PLaID++'s threshold). S.U.N.: stable, unique and novel (and valid). The space-group match
rate is over the conditional samples.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from apps.crystal.data import Crystal, read_crystals
from apps.crystal.grammar import format_constraint
from apps.crystal.physics import EnergySettings
from apps.crystal.reward import NoveltyChecker, ScoringService, score_candidates
from apps.crystal.sampling import generate, heldout_spacegroups, requests
from apps.crystal.wyckoff import decode
from shared.atomic import write_json, write_text
from shared.config import ConfigError, load_yaml
from shared.evaluation import Metric, ResultsTable, evaluate_models, summarize
from shared.kit import EvalArgs, eval_parser, fail, named, policy_at, set_threads
from shared.records import Candidate, read_jsonl, write_jsonl
from shared.training import quiet_lightning

if TYPE_CHECKING:  # the config imports this module's eval section
    from apps.crystal.config import CrystalConfig

PROG = "python -m apps.crystal.eval"
METASTABLE = 0.08
RATES = [Metric("valid"), Metric("stable"), Metric("metastable", "meta-stable"), Metric("unique"), Metric("novel"),
         Metric("sun", "S.U.N."), Metric("msun", "meta S.U.N."), Metric("sg_match", "sg match")]
DETAIL = [Metric("parsed"), Metric("struct_valid"), Metric("comp_valid")]


@dataclass
class CrystalEvalArgs(EvalArgs):
    """The per-round evaluation (run's seed) and `python -m apps.crystal.eval` (eval.seeds).

    Attributes:
        unconditional: unconditional samples per evaluation.
        spacegroups: held-out structures' space groups asked for (conditional generation).
        per_spacegroup: samples per requested space group.
        temperature: sampling temperature.
        best_cifs: CIF files of the best samples written per evaluation.
    """

    unconditional: int = 48
    spacegroups: int = 8
    per_spacegroup: int = 2
    temperature: float = 0.7
    best_cifs: int = 8


def sample_row(c: Candidate) -> dict[str, float]:
    """A sample's flags as 0/1 rates: every rate for an unconditional sample, the space-group match for a conditional one."""
    s = c.scores
    if c.prompt_id != "unconditional":
        return {"sg_match": float(s.get("sg_match", 0.0) >= 0.5)} if c.metadata.get("requested_sg") else {}
    e = s.get("e_hull", math.inf)
    valid = s.get("valid_crystal", 0.0) >= 0.5
    unique, novel = s.get("unique", 0.0) >= 0.5, s.get("novel", 0.0) >= 0.5
    flags = {"parsed": s.get("parsed", 0.0) >= 0.5, "struct_valid": s.get("struct_valid", 0.0) >= 0.5,
             "comp_valid": s.get("comp_valid", 0.0) >= 0.5, "valid": valid, "stable": valid and e <= 0.0,
             "metastable": valid and e <= METASTABLE, "unique": valid and unique, "novel": valid and novel,
             "sun": valid and e <= 0.0 and unique and novel, "msun": valid and e <= METASTABLE and unique and novel}
    return {**{k: float(v) for k, v in flags.items()}, **({"e_hull": s["e_hull"]} if "e_hull" in s else {})}


def summarize_samples(scored: Sequence[Candidate]) -> dict[str, float]:
    """Every rate with its 95% interval, the sample counts and the median E_hull (a round's metrics)."""
    rows = [sample_row(c) for c in scored]
    uncond = [r for r in rows if "valid" in r]
    hulls = [r["e_hull"] for r in uncond if "e_hull" in r]
    out = {"samples": float(len(uncond)), **summarize(rows, DETAIL + RATES)}
    if hulls:
        out["median_e_hull"] = float(np.median(hulls))
    if any("sg_match" in r for r in rows):
        out["sg_samples"] = float(sum("sg_match" in r for r in rows))
    return out


def write_best_cifs(scored: Sequence[Candidate], folder: Path, n: int) -> list[Path]:
    """Write the n lowest-E_hull valid, unique, novel samples (stable first) as CIF files; return their paths."""
    ranked = sorted((c for c in scored if c.scores.get("valid_crystal") == 1.0 and "e_hull" in c.scores
                     and c.scores.get("unique") == 1.0 and c.scores.get("novel") == 1.0),
                    key=lambda c: c.scores["e_hull"])
    paths = []
    for k, c in enumerate(ranked[:n]):
        decoded = decode(c.output)
        if not decoded.ok:
            continue
        s = decoded.structure
        name = f"{k:02d}_{s.composition.reduced_formula}_sg{int(c.scores.get('spacegroup', 0))}_ehull{c.scores['e_hull']:+.3f}.cif"
        paths.append(write_text(folder / name, s.to(fmt="cif")))
    return paths


def scoring_service(cfg: CrystalConfig, train: Sequence[Crystal]) -> ScoringService:
    """CHGNet with the run's settings, the training structures' hull and the score cache (reward.cache_dir)."""
    settings = EnergySettings(relax=cfg.reward.relax, steps=cfg.reward.relax_steps, fmax=cfg.reward.fmax)
    cache = Path(cfg.reward.cache_dir) if cfg.reward.cache_dir else cfg.run_dir.parent / "cache"
    return ScoringService(settings, [(c.id, c.structure) for c in train], cache, workers=cfg.reward.worker_count())


class Evaluator:
    """Samples a model with the run's eval requests, scores and writes them; one per run, shared by train and eval."""

    def __init__(self, cfg: CrystalConfig, train: Sequence[Crystal], heldout: Sequence[Crystal]):
        e = cfg.eval
        self.cfg = cfg
        self.service = scoring_service(cfg, train)
        self.novelty = NoveltyChecker([c.structure for c in train])
        self.requests = requests(e.unconditional, heldout_spacegroups(heldout, e.spacegroups, cfg.seed), e.per_spacegroup)

    def __call__(self, model_folder: Path, out_dir: Path, seed: int) -> dict[str, float]:
        """Evaluate into out_dir (samples.jsonl, best_cifs/, summary.json; skipped when summary.json exists); the summary."""
        done = out_dir / "summary.json"
        if done.is_file():
            return json.loads(done.read_text())
        cfg = self.cfg
        model, tok = policy_at(cfg.model, model_folder, seed, lora=False)
        candidates = generate(model, tok, self.requests, temperature=cfg.eval.temperature, top_p=cfg.sample.top_p,
                              max_new_tokens=cfg.sample.max_new_tokens, batch_size=cfg.sample.batch_size, seed=seed,
                              constraint=format_constraint(tok, cfg.sample.constrained, cfg.data.max_atoms))
        scored = score_candidates(candidates, self.service, self.novelty)
        write_jsonl(out_dir / "samples.jsonl", scored)
        write_best_cifs(scored, out_dir / "best_cifs", cfg.eval.best_cifs)
        summary = summarize_samples(scored)
        write_json(done, summary)
        return summary


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


def results_table(cfg: CrystalConfig, evaluator: Evaluator, models: Mapping[str, Path], seeds: Sequence[int],
                  out_dir: Path, reuse_training: bool = True) -> ResultsTable:
    """Every model x seed through the evaluator (reusing training's evaluations of the run's seed), as the results table."""

    def score(name: str, folder: Path, seed: int) -> list[dict]:
        out = out_dir / name / f"seed_{seed}"
        reuse = training_eval_dir(cfg.run_dir, name)
        if reuse_training and seed == cfg.seed and reuse is not None and (reuse / "summary.json").is_file():
            out = reuse  # the same model, seed and requests were evaluated during training
        evaluator(folder, out, seed)
        return [sample_row(c) for c in read_jsonl(out / "samples.jsonl", Candidate)]

    e = cfg.eval
    decoding = "format-constrained" if cfg.sample.constrained else "free"
    caption = (f"Seeds {list(seeds)}; {decoding} sampling; per model and seed {e.unconditional} unconditional samples and "
               f"{e.per_spacegroup} per requested space group; rates over the pooled seeds with {e.level:.0%} bootstrap intervals.")
    table = evaluate_models(models, score, RATES, seeds=seeds, out_dir=out_dir, caption=caption, headline="sun",
                            resamples=e.resamples, level=e.level, info={n: {"model": str(f)} for n, f in models.items()},
                            settings={"decoding": decoding, "temperature": e.temperature})
    write_json(out_dir / "scoring.json", evaluator.service.stats())
    return table


def main(argv: list[str] | None = None) -> dict:
    parser = eval_parser(PROG, __doc__)
    parser.add_argument("--unconditional", type=int, help="unconditional samples per model and seed (default: the run's eval.unconditional)")
    parser.add_argument("--decoding", choices=["run", "constrained", "free"], default="run",
                        help="format-constrained or free sampling (run: as the training run sampled)")
    args = parser.parse_args(argv)
    try:
        if not (args.run / "config.yaml").is_file() or not (args.run / "data" / "train.jsonl").is_file():
            raise ValueError(f"{args.run}: not a crystal training run folder (no config.yaml or data/)")
        from apps.crystal.config import CrystalConfig

        cfg = load_yaml(CrystalConfig, args.run / "config.yaml")
        models = run_models(args.run)
        for entry in args.model:
            name, folder = named(entry, "FOLDER")
            if not (Path(folder) / "config.json").is_file():
                raise ValueError(f"--model {entry!r}: expected NAME=FOLDER with a save_pretrained folder")
            models[name] = Path(folder)
        if not models:
            raise ValueError(f"{args.run}: no finished model to evaluate")
        train, heldout = read_crystals(args.run / "data" / "train.jsonl"), read_crystals(args.run / "data" / "heldout.jsonl")
    except (ValueError, ConfigError, OSError) as exc:
        fail(PROG, exc)
    cfg.run_dir = args.run
    cfg.eval.resamples = args.resamples or cfg.eval.resamples
    cfg.eval.level = args.level or cfg.eval.level
    out_dir = args.run / "eval"
    if args.unconditional:  # other requests: their own folder, so no sample set of other settings is reused
        cfg.eval.unconditional = args.unconditional
        out_dir = out_dir / f"unconditional_{args.unconditional}"
    if args.decoding != "run":
        cfg.sample.constrained = args.decoding == "constrained"
        out_dir = out_dir / args.decoding
    out_dir = args.out or out_dir
    quiet_lightning()
    set_threads()
    table = results_table(cfg, Evaluator(cfg, train, heldout), models, args.seeds or cfg.eval.seeds, out_dir,
                          reuse_training=not args.unconditional and args.decoding == "run")
    return table.as_json()


if __name__ == "__main__":
    main()
