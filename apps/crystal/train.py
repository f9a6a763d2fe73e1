"""Train a crystal generator: SFT on Wyckoff texts, then PLaID++ iterative DPO with CHGNet rewards.

    python -m apps.crystal.train --config configs/crystal/plaid.yaml     # embedded default (SmolLM2 + LoRA, CPU)
    python -m apps.crystal.train --config configs/crystal/paper_plaid.yaml  # Qwen2.5-7B, GPU
    python -m apps.crystal.train --help                                  # every option with its default

Stages, each skipped when a rerun finds it complete (a killed run resumes): data (data/*.jsonl),
SFT (sft/model), the SFT model's evaluation (sft/eval: round 0), then dpo.rounds rounds through
shared.loop (plaid/round_NNN/: candidates, scored candidates, pairs, DPO fit from the previous
round's model, evaluation with samples and best CIFs). The run folder ends with results.json,
rates_by_round.csv, sun_rate_by_round.png and final_model.json (read by eval and infer).
"""

from __future__ import annotations

import json
import os
import random
import sys
from dataclasses import asdict, replace
from pathlib import Path

import torch

from apps.crystal.config import CrystalConfig
from apps.crystal.data import Crystal, DataError, load_crystals, read_crystals, split, synthetic_texts, write_crystals
from apps.crystal.physics import EnergySettings
from apps.crystal.pipeline import (
    evaluate_model,
    evaluation_requests,
    format_constraint,
    frequent_spacegroups,
    generate,
    heldout_spacegroups,
    score,
)
from apps.crystal.prompts import prompt
from apps.crystal.report import plot_rates, write_rates_csv
from apps.crystal.reward import NoveltyChecker, ScoringService
from shared.atomic import write_json, write_text
from shared.config import parse_or_exit, save_resolved
from shared.loop import RecipeFunctions, run_loop
from shared.models import ModelSpec, is_complete, load_policy, save_merged, saved_spec
from shared.modules import PreferenceCollator, PreferenceModule, SFTCollator, SFTModule, build_reference, encode_pairs, encode_sft
from shared.pairs import plaid_pairs, plaid_spacegroup_pairs
from shared.plots import plot_training_curves
from shared.training import build_trainer, fit, make_loader, quiet_lightning

PROG = "python -m apps.crystal.train"
CONDITIONS = ("none", "sg", "formula_sg")


def prepare_data(cfg: CrystalConfig) -> tuple[list[Crystal], list[Crystal]]:
    """Return (train, heldout), written once to run_dir/data so a resumed run sees the same split."""
    folder = cfg.run_dir / "data"
    if (folder / "heldout.jsonl").is_file():
        return read_crystals(folder / "train.jsonl"), read_crystals(folder / "heldout.jsonl")
    crystals, dropped = load_crystals(cfg.data.source, cfg.data.max_atoms)
    if len(crystals) < 2:
        raise DataError(f"{cfg.data.source}: {len(crystals)} usable structures (dropped: {dropped})")
    train, heldout = split(crystals, cfg.data.heldout_fraction, cfg.seed)
    if cfg.data.max_train:
        train = train[:cfg.data.max_train]
    write_crystals(folder / "train.jsonl", train)
    write_crystals(folder / "heldout.jsonl", heldout)
    write_json(folder / "summary.json", {"source": cfg.data.source, "kept": len(crystals), "dropped": dropped,
                                         "train": len(train), "heldout": len(heldout)})
    print(f"data: {len(crystals)} structures ({len(train)} train, {len(heldout)} held out); dropped {dropped}", flush=True)
    return train, heldout


def sft_examples(train: list[Crystal], conditions: list[str],
                 synthetic: list[tuple[str, Crystal]] = ()) -> list[tuple[list[dict], str]]:
    """Return (chat prompt, Wyckoff text) pairs, one per structure (real, then synthetic) and condition form."""
    unknown = sorted(set(conditions) - set(CONDITIONS))
    if unknown:
        raise ValueError(f"sft.conditions: unknown condition '{unknown[0]}' (known: {', '.join(CONDITIONS)})")
    out = []
    for text, c in [(c.text, c) for c in train] + list(synthetic):
        for cond in conditions:
            formula = c.formula if cond == "formula_sg" else None
            sg = c.spacegroup if cond in ("sg", "formula_sg") else None
            out.append((prompt(formula, sg), text))
    return out


def synthetic_data(cfg: CrystalConfig, train: list[Crystal]) -> list[tuple[str, Crystal]]:
    """The SFT format data (data.synthetic_per_structure), written once to data/synthetic.jsonl."""
    path = cfg.run_dir / "data" / "synthetic.jsonl"
    if not cfg.data.synthetic_per_structure:
        return []
    by_id = {c.id: c for c in train}
    if path.is_file():
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return [(r["text"], by_id[r["source"]]) for r in rows]
    out = synthetic_texts(train, cfg.data.synthetic_per_structure, cfg.seed)
    write_text(path, "".join(json.dumps({"text": t, "source": c.id}) + "\n" for t, c in out))
    print(f"data: {len(out)} synthetic pyxtal crystals for SFT", flush=True)
    return out


