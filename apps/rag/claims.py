"""Which facts a sentence asserts, read exactly against the knowledge base's names and relation cues.

A sentence asserts the claim `(s, r, o)` when it has a cue of relation r (a word that expresses
it, `kb.RELATIONS`), a mention of an entity of r's subject type and a mention of r's object type:

- mentions are the knowledge base's names and aliases (full names, a person's surname, a
  company's name without its suffix) and, for years, any four-digit year 1500-2099, matched
  case-insensitively on word boundaries, longest first;
- for each cue, the subject is the subject-type mention nearest to it; the object is the nearest
  object-type mention, or, for a relation with several objects (products), every object-type
  mention between the previous cue and the next one (falling back to the nearest).

Claims need not be true: "K was founded in 1790" asserts (K, founded_year, 1790) whatever the
knowledge base says, so a misleading document can support a false sentence, as an NLI model
would judge it. Negation and hedging are not read ("K was not founded in 1790" asserts the
claim): the embedded model writes neither, and the NLI adapter is there for free text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from apps.rag.kb import RELATIONS, Fact, KnowledgeBase

_YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d)\b")


@dataclass(frozen=True)
class Mention:
    start: int
    end: int
    name: str
    type: str


class ClaimReader:
    """Reads the claims of sentences against one knowledge base (mention and cue patterns compiled once)."""

    def __init__(self, kb: KnowledgeBase):
        self.kb = kb

    @cached_property
    def _names(self) -> re.Pattern:
        aliases = sorted(self.kb.aliases, key=len, reverse=True)
        return re.compile(r"\b(" + "|".join(re.escape(a) for a in aliases) + r")\b", re.I)

    @cached_property
    def _cues(self) -> list[tuple[str, re.Pattern]]:
        return [(name, re.compile(r"\b(?:" + "|".join(rel.cues) + r")\b", re.I)) for name, rel in RELATIONS.items()]

    def mentions(self, text: str) -> list[Mention]:
        """Return the entity and value mentions in text, in order."""
        found = []
        for m in self._names.finditer(text):
            name = self.kb.aliases[m.group(1).lower()]
            found.append(Mention(m.start(), m.end(), name, self.kb.types[name]))
        found += [Mention(m.start(), m.end(), m.group(1), "year") for m in _YEAR.finditer(text)]
        return sorted(found, key=lambda x: x.start)

    def claims(self, text: str) -> set[Fact]:
        """Return the claims a sentence asserts (empty when it names no relation with both ends)."""
        mentions = self.mentions(text)
        if len(mentions) < 2:
            return set()
        cues = sorted((m.start(), m.end(), rel) for rel, pattern in self._cues for m in pattern.finditer(text))
        starts = sorted({c[0] for c in cues})
        out: set[Fact] = set()
        for start, end, rel in cues:
            relation = RELATIONS[rel]
            subjects = [m for m in mentions if m.type == relation.subject]
            # An object belongs to the nearest cue that can take its type ("M was born in 1801 and founded K":
            # 1801 goes with "born", so "founded" gets no year).
            objects = [m for m in mentions if m.type == relation.object
                       and _owner(m, cues) == _distance(m, start, end)]
            if not subjects or not objects:
                continue
            subject = min(subjects, key=lambda m: _distance(m, start, end))
            chosen = [min(objects, key=lambda m: _distance(m, start, end))]
            if relation.multi:
                before = max((s for s in starts if s < start), default=-1)
                after = min((s for s in starts if s > start), default=len(text))
                window = [m for m in objects if before < m.start < after and m.start >= end]
                chosen = window or chosen
            out.update((subject.name, rel, o.name) for o in chosen if o.name != subject.name)
        return out


def _owner(m: Mention, cues: list[tuple[int, int, str]]) -> int:
    """Distance from a mention to the nearest cue of a relation whose object type it has."""
    return min(_distance(m, s, e) for s, e, rel in cues if RELATIONS[rel].object == m.type)


def _distance(m: Mention, start: int, end: int) -> int:
    return start - m.end if m.end <= start else m.start - end if m.start >= end else 0
