"""Train a crystal generator: SFT on Wyckoff texts, then PLaID++ iterative DPO with CHGNet rewards.

    python -m apps.crystal.train --config configs/crystal/plaid.yaml     # embedded default (SmolLM2 + LoRA, CPU)
    python -m apps.crystal.train --config configs/crystal/paper_plaid.yaml  # Qwen2.5-7B, GPU
    python -m apps.crystal.train --help                                  # every option with its default

Stages, each skipped when a rerun finds it complete (a killed run resumes): data (data/*.jsonl),
SFT (sft/model), the SFT model's evaluation (sft/eval: round 0), then pref.rounds rounds through
shared.loop (plaid/round_NNN/: candidates, scored candidates, pairs, DPO fit from the previous
round's model, evaluation with samples and best CIFs). The run folder ends with results.json,
final_model.json (read by eval and infer) and eval/: the results table of SFT and every round
with the run's seed (table.md, results.csv, a PNG per rate), which `python -m apps.crystal.eval`
extends to more seeds.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

from apps.crystal.config import CrystalConfig
from apps.crystal.data import Crystal, DataError, load_crystals, read_crystals, split, synthetic_texts, write_crystals
from apps.crystal.eval import Evaluator, results_table, run_models
from apps.crystal.grammar import format_constraint
from apps.crystal.prompts import prompt
from apps.crystal.reward import score_candidates
from apps.crystal.sampling import frequent_spacegroups, generate, requests
from shared.atomic import write_json, write_text
from shared.kit import finish_run, loop_errors, policy_at, preference_round_fit, run_sft, start_run
from shared.loop import RecipeFunctions, run_loop
from shared.pairs import plaid_pairs, plaid_spacegroup_pairs

PROG = "python -m apps.crystal.train"
CONDITIONS = ("none", "sg", "formula_sg")


def prepare_data(cfg: CrystalConfig) -> tuple[list[Crystal], list[Crystal]]:
    """Return (train, heldout), written once to run_dir/data so a resumed run sees the same split."""
    sft_examples([], cfg.sft.conditions)  # an unknown condition fails before any work
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


class NoPairs(RuntimeError):
    """A round whose samples give no pair to train on (e.g. none parses); the message says what to change."""


def run_plaid(cfg: CrystalConfig, train: list[Crystal], start: Path, evaluator: Evaluator):
    """Run pref.rounds PLaID++ rounds through shared.loop; return the LoopResult."""
    p, s = cfg.pref, cfg.sample
    sgs = frequent_spacegroups(train, s.spacegroups)

    def sample(round, checkpoint, schedule):
        model, tok = policy_at(cfg.model, checkpoint or start, round.seed, lora=False)
        print(f"round {round.index + 1}: sampling at temperature {schedule['temperature']}", flush=True)
        return generate(model, tok, requests(s.unconditional, sgs, s.n), temperature=schedule["temperature"],
                        top_p=s.top_p, max_new_tokens=s.max_new_tokens, batch_size=s.batch_size, seed=round.seed,
                        constraint=format_constraint(tok, s.constrained, cfg.data.max_atoms))

    def score_round(round, candidates):
        scored = score_candidates(candidates, evaluator.service, evaluator.novelty)
        write_json(round.dir / "score_stats.json", evaluator.service.stats())
        return scored

    def build(round, scored):
        uncond = [c for c in scored if c.prompt_id == "unconditional"]
        pairs = plaid_pairs(uncond, round.index + 1, threshold=p.threshold, seed=round.seed,
                            tiered_from_round=p.tiered_from_round)
        if p.spacegroup_pairs:
            pairs += plaid_spacegroup_pairs([c for c in scored if c.metadata.get("requested_sg")],
                                            threshold=p.threshold, seed=round.seed)
        if not pairs:
            parsed = sum(c.scores.get("parsed", 0.0) for c in scored)
            raise NoPairs(f"round {round.index + 1}: no preference pairs from {len(scored)} samples ({parsed:.0f} parsed, "
                          f"{sum('e_hull' in c.scores for c in scored)} with an energy); the model does not yet write enough "
                          f"valid structures to compare (see {round.dir / 'scored.jsonl'} for each sample's reason); "
                          f"start a new run_dir with a longer SFT (sft.steps), more data, or a larger model")
        print(f"round {round.index + 1}: {len(pairs)} pairs from {len(scored)} samples", flush=True)
        return pairs

    def evaluate(round, checkpoint):
        return evaluator(Path(checkpoint), round.dir / "eval", cfg.seed)

    fit = preference_round_fit(cfg.model, p, cfg.trainer, start)
    return run_loop(RecipeFunctions(sample, score_round, build, fit, evaluate), cfg.run_dir / "plaid", p.rounds,
                    schedule={"temperature": s.schedule(p.rounds)}, seed=cfg.seed, initial_checkpoint=start,
                    config={"pref": {k: v for k, v in asdict(p).items() if k != "rounds"},
                            "sample": {k: v for k, v in asdict(s).items() if k != "temperatures"},
                            "reward": asdict(cfg.reward), "eval": asdict(cfg.eval), "train": [c.id for c in train]})


def main(argv: list[str] | None = None) -> dict:
    cfg, (train, heldout) = start_run(CrystalConfig, argv, doc=__doc__, prog=PROG, prepare=prepare_data)
    start = run_sft(cfg.run_dir, cfg.model, cfg.sft, cfg.trainer, cfg.seed,
                    lambda: sft_examples(train, cfg.sft.conditions, synthetic_data(cfg, train)),
                    f"from {len(train)} structures")
    evaluator = Evaluator(cfg, train, heldout)
    rounds = {"0": evaluator(start, cfg.run_dir / "sft" / "eval", cfg.seed)}
    final, stopped = start, None
    if cfg.recipe == "plaid":
        try:
            with loop_errors(PROG):
                result = run_plaid(cfg, train, start, evaluator)
            rounds.update({str(i + 1): m for i, m in enumerate(result.metrics)})
            final = result.checkpoint
        except NoPairs as exc:  # keep what was measured (round 0, this round's samples and scores)
            stopped = str(exc)
    models = {"sft": start, **{k: v for k, v in run_models(cfg.run_dir).items() if k != "sft"}}
    results_table(cfg, evaluator, models, [cfg.seed], cfg.run_dir / "eval")
    summary = finish_run(cfg.run_dir, final, {"recipe": cfg.recipe, "final_model": str(final), "rounds": rounds,
                                              "scoring": evaluator.service.stats(), "stopped": stopped})
    if stopped:
        print(f"{PROG}: stopped: {stopped}", file=sys.stderr)
        raise SystemExit(1)
    return summary


if __name__ == "__main__":
    main()
