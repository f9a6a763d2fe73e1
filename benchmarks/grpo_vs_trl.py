"""Online group RL (GRPO) throughput and memory: aligned-generators against TRL 1.16.0, side by side.

    python benchmarks/grpo_vs_trl.py            # full run (about 10 minutes on 2 CPU cores)
    python benchmarks/grpo_vs_trl.py --quick    # CI size, a few minutes

Both sides train deep copies of one tiny Llama-style model (SmolLM2's architecture at 4 layers x
256, byte vocabulary; one saved folder; the reference is an unperturbed copy, so the KL term is
not zero) online: each step takes `prompts_per_step` prompts
in file order, samples `group_size` completions per prompt with transformers' sampling (no vLLM),
scores them with the same reward function, and makes one update with the `grpo` loss (per-sequence
token mean, TRL's std convention: Bessel std + 1e-4 within the group), k3 KL with beta 0.04,
clipping epsilon 0.2, temperature 1.0, top-p 1.0, fp32, AdamW (torch), constant learning rate 1e-6,
gradient clipping 1.0, dropout off. TRL's other settings are its defaults, written out.
Ours is `GroupRLModule` under Lightning with its defaults.

Shapes: *short* (prompts of 16-64 tokens, completions up to 64) and *long* (prompts of 384-512
tokens, completions up to 16: the prompt's cost dominates).

Before any timing, a correctness gate: on the same fixed prompts, completions and rewards, both
sides' loss must agree to 1e-5, else the script exits with status 1. Each side runs in its own
process; repeats alternate which side goes first; the first `warmup` steps of every run are
dropped; a step's time is the interval between consecutive step ends (generation, reward and
update all count). Reported per shape: median step time, steps/s, generated tokens/s, the share
of step time spent generating, and peak RSS. The last line printed is one JSON object with every
ours/TRL ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import build_models, finish, peak_rss_mb, rss_mb, run_worker_process  # noqa: E402

GATE_ATOL = 1e-5
LETTERS = "abcdefghijklmnopqrstuvwxyz "
SHAPES = {"short": ((16, 64), 64), "long": ((384, 512), 16)}  # (prompt length range, max completion length)
BETA, LR, EPSILON = 0.04, 1e-6, 0.2


def vowel_share(texts: list[str]) -> list[float]:
    """The reward both sides use: the share of vowels among a completion's characters (0 when empty)."""
    return [sum(ch in "aeiou" for ch in t) / len(t) if t else 0.0 for t in texts]


def make_data(shape: str, n: int, group_size: int, prompts_per_step: int, seed: int) -> dict:
    """Return prompts for training and, for the gate, fixed completion token ids for the first step's prompts."""
    from shared.models import byte_tokenizer

    tokenizer = byte_tokenizer()
    rng = random.Random(seed)
    (low, high), max_completion = SHAPES[shape]
    prompts = ["".join(rng.choice(LETTERS) for _ in range(rng.randint(low, high))) for _ in range(n)]
    # letters, then EOS for some (others are cut off at their length)
    fixed = []
    for _ in range(prompts_per_step * group_size):
        ids = tokenizer(["".join(rng.choice(LETTERS) for _ in range(rng.randint(1, max_completion - 1)))],
                        add_special_tokens=False)["input_ids"][0]
        fixed.append(ids + [tokenizer.eos_token_id] if rng.random() < 0.5 else ids)
    return {"prompts": prompts, "max_completion": max_completion, "fixed_completions": fixed}


# ---------------------------------------------------------------------------- workers

def worker_ours(model_dir: str, ref_dir: str, data: dict, args) -> dict:
    """Train with our GroupRLModule under Lightning; return step-end times, phase times and memory."""
    import lightning as L
    import torch
    from torch.utils.data import DataLoader
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from shared.modules import GroupRLModule, build_reference
    from shared.modules.data import encode_prompt
    from shared.training import TrainerArgs, build_trainer, quiet_lightning

    class VowelReward:
        aspects = ("total",)

        def __call__(self, prompts, outputs, contexts=None):
            return [{"total": r, "valid": 1.0} for r in vowel_share(list(outputs))]

    quiet_lightning()
    tok = AutoTokenizer.from_pretrained(model_dir)
    policy = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    reference = build_reference("frozen_copy", AutoModelForCausalLM.from_pretrained(ref_dir, dtype=torch.float32))
    module = GroupRLModule(policy, tok, VowelReward(), reference, loss="grpo",
                           loss_kwargs={"beta": BETA, "epsilon_low": EPSILON, "epsilon_high": EPSILON},
                           group_size=args.group_size, max_new_tokens=data["max_completion"], temperature=1.0,
                           top_p=1.0, lr=LR, weight_decay=0.0)
    g, p = args.group_size, args.prompts_per_step
    gate_prompts = data["prompts"][:p]
    fixed = data["fixed_completions"]
    texts = tok.batch_decode(fixed, skip_special_tokens=True)
    rewards = torch.tensor(vowel_share(texts), dtype=torch.float32)
    with torch.no_grad():
        prompt_ids = [encode_prompt(tok, q) for q in gate_prompts for _ in range(g)]
        gate_loss = module.rollout_loss(prompt_ids, fixed, rewards)[0].loss.item()

    timing = {"generate": [], "tokens": []}
    sample = module.sample

    def timed_sample(prompts):
        start = time.perf_counter()
        out = sample(prompts)
        timing["generate"].append(time.perf_counter() - start)
        timing["tokens"].append(sum(map(len, out[1])))
        return out

    module.sample = timed_sample
    stamps: list[float] = []

    class Stamp(L.Callback):
        def on_train_batch_end(self, *a):
            stamps.append(time.perf_counter())

    rss_before = rss_mb()
    trainer = build_trainer(TrainerArgs(max_steps=args.steps, accelerator="cpu", devices="1", logger="none",
                                        progress_bar=False, gradient_clip_val=1.0), tempfile.mkdtemp(),
                            callbacks=[Stamp()])
    trainer.checkpoint_callback.save_last = False
    torch.manual_seed(args.seed)
    stamps.append(time.perf_counter())
    trainer.fit(module, DataLoader(data["prompts"], batch_size=p, collate_fn=list, shuffle=False))
    return {"stamps": stamps, "gate_loss": gate_loss, **timing, "rss_before_mb": rss_before,
            "peak_rss_mb": peak_rss_mb()}


