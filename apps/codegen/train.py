"""Train a code generator: SFT, then DSTC (self-tested DPO/KTO pairs) or Posterior-GRPO / outcome-only GRPO.

    python -m apps.codegen.train --config configs/codegen/dstc.yaml      # SFT + DSTC with DPO
    python -m apps.codegen.train --config configs/codegen/pgrpo.yaml     # SFT + reasoning RM + Posterior-GRPO
    python -m apps.codegen.train --config configs/codegen/grpo.yaml      # same, outcome-only reward (gate off)
    python -m apps.codegen.train --help                                  # every option with its default

Every stage writes into the run folder and is skipped when a rerun finds it complete, so a killed
run resumes: SFT model (sft/model), DSTC rounds through shared.loop (dstc/round_*/ candidates,
scored candidates, pairs, checkpoint, metrics), the reasoning reward model (reward_model/), GRPO
Lightning checkpoints and samples (grpo/). The final model is a save_pretrained folder named in
final_model.json; `python -m apps.codegen.eval --model RUN_DIR` and `python -m apps.codegen.infer
--model RUN_DIR` read it.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, replace
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback

from apps.codegen.config import CodegenConfig
from apps.codegen.data import Task, load_tasks
from apps.codegen.dstc import build_pairs, sample_candidates, score_candidates
from apps.codegen.evaluation import generate_and_score, summarize
from apps.codegen.prompts import code_prompt, reasoning_prompt, test_prompt
from apps.codegen.reasoning import format_completion, reasoning_pairs
from apps.codegen.reasoning_rm import ReasoningScorer, pair_accuracy, train_reward_model
from apps.codegen.reward import CodeReward
from shared.atomic import write_json
from shared.config import parse_or_exit, save_resolved
from shared.loop import RecipeFunctions, run_loop
from shared.models import ModelSpec, is_complete, load_policy, save_merged, saved_spec
from shared.modules import (
    GroupRLModule,
    PreferenceCollator,
    PreferenceModule,
    SFTCollator,
    SFTModule,
    build_reference,
    encode_pairs,
    encode_sft,
)
from shared.plots import plot_training_curves
from shared.records import Candidate, read_jsonl, write_jsonl
from shared.rewards import OutcomeGate
from shared.sandbox import Limits
from shared.training import build_trainer, fit, make_loader, quiet_lightning

PROG = "python -m apps.codegen.train"


def _limits(cfg: CodegenConfig) -> Limits:
    return Limits(timeout_s=cfg.sandbox.timeout_s, memory_mb=cfg.sandbox.memory_mb)


def _workers(cfg: CodegenConfig) -> int | None:
    return cfg.sandbox.workers or None


def _head(tasks: list[Task], n: int) -> list[Task]:
    return tasks[:n] if n else tasks


def sft_examples(tasks: list[Task], formats: list[str]) -> list[tuple[list[dict], str]]:
    """Return (chat prompt, target) pairs: the reference function, three reference asserts, reasoning then code."""
    out = []
    for t in tasks:
        if "code" in formats:
            out.append((code_prompt(t), "```python\n" + t.reference_function() + "\n```"))
        if "tests" in formats and t.tests:
            out.append((test_prompt(t), "```python\n" + "\n".join(t.tests[:3]) + "\n```"))
        if "reasoning" in formats and t.reasoning:
            out.append((reasoning_prompt(t), format_completion(t)))
    unknown = sorted(set(formats) - {"code", "tests", "reasoning"})
    if unknown:
        raise ValueError(f"sft.formats: unknown format '{unknown[0]}' (known: code, tests, reasoning)")
    return out


def _spec_of(cfg: CodegenConfig, folder: Path | str, seed: int | None = None, lora: bool = True) -> ModelSpec:
    return saved_spec(cfg.model, folder, cfg.seed if seed is None else seed, lora)


def run_sft(cfg: CodegenConfig, train: list[Task]) -> Path:
    """Return the folder of the SFT model: sft.init_from, the base model when sft.steps is 0, or a fresh SFT run."""
    if cfg.sft.init_from:
        return Path(cfg.sft.init_from)
    folder = cfg.run_dir / "sft" / "model"
    if is_complete(folder):
        return folder
    policy, tok = load_policy(cfg.model)
    if cfg.sft.steps > 0:
        data = encode_sft(sft_examples(train, cfg.sft.formats), tok, max_length=2048)
        print(f"SFT: {cfg.sft.steps} steps on {len(data)} examples from {len(train)} tasks", flush=True)
        fit(build_trainer(replace(cfg.trainer, max_steps=cfg.sft.steps, seed=cfg.seed), cfg.run_dir / "sft"),
            SFTModule(policy, lr=cfg.sft.lr), make_loader(data, cfg.sft.batch_size, SFTCollator(tok.pad_token_id), seed=cfg.seed))
        plot_training_curves(cfg.run_dir / "sft")
    return save_merged(policy, tok, folder)


def quick_eval(cfg: CodegenConfig, model, tok, tasks: list[Task], mode: str) -> dict[str, float]:
    """Held-out greedy pass@1 in the given prompt mode."""
    results = generate_and_score(model, tok, tasks, mode=mode, max_new_tokens=cfg.eval.max_new_tokens,
                                 batch_size=cfg.eval.batch_size, limits=_limits(cfg), workers=_workers(cfg), seed=cfg.seed)
    return summarize(results)


def run_dstc(cfg: CodegenConfig, train: list[Task], heldout: list[Task], start: Path) -> tuple[Path, dict]:
    """Run cfg.dstc.rounds DSTC rounds through shared.loop; return the last round's model folder and its held-out metrics."""
    d, s = cfg.dstc, cfg.sample

    def policy_at(checkpoint: Path | None, seed: int, lora: bool):
        return load_policy(_spec_of(cfg, start if checkpoint is None else checkpoint, seed, lora))

    def tasks_for(round) -> list[Task]:
        n = d.tasks_per_round or len(train)
        offset = (round.index * n) % len(train)
        return (train[offset:] + train[:offset])[:n]

    def reused(round, name: str) -> list[Candidate]:
        return read_jsonl(Path(d.reuse_samples_from) / "dstc" / round.dir.name / name, Candidate)

    def sample(round, checkpoint, schedule):
        if d.reuse_samples_from:
            return reused(round, "candidates.jsonl")
        model, tok = policy_at(checkpoint, round.seed, lora=False)
        tasks = tasks_for(round)
        print(f"DSTC round {round.index}: sampling {d.codes} codes and {d.test_samples} test sets for {len(tasks)} tasks",
              flush=True)
        return sample_candidates(model, tok, tasks, codes=d.codes, test_samples=d.test_samples,
                                 temperature=schedule.get("temperature", s.temperature), top_p=s.top_p,
                                 max_new_tokens=s.max_new_tokens, batch_size=s.batch_size, seed=round.seed)

    def score(round, candidates):
        if d.reuse_samples_from:
            return reused(round, "scored.jsonl")
        return score_candidates(train, candidates, max_tests=d.max_tests, limits=_limits(cfg), workers=_workers(cfg))

    def build(round, scored):
        pairs = build_pairs(scored)
        right = sum(p.metadata["chosen_hidden_outcome"] for p in pairs)
        print(f"DSTC round {round.index}: {len(pairs)} pairs; chosen code passes the hidden tests in {right:.0f}", flush=True)
        return pairs

    def fit_round(round, pairs, schedule, init_checkpoint):
        policy, tok = policy_at(init_checkpoint, round.seed, lora=True)
        reference = build_reference("adapter_disabled" if cfg.model.uses_lora() else "frozen_copy", policy)
        module = PreferenceModule(policy, reference, loss=d.loss, loss_kwargs={"beta": d.beta}, lr=d.lr)
        fit(build_trainer(replace(cfg.trainer, max_steps=d.steps, seed=round.seed), round.dir / "fit"), module,
            make_loader(encode_pairs(pairs, tok, max_length=2048), d.batch_size, PreferenceCollator(tok.pad_token_id),
                        seed=round.seed))
        plot_training_curves(round.dir / "fit")
        return save_merged(policy, tok, round.checkpoint_dir / "model")

    def evaluate(round, checkpoint):
        model, tok = policy_at(checkpoint, round.seed, lora=False)
        return quick_eval(cfg, model, tok, heldout, "code")

    result = run_loop(RecipeFunctions(sample, score, build, fit_round, evaluate), cfg.run_dir / "dstc", d.rounds,
                      seed=cfg.seed, initial_checkpoint=start,
                      config={"dstc": asdict(d), "sample": asdict(s), "train": [t.task_id for t in train]})
    return result.checkpoint, result.metrics[-1]


