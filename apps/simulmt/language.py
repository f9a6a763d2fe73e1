"""The embedded language pair: an invented head-final source language and English, generated with alignments.

The source language ("Veli") is SOV and head-final, like Japanese or German subordinate clauses:

    [place (adj) de]  subject (adj) ga  object (adj) wo  verb [nai] [ta] [ka]

`ga`/`wo` mark subject and object, `de` is a postposition ("in"), `nai` negates, `ta` marks the past
and `ka` makes a yes/no question; two clauses may be joined by `to` ("and"). Adjectives follow
their noun; compounds are single source words that translate to two English words.

English puts the verb second, adjectives first and the place last, and a question's first word
(`does`/`did`) depends on the source's LAST word. So a translator that writes early must guess
(the verb, the tense, whether it is a question) and one that waits is late: monotone translation
trades quality for latency by construction. Each sentence has two correct English references:
`canonical` ("the black dog saw the cat in the park .") and `monotone`, which follows the source
order where English allows it ("in the park , the dog that is black saw the cat ."). Every target
word carries the source positions it depends on (Pharaoh `i-j` alignments), from which the
earliest adequate read/write schedule follows; key points list what a translation must convey.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

ANIMATES = ["dog", "cat", "bird", "horse", "farmer", "teacher", "child", "doctor", "baker", "sailor", "king",
            "queen", "girl", "boy", "singer", "fox", "wolf", "goat", "cow", "guard", "painter", "student"]
THINGS = ["apple", "book", "letter", "boat", "cake", "song", "map", "key", "lamp", "ball", "hat", "box"]
ADJECTIVES = ["big", "small", "old", "young", "black", "white", "red", "green", "happy", "sad", "tall", "quiet",
              "brave", "clever", "lazy", "angry"]
VERBS = [("see", "sees", "saw"), ("like", "likes", "liked"), ("help", "helps", "helped"), ("find", "finds", "found"),
         ("follow", "follows", "followed"), ("call", "calls", "called"), ("watch", "watches", "watched"),
         ("feed", "feeds", "fed"), ("carry", "carries", "carried"), ("meet", "meets", "met"),
         ("hear", "hears", "heard"), ("teach", "teaches", "taught"), ("chase", "chases", "chased"),
         ("visit", "visits", "visited"), ("paint", "paints", "painted"), ("draw", "draws", "drew"),
         ("greet", "greets", "greeted"), ("push", "pushes", "pushed"), ("catch", "catches", "caught"),
         ("bring", "brings", "brought")]
PLACES = ["park", "garden", "market", "school", "river", "forest", "village", "harbor", "kitchen", "library",
          "field", "castle"]
COMPOUNDS = [("village", "doctor"), ("school", "teacher"), ("river", "boat"), ("forest", "fox"), ("harbor", "guard"),
             ("market", "baker"), ("castle", "king"), ("garden", "lamp"), ("library", "book"), ("field", "horse"),
             ("kitchen", "cat"), ("park", "singer")]
PARTICLES = {"subject": "ga", "object": "wo", "in": "de", "neg": "nai", "past": "ta", "question": "ka", "and": "to"}
FUNCTION_WORDS = ("the", "that", "is", "in", ",", ".", "?", "and", "does", "did", "not")

_CONSONANTS = "pbtdkgmnslrvzh"
_VOWELS = "aeiou"


def _invent_words(count: int, syllables: int, rng: random.Random, taken: set[str]) -> list[str]:
    words = []
    while len(words) < count:
        word = "".join(rng.choice(_CONSONANTS) + rng.choice(_VOWELS) for _ in range(syllables))
        if word not in taken and not any(word.startswith(p) and len(p) > 2 for p in taken):
            taken.add(word)
            words.append(word)
    return words


@dataclass(frozen=True, eq=False)
class Lexicon:
    """The source word of every English content word (nouns, compounds, adjectives, verbs, places)."""

    nouns: dict[str, str]
    adjectives: dict[str, str]
    verbs: dict[str, str]
    places: dict[str, str]
    compounds: dict[tuple[str, str], str]

    @classmethod
    def build(cls, seed: int = 7) -> Lexicon:
        """The fixed lexicon (the language does not change with the data seed)."""
        rng = random.Random(seed)
        taken = set(PARTICLES.values())
        nouns = dict(zip(ANIMATES + THINGS, _invent_words(len(ANIMATES + THINGS), 2, rng, taken)))
        adjectives = dict(zip(ADJECTIVES, _invent_words(len(ADJECTIVES), 2, rng, taken)))
        verbs = dict(zip([v[0] for v in VERBS], _invent_words(len(VERBS), 3, rng, taken)))
        places = dict(zip(PLACES, _invent_words(len(PLACES), 2, rng, taken)))
        stems = {**nouns, **places}
        compounds = {(m, h): stems[m] + stems[h] for m, h in COMPOUNDS}
        return cls(nouns, adjectives, verbs, places, compounds)

    def source_words(self) -> list[str]:
        """Every source word (content words, compounds and particles)."""
        return sorted({*self.nouns.values(), *self.adjectives.values(), *self.verbs.values(), *self.places.values(),
                       *self.compounds.values(), *PARTICLES.values()})

    def target_words(self) -> list[str]:
        """Every English word the references use."""
        forms = {f for v in VERBS for f in v}
        return sorted({*self.nouns, *self.adjectives, *forms, *self.places, *FUNCTION_WORDS})

    def translations(self) -> dict[str, set[str]]:
        """Source content word -> the English words it can yield (a verb: all three forms)."""
        out: dict[str, set[str]] = {}
        for en, src in [*self.nouns.items(), *self.adjectives.items(), *self.places.items()]:
            out.setdefault(src, set()).add(en)
        for (m, h), src in self.compounds.items():
            out.setdefault(src, set()).update({m, h})
        for base, third, past in VERBS:
            out.setdefault(self.verbs[base], set()).update({base, third, past})
        return out


@dataclass
class NounPhrase:
    noun: str | tuple[str, str]
    adjective: str | None = None


@dataclass
class Clause:
    subject: NounPhrase
    obj: NounPhrase
    verb: tuple[str, str, str]
    past: bool = False
    negated: bool = False
    place: NounPhrase | None = None


@dataclass
class SentencePair:
    """One sentence pair: source words, references (canonical first) and, for generated data, alignments and key points.

    alignments[r][j] lists the 0-based source positions target word j of reference r depends on;
    key_points lists what a translation must convey, each as alternatives of word sets (all words
    of one alternative must appear).
    """

    id: str
    source: list[str]
    references: list[str]
    alignments: list[list[list[int]]] | None = None
    key_points: list[list[list[str]]] = field(default_factory=list)

    @property
    def reference(self) -> str:
        """The first (canonical) reference: BLEU's first stream and latency's |Y|."""
        return self.references[0]


class _Writer:
    """Builds the source and both references of one sentence with their alignments."""

    def __init__(self, lex: Lexicon):
        self.lex = lex
        self.source: list[str] = []

    def put(self, word: str) -> int:
        self.source.append(word)
        return len(self.source) - 1

    def noun_phrase(self, np: NounPhrase, particle: str | None) -> dict:
        if isinstance(np.noun, tuple):
            noun_at, words = self.put(self.lex.compounds[np.noun]), list(np.noun)
        else:
            noun_at, words = self.put(self.lex.nouns.get(np.noun) or self.lex.places[np.noun]), [np.noun]
        adj_at = self.put(self.lex.adjectives[np.adjective]) if np.adjective else None
        end = self.put(particle) if particle else (adj_at if adj_at is not None else noun_at)
        head = [("the", [noun_at])] + [(w, [noun_at]) for w in words]
        canonical = head[:1] + ([(np.adjective, [adj_at])] if adj_at is not None else []) + head[1:]
        monotone = head + ([("that", [adj_at]), ("is", [adj_at]), (np.adjective, [adj_at])] if adj_at is not None else [])
        return {"canonical": canonical, "monotone": monotone, "end": end, "noun_at": noun_at}


def _verb_words(clause: Clause, verb_at: int, known_at: int, question: bool) -> tuple[list, list]:
    """(auxiliary words, verb phrase words) of a clause; tense and polarity are known at `known_at`."""
    base, third, past = clause.verb
    deps = [verb_at, known_at]
    aux_word = "did" if clause.past else "does"
    if question:
        aux = [(aux_word, [known_at])]
        phrase = ([("not", deps)] if clause.negated else []) + [(base, deps)]
        return aux, phrase
    if clause.negated:
        return [], [(aux_word, deps), ("not", deps), (base, deps)]
    return [], [(past if clause.past else third, deps)]


def realise(clauses: list[Clause], question: bool, lex: Lexicon, sid: str) -> SentencePair:
    """Write the source sentence and both references (with alignments and key points) of the clauses."""
    w = _Writer(lex)
    styles: dict[str, list[tuple[str, list[int]]]] = {"canonical": [], "monotone": []}
    key_points: list[list[list[str]]] = []
    for index, clause in enumerate(clauses):
        if index:
            and_at = w.put(PARTICLES["and"])
            for style in styles.values():
                style.append(("and", [and_at]))
        place = None
        if clause.place is not None:
            place = w.noun_phrase(clause.place, PARTICLES["in"])
            place = {k: ([("in", [place["noun_at"]])] + v if k in ("canonical", "monotone") else v)
                     for k, v in place.items()}
        subject = w.noun_phrase(clause.subject, PARTICLES["subject"])
        obj = w.noun_phrase(clause.obj, PARTICLES["object"])
        verb_at = w.put(lex.verbs[clause.verb[0]])
        last = verb_at
        if clause.negated:
            last = w.put(PARTICLES["neg"])
        if clause.past:
            last = w.put(PARTICLES["past"])
        end_at = None
        if question:
            end_at = w.put(PARTICLES["question"])
        # tense and polarity are settled by `ta` (the group's last possible word), else by the word after
        # the verb group or the end of the source; a question's by its final `ka`
        if question:
            known_at = end_at
        elif clause.past or index + 1 == len(clauses):
            known_at = last
        else:
            known_at = last + 1
        aux, phrase = _verb_words(clause, verb_at, known_at, question)
        for name, style in styles.items():
            style.extend(aux)
            fronted = name == "monotone" and not question  # a question's auxiliary comes first in English
            if fronted and place is not None:
                style.extend(place[name] + [(",", [place["end"]])])
            style.extend(subject[name] + phrase + obj[name])
            if not fronted and place is not None:
                style.extend(place[name])
        key_points.extend(_clause_key_points(clause, question))
    end = [("?", [len(w.source) - 1])] if question else [(".", [len(w.source) - 1])]
    key_points.append([["?"]] if question else [["."]])
    refs, aligns = [], []
    for style in styles.values():
        words = style + end
        refs.append(" ".join(word for word, _ in words))
        aligns.append([sorted(set(deps)) for _, deps in words])
    return SentencePair(sid, w.source, refs, aligns, key_points)


def _clause_key_points(clause: Clause, question: bool) -> list[list[list[str]]]:
    points = []
    for np in (clause.subject, clause.obj, clause.place):
        if np is None:
            continue
        points.append([list(np.noun) if isinstance(np.noun, tuple) else [np.noun]])
        if np.adjective:
            points.append([[np.adjective]])
    base, third, past = clause.verb
    if clause.negated or question:
        points.append([["did" if clause.past else "does", base] + (["not"] if clause.negated else [])])
    else:
        points.append([[past if clause.past else third]])
    return points


def _noun_phrase(rng: random.Random, nouns: list, adjective_p: float, compound_p: float = 0.0) -> NounPhrase:
    noun = rng.choice(COMPOUNDS) if rng.random() < compound_p else rng.choice(nouns)
    return NounPhrase(noun, rng.choice(ADJECTIVES) if rng.random() < adjective_p else None)


def random_sentence(rng: random.Random, lex: Lexicon, sid: str) -> SentencePair:
    """Draw one sentence: one clause (70%) or two; a single clause is a question 30% of the time."""
    clauses = []
    for _ in range(1 if rng.random() < 0.7 else 2):
        clauses.append(Clause(
            subject=_noun_phrase(rng, ANIMATES, 0.4, 0.15), obj=_noun_phrase(rng, ANIMATES + THINGS, 0.4, 0.15),
            verb=rng.choice(VERBS), past=rng.random() < 0.4, negated=rng.random() < 0.3,
            place=_noun_phrase(rng, PLACES, 0.3) if rng.random() < 0.35 else None))
    question = len(clauses) == 1 and rng.random() < 0.3
    return realise(clauses, question, lex, sid)


def generate(count: int, seed: int, prefix: str) -> list[SentencePair]:
    """`count` distinct sentences drawn with `seed` (ids prefix-0, prefix-1, ...)."""
    rng, lex, seen, out = random.Random(seed), Lexicon.build(), set(), []
    while len(out) < count:
        pair = random_sentence(rng, lex, f"{prefix}-{len(out)}")
        key = " ".join(pair.source)
        if key not in seen:
            seen.add(key)
            out.append(pair)
    return out


def embedded_split(train: int, heldout: int, seed: int) -> tuple[list[SentencePair], list[SentencePair]]:
    """Train and held-out sentences with no source sentence in both (held-out drawn first, train skips them)."""
    held = generate(heldout, seed + 1, "heldout")
    taken = {" ".join(p.source) for p in held}
    pool = generate(train + heldout, seed, "train")
    kept = [p for p in pool if " ".join(p.source) not in taken][:train]
    return kept, held
