"""The text-to-video app's parts: prompt files, the critic (rule and learned) and its validation, VBench metrics."""

from __future__ import annotations

import random

import numpy as np
import pytest

from apps.t2v.critic import (
    CORRUPTIONS,
    DIMENSIONS,
    CriticArgs,
    RuleCritic,
    critic_accuracy,
    load_critic,
    validation_clips,
)
from apps.t2v.data import CATEGORIES, build_split, load_prompts, write_prompts
from apps.t2v.vbench import motion_smoothness_proxy, temporal_flickering
from shared.records import RecordError
from shared.scenes.video import caption_of, render_video, sample_video_scene


def test_prompt_files_round_trip_and_read_scenes_from_captions(tmp_path):
    rng = random.Random(0)
    scenes = [sample_video_scene(rng, c, "train") for c in CATEGORIES]
    path = write_prompts(tmp_path / "p.jsonl", scenes)
    assert [p.scene for p in load_prompts(path)] == scenes
    (tmp_path / "captions.jsonl").write_text('{"prompt": "a red circle moving right", "id": 7}\n')
    (record,) = load_prompts(tmp_path / "captions.jsonl")
    assert record.scene.objects[0].motion == "right" and record.metadata == {"id": 7}


@pytest.mark.parametrize("line, message", [
    ('[1, 2]', "expected a JSON object"),
    ('{"id": 1}', "field 'prompt': missing"),
    ('{"prompt": ""}', "field 'prompt': expected a non-empty string"),
    ('{"prompt": "a cat playing piano"}', "not a caption the critic reads"),
    ('{"scene": {"category": "moving", "objects": [{"colour": "red", "shape": "circle", "motion": "sideways"}]}}',
     "field 'scene.objects[0].motion'"),
    ('{"scene": {"category": "flying", "objects": []}}', "field 'scene.category'"),
])
def test_malformed_prompt_lines_name_file_line_and_field(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "a blue square moving up"}\n' + line + "\n")
    with pytest.raises(RecordError) as info:
        load_prompts(path)
    assert str(info.value).startswith(f"{path}:2") and message in str(info.value)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(RecordError, match="empty file"):
        load_prompts(empty)


def test_split_holds_out_colour_motion_compositions():
    split = build_split(10, 10, seed=1)
    assert all(s.split == "train" for c in CATEGORIES for s in split["train"][c])
    assert all(s.split == "heldout" for c in ("moving", "two_moving") for s in split["heldout"][c])
    assert split["heldout"]["still"] == [] and len(split["heldout"]["moving"]) == 10


def test_rule_critic_scores_renders_right_and_degenerate_videos_low_without_raising():
    scene = sample_video_scene(random.Random(3), "moving")
    video = render_video(scene, 8, 32, 0).frames
    good = RuleCritic().score([video], [caption_of(scene)])[0]
    assert good["passed"] == 1.0 and good["overall"] == pytest.approx(np.mean([good[d] for d in DIMENSIONS]))
    nan = np.full((8, 32, 32, 3), np.nan, np.float32)
    degenerate = [np.zeros((8, 32, 32, 3), np.uint8), video[:1], nan, np.full((3, 32, 32, 3), 255, np.uint8),
                  np.zeros((0, 32, 32, 3), np.uint8), np.zeros((8, 32, 32), np.uint8)]
    for s in RuleCritic().score(degenerate, [caption_of(scene)] * len(degenerate)):
        assert s["passed"] == 0.0 and all(0.0 <= s[d] <= 1.0 for d in DIMENSIONS)
    unreadable = RuleCritic().score([video], ["a dog on a beach"])[0]
    assert unreadable["readable"] == 0.0 and unreadable["passed"] == 0.0


def test_rule_critic_validation_table():
    table = critic_accuracy(RuleCritic(), validation_clips(4, seed=2))
    assert set(table) == {*CORRUPTIONS, "all"} and table["all"]["n"] == 4 * 5 * len(CORRUPTIONS)
    assert all(table["none"][d] == 1.0 for d in DIMENSIONS)  # clean renders: every verdict right
    assert table["drop_object"]["object"] == 1.0 and table["miscolour"]["colour"] == 1.0
    assert table["reverse"]["motion"] == 1.0


def test_learned_critic_loads_through_the_same_interface(tmp_path):
    from apps.t2v.critic import write_label_file
    from apps.t2v.learned_critic import load_labels, prompt_vocabulary, train_learned_critic

    labels = load_labels(write_label_file(tmp_path / "labels", 2, seed=0))
    assert len(labels) == 2 * 5 * len(CORRUPTIONS) and all(set(e.labels) <= set(DIMENSIONS) for e in labels)
    folder = train_learned_critic(labels, tmp_path / "critic", vocabulary=prompt_vocabulary([e.prompt for e in labels]),
                                  steps=3, batch_size=8)
    critic = load_critic(CriticArgs("learned", str(folder)))
    scores = critic.score([np.zeros((8, 32, 32, 3), np.uint8)], ["a red circle moving left"])
    assert critic.name == "learned" and set(scores[0]) >= {*DIMENSIONS, "overall", "passed"}
    with pytest.raises(ValueError, match="not one of rule, learned"):
        load_critic(CriticArgs("vlm"))


def test_vbench_temporal_flickering_and_the_smoothness_proxy():
    frozen = np.repeat(np.random.default_rng(0).integers(0, 256, (1, 8, 8, 3)), 5, axis=0)
    assert temporal_flickering(frozen) == 1.0 and motion_smoothness_proxy(frozen) == 1.0
    flicker = np.stack([np.zeros((8, 8, 3)), np.full((8, 8, 3), 255.0)] * 2)
    assert temporal_flickering(flicker) == 0.0  # every pixel jumps 255 between frames
    ramp = np.stack([np.full((8, 8, 3), 10.0 * t) for t in range(5)])  # brightness rises by 10 a frame
    assert temporal_flickering(ramp) == pytest.approx((255 - 10) / 255)
    assert motion_smoothness_proxy(ramp) == 1.0  # each odd frame is the mean of its neighbours
    assert motion_smoothness_proxy(flicker) == pytest.approx(0.0)
    assert temporal_flickering(np.full((4, 8, 8, 3), np.nan)) == 1.0  # NaN pixels count as 0, never raise


def test_learned_critic_cli_refuses_a_malformed_label_file_in_one_line(tmp_path, capsys):
    from apps.t2v.learned_critic import main

    labels = tmp_path / "labels.jsonl"
    labels.write_text('{"video": "missing.npy", "prompt": "a red circle moving left", "labels": {"motion": 1}}\n')
    with pytest.raises(SystemExit) as exit_info:
        main(["--labels", str(labels), "--out", str(tmp_path / "critic")])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1
    assert f"{labels}:1: field 'video'" in err and "missing.npy: no such file" in err
    assert not (tmp_path / "critic").exists()
