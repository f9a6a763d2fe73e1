"""Recommend the next session for a user's history with a trained generator, or serve recommendations over HTTP.

    python -m apps.recsys.infer --model runs/recsys/onerec --history 50,172,181 --items 5
    python -m apps.recsys.infer --model runs/recsys/onerec --user 196
    python -m apps.recsys.infer serve --model runs/recsys/onerec --port 8000
    curl -s localhost:8000/generate -H 'content-type: application/json' \\
         -d '{"prompts": ["50,172,181", "user=196"], "params": {"items": 5, "beams": 8}}'

--model is a training run folder (its final model, semantic IDs and data; `--stage onerec_sft` or
`onerec_ipa_r1` picks another of its models). A prompt is a comma-separated history of item ids,
oldest first, or `user=ID` for a user of the run's data (their whole history). Each output is
{"items": [{"id", "title", "year", "genres", "semantic_id"}], "score": the session's beam score,
"history": items read}; the session never repeats an item of the history or of itself, and every
item exists (trie-constrained beam search). An unknown item or user, or an empty history, is a
one-line error (422 for that prompt when served).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from shared.serving.cli import infer_parser, serve, serve_kwargs
from shared.serving.protocol import Param

PROG = "python -m apps.recsys.infer"


class Recommender:
    """A run's generator behind the serving contract: prompts are histories, outputs recommended sessions."""

    name = "recsys"

    def __init__(self, run: Path, stage: str = ""):
        from apps.recsys.config import RecConfig
        from apps.recsys.data import load_data
        from apps.recsys.model import SessionVocab, load_generator
        from apps.recsys.semantic_ids import SemanticIds
        from shared.config import load_yaml

        final_path = run / "final_model.json"
        if not final_path.is_file():
            raise ValueError(f"{run}: not a finished recsys run (no final_model.json)")
        final = json.loads(final_path.read_text())
        self.cfg = load_yaml(RecConfig, run / "config.yaml")
        self.data = load_data(self.cfg.data, self.cfg.seed)
        self.vocab = SessionVocab(SemanticIds.from_dict(json.loads(Path(final["ids"]).read_text())))
        models = final.get("models", {})
        if stage and stage not in models:
            raise ValueError(f"--stage {stage!r}: the run has {', '.join(models) or 'no stages'}")
        self.model = load_generator(models[stage] if stage else final["path"])
        self.histories = {u: [*self.data.split.test[u][0], self.data.split.test[u][1]] for u in self.data.split.test}
        self.accepted_params = {"items": Param(int, 1, 50), "beams": Param(int, 1, 64)}

    def history_of(self, prompt: str) -> list[str]:
        """The history a prompt names; ValueError with a one-line reason otherwise."""
        text = prompt.strip()
        if text.startswith("user="):
            user = text[5:].strip()
            if user not in self.histories:
                raise ValueError(f"unknown user {user!r}")
            return self.histories[user]
        items = [t.strip() for t in text.split(",") if t.strip()]
        if not items:
            raise ValueError("empty history: give item ids (comma-separated) or user=ID")
        unknown = [i for i in items if i not in self.data.items]
        if unknown:
            raise ValueError(f"unknown item {unknown[0]!r}" + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""))
        return items

    def check_prompt(self, prompt: str) -> None:
        self.history_of(prompt)

    def describe(self, item: str) -> dict:
        record = self.data.items[item]
        return {"id": item, "title": record.title, "year": record.year, "genres": list(record.genres),
                "semantic_id": "".join(self.vocab.text(self.vocab.item_ids(item)).split())}

    def generate(self, prompts: list[str], items: int | None = None, beams: int = 8, **_: Any) -> list[dict]:
        from apps.recsys.model import generate_sessions

        m = items or self.cfg.data.session
        histories = [self.history_of(p) for p in prompts]
        found = generate_sessions(self.model, self.vocab, histories, items=m, beams=beams, returns=1,
                                  max_history=self.cfg.data.max_history, exclude_history=self.cfg.eval.exclude_history)
        return [{"items": [self.describe(i) for i in s[0]["items"]], "score": s[0]["score"],
                 "history": len(h[-self.cfg.data.max_history:])} for h, s in zip(histories, found)]


def main(argv: list[str] | None = None) -> None:
    from shared.kit import fail

    parser, rest, serving = infer_parser(PROG, __doc__, list(sys.argv[1:] if argv is None else argv), text=False)
    parser.add_argument("--stage", default="", help="another model of the run (onerec_sft, onerec_ipa_r1, ...)")
    if not serving:
        parser.add_argument("--history", help="item ids, oldest first, comma-separated")
        parser.add_argument("--user", help="a user of the run's data")
        parser.add_argument("--items", type=int, default=0, help="items in the session (default: data.session)")
        parser.add_argument("--beams", type=int, default=8)
    args = parser.parse_args(rest)
    try:
        recommender = Recommender(Path(args.model), args.stage)
        if serving:
            serve(recommender, **serve_kwargs(args))
            return
        if bool(args.history) == bool(args.user):
            raise ValueError("give exactly one of --history and --user")
        prompt = f"user={args.user}" if args.user else args.history
        out = recommender.generate([prompt], items=args.items or None, beams=args.beams)[0]
    except (ValueError, OSError) as exc:
        fail(PROG, exc)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
