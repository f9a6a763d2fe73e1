"""Evaluate a recsys run on held-out next items and on the sessions its generators write.

    python -m apps.recsys.eval --run runs/recsys/onerec [--users N] [--seeds 0 1]

Rows are the run's models: popularity, the SASRec-style baseline, the generator before IPA
(onerec_sft) and after each IPA round (onerec_ipa_rN); `--model NAME=FOLDER` adds a saved generator.
Columns:
- HR@K and NDCG@K (K in eval.ks) of each test user's last item (RecBole's definitions, one target,
  apps.recsys.metrics), from a ranked list of K distinct items the user never interacted with: the
  popularity order, SASRec's logits, or the first items of the generator's constrained beams.
- For sessions (data.session items): each generator beam-searches eval.sessions sessions per user;
  rm_<signal> is the reward model's mean probability over a session's items, averaged over the
  user's sessions (mean) and its best session (max); true is the simulator's true engagement of the
  top session (mean of click, like, watch probabilities). Baselines' session is their top items.
- invalid: share of items in *unconstrained* top sessions that name no item (constrained decoding
  makes it 0 by construction; this counts what the constraint prevents).
Intervals are bootstrap intervals over users; seeds change the users drawn with --users.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np

PROG = "python -m apps.recsys.eval"


def metric_list(ks, signals):
    from shared.evaluation import Metric

    out = [Metric(f"hit@{k}", f"HR@{k}") for k in ks] + [Metric(f"ndcg@{k}", f"NDCG@{k}") for k in ks]
    out += [Metric(f"rm_{s}_mean", f"RM {s} mean") for s in signals]
    out += [Metric(f"rm_{s}_max", f"RM {s} max") for s in signals]
    out += [Metric("rm_reward_max", "RM reward max"), Metric("true", "true engagement"),
            Metric("invalid", "invalid (unconstrained)")]
    return out


def main(argv: list[str] | None = None) -> None:
    from apps.recsys.baselines import ItemTokens, popularity_ranking
    from apps.recsys.config import RecConfig
    from apps.recsys.data import load_data
    from apps.recsys.metrics import ranking_row
    from apps.recsys.model import SessionVocab, generate_sessions, load_generator
    from apps.recsys.reward import RewardScorer
    from apps.recsys.semantic_ids import SemanticIds
    from apps.recsys.simulator import SIGNALS
    from shared.config import ConfigError, load_yaml
    from shared.evaluation import evaluate_models
    from shared.kit import eval_parser, fail, named
    from shared.kit.stages import set_threads

    parser = eval_parser(PROG, __doc__)
    parser.add_argument("--users", type=int, help="test users evaluated (default: eval.users, 0: all)")
    args = parser.parse_args(argv)
    try:
        cfg = load_yaml(RecConfig, args.run / "config.yaml")
        final = json.loads((args.run / "final_model.json").read_text())
        data = load_data(cfg.data, cfg.seed)
        vocab = SessionVocab(SemanticIds.from_dict(json.loads(Path(final["ids"]).read_text())))
        scorer = RewardScorer.load(final["reward"])
        models: dict[str, str] = {"popularity": "popularity"}
        if final.get("sasrec"):
            models["sasrec"] = final["sasrec"]
        models.update(final["models"])
        models.update(dict(named(m, "FOLDER") for m in args.model))
    except (ValueError, OSError, ConfigError, KeyError) as exc:
        fail(PROG, exc)
    set_threads()
    ks = sorted(cfg.eval.ks)
    limit = cfg.eval.users if args.users is None else args.users
    seeds = args.seeds or cfg.eval.seeds
    test_users = sorted(data.split.test)
    tokens = ItemTokens(data.item_ids)
    m = cfg.data.session

    def users_for(seed: int) -> list[str]:
        return sorted(random.Random(seed).sample(test_users, limit)) if limit and limit < len(test_users) else test_users

    def session_columns(u: str, history: list[str], sessions: list[list[str]]) -> dict:
        per = [scorer.session_signals(history, s, u) for s in sessions]
        row = {}
        for s in SIGNALS:
            row[f"rm_{s}_mean"] = float(np.mean([p[s] for p in per]))
            row[f"rm_{s}_max"] = float(np.max([p[s] for p in per]))
        row["rm_reward_max"] = float(np.max([p["reward"] for p in per]))
        row["true"] = data.simulator.session_engagement(u, history, sessions[0])["total"]
        return row

    def score(name: str, source: str, seed: int) -> list[dict]:
        users = users_for(seed)
        histories = [data.split.test[u][0] for u in users]
        targets = [data.split.test[u][1] for u in users]
        k = max(ks)
        if source == "popularity":
            ranked = [popularity_ranking(data.popularity, h, max(k, m)) for h in histories]
            rows = [{**ranking_row(r[:k], t, ks), **session_columns(u, h, [r[:m]])}
                    for u, h, t, r in zip(users, histories, targets, ranked)]
        elif name == "sasrec":
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_pretrained(source).eval()
            ranked = tokens.rank(model, histories, max(k, m), cfg.sasrec.max_history, cfg.eval.exclude_history)
            rows = [{**ranking_row(r[:k], t, ks), **session_columns(u, h, [r[:m]])}
                    for u, h, t, r in zip(users, histories, targets, ranked)]
        else:
            model = load_generator(source)
            common = dict(max_history=cfg.data.max_history, exclude_history=cfg.eval.exclude_history,
                          batch_size=cfg.eval.batch_size)
            firsts = generate_sessions(model, vocab, histories, items=1, beams=max(cfg.eval.beams, k), returns=k,
                                       **common)
            sessions = generate_sessions(model, vocab, histories, items=m, beams=cfg.eval.sessions,
                                         returns=cfg.eval.sessions, **common)
            free = generate_sessions(model, vocab, histories, items=m, beams=1, returns=1, constrained=False, **common)
            rows = []
            for u, h, t, first, found, loose in zip(users, histories, targets, firsts, sessions, free):
                ranked = [s["items"][0] for s in first if s["items"]]
                kept = [s["items"] for s in found if s["items"]] or [[]]
                made = len(loose[0]["items"]) + loose[0]["invalid"]
                rows.append({**ranking_row(ranked, t, ks), **session_columns(u, h, kept),
                             "invalid": loose[0]["invalid"] / made if made else 1.0})
        return [{"user": u, **r} for u, r in zip(users, rows)]

    out_dir = args.out or args.run / "eval"
    evaluate_models(models, score, metric_list(ks, SIGNALS), seeds=seeds, out_dir=out_dir,
                    caption=f"Held-out next item (leave-last-out, {limit or len(test_users)} users) and generated "
                            f"sessions of {m} items; bootstrap {int(100 * (args.level or cfg.eval.level))}% intervals",
                    headline=f"ndcg@{max(ks)}", resamples=args.resamples or cfg.eval.resamples,
                    level=args.level or cfg.eval.level,
                    settings={"exclude_history": cfg.eval.exclude_history, "beams": cfg.eval.beams,
                              "sessions": cfg.eval.sessions, "reward": final["reward"]})


if __name__ == "__main__":
    main()
