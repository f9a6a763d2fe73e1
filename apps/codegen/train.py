"""Train a code generator: SFT, then DSTC (self-tested DPO/KTO pairs) or Posterior-GRPO / outcome-only GRPO.

    python -m apps.codegen.train --config configs/codegen/dstc.yaml      # SFT + DSTC with DPO
    python -m apps.codegen.train --config configs/codegen/pgrpo.yaml     # SFT + reasoning RM + Posterior-GRPO
    python -m apps.codegen.train --config configs/codegen/grpo.yaml      # same, outcome-only reward (gate off)
    python -m apps.codegen.train --help                                  # every option with its default

Every stage writes into the run folder and is skipped when a rerun finds it complete, so a killed
run resumes: SFT model (sft/model), DSTC rounds through shared.loop (dstc/round_*/ candidates,
scored candidates, pairs, checkpoint, metrics), the reasoning reward model (reward_model/), GRPO
Lightning checkpoints and samples (grpo/). The final model is a save_pretrained folder named in
final_model.json; `python -m apps.codegen.eval --model NAME=RUN_DIR` and `python -m apps.codegen.infer
--model RUN_DIR` read it.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from apps.codegen.config import CodegenConfig
from apps.codegen.data import Task, load_tasks
from apps.codegen.dstc import build_pairs, sample_candidates, score_candidates
from apps.codegen.eval import generate_and_score, summarize
from apps.codegen.prompts import code_prompt, reasoning_prompt, test_prompt
from apps.codegen.reasoning import format_completion, reasoning_pairs
from apps.codegen.reasoning_rm import ReasoningScorer, pair_accuracy, train_reward_model
from apps.codegen.reward import CodeReward
from shared.atomic import write_json
from shared.kit import finish_run, loop_errors, policy_at, preference_round_fit, run_group_rl, run_sft, start_run
from shared.loop import RecipeFunctions, run_loop
from shared.models import ModelSpec, is_complete, saved_spec
from shared.records import Candidate, read_jsonl, write_jsonl
from shared.rewards import OutcomeGate

PROG = "python -m apps.codegen.train"
FORMATS = ("code", "tests", "reasoning")


def _head(tasks: list[Task], n: int) -> list[Task]:
    return tasks[:n] if n else tasks


def sft_examples(tasks: list[Task], formats: list[str]) -> list[tuple[list[dict], str]]:
    """Return (chat prompt, target) pairs: the reference function, three reference asserts, reasoning then code."""
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"sft.formats: unknown format '{unknown[0]}' (known: {', '.join(FORMATS)})")
    out = []
    for t in tasks:
        if "code" in formats:
            out.append((code_prompt(t), "```python\n" + t.reference_function() + "\n```"))
        if "tests" in formats and t.tests:
            out.append((test_prompt(t), "```python\n" + "\n".join(t.tests[:3]) + "\n```"))
        if "reasoning" in formats and t.reasoning:
            out.append((reasoning_prompt(t), format_completion(t)))
    return out


def quick_eval(cfg: CodegenConfig, model, tok, tasks: list[Task], mode: str) -> dict[str, float]:
    """Held-out greedy pass@1 in the given prompt mode."""
    results = generate_and_score(model, tok, tasks, mode=mode, max_new_tokens=cfg.eval.max_new_tokens,
                                 batch_size=cfg.eval.batch_size, limits=cfg.sandbox.limits(),
                                 workers=cfg.sandbox.worker_count(), seed=cfg.seed)
    return summarize(results)


def run_dstc(cfg: CodegenConfig, train: list[Task], heldout: list[Task], start: Path) -> tuple[Path, dict]:
    """Run cfg.pref.rounds DSTC rounds through shared.loop; return the last round's model folder and its held-out metrics."""
    d, s = cfg.dstc, cfg.sample

    def tasks_for(round) -> list[Task]:
        n = d.tasks_per_round or len(train)
        offset = (round.index * n) % len(train)
        return (train[offset:] + train[:offset])[:n]

    def reused(round, name: str) -> list[Candidate]:
        return read_jsonl(Path(d.reuse_samples_from) / "dstc" / round.dir.name / name, Candidate)

    def sample(round, checkpoint, schedule):
        if d.reuse_samples_from:
            return reused(round, "candidates.jsonl")
        model, tok = policy_at(cfg.model, checkpoint or start, round.seed, lora=False)
        tasks = tasks_for(round)
        print(f"DSTC round {round.index}: sampling {s.n} codes and {d.test_samples} test sets for {len(tasks)} tasks",
              flush=True)
        return sample_candidates(model, tok, tasks, codes=s.n, test_samples=d.test_samples,
                                 temperature=schedule["temperature"], top_p=s.top_p,
                                 max_new_tokens=s.max_new_tokens, batch_size=s.batch_size, seed=round.seed)

    def score(round, candidates):
        if d.reuse_samples_from:
            return reused(round, "scored.jsonl")
        return score_candidates(train, candidates, max_tests=d.max_tests, limits=cfg.sandbox.limits(),
                                workers=cfg.sandbox.worker_count())

    def build(round, scored):
        pairs = build_pairs(scored)
        right = sum(p.metadata["chosen_hidden_outcome"] for p in pairs)
        print(f"DSTC round {round.index}: {len(pairs)} pairs; chosen code passes the hidden tests in {right:.0f}", flush=True)
        return pairs

    def evaluate(round, checkpoint):
        return quick_eval(cfg, *policy_at(cfg.model, checkpoint, round.seed, lora=False), heldout, "code")

    fit = preference_round_fit(cfg.model, cfg.pref, cfg.trainer, start)
    result = run_loop(RecipeFunctions(sample, score, build, fit, evaluate), cfg.run_dir / "dstc", cfg.pref.rounds,
                      schedule={"temperature": s.schedule(cfg.pref.rounds)}, seed=cfg.seed, initial_checkpoint=start,
                      config={"dstc": asdict(d), "pref": {k: v for k, v in asdict(cfg.pref).items() if k != "rounds"},
                              "sample": {k: v for k, v in asdict(s).items() if k != "temperatures"},
                              "train": [t.task_id for t in train]})
    return result.checkpoint, result.metrics[-1]


