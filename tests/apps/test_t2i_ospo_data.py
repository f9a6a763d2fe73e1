"""OSPO's data steps: hard negatives conflict with their prompt and stay in training; pair rules per method."""

from __future__ import annotations

import random

import pytest

from shared.scenes.checker import check
from apps.t2i.negatives import EDITS, candidates, hard_negatives
from apps.t2i.preference import dpo_pairs, initial_scenes, kto_samples, ospo_pairs
from shared.scenes.image import CATEGORIES, Scene, SceneObject, parse_prompt, prompt_of, render
from shared.records import Candidate


def test_initial_scenes_are_distinct_training_scenes_per_category():
    scenes = initial_scenes(5, seed=0)
    assert len(scenes) == 5 * len(CATEGORIES) and len(set(scenes)) == len(scenes)
    assert all(s.split == "train" for s in scenes)


@pytest.mark.parametrize("category", CATEGORIES)
def test_hard_negatives_conflict_and_hold_no_heldout_combination(category):
    rng = random.Random(1)
    for scene in initial_scenes(4, seed=3):
        if scene.category != category:
            continue
        negatives = hard_negatives(scene, rng, 3)
        assert negatives, prompt_of(scene)
        for neg in negatives:
            assert neg != scene and neg.split == "train"
            assert not check(render(neg, 32, 0).image, scene)["passed"]  # the meaning conflicts
            assert prompt_of(neg) != prompt_of(scene)


def test_edits_cover_binding_counts_and_relations():
    binding = Scene("color_attr", (SceneObject("red", "circle"), SceneObject("blue", "square")))
    assert prompt_of(candidates(binding, "swap")[0]) == "a photo of a blue circle and a red square"
    count = parse_prompt("a photo of three green circles")
    assert {prompt_of(s) for s in candidates(count, "count")} == {"a photo of two green circles", "a photo of four green circles"}
    position = parse_prompt("a photo of a red circle left of a blue square")
    assert prompt_of(candidates(position, "relation")[0]) == "a photo of a red circle right of a blue square"
    assert {s.category for s in candidates(position, "drop")} == {"single_object"}
    assert set(EDITS) == {"colour", "shape", "swap", "drop", "count", "relation"}


def cand(name, source, passed, score, group=0, prompt="a photo of a red circle"):
    return Candidate(prompt_id="a photo of a red circle", prompt=prompt, output=name,
                     scores={"passed": passed, "score": score},
                     metadata={"source": source, "group": group, "boxes": [], "reason": "" if passed else "no"})


def test_pair_rules_per_method():
    pool = [cand("b_pass", "base", 1.0, 1.0), cand("b_fail", "base", 0.0, 0.5), cand("b_worse", "base", 0.0, 0.0),
            cand("n_fail", "negative", 0.0, 0.0, prompt="a photo of a blue circle"),
            cand("n_pass", "negative", 1.0, 1.0, prompt="a photo of a blue circle"),
            cand("other_group_fail", "negative", 0.0, 0.0, group=1)]
    ospo = ospo_pairs(pool, max_per_prompt=4, seed=0)
    assert [(p.chosen, p.rejected) for p in ospo] == [("b_pass", "n_fail")]
    assert ospo[0].metadata["negative_prompt"] == "a photo of a blue circle"
    dpo = dpo_pairs(pool, max_per_prompt=1, seed=0)
    assert [(p.chosen, p.rejected) for p in dpo] == [("b_pass", "b_worse")]  # lowest score first, base prompt only
    assert [c.output for c in kto_samples(pool)] == ["b_pass", "b_fail", "b_worse"]
    assert ospo_pairs([c for c in pool if c.output != "b_pass"], 4, 0) == []  # nothing passes: no pair