def run_grpo(cfg: CodegenConfig, train: list[Task], heldout: list[Task], start: Path) -> Path:
    """Train (Posterior-)GRPO from the SFT model; return the final model folder."""
    g, s = cfg.grpo, cfg.sample
    folder = cfg.run_dir / "grpo" / "model"
    if is_complete(folder):
        return folder
    scorer = None
    if g.posterior:
        rm_pairs = reasoning_pairs(train, cfg.reward_model.pairs_per_task, cfg.seed)
        write_jsonl(cfg.run_dir / "reward_model" / "pairs.jsonl", rm_pairs)
        print(f"reasoning reward model: {cfg.reward_model.steps} steps on {len(rm_pairs)} optimized/degraded pairs",
              flush=True)
        rm_folder = train_reward_model(_spec_of(cfg, start), rm_pairs, cfg.run_dir / "reward_model",
                                       steps=cfg.reward_model.steps, lr=cfg.reward_model.lr,
                                       batch_size=cfg.reward_model.batch_size, lora_r=cfg.reward_model.lora_r,
                                       trainer=cfg.trainer, seed=cfg.seed)
        scorer = ReasoningScorer(rm_folder, _spec_of(cfg, start))
        accuracy = pair_accuracy(scorer, reasoning_pairs(heldout, 1, cfg.seed + 1))
        write_json(rm_folder / "heldout_accuracy.json", accuracy)
        print(f"reasoning reward model: held-out pair accuracy {accuracy['accuracy']:.3f} "
              + " ".join(f"{k.split('/')[1]} {v:.2f}" for k, v in accuracy.items() if "/" in k), flush=True)
    reward = OutcomeGate(CodeReward(train, _limits(cfg), workers=_workers(cfg), reasoning=True, reasoning_scorer=scorer),
                         gate=g.posterior)
    policy, tok = load_policy(_spec_of(cfg, start))
    reference = None
    if g.beta > 0:
        reference = build_reference("adapter_disabled" if cfg.model.uses_lora() else "frozen_copy", policy)
    module = GroupRLModule(policy, tok, reward, reference, loss=g.loss, loss_kwargs={"beta": g.beta},
                           group_size=g.group_size, max_new_tokens=s.max_new_tokens, temperature=s.temperature,
                           top_p=s.top_p, lr=g.lr)
    items = [{"prompt": reasoning_prompt(t), "context": {"task_id": t.task_id}} for t in train]
    name = "Posterior-GRPO" if g.posterior else "GRPO (outcome only)"
    print(f"{name}: {g.steps} steps, {g.prompts_per_step} tasks x {g.group_size} completions per step", flush=True)
    samples = SampleWriter(cfg.run_dir / "grpo" / "samples")
    trainer_args = replace(cfg.trainer, max_steps=g.steps, seed=cfg.seed,
                           checkpoint_every_n_steps=cfg.trainer.checkpoint_every_n_steps or 10)
    fit(build_trainer(trainer_args, cfg.run_dir / "grpo", callbacks=[samples]), module,
        make_loader(items, g.prompts_per_step, list, seed=cfg.seed))
    plot_training_curves(cfg.run_dir / "grpo")
    return save_merged(policy, tok, folder)


