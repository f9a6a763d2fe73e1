"""Train a OneRec-style generative recommender and its baselines on the embedded default (MovieLens-100k).

    python -m apps.recsys.train                                   # the embedded default (CPU, about 20 minutes)
    python -m apps.recsys.train --config configs/recsys/tiny.yaml # a small run
    python -m apps.recsys.train --config configs/recsys/paper_amazon.yaml data.interactions=... data.items=...

Stages, each in its own folder of the run and skipped when done (a rerun resumes):
  ids/        semantic IDs: residual balanced k-means over item embeddings (semantic_ids.json, stats)
  sft/        the encoder-decoder MoE generator trained on (history -> next session) windows
  sasrec/     the SASRec-style baseline
  reward/     the reward model (a tower per engagement signal) trained on simulated impressions, with
              its AUC per signal on fresh impressions against the simulator (report.json)
  ipa/        iterative preference alignment through shared.loop: per round, sessions beam-searched for
              a share of the training users (candidates.jsonl), their rewards (scored.jsonl), best-vs-worst
              pairs (pairs.jsonl), DPO + next-token fit against the previous round's model
final_model.json names the last IPA model and every stage's folder; `python -m apps.recsys.eval --run RUN`
evaluates them all.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np

from apps.recsys.baselines import ItemTokens, build_sasrec
from apps.recsys.config import IPAArgs, RecConfig
from apps.recsys.data import RecData, load_data
from apps.recsys.embeddings import item_embeddings
from apps.recsys.metrics import ranking_row
from apps.recsys.model import PAD, START, SessionVocab, build_generator, generate_sessions, load_generator
from apps.recsys.reward import RewardData, RewardScorer, RewardTowers, reward_report
from apps.recsys.semantic_ids import SemanticIds, assign_semantic_ids
from apps.recsys.simulator import SIGNALS
from shared.atomic import write_json
from shared.kit import finish_run, loop_errors, start_run, train_stage
from shared.loop import RecipeFunctions, run_loop
from shared.models import is_complete, save_merged
from shared.modules import (
    EncodedPair,
    FrozenCopyReference,
    PreferenceCollator,
    PreferenceModule,
    SFTCollator,
    SFTModule,
    SignalRewardModule,
)
from shared.records import Candidate, Pair, read_jsonl
from shared.training import SelectBest, make_loader

PROG = "python -m apps.recsys.train"


def semantic_ids(cfg: RecConfig, data: RecData) -> SemanticIds:
    """The run's semantic IDs (ids/semantic_ids.json), computed once."""
    path = cfg.run_dir / "ids" / "semantic_ids.json"
    if not path.is_file() and cfg.ids.init_from:
        source = Path(cfg.ids.init_from)
        sids = SemanticIds.from_dict(json.loads(source.read_text()))
        missing = [i for i in data.item_ids if i not in set(sids.item_ids)]
        if missing:
            raise ValueError(f"ids.init_from {source}: {len(missing)} items of the data have no ID there, e.g. '{missing[0]}'")
        write_json(path.parent / "stats.json", {"embeddings": f"from {source}", **sids.stats()})
        write_json(path, sids.to_dict())
    if path.is_file():
        return SemanticIds.from_dict(json.loads(path.read_text()))
    vectors = item_embeddings(cfg.ids.embeddings, data.items, data.item_ids, data.split.train, seed=cfg.seed)
    sids = assign_semantic_ids(data.item_ids, vectors, cfg.ids.codebook, collisions=cfg.ids.collisions,
                               iterations=cfg.ids.iterations, seed=cfg.seed)
    write_json(path.parent / "stats.json", {"embeddings": cfg.ids.embeddings, **sids.stats()})
    write_json(path, sids.to_dict())
    print(f"semantic IDs: {len(data.item_ids)} items, codebook {cfg.ids.codebook}, "
          f"{sids.collisions} colliding items ({cfg.ids.collisions})", flush=True)
    return sids


def max_positions(cfg: RecConfig, vocab: SessionVocab) -> int:
    return len(vocab.offsets) * max(cfg.data.max_history, cfg.data.session) + 8


