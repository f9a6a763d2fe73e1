"""T2I scenes: deterministic renders whose masks are the drawn pixels, relations that hold, a split by composition, prompt files."""

import itertools
import json
import random

import numpy as np
import pytest
from scipy import ndimage

from apps.t2i.data import ScenePrompt, build_split, load_prompts, write_prompts
from shared.scenes.image import (BACKGROUND, CATEGORIES, COLOURS, HELDOUT_PAIRS, SHAPES, Scene, SceneError, SceneObject,
                             layout, object_side, prompt_of, relation_holds, render, sample_scene)
from shared.records import RecordError

RESOLUTIONS = (32, 64)


def _scenes(n_per_category: int, seed: int = 0, split: str | None = None) -> list[Scene]:
    rng = random.Random(seed)
    return [sample_scene(rng, c, split) for c in CATEGORIES for _ in range(n_per_category)]


def test_prompts_per_category():
    red_circle, blue_square = SceneObject("red", "circle"), SceneObject("blue", "square", "small")
    cases = {
        Scene("single_object", (red_circle,)): "a photo of a red circle",
        Scene("two_objects", (red_circle, SceneObject("red", "triangle"))): "a photo of a red circle and a red triangle",
        Scene("counting", (blue_square,) * 3): "a photo of three blue squares",
        Scene("colors", (red_circle, SceneObject("cyan", "circle"))): "a photo of a red circle and a cyan circle",
        Scene("position", (red_circle, blue_square), "left of"): "a photo of a red circle left of a blue square",
        Scene("color_attr", (red_circle, blue_square)): "a photo of a red circle and a blue square",
    }
    for scene, prompt in cases.items():
        assert prompt_of(scene) == prompt


@pytest.mark.parametrize("category, objects, relation, needle", [
    ("single_object", [("red", "circle"), ("blue", "square")], None, "exactly 1 object"),
    ("two_objects", [("red", "circle"), ("blue", "square")], None, "one colour"),
    ("counting", [("red", "circle")], None, "2-4 objects"),
    ("colors", [("red", "circle"), ("blue", "square")], None, "one shape"),
    ("position", [("red", "circle"), ("red", "circle")], "above", "differing"),
    ("position", [("red", "circle"), ("red", "square")], None, "relation"),
    ("color_attr", [("red", "circle"), ("red", "square")], None, "different colours"),
    ("color_attr", [("red", "circle"), ("blue", "square")], "above", "only position scenes"),
])
def test_scene_structure_is_checked(category, objects, relation, needle):
    with pytest.raises(SceneError, match=needle):
        Scene(category, tuple(SceneObject(c, s) for c, s in objects), relation)


def test_scene_dict_round_trip_and_sampling_covers_categories():
    for scene in _scenes(20):
        d = scene.to_dict()
        assert Scene.from_dict(json.loads(json.dumps(d))) == scene
        assert ("relation" in d) == (scene.category == "position")
    with pytest.raises(ValueError, match="unknown colour 'pink'"):
        SceneObject("pink", "circle")


@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_render_is_deterministic_in_the_seed(resolution):
    scene = Scene("counting", (SceneObject("green", "circle", "large"),) * 4)
    a, b, c = render(scene, resolution, 7), render(scene, resolution, 7), render(scene, resolution, 8)
    assert a.image.shape == (resolution, resolution, 3) and a.image.dtype == np.uint8
    assert np.array_equal(a.image, b.image) and np.array_equal(a.masks, b.masks)
    assert not np.array_equal(a.image, c.image)


def test_attribute_swaps_keep_the_layout():
    scene = Scene("color_attr", (SceneObject("red", "circle"), SceneObject("blue", "square", "small")))
    swapped = Scene("color_attr", (SceneObject("blue", "triangle"), SceneObject("red", "circle", "small")))
    assert layout(scene, 32, 5) == layout(swapped, 32, 5)


@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_masks_are_the_drawn_pixels_and_objects_are_apart(resolution):
    gap = max(2, round(0.08 * resolution))
    for seed, scene in enumerate(_scenes(15, seed=resolution)):
        image, masks = render(scene, resolution, seed)
        assert masks.shape == (len(scene.objects), resolution, resolution) and masks.dtype == bool
        assert masks.sum(axis=0).max() == 1  # disjoint
        for obj, mask in zip(scene.objects, masks):
            assert (image[mask] == COLOURS[obj.colour]).all()
            ys, xs = np.nonzero(mask)
            assert xs.max() - xs.min() + 1 == object_side(obj.size, resolution)
        assert (image[~masks.any(axis=0)] == BACKGROUND).all()
        for a, b in itertools.combinations(masks, 2):
            near_a = ndimage.binary_dilation(a, np.ones((2 * gap + 1, 2 * gap + 1), dtype=bool))
            assert not (near_a & b).any(), "objects closer than the gap"