class SampleWriter(Callback):
    """Write each GRPO step's completions, rewards and advantages as JSONL (nothing generated is lost)."""

    def __init__(self, folder: Path):
        self.folder = folder

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        write_jsonl(self.folder / f"step_{trainer.global_step:05d}.jsonl", [
            {"prompt": s["prompt"], "completion": s["completion"], "reward": s["reward"], "advantage": s["advantage"]}
            for s in pl_module.last_samples])


def main(argv: list[str] | None = None) -> dict:
    cfg = parse_or_exit(CodegenConfig, argv, description=__doc__, prog=PROG)
    quiet_lightning()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    try:
        train = _head(load_tasks(cfg.data.train), cfg.data.max_train_tasks)
        heldout = _head(load_tasks(cfg.data.heldout), cfg.data.max_heldout_tasks)
        sft_examples(train, cfg.sft.formats)
    except (ValueError, OSError) as exc:  # a malformed or missing task file, an unknown format: one line, no traceback
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    save_resolved(cfg, cfg.run_dir)
    start = run_sft(cfg, train)
    mode = "reasoning" if cfg.recipe == "grpo" else "code"
    if cfg.recipe == "dstc":  # the loop's last evaluate step already scored the final model
        final, metrics = run_dstc(cfg, train, heldout, start)
    else:
        final = start if cfg.recipe == "sft" else run_grpo(cfg, train, heldout, start)
        metrics = quick_eval(cfg, *load_policy(_spec_of(cfg, final, lora=False)), heldout, mode)
    summary = {"recipe": cfg.recipe, "final_model": str(final), "mode": mode, "heldout": metrics}
    write_json(cfg.run_dir / "final_model.json", {"path": str(Path(final).resolve()), "mode": mode})
    write_json(cfg.run_dir / "results.json", summary)
    print(f"held-out pass@1 ({mode} prompts, greedy, {int(metrics['tasks'])} tasks): {metrics['pass@1']:.3f} "
          f"[{metrics['pass@1_low']:.3f}, {metrics['pass@1_high']:.3f}]; model: {final}", flush=True)
    return summary


if __name__ == "__main__":
    main()