def _spec_of(cfg: CodegenConfig, folder: Path | str) -> ModelSpec:
    return saved_spec(cfg.model, folder, cfg.seed)


def run_grpo(cfg: CodegenConfig, train: list[Task], heldout: list[Task], start: Path) -> Path:
    """Train (Posterior-)GRPO from the SFT model; return the final model folder."""
    g = cfg.grpo
    if is_complete(cfg.run_dir / "grpo" / "model"):  # also skips loading and re-checking the reward model
        return cfg.run_dir / "grpo" / "model"
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
    reward = OutcomeGate(CodeReward(train, cfg.sandbox.limits(), workers=cfg.sandbox.worker_count(), reasoning=True,
                                    reasoning_scorer=scorer), gate=g.posterior)
    items = [{"prompt": reasoning_prompt(t), "context": {"task_id": t.task_id}} for t in train]
    name = "Posterior-GRPO" if g.posterior else "GRPO (outcome only)"
    print(f"{name}: {g.steps} steps, {g.prompts_per_step} tasks x {g.group_size} completions per step", flush=True)
    return run_group_rl(cfg.run_dir / "grpo", *policy_at(cfg.model, start, cfg.seed, lora=True), reward, items, g,
                        cfg.sample, cfg.model, cfg.trainer, cfg.seed)


def load_data(cfg: CodegenConfig) -> tuple[list[Task], list[Task]]:
    """The training and held-out tasks; a malformed task file or an unknown SFT format raises one line."""
    train = _head(load_tasks(cfg.data.train), cfg.data.max_train_tasks)
    heldout = _head(load_tasks(cfg.data.heldout), cfg.data.max_heldout_tasks)
    sft_examples(train[:1], cfg.sft.formats)
    return train, heldout


def main(argv: list[str] | None = None) -> dict:
    cfg, (train, heldout) = start_run(CodegenConfig, argv, doc=__doc__, prog=PROG, prepare=load_data)
    start = run_sft(cfg.run_dir, cfg.model, cfg.sft, cfg.trainer, cfg.seed, lambda: sft_examples(train, cfg.sft.formats),
                    f"from {len(train)} tasks")
    mode = "reasoning" if cfg.recipe == "grpo" else "code"
    if cfg.recipe == "dstc":  # the loop's last evaluate step already scored the final model
        with loop_errors(PROG):
            final, metrics = run_dstc(cfg, train, heldout, start)
    else:
        final = start if cfg.recipe == "sft" else run_grpo(cfg, train, heldout, start)
        metrics = quick_eval(cfg, *policy_at(cfg.model, final, cfg.seed, lora=False), heldout, mode)
    print(f"held-out pass@1 ({mode} prompts, greedy, {int(metrics['tasks'])} tasks): {metrics['pass@1']:.3f} "
          f"[{metrics['pass@1_low']:.3f}, {metrics['pass@1_high']:.3f}]; model: {final}", flush=True)
    return finish_run(cfg.run_dir, final, {"recipe": cfg.recipe, "final_model": str(final), "mode": mode,
                                           "heldout": metrics}, mode=mode)


if __name__ == "__main__":
    main()
