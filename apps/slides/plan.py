"""A deck plan: the chain-of-speech text the model writes, its parser and the grammar that keeps samples well formed.

Per slide the planner writes the section it belongs to, a title, the slide's purpose and a speech
draft, then bullets derived from the draft (SlideTailor's chain-of-speech):

    ## Method Overview
    Title: How SparseFuse ranks passages
    Purpose: explain the method
    Speech: SparseFuse scores each passage with a learned sparse encoder and fuses it with BM25.
    - Learned sparse encoder scores passages
    - Fused with **BM25** scores

The section is one of SlideTailor's ten category names (apps/slides/categories.py). Bullets may mark
emphasis as **bold**, which becomes bold runs in the .pptx. `DeckGrammar` is a
shared.constrained.CharConstraint for this format, so every sampled plan parses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from apps.slides.categories import BY_NAME, CATEGORIES


@dataclass(frozen=True)
class SlidePlan:
    """One slide: its category key, title, purpose, speech draft (the speaker notes) and bullets."""

    section: str
    title: str
    purpose: str = ""
    speech: str = ""
    bullets: tuple[str, ...] = ()

    def text(self) -> str:
        """Everything shown on the slide (title and bullets), for faithfulness and fit checks."""
        return "\n".join((self.title, *self.bullets))


@dataclass(frozen=True)
class DeckPlan:
    """An ordered list of slides; `truncated` when the text that made it ended inside a slide."""

    slides: tuple[SlidePlan, ...]
    truncated: bool = False

    def sections(self) -> list[str]:
        return [s.section for s in self.slides]


FIELDS = ("Title", "Purpose", "Speech")


def format_plan(plan: DeckPlan) -> str:
    """The plan as the model writes it (the module docstring's format), ending with a newline."""
    lines = []
    for s in plan.slides:
        lines.append(f"## {CATEGORIES[s.section]}")
        lines.append(f"Title: {_one_line(s.title)}")
        lines.append(f"Purpose: {_one_line(s.purpose)}")
        lines.append(f"Speech: {_one_line(s.speech)}")
        lines.extend(f"- {_one_line(b)}" for b in s.bullets)
    return "\n".join(lines) + "\n"


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "-"


class PlanError(ValueError):
    """A plan text that does not follow the format; the message names the line."""


def parse_plan(text: str, *, strict: bool = False) -> DeckPlan:
    """Parse the planner's text into a DeckPlan.

    Lenient by default (model output): blank lines are skipped, a slide cut off before its first bullet
    (a length limit) is dropped and the plan marked truncated, and a plan with no complete slide raises
    PlanError. With strict, any departure from the format raises PlanError naming the line.
    """
    slides: list[SlidePlan] = []
    current: dict | None = None
    truncated = False

    def close(lineno: int) -> None:
        nonlocal current, truncated
        if current is None:
            return
        missing = [f for f in FIELDS if f.lower() not in current]
        if missing or not current["bullets"]:
            if strict:
                what = f"field {missing[0]!r}" if missing else "bullets"
                raise PlanError(f"line {lineno}: slide {len(slides) + 1} ({CATEGORIES[current['section']]}) has no {what}")
            truncated = True
        else:
            slides.append(SlidePlan(current["section"], current["title"], current["purpose"], current["speech"],
                                    tuple(current["bullets"])))
        current = None

    lines = text.split("\n")
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("## "):
            close(lineno)
            name = line[3:].strip()
            if name not in BY_NAME:
                if strict:
                    raise PlanError(f"line {lineno}: unknown section {name!r} (one of: {', '.join(CATEGORIES.values())})")
                truncated = True
                current = None
                continue
            current = {"section": BY_NAME[name], "bullets": []}
            continue
        if current is None:
            if strict:
                raise PlanError(f"line {lineno}: text before the first '## <section>' line")
            continue
        m = re.match(r"(Title|Purpose|Speech):\s*(.*)$", line)
        if m and not current["bullets"]:
            current[m.group(1).lower()] = m.group(2).strip()
            continue
        if line.startswith("- ") or line == "-":
            missing = [f for f in FIELDS if f.lower() not in current]
            if missing and strict:
                raise PlanError(f"line {lineno}: bullet before the slide's {missing[0]!r} line")
            current["bullets"].append(line[2:].strip())
            continue
        if strict:
            raise PlanError(f"line {lineno}: expected 'Title:', 'Purpose:', 'Speech:' or '- bullet', got {line[:40]!r}")
    close(len(lines))
    if not slides:
        raise PlanError("no complete slide (a '## <section>' line, Title, Purpose, Speech and at least one bullet)")
    return DeckPlan(tuple(slides), truncated)


MAX_BULLETS = 8  # per slide; the grammar stops a model that would list bullets forever

_LITERALS = {"slide": "## ", "title": "Title: ", "purpose": "Purpose: ", "speech": "Speech: ", "bullet": "- "}
_NEXT = {"title": "purpose", "purpose": "speech", "speech": "bullet"}


def _prefixes() -> frozenset[str]:
    return frozenset(name[:i] for name in CATEGORIES.values() for i in range(len(name) + 1))


class DeckGrammar:
    """The plan format as a shared.constrained.CharConstraint.

    States are small tuples: ("lit", which, i, bullets) inside a fixed line start, ("name", prefix) inside a
    section name, ("text", field, started, bullets) inside a free-text field (printable ASCII, first character
    not a space, ended by a newline), ("after", bullets) after a bullet line, where EOS may end the plan.
    """

    def __init__(self, max_bullets: int = MAX_BULLETS):
        self.max_bullets = max_bullets
        self._prefixes = _prefixes()
        self._names = frozenset(CATEGORIES.values())

    def start(self):
        return ("lit", "slide", 0, 0)

    def step(self, state, char: str):
        kind = state[0]
        if kind == "lit":
            _, which, i, bullets = state
            literal = _LITERALS[which]
            if char != literal[i]:
                return None
            if i + 1 < len(literal):
                return ("lit", which, i + 1, bullets)
            return ("name", "") if which == "slide" else ("text", which, False, bullets)
        if kind == "name":
            prefix = state[1]
            if char == "\n":
                return ("lit", "title", 0, 0) if prefix in self._names else None
            nxt = prefix + char
            return ("name", nxt) if nxt in self._prefixes else None
        if kind == "text":
            _, which, started, bullets = state
            if char == "\n":
                if not started:
                    return None
                return ("after", bullets + 1) if which == "bullet" else ("lit", _NEXT[which], 0, bullets)
            if not (" " <= char <= "~") or (not started and char == " "):
                return None
            return state if started else ("text", which, True, bullets)
        if kind == "after":
            bullets = state[1]
            if char == "#":
                return ("lit", "slide", 1, 0)
            if char == "-" and bullets < self.max_bullets:
                return ("lit", "bullet", 1, bullets)
            return None
        return None

    def can_end(self, state) -> bool:
        return state[0] == "after"
