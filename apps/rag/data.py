"""Questions with documents: the embedded knowledge-base set and users' ALCE-style JSONL files.

An `Example` is what a model is prompted with and scored on: a question, its short-answer groups
(ALCE's `qa_pairs[*].short_answers`: an answer scores the share of groups of which it contains
some alias) and an ordered list of documents (title, text).

**Embedded set** (`embedded:train`, `embedded:heldout`): questions about the invented world of
`kb.py`, split by entity (a company with its founder, or a person), so held-out questions are
about entities training never saw. Kinds: `single` (one fact), `multi` (a company's 2-3
products, each stated in its own document, like ASQA's several answers) and `two_hop` (the
founder's birthplace; the headquarters' country). Each question gets documents of four kinds:
golden (states a needed fact), partial (about the question's subject, other facts), distracting
(another entity of the same type, the asked relation) and misleading (a passage about another
entity that states a false version of the needed fact about the subject in passing; the
knowledge base holds the truth, and the title is the only hint that it is second-hand: ours).
Document settings: `golden` (golden documents only), `distract` (golden + distracting/partial,
five in all), `mislead` (golden + one misleading + distracting/partial, five), `retrieved` (the
top five of BM25 over every passage of the world, `retrieval.py`).

**Files** (`path.jsonl`): one question per line in ALCE's layout: `question`; answers as
`qa_pairs: [{"short_answers": [...]}]` (ASQA), `answers: [[alias, ...], ...]` (groups) or
`answers: [alias, ...]` (one group, NQ/TriviaQA); `docs: [{"title", "text"}]` (a doc with a
non-zero `answers_found` counts as golden, as in ALCE's files); optional `id`, and `output` (or
ASQA's `answer`) as the SFT target. A malformed line raises one line `path:line: field ...`.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from apps.rag.kb import RELATIONS, Fact, KnowledgeBase, build_kb
from shared.records import RecordError, iter_json_objects

SETTINGS = ("golden", "distract", "mislead", "retrieved")
EMBEDDED = ("embedded:train", "embedded:heldout")
DOCS_PER_PROMPT = 5


@dataclass
class DataArgs:
    """Where questions and documents come from.

    Attributes:
        train: "embedded:train" or an ALCE-style JSONL path (questions, answers, documents).
        heldout: "embedded:heldout" or a JSONL path.
        settings: document settings of embedded questions (golden, distract, mislead, retrieved); files use their own documents.
        max_train: use only the first N training questions (0: all).
        max_heldout: evaluate on the first N held-out questions (0: all).
        heldout_share: share of the embedded world's entities held out.
        seed: the embedded world's seed (names, facts, documents).
        retriever: the `retrieved` setting's retriever: bm25, minilm (extra rag-dense) or a sentence-embedding model folder.
    """

    train: str = "embedded:train"
    heldout: str = "embedded:heldout"
    settings: list[str] = field(default_factory=lambda: ["golden", "distract", "mislead"])
    max_train: int = 0
    max_heldout: int = 0
    heldout_share: float = 0.25
    seed: int = 0
    retriever: str = "bm25"


@dataclass(frozen=True)
class Doc:
    """A document: title and text; embedded documents also carry their kind and the claims they state."""

    title: str
    text: str
    kind: str = "given"
    claims: tuple[Fact, ...] | None = None
    golden: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"title": self.title, "text": self.text, "kind": self.kind, "golden": self.golden}
        if self.claims is not None:
            out["claims"] = [list(c) for c in self.claims]
        return out


@dataclass
class Question:
    """An embedded question with its document pools (or a file question with its fixed documents).

    Attributes:
        qid: unique id.
        question: the question text.
        answers: short-answer groups, each a list of aliases.
        kind: single, multi, two_hop (embedded) or file.
        facts: the facts an answer needs, in order (embedded only).
        pools: document kind -> documents (golden, partial, distracting, misleading; files: given).
        target: an SFT target given by the file (None: written from the facts).
    """

    qid: str
    question: str
    answers: list[list[str]]
    kind: str
    facts: list[Fact] = field(default_factory=list)
    pools: dict[str, list[Doc]] = field(default_factory=dict)
    target: str | None = None


@dataclass
class Example:
    """One prompt's worth: a question with one ordered document list in one setting."""

    qid: str
    question: str
    answers: list[list[str]]
    docs: list[Doc]
    setting: str
    kind: str
    facts: list[Fact] = field(default_factory=list)
    target: str | None = None

    def context(self) -> dict[str, Any]:
        """The JSON-able record of this example (written beside samples and scores)."""
        return {"qid": self.qid, "question": self.question, "answers": self.answers, "setting": self.setting,
                "kind": self.kind, "docs": [d.to_dict() for d in self.docs], "facts": [list(f) for f in self.facts]}


