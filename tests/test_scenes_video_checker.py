"""Video checker: tracks the rendered objects, passes >= 98% of clean renders, each corruption lowers the score it
should, and degenerate arrays score instead of raising."""

import dataclasses
import json
import random

import numpy as np
import pytest

from shared.scenes.image import BACKGROUND
from shared.scenes.video import (T2V_CATEGORIES, VIDEO_CATEGORIES, VideoObject, VideoScene, render_video,
                                 sample_video_scene)
from shared.scenes.video_checker import (CORRUPTIONS, DIMENSIONS, VideoError, as_video, check_video,
                                         checker_accuracy_video, corrupt_video, miscolour, track)

MOVING = VideoScene("moving", (VideoObject("red", "circle", "large", "left", "fast"),))
TWO = VideoScene("two_moving", (VideoObject("green", "triangle", "small", "down"),
                                VideoObject("blue", "square", "small", "right")))


def _scenes(n_per_category: int, seed: int = 0, categories=VIDEO_CATEGORIES) -> list[VideoScene]:
    rng = random.Random(seed)
    return [sample_video_scene(rng, c) for c in categories for _ in range(n_per_category)]


def test_clean_renders_pass_for_at_least_98_percent_per_category():
    scenes = _scenes(100, seed=11)
    acc = checker_accuracy_video(scenes, frames=8, resolution=32, seeds=(0, 1), kinds=())
    assert acc["n_videos"] == 2 * len(scenes)
    assert set(acc["pass_rate_by_category"]) == set(VIDEO_CATEGORIES)
    assert min(acc["pass_rate_by_category"].values()) >= 0.98, acc["pass_rate_by_category"]
    assert min(acc["clean"][d] for d in DIMENSIONS[:4]) >= 0.98 and acc["clean"]["smoothness"] >= 0.9


def test_tracks_follow_the_rendered_objects():
    rendering = render_video(TWO, 8, 32, 4)
    tracks = sorted(track(rendering.frames), key=lambda t: t.colour)
    assert [(t.colour, t.shape, t.size) for t in tracks] == [("blue", "square", "small"), ("green", "triangle", "small")]
    for t, index in zip(tracks, (1, 0)):
        assert t.frames == list(range(8))
        ys, xs = np.nonzero(rendering.masks[0, index])
        assert np.allclose(t.centres[0], (xs.mean() + 0.5, ys.mean() + 0.5))
        assert np.allclose(np.diff(np.array(t.centres), axis=0), np.diff(rendering.centres[:, index], axis=0))
    json.dumps([t.to_dict() for t in tracks])


def test_check_video_passes_the_right_scene_and_reports_json():
    rendering = render_video(MOVING, 8, 32, 0)
    verdict = check_video(rendering.frames, MOVING, frames_expected=8)
    assert verdict["passed"] and verdict["valid"] and verdict["reason"] == "" and verdict["frames"] == 8
    assert all(verdict[d] == 1.0 for d in DIMENSIONS[:4]) and verdict["smoothness"] >= 0.8
    json.dumps(verdict)
    assert check_video(rendering.frames.astype(np.float64) / 255, MOVING)["passed"]
    short = check_video(rendering.frames, MOVING, frames_expected=16)
    assert not short["passed"] and short["reason"] == "expected 16 frames, got 8"


@pytest.mark.parametrize("scene", [MOVING, TWO])
def test_each_corruption_lowers_its_dimension_on_a_moving_scene(scene):
    rendering = render_video(scene, 8, 32, 2)
    rng = np.random.default_rng(0)

    def score(kind, **kw):
        return check_video(corrupt_video(rendering.frames, rng, kind, rendering.masks, **kw), scene, 8)

    assert score("none")["passed"]
    assert score("reverse")["motion"] == 0.0
    assert score("freeze")["motion"] == 0.0
    assert score("shuffle")["smoothness"] < 0.6
    dropped = score("drop_object", index=0)
    assert dropped["object"] == 1 - 1 / len(scene.objects) and not dropped["passed"]
    wrong = check_video(rendering.frames, miscolour(scene), 8)
    assert wrong["object"] == 1.0 and wrong["colour"] == 1 - 1 / len(scene.objects) and not wrong["passed"]


