"""The learned video critic: label files, training on a synthetic learnable task, saving, loading, degenerate inputs."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from apps.t2v import learned_critic as lc
from apps.t2v.learned_critic import (DIMENSIONS, LabelExample, LabelFileError, LearnedCritic, VideoCriticNet, accuracy,
                                     load_labels, resample_video, train_learned_critic, write_labels)
from shared.video_io import write_npy

COLOURS = {"red": (220, 40, 40), "blue": (40, 40, 220)}
VOCABULARY = ["a", "red", "blue", "square"]
STEPS = 150


def square_video(direction: str, colour: str, rng: np.random.Generator, frames: int = 8, side: int = 16) -> np.ndarray:
    """A 4x4 square of `colour` on black moving one pixel a frame to the right or left."""
    step = 1 if direction == "right" else -1
    x0 = int(rng.integers(0, side - 4 - frames + 2)) if step > 0 else int(rng.integers(frames - 1, side - 4 + 1))
    y0 = int(rng.integers(0, side - 4 + 1))
    video = np.zeros((frames, side, side, 3), np.uint8)
    for f in range(frames):
        x = x0 + step * f
        video[f, y0:y0 + 4, x:x + 4] = COLOURS[colour]
    return video


def synthetic_examples(folder, n: int, seed: int, partial: bool) -> list[LabelExample]:
    """Videos whose motion label is "moves right" and colour label "is the colour the prompt names"."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    examples = []
    for i in range(n):
        direction = rng.choice(["left", "right"])
        colour, said = rng.choice(["red", "blue"], size=2)
        path = write_npy(folder / f"{i:04d}.npy", square_video(direction, colour, rng))
        labels = {"motion": float(direction == "right"), "colour": float(colour == said)}
        if partial and i % 4 == 1:
            labels.pop("colour")
        elif partial and i % 4 == 2:
            labels.pop("motion")
        examples.append(LabelExample(video=path, prompt=f"a {said} square", labels=labels))
    return examples


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("critic_data")
    train = write_labels(root / "train.jsonl", synthetic_examples(root / "train", 320, seed=0, partial=True))
    heldout = write_labels(root / "heldout.jsonl", synthetic_examples(root / "heldout", 120, seed=1, partial=False))
    return load_labels(train), load_labels(heldout)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("critic_run")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a net this small trains fastest on one thread, and the test must not wait on a busy core
    try:
        folder = train_learned_critic(data[0], out, vocabulary=VOCABULARY, steps=STEPS, seed=0)
    finally:
        torch.set_num_threads(threads)
    return out, folder


# ---- label files ----------------------------------------------------------------------------------------------

GOOD = {"video": "ok.npy", "prompt": "a red square", "labels": {"motion": 1}}


def _with(**changes):
    record = dict(GOOD)
    for key, value in changes.items():
        if value is None:
            record.pop(key)
        else:
            record[key] = value
    return json.dumps(record)


BAD_LINES = {
    "bad json": ('{"video": "ok.npy", "prompt": ', None, "not valid JSON"),
    "not an object": ("[1, 2]", None, "expected a JSON object"),
    "missing video": (_with(video=None), "video", "missing"),
    "missing labels": (_with(labels=None), "labels", "missing"),
    "unknown field": (_with(score=3), "score", "unknown field"),
    "label above 1": (_with(labels={"motion": 1.5}), "labels.motion", "outside [0, 1]"),
    "label below 0": (_with(labels={"colour": -0.1}), "labels.colour", "outside [0, 1]"),
    "label a string": (_with(labels={"motion": "yes"}), "labels.motion", "expected a number"),
    "label a bool": (_with(labels={"motion": True}), "labels.motion", "expected a number"),
    "label NaN": ('{"video": "ok.npy", "prompt": "a", "labels": {"motion": NaN}}', "labels.motion", "outside [0, 1]"),
    "unknown dimension": (_with(labels={"speed": 1}), "labels.speed", "unknown dimension"),
    "no dimension": (_with(labels={}), "labels", "no dimension labelled"),
    "labels not an object": (_with(labels=[1]), "labels", "expected an object"),
    "empty prompt": (_with(prompt="  "), "prompt", "empty prompt"),
    "prompt not a string": (_with(prompt=3), "prompt", "expected a string"),
    "missing video file": (_with(video="absent.npy"), "video", "absent.npy: no such file"),
    "corrupt video file": (_with(video="corrupt.npy"), "video", "corrupt.npy: not a numpy frame array"),
}


@pytest.mark.parametrize("kind", BAD_LINES)
def test_label_file_errors_name_file_line_and_field(tmp_path, kind):
    write_npy(tmp_path / "ok.npy", np.zeros((2, 4, 4, 3), np.uint8))
    (tmp_path / "corrupt.npy").write_bytes(b"not numpy at all")
    line, field, reason = BAD_LINES[kind]
    path = tmp_path / "labels.jsonl"
    path.write_text(_with() + "\n\n" + line + "\n" + _with() + "\n")
    with pytest.raises(LabelFileError) as info:
        load_labels(path)
    message = str(info.value)
    assert "\n" not in message
    prefix = f"{path}:3: field '{field}': " if field else f"{path}:3: "
    assert message.startswith(prefix), message
    assert reason in message, message
    assert (info.value.line, info.value.field) == (3, field)


