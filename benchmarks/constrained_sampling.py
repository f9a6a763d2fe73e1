"""Constrained sampling speed: shared.constrained against transformers' prefix_allowed_tokens_fn, side by side.

    python benchmarks/constrained_sampling.py            # SmolLM2-135M-Instruct (49k tokens) and a byte model
    python benchmarks/constrained_sampling.py --quick    # the byte model only

The format is the crystal app's Wyckoff grammar (apps.crystal.grammar). Both sides sample the same
prompts with the same seed from the same model:

- free: plain sampling, no constraint (the cost floor, compared per generated token since free
  samples run to a different length);
- prefix_fn: `model.generate(prefix_allowed_tokens_fn=...)`, transformers' own hook for constrained
  decoding, written the way one writes it with the library alone: per step and row, decode the
  completion so far, run the automaton over it, and test every vocabulary token from there;
- ours: `shared.constrained.ConstrainedLogits` (incremental automaton state per row, allowed-token
  masks cached per state, a first-character index over the vocabulary).

The constrained sides must produce identical texts (same allowed sets, same RNG draws); the script
exits 1 otherwise. The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from transformers import LogitsProcessorList  # noqa: E402

from apps.crystal.grammar import WyckoffGrammar  # noqa: E402
from apps.crystal.prompts import prompt  # noqa: E402
from shared.constrained import ConstrainedLogits, TokenAutomaton, token_texts, walk  # noqa: E402
from shared.models import ModelSpec, load_policy  # noqa: E402
from shared.modules.data import encode_prompt  # noqa: E402


def naive_prefix_fn(grammar: WyckoffGrammar, tok, width: int):
    texts = token_texts(tok)
    eos = tok.eos_token_id

    def allowed(batch_id: int, ids: torch.Tensor) -> list[int]:
        completion = tok.decode(ids[width:].tolist(), skip_special_tokens=True)
        state = walk(grammar, completion)
        if state is None or eos in ids[width:].tolist():
            return [eos]
        out = [i for i, text in enumerate(texts) if text and walk(grammar, text, state) is not None]
        if grammar.can_end(state) or not out:
            out.append(eos)
        return out

    return allowed


def run(model, tok, samples: int, max_new_tokens: int, max_atoms: int) -> dict:
    ids = torch.tensor([encode_prompt(tok, prompt())])
    common = dict(input_ids=ids.repeat(samples, 1), attention_mask=torch.ones(samples, ids.shape[1], dtype=torch.long),
                  max_new_tokens=max_new_tokens, do_sample=True, temperature=0.7, top_p=1.0,
                  pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    grammar = WyckoffGrammar(max_atoms)
    out, times, tokens = {}, {}, {}
    for side in ("free", "prefix_fn", "ours"):
        extra = {}
        if side == "prefix_fn":
            extra["prefix_allowed_tokens_fn"] = naive_prefix_fn(grammar, tok, ids.shape[1])
        elif side == "ours":
            automaton = TokenAutomaton(grammar, tok)  # built inside the timing: its vocabulary scan is a real cost
        torch.manual_seed(0)
        start = time.perf_counter()
        if side == "ours":
            extra["logits_processor"] = LogitsProcessorList([ConstrainedLogits(automaton, ids.shape[1])])
        with torch.inference_mode():
            generated = model.generate(**common, **extra)[:, ids.shape[1]:]
        times[side] = time.perf_counter() - start
        tokens[side] = int((generated != tok.pad_token_id).sum())
        out[side] = tok.batch_decode(generated, skip_special_tokens=True)
    same = out["prefix_fn"] == out["ours"]
    per_token = {k: 1000 * times[k] / max(1, tokens[k]) for k in times}
    return {"samples": samples, "vocab": len(tok), "seconds": times, "new_tokens": tokens, "ms_per_token": per_token,
            "identical": same, "ours_vs_prefix_fn": times["prefix_fn"] / times["ours"],
            "ours_overhead_per_token_vs_free": per_token["ours"] / per_token["free"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the byte model only, fewer samples")
    args = parser.parse_args()
    torch.set_num_threads(2)
    results = {}
    byte_model, byte_tok = load_policy(ModelSpec(source="tiny", hidden_size=128, num_layers=2, num_heads=4,
                                                 intermediate_size=256, max_position_embeddings=1024))
    results["byte_model"] = run(byte_model, byte_tok, 8 if args.quick else 16, 300, 12)
    if not args.quick:
        model, tok = load_policy(ModelSpec(source="smollm2"))
        results["smollm2"] = run(model, tok, 4, 120, 40)
    for name, r in results.items():
        s = r["seconds"]
        print(f"{name} (vocab {r['vocab']}, {r['samples']} samples): free {s['free']:.1f} s, prefix_fn {s['prefix_fn']:.1f} s, "
              f"ours {s['ours']:.1f} s -> ours {r['ours_vs_prefix_fn']:.1f}x prefix_fn's speed, "
              f"{r['ours_overhead_per_token_vs_free']:.2f}x free sampling's time per token; identical texts: {r['identical']}")
    print(json.dumps({"benchmark": "constrained_sampling", "quick": args.quick, "results": results}))
    if not all(r["identical"] for r in results.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
