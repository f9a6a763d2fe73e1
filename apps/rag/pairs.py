"""PA-RAG's three preference stages: which prompts to sample, how samples are scored, which pairs to build.

Every response is the model's own sample (from the model the stage starts from); the pair's
prompt is always the full document list, and answers written over fewer documents are renumbered
into it (`answers.renumber`). Scores are ALCE's (`metrics.answer_row`) on the pair's prompt.

- **informativeness**: prompt = golden + distractors (`distract`). Samples from it and from the
  same list with a random non-empty subset of the golden documents removed. chosen = the full
  list's best sample (str_em, then citation F1); rejected = the subset's worst sample, which must
  have a lower str_em (it covers fewer answers).
- **robustness**: prompt = golden + misleading + distractors (`mislead`; every other question
  `distract`). Samples from it and from its golden documents alone. chosen = the clean list's best
  sample; rejected = the noisy list's worst, which must have a lower str_em (it was misled).
- **citation**: prompt = `mislead` or `distract` (alternating). Samples from it; take the best
  sample by str_em; chosen = its citations corrected by rule (`answers.correct_citations`),
  rejected = the sample as written when its citation F1 is lower, else the corrected answer with a
  citation error put in by rule (`answers.degrade_citations`). Chosen and rejected say the same
  things and differ in citations only.
"""

from __future__ import annotations

import random
from collections import defaultdict

from apps.rag.answers import correct_citations, degrade_citations, renumber
from apps.rag.data import Doc, Example, Question, doc_list
from apps.rag.metrics import Entailment, answer_row
from apps.rag.prompts import rag_prompt
from shared.records import Candidate, Pair

STAGES = ("informativeness", "robustness", "citation")


def _example(q: Question, docs: list[Doc], setting: str) -> Example:
    return Example(q.qid, q.question, q.answers, docs, setting, q.kind, q.facts, q.target)


def stage_prompts(stage: str, questions: list[Question], seed: int) -> list[dict]:
    """Return the prompts to sample: {"example", "variant", "pair_example", "mapping"} per prompt.

    `example` is what the model sees; `pair_example` the pair's full prompt; `mapping` maps the
    example's document numbers to the pair prompt's.
    """
    if stage not in STAGES:
        raise ValueError(f"unknown PA-RAG stage {stage!r} (known: {', '.join(STAGES)})")
    out = []
    for n, q in enumerate(questions):
        rng = random.Random(f"{seed}/{stage}/{q.qid}")
        setting = "distract" if stage == "informativeness" or n % 2 else "mislead"
        full = _example(q, doc_list(q, setting, seed), setting)
        identity = {i: i for i in range(1, len(full.docs) + 1)}
        golden = [i for i, d in enumerate(full.docs, 1) if d.golden]
        out.append({"example": full, "variant": "full", "pair_example": full, "mapping": identity})
        if stage == "citation" or not golden:
            continue
        if stage == "informativeness":
            removed = set(rng.sample(golden, rng.randint(1, len(golden))))
            kept = [i for i in range(1, len(full.docs) + 1) if i not in removed]
            variant = "subset"
        else:
            kept, variant = golden, "clean"
            if len(kept) == len(full.docs):
                continue
        sub = _example(q, [full.docs[i - 1] for i in kept], variant)
        out.append({"example": sub, "variant": variant, "pair_example": full,
                    "mapping": {j: i for j, i in enumerate(kept, 1)}})
    return out


def to_candidates(prompts: list[dict], completions: list[list[str]]) -> list[Candidate]:
    """Candidates for the samples of each prompt (the pair prompt's answer, renumbered, is in metadata)."""
    out = []
    for p, texts in zip(prompts, completions):
        full: Example = p["pair_example"]
        for k, text in enumerate(texts):
            out.append(Candidate(
                prompt_id=full.qid, prompt=rag_prompt(p["example"].question, p["example"].docs), output=text,
                metadata={"variant": p["variant"], "sample": k, "as_pair_answer": renumber(text, p["mapping"]),
                          "pair_example": full.context()}))
    return out


def score_candidates(candidates: list[Candidate], examples: dict[str, Example], entails: Entailment) -> list[Candidate]:
    """Score each candidate's renumbered answer on its pair prompt's documents with ALCE's metrics."""
    out = []
    for c in candidates:
        ex = examples[c.prompt_id]
        row = answer_row(c.metadata["as_pair_answer"], ex.answers, ex.docs, entails)
        out.append(Candidate(c.prompt_id, c.prompt, c.output, {k: float(v) for k, v in row.items()}, c.metadata))
    return out


def _key(c: Candidate) -> tuple[float, float]:
    return c.scores["str_em"], c.scores["citation_f1"]


def build_pairs(stage: str, scored: list[Candidate], examples: dict[str, Example], entails: Entailment,
                seed: int) -> list[Pair]:
    """Return the stage's pairs (at most one per question)."""
    groups: dict[str, list[Candidate]] = defaultdict(list)
    for c in scored:
        groups[c.prompt_id].append(c)
    pairs = []
    for qid, cands in groups.items():
        ex = examples[qid]
        prompt = rag_prompt(ex.question, ex.docs)
        full = [c for c in cands if c.metadata["variant"] == "full"]
        if stage == "citation":
            pair = _citation_pair(ex, full, entails, random.Random(f"{seed}/{qid}"))
        else:
            good = [c for c in cands if c.metadata["variant"] == ("full" if stage == "informativeness" else "clean")]
            bad = [c for c in cands if c.metadata["variant"] == ("subset" if stage == "informativeness" else "full")]
            pair = _content_pair(good, bad)
        if pair is not None:
            chosen, rejected, meta = pair
            pairs.append(Pair(prompt, chosen, rejected, metadata={"stage": stage, "qid": qid, "setting": ex.setting,
                                                                  "kind": ex.kind, **meta}))
    return pairs


def _content_pair(good: list[Candidate], bad: list[Candidate]):
    if not good or not bad:
        return None
    best, worst = max(good, key=_key), min(bad, key=_key)
    if worst.scores["str_em"] >= best.scores["str_em"]:
        return None
    return (best.metadata["as_pair_answer"], worst.metadata["as_pair_answer"],
            {"chosen_scores": best.scores, "rejected_scores": worst.scores})


def _citation_pair(ex: Example, full: list[Candidate], entails: Entailment, rng: random.Random):
    if not full:
        return None
    best = max(full, key=_key)
    chosen = correct_citations(best.output, ex.docs, entails)
    if chosen is None:
        return None
    chosen_row = answer_row(chosen, ex.answers, ex.docs, entails)
    if best.scores["citation_f1"] < chosen_row["citation_f1"] and best.output.strip() != chosen:
        rejected, how = best.output.strip().split("\n")[0], "sample"
    else:
        rejected, how = degrade_citations(chosen, len(ex.docs), rng), "degraded"
    if rejected == chosen:
        return None
    return chosen, rejected, {"rejected_from": how, "chosen_scores": chosen_row, "rejected_scores":
                              answer_row(rejected, ex.answers, ex.docs, entails)}