def train_generator(cfg: RecConfig, data: RecData, vocab: SessionVocab) -> Path:
    """The next-session SFT model (sft/model): sft.init_from, the finished folder, or a fresh fit."""
    if cfg.sft.init_from:
        size = json.loads((Path(cfg.sft.init_from) / "config.json").read_text()).get("vocab_size")
        if size != len(vocab):
            raise ValueError(f"sft.init_from {cfg.sft.init_from}: its vocabulary has {size} tokens, these semantic IDs "
                             f"{len(vocab)}; set ids.init_from to the semantic_ids.json it was trained with")
        return Path(cfg.sft.init_from)
    folder = cfg.run_dir / "sft" / "model"
    if is_complete(folder):
        return folder
    model = build_generator(cfg.model, len(vocab), max_positions(cfg, vocab))
    windows = data.windows(cfg.data.max_history, cfg.data.session, cfg.data.window_stride)
    examples = [(vocab.history_ids(h, cfg.data.max_history), vocab.session_ids(s)) for h, s in windows]
    params = sum(p.numel() for p in model.parameters())
    print(f"SFT: {cfg.sft.steps} steps on {len(examples)} (history -> next session) windows, "
          f"generator of {params / 1e6:.2f}M parameters", flush=True)
    module = SFTModule(model, lr=cfg.sft.lr)
    loader = make_loader(examples, cfg.sft.batch_size, SFTCollator(PAD, decoder_start_id=START), seed=cfg.seed)
    callbacks = []
    if cfg.sft.eval_every:
        users, histories, targets = validation_users(cfg, data, cfg.sft.select_users)
        k = max(cfg.eval.ks)

        def score(module) -> float:
            ranked = generate_sessions(module.policy, vocab, histories, items=1, beams=max(cfg.eval.beams, k), returns=k,
                                       max_history=cfg.data.max_history, batch_size=cfg.eval.batch_size)
            return float(np.mean([ranking_row([s["items"][0] for s in r if s["items"]], t, [k])[f"ndcg@{k}"]
                                  for r, t in zip(ranked, targets)]))

        callbacks.append(SelectBest(score, cfg.sft.eval_every, cfg.sft.patience, name=f"ndcg@{k}"))
    train_stage(cfg.run_dir / "sft", cfg.trainer, cfg.sft.steps, cfg.seed, module, loader, callbacks=callbacks,
                curves=("train/loss", "train/nll", "train/aux_loss"))
    record_selection(cfg.run_dir / "sft", callbacks)
    return save_merged(model, vocab.tokenizer(), folder)


def validation_users(cfg: RecConfig, data: RecData, count: int) -> tuple[list[str], list[list[str]], list[str]]:
    """A seeded draw of `count` validation users (0: all) with their histories and validation targets."""
    users = sorted(data.split.valid)
    if count and count < len(users):
        users = sorted(random.Random(cfg.seed).sample(users, count))
    return users, [data.split.valid[u][0] for u in users], [data.split.valid[u][1] for u in users]


def record_selection(stage_dir: Path, callbacks: list) -> None:
    """Write selection.json (the validation checks, the kept step) for a stage trained with SelectBest."""
    for c in callbacks:
        if isinstance(c, SelectBest):
            write_json(stage_dir / "selection.json", {"metric": c.name, "best": c.best, "best_step": c.best_step,
                                                      "history": c.history})
            print(f"{stage_dir.name}: kept step {c.best_step} (validation {c.name} {c.best:.4f})", flush=True)


