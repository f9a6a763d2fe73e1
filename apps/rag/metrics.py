"""ALCE's answer metrics (Gao et al. 2023, `eval.py` of princeton-nlp/ALCE, as PA-RAG uses it).

- Only the first line of an answer is scored (ALCE strips the output and keeps `split("\\n")[0]`).
- `str_em`: SQuAD normalisation (lower case, punctuation and the articles a/an/the dropped,
  whitespace collapsed); the answer scores the share of short-answer groups of which some alias is
  a substring of it. `str_hit`: 1 when every group is found.
- Citations: sentences by Punkt (`punkt`, the dependency-free port of nltk's `sent_tokenize`;
  nltk's own needs data it downloads); a sentence's citations are the numbers matched by
  `\\[\\d+` (so "[1][2]" gives 1 and 2, "[1, 2]" only 1), the first three counted; the sentence
  without citations is the hypothesis, the cited documents (`Title: t\\ntext`, joined by newlines)
  the premise.
- Citation recall: the share of sentences whose cited documents jointly entail them; a sentence
  with no citation or one out of range scores 0 (ALCE lets "[0]" index the last document, a bug
  we do not copy: out of range here).
- Citation precision: over the counted citations of in-range sentences; a citation of a supported
  sentence counts as precise unless, with several citations, it alone does not entail the
  sentence and the others still do (ALCE's "unnecessary citation"); citations of an unsupported
  sentence are imprecise. 0 when nothing was cited.
- Citation F1 (PA-RAG's summary) is reported per answer, 2PR/(P+R), and averaged.

Entailment goes through an adapter (`entailment.py`): exact from the knowledge base for the
embedded set, an NLI classifier for real data.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Protocol

import punkt

from apps.rag.data import Doc

_CITATION = re.compile(r"\[\d+")
_PUNCTUATION = str.maketrans("", "", string.punctuation)
MAX_CITATIONS = 3


class Entailment(Protocol):
    def __call__(self, premise: list[Doc], hypothesis: str) -> bool: ...


def first_line(output: str) -> str:
    return output.strip().split("\n")[0].replace("<|im_end|>", "")


def normalize_answer(s: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces."""
    s = s.lower().translate(_PUNCTUATION)
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def _present(aliases: list[str], normalized_text: str) -> bool:
    return any((a := normalize_answer(alias)) and a in normalized_text for alias in aliases)


def exact_presence(aliases: list[str], text: str) -> bool:
    """ALCE's exact_presence: some alias, normalised, is a substring of the normalised text."""
    return _present(aliases, normalize_answer(text))


def str_em(answer: str, groups: list[list[str]]) -> float:
    """The share of short-answer groups found in the answer's first line."""
    line = normalize_answer(first_line(answer))
    return sum(_present(g, line) for g in groups) / len(groups) if groups else 0.0


def sentences(answer: str) -> list[str]:
    return punkt.sent_tokenize(first_line(answer))


def citations(sentence: str) -> list[int]:
    """1-based citation numbers in order ("[1][2]" -> [1, 2]; "[1, 2]" -> [1])."""
    return [int(m.group(0)[1:]) for m in _CITATION.finditer(sentence)]


def remove_citations(sentence: str) -> str:
    """ALCE's `remove_citations`: drop " [n", "[n", " |" and "]"."""
    return re.sub(r"\[\d+", "", re.sub(r" \[\d+", "", sentence)).replace(" |", "").replace("]", "")


@dataclass
class CitationScore:
    recall: float
    precision: float
    sentences: int
    citations: int

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r > 0 else 0.0


def citation_scores(answer: str, docs: list[Doc], entails: Entailment, max_citations: int = MAX_CITATIONS) -> CitationScore:
    """ALCE's citation recall and precision of one answer (see the module docstring)."""
    sents = sentences(answer)
    if not sents:
        return CitationScore(0.0, 0.0, 0, 0)
    supported = precise = counted = 0
    for sent in sents:
        target = remove_citations(sent).strip()
        refs = citations(sent)
        if not refs or any(r < 1 or r > len(docs) for r in refs):
            continue
        refs = refs[:max_citations]
        counted += len(refs)
        joint = entails([docs[r - 1] for r in refs], target)
        supported += joint
        if joint and len(refs) > 1:
            for i, r in enumerate(refs):
                if entails([docs[r - 1]], target):
                    precise += 1
                    continue
                rest = refs[:i] + refs[i + 1:]
                precise += not entails([docs[x - 1] for x in rest], target)
        else:
            precise += joint
    return CitationScore(supported / len(sents), precise / counted if counted else 0.0, len(sents), counted)


def answer_row(answer: str, groups: list[list[str]], docs: list[Doc], entails: Entailment) -> dict[str, float]:
    """Every metric of one answer: str_em, str_hit, citation recall, precision, F1, sentences, citations."""
    em = str_em(answer, groups)
    cite = citation_scores(answer, docs, entails)
    return {"str_em": em, "str_hit": float(em == 1.0), "citation_recall": cite.recall,
            "citation_precision": cite.precision, "citation_f1": cite.f1, "sentences": cite.sentences,
            "citations": cite.citations}