def test_timing_corruptions_break_consistency_of_appearing_and_disappearing():
    for scene in (VideoScene("appearing", (VideoObject("cyan", "square", appear=0.45),)),
                  VideoScene("disappearing", (VideoObject("purple", "circle", "small", disappear=0.55),))):
        frames = render_video(scene, 8, 32, 1).frames
        assert check_video(frames, scene)["passed"]
        assert check_video(corrupt_video(frames, np.random.default_rng(0), "reverse"), scene)["consistency"] <= 0.5
    appearing = VideoScene("appearing", (VideoObject("cyan", "square", appear=0.45),))
    frozen = corrupt_video(render_video(appearing, 8, 32, 1).frames, np.random.default_rng(0), "freeze")
    assert check_video(frozen, appearing)["object"] == 0.0


def test_colour_changes_are_checked_segment_by_segment():
    scene = VideoScene("events", (VideoObject("red", "square", motion="right", recolour=("blue", 0.3)),
                                  VideoObject("yellow", "circle", "small", appear=0.3)))
    frames = render_video(scene, 8, 32, 0).frames
    verdict = check_video(frames, scene)
    assert verdict["passed"] and len(verdict["tracks"]) == 3
    unchanged = check_video(frames, VideoScene("events", (dataclasses.replace(scene.objects[0], recolour=None),
                                                          scene.objects[1])))
    assert unchanged["object"] == 1.0 and unchanged["colour"] == 0.5 and unchanged["motion"] == 1.0
    assert unchanged["smoothness"] >= 0.8 and unchanged["consistency"] < 0.5  # red in 3 of 8 frames, not in 5
    late = dataclasses.replace(scene.objects[0], recolour=("blue", 0.8))
    verdict = check_video(frames, VideoScene("events", (late, scene.objects[1])))
    assert verdict["colour"] == 1.0 and verdict["consistency"] < 1 and not verdict["passed"]


def test_checker_accuracy_reports_each_corruption_lowering_its_dimension():
    scenes = _scenes(6, seed=3)
    acc = checker_accuracy_video(scenes, seeds=(0,))
    assert acc["pass_rate"] == 1.0 and set(acc["corruptions"]) == set(CORRUPTIONS[1:]) | {"miscolour"}
    by = acc["corruptions_by_category"]
    for category in ("moving", "two_moving"):
        assert by["reverse"][category]["motion"] == 0.0 and by["freeze"][category]["motion"] == 0.0
        assert by["shuffle"][category]["smoothness"] <= 0.6
    for category in ("appearing", "disappearing"):
        assert by["reverse"][category]["consistency"] <= 0.6
    assert acc["corruptions"]["drop_object"]["object"] <= 0.5
    assert acc["corruptions"]["miscolour"]["colour"] <= 0.6 and acc["corruptions"]["miscolour"]["object"] == 1.0
    assert acc["corruptions"]["noise"]["object"] <= 0.5
    json.dumps(acc)


def test_corrupt_video_is_seeded_and_keeps_shape_and_dtype():
    rendering = render_video(TWO, 8, 32, 0)
    frames = rendering.frames
    for kind in CORRUPTIONS:
        a = corrupt_video(frames, np.random.default_rng(1), kind, rendering.masks)
        assert a.shape == frames.shape and a.dtype == np.uint8
        assert np.array_equal(a, corrupt_video(frames, np.random.default_rng(1), kind, rendering.masks))
    assert np.array_equal(corrupt_video(frames, np.random.default_rng(1), "none"), frames)
    for seed in range(20):
        shuffled = corrupt_video(frames, np.random.default_rng(seed), "shuffle")
        assert not np.array_equal(shuffled, frames) and not np.array_equal(shuffled, frames[::-1])
    assert (corrupt_video(frames, np.random.default_rng(0), "freeze") == frames[0]).all()
    dropped = corrupt_video(frames, np.random.default_rng(0), "drop_object", rendering.masks, index=1)
    assert (dropped[rendering.masks[:, 1]] == BACKGROUND).all()
    assert np.array_equal(dropped[rendering.masks[:, 0]], frames[rendering.masks[:, 0]])
    with pytest.raises(ValueError, match="masks"):
        corrupt_video(frames, np.random.default_rng(0), "drop_object")
    with pytest.raises(ValueError, match="unknown corruption"):
        corrupt_video(frames, np.random.default_rng(0), "melt")