def train_sasrec(cfg: RecConfig, data: RecData) -> Path | None:
    """The SASRec-style baseline (sasrec/model); None when sasrec.steps is 0."""
    if cfg.sasrec.steps <= 0:
        return None
    folder = cfg.run_dir / "sasrec" / "model"
    if is_complete(folder):
        return folder
    tokens = ItemTokens(data.item_ids)
    model = build_sasrec(cfg.sasrec, len(data.item_ids))
    examples = [tokens.example(seq, cfg.sasrec.max_history) for _, seq in sorted(data.split.train.items()) if seq]
    print(f"SASRec: {cfg.sasrec.steps} steps on {len(examples)} training sequences", flush=True)
    loader = make_loader(examples, cfg.sasrec.batch_size, SFTCollator(PAD, packed=False), seed=cfg.seed)
    callbacks = []
    if cfg.sasrec.eval_every:
        _, histories, targets = validation_users(cfg, data, 0)
        k = max(cfg.eval.ks)

        def score(module) -> float:
            ranked = tokens.rank(module.policy, histories, k, cfg.sasrec.max_history, cfg.eval.exclude_history)
            return float(np.mean([ranking_row(r, t, [k])[f"ndcg@{k}"] for r, t in zip(ranked, targets)]))

        callbacks.append(SelectBest(score, cfg.sasrec.eval_every, cfg.sasrec.patience, name=f"ndcg@{k}"))
    train_stage(cfg.run_dir / "sasrec", cfg.trainer, cfg.sasrec.steps, cfg.seed, SFTModule(model, lr=cfg.sasrec.lr),
                loader, callbacks=callbacks)
    record_selection(cfg.run_dir / "sasrec", callbacks)
    write_json(folder.parent / "items.json", data.item_ids)
    return save_merged(model, tokens.tokenizer(), folder)


def train_reward_model(cfg: RecConfig, data: RecData) -> RewardScorer:
    """The reward model (reward/): trained on simulated impressions of training users; report.json holds its
    AUC per signal on fresh impressions drawn at the users' test histories."""
    folder = cfg.run_dir / "reward"
    if (folder / "report.json").is_file():
        return RewardScorer.load(folder)
    histories = {u: seq for u, seq in data.split.train.items() if seq}
    impressions = data.simulator.sample_impressions(histories, per_user=cfg.reward.impressions_per_user,
                                                    rng=np.random.default_rng(cfg.seed))
    users = sorted(histories) if cfg.reward.user_embeddings else []
    rdata = RewardData(data.item_ids, SIGNALS, cfg.reward.max_history, users)
    rows = [rdata.row(histories[i["user"]], i["item"], i, user=i["user"]) for i in impressions]
    model = RewardTowers(len(data.item_ids), SIGNALS, cfg.reward.dim, cfg.reward.max_history, len(users))
    print(f"reward model: {cfg.reward.steps} steps on {len(rows)} simulated impressions", flush=True)
    train_stage(folder, cfg.trainer, cfg.reward.steps, cfg.seed,
                SignalRewardModule(model, SIGNALS, lr=cfg.reward.lr),
                make_loader(rows, cfg.reward.batch_size, rdata.collate, seed=cfg.seed),
                curves=("train/loss",) + tuple(f"train/loss/{s}" for s in SIGNALS))
    scorer = RewardScorer(model, rdata, cfg.reward.weights)
    scorer.save(folder, cfg.reward, data.item_ids)
    test_histories = {u: h for u, (h, _) in data.split.test.items()}
    heldout = data.simulator.sample_impressions(test_histories, per_user=20, rng=np.random.default_rng(cfg.seed + 1))
    report = reward_report(scorer, heldout, test_histories)
    write_json(folder / "report.json", report)
    print("reward model AUC on held-out impressions: " + ", ".join(
        f"{s} {report[s]['auc']:.3f} (truth {report[s]['truth_auc']:.3f})" for s in SIGNALS), flush=True)
    return scorer