def _spec_of(cfg: CrystalConfig, folder: Path | str, seed: int | None = None, lora: bool = True) -> ModelSpec:
    return saved_spec(cfg.model, folder, cfg.seed if seed is None else seed, lora)


def run_sft(cfg: CrystalConfig, train: list[Crystal]) -> Path:
    """Return the SFT model folder: sft.init_from, or a fresh SFT run (skipped when complete)."""
    if cfg.sft.init_from:
        return Path(cfg.sft.init_from)
    folder = cfg.run_dir / "sft" / "model"
    if is_complete(folder):
        return folder
    policy, tok = load_policy(cfg.model)
    if cfg.sft.steps > 0:
        data = encode_sft(sft_examples(train, cfg.sft.conditions, synthetic_data(cfg, train)), tok, max_length=2048)
        print(f"SFT: {cfg.sft.steps} steps on {len(data)} examples from {len(train)} structures", flush=True)
        fit(build_trainer(replace(cfg.trainer, max_steps=cfg.sft.steps, seed=cfg.seed), cfg.run_dir / "sft"),
            SFTModule(policy, lr=cfg.sft.lr), make_loader(data, cfg.sft.batch_size, SFTCollator(tok.pad_token_id), seed=cfg.seed))
        plot_training_curves(cfg.run_dir / "sft")
    return save_merged(policy, tok, folder)


def scoring_service(cfg: CrystalConfig, train: list[Crystal]) -> ScoringService:
    settings = EnergySettings(relax=cfg.reward.relax, steps=cfg.reward.relax_steps, fmax=cfg.reward.fmax)
    cache = Path(cfg.reward.cache_dir) if cfg.reward.cache_dir else cfg.run_dir.parent / "cache"
    return ScoringService(settings, [(c.id, c.structure) for c in train], cache)


def temperatures(cfg: CrystalConfig) -> list[float]:
    """One temperature per round: dpo.temperatures cut to dpo.rounds, its last value repeated when shorter."""
    t = list(cfg.dpo.temperatures) or [0.7]
    return (t + [t[-1]] * cfg.dpo.rounds)[:cfg.dpo.rounds]


class Evaluator:
    """Evaluate a model folder into a folder (skipped when that folder has its summary); one per run."""

    def __init__(self, cfg: CrystalConfig, heldout: list[Crystal], service: ScoringService, novelty: NoveltyChecker):
        e = cfg.eval
        self.cfg, self.service, self.novelty = cfg, service, novelty
        self.requests = evaluation_requests(e.unconditional, heldout_spacegroups(heldout, e.spacegroups, cfg.seed),
                                            e.per_spacegroup)

    def __call__(self, model_folder: Path, out_dir: Path, seed: int) -> dict[str, float]:
        done = out_dir / "summary.json"
        if done.is_file():
            return json.loads(done.read_text())
        cfg = self.cfg
        model, tok = load_policy(_spec_of(cfg, model_folder, seed, lora=False))
        summary = evaluate_model(model, tok, requests=self.requests, temperature=cfg.eval.temperature,
                                 top_p=cfg.sample.top_p, max_new_tokens=cfg.sample.max_new_tokens,
                                 batch_size=cfg.sample.batch_size, seed=seed, service=self.service,
                                 novelty=self.novelty, out_dir=out_dir, best_cifs=cfg.eval.best_cifs,
                                 constraint=format_constraint(tok, cfg.sample.constrained, cfg.data.max_atoms))
        write_json(done, summary)
        return summary


class NoPairs(RuntimeError):
    """A round whose samples give no pair to train on (e.g. none parses); the message says what to change."""