@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_relations_hold_with_a_margin(resolution):
    rng = random.Random(resolution)
    for seed in range(100):
        scene = sample_scene(rng, "position")
        a, b = layout(scene, resolution, seed)
        assert relation_holds(a, b, scene.relation, gap=max(2, round(0.08 * resolution)))
        (ax, ay, ad), (bx, by, bd) = a, b
        dx, dy = (ax + ad / 2) - (bx + bd / 2), (ay + ad / 2) - (by + bd / 2)
        along = {"left of": -dx, "right of": dx, "above": -dy, "below": dy}[scene.relation]
        assert along >= 0.3 * resolution


def test_crowded_scenes_render_and_small_resolutions_are_refused():
    scene = Scene("counting", (SceneObject("red", "square", "large"),) * 4)
    for seed in range(200):
        render(scene, 32, seed)
    with pytest.raises(SceneError, match="resolution"):
        render(scene, 16, 0)


def test_heldout_pairs_keep_every_attribute_in_training():
    all_pairs = set(itertools.product(COLOURS, SHAPES))
    train_pairs = all_pairs - HELDOUT_PAIRS
    assert HELDOUT_PAIRS < all_pairs and 0.15 <= len(HELDOUT_PAIRS) / len(all_pairs) <= 0.25
    assert {c for c, _ in train_pairs} == set(COLOURS) and {s for _, s in train_pairs} == set(SHAPES)


def test_split_is_by_composition_and_deterministic():
    split = build_split(60, 30, seed=3)
    assert split == build_split(60, 30, seed=3) and split != build_split(60, 30, seed=4)
    assert set(split["train"]) == set(split["heldout"]) == set(CATEGORIES)
    train = [s for scenes in split["train"].values() for s in scenes]
    heldout = [s for scenes in split["heldout"].values() for s in scenes]
    assert len(train) == 60 * len(CATEGORIES) and len(heldout) == 30 * len(CATEGORIES)
    assert all(not (s.pairs & HELDOUT_PAIRS) for s in train)
    assert all(s.pairs & HELDOUT_PAIRS for s in heldout)
    assert {o.colour for s in train for o in s.objects} == set(COLOURS)
    assert {o.shape for s in train for o in s.objects} == set(SHAPES)
    assert not {prompt_of(s) for s in train} & {prompt_of(s) for s in heldout}
    for category in CATEGORIES:
        assert all(s.category == category for s in split["train"][category] + split["heldout"][category])


@pytest.mark.parametrize("name", ["prompts.jsonl", "prompts.jsonl.gz"])
def test_prompt_file_round_trip(tmp_path, name):
    scenes = _scenes(3)
    records = [ScenePrompt.of(s) for s in scenes[:-1]] + [ScenePrompt("two red things", scenes[-1], {"id": "x"})]
    path = write_prompts(tmp_path / name, records)
    assert load_prompts(path) == records
    write_prompts(tmp_path / "bare.jsonl", scenes)
    assert [r.prompt for r in load_prompts(tmp_path / "bare.jsonl")] == [prompt_of(s) for s in scenes]


def test_prompt_is_written_from_the_scene_when_missing(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"scene": {"category": "single_object", "objects": [{"colour": "red", "shape": "circle"}]}}\n')
    (record,) = load_prompts(path)
    assert record.prompt == "a photo of a red circle" and record.scene.objects[0].size == "large"


GOOD = '{"scene": {"category": "single_object", "objects": [{"colour": "red", "shape": "circle"}]}}'


@pytest.mark.parametrize("line, needle", [
    ('{"scene": ', "invalid JSON"),
    ('{"prompt": "a photo of a red circle"}', "field 'scene': missing"),
    ('{"scene": {"category": "single_object", "objects": [{"colour": "pink", "shape": "circle"}]}}',
     "field 'scene.objects[0].colour': unknown colour 'pink'"),
    ('{"scene": {"category": "single_object", "objects": [{"colour": "red"}]}}', "field 'scene.objects[0].shape': missing"),
    ('{"scene": {"category": "position", "objects": [{"colour": "red", "shape": "circle"}, '
     '{"colour": "red", "shape": "square"}], "relation": "near"}}', "field 'scene.relation': unknown relation 'near'"),
    ('{"prompt": "", "scene": {"category": "single_object", "objects": [{"colour": "red", "shape": "circle"}]}}',
     "field 'prompt': expected a non-empty string"),
    ('[1, 2]', "expected a JSON object"),
])
def test_malformed_prompt_file_names_file_line_and_field(tmp_path, line, needle):
    path = tmp_path / "bad.jsonl"
    path.write_text(f"{GOOD}\n\n{line}\n{GOOD}\n")
    with pytest.raises(RecordError) as info:
        load_prompts(path)
    message = str(info.value)
    assert isinstance(info.value, ValueError) and "\n" not in message
    assert message.startswith(f"{path}:3: ") and needle in message


def test_empty_and_missing_prompt_files(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(RecordError, match=r"empty\.jsonl:1: empty file"):
        load_prompts(tmp_path / "empty.jsonl")
    with pytest.raises(RecordError, match="no such file"):
        load_prompts(tmp_path / "absent.jsonl")
