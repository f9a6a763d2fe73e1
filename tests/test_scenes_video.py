"""Video scenes: validation naming the field, captions that parse back, renders whose objects stay inside and apart,
appear / disappear on the right frames, move the right way at the right speed, and a split by (colour, motion)."""

import dataclasses
import itertools
import json
import math
import random

import numpy as np
import pytest

from shared.scenes.image import BACKGROUND, COLOURS, SHAPES, SceneError, object_side, shape_mask
from shared.scenes.video import (CANONICAL_APPEAR, CANONICAL_DISAPPEAR, DIRECTIONS, HELDOUT_MOTIONS, MOTIONS,
                                 T2V_CATEGORIES, VIDEO_CATEGORIES, Event, VideoObject, VideoScene, caption_of, events,
                                 frame_times, parse_caption, render_video, sample_video_scene, video_layout, visibility)

RED_LEFT = VideoObject("red", "circle", "large", "left")


def _scenes(n_per_category: int, seed: int = 0, categories=VIDEO_CATEGORIES) -> list[VideoScene]:
    rng = random.Random(seed)
    return [sample_video_scene(rng, c) for c in categories for _ in range(n_per_category)]


def _gap(resolution: int) -> int:
    return max(2, round(0.08 * resolution))


@pytest.mark.parametrize("kwargs, field, needle", [
    ({"colour": "pink"}, "colour", "unknown colour 'pink'"),
    ({"shape": "hexagon"}, "shape", "unknown shape"),
    ({"size": "huge"}, "size", "unknown size"),
    ({"motion": "diagonal"}, "motion", "unknown motion"),
    ({"motion": "left", "speed": "warp"}, "speed", "unknown speed"),
    ({"speed": "fast"}, "speed", "still object has no speed"),
    ({"appear": -0.1}, "appear", r"in \[0, 1\]"),
    ({"appear": "0.5"}, "appear", "expected a number"),
    ({"appear": True}, "appear", "expected a number"),
    ({"disappear": math.nan}, "disappear", "expected a number"),
    ({"disappear": 1.5}, "disappear", r"in \[0, 1\]"),
    ({"appear": 0.6, "disappear": 0.6}, "disappear", "after appear"),
    ({"recolour": "blue"}, "recolour", "pair"),
    ({"recolour": ("blue", 0.5, 1)}, "recolour", "pair"),
    ({"recolour": ("pink", 0.5)}, "recolour.colour", "unknown colour 'pink'"),
    ({"recolour": ("red", 0.5)}, "recolour.colour", "must differ"),
    ({"recolour": ("blue", 0.0)}, "recolour.at", "while the object is visible"),
    ({"recolour": ("blue", 1.0)}, "recolour.at", "while the object is visible"),
    ({"recolour": ("blue", "soon")}, "recolour.at", "expected a number"),
    ({"appear": 0.5, "recolour": ("blue", 0.3)}, "recolour.at", "while the object is visible"),
])
def test_object_validation_names_the_field(kwargs, field, needle):
    with pytest.raises(SceneError, match=needle) as info:
        VideoObject(**{"colour": "red", "shape": "circle", **kwargs})
    assert info.value.field == field and str(info.value).startswith(f"field '{field}': ")