def quick_check(cfg: RecConfig, data: RecData, vocab: SessionVocab, folder: Path, scorer: RewardScorer) -> dict:
    """HR@10 / NDCG@10 on validation users and the reward and true engagement of their top session."""
    users, histories, _ = validation_users(cfg, data, cfg.eval.quick_users)
    model = load_generator(folder)
    k = max(cfg.eval.ks)
    ranked = generate_sessions(model, vocab, histories, items=1, beams=max(cfg.eval.beams, k), returns=k,
                               max_history=cfg.data.max_history, batch_size=cfg.eval.batch_size)
    rows = [ranking_row([s["items"][0] for s in sessions if s["items"]], data.split.valid[u][1], [k])
            for u, sessions in zip(users, ranked)]
    top = generate_sessions(model, vocab, histories, items=cfg.data.session, beams=4, returns=1,
                            max_history=cfg.data.max_history, batch_size=cfg.eval.batch_size)
    rewards = [scorer.session_signals(h, s[0]["items"], u)["reward"] for u, h, s in zip(users, histories, top)]
    truth = [data.simulator.session_engagement(u, h, s[0]["items"])["total"] for u, h, s in zip(users, histories, top)]
    return {f"val_hit@{k}": float(np.mean([r[f"hit@{k}"] for r in rows])),
            f"val_ndcg@{k}": float(np.mean([r[f"ndcg@{k}"] for r in rows])),
            "val_reward": float(np.mean(rewards)), "val_true_engagement": float(np.mean(truth))}