# ---------------------------------------------------------------- the embedded set

def _sentence(fact: Fact, rng: random.Random) -> str:
    s, r, o = fact
    return rng.choice(RELATIONS[r].templates).format(s=s, o=o)


def _passage(title: str, facts: list[Fact], kind: str, rng: random.Random, golden: bool = False) -> Doc:
    return Doc(title, " ".join(_sentence(f, rng) for f in facts), kind, tuple(facts), golden)


def _others(kb: KnowledgeBase, subject: str, exclude: set[str], rng: random.Random, k: int) -> list[Fact]:
    facts = [f for f in kb.about(subject) if f[1] not in exclude]
    return rng.sample(facts, min(k, len(facts)))


def _wrong_object(kb: KnowledgeBase, fact: Fact, rng: random.Random) -> str:
    kind = RELATIONS[fact[1]].object
    true = set(kb.objects(fact[0], fact[1]))
    pool = [v for v in (kb.values(kind) if kind != "year" else [str(y) for y in range(1780, 1961)]) if v not in true]
    return rng.choice(pool)


def _question_pools(kb: KnowledgeBase, facts: list[Fact], rng: random.Random) -> dict[str, list[Doc]]:
    """Golden, partial, distracting and misleading documents for a question needing `facts`."""
    asked = {f[1] for f in facts}
    golden = [_passage(f[0], [f] + _others(kb, f[0], asked, rng, 1), "golden", rng, True) for f in facts]
    rng.shuffle(golden)
    subjects = list(dict.fromkeys(f[0] for f in facts))
    partial = []
    for subject in subjects:
        facts_left = _others(kb, subject, asked, rng, 2)
        if facts_left:
            partial.append(_passage(subject, facts_left, "partial", rng))
    key = facts[-1]  # the answer-determining fact
    kind = kb.types[key[0]]
    others = [e for e in kb.entities[kind] if e not in subjects]
    distracting = []
    for other in rng.sample(others, 3):
        stated = kb.about(other, key[1])[:1] + _others(kb, other, {key[1]}, rng, 1)
        distracting.append(_passage(other, stated, "distracting", rng))
    misleading = []
    for other in rng.sample(others, 2):
        false = (key[0], key[1], _wrong_object(kb, key, rng))
        misleading.append(_passage(other, _others(kb, other, set(), rng, 1) + [false], "misleading", rng))
    return {"golden": golden, "partial": partial, "distracting": distracting, "misleading": misleading}


def _aliases(kb: KnowledgeBase, name: str) -> list[str]:
    if kb.types.get(name) == "person":
        return [name, name.split()[-1]]
    return [name]


