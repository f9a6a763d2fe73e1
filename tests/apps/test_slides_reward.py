"""The reward: SlideTailor's coverage and flow against the reference, adherence, faithfulness and template fit."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest

from apps.slides.data import DataArgs, Task, load_split
from apps.slides.plan import DeckPlan, SlidePlan, format_plan
from apps.slides.pptx_io import embedded_template
from apps.slides.profiles import Profile
from apps.slides.reward import SCORES, adherence_parts, claims, faithfulness, score_deck, score_plan


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    return load_split(DataArgs(train_size=40), "train", tmp_path_factory.mktemp("slides"))


def test_the_reference_deck_scores_full_coverage_and_flow(tasks):
    for t in tasks:
        s = score_plan(format_plan(t.reference), t)
        assert s["valid"] == 1.0 and s["coverage"] == s["flow"] == 1.0
        assert s["adherence/count"] == 1.0 and s["faithfulness"] > 0.9
        assert 0.0 <= s["total"] <= 1.0 and set(SCORES) <= set(s)


def test_garbage_scores_invalid_and_never_raises(tasks):
    rng = random.Random(0)
    t = tasks[0]
    junk = ["", "\x00\xff", "## Method Overview\n", "Title: x\n" * 50, "🙂" * 30, "## " + "x" * 10000]
    junk += ["".join(rng.choice("#-: \nabcTitlePurposeSpeech") for _ in range(rng.randint(0, 300))) for _ in range(200)]
    for text in junk:
        s = score_plan(text, t)
        assert 0.0 <= s["total"] <= 1.0
        if not s["valid"]:
            assert s["total"] == 0.0 and s["reason"]


def test_faithfulness_catches_invented_numbers_and_names(tasks):
    t = tasks[0]
    good = t.reference
    first = next(i for i, s in enumerate(good.slides) if s.section != "title")
    slide = good.slides[first]
    bad_slide = replace(slide, bullets=slide.bullets + ("Beats GPT-9 by 93.17 points",))
    bad = DeckPlan(good.slides[:first] + (bad_slide,) + good.slides[first + 1:])
    f_good, n_good = faithfulness(good, t.document)
    f_bad, n_bad = faithfulness(bad, t.document)
    assert n_bad == n_good + 2 and f_bad < f_good
    assert claims("On **12,400** questions SparseFuse beats BM25 by 4.2% with Mira's help") == (
        ["12400", "4.2"], ["BM25", "Mira", "SparseFuse"])


def test_adherence_parts_by_hand():
    profile = Profile((("title", 1), ("method", 1)), 2, 4, "phrases", "numbers")
    plan = DeckPlan((
        SlidePlan("title", "T", "", "", ("A and B",)),
        SlidePlan("method", "M", "", "", ("Fusion gains **4.2** points", "Three fusion layers 3")),
    ))
    parts = adherence_parts(plan, profile, slides=4)
    assert parts["count"] == pytest.approx(0.5)  # 2 of 4 slides
    assert parts["bullets"] == 1.0  # the content slide has 2 bullets
    assert parts["words"] == pytest.approx(1.0)  # 4 and 4 words
    assert parts["style"] == 1.0  # both are short phrases
    assert parts["emphasis"] == pytest.approx(0.5)  # 4.2 bold, 3 not


def test_template_fit_depends_on_the_template(tmp_path, tasks):
    long = tuple("SparseFuse scores every passage with a learned sparse encoder and fuses the result with BM25 "
                 "so that rare entity names are kept" for _ in range(3))
    plan = DeckPlan((SlidePlan("method", "Method", "", "", long[:2]),))
    t = tasks[0]
    fits = {name: score_deck(plan, replace(t, template=embedded_template(name, tmp_path)))["fit"]
            for name in ("wide", "large")}
    assert fits == {"wide": 1.0, "large": 0.0}