@pytest.mark.parametrize("category, objects, field, needle", [
    ("sideways", [RED_LEFT], "category", "unknown category"),
    ("moving", [VideoObject("red", "circle")], "objects", "moving object"),
    ("moving", [RED_LEFT, VideoObject("blue", "square", motion="up")], "objects", "exactly 1"),
    ("moving", [VideoObject("red", "circle", motion="left", appear=0.2)], "objects", "visible throughout"),
    ("two_moving", [VideoObject("red", "circle", "small", "left"), VideoObject("blue", "square", "small", "left")],
     "objects", "different directions"),
    ("two_moving", [VideoObject("red", "circle", "small", "left"), VideoObject("red", "circle", "small", "up")],
     "objects", "different"),
    ("two_moving", [RED_LEFT, VideoObject("blue", "square", "small", "up")], "objects", "small slow"),
    ("two_moving", [VideoObject("red", "circle", "small", "left"), VideoObject("blue", "square", "small", "still")],
     "objects", "moving"),
    ("still", [RED_LEFT], "objects", "still object"),
    ("still", [VideoObject("red", "circle", disappear=0.9)], "objects", "visible throughout"),
    ("appearing", [VideoObject("red", "circle", appear=0.2)], "objects", r"appear in \[0.3, 0.6\]"),
    ("appearing", [VideoObject("red", "circle", appear=0.4, disappear=0.9)], "objects", "disappear 1"),
    ("disappearing", [VideoObject("red", "circle", disappear=0.8)], "objects", r"disappear in \[0.4, 0.7\]"),
    ("disappearing", [VideoObject("red", "circle", appear=0.1, disappear=0.5)], "objects", "appear 0"),
    ("events", [], "objects", "1-3 objects"),
    ("events", [RED_LEFT, VideoObject("red", "circle")], "objects", "different"),
    ("events", [VideoObject(c, "square") for c in ("red", "blue", "green", "cyan")], "objects", "1-3 objects"),
    ("still", [VideoObject("red", "circle", recolour=("blue", 0.5))], "objects[0].recolour", "only events"),
    ("still", ["red circle"], "objects[0]", "expected a VideoObject"),
])
def test_scene_structure_is_checked(category, objects, field, needle):
    with pytest.raises(SceneError, match=needle) as info:
        VideoScene(category, tuple(objects))
    assert info.value.field == field


def test_every_category_accepts_its_sampled_scenes_and_events_allows_anything_valid():
    scene = VideoScene("events", (VideoObject("red", "circle", "small", "up", "fast", 0.2, 0.9, ("blue", 0.5)),
                                  VideoObject("blue", "circle", appear=0.5), VideoObject("red", "square")))
    assert scene.objects[0].recolour == ("blue", 0.5)
    assert {s.category for s in _scenes(5)} == set(VIDEO_CATEGORIES)


@pytest.mark.parametrize("d, field", [
    ({"category": "moving"}, "objects"),
    ({"category": "moving", "objects": {}}, "objects"),
    ({"category": "moving", "objects": [], "extra": 1}, "extra"),
    ({"category": "moving", "objects": [{"colour": "red"}]}, "objects[0].shape"),
    ({"category": "moving", "objects": [{"colour": "red", "shape": "circle", "motion": "sideways"}]}, "objects[0].motion"),
    ({"category": "moving", "objects": [{"colour": "red", "shape": "circle", "speed": 2}]}, "objects[0].speed"),
    ({"category": "events", "objects": [{"colour": "red", "shape": "circle", "recolour": ["blue", 2]}]},
     "objects[0].recolour.at"),
    ({"category": "events", "objects": [{"colour": "red", "shape": "circle", "wobble": True}]}, "objects[0].wobble"),
    ({"category": "events", "objects": ["red circle"]}, "objects[0]"),
    ([1, 2], ""),
])
def test_from_dict_errors_name_the_field_path(d, field):
    with pytest.raises(SceneError) as info:
        VideoScene.from_dict(d)
    assert info.value.field == field


def test_dict_round_trip():
    for scene in _scenes(30):
        d = scene.to_dict()
        assert VideoScene.from_dict(json.loads(json.dumps(d))) == scene
    minimal = {"category": "moving", "objects": [{"colour": "red", "shape": "circle", "motion": "left"}]}
    assert VideoScene.from_dict(minimal) == VideoScene("moving", (RED_LEFT,))


def test_captions_per_category():
    cases = {
        VideoScene("moving", (RED_LEFT,)): "a large red circle moving left slowly",
        VideoScene("moving", (VideoObject("cyan", "triangle", "small", "down", "fast"),)):
            "a small cyan triangle moving down quickly",
        VideoScene("two_moving", (VideoObject("red", "circle", "small", "left"),
                                  VideoObject("blue", "square", "small", "up"))):
            "a red circle moving left and a blue square moving up",
        VideoScene("still", (VideoObject("blue", "square", "small"),)): "a small blue square staying still",
        VideoScene("appearing", (VideoObject("green", "triangle", appear=0.4),)): "a large green triangle appearing",
        VideoScene("disappearing", (VideoObject("yellow", "circle", "small", disappear=0.5),)):
            "a small yellow circle disappearing",
    }
    for scene, caption in cases.items():
        assert caption_of(scene) == caption
        assert parse_caption(caption.upper() + " .") is not None


