"""SlideTailor's ten section categories, heading -> category rules, and its coverage and flow metrics.

SlideTailor (nusnlp/SlideTailor, `slides_eval_v2.py`) maps both decks' section sequences to ten fixed
categories, collapses consecutive duplicates, and scores
    coverage = |A ∩ B| / |A ∪ B|                (IoU of the category sets)
    flow     = 1 - 2d / (|a| + |b| + d)         (d: Levenshtein distance of the condensed lists a, b)
It maps headings with an LLM; here keyword rules do it (`categorize`), deterministic and tested.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# key -> the name SlideTailor's eval uses; the order is a paper's usual order.
CATEGORIES: dict[str, str] = {
    "title": "Title and Authors",
    "motivation": "Motivation and Challenges",
    "background": "Definitions and Background",
    "related": "Related Work",
    "problem": "Problem Formulation",
    "method": "Method Overview",
    "dataset": "Dataset Construction",
    "experiments": "Experiment Setup and Results",
    "future": "Future Directions",
    "conclusion": "Summary and Conclusions",
}
BY_NAME = {name: key for key, name in CATEGORIES.items()}

# First match wins, so the more specific rules come first.
_RULES: tuple[tuple[str, str], ...] = (
    ("title", r"\b(title|authors?)\b"),
    ("conclusion", r"\b(conclusions?|summary|summari[sz]e|takeaways?|wrap[- ]?up|discussion)\b"),
    ("future", r"\b(future|limitations?|outlook|next steps|open (problems|questions))\b"),
    ("related", r"\b(related work|prior work|previous work|literature)\b"),
    ("dataset", r"\b(datasets?|data (construction|collection|set)|corpus|corpora|benchmark construction|annotation)\b"),
    ("experiments", r"\b(experiments?|experimental|evaluation|results?|ablations?|setup|analysis|benchmarks?)\b"),
    ("problem", r"\b(problem|formulation|task definition|notation|objective|setting)\b"),
    ("method", r"\b(method|methods|methodology|approach|model|architecture|framework|algorithm|overview|our system|design)\b"),
    ("background", r"\b(background|preliminar(y|ies)|definitions?|basics)\b"),
    ("motivation", r"\b(motivation|introduction|challenges?|why|intro)\b"),
)
_COMPILED = tuple((key, re.compile(pattern, re.IGNORECASE)) for key, pattern in _RULES)


def categorize(heading: str) -> str | None:
    """The category key of a section heading or slide title, or None when no rule matches.

    An exact category name (any case) or key maps to itself; otherwise the first keyword rule that
    matches. A leading section number ("3.2 Method") and a trailing ": detail" are ignored first.
    """
    text = re.sub(r"^\s*(\d+(\.\d+)*\.?|[IVX]+\.)\s+", "", heading.strip())
    for candidate in (text, text.split(":")[0]):
        low = candidate.strip().lower()
        if low in CATEGORIES:
            return low
        for name, key in BY_NAME.items():
            if low == name.lower():
                return key
    head = text.split(":")[0]
    for source in (head, text):
        for key, pattern in _COMPILED:
            if pattern.search(source):
                return key
    return None


def condense(sequence: Sequence[str | None]) -> list[str]:
    """The category list with unknown entries dropped and consecutive duplicates collapsed."""
    out: list[str] = []
    for key in sequence:
        if key is not None and (not out or out[-1] != key):
            out.append(key)
    return out


def levenshtein(a: Sequence, b: Sequence) -> int:
    """Edit distance (insert, delete, substitute at cost 1) between two sequences."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def coverage(generated: Sequence[str | None], reference: Sequence[str | None]) -> float:
    """IoU of the two decks' category sets (1.0 when both are empty)."""
    a, b = set(condense(generated)), set(condense(reference))
    return 1.0 if not a and not b else len(a & b) / len(a | b)


def flow(generated: Sequence[str | None], reference: Sequence[str | None]) -> float:
    """1 - 2d / (|a| + |b| + d) over the condensed category lists (1.0 when both are empty)."""
    a, b = condense(generated), condense(reference)
    d = levenshtein(a, b)
    total = len(a) + len(b) + d
    return 1.0 if total == 0 else 1.0 - 2.0 * d / total
