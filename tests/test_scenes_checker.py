"""T2I checker: finds every rendered object, answers object questions >= 95% right on held-out renders, never raises on garbage."""

import collections
import json
import random

import numpy as np
import pytest

from shared.scenes.checker import (Detection, Question, Target, answer, check, checker_accuracy, contrasts, corrupt, detect,
                              make_detection, questions_of, relative_position)
from shared.scenes.image import CATEGORIES, Scene, SceneObject, render, sample_scene

RESOLUTIONS = (32, 64)


def _heldout(n_per_category: int, seed: int = 0) -> list[Scene]:
    rng = random.Random(seed)
    return [sample_scene(rng, c, "heldout") for c in CATEGORIES for _ in range(n_per_category)]


HELDOUT = _heldout(50)  # 300 scenes


@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_detects_exactly_the_rendered_objects(resolution):
    for seed, scene in enumerate(HELDOUT[::5]):
        found = detect(render(scene, resolution, seed).image)
        got = collections.Counter((d.colour, d.shape, d.size) for d in found)
        assert got == collections.Counter((o.colour, o.shape, o.size) for o in scene.objects), scene


@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_checker_accuracy_on_heldout_renders(resolution):
    acc = checker_accuracy(HELDOUT, resolution, seeds=(0,))
    assert acc["n_questions"] > 2 * len(HELDOUT)
    assert acc["overall"] >= 0.95 and acc["positive"] >= 0.95 and acc["contrast"] >= 0.95
    assert set(acc["by_category"]) == set(CATEGORIES) and min(acc["by_category"].values()) >= 0.95


@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_checker_accuracy_under_mild_noise_and_blur(resolution):
    noisy = checker_accuracy(HELDOUT, resolution, seeds=(1,), noise=12.0)
    blurred = checker_accuracy(HELDOUT, resolution, seeds=(1,), blur=0.8 * resolution / 32)
    both = checker_accuracy(HELDOUT, resolution, seeds=(1,), noise=8.0, blur=0.6 * resolution / 32)
    assert min(noisy["overall"], blurred["overall"], both["overall"]) >= 0.95


def test_questions_of_each_category():
    red_circle, blue_square = SceneObject("red", "circle"), SceneObject("blue", "square")
    texts = {
        "counting": [q.text for q in questions_of(Scene("counting", (blue_square,) * 3))],
        "position": [q.text for q in questions_of(Scene("position", (red_circle, blue_square), "below"))],
        "color_attr": [q.text for q in questions_of(Scene("color_attr", (red_circle, blue_square)))],
    }
    assert texts == {
        "counting": ["Are there exactly three blue squares?"],
        "position": ["Is there a red circle?", "Is there a blue square?", "Is the red circle below the blue square?"],
        "color_attr": ["Is there a red circle?", "Is there a blue square?"],
    }
    for scene in _heldout(3, seed=1):
        kinds = [q.kind for q in questions_of(scene)]
        assert kinds == (["count"] if scene.category == "counting" else
                         ["exists"] * len(scene.objects) + (["position"] if scene.category == "position" else []))


def _box_detection(x0: int, y0: int, side: int, colour: str = "red", shape: str = "square") -> Detection:
    mask = np.zeros((32, 32), dtype=bool)
    mask[y0:y0 + side, x0:x0 + side] = True
    return make_detection(mask, colour, shape)


def test_position_follows_geneval_rule():
    left, right = _box_detection(2, 10, 8), _box_detection(20, 12, 8, "blue")
    assert relative_position(left, right) == {"left of"} and relative_position(right, left) == {"right of"}
    assert relative_position(left, _box_detection(3, 11, 8)) == set()  # offsets within 0.1 of the summed sides
    assert relative_position(_box_detection(2, 2, 8), _box_detection(20, 20, 8)) == {"left of", "above"}
    q = Question.position(Target("square", "red"), "left of", Target("square", "blue"))
    assert answer(q, [left, right]) and not answer(q, [right]) and not answer(q, [_box_detection(22, 2, 8), right])


def test_answers_on_hand_built_detections():
    dets = [_box_detection(2, 2, 8), _box_detection(20, 2, 8), _box_detection(2, 20, 8, "blue", "circle")]
    assert answer(Question.exists("square", "red"), dets) and answer(Question.exists("circle"), dets)
    assert not answer(Question.exists("circle", "red"), dets) and not answer(Question.exists("triangle"), dets)
    assert answer(Question.count("square", 2, "red"), dets) and not answer(Question.count("square", 1), dets)
    with pytest.raises(ValueError):
        Question("count", Target("square"))
    with pytest.raises(ValueError):
        Target("hexagon")


@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_check_passes_the_right_scene_and_fails_near_misses(resolution):
    scene = Scene("position", (SceneObject("red", "circle"), SceneObject("blue", "triangle", "small")), "left of")
    image = render(scene, resolution, 3).image
    verdict = check(image, scene)
    assert verdict["valid"] and verdict["passed"] and verdict["score"] == 1.0 and verdict["reason"] == ""
    json.dumps(verdict)
    for wrong in (Scene("position", scene.objects, "right of"),
                  Scene("position", (SceneObject("blue", "circle"), SceneObject("red", "triangle")), "left of")):
        verdict = check(image, wrong)
        assert verdict["valid"] and not verdict["passed"] and verdict["reason"].startswith("no to: ")
    assert {q.relation for q in contrasts(questions_of(scene)[-1], scene)} == {"right of"}


GARBAGE = {
    "all black": np.zeros((32, 32, 3), np.uint8),
    "all white": np.full((64, 64, 3), 255, np.uint8),
    "all red": np.tile(np.uint8([220, 30, 30]), (32, 32, 1)),
    "uniform noise": np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8),
    "float image": np.zeros((32, 32, 3)),
    "grey image": np.zeros((32, 32), np.uint8),
    "rgba image": np.zeros((32, 32, 4), np.uint8),
    "not square": np.zeros((32, 48, 3), np.uint8),
    "too small": np.zeros((4, 4, 3), np.uint8),
    "empty": np.zeros((0, 0, 3), np.uint8),
    "none": None,
    "string": "an image",
    "ragged list": [[1], [1, 2]],
}


@pytest.mark.parametrize("name", list(GARBAGE))
def test_garbage_images_do_not_raise(name):
    scene = Scene("counting", (SceneObject("red", "square"),) * 2)
    verdict = check(GARBAGE[name], scene)
    assert not verdict["passed"] and verdict["score"] == 0.0 and verdict["reason"]
    assert verdict["valid"] == (name.startswith(("all", "uniform")))
    json.dumps(verdict)


def test_corrupt_is_seeded_and_keeps_the_dtype():
    image = render(HELDOUT[0], 32, 0).image
    a = corrupt(image, np.random.default_rng(1), noise=10, blur=0.5)
    assert a.dtype == np.uint8 and a.shape == image.shape
    assert np.array_equal(a, corrupt(image, np.random.default_rng(1), noise=10, blur=0.5))
    assert np.array_equal(corrupt(image, np.random.default_rng(1)), image)
