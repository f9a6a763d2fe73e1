"""Evaluate RAG answer generators with ALCE's metrics on held-out questions, per document setting.

    python -m apps.rag.eval --run runs/rag/pa_rag                       # base, SFT, every stage of the run
    python -m apps.rag.eval --run runs/rag/pa_rag --model only_citation=runs/rag/only_citation
    python -m apps.rag.eval --model sft=runs/rag/pa_rag/sft/model --questions 60 --settings golden mislead
    python -m apps.rag.eval --run runs/rag/paper --judge path/to/nli-model   # file data: an NLI judge

With --run, the table has the base model, the run's SFT model and the model after each PA-RAG
stage, plus every --model (`NAME=SOURCE`: `smollm2`, a run folder, or a save_pretrained folder).
Each model answers every held-out question greedily in each document setting (golden only,
golden + distractors, golden + misleading; `retrieved`: BM25's top five), and each answer gets
ALCE's str_em, citation recall, precision and F1 (`metrics.py`; entailment exact from the
knowledge base, or --judge an NLI classifier). Intervals: 95% bootstrap over questions. Greedy
decoding does not depend on the seed, so each model runs once. Answers, with their scores, are
written to --out/<model>/answers_<setting>.jsonl; the table to --out/table.md (+ results.json,
results.csv, a PNG per metric).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from apps.rag.data import Example
from apps.rag.metrics import Entailment, answer_row
from apps.rag.prompts import rag_prompt
from shared.evaluation import Metric
from shared.kit import EvalArgs

if TYPE_CHECKING:
    from apps.rag.config import RagConfig

PROG = "python -m apps.rag.eval"
SETTING_NAMES = {"golden": "golden", "distract": "+distract", "mislead": "+mislead", "retrieved": "BM25 top-5",
                 "given": "given"}


@dataclass
class RagEvalArgs(EvalArgs):
    """How answers are judged, and the quick held-out check after each stage.

    Attributes:
        judge: "kb" (exact entailment from the embedded knowledge base) or a path to an NLI classifier.
        questions: held-out questions in the quick check after SFT and each stage (0: all); the eval CLI's --questions.
        max_new_tokens: answer length limit.
        batch_size: sequences per generate call.
    """

    judge: str = "kb"
    questions: int = 24
    max_new_tokens: int = 64
    batch_size: int = 16


def answer_examples(model, tokenizer, items: list[Example], *, max_new_tokens: int, batch_size: int,
                    temperature: float = 0.0, seed: int = 0) -> list[str]:
    """One answer per example (greedy unless temperature > 0)."""
    from shared.generation import sample_texts

    prompts = [rag_prompt(e.question, e.docs) for e in items]
    out = sample_texts(model, tokenizer, prompts, samples=1, temperature=temperature, max_new_tokens=max_new_tokens,
                       batch_size=batch_size, seed=seed)
    return [texts[0] for texts in out]


def score_answers(items: list[Example], answers: list[str], entails: Entailment) -> list[dict]:
    """One row per answer: the example's id, setting and kind, the answer and ALCE's metrics."""
    return [{"qid": e.qid, "setting": e.setting, "kind": e.kind, "answer": a,
             **answer_row(a, e.answers, e.docs, entails)} for e, a in zip(items, answers)]


METRIC_FIELDS = (("str_em", "EM"), ("citation_recall", "rec"), ("citation_precision", "prec"), ("citation_f1", "F1"))


def metrics_for(settings: list[str]) -> list[Metric]:
    """EM, citation recall, precision and F1 per document setting (columns `EM golden`, ...)."""
    return [Metric(f"{name}/{s}", f"{label} {SETTING_NAMES.get(s, s)}", field=name, where=("setting", s))
            for s in settings for name, label in METRIC_FIELDS]


def summary(rows: list[dict], settings: list[str]) -> dict[str, float]:
    """Point values of every metric (the training run's quick check)."""
    return {m.name: m.point(rows) for m in metrics_for(settings)}


def main(argv: list[str] | None = None) -> None:
    from apps.rag.data import embedded_world, examples, load_questions
    from apps.rag.entailment import make_entailment
    from apps.rag.retrieval import make_retriever, world_corpus
    from shared.config import ConfigError, load_yaml
    from shared.evaluation import evaluate_models
    from shared.kit import eval_parser, fail, named
    from shared.kit.stages import set_threads
    from shared.models import load_policy, resolve_model
    from shared.records import write_jsonl

    parser = eval_parser(PROG, __doc__, run=False)
    parser.add_argument("--run", type=Path, help="a training run folder: its base, SFT and stage models, data and judge")
    parser.add_argument("--questions", type=int, help="held-out questions (default: data.max_heldout, 0: all)")
    parser.add_argument("--settings", nargs="+", help="document settings (default: the run's data.settings)")
    parser.add_argument("--judge", help="kb, or an NLI classifier path (default: the run's eval.judge)")
    args = parser.parse_args(argv)
    from apps.rag.config import RagConfig

    try:
        cfg = RagConfig()
        if args.run:
            cfg = load_yaml(RagConfig, args.run / "config.yaml")
        models = {}
        if args.run:
            base = cfg.model.path if cfg.model.source == "hf" else cfg.model.source
            if base and base != "tiny":  # a tiny model built from config has no base to load
                models["base"] = base
            models["sft"] = str(args.run / "sft" / "model")
            for stage in cfg.stages:
                folder = args.run / stage / "round_000" / "checkpoint" / "model"
                if folder.exists():
                    models[stage] = str(folder)
        models.update(named(m) for m in args.model)
        if not models:
            raise ValueError("nothing to evaluate: give --run or --model NAME=SOURCE")
        settings = args.settings or cfg.data.settings
        questions = load_questions(cfg.data.heldout, seed=cfg.data.seed, heldout_share=cfg.data.heldout_share,
                                   limit=args.questions or cfg.data.max_heldout)
        kb = embedded_world(cfg.data.seed, cfg.data.heldout_share)[0] if cfg.data.heldout.startswith("embedded") else None
        retriever = None
        if "retrieved" in settings and kb is not None:
            _, train, heldout = embedded_world(cfg.data.seed, cfg.data.heldout_share)
            retriever = make_retriever(cfg.data.retriever, world_corpus(train + heldout))
        items = examples(questions, settings, cfg.data.seed, retriever)
        entails = make_entailment(args.judge or cfg.eval.judge, kb)
        resolved = {name: resolve_model(source) for name, source in models.items()}
    except (ValueError, OSError, ConfigError) as exc:
        fail(PROG, exc)
    set_threads()
    out_dir = args.out or ((args.run / "eval") if args.run else Path("runs/rag/eval"))
    used = sorted({e.setting for e in items}, key=lambda s: list(SETTING_NAMES).index(s))

    def score(name: str, _source, seed: int) -> list[dict]:
        spec, _ = resolved[name]
        model, tok = load_policy(spec)
        answers = answer_examples(model, tok, items, max_new_tokens=cfg.eval.max_new_tokens,
                                  batch_size=cfg.eval.batch_size, seed=seed)
        rows = score_answers(items, answers, entails)
        for s in used:
            write_jsonl(out_dir / name / f"answers_{s}.jsonl", [r for r in rows if r["setting"] == s])
        print(f"{name}: " + " ".join(f"{k} {v:.3f}" for k, v in summary(rows, used).items()
                                     if k.startswith(("str_em", "citation_f1"))), flush=True)
        return rows

    level = args.level or cfg.eval.level
    evaluate_models(models, score, metrics_for(used), seeds=[(args.seeds or cfg.eval.seeds)[0]],
                            out_dir=out_dir, resamples=args.resamples or cfg.eval.resamples, level=level,
                            caption=f"ALCE metrics on {len(questions)} held-out questions ({cfg.data.heldout}), "
                                    f"greedy answers; judge: {args.judge or cfg.eval.judge}; "
                                    f"{level:.0%} bootstrap intervals over questions.",
                            headline=f"citation_f1/{used[-1]}",
                            settings={"questions": len(questions), "settings": used,
                                      "judge": args.judge or cfg.eval.judge, "models": models})


if __name__ == "__main__":
    main()