@pytest.mark.parametrize("category", T2V_CATEGORIES)
def test_caption_parse_round_trip_on_random_scenes(category):
    rng = random.Random(category)
    for _ in range(200):
        scene = sample_video_scene(rng, category)
        canonical = {"appearing": {"appear": CANONICAL_APPEAR}, "disappearing": {"disappear": CANONICAL_DISAPPEAR}}
        expected = VideoScene(category, tuple(dataclasses.replace(o, **canonical.get(category, {}))
                                              for o in scene.objects))
        caption = caption_of(scene)
        assert parse_caption(caption) == expected, caption
        assert parse_caption("  " + caption.upper().replace(" ", "   ") + "\n") == expected


@pytest.mark.parametrize("text", [
    "", "a red circle", "a photo of a red circle", "a large red circle moving sideways slowly",
    "a large pink circle staying still", "a red circle moving left and a blue square moving left",
    "a red circle moving left and a red circle moving up", "a large red circle moving left slowly then stopping",
    "the large red circle appearing", "a red circle appears, then a red circle moves left", "and", "moving", 42, None,
])
def test_parse_caption_refuses_other_text(text):
    assert parse_caption(text) is None


def test_parse_caption_fills_omitted_size_and_speed():
    assert parse_caption("A red circle moving left") == VideoScene("moving", (RED_LEFT,))
    assert parse_caption("a green triangle appearing") == VideoScene(
        "appearing", (VideoObject("green", "triangle", appear=CANONICAL_APPEAR),))


def test_events_are_in_time_order_with_clauses():
    scene = VideoScene("events", (
        VideoObject("red", "circle", "small", "left", "fast", appear=0.2, recolour=("blue", 0.6)),
        VideoObject("green", "square", disappear=0.5),
        VideoObject("yellow", "triangle", "small", "up"),
    ))
    assert events(scene) == [
        Event(0.0, 2, "moves up", "a yellow triangle moves up"),
        Event(0.2, 0, "appears", "a red circle appears"),
        Event(0.2, 0, "moves left", "a red circle moves left"),
        Event(0.5, 1, "disappears", "a green square disappears"),
        Event(0.6, 0, "changes colour to blue", "a red circle changes colour to blue"),
    ]
    assert caption_of(scene) == ("a yellow triangle moves up, then a red circle appears, then a red circle moves left, "
                                 "then a green square disappears, then a red circle changes colour to blue")
    recoloured = VideoScene("events", (VideoObject("red", "circle", recolour=("blue", 0.3), disappear=0.8),))
    assert [e.text for e in events(recoloured)] == ["a red circle changes colour to blue", "a blue circle disappears"]
    assert caption_of(VideoScene("events", (VideoObject("red", "circle"),))) == "a red circle staying still"
    assert all(events(s) for s in _scenes(50, seed=3, categories=("events",)))  # sampled: something always happens
    for scene in _scenes(20, seed=4, categories=T2V_CATEGORIES):
        kinds = [e.kind for e in events(scene)]
        assert kinds == {"moving": [f"moves {scene.objects[0].motion}"], "still": [], "appearing": ["appears"],
                         "disappearing": ["disappears"]}.get(scene.category, [f"moves {o.motion}" for o in scene.objects])


def test_render_is_deterministic_and_checks_its_arguments():
    scene = _scenes(1, seed=1, categories=("two_moving",))[0]
    a, b, c = render_video(scene, 8, 32, 7), render_video(scene, 8, 32, 7), render_video(scene, 8, 32, 8)
    assert a.frames.shape == (8, 32, 32, 3) and a.frames.dtype == np.uint8
    assert a.masks.shape == (8, 2, 32, 32) and a.masks.dtype == bool and a.centres.shape == (8, 2, 2)
    assert all(np.array_equal(x, y, equal_nan=True) for x, y in zip(a, b))
    assert not np.array_equal(a.frames, c.frames)
    assert render_video(scene, 1, 32, 7).frames.shape == (1, 32, 32, 3)
    for frames in (0, -1, 2.0, True):
        with pytest.raises(SceneError) as info:
            render_video(scene, frames)
        assert info.value.field == "frames"
    with pytest.raises(SceneError) as info:
        render_video(scene, 8, 16)
    assert info.value.field == "resolution"


