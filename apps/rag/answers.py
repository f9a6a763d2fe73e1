"""Rule-written answers: SFT targets, corrected citations, degraded citations, renumbered citations.

These rules stand in for GPT-4 where PA-RAG used it (ours, documented in docs/apps/rag.md):
- `write_answer`: the SFT target for an embedded example: one sentence per needed fact in the
  canonical template (a company's products in one sentence), each citing the document that states
  it (two-hop questions: two sentences). Facts no document states are left out.
- `correct_citations`: keep an answer's words, rewrite each sentence's citations to the smallest
  set of documents (at most three, lowest numbers first) that entails it; sentences no set entails
  are dropped. Works with any entailment adapter (exact KB, or an NLI model).
- `degrade_citations`: one of three citation errors: citations removed, a wrong document cited,
  an excess document added.
- `renumber`: move an answer written over a subset of documents into the full list's numbering.
"""

from __future__ import annotations

import itertools
import random
import re

from apps.rag.data import Doc, Example
from apps.rag.kb import RELATIONS
from apps.rag.metrics import Entailment, MAX_CITATIONS, citations, remove_citations, sentences

_CITE_RUN = re.compile(r"\[(\d+)")


def _cite(ids: list[int]) -> str:
    return "".join(f"[{i}]" for i in ids)


def _end(sentence: str, ids: list[int]) -> str:
    body = sentence.strip().rstrip(".").rstrip()
    return f"{body} {_cite(ids)}." if ids else f"{body}."


def _doc_stating(docs: list[Doc], fact) -> int | None:
    for i, d in enumerate(docs, 1):
        if d.claims is not None and tuple(fact) in {tuple(c) for c in d.claims}:
            return i
    return None


def write_answer(example: Example) -> str | None:
    """The cited answer the documents support (None when they state no needed fact)."""
    if example.target is not None:
        return example.target
    found = [(f, _doc_stating(example.docs, f)) for f in example.facts]
    found = [(f, i) for f, i in found if i is not None]
    if not found:
        return None
    products = [(f, i) for f, i in found if RELATIONS[f[1]].multi]
    out = []
    if products:
        items = [f"{f[2]} {_cite([i])}" for f, i in products]
        listed = items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
        out.append(f"{products[0][0][0]} makes {listed}.")
    for f, i in found:
        if not RELATIONS[f[1]].multi:
            out.append(_end(RELATIONS[f[1]].templates[0].format(s=f[0], o=f[2]), [i]))
    return " ".join(out)


def minimal_support(sentence: str, docs: list[Doc], entails: Entailment,
                    max_citations: int = MAX_CITATIONS) -> list[int] | None:
    """The smallest set of document numbers (lowest first) whose documents entail the sentence, or None."""
    for size in range(1, min(max_citations, len(docs)) + 1):
        for ids in itertools.combinations(range(1, len(docs) + 1), size):
            if entails([docs[i - 1] for i in ids], sentence):
                return list(ids)
    return None


def correct_citations(answer: str, docs: list[Doc], entails: Entailment) -> str | None:
    """The answer's supported sentences with minimal correct citations (None when none is supported)."""
    out = []
    for sent in sentences(answer):
        text = remove_citations(sent).strip()
        ids = minimal_support(text, docs, entails)
        if ids is not None:
            out.append(_end(text, ids))
    return " ".join(out) or None


def degrade_citations(answer: str, n_docs: int, rng: random.Random) -> str:
    """The answer with one citation error per sentence: citations removed, a wrong one, or an excess one."""
    mode = rng.choice(("remove", "wrong", "excess"))
    out = []
    for sent in sentences(answer):
        text, ids = remove_citations(sent).strip(), citations(sent)
        others = [i for i in range(1, n_docs + 1) if i not in ids]
        if mode == "remove" or not others:
            ids = []
        elif mode == "wrong" and ids:
            ids = [rng.choice(others)] + ids[1:]
        else:
            ids = ids + [rng.choice(others)]
        out.append(_end(text, ids))
    return " ".join(out)


def renumber(answer: str, mapping: dict[int, int]) -> str:
    """Replace each citation number n by mapping[n]; numbers outside the mapping become out of range (n + 100)."""
    return _CITE_RUN.sub(lambda m: f"[{mapping.get(int(m.group(1)), int(m.group(1)) + 100)}", answer)
