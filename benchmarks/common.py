"""Set-up the training benchmarks share: one tiny GPT-2-style model pair, machine peak, memory probes."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path


def build_models(folder: Path, args, arch: str = "gpt2") -> tuple[Path, Path]:
    """Save a tiny reference model and a perturbed policy (with the byte tokenizer); return both folders.

    arch "gpt2": GPT-2 (learned absolute positions); "llama": Llama (rotary positions, SwiGLU,
    RMSNorm, tied embeddings: SmolLM2's architecture at 4 x 256), whose outputs do not depend on
    left padding, as TRL's GRPOTrainer's loss forward (no position ids) requires.

    The policy differs from the reference so that the step-0 loss is not log 2 whatever the
    log-probs are: the correctness gate then checks every log-prob both sides compute.
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    from shared.models import byte_tokenizer

    tok = byte_tokenizer()
    torch.manual_seed(0)
    specials = {"bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id}
    if arch == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=1024, n_embd=args.width, n_layer=args.layers,
                                           n_head=4, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, **specials))
    else:
        model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=args.width, intermediate_size=4 * args.width,
                                             num_hidden_layers=args.layers, num_attention_heads=4, num_key_value_heads=4,
                                             max_position_embeddings=1024, tie_word_embeddings=True, **specials))
    reference, policy = folder / "reference", folder / "policy"
    model.save_pretrained(reference)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.02 * torch.randn_like(param))
    model.save_pretrained(policy)
    for path in (reference, policy):
        tok.save_pretrained(path)
    return policy, reference


def matmul_peak_flops(n: int = 1024, trials: int = 8) -> float:
    """Return this machine's measured fp32 matmul throughput (FLOP/s, best of `trials`)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(trials):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def rss_mb() -> float:
    """Return this process's current resident memory in MB."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    """Return this process's peak resident memory in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def non_embedding_params(model) -> int:
    """Return the parameter count outside token and position embeddings."""
    return sum(p.numel() for n, p in model.named_parameters() if "wte" not in n and "wpe" not in n)


def run_worker_process(cmd: list[str], root: Path, label: str) -> dict:
    """Run a benchmark worker in its own process; return the JSON of its last `RESULT ` line (exit on failure)."""
    env = {**os.environ, "PYTHONPATH": str(root), "TRL_EXPERIMENTAL_SILENCE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.exit(f"{label} worker failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def finish(name: str, quick: bool, ratios: dict, gate_failures: list[str], warnings: list[str],
           out: str | None = None, details: dict | None = None) -> None:
    """Print the warnings and the machine-readable last line; write `details` to `out`; exit 1 if a gate failed."""
    for w in warnings:
        print(f"WARNING: {w}", flush=True)
    if out:
        Path(out).write_text(json.dumps(details or {}, indent=1))
    summary = {"benchmark": name, "quick": quick, "gate": "failed" if gate_failures else "passed",
               "gate_failures": gate_failures, "ratios": ratios, "warnings": len(warnings)}
    print(json.dumps(summary), flush=True)
    if gate_failures:
        sys.exit(1)