def test_as_video_converts_and_refuses():
    frame = render_video(MOVING, 1, 32, 0).frames[0]
    assert as_video(frame).shape == (1, 32, 32, 3)
    floats = np.array([[[[0.0, 0.5, 1.0]] * 16] * 16]) * np.ones((2, 1, 1, 1))
    floats[0, 0, 0] = [np.nan, np.inf, -1.0]
    out = as_video(floats)
    assert out.dtype == np.uint8 and out[0, 0, 0].tolist() == [0, 255, 0] and out[1, 0, 0].tolist() == [0, 128, 255]
    assert as_video(np.full((1, 16, 16, 3), 300)).max() == 255
    for bad, needle in [(np.zeros((0, 32, 32, 3), np.uint8), "at least one frame"),
                        (np.zeros((32, 32), np.uint8), "expected shape"),
                        (np.zeros((2, 32, 32, 4), np.uint8), "expected shape"),
                        (np.zeros((2, 2, 32, 32, 3), np.uint8), "expected shape"),
                        (np.zeros((2, 32, 40, 3), np.uint8), "square"),
                        (np.zeros((2, 8, 8, 3), np.uint8), "square"),
                        (np.array(["a", "b"]), "numeric"),
                        (None, "numeric"),
                        ([[1], [1, 2]], "not an array")]:
        with pytest.raises(VideoError, match=needle) as info:
            as_video(bad)
        assert "\n" not in str(info.value)


NOISE = np.random.default_rng(0)
DEGENERATE = {
    "zeros": np.zeros((8, 32, 32, 3), np.uint8),
    "ones": np.ones((8, 32, 32, 3)),
    "white": np.full((8, 64, 64, 3), 255, np.uint8),
    "background": np.full((8, 32, 32, 3), BACKGROUND, np.uint8),
    "nan floats": np.full((8, 32, 32, 3), np.nan),
    "inf floats": np.full((3, 32, 32, 3), -np.inf),
    "one frame": render_video(MOVING, 8, 32, 0).frames[:1],
    "one bare frame": render_video(MOVING, 8, 32, 0).frames[3],
    "uniform noise": NOISE.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8),
    "float noise": NOISE.random((8, 32, 32, 3)),
    "int64": np.full((4, 32, 32, 3), 128, np.int64),
    "bool": np.ones((2, 32, 32, 3), bool),
    "no frames": np.zeros((0, 32, 32, 3), np.uint8),
    "grey": np.zeros((8, 32, 32), np.uint8),
    "tiny": np.zeros((8, 4, 4, 3), np.uint8),
    "scalar": np.float64(1.0),
}


@pytest.mark.parametrize("name", list(DEGENERATE))
def test_degenerate_arrays_score_without_raising(name):
    for scene in (MOVING, TWO, VideoScene("appearing", (VideoObject("red", "circle", appear=0.5),))):
        verdict = check_video(DEGENERATE[name], scene, frames_expected=8)
        assert not verdict["passed"] and verdict["reason"]
        assert all(0.0 <= verdict[d] <= 1.0 for d in DIMENSIONS)
        assert verdict["valid"] == (name not in ("no frames", "grey", "tiny", "scalar"))
        json.dumps(verdict)


@pytest.mark.parametrize("garbage", [None, "a video", [[1], [1, 2]], {"frames": 8}, object()])
def test_non_arrays_raise_video_error(garbage):
    with pytest.raises(VideoError):
        check_video(garbage, MOVING)


def test_every_t2v_category_is_checked_at_other_sizes():
    for seed, scene in enumerate(_scenes(2, seed=8, categories=T2V_CATEGORIES)):
        assert check_video(render_video(scene, 12, 64, seed).frames, scene)["passed"], scene
