"""Where the memory of an SFT step goes: per-phase peak RSS and the tensors autograd keeps for backward.

    python benchmarks/sft_memory.py                                   # codegen's embedded SFT (configs/codegen/dstc.yaml)
    python benchmarks/sft_memory.py --steps 5 --bf16                  # under bf16 autocast
    python benchmarks/sft_memory.py --mmap-threshold-kb 128           # glibc: big blocks always mmapped (returned on free)

Loads the app's model (SmolLM2-135M-Instruct + LoRA for codegen) and its SFT examples, then runs
`--steps` optimiser steps by hand (forward, backward, AdamW), printing for each phase the resident
memory before, the peak during (the kernel's high-water mark, reset per phase through
/proc/self/clear_refs) and after. Then one forward under `saved_tensors_hooks` lists what autograd
saved for backward, by shape, each storage counted once. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def status_mb(key: str) -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(key)


def phase(name: str, fn):
    """Run fn, printing RSS before, the peak during and after (MB), and the time."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # reset VmHWM to the current RSS
    before, start = status_mb("VmRSS"), time.perf_counter()
    out = fn()
    print(f"{name:28s} before {before:6.0f}  peak {status_mb('VmHWM'):6.0f}  after {status_mb('VmRSS'):6.0f} MB"
          f"  {time.perf_counter() - start:5.1f} s", flush=True)
    return out


def saved_for_backward(policy, batch, autocast: bool) -> Counter:
    """Return bytes autograd saves for backward in one forward, by (shape, dtype); each storage once."""
    import torch

    from shared.logprobs import sequence_logps

    sizes: Counter = Counter()
    seen: set = set()

    def pack(t):
        key = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        if key not in seen:
            seen.add(key)
            sizes[(tuple(t.shape), str(t.dtype).replace("torch.", ""), t.requires_grad)] += t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), \
            torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        sequence_logps(policy, batch)
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "configs/codegen/dstc.yaml"), help="a codegen config")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--bf16", action="store_true", help="forward under bf16 autocast (Lightning's bf16-mixed)")
    parser.add_argument("--mmap-threshold-kb", type=int, default=0,
                        help="glibc M_MMAP_THRESHOLD in KiB (0: glibc's default, which adapts upwards)")
    parser.add_argument("--threads", type=int, default=2)
    args, overrides = parser.parse_known_args()

    import torch

    torch.set_num_threads(args.threads)
    from shared.resources import set_mmap_threshold

    set_mmap_threshold(args.mmap_threshold_kb)  # the same setting as trainer.mmap_threshold_kb

    from apps.codegen.config import CodegenConfig
    from apps.codegen.train import load_data, sft_examples
    from shared.config.load import resolve
    from shared.logprobs import sequence_logps
    from shared.models import load_policy
    from shared.modules import SFTCollator, encode_sft

    cfg = resolve(CodegenConfig, [args.config], overrides)
    train, _ = load_data(cfg)
    policy, tok = phase("load model", lambda: load_policy(cfg.model))
    policy.train()  # as Lightning does; transformers' gradient checkpointing is only active in train mode
    data = encode_sft(sft_examples(train, cfg.sft.formats), tok, max_length=cfg.sft.max_length)
    collate = SFTCollator(tok.pad_token_id)
    optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=cfg.sft.lr)
    size = cfg.sft.batch_size
    print(f"{len(data)} examples, batch {size}, {'bf16 autocast' if args.bf16 else 'fp32'}, "
          f"mmap threshold {args.mmap_threshold_kb or 'glibc default'} KiB", flush=True)
    for step in range(args.steps):
        batch = collate(data[step * size:(step + 1) * size])

        def forward():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
                scored = sequence_logps(policy, batch)
            return -scored.logps.sum() / scored.lengths.sum()

        tokens = int((batch["segment_ids"] >= 0).sum())
        loss = phase(f"step {step} forward ({tokens} tok)", forward)
        phase(f"step {step} backward", loss.backward)
        phase(f"step {step} optimizer", lambda: (optimizer.step(), optimizer.zero_grad(set_to_none=True)))
        del loss
    sizes = saved_for_backward(policy, collate(data[:size]), args.bf16)
    print(f"saved for backward (one forward of {size} examples): {sum(sizes.values()) / 2**20:.0f} MB "
          f"(parameters among them are not extra memory)")
    for (shape, dtype, grad), nbytes in sizes.most_common(10):
        print(f"  {nbytes / 2**20:8.1f} MB  {shape} {dtype}{' (requires grad)' if grad else ''}")


if __name__ == "__main__":
    main()