def embedded_questions(kb: KnowledgeBase, seed: int = 0) -> list[tuple[str, Question]]:
    """Return (split key, question) for every question about the world (split key: the subject's entity)."""
    rng = random.Random(f"aligned-generators/rag/questions/{seed}")
    out: list[tuple[str, Question]] = []

    def add(key: str, kind: str, text: str, facts: list[Fact], answers: list[list[str]]):
        qid = f"rag/{len(out):04d}"
        out.append((key, Question(qid, text, answers, kind, facts, _question_pools(kb, facts, rng))))

    founders = set()
    for company in kb.entities["company"]:
        year = kb.about(company, "founded_year")[0]
        by = kb.about(company, "founded_by")[0]
        hq = kb.about(company, "headquarters")[0]
        founder, city = by[2], hq[2]
        founders.add(founder)
        add(company, "single", f"When was {company} founded?", [year], [[year[2]]])
        add(company, "single", f"Who founded {company}?", [by], [_aliases(kb, founder)])
        add(company, "single", f"Where is {company} headquartered?", [hq], [[city]])
        products = kb.about(company, "products")
        add(company, "multi", f"What does {company} make?", products, [[p[2]] for p in products])
        born = kb.about(founder, "born_in")[0]
        add(company, "two_hop", f"Where was the founder of {company} born?", [by, born], [[born[2]]])
        country = kb.about(city, "country")[0]
        add(company, "two_hop", f"In which country is {company} headquartered?", [hq, country], [[country[2]]])
    for person in kb.entities["person"]:
        if person not in founders:
            born = kb.about(person, "born_in")[0]
            add(person, "single", f"Where was {person} born?", [born], [[born[2]]])
    return out


@lru_cache(maxsize=4)
def embedded_world(seed: int = 0, heldout_share: float = 0.25) -> tuple[KnowledgeBase, list[Question], list[Question]]:
    """Return (knowledge base, training questions, held-out questions), split by subject entity."""
    kb = build_kb(seed)
    train, heldout = [], []
    for key, q in embedded_questions(kb, seed):
        bucket = zlib.crc32(f"{seed}/{key}".encode()) % 10_000 / 10_000
        (heldout if bucket < heldout_share else train).append(q)
    return kb, train, heldout


def doc_list(q: Question, setting: str, seed: int, retriever=None) -> list[Doc]:
    """Return the ordered documents of a question in a setting (seeded; the same every call)."""
    if "given" in q.pools:
        return list(q.pools["given"])
    rng = random.Random(f"{seed}/{q.qid}/{setting}")
    golden, p = list(q.pools["golden"]), q.pools
    if setting == "golden":
        docs = golden
    elif setting == "distract":
        docs = golden + (p["distracting"][:2] + p["partial"] + p["distracting"][2:])[:DOCS_PER_PROMPT - len(golden)]
    elif setting == "mislead":
        fill = (p["distracting"][:1] + p["partial"] + p["distracting"][1:])[:DOCS_PER_PROMPT - len(golden) - 1]
        docs = golden + p["misleading"][:1] + fill
    elif setting == "retrieved":
        if retriever is None:
            raise ValueError("the 'retrieved' setting needs a retriever")
        return retriever.search(q.question, DOCS_PER_PROMPT)
    else:
        raise ValueError(f"unknown document setting {setting!r} (known: {', '.join(SETTINGS)})")
    docs = list(docs)
    rng.shuffle(docs)
    return docs


def examples(questions: list[Question], settings: list[str], seed: int, retriever=None) -> list[Example]:
    """Return one Example per question and setting (file questions: one, with their own documents)."""
    out = []
    for q in questions:
        for setting in (["given"] if "given" in q.pools else settings):
            out.append(Example(q.qid, q.question, q.answers, doc_list(q, setting, seed, retriever), setting, q.kind,
                               q.facts, q.target))
    return out


# ---------------------------------------------------------------- users' files

