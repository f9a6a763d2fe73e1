"""Train a RAG answer generator with PA-RAG: SFT, then DPO for informativeness, robustness and citation quality.

    python -m apps.rag.train                                      # the embedded default (configs/rag/pa_rag.yaml)
    python -m apps.rag.train --config configs/rag/tiny.yaml       # a few-minute smoke run
    python -m apps.rag.train stages=[citation] sft.init_from=runs/rag/pa_rag/sft/model run_dir=runs/rag/only_citation
    python -m apps.rag.train --help                               # every option with its default

SFT teaches the answer format on answers written from the golden documents; each DPO stage then
samples the model it starts from, builds its pairs by rule (apps/rag/pairs.py), trains from that
model with its own learning rate, and checks held-out questions. Every stage writes into the run
folder and is skipped when a rerun finds it complete: sft/model, then <stage>/round_000/
(candidates, scored candidates, pairs, Lightning checkpoint, metrics). The final model is named in
final_model.json; `python -m apps.rag.eval --run RUN` and `python -m apps.rag.infer --model RUN` read it.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from apps.rag.answers import write_answer
from apps.rag.config import RagConfig
from apps.rag.data import Example, Question, embedded_world, examples, load_questions
from apps.rag.entailment import make_entailment
from apps.rag.eval import answer_examples, score_answers, summary
from apps.rag.pairs import STAGES, build_pairs, score_candidates, stage_prompts, to_candidates
from apps.rag.prompts import rag_prompt
from shared.atomic import write_json
from shared.generation import sample_texts
from shared.kit import finish_run, loop_errors, policy_at, preference_round_fit, run_sft, start_run
from shared.loop import LoopError, RecipeFunctions, run_loop

PROG = "python -m apps.rag.train"


def sft_examples(questions: list[Question], settings: list[str], seed: int) -> list[tuple[list[dict], str]]:
    """(chat prompt, cited answer) per training question and setting; examples with nothing to cite are skipped."""
    out = []
    for ex in examples(questions, settings, seed):
        target = write_answer(ex)
        if target is not None:
            out.append((rag_prompt(ex.question, ex.docs), target))
    if not out:
        raise ValueError("no SFT example: file questions need an 'output' (or 'answer') field, embedded ones facts")
    return out


def quick_eval(cfg: RagConfig, folder: Path, heldout: list[Example], entails, seed: int) -> dict[str, float]:
    """ALCE's metrics of the model's greedy answers on the held-out examples."""
    model, tok = policy_at(cfg.model, folder, seed, lora=False)
    answers = answer_examples(model, tok, heldout, max_new_tokens=cfg.eval.max_new_tokens,
                              batch_size=cfg.eval.batch_size, seed=seed)
    return summary(score_answers(heldout, answers, entails), sorted({e.setting for e in heldout}))


def run_stage(cfg: RagConfig, stage: str, index: int, train: list[Question], heldout: list[Example], entails,
              start: Path) -> tuple[Path, dict]:
    """One PA-RAG stage through shared.loop (one round): sample, score, build pairs, DPO from `start`, evaluate."""
    args = getattr(cfg, stage)
    n = args.questions or len(train)
    offset = (index * n) % len(train)
    questions = (train[offset:] + train[:offset])[:n]
    prompts = stage_prompts(stage, questions, cfg.data.seed)
    full = {p["pair_example"].qid: p["pair_example"] for p in prompts}
    s = cfg.sample

    def sample(round, checkpoint, schedule):
        model, tok = policy_at(cfg.model, checkpoint or start, round.seed, lora=False)
        print(f"{stage}: sampling {s.n} answers for {len(prompts)} prompts ({len(questions)} questions)", flush=True)
        texts = sample_texts(model, tok, [rag_prompt(p["example"].question, p["example"].docs) for p in prompts],
                             samples=s.n, temperature=schedule["temperature"], top_p=s.top_p,
                             max_new_tokens=s.max_new_tokens, batch_size=s.batch_size, seed=round.seed)
        return to_candidates(prompts, texts)

    def score(round, candidates):
        return score_candidates(candidates, full, entails)

    def build(round, scored):
        pairs = build_pairs(stage, scored, full, entails, round.seed)
        print(f"{stage}: {len(pairs)} pairs from {len(questions)} questions", flush=True)
        if not pairs:
            raise LoopError(f"{stage}: no pair could be built (every sample scored alike); sample more questions "
                            f"({stage}.questions) or answers (sample.n)")
        return pairs

    def evaluate(round, checkpoint):
        return quick_eval(cfg, checkpoint, heldout, entails, round.seed)

    fit = preference_round_fit(cfg.model, args, cfg.trainer, start)
    result = run_loop(RecipeFunctions(sample, score, build, fit, evaluate), cfg.run_dir / stage, 1,
                      schedule={"temperature": [s.temperature]}, seed=cfg.seed + index, initial_checkpoint=start,
                      config={"stage": {k: v for k, v in asdict(args).items() if k != "rounds"},
                              "sample": {k: v for k, v in asdict(s).items() if k != "temperatures"},
                              "data": {k: v for k, v in asdict(cfg.data).items() if k in ("train", "seed", "heldout_share")},
                              "questions": [q.qid for q in questions]})
    return result.checkpoint, result.metrics[-1]


def sft_metrics(cfg: RagConfig, start: Path, heldout: list[Example], entails) -> dict[str, float]:
    """The SFT model's held-out check, computed once and kept beside this run's SFT model."""
    path = cfg.run_dir / "sft" / "heldout.json"
    if path.is_file():
        return json.loads(path.read_text())
    metrics = quick_eval(cfg, start, heldout, entails, cfg.seed)
    write_json(path, metrics)
    return metrics


def load_data(cfg: RagConfig):
    """Training questions, held-out examples and the entailment judge; a malformed file or option raises one line."""
    unknown = [s for s in cfg.stages if s not in STAGES]
    if unknown:
        raise ValueError(f"stages: unknown stage {unknown[0]!r} (known: {', '.join(STAGES)})")
    d = cfg.data
    train = load_questions(d.train, seed=d.seed, heldout_share=d.heldout_share, limit=d.max_train)
    heldout_q = load_questions(d.heldout, seed=d.seed, heldout_share=d.heldout_share,
                               limit=cfg.eval.questions or d.max_heldout)
    kb = embedded_world(d.seed, d.heldout_share)[0] if d.heldout.startswith("embedded") else None
    settings = [s for s in d.settings if s != "retrieved"]
    heldout = examples(heldout_q, settings, d.seed)
    sft_examples(train[:4], cfg.sft.settings, d.seed)
    return train, heldout, make_entailment(cfg.eval.judge, kb)


def main(argv: list[str] | None = None) -> dict:
    cfg, (train, heldout, entails) = start_run(RagConfig, argv, doc=__doc__, prog=PROG, prepare=load_data)
    start = run_sft(cfg.run_dir, cfg.model, cfg.sft, cfg.trainer, cfg.seed,
                    lambda: sft_examples(train, cfg.sft.settings, cfg.data.seed), f"from {len(train)} questions")
    metrics = {"sft": sft_metrics(cfg, start, heldout, entails)}
    _print("sft", metrics["sft"])
    model = start
    for index, stage in enumerate(cfg.stages):
        with loop_errors(PROG):  # a changed config for a started stage, or a stage with nothing to train on
            model, metrics[stage] = run_stage(cfg, stage, index, train, heldout, entails, model)
        _print(stage, metrics[stage])
    return finish_run(cfg.run_dir, model, {"stages": cfg.stages, "final_model": str(model), "heldout": metrics})


def _print(name: str, m: dict[str, float]) -> None:
    print(f"held-out after {name}: " + "  ".join(f"{k} {v:.3f}" for k, v in m.items()), flush=True)


if __name__ == "__main__":
    main()