def worker_trl(model_dir: str, ref_dir: str, data: dict, args) -> dict:
    """Train with TRL's GRPOTrainer; return step-end times, phase times and memory."""
    import datasets
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    datasets.disable_caching()
    datasets.disable_progress_bars()
    tok = AutoTokenizer.from_pretrained(model_dir)
    policy = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    policy.config._name_or_path = ref_dir  # TRL builds its reference from this path: the unperturbed copy
    timing = {"generate": [], "tokens": []}
    stamps: list[float] = []

    def vowel_reward(prompts, completions, **kwargs):
        return vowel_share(list(completions))

    class Stamp(TrainerCallback):
        def on_step_end(self, *a, **kw):
            stamps.append(time.perf_counter())

    class TimedGRPOTrainer(GRPOTrainer):
        fixed_completions = None

        def _generate_single_turn(self, prompt_ids, *a, **kw):
            if self.fixed_completions is not None:
                return [list(c) for c in self.fixed_completions], None
            start = time.perf_counter()
            completion_ids, logprobs = super()._generate_single_turn(prompt_ids, *a, **kw)
            timing["generate"].append(time.perf_counter() - start)
            timing["tokens"].append(sum(map(len, completion_ids)))
            return completion_ids, logprobs

    g, p = args.group_size, args.prompts_per_step
    config = GRPOConfig(
        output_dir=tempfile.mkdtemp(), per_device_train_batch_size=p * g, num_generations=g,
        max_completion_length=data["max_completion"], max_steps=args.steps, learning_rate=LR,
        lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, optim="adamw_torch", max_grad_norm=1.0,
        beta=BETA, epsilon=EPSILON, loss_type="grpo", scale_rewards="group", temperature=1.0, top_p=1.0, top_k=0,
        num_iterations=1, shuffle_dataset=False, mask_truncated_completions=False, disable_dropout=True,
        gradient_checkpointing=False, use_cpu=True, bf16=False, fp16=False, report_to="none", save_strategy="no",
        logging_steps=1, seed=args.seed, dataloader_num_workers=0, disable_tqdm=True, log_completions=False,
    )
    trainer = TimedGRPOTrainer(model=policy, reward_funcs=vowel_reward, args=config, processing_class=tok,
                               train_dataset=datasets.Dataset.from_list([{"prompt": q} for q in data["prompts"]]),
                               callbacks=[Stamp()])
    trainer.fixed_completions = data["fixed_completions"]
    with torch.no_grad():
        inputs = trainer._generate_and_score_completions([{"prompt": q} for q in data["prompts"][:p] for _ in range(g)])
        gate_loss = trainer.compute_loss(trainer.model, inputs).item()
    trainer.fixed_completions = None
    trainer._metrics = {"train": type(trainer._metrics["train"])(list), "eval": type(trainer._metrics["eval"])(list)}
    rss_before = rss_mb()
    torch.manual_seed(args.seed)
    stamps.append(time.perf_counter())
    trainer.train()
    return {"stamps": stamps, "gate_loss": gate_loss, **timing, "rss_before_mb": rss_before,
            "peak_rss_mb": peak_rss_mb()}


