"""The chain-of-speech plan format: formatting, parsing (strict and lenient), and the grammar that constrains sampling."""

from __future__ import annotations

import random

import pytest

from apps.slides.categories import CATEGORIES, categorize, condense, coverage, flow, levenshtein
from apps.slides.plan import DeckGrammar, DeckPlan, PlanError, SlidePlan, format_plan, parse_plan
from shared.constrained import walk

PLAN = DeckPlan((
    SlidePlan("title", "SparseFuse: Fusing Sparse Retrieval", "introduce the talk", "This talk presents SparseFuse.",
              ("Ada Lovelace and Alan Turing",)),
    SlidePlan("method", "How SparseFuse works", "explain the method", "It fuses BM25 with a learned encoder.",
              ("Fuses **BM25** scores", "Learned sparse encoder")),
))


def test_format_and_strict_parse_round_trip():
    text = format_plan(PLAN)
    assert text.startswith("## Title and Authors\nTitle: SparseFuse")
    assert parse_plan(text, strict=True) == PLAN


@pytest.mark.parametrize("text, message", [
    ("## Methods\nTitle: a\n", "unknown section 'Methods'"),
    ("Title: a\n", "line 1: text before the first"),
    ("## Method Overview\nTitle: a\nPurpose: b\n- x\n", "line 4: bullet before the slide's 'Speech' line"),
    ("## Method Overview\nTitle: a\nPurpose: b\nSpeech: c\n", "slide 1 (Method Overview) has no bullets"),
    ("## Method Overview\nTitle: a\nPurpose: b\nSpeech: c\n- x\nSomething else\n", "line 6: expected"),
])
def test_strict_parse_names_the_line(text, message):
    with pytest.raises(PlanError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_plan(text, strict=True)


def test_lenient_parse_drops_a_cut_off_slide_and_marks_truncation():
    text = format_plan(PLAN) + "## Experiment Setup and Results\nTitle: Results\nPurpose: show"
    plan = parse_plan(text)
    assert plan.slides == PLAN.slides and plan.truncated
    with pytest.raises(PlanError, match="no complete slide"):
        parse_plan("## Method Overview\nTitle: only a title")
    with pytest.raises(PlanError):
        parse_plan("")


def test_grammar_accepts_formatted_plans_and_nothing_else():
    g = DeckGrammar()
    state = walk(g, format_plan(PLAN))
    assert state is not None and g.can_end(state)
    assert walk(g, "## Method\n") is None  # not a category name
    assert walk(g, "## Method Overview\nTitle:  x") is None  # a field cannot start with a space
    assert walk(g, "## Method Overview\nTitle: x\nSpeech: y") is None  # fields come in order
    assert walk(g, "## Method Overview\nTitle: x\n\n") is None  # no empty lines
    partial = walk(g, "## Method Overview\nTitle: x\nPurpose: y\nSpeech: z\n")
    assert partial is not None and not g.can_end(partial)  # a slide needs a bullet before the plan may end
    many = "## Method Overview\nTitle: x\nPurpose: y\nSpeech: z\n" + "- b\n" * g.max_bullets
    assert walk(g, many) is not None and walk(g, many + "-") is None  # bullets per slide are capped


def test_every_string_the_grammar_accepts_parses():
    """Random walks through the automaton: whatever it allows and lets end is a well-formed plan."""
    g = DeckGrammar()
    rng = random.Random(0)
    ended = 0
    alphabet = [chr(c) for c in range(32, 127)] + ["\n"]
    for _ in range(200):
        state, text = g.start(), ""
        for _ in range(rng.randint(60, 400)):
            options = [c for c in alphabet if g.step(state, c) is not None]
            # bias towards newlines and the fixed line starts so walks finish slides
            c = "\n" if "\n" in options and rng.random() < 0.2 else rng.choice(options)
            if len(options) < 5 and rng.random() < 0.9:  # inside a fixed line start: follow it
                c = options[0]
            state, text = g.step(state, c), text + c
            if g.can_end(state) and rng.random() < 0.1:
                break
        if g.can_end(state):
            plan = parse_plan(text, strict=True)  # raises on any departure from the format
            assert plan.slides and all(s.bullets for s in plan.slides)
            ended += 1
    assert ended >= 20  # the walks do reach complete plans


def test_categories_and_slidetailor_metrics():
    assert categorize("3.2 Method") == "method" and categorize("Experimental Results") == "experiments"
    assert categorize("Conclusion and Future Work") == "conclusion" and categorize("Limitations") == "future"
    assert categorize("Approach (cont.)") == "method" and categorize("Acknowledgements") is None
    assert all(categorize(name) == key for key, name in CATEGORIES.items())
    assert condense(["title", "method", "method", None, "experiments", "method"]) == ["title", "method", "experiments", "method"]
    assert levenshtein("kitten", "sitting") == 3
    a, b = ["title", "motivation", "method", "experiments"], ["title", "method", "experiments", "conclusion"]
    assert coverage(a, b) == pytest.approx(3 / 5)
    # d = 2 (delete motivation, insert conclusion): 1 - 4 / (4 + 4 + 2)
    assert flow(a, b) == pytest.approx(0.6)
    assert flow(a, a) == coverage(a, a) == 1.0 and flow([], []) == 1.0
    assert flow(["method"], ["title"]) == pytest.approx(1 - 2 / 3)