def run_plaid(cfg: CrystalConfig, train: list[Crystal], start: Path, service: ScoringService, novelty: NoveltyChecker,
              evaluator: Evaluator):
    """Run dpo.rounds PLaID++ rounds through shared.loop; return the LoopResult."""
    d, s = cfg.dpo, cfg.sample
    sgs = frequent_spacegroups(train, s.spacegroups)

    def sample(round, checkpoint, schedule):
        model, tok = load_policy(_spec_of(cfg, start if checkpoint is None else checkpoint, round.seed, lora=False))
        requests = [((None, None), s.unconditional)] + [((None, sg), s.per_spacegroup) for sg in sgs]
        print(f"round {round.index + 1}: sampling at temperature {schedule['temperature']}", flush=True)
        return generate(model, tok, requests, temperature=schedule["temperature"], top_p=s.top_p,
                        max_new_tokens=s.max_new_tokens, batch_size=s.batch_size, seed=round.seed,
                        constraint=format_constraint(tok, s.constrained, cfg.data.max_atoms))

    def score_round(round, candidates):
        scored = score(candidates, service, novelty)
        write_json(round.dir / "score_stats.json", service.stats())
        return scored

    def build(round, scored):
        uncond = [c for c in scored if c.prompt_id == "unconditional"]
        pairs = plaid_pairs(uncond, round.index + 1, threshold=d.threshold, seed=round.seed,
                            tiered_from_round=d.tiered_from_round)
        if d.spacegroup_pairs:
            pairs += plaid_spacegroup_pairs([c for c in scored if c.metadata.get("requested_sg")],
                                            threshold=d.threshold, seed=round.seed)
        if not pairs:
            parsed = sum(c.scores.get("parsed", 0.0) for c in scored)
            raise NoPairs(f"round {round.index + 1}: no preference pairs from {len(scored)} samples ({parsed:.0f} parsed, "
                          f"{sum('e_hull' in c.scores for c in scored)} with an energy); the model does not yet write enough "
                          f"valid structures to compare (see {round.dir / 'scored.jsonl'} for each sample's reason); "
                          f"start a new run_dir with a longer SFT (sft.steps), more data, or a larger model")
        if d.max_pairs and len(pairs) > d.max_pairs:
            pairs = random.Random(round.seed).sample(pairs, d.max_pairs)
        print(f"round {round.index + 1}: {len(pairs)} pairs from {len(scored)} samples", flush=True)
        return pairs

    def fit_round(round, pairs, schedule, init_checkpoint):
        policy, tok = load_policy(_spec_of(cfg, start if init_checkpoint is None else init_checkpoint, round.seed))
        reference = build_reference("adapter_disabled" if cfg.model.uses_lora() else "frozen_copy", policy)
        module = PreferenceModule(policy, reference, loss=d.loss, loss_kwargs={"beta": d.beta}, lr=d.lr)
        fit(build_trainer(replace(cfg.trainer, max_steps=d.steps, seed=round.seed), round.dir / "fit"), module,
            make_loader(encode_pairs(pairs, tok, max_length=2048), d.batch_size, PreferenceCollator(tok.pad_token_id),
                        seed=round.seed))
        plot_training_curves(round.dir / "fit")
        return save_merged(policy, tok, round.checkpoint_dir / "model")

    def evaluate(round, checkpoint):
        return evaluator(Path(checkpoint), round.dir / "eval", cfg.seed)

    return run_loop(RecipeFunctions(sample, score_round, build, fit_round, evaluate), cfg.run_dir / "plaid", d.rounds,
                    schedule={"temperature": temperatures(cfg)}, seed=cfg.seed, initial_checkpoint=start,
                    config={"dpo": {k: v for k, v in asdict(d).items() if k not in ("rounds", "temperatures")},
                            "sample": asdict(s), "reward": asdict(cfg.reward), "eval": asdict(cfg.eval),
                            "train": [c.id for c in train]})


def main(argv: list[str] | None = None) -> dict:
    cfg = parse_or_exit(CrystalConfig, argv, description=__doc__, prog=PROG)
    quiet_lightning()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    try:
        train, heldout = prepare_data(cfg)
        sft_examples(train[:1], cfg.sft.conditions)
    except (ValueError, OSError) as exc:  # an unreadable CIF, an empty folder, an unknown condition: one line
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    save_resolved(cfg, cfg.run_dir)
    start = run_sft(cfg, train)
    service = scoring_service(cfg, train)
    novelty = NoveltyChecker([c.structure for c in train])
    evaluator = Evaluator(cfg, heldout, service, novelty)
    rows = [(0, evaluator(start, cfg.run_dir / "sft" / "eval", cfg.seed))]
    final, stopped = start, None
    if cfg.recipe == "plaid":
        try:
            result = run_plaid(cfg, train, start, service, novelty, evaluator)
            rows += [(i + 1, m) for i, m in enumerate(result.metrics)]
            final = result.checkpoint
        except NoPairs as exc:  # keep what was measured (round 0, this round's samples and scores)
            stopped = str(exc)
    write_rates_csv(cfg.run_dir / "rates_by_round.csv", rows)
    plot_rates(cfg.run_dir / "sun_rate_by_round.png", rows)
    summary = {"recipe": cfg.recipe, "final_model": str(final), "rounds": {str(r): m for r, m in rows},
               "scoring": service.stats(), "stopped": stopped}
    write_json(cfg.run_dir / "final_model.json", {"path": str(Path(final).resolve())})
    write_json(cfg.run_dir / "results.json", summary)
    for r, m in rows:
        print(f"round {r}: valid {m['valid']:.3f}  stable {m['stable']:.3f}  metastable {m['metastable']:.3f}  "
              f"S.U.N. {m['sun']:.3f} [{m['sun_low']:.3f}, {m['sun_high']:.3f}]  sg match {m.get('sg_match', float('nan')):.3f}",
              flush=True)
    if stopped:
        print(f"{PROG}: stopped: {stopped}", file=sys.stderr)
        raise SystemExit(1)
    return summary


if __name__ == "__main__":
    main()
