"""Simultaneous decoding speed: the batched decoder against one-sentence-at-a-time agents, side by side.

    python benchmarks/simultaneous_decoding.py --model runs/simulmt/simulpl/sft/model   # a trained policy, 300 sentences
    python benchmarks/simultaneous_decoding.py --quick                                  # a random tiny policy, 24 sentences

The way a SimulEval user evaluates a policy is an agent that handles one sentence at a time: at
each step it runs the model on the stream so far and decides to read or write. Both sides here
run the same model and the same decision rule on the held-out sentences of the embedded language:

- per_sentence: `apps.simulmt.decode.StreamingSession`, fed one sentence at a time (what an agent
  loop does: one forward pass of one stream per decision);
- batched: `SimultaneousDecoder.decode`, every sentence of a batch advanced together (one forward
  pass of all unfinished streams per step, each row reading or writing on its own).

Correctness gate first: both sides must give identical translations and delays at every setting
(the script exits 1 otherwise). Then sentences per second and the ratio. The last line printed is
one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from apps.simulmt.data import DataArgs, load_split  # noqa: E402
from apps.simulmt.decode import Setting, SimultaneousDecoder, StreamingSession  # noqa: E402
from apps.simulmt.language import Lexicon  # noqa: E402
from apps.simulmt.stream import build_initial_policy  # noqa: E402
from shared.models import ModelSpec, load_policy  # noqa: E402


def per_sentence(decoder: SimultaneousDecoder, sources, setting: Setting):
    out = []
    for source in sources:
        session = StreamingSession(decoder, setting)
        session.feed(source, finished=True)
        out.append(session.trajectory())
    return out


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a policy folder (default: a random tiny policy of the embedded default's size)")
    parser.add_argument("--sentences", type=int, help="held-out sentences (default 300, --quick 24)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    n = args.sentences or (24 if args.quick else 300)
    if args.model:
        model, tok = load_policy(ModelSpec(source="hf", path=args.model))
    else:
        lex = Lexicon.build()
        folder = Path(tempfile.mkdtemp()) / "policy"
        spec = ModelSpec(source="tiny", hidden_size=128, num_layers=4, num_heads=4, intermediate_size=512,
                         max_position_embeddings=256)
        build_initial_policy(spec, lex.source_words() + lex.target_words(), folder)
        model, tok = load_policy(ModelSpec(source="hf", path=str(folder)))
    sources = [p.source for p in load_split(DataArgs(max_heldout=n), "heldout")]
    decoder = SimultaneousDecoder(model, tok, batch_size=256)
    figures = {"sentences": len(sources), "model": args.model or "random tiny", "threads": torch.get_num_threads(),
               "settings": {}}
    failed = False
    for setting in (Setting("wait_k", 3), Setting("threshold", 0.9)):
        slow, t_slow = timed(lambda: per_sentence(decoder, sources, setting))
        fast, t_fast = timed(lambda: decoder.decode(sources, setting))
        same = all(a.target == b.target and a.delays == b.delays for a, b in zip(slow, fast))
        failed |= not same
        words = sum(len(t.target) for t in fast)
        row = {"identical": same, "per_sentence_s": round(t_slow, 3), "batched_s": round(t_fast, 3),
               "per_sentence_sent_per_s": round(len(sources) / t_slow, 1),
               "batched_sent_per_s": round(len(sources) / t_fast, 1), "speedup": round(t_slow / t_fast, 2),
               "target_words": words}
        figures["settings"][setting.name] = row
        print(f"{setting.name:>8}: gate {'ok' if same else 'FAILED'}; per-sentence {row['per_sentence_sent_per_s']} "
              f"sent/s, batched {row['batched_sent_per_s']} sent/s: {row['speedup']}x", flush=True)
    print(json.dumps(figures))
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