def test_empty_label_file_is_an_error(tmp_path):
    path = tmp_path / "labels.jsonl"
    path.write_text("\n  \n")
    with pytest.raises(LabelFileError, match="labels.jsonl: no examples"):
        load_labels(path)


def test_labels_round_trip(tmp_path):
    inside = write_npy(tmp_path / "labels" / "clips" / "a.npy", np.zeros((2, 4, 4, 3), np.uint8))
    outside = write_npy(tmp_path / "elsewhere" / "b.npy", np.full((1, 3, 5, 3), 7, np.uint8))
    examples = [LabelExample(inside, "a red square", {"motion": 1.0, "object": 0.25}),
                LabelExample(outside, "Ünïcode prompt", {"smoothness": 0.0})]
    path = write_labels(tmp_path / "labels" / "set.jsonl", examples)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["video"] == "clips/a.npy"
    assert lines[0]["labels"] == {"object": 0.25, "motion": 1.0}
    assert lines[1]["video"] == str(outside.absolute())
    assert load_labels(path) == examples


# ---- the model ------------------------------------------------------------------------------------------------

def test_resample_is_nearest_neighbour_in_time_and_space():
    video = np.arange(4 * 2 * 2 * 3, dtype=np.uint8).reshape(4, 2, 2, 3)
    out = resample_video(video, frames=2, resolution=4)
    assert out.shape == (2, 4, 4, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[1, 3, 0], video[2, 1, 0] / 255.0)
    np.testing.assert_allclose(out[0, 1, 2], video[0, 0, 1] / 255.0)
    single = resample_video(video[:1], frames=3, resolution=2)
    assert np.array_equal(single[0], single[2])


def test_net_is_small_and_scores_fast():
    net = VideoCriticNet(VOCABULARY)
    params = sum(p.numel() for p in net.parameters())
    assert params < 1_000_000
    critic = LearnedCritic(net)
    videos = [np.random.default_rng(i).integers(0, 256, (16, 48, 40, 3), dtype=np.uint8) for i in range(64)]
    critic.score(videos[:4], ["a red square"] * 4)
    start = time.perf_counter()
    critic.score(videos, ["a red square"] * 64)
    elapsed = time.perf_counter() - start
    print(f"parameters {params}, scoring 64 videos {elapsed:.3f} s")
    assert elapsed < 1.0


# ---- training, saving, loading ----------------------------------------------------------------------------------

def test_training_learns_motion_and_colour(trained, data):
    _, folder = trained
    critic = LearnedCritic.load(folder)
    measured = accuracy(critic, data[1])
    print(f"held-out accuracy after {STEPS} steps: {measured}")
    assert measured["motion"] >= 0.9 and measured["colour"] >= 0.9
    assert measured["n/motion"] == measured["n/colour"] == 120
    assert "object" not in measured


def test_saved_folder_loads_and_gives_the_same_scores(trained, data):
    out, folder = trained
    assert (out / "checkpoints" / "last.ckpt").is_file()
    config = json.loads((folder / "config.json").read_text())
    assert config["vocabulary"] == VOCABULARY and (config["frames"], config["resolution"]) == (8, 32)
    heldout = data[1][:20]
    videos, prompts = [np.load(ex.video) for ex in heldout], [ex.prompt for ex in heldout]
    first = LearnedCritic.load(folder).score(videos, prompts)
    second = LearnedCritic.load(folder).score(videos, prompts)
    assert first == second
    for s in first:
        assert set(s) == {*DIMENSIONS, "overall"}
        assert s["overall"] == pytest.approx(np.mean([s[d] for d in DIMENSIONS]))


def test_rerun_on_a_complete_folder_does_not_retrain(trained, data, monkeypatch):
    out, folder = trained
    stamp = (folder / "model.safetensors").stat().st_mtime_ns

    def refuse(*args, **kwargs):
        raise AssertionError("train_stage called for a complete folder")

    monkeypatch.setattr(lc, "train_stage", refuse)
    assert train_learned_critic(data[0], out, vocabulary=VOCABULARY, steps=STEPS) == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp


def test_degenerate_videos_score_in_range(trained):
    critic = LearnedCritic.load(trained[1])
    rng = np.random.default_rng(0)
    frames = rng.random((8, 16, 16, 3)).astype(np.float32)
    nan_video = frames.copy()
    nan_video[2:5, :, 3] = np.nan
    nan_video[0, 0, 0] = np.inf
    videos = [
        np.zeros((8, 32, 32, 3), np.uint8),
        rng.integers(0, 256, (1, 20, 24, 3), dtype=np.uint8),
        nan_video,
        np.full((4, 8, 8, 3), np.nan, np.float64),
        frames,
        (frames * 255).round().astype(np.uint8),
        np.ones((3, 5, 7, 3), np.int64) * 300,
        np.zeros((0, 16, 16, 3), np.uint8),
        rng.integers(0, 256, (16, 16, 3), dtype=np.uint8),
    ]
    scores = critic.score(videos, ["a red square", "", "blue", "unknown words only", *["a red square"] * 5])
    assert len(scores) == len(videos)
    for s in scores:
        values = np.array([s[d] for d in (*DIMENSIONS, "overall")])
        assert np.isfinite(values).all() and (values >= 0).all() and (values <= 1).all()
    for dim in DIMENSIONS:
        assert scores[4][dim] == pytest.approx(scores[5][dim], abs=0.02)
    assert critic.score([], []) == []
    assert critic.name == "learned"
