"""The steps train and eval share: sample texts per condition, score them, summarise, write the best as CIF."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from apps.crystal.data import Crystal
from apps.crystal.grammar import WyckoffGrammar
from apps.crystal.metrics import summarize
from apps.crystal.prompts import prompt, prompt_id
from apps.crystal.reward import NoveltyChecker, ScoringService, set_scores
from apps.crystal.wyckoff import decode
from shared.atomic import write_text
from shared.constrained import TokenAutomaton
from shared.generation import sample_texts
from shared.records import Candidate, write_jsonl

Condition = tuple[str | None, int | None]  # (formula, space group); (None, None) is unconditional


def frequent_spacegroups(crystals: Sequence[Crystal], n: int) -> list[int]:
    """The n most frequent space groups (ties by number): the conditions sampled during training rounds."""
    counts = Counter(c.spacegroup for c in crystals)
    return [sg for sg, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def heldout_spacegroups(heldout: Sequence[Crystal], n: int, seed: int) -> list[int]:
    """n distinct space groups of held-out structures (seeded): the conditional evaluation's requests."""
    groups = sorted({c.spacegroup for c in heldout})
    random.Random(seed).shuffle(groups)
    return sorted(groups[:n])


def format_constraint(tok, constrained: bool, max_atoms: int) -> TokenAutomaton | None:
    """The Wyckoff-format automaton for this tokenizer when sampling is constrained (apps.crystal.grammar)."""
    return TokenAutomaton(WyckoffGrammar(max_atoms), tok) if constrained else None


def generate(model, tok, requests: Sequence[tuple[Condition, int]], *, temperature: float, top_p: float,
             max_new_tokens: int, batch_size: int, seed: int, constraint: TokenAutomaton | None = None) -> list[Candidate]:
    """Return candidates for each (condition, number of samples) request (format-constrained with `constraint`)."""
    out = []
    for (formula, sg), n in requests:
        if n <= 0:
            continue
        texts = sample_texts(model, tok, [prompt(formula, sg)], samples=n, temperature=temperature, top_p=top_p,
                             max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed + (sg or 0),
                             constraint=constraint)[0]
        out.extend(Candidate(prompt_id=prompt_id(formula, sg), prompt=prompt(formula, sg), output=t,
                             metadata={"requested_formula": formula, "requested_sg": sg, "sample": j})
                   for j, t in enumerate(texts))
    return out


def score(candidates: Sequence[Candidate], service: ScoringService, novelty: NoveltyChecker) -> list[Candidate]:
    """Fill scores (physics per text, then novelty / uniqueness / space-group match within each condition)."""
    texts = [c.output for c in candidates]
    physics, reasons = service(texts)
    scored = []
    by_condition: dict[str, list[int]] = {}
    for i, c in enumerate(candidates):
        by_condition.setdefault(c.prompt_id, []).append(i)
    extra: dict[int, dict[str, float]] = {}
    for idx in by_condition.values():  # uniqueness is counted within one condition's samples
        for i, s in zip(idx, set_scores([texts[i] for i in idx], [candidates[i].metadata.get("requested_sg") for i in idx],
                                        novelty)):
            extra[i] = s
    for i, c in enumerate(candidates):
        metadata = dict(c.metadata)
        if reasons[i]:
            metadata["reason"] = reasons[i]
        scored.append(replace(c, scores={**physics[i], **extra[i]}, metadata=metadata))
    return scored


def summarize_candidates(scored: Sequence[Candidate]) -> dict[str, float]:
    """Rates over unconditional samples, and the space-group match rate over conditional ones."""
    uncond = [c.scores for c in scored if c.prompt_id == "unconditional"]
    cond = [c.scores for c in scored if c.metadata.get("requested_sg")]
    return summarize(uncond, cond)


def write_best_cifs(scored: Sequence[Candidate], folder: Path, n: int) -> list[Path]:
    """Write the n lowest-E_hull valid, unique, novel samples (stable first) as CIF files; return their paths."""
    ranked = sorted((c for c in scored if c.scores.get("valid_crystal") == 1.0 and "e_hull" in c.scores
                     and c.scores.get("unique") == 1.0 and c.scores.get("novel") == 1.0),
                    key=lambda c: c.scores["e_hull"])
    paths = []
    for k, c in enumerate(ranked[:n]):
        decoded = decode(c.output)
        if not decoded.ok:
            continue
        s = decoded.structure
        name = f"{k:02d}_{s.composition.reduced_formula}_sg{int(c.scores.get('spacegroup', 0))}_ehull{c.scores['e_hull']:+.3f}.cif"
        paths.append(write_text(folder / name, s.to(fmt="cif")))
    return paths


def evaluation_requests(unconditional: int, spacegroups: Sequence[int], per_spacegroup: int) -> list[tuple[Condition, int]]:
    return [((None, None), unconditional)] + [((None, sg), per_spacegroup) for sg in spacegroups]


def evaluate_model(model, tok, *, requests, temperature: float, top_p: float, max_new_tokens: int, batch_size: int,
                   seed: int, service: ScoringService, novelty: NoveltyChecker, out_dir: Path, best_cifs: int,
                   constraint: TokenAutomaton | None = None) -> dict[str, float]:
    """Sample, score, write samples.jsonl and the best CIFs under out_dir; return the summary."""
    candidates = generate(model, tok, requests, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                          batch_size=batch_size, seed=seed, constraint=constraint)
    scored = score(candidates, service, novelty)
    write_jsonl(out_dir / "samples.jsonl", scored)
    write_best_cifs(scored, out_dir / "best_cifs", best_cifs)
    return {k: v for k, v in summarize_candidates(scored).items() if not math.isnan(v)}