def test_attribute_swaps_keep_the_layout():
    a = VideoScene("two_moving", (VideoObject("red", "circle", "small", "left"),
                                  VideoObject("blue", "square", "small", "up")))
    b = VideoScene("two_moving", (VideoObject("green", "triangle", "small", "left"),
                                  VideoObject("red", "circle", "small", "up")))
    for seed in range(10):
        ra, rb = render_video(a, 8, 32, seed), render_video(b, 8, 32, seed)
        assert video_layout(a, 8, 32, seed) == video_layout(b, 8, 32, seed)
        assert np.array_equal(ra.centres, rb.centres)
        assert np.array_equal(ra.masks.any(axis=(2, 3)), rb.masks.any(axis=(2, 3)))
        boxes = video_layout(a, 8, 32, seed)
        for f in range(8):  # same boxes, the shapes drawn in them differ
            for i in range(2):
                assert np.array_equal(rb.masks[f, i], shape_mask(b.objects[i].shape, boxes[i][f], 32))
    cycle = dict(zip(COLOURS, list(COLOURS)[1:] + list(COLOURS)[:1]))  # a bijection: pairs stay distinct
    for seed, scene in enumerate(_scenes(10, seed=5)):
        swapped = VideoScene(scene.category, tuple(
            dataclasses.replace(o, colour=cycle[o.colour], recolour=o.recolour and (cycle[o.recolour[0]], o.recolour[1]))
            for o in scene.objects))
        assert caption_of(swapped) != caption_of(scene)
        assert np.array_equal(render_video(scene, 8, 32, seed).masks, render_video(swapped, 8, 32, seed).masks)


@pytest.mark.parametrize("resolution", (32, 64))
def test_objects_stay_inside_and_apart_and_masks_are_the_drawn_pixels(resolution):
    gap, border = _gap(resolution), max(1, round(0.03 * resolution))
    for seed, scene in enumerate(_scenes(12, seed=resolution)):
        n_frames = (8, 5, 12)[seed % 3]
        boxes = video_layout(scene, n_frames, resolution, seed)
        rendering = render_video(scene, n_frames, resolution, seed)
        shown = visibility(scene, n_frames)
        for i, obj in enumerate(scene.objects):
            assert all(side == object_side(obj.size, resolution) for _, _, side in boxes[i])
            for x0, y0, side in boxes[i]:  # inside for the whole clip, visible or not
                assert border <= x0 and x0 + side <= resolution - border
                assert border <= y0 and y0 + side <= resolution - border
        for f, t in enumerate(frame_times(n_frames)):
            drawn = rendering.masks[f]
            assert drawn.sum(axis=0).max(initial=0) <= 1
            for i, obj in enumerate(scene.objects):
                expected = shape_mask(obj.shape, boxes[i][f], resolution) if shown[f, i] else np.zeros_like(drawn[i])
                assert np.array_equal(drawn[i], expected)
                assert (rendering.frames[f][drawn[i]] == COLOURS[obj.colour_at(t)]).all()
            assert (rendering.frames[f][~drawn.any(axis=0)] == BACKGROUND).all()
            for i, j in itertools.combinations(range(len(scene.objects)), 2):
                if shown[f, i] and shown[f, j]:
                    (ax, ay, ad), (bx, by, bd) = boxes[i][f], boxes[j][f]
                    assert ax + ad + gap <= bx or bx + bd + gap <= ax or ay + ad + gap <= by or by + bd + gap <= ay


@pytest.mark.parametrize("n_frames", (1, 2, 5, 8, 11))
def test_visibility_follows_appear_and_disappear_exactly(n_frames):
    objects = [VideoObject("red", "circle", appear=0.5), VideoObject("red", "circle", disappear=0.5),
               VideoObject("red", "circle", appear=0.3, disappear=0.7), VideoObject("red", "circle", appear=0.25),
               VideoObject("red", "circle")]
    for obj in objects:
        scene = VideoScene("events", (obj,))
        rendering = render_video(scene, n_frames, 32, 0)
        for f in range(n_frames):
            t = f / (n_frames - 1) if n_frames > 1 else 0.0
            expected = obj.appear <= t and (t < obj.disappear or (obj.disappear == 1.0 and t == 1.0))
            assert rendering.masks[f, 0].any() == expected, (obj, n_frames, f)
            assert np.isnan(rendering.centres[f, 0]).all() == (not expected)
            assert visibility(scene, n_frames)[f, 0] == expected
    # on frame times exactly: 5 frames are t = 0, .25, .5, .75, 1
    assert render_video(VideoScene("events", (objects[0],)), 5).masks[:, 0].any(axis=(1, 2)).tolist() == [
        False, False, True, True, True]
    assert render_video(VideoScene("events", (objects[1],)), 5).masks[:, 0].any(axis=(1, 2)).tolist() == [
        True, True, False, False, False]


