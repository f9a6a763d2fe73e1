"""Temporal questions about a story and the graders of answers and captions.

Question types (each answer a short canonical phrase, graded by exact match after normalising case,
spaces and a final period):

    first      What happens first?                              a red circle appears
    last       What happens last?                               a blue square moves left
    after      What happens right after a red circle appears?   a blue square moves left
    before     What happens right before ...?                   ...
    direction  Which way does the blue square move?             left
    count      How many times does something appear?            2

Captions are graded against the story's clip list: `order` (the caption's events are exactly the
story's, in order), `order_score` (longest common subsequence / the longer list: partial order
credit), `order_score_no_shape` (the same over (colour, event): order credit where the shape is missed), `events` (share of the story's events the caption names, in any order), `objects` (share
of the story's shapes named) and `colours` (share of its (colour, shape) objects named).
"""

from __future__ import annotations

import random
from typing import Any

from apps.videollm.stories import Story, parse_caption, parse_clause

QUESTION_TYPES: tuple[str, ...] = ("first", "last", "after", "before", "direction", "count")
COUNT_WORDS = {"appears": "appear", "disappears": "disappear", "moves": "move", "changes": "change colour"}
CAPTION_PROMPT = "Describe what happens in the video, in order."
CLIP_PROMPT = "Describe the clip."


def _kind(description: str) -> str:
    parsed = parse_clause(description)
    return parsed[2].split()[0] if parsed else ""


def questions(story: Story, rng: random.Random, per_type: int = 1) -> list[dict[str, str]]:
    """Return up to per_type questions of each type about the story: {"type", "question", "answer"}."""
    d = story.descriptions
    out = [{"type": "first", "question": "What happens first?", "answer": d[0]},
           {"type": "last", "question": "What happens last?", "answer": d[-1]}]
    for k in rng.sample(range(len(d) - 1), min(per_type, len(d) - 1)):
        out.append({"type": "after", "question": f"What happens right after {d[k]}?", "answer": d[k + 1]})
    for k in rng.sample(range(1, len(d)), min(per_type, len(d) - 1)):
        out.append({"type": "before", "question": f"What happens right before {d[k]}?", "answer": d[k - 1]})
    moves = [parse_clause(x) for x in d if _kind(x) == "moves"]
    objects = [m[:2] for m in moves]
    unique = [m for m in moves if objects.count(m[:2]) == 1]
    for colour, shape, event in rng.sample(unique, min(per_type, len(unique))):
        out.append({"type": "direction", "question": f"Which way does the {colour} {shape} move?",
                    "answer": event.split()[1]})
    for kind in rng.sample(list(COUNT_WORDS), per_type):
        what = COUNT_WORDS[kind]
        out.append({"type": "count", "question": f"How many times does something {what}?",
                    "answer": str(sum(_kind(x) == kind for x in d))})
    return out


def normalise(text: Any) -> str:
    """Return the answer lower-cased with single spaces and no final period."""
    return " ".join(str(text).lower().split()).rstrip(". ").strip()


def answer_correct(answer: Any, truth: str) -> bool:
    """Return whether the model's answer is the truth (exact after normalising)."""
    return normalise(answer) == normalise(truth)


def _lcs(a: list, b: list) -> int:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1][j + 1] = table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
    return table[-1][-1]


def caption_scores(caption: Any, story: Story) -> dict[str, float]:
    """Return the caption's order, order_score, order_score_no_shape, events, objects and colours scores against
    the story (0 for garbage)."""
    truth = [parse_clause(x) for x in story.descriptions]
    said = [c for c in parse_caption(caption) if c is not None]
    shapes = {c[1] for c in said}
    objects = {c[:2] for c in said}
    no_shape = lambda clauses: [(c[0], c[2]) for c in clauses]  # noqa: E731
    return {
        "order": float(said == truth),
        "order_score": _lcs(said, truth) / max(len(truth), len(said)),
        "order_score_no_shape": _lcs(no_shape(said), no_shape(truth)) / max(len(truth), len(said)),
        "events": sum(t in said for t in truth) / len(truth),
        "objects": sum(t[1] in shapes for t in truth) / len(truth),
        "colours": sum(t[:2] in objects for t in truth) / len(truth),
    }
