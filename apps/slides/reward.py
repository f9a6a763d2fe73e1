"""Scores of a deck plan for a task: SlideTailor's coverage and flow, profile adherence, faithfulness and
template fit, and their weighted total (the DPO reward and the eval's metrics).

- coverage, flow: apps/slides/categories.py against the reference deck (None without one).
- adherence: mean of five parts in [0, 1]: slide count (1 - |n - N| / N), bullets per content slide
  (1 - |b - B| / B, averaged), words per bullet (1 - |w - W| / W, averaged), style (share of bullets of the
  profile's style) and emphasis (share of numbers in bold when the profile bolds numbers, else share of
  bullets without bold).
- faithfulness: the share of claims on the slides (title, bullets) and in the speech drafts that the
  document supports: numbers (normalised: "12,400" = "12400") must occur in the document, and names
  (whole tokens with a capital after the first character or a digit, such as "SparseFuse", "BM25",
  "N-BEATS", "NDCG@10", and capitalised words inside a sentence) must occur as words of it. Presence
  only: a real number attributed to the wrong system passes. 1.0 when there is no claim.
- fit: the share of slides whose body text fits its placeholder at the template's font size (greedy
  wrapping with DejaVu Sans metrics, apps/slides/pptx_io.py) and whose title wraps to at most two lines
  (PowerPoint and LibreOffice shrink an overflowing title, not a body, through the masters' autofit).
- total: the weighted mean of the available scores (weights by config); 0 for a plan that does not parse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from apps.slides.categories import coverage, flow
from apps.slides.data import Task
from apps.slides.documents import Document
from apps.slides.plan import DeckPlan, PlanError, parse_plan
from apps.slides.pptx_io import TemplateMetrics, fit_slide
from apps.slides.profiles import NUMBER, Profile, bold_numbers, bullet_style, plain_words

SCORES = ("coverage", "flow", "adherence", "faithfulness", "fit")


@dataclass
class RewardArgs:
    """Weights of the total reward (renormalised over the scores a task has).

    Attributes:
        weights: score name -> weight (coverage, flow, adherence, faithfulness, fit).
    """

    weights: dict[str, float] = field(default_factory=lambda: {"coverage": 1.0, "flow": 1.0, "adherence": 1.0,
                                                               "faithfulness": 1.0, "fit": 1.0})


def _ratio_score(value: float, target: float) -> float:
    return max(0.0, 1.0 - abs(value - target) / target) if target > 0 else float(value == target)


def adherence_parts(plan: DeckPlan, profile: Profile, slides: int) -> dict[str, float]:
    """The five adherence parts (module docstring)."""
    content = [s for s in plan.slides if s.section != "title"] or list(plan.slides)
    bullets = [b for s in content for b in s.bullets]
    parts = {
        "count": _ratio_score(len(plan.slides), slides),
        "bullets": sum(_ratio_score(len(s.bullets), profile.bullets) for s in content) / len(content),
        "words": (sum(_ratio_score(len(plain_words(b)), profile.words) for b in bullets) / len(bullets)) if bullets else 0.0,
        "style": (sum(bullet_style(b) == profile.style for b in bullets) / len(bullets)) if bullets else 0.0,
    }
    if profile.emphasis == "numbers":
        bold, total = bold_numbers(bullets)
        parts["emphasis"] = bold / total if total else 1.0
    else:
        parts["emphasis"] = (sum("**" not in b for b in bullets) / len(bullets)) if bullets else 1.0
    return parts


_NAME = re.compile(r".[A-Z0-9]|\d")  # a capital after the first character, or a digit: CamelCase, ALL-CAPS, BM25
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9@.%-]*[A-Za-z0-9%]|[A-Za-z0-9]")


@lru_cache(maxsize=4096)
def document_facts(document: Document) -> tuple[frozenset[str], frozenset[str]]:
    """(numbers, words) of a document: numbers without thousands commas, words as written."""
    text = document.full_text()
    numbers = frozenset(m.group(0).replace(",", "").rstrip("%") for m in NUMBER.finditer(text))
    words = frozenset(_WORD.findall(text))
    return numbers, words


def claims(text: str) -> tuple[list[str], list[str]]:
    """(numbers, names) claimed in a piece of slide text (markup removed)."""
    plain = text.replace("**", "")
    numbers = [m.group(0).replace(",", "").rstrip("%") for m in NUMBER.finditer(plain)]
    # Names are whole tokens as the document's words are cut ("N-BEATS", "NDCG@10", "Glacier-QA").
    names = {t for t in _WORD.findall(plain) if re.search("[A-Za-z]", t) and _NAME.search(t)}
    for sentence in re.split(r"(?<=[.!?])\s+|\n", plain):
        tokens = sentence.split()
        for token in tokens[1:]:  # capitalised words after the first word of a sentence or line
            word = re.sub(r"'s$", "", token.strip(",.;:()'\""))
            if len(word) > 1 and word[0].isupper() and word.isalpha():
                names.add(word)
    return numbers, sorted(n for n in names if not n.isdigit())


def faithfulness(plan: DeckPlan, document: Document) -> tuple[float, int]:
    """(share of supported claims, number of claims) over titles, bullets and speech drafts."""
    numbers, words = document_facts(document)
    supported = total = 0
    for slide in plan.slides:
        for text in (slide.title, *slide.bullets, slide.speech):
            nums, names = claims(text)
            total += len(nums) + len(names)
            supported += sum(n in numbers for n in nums) + sum(n in words for n in names)
    return (supported / total if total else 1.0), total


def template_fit(plan: DeckPlan, metrics: TemplateMetrics) -> float:
    """Share of slides whose body fits and whose title wraps to at most two lines."""
    ok = 0
    for slide in plan.slides:
        fit = fit_slide(slide, metrics)
        ok += fit.body_ratio <= 1.0 and fit.title_lines <= 2
    return ok / len(plan.slides)


def score_plan(text: str, task: Task, weights: dict[str, float] | None = None) -> dict:
    """Every score of one generated plan text for `task` (floats; None where the task has no reference), the
    adherence parts as adherence/<part>, slides, claims, truncated, valid, and total."""
    weights = weights or RewardArgs().weights
    try:
        plan = parse_plan(text)
    except PlanError as exc:
        return {**{k: 0.0 for k in SCORES}, "valid": 0.0, "total": 0.0, "slides": 0, "claims": 0,
                "truncated": 0.0, "reason": str(exc)}
    out: dict = score_deck(plan, task, weights)
    out["truncated"] = float(plan.truncated)
    return out


def score_deck(plan: DeckPlan, task: Task, weights: dict[str, float] | None = None) -> dict:
    """score_plan for a parsed plan (the reference deck is scored the same way in the eval)."""
    weights = weights or RewardArgs().weights
    sections = plan.sections()
    parts = adherence_parts(plan, task.profile, task.slides)
    faithful, n_claims = faithfulness(plan, task.document)
    out = {
        "coverage": coverage(sections, task.reference.sections()) if task.reference else None,
        "flow": flow(sections, task.reference.sections()) if task.reference else None,
        "adherence": sum(parts.values()) / len(parts),
        "faithfulness": faithful,
        "fit": template_fit(plan, TemplateMetrics.of(task.template)),
    }
    available = {k: v for k, v in out.items() if v is not None and weights.get(k, 0) > 0}
    weight = sum(weights[k] for k in available)
    total = sum(weights[k] * v for k, v in available.items()) / weight if weight else 0.0
    return {**out, **{f"adherence/{k}": v for k, v in parts.items()}, "valid": 1.0, "total": total,
            "slides": len(plan.slides), "claims": n_claims, "reason": ""}