def test_recolour_changes_the_drawn_colour_at_its_time():
    scene = VideoScene("events", (VideoObject("red", "square", motion="right", recolour=("blue", 0.5)),))
    rendering = render_video(scene, 5, 32, 0)
    colours = [tuple(int(v) for v in rendering.frames[f][rendering.masks[f, 0]][0]) for f in range(5)]
    assert colours == [COLOURS["red"]] * 2 + [COLOURS["blue"]] * 3


@pytest.mark.parametrize("resolution", (32, 64))
def test_motion_direction_and_travel_follow_the_speed(resolution):
    for seed in range(40):
        motion, speed, size = DIRECTIONS[seed % 4], ("slow", "fast")[seed // 4 % 2], ("small", "large")[seed // 8 % 2]
        scene = VideoScene("moving", (VideoObject("red", SHAPES[seed % 3], size, motion, speed),))
        centres = render_video(scene, 8, resolution, seed).centres[:, 0]
        travel = {"slow": 0.25, "fast": 0.5}[speed] * resolution
        dx, dy = centres[-1] - centres[0]
        along, off = {"left": (-dx, dy), "right": (dx, dy), "up": (-dy, dx), "down": (dy, dx)}[motion]
        assert abs(along - travel) <= 0.5 and off == 0
        steps = np.diff(centres, axis=0)
        axis = 0 if motion in ("left", "right") else 1
        sign = 1 if motion in ("right", "down") else -1
        assert (sign * steps[:, axis] >= 0).all() and (steps[:, 1 - axis] == 0).all()
        assert np.abs(sign * steps[:, axis] - travel / 7).max() <= 1.0  # linear up to whole-pixel rounding
    still = render_video(VideoScene("still", (VideoObject("red", "circle"),)), 8, 32, 0).centres[:, 0]
    assert (still == still[0]).all()


def test_two_moving_objects_in_every_pair_of_directions_render():
    for k, (m1, m2) in enumerate(itertools.permutations(DIRECTIONS, 2)):
        scene = VideoScene("two_moving", (VideoObject("red", "circle", "small", m1),
                                          VideoObject("blue", "square", "small", m2)))
        for seed in range(10):
            render_video(scene, 8, 32, seed * 12 + k)


def test_heldout_motions_keep_every_colour_and_direction_in_training():
    all_pairs = set(itertools.product(COLOURS, DIRECTIONS))
    train = all_pairs - HELDOUT_MOTIONS
    assert HELDOUT_MOTIONS < all_pairs and len(HELDOUT_MOTIONS) == 4
    assert {c for c, _ in train} == set(COLOURS) and {m for _, m in train} == set(DIRECTIONS)
    assert VideoScene("moving", (RED_LEFT,)).split == "heldout"
    assert VideoScene("moving", (dataclasses.replace(RED_LEFT, motion="right"),)).split == "train"
    assert VideoScene("events", (VideoObject("red", "circle", motion="up", recolour=("green", 0.5)),)).split == "heldout"
    assert VideoScene("still", (VideoObject("red", "circle"),)).split == "train"  # "still" is never held out
    rng = random.Random(0)
    for category in VIDEO_CATEGORIES:
        for split in ("train", "heldout"):
            if category in ("still", "appearing", "disappearing") and split == "heldout":
                continue  # still objects never make a held-out pair
            for _ in range(20):
                scene = sample_video_scene(rng, category, split)
                assert scene.category == category and scene.split == split
                assert bool(scene.motion_pairs & HELDOUT_MOTIONS) == (split == "heldout")
    with pytest.raises(SceneError, match="never held out"):
        sample_video_scene(rng, "appearing", "heldout")
    with pytest.raises(SceneError):
        sample_video_scene(rng, "moving", "test")
    with pytest.raises(SceneError):
        sample_video_scene(rng, "flying")


def test_sampling_is_deterministic_and_covers_motions():
    a, b = _scenes(20, seed=9), _scenes(20, seed=9)
    assert a == b and a != _scenes(20, seed=10)
    assert {o.motion for s in a for o in s.objects} == set(MOTIONS)
