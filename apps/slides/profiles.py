"""Presenter profiles: what an example deck implies about content and style, a deck writer that follows
one, and the distillation that recovers it from a deck.

A profile holds SlideTailor's distilled content preferences made concrete: which of the ten section
categories appear and in what order, slides per section, bullets per slide, words per bullet, the
bullet style (full sentences, concise bullets or short phrases) and emphasis (numbers in bold).

- `write_deck(document, profile, slides)`: the deck that follows a profile for a document (the
  example decks of the embedded tasks and the reference decks SFT learns from). The per-slide speech
  draft is the section's key sentences; the bullets are derived from the draft in the profile's style.
- `distill(deck)`: the profile a deck implies, deterministic (tested on decks written from known
  profiles, through .pptx and back).
"""

from __future__ import annotations

import random
import re
import statistics
from dataclasses import asdict, dataclass

from apps.slides.categories import CATEGORIES
from apps.slides.documents import Document, split_sentences
from apps.slides.plan import DeckPlan, SlidePlan

STYLES = {"sentences": "full sentences", "bullets": "concise bullets", "phrases": "short phrases"}
EMPHASES = {"none": "no bold text", "numbers": "numbers in bold"}
# Sections kept first when a deck has fewer slides than sections.
PRIORITY = ("title", "method", "experiments", "motivation", "conclusion", "problem", "dataset", "background",
            "related", "future")
PURPOSES = {
    "title": "introduce the talk and its authors",
    "motivation": "explain why the problem matters",
    "background": "define the terms the talk needs",
    "related": "place the work among prior systems",
    "problem": "state the task precisely",
    "method": "explain how the method works",
    "dataset": "describe the data",
    "experiments": "show the evidence",
    "future": "name what comes next",
    "conclusion": "recap the main result",
}
NUMBER = re.compile(r"(?<![\w.@-])\d+(?:,\d{3})*(?:\.\d+)?%?(?![\w@])")
STOPWORDS = frozenset("""a an the of to in on for with by from and or but as at is are was were be been being it its this
these those that which who we our us they their them than then so such also only while into over under about each
every both either neither not no can could may might will would should must has have had do does did more most
same other another all any some very just""".split())


@dataclass(frozen=True)
class Profile:
    """A presenter's preferences.

    Attributes:
        sections: (category key, slides) in deck order.
        bullets: bullets per content slide.
        words: words per bullet (the median).
        style: a key of STYLES.
        emphasis: a key of EMPHASES.
    """

    sections: tuple[tuple[str, int], ...]
    bullets: int
    words: int
    style: str
    emphasis: str

    def __post_init__(self):
        for key, count in self.sections:
            if key not in CATEGORIES or count < 1:
                raise ValueError(f"profile: bad section ({key!r}, {count})")
        if self.style not in STYLES or self.emphasis not in EMPHASES or self.bullets < 1 or self.words < 1:
            raise ValueError(f"profile: bad style/emphasis/bullets/words {self.style!r} {self.emphasis!r} "
                             f"{self.bullets} {self.words}")

    def slides(self) -> int:
        return sum(n for _, n in self.sections)

    def order(self) -> list[str]:
        return [key for key, _ in self.sections]

    def to_dict(self) -> dict:
        return {**asdict(self), "sections": [list(s) for s in self.sections]}

    @classmethod
    def from_dict(cls, d: dict) -> Profile:
        return cls(tuple((str(k), int(n)) for k, n in d["sections"]), int(d["bullets"]), int(d["words"]),
                   str(d["style"]), str(d["emphasis"]))

    def describe(self) -> str:
        """The profile as the lines of the planner's prompt."""
        flow = ", ".join(f"{CATEGORIES[k]} ({n})" for k, n in self.sections)
        return (f"- Sections (slides): {flow}\n"
                f"- {self.bullets} bullets per slide, about {self.words} words each, as {STYLES[self.style]}; "
                f"{EMPHASES[self.emphasis]}")


