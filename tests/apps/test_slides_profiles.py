"""Profiles: decks written from known profiles, through .pptx and back, distil to those profiles."""

from __future__ import annotations

import random

import pytest

from apps.slides.documents import generate_documents
from apps.slides.plan import DeckPlan, SlidePlan
from apps.slides.pptx_io import TEMPLATES, build_deck, embedded_template, read_deck
from apps.slides.profiles import (Profile, bullet_style, distill, fit_sections, sample_profile, write_deck)


def _cases(n: int, seed: int = 0):
    docs = generate_documents(n, seed)
    for i, doc in enumerate(docs):
        profile = sample_profile(random.Random(f"{seed}:{i}"))
        yield doc, profile, write_deck(doc, profile)


def test_distill_recovers_the_profile_of_decks_written_from_it():
    exact = close = styled = 0
    for doc, profile, deck in _cases(300):
        got = distill(deck)
        assert got.sections == tuple(fit_sections(profile, doc, profile.slides()))
        assert got.style == profile.style and got.emphasis == profile.emphasis
        content = [s for s in deck.slides if s.section != "title"]
        if all(len(s.bullets) == profile.bullets for s in content):
            assert got.bullets == profile.bullets
        exact += got.bullets == profile.bullets
        if profile.style != "sentences":  # bullets are cut to the profile's words; a short clause stays short
            assert got.words <= profile.words
            close += abs(got.words - profile.words) <= 1
            styled += 1
    assert exact > 240  # most drafts have enough units for the profile's bullet count (the median slide has)
    assert close > 0.8 * styled


@pytest.mark.parametrize("template", TEMPLATES)
def test_distill_is_the_same_through_a_pptx(tmp_path, template):
    path = embedded_template(template, tmp_path)
    for i, (doc, profile, deck) in enumerate(_cases(12, seed=3)):
        out = build_deck(deck, path, tmp_path / f"{i}.pptx")
        assert distill(read_deck(out)) == distill(deck)


def test_fit_sections_scales_to_the_slide_count():
    doc = generate_documents(1, 5)[0]
    profile = Profile((("title", 1), ("motivation", 1), ("method", 2), ("experiments", 2), ("conclusion", 1)), 3, 6,
                      "bullets", "none")
    for slides in range(2, 9):
        plan = fit_sections(profile, doc, slides)
        keys = [k for k, _ in plan]
        assert sum(n for _, n in plan) <= slides and keys == [k for k in profile.order() if k in keys]
        if slides <= 5:
            assert sum(n for _, n in plan) == slides
    assert [k for k, _ in fit_sections(profile, doc, 3)] == ["title", "method", "experiments"]  # priority order
    assert len(write_deck(doc, profile, 4).slides) == 4


def test_bullet_styles_and_emphasis():
    assert bullet_style("SparseFuse improves recall by 4.2 points on ReefQA.") == "sentences"
    assert bullet_style("Recall gain 4.2") == "phrases"
    assert bullet_style("SparseFuse improves recall by 4.2 points") == "bullets"
    deck = DeckPlan((SlidePlan("method", "Method", "", "", ("Gains **4.2** points on ReefQA", "Uses 3 layers of fusion")),))
    assert distill(deck).emphasis == "numbers"  # one of two numbers bold: at least half
    deck = DeckPlan((SlidePlan("method", "Method", "", "", ("Gains 4.2 points on ReefQA", "Uses 3 layers of fusion")),))
    assert distill(deck).emphasis == "none"


def test_profile_rejects_nonsense_and_round_trips():
    with pytest.raises(ValueError, match="bad section"):
        Profile((("nope", 1),), 2, 5, "bullets", "none")
    with pytest.raises(ValueError):
        Profile((("method", 1),), 2, 5, "prose", "none")
    p = sample_profile(random.Random(1))
    assert Profile.from_dict(p.to_dict()) == p
    assert "Sections (slides)" in p.describe()
