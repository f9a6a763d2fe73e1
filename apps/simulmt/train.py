"""Train a simultaneous translator with SimulPL: multi-task SFT, then latency-aware DPO (and plain DPO as the ablation).

    python -m apps.simulmt.train                                        # the embedded default (configs/simulmt/simulpl.yaml)
    python -m apps.simulmt.train --config configs/simulmt/tiny.yaml     # a one-minute smoke run
    python -m apps.simulmt.train methods=[simulpl] simulpl.gamma=0 run_dir=runs/simulmt/no_margin
    python -m apps.simulmt.train --help                                 # every option with its default

SFT trains the policy's two tasks on the training pairs (apps/simulmt/stream.py): the read/write
task under <simul> (each reference written on the earliest schedule its alignment allows, reads
scored) and the translation task under <translate> (wait-k schedules with random k and full
sentences, target tokens scored). Each preference method then runs shared.loop from the SFT
model: decode training sentences at several thresholds with sampling, score the candidates on
SimulPL's aspects and latency (apps/simulmt/preferences.py), pair them, train (simulpl:
latency_dpo with the read tokens scored; dpo: sigmoid on target tokens only), check held-out
sentences. Everything lands in the run folder and a rerun resumes: init/model, sft/model,
<method>/round_NNN/ (candidates, scores, pairs, checkpoint, metrics). final_model.json names the
SimulPL model and every stage's folder; `python -m apps.simulmt.eval --run RUN` evaluates them all.
"""

from __future__ import annotations

import random
from dataclasses import asdict
from pathlib import Path

from apps.simulmt.config import METHODS, MethodArgs, SimulConfig
from apps.simulmt.data import load_split, oracle_delays
from apps.simulmt.decode import Setting, SimultaneousDecoder, Trajectory
from apps.simulmt.language import SentencePair
from apps.simulmt.latency import corpus_latency, wait_k_delays
from apps.simulmt.preferences import build_pairs, lexicon_for, score_candidate
from apps.simulmt.quality import corpus_quality
from apps.simulmt.stream import Vocabulary, build_initial_policy, encode_schedule
from shared.atomic import write_json
from shared.kit import finish_run, loop_errors, policy_at, reference_for, run_sft, start_run, train_stage
from shared.loop import LoopError, RecipeFunctions, run_loop
from shared.models import save_merged, saved_spec
from shared.modules import PreferenceCollator, PreferenceModule
from shared.modules.data import EncodedPair
from shared.records import Candidate, Pair
from shared.training import make_loader

PROG = "python -m apps.simulmt.train"
SFT_TASKS = ("simul", "translate")


def sft_examples(pairs: list[SentencePair], vocab: Vocabulary, cfg: SimulConfig, seed: int) -> list[tuple]:
    """(prompt ids, completion ids, scored mask) of both SFT tasks for every pair and reference."""
    rng, s, out = random.Random(seed), cfg.sft, []
    for pair in pairs:
        refs = pair.references[: s.references or None]
        for r, ref in enumerate(refs):
            target = ref.split()
            if "simul" in s.tasks:
                lag = len(pair.source) if rng.random() < s.full_sentence_share else rng.randint(0, s.extra_lag_max)
                delays = [min(d + lag, len(pair.source)) for d in oracle_delays(pair, r, cfg.data.default_lag)]
                out.append(encode_schedule(vocab, "simul", pair.source, target, delays, score_reads=True))
            if "translate" in s.tasks:
                full = rng.random() < s.full_sentence_share
                k = len(pair.source) if full else rng.randint(1, s.wait_k_max)
                out.append(encode_schedule(vocab, "translate", pair.source, target,
                                           wait_k_delays(k, len(pair.source), len(target)), score_reads=False))
    return [(p, c[: max(1, s.max_length - len(p))], m[: max(1, s.max_length - len(p))]) for p, c, m in out]


def decoder_at(cfg: SimulConfig, folder: Path, seed: int) -> SimultaneousDecoder:
    model, tok = policy_at(cfg.model, folder, seed, lora=False)
    d = cfg.decode
    return SimultaneousDecoder(model, tok, max_ratio=d.max_ratio, max_extra=d.max_extra, batch_size=d.batch_size)


def quick_eval(cfg: SimulConfig, folder: Path, heldout: list[SentencePair], seed: int) -> dict[str, float]:
    """BLEU, chrF and latency of the model's own policy at eval.quick_threshold on held-out sentences."""
    pairs = heldout[: cfg.eval.quick_sentences or None]
    trajs = decoder_at(cfg, folder, seed).decode([p.source for p in pairs], Setting("threshold", cfg.eval.quick_threshold))
    quality = corpus_quality([t.text for t in trajs], pairs)
    latency = corpus_latency([(t.delays, len(p.source), len(p.reference.split())) for t, p in zip(trajs, pairs)])
    return {"BLEU": quality["BLEU"], "chrF": quality["chrF"], **latency}