def run_ipa(cfg: RecConfig, data: RecData, vocab: SessionVocab, start: Path, scorer: RewardScorer):
    """OneRec's iterative preference alignment through shared.loop (ipa/round_NNN/)."""
    ipa: IPAArgs = cfg.ipa
    train_users = sorted(u for u, seq in data.split.train.items() if len(seq) >= 1)
    # the request a training user makes: their training sequence, whose next item is the validation target
    request = {u: data.split.train[u][-cfg.data.max_history:] for u in train_users}

    def sample(round, checkpoint, schedule):
        model = load_generator(checkpoint or start)
        count = max(1, int(ipa.users * len(train_users) + 0.5))
        users = sorted(random.Random(round.seed).sample(train_users, min(count, len(train_users))))
        sessions = generate_sessions(model, vocab, [request[u] for u in users], items=cfg.data.session,
                                     beams=ipa.beams, returns=ipa.beams, max_history=cfg.data.max_history,
                                     batch_size=max(1, cfg.eval.batch_size // 4))
        out = []
        for u, found in zip(users, sessions):
            prompt = vocab.text(vocab.history_ids(request[u], cfg.data.max_history))
            for rank, s in enumerate(found):
                if s["items"]:
                    out.append(Candidate(prompt_id=u, prompt=prompt, output=vocab.text(vocab.session_ids(s["items"])),
                                         metadata={"user": u, "items": s["items"], "beam_rank": rank,
                                                   "beam_score": s["score"]}))
        return out

    def score(round, candidates):
        out = []
        for c in candidates:
            u = c.metadata["user"]
            signals = scorer.session_signals(request[u], c.metadata["items"], u)
            truth = data.simulator.session_engagement(u, request[u], c.metadata["items"])["total"]
            out.append(Candidate(c.prompt_id, c.prompt, c.output, {**signals, "true_engagement": truth}, c.metadata))
        return out

    def build(round, scored):
        by_user: dict[str, list[Candidate]] = {}
        for c in scored:
            by_user.setdefault(c.prompt_id, []).append(c)
        pairs = []
        for u, group in sorted(by_user.items()):
            best = max(group, key=lambda c: c.scores["reward"])
            worst = min(group, key=lambda c: c.scores["reward"])
            gap = best.scores["reward"] - worst.scores["reward"]
            if best is worst or gap <= ipa.min_gap:
                continue
            pairs.append(Pair(prompt=best.prompt, chosen=best.output, rejected=worst.output, margin=gap,
                              metadata={"user": u, "chosen_items": best.metadata["items"],
                                        "rejected_items": worst.metadata["items"],
                                        "chosen_true": best.scores["true_engagement"],
                                        "rejected_true": worst.scores["true_engagement"]}))
        return pairs

    def fit(round, pairs, schedule, init_checkpoint):
        policy = load_generator(init_checkpoint or start).train()
        encoded = [EncodedPair(vocab.history_ids(request[p.metadata["user"]], cfg.data.max_history),
                               vocab.session_ids(p.metadata["chosen_items"]),
                               vocab.session_ids(p.metadata["rejected_items"])) for p in pairs]
        module = PreferenceModule(policy, FrozenCopyReference(policy), loss=ipa.loss, loss_kwargs={"beta": ipa.beta},
                                  lr=ipa.lr, rpo_alpha=ipa.ntp_weight)
        loader = make_loader(encoded, ipa.batch_size, PreferenceCollator(PAD, decoder_start_id=START), seed=round.seed)
        train_stage(round.dir / "fit", cfg.trainer, ipa.steps, round.seed, module, loader)
        return save_merged(policy, vocab.tokenizer(), round.checkpoint_dir / "model")

    def evaluate(round, checkpoint):
        metrics = quick_check(cfg, data, vocab, Path(checkpoint), scorer)
        pairs = read_jsonl(round.dir / "pairs.jsonl", Pair)
        if pairs:  # how often the reward model's choice is the truly better session (the simulator knows)
            metrics["pairs_truth_agreement"] = float(np.mean([p.metadata["chosen_true"] > p.metadata["rejected_true"]
                                                              for p in pairs]))
        print(f"IPA round {round.index + 1}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()), flush=True)
        return metrics

    recipe = RecipeFunctions(sample=sample, score=score, build=build, fit=fit, evaluate=evaluate)
    with loop_errors(PROG):
        return run_loop(recipe, cfg.run_dir / "ipa", ipa.rounds, seed=cfg.seed, initial_checkpoint=start,
                        config={"ipa": vars(ipa), "session": cfg.data.session, "max_history": cfg.data.max_history})


def prepare(cfg: RecConfig) -> RecData:
    if cfg.data.session < 1 or cfg.data.max_history < 1:
        raise ValueError("data.session and data.max_history must be at least 1")
    if cfg.eval.beams < max(cfg.eval.ks):
        raise ValueError(f"eval.beams ({cfg.eval.beams}) must be at least the largest K ({max(cfg.eval.ks)})")
    return load_data(cfg.data, cfg.seed)


def main(argv: list[str] | None = None) -> dict:
    cfg, data = start_run(RecConfig, argv, doc=__doc__, prog=PROG, prepare=prepare)
    print(f"data: {len(data.split.test)} users, {len(data.item_ids)} items, "
          f"{sum(len(s) for s in data.split.train.values())} training interactions", flush=True)
    sids = semantic_ids(cfg, data)
    vocab = SessionVocab(sids)
    start = train_generator(cfg, data, vocab)
    sasrec = train_sasrec(cfg, data)
    scorer = train_reward_model(cfg, data)
    # kept with the reward model: its val_reward is that model's score of the SFT model's sessions
    sft_metrics = _cached(cfg.run_dir / "reward" / "sft_quick_check.json", lambda: quick_check(cfg, data, vocab, start, scorer))
    print("SFT: " + ", ".join(f"{k} {v:.4f}" for k, v in sft_metrics.items()), flush=True)
    final, models = start, {"onerec_sft": str(start)}
    if cfg.ipa.rounds > 0:
        result = run_ipa(cfg, data, vocab, start, scorer)
        for i, round_dir in enumerate(sorted((cfg.run_dir / "ipa").glob("round_*"))):
            models[f"onerec_ipa_r{i + 1}"] = str(round_dir / "checkpoint" / "model")
        final = Path(models[f"onerec_ipa_r{cfg.ipa.rounds}"])
        del result
    summary = {"sft": sft_metrics, "models": models, "sasrec": None if sasrec is None else str(sasrec),
               "reward": json.loads((cfg.run_dir / "reward" / "report.json").read_text()),
               "ids": json.loads((cfg.run_dir / "ids" / "stats.json").read_text())}
    return finish_run(cfg.run_dir, final, summary, models=models, sasrec=summary["sasrec"],
                      reward=str((cfg.run_dir / "reward").resolve()),
                      ids=str((cfg.run_dir / "ids" / "semantic_ids.json").resolve()))


def _cached(path: Path, compute) -> dict:
    if path.is_file():
        return json.loads(path.read_text())
    value = compute()
    write_json(path, value)
    return value


if __name__ == "__main__":
    main()
