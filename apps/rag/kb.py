"""The embedded knowledge base: invented companies, people, cities and countries, and their facts.

Every name is made up from syllables (seeded), so no answer can come from a model's pretraining.
A fact is a triple `(subject, relation, object)`; `RELATIONS` gives each relation's subject and
object types, whether a subject has one object or several, the words that express it (its cues)
and the sentence templates the passage writer and the answer writer use. `claims.py` reads the
same schema back out of free text.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field

Fact = tuple[str, str, str]  # (subject name, relation, object name)

TYPES = ("company", "person", "city", "country", "year", "product")


@dataclass(frozen=True)
class Relation:
    """A relation: its types, arity, the cue words that express it and its sentence templates.

    `cues` are regular expressions (matched case-insensitively on word boundaries); the first
    template is the canonical one the answer writer uses, the others vary the passages.
    """

    name: str
    subject: str
    object: str
    multi: bool
    cues: tuple[str, ...]
    templates: tuple[str, ...]


RELATIONS: dict[str, Relation] = {r.name: r for r in (
    Relation("founded_year", "company", "year", False, (r"founded", r"established", r"dates from"),
             ("{s} was founded in {o}.", "{s} was established in {o}.", "{s} dates from {o}.")),
    Relation("founded_by", "company", "person", False, (r"founded", r"founders?", r"established", r"started"),
             ("{s} was founded by {o}.", "{o} founded {s}.", "{s} was started by {o}.")),
    Relation("headquarters", "company", "city", False, (r"headquarter(?:s|ed)", r"based", r"head office"),
             ("{s} is headquartered in {o}.", "{s} is based in {o}.", "The head office of {s} is in {o}.")),
    Relation("products", "company", "product", True, (r"makes?", r"produces?", r"manufactur(?:es|ers?|ing)",
                                                      r"products?", r"sells?"),
             ("{s} makes {o}.", "{s} produces {o}.", "{s} manufactures {o}.")),
    Relation("born_in", "person", "city", False, (r"born", r"native of", r"birthplace"),
             ("{s} was born in {o}.", "{s} is a native of {o}.", "The birthplace of {s} is {o}.")),
    Relation("born_year", "person", "year", False, (r"born",),
             ("{s} was born in {o}.", "{s} was born in the year {o}.")),
    Relation("lives_in", "person", "city", False, (r"lives", r"resides", r"living"),
             ("{s} lives in {o}.", "{s} resides in {o}.")),
    Relation("country", "city", "country", False, (r"located", r"lies", r"situated"),
             ("{s} is located in {o}.", "{s} lies in {o}.", "{s} is situated in {o}.")),
)}

PRODUCTS = (
    "turbines", "pumps", "bicycles", "lanterns", "ceramic tiles", "telescopes", "violins", "sailcloth",
    "typewriters", "barometers", "clocks", "compasses", "looms", "kettles", "paper", "glassware",
    "rope", "bells", "saddles", "skates", "umbrellas", "microscopes", "pianos", "stoves", "harnesses",
    "canoes", "printing presses", "lenses", "carpets", "candles", "buttons", "anchors", "boilers",
    "fountain pens", "sewing machines", "windmills", "ink", "soap", "wagons", "chess sets",
)
COMPANY_SUFFIXES = ("Industries", "Works", "Foundry", "Company", "Mills", "Instruments")
_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "gr", "kr", "tr",
           "st", "sk", "th", "ch", "sh", "pl", "vr")
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "ei", "ou")
_CODAS = ("", "", "", "", "n", "r", "l", "s", "k", "m")


@dataclass
class KnowledgeBase:
    """Entities by type, the facts about them, and the name each mention alias points to.

    Attributes:
        entities: type -> names (companies, persons, cities, countries; years and products are values).
        facts: every true fact.
        aliases: lower-cased alias (full name, a person's surname, a company's name without its suffix) -> name.
        types: name -> type, for every entity and value.
    """

    entities: dict[str, list[str]]
    facts: list[Fact]
    aliases: dict[str, str] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._by_subject: dict[str, list[Fact]] = defaultdict(list)
        for f in self.facts:
            self._by_subject[f[0]].append(f)
        self._fact_set = set(self.facts)

    def about(self, subject: str, relation: str | None = None) -> list[Fact]:
        """Return the true facts about a subject (of one relation, when given)."""
        return [f for f in self._by_subject.get(subject, []) if relation is None or f[1] == relation]

    def objects(self, subject: str, relation: str) -> list[str]:
        return [f[2] for f in self.about(subject, relation)]

    def is_true(self, fact: Fact) -> bool:
        return tuple(fact) in self._fact_set

    def values(self, kind: str) -> list[str]:
        """Return every name of a type (years: those used in facts)."""
        if kind in self.entities:
            return self.entities[kind]
        return sorted({f[2] for f in self.facts if RELATIONS[f[1]].object == kind})


def _word(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(syllables)).capitalize()


def _unique_words(rng: random.Random, n: int, taken: set[str], syllables: tuple[int, ...]) -> list[str]:
    """Return n new words, none equal to, containing or contained in a word already taken (mentions stay exact)."""
    out: list[str] = []
    while len(out) < n:
        w = _word(rng, rng.choice(syllables))
        low = w.lower()
        if len(low) < 4 or any(low in t or t in low for t in taken):
            continue
        taken.add(low)
        out.append(w)
    return out


def build_kb(seed: int = 0, *, companies: int = 96, extra_persons: int = 48, cities: int = 40, countries: int = 10) -> KnowledgeBase:
    """Generate the world: each company has a founder, a founding year, a headquarters and 2-3 products.

    Every person (founders and others) has a birthplace, a birth year and a home city; every city
    lies in one country. Names are unique and no name is a substring of another.
    """
    rng = random.Random(f"aligned-generators/rag/kb/{seed}")
    taken: set[str] = set(p.lower() for p in PRODUCTS) | {s.lower() for s in COMPANY_SUFFIXES}
    country_names = [w + rng.choice(("ia", "and", "ovia", "esh", "ar")) for w in _unique_words(rng, countries, taken, (2,))]
    for c in country_names:
        taken.add(c.lower())
    city_names = _unique_words(rng, cities, taken, (2,))
    n_persons = companies + extra_persons
    firsts = _unique_words(rng, n_persons, taken, (2,))
    lasts = _unique_words(rng, n_persons, taken, (2,))
    persons = [f"{a} {b}" for a, b in zip(firsts, lasts)]
    bases = _unique_words(rng, companies, taken, (2,))
    company_names = [f"{b} {rng.choice(COMPANY_SUFFIXES)}" for b in bases]

    facts: list[Fact] = []
    for city in city_names:
        facts.append((city, "country", rng.choice(country_names)))
    for person in persons:
        born = rng.randint(1780, 1890)
        facts += [(person, "born_in", rng.choice(city_names)), (person, "born_year", str(born)),
                  (person, "lives_in", rng.choice(city_names))]
    for company, founder in zip(company_names, persons):
        facts += [(company, "founded_year", str(rng.randint(1800, 1960))), (company, "founded_by", founder),
                  (company, "headquarters", rng.choice(city_names))]
        facts += [(company, "products", p) for p in rng.sample(PRODUCTS, rng.choice((2, 3)))]

    entities = {"company": company_names, "person": persons, "city": city_names, "country": country_names}
    types = {name: kind for kind, names in entities.items() for name in names}
    types.update({p: "product" for p in PRODUCTS})
    aliases = {name.lower(): name for name in types if types[name] != "product"}
    aliases.update({p.split()[-1].lower(): p for p in persons})
    aliases.update({c.rsplit(" ", 1)[0].lower(): c for c in company_names})
    aliases.update({p: p for p in PRODUCTS})
    return KnowledgeBase(entities, facts, aliases, types)
