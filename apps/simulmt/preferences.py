"""SimulPL's five preferences as rule-based scorers, and the latency-aware pairs built from them.

SimulPL prompts GPT-4 with four human preferences (quality, monotonicity, key points, simplicity)
to write preference data and puts the fifth, latency, into the objective. Here the four are rules
over the language pair (stand-ins for the paper's prompts, documented in docs/apps/simulmt.md):

- quality: sentence chrF (sacrebleu) against the references, the best reference counting, / 100.
- key points: the share of the sentence's key points the translation conveys (each is a set of
  words that must all appear: a noun, an adjective, the verb in the right tense and polarity, the
  question mark). Pairs from files carry none: the reference's words stand in (their recall).
- monotonicity: target content words are mapped to the source words they translate (the
  lexicon); the share of consecutive mapped words whose source positions do not go back.
  Without a lexicon (file data) it is not scored (weight moved to quality).
- simplicity: 1 - (words beyond the shortest reference + repeated content words) / words.
- latency: LAAL in source words (and AL), from the candidate's own delays.

The four are combined into one preference score with configurable weights. A pair (chosen w,
rejected l) of the same source is kept when w is better by at least `min_gain` at no more latency,
or at most `tolerance` worse and at least `min_latency_gain` (source-length share) faster: the
issue's "better quality at no more latency, or as good at lower latency". Its margin is
(LAAL_l - LAAL_w) / |source|, what the latency_dpo loss offsets by.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from sacrebleu.metrics import CHRF

from apps.simulmt.decode import Trajectory
from apps.simulmt.language import FUNCTION_WORDS, Lexicon, SentencePair
from apps.simulmt.latency import average_lagging, length_adaptive_average_lagging

_CHRF = CHRF()


@dataclass
class PreferenceArgs:
    """How candidates are scored and paired (SimulPL's preferences; see apps/simulmt/preferences.py).

    Attributes:
        weights: weights of quality, key_points, monotonicity and simplicity in the preference score.
        min_gain: a chosen that is not faster must beat the rejected by this much preference score.
        tolerance: a faster chosen may be this much worse in preference score.
        min_latency_gain: "faster" means LAAL lower by at least this share of the source length.
        pairs_per_source: keep at most this many pairs per source sentence (largest gaps first).
    """

    weights: dict[str, float] = field(default_factory=lambda: {
        "quality": 0.5, "key_points": 0.3, "monotonicity": 0.1, "simplicity": 0.1})
    min_gain: float = 0.05
    tolerance: float = 0.01
    min_latency_gain: float = 0.1
    pairs_per_source: int = 2


def quality(hypothesis: str, references: Sequence[str]) -> float:
    """Sentence chrF against the references (the best one counts), in [0, 1]."""
    return _CHRF.sentence_score(hypothesis, list(references)).score / 100.0


def key_points(words: Sequence[str], pair: SentencePair) -> float:
    """The share of key points conveyed (an alternative counts when all its words appear); file data: reference recall."""
    present = set(words)
    if not pair.key_points:
        ref = pair.reference.split()
        return sum(w in present for w in ref) / len(ref)
    return sum(any(all(w in present for w in alt) for alt in point) for point in pair.key_points) / len(pair.key_points)


def monotonicity(words: Sequence[str], source: Sequence[str], lex: Lexicon | None) -> float | None:
    """Share of consecutive content words (mapped to source positions) that keep the source order; None: no lexicon.

    A content word maps to the first source word that translates to it and is not used up (a
    compound yields two English words, any other word one).
    """
    if lex is None:
        return None
    translations, compounds = _translations(lex), set(lex.compounds.values())
    used: Counter[int] = Counter()
    positions = []
    for word in words:
        if word in FUNCTION_WORDS:
            continue
        for i, s in enumerate(source):
            if word in translations.get(s, ()) and used[i] < (2 if s in compounds else 1):
                used[i] += 1
                positions.append(i)
                break
    if len(positions) < 2:
        return 1.0
    return sum(b >= a for a, b in zip(positions, positions[1:])) / (len(positions) - 1)


@lru_cache(maxsize=4)
def _translations(lex: Lexicon) -> dict[str, set[str]]:
    return lex.translations()


def simplicity(words: Sequence[str], references: Sequence[str]) -> float:
    """1 - (words beyond the shortest reference + repeated content words) / words (0 for an empty output)."""
    if not words:
        return 0.0
    shortest = min(len(r.split()) for r in references)
    content = [w for w in words if w not in FUNCTION_WORDS]
    repeated = len(content) - len(set(content))
    return max(0.0, 1.0 - (max(0, len(words) - shortest) + repeated) / len(words))


def score_candidate(pair: SentencePair, traj: Trajectory, args: PreferenceArgs, lex: Lexicon | None) -> dict:
    """Every aspect of one candidate, its preference score and its latency."""
    words = traj.target
    aspects = {"quality": quality(traj.text, pair.references), "key_points": key_points(words, pair),
               "monotonicity": monotonicity(words, pair.source, lex), "simplicity": simplicity(words, pair.references)}
    weights = dict(args.weights)
    if aspects["monotonicity"] is None:
        weights["quality"] = weights.get("quality", 0) + weights.pop("monotonicity", 0)
    total = sum(weights.get(k, 0) for k in aspects if aspects[k] is not None) or 1.0
    score = sum(weights.get(k, 0) * v for k, v in aspects.items() if v is not None) / total
    n_src, ref_len = len(pair.source), len(pair.reference.split())
    return {**aspects, "preference": score,
            "LAAL": length_adaptive_average_lagging(traj.delays, n_src, ref_len),
            "AL": average_lagging(traj.delays, n_src, ref_len), "words": len(words), "truncated": traj.truncated}


def better(w: dict, lose: dict, n_src: int, args: PreferenceArgs) -> bool:
    """Whether candidate w is preferred to `lose`: better at no more latency, or as good and faster."""
    gain = w["preference"] - lose["preference"]
    faster = (lose["LAAL"] - w["LAAL"]) / n_src
    return (gain >= args.min_gain and faster >= 0) or (gain >= -args.tolerance and faster >= args.min_latency_gain)


def build_pairs(pair: SentencePair, scored: Sequence[dict], args: PreferenceArgs) -> list[tuple[int, int, float]]:
    """(chosen index, rejected index, latency margin) pairs among one source's scored candidates, largest gaps first.

    Candidates with the same target words and delays are one candidate. No candidate is used twice.
    """
    n_src = len(pair.source)
    distinct, seen = [], set()
    for i, s in enumerate(scored):
        key = (tuple(s["target"]), tuple(s["delays"]))
        if key not in seen:
            seen.add(key)
            distinct.append(i)
    options = []
    for i in distinct:
        for j in distinct:
            if i != j and better(scored[i], scored[j], n_src, args):
                margin = max(0.0, (scored[j]["LAAL"] - scored[i]["LAAL"]) / n_src)
                gap = scored[i]["preference"] - scored[j]["preference"] + margin
                options.append((gap, i, j, margin))
    options.sort(key=lambda o: (-o[0], o[1], o[2]))
    out, used = [], set()
    for _, i, j, margin in options:
        if len(out) >= args.pairs_per_source:
            break
        if i in used or j in used:
            continue
        used.update((i, j))
        out.append((i, j, round(margin, 6)))
    return out


def lexicon_for(pairs: Sequence[SentencePair]) -> Lexicon | None:
    """The embedded lexicon when the pairs are generated (they carry key points), else None."""
    return Lexicon.build() if pairs and pairs[0].key_points else None
