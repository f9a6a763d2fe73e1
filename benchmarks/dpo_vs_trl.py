"""Offline DPO training throughput and memory: aligned-generators against TRL 1.16.0, side by side.

    python benchmarks/dpo_vs_trl.py            # full run (about 10 minutes on 2 CPU cores)
    python benchmarks/dpo_vs_trl.py --quick    # CI size, under 3 minutes

Both sides train deep copies of one tiny GPT-2-style model (one saved folder) on the same pairs:
sigmoid DPO, beta 0.1, fp32, AdamW, constant learning rate, gradient clipping 1.0, dropout off,
gradient checkpointing off, data in file order, no truncation. TRL's other settings are its
defaults, written out (padding_free=False, pad_to_multiple_of=None). Ours uses its defaults
(packed batches, frozen-copy reference).

Grid: data shape (variable: prompt and completion lengths uniform over 16-256 tokens; fixed: 128
and 128) x reference mode (live: the reference model runs every step; precomputed: reference
log-probs computed once before training, timed separately).

Before any timing, a correctness gate: the step-0 loss of both on the same first batch must agree
to 1e-5, else the script exits with status 1. Each side runs in its own process (so peak resident
memory is its own); repeats alternate which side goes first; the first `warmup` steps of every run
are dropped; a step's time is the interval between consecutive step ends (so data loading and
collation count on both sides). Reported per cell: median time per step, pairs/s, real (non-pad)
tokens/s, peak RSS, and MFU = useful FLOP/s / this machine's measured fp32 matmul peak, with
useful FLOPs = 6 N T for the policy plus 2 N T for a live reference forward (N = non-embedding
parameters, T = real tokens; attention-score FLOPs left out, the same formula for both sides).
The last line printed is one JSON object with every ours/TRL ratio.
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

from common import (  # noqa: E402
    build_models, finish, matmul_peak_flops, non_embedding_params, peak_rss_mb, rss_mb, run_worker_process,
)

GATE_ATOL = 1e-5
LETTERS = "abcdefghijklmnopqrstuvwxyz "


# ---------------------------------------------------------------------------- shared set-up

def make_pairs(shape: str, n: int, seed: int) -> list[dict]:
    """Return n TRL-format pairs of random text; one character is one token of the byte tokenizer."""
    rng = random.Random(seed)
    text = lambda k: "".join(rng.choice(LETTERS) for _ in range(k))  # noqa: E731
    length = (lambda: rng.randint(16, 256)) if shape == "variable" else (lambda: 128)
    return [{"prompt": text(length()), "chosen": text(length()), "rejected": text(length())} for _ in range(n)]


# ---------------------------------------------------------------------------- workers

def worker_ours(model_dir: str, ref_dir: str, pairs: list[dict], ref: str, steps: int, batch: int) -> dict:
    """Train with our PreferenceModule under Lightning; return step-end times, losses and memory."""
    import lightning as L
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from shared.losses import get_loss
    from shared.modules import PreferenceCollator, PreferenceModule, build_reference, encode_pairs, precompute_reference
    from shared.records import Pair
    from shared.training import TrainerArgs, build_trainer, make_loader, quiet_lightning

    quiet_lightning()
    tok = AutoTokenizer.from_pretrained(model_dir)
    policy = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    items = encode_pairs([Pair(**p) for p in pairs], tok, max_length=4096)
    collate = PreferenceCollator(tok.pad_token_id)
    precompute_s = None
    if ref == "precomputed":
        ref_model = AutoModelForCausalLM.from_pretrained(ref_dir, dtype=torch.float32)
        start = time.perf_counter()
        items = precompute_reference(ref_model, items, collate, batch_size=batch)
        precompute_s = time.perf_counter() - start
        del ref_model
        reference = build_reference("precomputed", policy)
    else:
        reference = build_reference("frozen_copy", AutoModelForCausalLM.from_pretrained(ref_dir, dtype=torch.float32))
    module = PreferenceModule(policy, reference, loss="sigmoid", loss_kwargs={"beta": 0.1}, lr=1e-5)
    with torch.no_grad():
        step0 = get_loss("sigmoid")(module.terms(collate(items[:batch])), beta=0.1).loss.item()
    stamps: list[float] = []

    class Stamp(L.Callback):
        def on_train_batch_end(self, *args):
            stamps.append(time.perf_counter())

    rss_before = rss_mb()
    trainer = build_trainer(TrainerArgs(max_steps=steps, accelerator="cpu", devices="1", logger="none",
                                        progress_bar=False, gradient_clip_val=1.0), tempfile.mkdtemp(),
                            callbacks=[Stamp()])
    trainer.checkpoint_callback.save_last = False
    stamps.append(time.perf_counter())
    trainer.fit(module, make_loader(items, batch, collate, shuffle=False))
    return {"stamps": stamps, "step0_loss": step0, "precompute_s": precompute_s, "rss_before_mb": rss_before,
            "peak_rss_mb": peak_rss_mb(), "n_params": non_embedding_params(policy)}


def worker_trl(model_dir: str, ref_dir: str, pairs: list[dict], ref: str, steps: int, batch: int) -> dict:
    """Train with TRL's DPOTrainer; return step-end times, losses and memory."""
    import datasets
    import torch
    from torch.utils.data import SequentialSampler
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    datasets.disable_caching()
    datasets.disable_progress_bars()
    tok = AutoTokenizer.from_pretrained(model_dir)
    policy = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    ref_model = AutoModelForCausalLM.from_pretrained(ref_dir, dtype=torch.float32)
    stamps: list[float] = []
    precompute = {"s": None}

    class Stamp(TrainerCallback):
        def on_step_end(self, *args, **kwargs):
            stamps.append(time.perf_counter())

    class InOrderDPOTrainer(DPOTrainer):
        def _get_train_sampler(self, *args, **kwargs):
            return SequentialSampler(self.train_dataset)

        def _precompute_ref_logps(self, *args, **kwargs):
            start = time.perf_counter()
            out = super()._precompute_ref_logps(*args, **kwargs)
            precompute["s"] = time.perf_counter() - start
            return out

    config = DPOConfig(
        output_dir=tempfile.mkdtemp(), per_device_train_batch_size=batch, max_steps=steps, learning_rate=1e-5,
        lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, optim="adamw_torch", max_grad_norm=1.0,
        beta=0.1, loss_type=["sigmoid"], precompute_ref_log_probs=ref == "precomputed",
        precompute_ref_batch_size=batch, gradient_checkpointing=False, disable_dropout=True, padding_free=False,
        pad_to_multiple_of=None, max_length=None, use_cpu=True, bf16=False, fp16=False, report_to="none",
        save_strategy="no", logging_steps=1, seed=0, dataloader_num_workers=0, disable_tqdm=True,
    )
    trainer = InOrderDPOTrainer(model=policy, ref_model=ref_model, args=config, processing_class=tok,
                                train_dataset=datasets.Dataset.from_list(pairs), callbacks=[Stamp()])
    first = next(iter(trainer.get_train_dataloader()))
    with torch.no_grad():
        step0 = trainer.compute_loss(trainer.model, first).item()
    rss_before = rss_mb()
    stamps.append(time.perf_counter())
    trainer.train()
    return {"stamps": stamps, "step0_loss": step0, "precompute_s": precompute["s"], "rss_before_mb": rss_before,
            "peak_rss_mb": peak_rss_mb(), "n_params": non_embedding_params(policy)}