def sample_profile(rng: random.Random) -> Profile:
    """A random presenter: a subset of the categories in one of a few narrative orders, with counts and style."""
    order = ["motivation", "background", "problem", "related", "method", "dataset", "experiments", "future",
             "conclusion"]
    keep = {"motivation", "method", "experiments"} | {k for k in order if rng.random() < 0.45}
    order = [k for k in order if k in keep]
    shape = rng.random()
    if shape < 0.2 and "related" in order:  # related work late, after the results
        order.remove("related")
        order.insert(order.index("experiments") + 1, "related")
    elif shape < 0.4:  # results right after the motivation
        order.remove("experiments")
        order.insert(order.index("motivation") + 1, "experiments")
    if rng.random() < 0.85:
        order.insert(0, "title")
    sections = tuple((k, 2 if k in ("method", "experiments") and rng.random() < 0.3 else 1) for k in order)
    style = rng.choice(list(STYLES))
    words = {"sentences": 14, "bullets": rng.randint(6, 9), "phrases": rng.randint(3, 4)}[style]
    return Profile(sections, rng.randint(2, 3), words, style, rng.choice(list(EMPHASES)))


def fit_sections(profile: Profile, document: Document, slides: int) -> list[tuple[str, int]]:
    """The profile's sections the document has (title always), scaled to `slides` slides in total.

    Sections beyond the slide budget are dropped lowest PRIORITY first; spare slides go to the sections the
    profile gives most slides, then by PRIORITY. A section never gets more slides than it has sentences.
    """
    present = [(k, n) for k, n in profile.sections if k == "title" or document.section(k) is not None]
    while len(present) > slides:
        worst = max(present, key=lambda s: PRIORITY.index(s[0]))
        present.remove(worst)
    capacity = {k: 1 if k == "title" else len(document.section(k).sentences) for k, _ in present}
    counts = {k: 1 for k, _ in present}
    rank = sorted(present, key=lambda s: (-s[1], PRIORITY.index(s[0])))
    spare = slides - len(present)
    while spare > 0:
        grown = False
        for k, wanted in rank:  # first up to the profile's own counts, then round robin
            if spare and counts[k] < min(wanted, capacity[k]):
                counts[k] += 1
                spare -= 1
                grown = True
        if not grown:
            for k, _ in rank:
                if spare and counts[k] < capacity[k]:
                    counts[k] += 1
                    spare -= 1
                    grown = True
        if not grown:
            break
    return [(k, counts[k]) for k, _ in present]


def write_deck(document: Document, profile: Profile, slides: int | None = None) -> DeckPlan:
    """The deck that follows `profile` for `document` with `slides` slides (default: the profile's count)."""
    plan = fit_sections(profile, document, slides or profile.slides())
    out: list[SlidePlan] = []
    for key, count in plan:
        if key == "title":
            out.append(_title_slide(document))
            continue
        section = document.section(key)
        for i, chunk in enumerate(_chunks(list(section.sentences), count)):
            title = section.heading if i == 0 else f"{section.heading} (cont.)"
            # One sentence of speech per slide, two when one gives fewer bullet units than the profile wants.
            draft = chunk[:1] if len(_units(chunk[:1], profile.bullets)) >= profile.bullets else chunk[:2]
            out.append(SlidePlan(key, title, PURPOSES[key], " ".join(draft), tuple(derive_bullets(draft, profile))))
    return DeckPlan(tuple(out))


def _title_slide(document: Document) -> SlidePlan:
    authors = list(document.authors)
    names = ", ".join(authors[:-1]) + f" and {authors[-1]}" if len(authors) > 1 else "".join(authors)
    speech = f"This talk presents {document.title.split(':')[0].strip()}" + (f", joint work with {names}." if names else ".")
    return SlidePlan("title", document.title, PURPOSES["title"], speech, (names or "Authors unknown",))


def _chunks(sentences: list[str], count: int) -> list[list[str]]:
    """Split sentences into `count` contiguous, near-equal, non-empty chunks."""
    count = max(1, min(count, len(sentences)))
    size, extra = divmod(len(sentences), count)
    out, start = [], 0
    for i in range(count):
        end = start + size + (i < extra)
        out.append(sentences[start:end])
        start = end
    return out


_CLAUSE = re.compile(r",\s+(?:and\s+|but\s+|while\s+)?|;\s+|\s+(?:while|because|whereas)\s+")