def run_worker(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    data = json.loads(Path(args.data).read_text())
    fn = worker_ours if args.worker == "ours" else worker_trl
    print("RESULT " + json.dumps(fn(args.model_dir, args.ref_dir, data, args)), flush=True)


# ---------------------------------------------------------------------------- orchestration

def spawn(side: str, args, models: tuple[Path, Path], data: Path) -> dict:
    cmd = [sys.executable, __file__, "--worker", side, "--model-dir", str(models[0]), "--ref-dir", str(models[1]),
           "--data", str(data), "--steps", str(args.steps), "--group-size", str(args.group_size),
           "--prompts-per-step", str(args.prompts_per_step), "--threads", str(args.threads), "--seed", str(args.seed)]
    return run_worker_process(cmd, ROOT, side)


def summarise(runs: list[dict], args) -> dict:
    """Median step time and rates over every run's steps after warm-up."""
    steps, rates, shares = [], [], []
    for run in runs:
        stamps = run["stamps"]
        for step, (a, b) in enumerate(zip(stamps, stamps[1:])):
            if step < args.warmup or step >= len(run["generate"]):
                continue
            dt = b - a
            steps.append(dt)
            rates.append(run["tokens"][step] / dt)
            shares.append(run["generate"][step] / dt)
    median = statistics.median(steps)
    return {"median_step_s": median, "steps_per_s": 1 / median, "generated_tokens_per_s": statistics.median(rates),
            "generation_share": statistics.median(shares), "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
            "gate_loss": runs[0]["gate_loss"], "timed_steps": len(steps)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CI size: fewer steps and repeats")
    parser.add_argument("--shapes", default="short,long")
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--prompts-per-step", type=int, default=2)
    parser.add_argument("--steps", type=int, default=None, help="steps per run (default 12; quick 4)")
    parser.add_argument("--warmup", type=int, default=None, help="steps dropped from every run (default 2; quick 1)")
    parser.add_argument("--repeats", type=int, default=None, help="runs per side and shape (default 3; quick 1)")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2, help="torch threads for each side (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="also write the full results as JSON here")
    parser.add_argument("--worker", choices=["ours", "trl"], help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    parser.add_argument("--ref-dir", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return run_worker(args)
    quick = args.quick
    args.steps = args.steps or (4 if quick else 12)
    args.warmup = args.warmup if args.warmup is not None else (1 if quick else 2)
    args.repeats = args.repeats or (1 if quick else 3)

    import torch
    import trl

    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}, TRL {trl.__version__}, "
          f"{args.threads} threads per side", flush=True)
    print(f"model: Llama {args.layers} layers x {args.width}, byte vocab 259; {args.prompts_per_step} prompts x "
          f"{args.group_size} completions per step, {args.steps} steps ({args.warmup} warm-up), "
          f"{args.repeats} repeat(s)", flush=True)
    results, ratios, gate_failures = {}, {}, []
    with tempfile.TemporaryDirectory() as tmp:
        models = build_models(Path(tmp), args, arch="llama")
        for shape in args.shapes.split(","):
            data = make_data(shape, args.steps * args.prompts_per_step, args.group_size, args.prompts_per_step, seed=0)
            path = Path(tmp) / f"{shape}.json"
            path.write_text(json.dumps(data))
            runs = {"ours": [], "trl": []}
            for repeat in range(args.repeats):
                for side in (("ours", "trl") if repeat % 2 == 0 else ("trl", "ours")):
                    runs[side].append(spawn(side, args, models, path))
                if repeat == 0:
                    a, b = runs["ours"][0]["gate_loss"], runs["trl"][0]["gate_loss"]
                    ok = abs(a - b) <= GATE_ATOL
                    print(f"[{shape}] correctness gate: loss on fixed completions ours {a:.7f} TRL {b:.7f} "
                          f"|diff| {abs(a - b):.1e} {'ok' if ok else 'FAILED'}", flush=True)
                    if not ok:
                        gate_failures.append(shape)
                        break
            if shape in gate_failures:
                continue
            cell = {side: summarise(r, args) for side, r in runs.items()}
            results[shape] = cell
            o, t = cell["ours"], cell["trl"]
            ratios[shape] = {"steps_per_s": round(o["steps_per_s"] / t["steps_per_s"], 3),
                             "generated_tokens_per_s": round(o["generated_tokens_per_s"] / t["generated_tokens_per_s"], 3),
                             "peak_rss": round(o["peak_rss_mb"] / t["peak_rss_mb"], 3)}
            for side in ("ours", "trl"):
                c = cell[side]
                print(f"[{shape}] {side:>4}: {c['median_step_s'] * 1000:7.1f} ms/step  {c['steps_per_s']:5.2f} steps/s  "
                      f"{c['generated_tokens_per_s']:7.0f} generated tok/s  generation {c['generation_share'] * 100:4.1f}% "
                      f"of the step  peak RSS {c['peak_rss_mb']:6.0f} MB", flush=True)
            print(f"[{shape}] ours/TRL: {json.dumps(ratios[shape])}", flush=True)
    warnings = []
    for key, r in ratios.items():
        if r["steps_per_s"] < 1.5:
            warnings.append(f"{key}: steps/s ratio {r['steps_per_s']} below target 1.5")
        if r["peak_rss"] > 1.0:
            warnings.append(f"{key}: peak RSS ratio {r['peak_rss']} above 1")
    finish("grpo_vs_trl", quick, ratios, gate_failures, warnings, args.out,
           {"args": vars(args), "results": results, "ratios": ratios})

if __name__ == "__main__":
    main()