def run_worker(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    pairs = json.loads(Path(args.data).read_text())
    fn = worker_ours if args.worker == "ours" else worker_trl
    result = fn(args.model_dir, args.ref_dir, pairs, args.ref, args.steps, args.batch_size)
    print("RESULT " + json.dumps(result), flush=True)


# ---------------------------------------------------------------------------- orchestration

def real_tokens_per_step(pairs: list[dict], batch: int, steps: int) -> list[int]:
    """Return the real (non-pad) tokens each step trains on: prompt twice, both completions, two EOS."""
    per_pair = [2 * len(p["prompt"]) + len(p["chosen"]) + len(p["rejected"]) + 2 for p in pairs]
    out = []
    for step in range(steps):
        start = (step * batch) % len(pairs)
        out.append(sum(per_pair[start:start + batch]))
    return out


def spawn(side: str, args, models: tuple[Path, Path], data: Path, ref: str) -> dict:
    cmd = [sys.executable, __file__, "--worker", side, "--model-dir", str(models[0]), "--ref-dir", str(models[1]),
           "--data", str(data), "--ref", ref,
           "--steps", str(args.steps), "--batch-size", str(args.batch_size), "--threads", str(args.threads)]
    return run_worker_process(cmd, ROOT, f"{side} ({ref})")


def summarise(runs: list[dict], tokens: list[int], args, peak: float, live_ref: bool) -> dict:
    step_times, tok_rates = [], []
    for run in runs:
        stamps = run["stamps"]
        deltas = [b - a for a, b in zip(stamps, stamps[1:])]
        for step, dt in enumerate(deltas):
            if step >= args.warmup:
                step_times.append(dt)
                tok_rates.append(tokens[step] / dt)
    median = statistics.median(step_times)
    n = runs[0]["n_params"]
    tokens_per_s = statistics.median(tok_rates)
    flops_per_token = 6 * n + (2 * n if live_ref else 0)
    precompute = [r["precompute_s"] for r in runs if r["precompute_s"] is not None]
    return {
        "median_step_s": median, "pairs_per_s": args.batch_size / median, "tokens_per_s": tokens_per_s,
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "train_rss_growth_mb": max(r["peak_rss_mb"] - r["rss_before_mb"] for r in runs),
        "mfu": tokens_per_s * flops_per_token / peak, "precompute_s": statistics.median(precompute) if precompute else None,
        "step0_loss": runs[0]["step0_loss"], "timed_steps": len(step_times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CI size: fewer pairs, steps and repeats")
    parser.add_argument("--pairs", type=int, default=None, help="pairs per data shape (default 128; quick 32)")
    parser.add_argument("--batch-size", type=int, default=8, help="pairs per step (default 8)")
    parser.add_argument("--steps", type=int, default=None, help="steps per run (default 16; quick 6)")
    parser.add_argument("--warmup", type=int, default=None, help="steps dropped from every run (default 3; quick 2)")
    parser.add_argument("--repeats", type=int, default=None, help="runs per side and cell (default 3; quick 1)")
    parser.add_argument("--shapes", default="variable,fixed")
    parser.add_argument("--refs", default="live,precomputed")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2, help="torch threads for each side (default 2)")
    parser.add_argument("--out", default=None, help="also write the full results as JSON here")
    parser.add_argument("--worker", choices=["ours", "trl"], help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    parser.add_argument("--ref-dir", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--ref", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return run_worker(args)
    quick = args.quick
    args.pairs = args.pairs or (32 if quick else 128)
    args.steps = args.steps or (6 if quick else 16)
    args.warmup = args.warmup if args.warmup is not None else (2 if quick else 3)
    args.repeats = args.repeats or (1 if quick else 3)

    import torch
    import trl

    torch.set_num_threads(args.threads)
    peak = matmul_peak_flops()
    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}, TRL {trl.__version__}, "
          f"{args.threads} threads per side; fp32 matmul peak {peak / 1e9:.1f} GFLOP/s", flush=True)
    print(f"model: GPT-2 {args.layers} layers x {args.width}, byte vocab 259; {args.pairs} pairs per shape, "
          f"batch {args.batch_size}, {args.steps} steps ({args.warmup} warm-up), {args.repeats} repeat(s)", flush=True)
    results, ratios, gate_failures = {}, {}, []
    with tempfile.TemporaryDirectory() as tmp:
        models = build_models(Path(tmp), args)
        for shape in args.shapes.split(","):
            pairs = make_pairs(shape, args.pairs, seed=0)
            data = Path(tmp) / f"{shape}.json"
            data.write_text(json.dumps(pairs))
            tokens = real_tokens_per_step(pairs, args.batch_size, args.steps)
            for ref in args.refs.split(","):
                runs = {"ours": [], "trl": []}
                for repeat in range(args.repeats):
                    order = ("ours", "trl") if repeat % 2 == 0 else ("trl", "ours")
                    for side in order:
                        runs[side].append(spawn(side, args, models, data, ref))
                    if repeat == 0:
                        a, b = runs["ours"][0]["step0_loss"], runs["trl"][0]["step0_loss"]
                        ok = abs(a - b) <= GATE_ATOL
                        print(f"[{shape}/{ref}] correctness gate: step-0 loss ours {a:.7f} TRL {b:.7f} "
                              f"|diff| {abs(a - b):.1e} {'ok' if ok else 'FAILED'}", flush=True)
                        if not ok:
                            gate_failures.append(f"{shape}/{ref}")
                            break
                if f"{shape}/{ref}" in gate_failures:
                    continue
                cell = {side: summarise(r, tokens, args, peak, ref == "live") for side, r in runs.items()}
                results[f"{shape}/{ref}"] = cell
                o, t = cell["ours"], cell["trl"]
                ratios[f"{shape}/{ref}"] = {
                    "pairs_per_s": round(o["pairs_per_s"] / t["pairs_per_s"], 3),
                    "tokens_per_s": round(o["tokens_per_s"] / t["tokens_per_s"], 3),
                    "peak_rss": round(o["peak_rss_mb"] / t["peak_rss_mb"], 3),
                    "mfu": round(o["mfu"] / t["mfu"], 3),
                    **({"precompute_time": round(o["precompute_s"] / t["precompute_s"], 3)} if ref == "precomputed" else {}),
                }
                for side in ("ours", "trl"):
                    c = cell[side]
                    pre = f", precompute {c['precompute_s']:.2f} s" if c["precompute_s"] is not None else ""
                    print(f"[{shape}/{ref}] {side:>4}: {c['median_step_s'] * 1000:7.1f} ms/step  {c['pairs_per_s']:6.2f} pairs/s  "
                          f"{c['tokens_per_s']:8.0f} tok/s  peak RSS {c['peak_rss_mb']:6.0f} MB  MFU {c['mfu'] * 100:5.2f}%{pre}",
                          flush=True)
                print(f"[{shape}/{ref}] ours/TRL: {json.dumps(ratios[f'{shape}/{ref}'])}", flush=True)
    targets = {"variable": 1.5, "fixed": 1.1}
    warnings = []
    for key, r in ratios.items():
        shape = key.split("/")[0]
        if r["pairs_per_s"] < targets[shape]:
            warnings.append(f"{key}: pairs/s ratio {r['pairs_per_s']} below target {targets[shape]}")
        if r["peak_rss"] > 1.0:
            warnings.append(f"{key}: peak RSS ratio {r['peak_rss']} above 1")
    finish("dpo_vs_trl", quick, ratios, gate_failures, warnings, args.out,
           {"args": vars(args), "matmul_peak_flops": peak, "results": results, "ratios": ratios})

if __name__ == "__main__":
    main()