def _strings(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise RecordError(f"field '{name}' must be a non-empty list of non-empty strings")
    return value


def _answers(obj: dict) -> list[list[str]]:
    if obj.get("qa_pairs") is not None:
        pairs = obj["qa_pairs"]
        if not isinstance(pairs, list) or not pairs:
            raise RecordError("field 'qa_pairs' must be a non-empty list")
        out = []
        for i, pair in enumerate(pairs):
            if not isinstance(pair, dict):
                raise RecordError(f"field 'qa_pairs[{i}]' must be an object")
            out.append(_strings(pair.get("short_answers"), f"qa_pairs[{i}].short_answers"))
        return out
    answers = obj.get("answers")
    if answers is None:
        raise RecordError("missing field 'answers' (or ASQA's 'qa_pairs')")
    if isinstance(answers, list) and answers and all(isinstance(a, list) for a in answers):
        return [_strings(a, f"answers[{i}]") for i, a in enumerate(answers)]
    return [_strings(answers, "answers")]


def parse_doc(d: Any, name: str = "doc") -> Doc:
    """A {title, text} object as a Doc (a non-zero `answers_found` marks it golden); RecordError naming the field."""
    if not isinstance(d, dict):
        raise RecordError(f"field '{name}' must be an object")
    for key in ("title", "text"):
        if not isinstance(d.get(key), str):
            raise RecordError(f"field '{name}.{key}' must be a string")
    found = d.get("answers_found")
    golden = bool(found) and any(bool(x) for x in (found if isinstance(found, list) else [found]))
    return Doc(d["title"], d["text"], "golden" if golden else "given", None, golden)


def _docs(obj: dict) -> list[Doc]:
    docs = obj.get("docs")
    if not isinstance(docs, list) or not docs:
        raise RecordError("field 'docs' must be a non-empty list of {title, text} objects")
    return [parse_doc(d, f"docs[{i}]") for i, d in enumerate(docs)]


def _file_question(obj: dict, lineno: int) -> Question:
    question = obj.get("question")
    if not isinstance(question, str) or not question.strip():
        raise RecordError("field 'question' must be a non-empty string")
    target = obj.get("output", obj.get("answer"))
    if target is not None and not isinstance(target, str):
        raise RecordError("field 'output' must be a string")
    qid = obj.get("id", obj.get("sample_id", f"line{lineno}"))
    return Question(str(qid), question, _answers(obj), "file", pools={"given": _docs(obj)}, target=target)


def _read(path: str, parse, what: str) -> list:
    out = []
    for lineno, obj in iter_json_objects(path):
        try:
            out.append(parse(obj, lineno))
        except RecordError as exc:
            raise RecordError(f"{path}:{lineno}: {exc}") from None
    if not out:
        raise RecordError(f"{path}: no {what}")
    return out


def load_file(path: str) -> list[Question]:
    """Read an ALCE-style JSONL file; raise RecordError `path:line: field ...` on the first malformed line."""
    return _read(path, _file_question, "questions")


def load_docs(path: str) -> list[Doc]:
    """Read a JSONL file of {title, text} documents; RecordError `path:line: field ...` on a malformed line."""
    return _read(path, lambda obj, _: parse_doc(obj), "documents")


def load_questions(source: str, *, seed: int = 0, heldout_share: float = 0.25, limit: int = 0) -> list[Question]:
    """Return the questions of a source: embedded:train, embedded:heldout or a JSONL path."""
    if source in EMBEDDED:
        _, train, heldout = embedded_world(seed, heldout_share)
        questions = interleave(train if source == "embedded:train" else heldout)
    elif source.startswith("embedded"):
        raise ValueError(f"unknown embedded source {source!r} (known: {', '.join(EMBEDDED)})")
    else:
        questions = load_file(source)
    return questions[:limit] if limit else questions


def interleave(questions: list[Question]) -> list[Question]:
    """Order questions round-robin by kind, so a prefix (max_heldout, a stage's questions) covers every kind."""
    by_kind: dict[str, list[Question]] = {}
    for q in questions:
        by_kind.setdefault(q.kind, []).append(q)
    out, lists = [], list(by_kind.values())
    for i in range(max(map(len, lists), default=0)):
        out += [lst[i] for lst in lists if i < len(lst)]
    return out