def candidates_of(pairs: list[SentencePair], trajs_by_setting: dict[str, list]) -> list[Candidate]:
    out = []
    for setting, trajs in trajs_by_setting.items():
        for k, (pair, traj) in enumerate(zip(pairs * (len(trajs) // len(pairs)), trajs)):
            out.append(Candidate(prompt_id=pair.id, prompt=" ".join(pair.source), output=traj.text, metadata={
                "setting": setting, "sample": k // len(pairs), "target": traj.target, "delays": traj.delays,
                "completion": traj.completion, "scored": traj.scored, "truncated": traj.truncated}))
    return out


def to_pairs(scored: list[Candidate], by_id: dict[str, SentencePair], cfg: SimulConfig) -> list[Pair]:
    """Pairs per source sentence by the SimulPL rule; streams and both sides' scores kept in metadata."""
    groups: dict[str, list[Candidate]] = {}
    for c in scored:
        groups.setdefault(c.prompt_id, []).append(c)
    out = []
    for sid, group in groups.items():
        rows = [{**c.scores, "target": c.metadata["target"], "delays": c.metadata["delays"]} for c in group]
        for i, j, margin in build_pairs(by_id[sid], rows, cfg.pairing):
            win, lose = group[i], group[j]
            out.append(Pair(prompt="<simul> " + win.prompt, chosen=win.output, rejected=lose.output, margin=margin,
                            metadata={"id": sid, "chosen_stream": [win.metadata["completion"], win.metadata["scored"]],
                                      "rejected_stream": [lose.metadata["completion"], lose.metadata["scored"]],
                                      "chosen_scores": win.scores, "rejected_scores": lose.scores,
                                      "chosen_setting": win.metadata["setting"], "rejected_setting": lose.metadata["setting"]}))
    return out


def encode_for(pairs: list[Pair], vocab: Vocabulary, method: MethodArgs) -> list[EncodedPair]:
    """Token streams of the pairs; with score_actions false the <read> tokens are not scored (target tokens only)."""
    def stream(value):
        ids, scored = value
        if not method.score_actions:
            scored = [0 if t == vocab.read else s for t, s in zip(ids, scored)]
        return ids[: method.max_length], tuple(scored[: method.max_length])

    out = []
    for p in pairs:
        (chosen, c_mask), (rejected, r_mask) = stream(p.metadata["chosen_stream"]), stream(p.metadata["rejected_stream"])
        out.append(EncodedPair(vocab.prompt("simul"), chosen, rejected, margin=p.margin or 0.0,
                               chosen_scored=c_mask, rejected_scored=r_mask))
    return out


def fit_method(cfg: SimulConfig, method: MethodArgs, start: Path):
    """shared.loop's fit: train the pairs from the previous round's model (round 1: SFT) and save it."""

    def fit(round, pairs, schedule, init_checkpoint):
        policy, tok = policy_at(cfg.model, init_checkpoint or start, round.seed, lora=True)
        kwargs = {"beta": method.beta, **({"gamma": method.gamma} if method.loss == "latency_dpo" else {})}
        module = PreferenceModule(policy, reference_for(method.reference, cfg.model, policy), loss=method.loss,
                                  loss_kwargs=kwargs, lr=method.lr, rpo_alpha=method.rpo_alpha)
        data = encode_for(list(pairs), Vocabulary(tok), method)
        train_stage(round.dir / "fit", cfg.trainer, method.steps, round.seed, module,
                    make_loader(data, method.batch_size, PreferenceCollator(tok.pad_token_id), seed=round.seed))
        return save_merged(policy, tok, round.checkpoint_dir / "model")

    return fit


def run_method(cfg: SimulConfig, name: str, start: Path, train: list[SentencePair],
               heldout: list[SentencePair]) -> tuple[Path, dict]:
    """One preference method through shared.loop from the SFT model: sample, score, pair, fit, evaluate."""
    method: MethodArgs = getattr(cfg, name)
    c = cfg.candidates
    by_id = {p.id: p for p in train}
    lex = lexicon_for(train)

    def sources_for(round_index: int) -> list[SentencePair]:
        n = c.sources or len(train)
        offset = (round_index * n) % len(train)
        return (train[offset:] + train[:offset])[:n]

    def sample(round, checkpoint, schedule):
        pairs = sources_for(round.index)
        decoder = decoder_at(cfg, checkpoint or start, round.seed)
        print(f"{name} round {round.index + 1}: decoding {len(pairs)} sources x {len(c.thresholds)} thresholds "
              f"x {c.n} samples", flush=True)
        trajs = {}
        for t in c.thresholds:
            sources = [p.source for p in pairs] * c.n
            trajs[Setting("threshold", t).name] = decoder.decode(sources, Setting("threshold", t),
                                                                 temperature=c.temperature, seed=round.seed)
        return candidates_of(pairs, trajs)

    def score(round, candidates):
        out = []
        for cand in candidates:
            pair = by_id[cand.prompt_id]
            traj = Trajectory(pair.source, cand.metadata["target"], cand.metadata["delays"], [], [], [],
                              cand.metadata["truncated"])
            scores = score_candidate(pair, traj, cfg.pairing, lex)
            out.append(Candidate(cand.prompt_id, cand.prompt, cand.output,
                                 {k: float(v) for k, v in scores.items() if v is not None}, cand.metadata))
        return out

    def build(round, scored):
        pairs = to_pairs(scored, by_id, cfg)
        print(f"{name} round {round.index + 1}: {len(pairs)} pairs from {len({c.prompt_id for c in scored})} sources",
              flush=True)
        if not pairs:
            raise LoopError(f"{name}: no pair met the preference rule; sample more (candidates.n, candidates.thresholds) "
                            "or relax pairing.min_gain / pairing.min_latency_gain")
        return pairs

    def evaluate(round, checkpoint):
        return quick_eval(cfg, checkpoint, heldout, round.seed)

    fit = fit_method(cfg, method, start)
    result = run_loop(RecipeFunctions(sample, score, build, fit, evaluate), cfg.run_dir / name, method.rounds,
                      # every method samples with the same seed: from the same SFT model, round 1's candidates and
                      # pairs are the same, so the methods differ only in how they train on them
                      schedule={"temperature": [c.temperature] * method.rounds}, seed=cfg.seed,
                      initial_checkpoint=start,
                      config={"method": asdict(method), "candidates": asdict(c), "pairing": asdict(cfg.pairing),
                              "decode": asdict(cfg.decode), "data": asdict(cfg.data), "start": str(start)})
    return result.checkpoint, result.metrics[-1]


def load_data(cfg: SimulConfig) -> tuple[list[SentencePair], list[SentencePair]]:
    """Training and held-out pairs; a malformed file or option raises one line."""
    unknown = [m for m in cfg.methods if m not in METHODS] + [t for t in cfg.sft.tasks if t not in SFT_TASKS]
    if unknown:
        raise ValueError(f"methods / sft.tasks: unknown name {unknown[0]!r} (methods: {', '.join(METHODS)}; "
                         f"tasks: {', '.join(SFT_TASKS)})")
    for t in [*cfg.candidates.thresholds, *cfg.eval.thresholds, cfg.eval.quick_threshold]:
        Setting("threshold", t)
    for lag in cfg.eval.min_lags:
        Setting("threshold", cfg.eval.lag_threshold, lag)
    for k in cfg.eval.wait_k:
        Setting("wait_k", k)
    train, heldout = load_split(cfg.data, "train"), load_split(cfg.data, "heldout")
    return train, heldout


def vocabulary_words(pairs: list[SentencePair]) -> list[str]:
    """Every word of the pairs (the tiny model's word-level vocabulary); the embedded lexicon's when generated."""
    lex = lexicon_for(pairs)
    if lex is not None:
        return lex.source_words() + lex.target_words()
    return sorted({w for p in pairs for text in [" ".join(p.source), *p.references] for w in text.split()})


def main(argv: list[str] | None = None) -> dict:
    cfg, (train, heldout) = start_run(SimulConfig, argv, doc=__doc__, prog=PROG, prepare=load_data)
    words = vocabulary_words(train + heldout)
    init = build_initial_policy(cfg.model, words, cfg.run_dir / "init" / "model")
    start = run_sft(cfg.run_dir, saved_spec(cfg.model, init, cfg.seed, lora=True), cfg.sft, cfg.trainer, cfg.seed,
                    lambda tok: sft_examples(train, Vocabulary(tok), cfg, cfg.seed),
                    f"(streams of {', '.join(cfg.sft.tasks)}) from {len(train)} pairs", tokenized=True)
    metrics = {"sft": _sft_metrics(cfg, start, heldout)}
    _print("sft", metrics["sft"])
    folders = {"sft": str(start.resolve())}
    for name in cfg.methods:
        with loop_errors(PROG):
            folder, metrics[name] = run_method(cfg, name, start, train, heldout)
        folders[name] = str(Path(folder).resolve())
        _print(name, metrics[name])
    final = Path(folders.get("simulpl", folders[cfg.methods[-1]] if cfg.methods else folders["sft"]))
    return finish_run(cfg.run_dir, final, {"methods": cfg.methods, "models": folders, "heldout": metrics},
                      models=folders)


def _sft_metrics(cfg: SimulConfig, start: Path, heldout: list[SentencePair]) -> dict:
    import json

    path = cfg.run_dir / "sft" / f"heldout_tau{cfg.eval.quick_threshold:g}_n{cfg.eval.quick_sentences}.json"
    if path.is_file():
        return json.loads(path.read_text())
    metrics = quick_eval(cfg, start, heldout, cfg.seed)
    write_json(path, metrics)
    return metrics


def _print(name: str, m: dict[str, float]) -> None:
    print(f"held-out after {name}: " + "  ".join(f"{k} {v:.3f}" for k, v in m.items()), flush=True)


if __name__ == "__main__":
    main()