def _units(draft: list[str], wanted: int) -> list[str]:
    """The draft's sentences, split at clauses (parts of at least three words) when there are fewer than `wanted`."""
    units = [s.rstrip(".") for s in draft]
    if len(units) >= wanted:
        return units
    split = []
    for unit in units:
        parts = [p for p in _CLAUSE.split(unit) if len(p.split()) >= 3]
        split.extend(parts if len(parts) > 1 else [unit])
    return split


def derive_bullets(draft: list[str], profile: Profile) -> list[str]:
    """Up to profile.bullets bullets from the speech draft: its sentences, split at clauses when there are too
    few, each rewritten in the profile's style and emphasis (fewer bullets when the draft has too few units)."""
    out = []
    for unit in _units(draft, profile.bullets)[:profile.bullets]:
        text = _styled(unit, profile)
        if text and text not in out:
            out.append(text)
    return out


def _styled(unit: str, profile: Profile) -> str:
    words = unit.split()
    if profile.style == "sentences":
        text = " ".join(words)
        text = text[0].upper() + text[1:] + "."
    elif profile.style == "bullets":
        kept = words[:profile.words]
        while len(kept) > 1 and kept[-1].lower().strip(",;:") in STOPWORDS:
            kept.pop()
        text = " ".join(kept).rstrip(",;:")
        text = text[0].upper() + text[1:]
    else:  # a short phrase: the first number and the content words after it, else the first content words
        content = [w for w in (w.strip(",;:()") for w in words) if w and w.lower() not in STOPWORDS]
        first_number = next((i for i, w in enumerate(content) if NUMBER.fullmatch(w)), None)
        if first_number is not None and len(content) - first_number >= min(2, profile.words):
            content = content[first_number:]
        text = " ".join(content[:profile.words])
        text = text[:1].upper() + text[1:]
    if profile.emphasis == "numbers":
        text = NUMBER.sub(lambda m: f"**{m.group(0)}**", text)
    return text


# ------------------------------------------------------------------------------------------ distillation


def plain_words(text: str) -> list[str]:
    return text.replace("**", "").split()


def bullet_style(bullet: str) -> str:
    """Classify one bullet: a sentence (ends with '.', at least 6 words), a phrase (at most 4 words) or a bullet."""
    words = plain_words(bullet)
    if bullet.rstrip().endswith(".") and len(words) >= 6:
        return "sentences"
    if len(words) <= 4:
        return "phrases"
    return "bullets"


def bold_numbers(bullets: list[str]) -> tuple[int, int]:
    """(numbers in bold, numbers) over the bullets."""
    bold = total = 0
    for b in bullets:
        spans = [m.span() for m in re.finditer(r"\*\*(.+?)\*\*", b)]
        plain = re.sub(r"\*\*(.+?)\*\*", lambda m: " " * (len(m.group(0))), b)
        total += len(NUMBER.findall(plain))
        for s, e in spans:
            found = len(NUMBER.findall(b[s + 2:e - 2]))
            bold += found
            total += found
    return bold, total


def distill(deck: DeckPlan) -> Profile:
    """The profile a deck implies: consecutive slides of one section form a section (in order, with its slide
    count); bullets and words are medians over content slides (the title slide excluded); style is the majority
    class of the bullets (ties: concise bullets); emphasis is "numbers" when at least half of the numbers on the
    slides are bold."""
    if not deck.slides:
        raise ValueError("distill: the deck has no slides")
    sections: list[list] = []
    for s in deck.slides:
        if sections and sections[-1][0] == s.section:
            sections[-1][1] += 1
        else:
            sections.append([s.section, 1])
    content = [s for s in deck.slides if s.section != "title"] or list(deck.slides)
    bullets = [b for s in content for b in s.bullets]
    per_slide = int(_median_round([len(s.bullets) for s in content]) or 1)
    words = int(_median_round([len(plain_words(b)) for b in bullets]) or 1)
    votes = {k: 0 for k in STYLES}
    for b in bullets:
        votes[bullet_style(b)] += 1
    style = max(STYLES, key=lambda k: (votes[k], k == "bullets"))
    bold, total = bold_numbers(bullets)
    emphasis = "numbers" if total and bold * 2 >= total else "none"
    return Profile(tuple((k, n) for k, n in sections), max(1, per_slide), max(1, words), style, emphasis)


def _median_round(values: list[int]) -> float:
    if not values:
        return 0
    m = statistics.median(values)
    return int(m + 0.5)
