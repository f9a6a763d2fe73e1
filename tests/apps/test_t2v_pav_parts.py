"""Prompt-A-Video's parts in the text-to-video app: user requests, unusable rewrites, the reward against the
ORIGINAL request, reward-guided evolution (best-so-far shown, early stop, resume, SFT targets)."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

import apps.t2v.prompt_a_video as pav
from apps.t2v.booster import REASONS, RewriteArgs, booster_messages, check_rewrite, clean_rewrite
from apps.t2v.critic import RuleCritic
from apps.t2v.data import CATEGORIES, VideoPrompt
from apps.t2v.rewrite_reward import RewardArgs, RewriteScorer, weighted_reward
from apps.t2v.user_prompts import user_prompt_split, user_request
from shared.generation import Sampled
from shared.kit import DiffusionSampleArgs
from shared.scenes.image import BACKGROUND
from shared.scenes.video import caption_of, parse_caption, render_video, sample_video_scene


class RenderingVideoModel:
    """A video model that draws a caption it reads exactly and anything else as a blank clip."""

    frames = height = width = 32

    def __init__(self):
        self.calls = []

    def generate(self, prompts, seeds, **_):
        self.calls.append(list(prompts))
        blank = np.full((8, 32, 32, 3), BACKGROUND, dtype=np.uint8)
        return np.stack([render_video(parse_caption(p), 8, 32, s).frames if parse_caption(p) else blank
                         for p, s in zip(prompts, seeds)])


def scorer(max_words=30, videos=1, model=None, **reward):
    return RewriteScorer(model or RenderingVideoModel(), RuleCritic(), RewardArgs(**reward), DiffusionSampleArgs(steps=1),
                         max_words, videos)


class EvenSeedsOnly(RenderingVideoModel):
    """Draws the caption for even seeds only (a blank clip for odd ones)."""

    def generate(self, prompts, seeds, **kw):
        drawn = super().generate(prompts, seeds, **kw)
        drawn[[s % 2 == 1 for s in seeds]] = BACKGROUND
        return drawn


def requests(n_per_category=1, seed=0):
    return user_prompt_split(n_per_category, 0, seed)["train"]


def test_user_requests_keep_their_scene_in_other_words_and_split_by_scene():
    split = user_prompt_split(4, 3, seed=2)
    assert len(split["train"]) == 20 and len(split["heldout"]) == 15
    assert [r.scene.category for r in split["train"][::4]] == list(CATEGORIES)
    train = {r.metadata["caption"] for r in split["train"]}
    assert not train & {r.metadata["caption"] for r in split["heldout"]}
    assert all(r.metadata["caption"] == caption_of(r.scene) and r.scene.split == "train" for r in split["train"])
    # most requests are not captions the video model was trained on
    assert sum(parse_caption(r.prompt) is None for r in split["train"]) >= 15
    assert user_prompt_split(4, 3, seed=2) == split
    rng = random.Random(0)
    scene = sample_video_scene(rng, "moving")
    plain = user_request(scene, random.Random(1), plain=1.0)
    assert parse_caption(plain) == scene  # every word the caption's own: the caption itself
    with pytest.raises(ValueError, match="category 'events'"):
        user_request(sample_video_scene(rng, "events"), rng)


@pytest.mark.parametrize("sampled, reason", [
    (Sampled("a red circle moving left", True, 6), None),
    (Sampled('  "a red circle\n moving left"  ', True, 8), None),
    (Sampled("", True, 0), "empty"),
    (Sampled("   \n ", True, 2), "empty"),
    (Sampled("a red circle moving left and on and on", False, 48), "endless"),
    (Sampled("word " * 31, True, 31), "too_long"),
    (Sampled("1234 5678 !!!", True, 5), "not_text"),
    (Sampled("a red\x00circle", True, 4), "not_text"),
    (Sampled("\ufffd\ufffd\ufffd\ufffd ab", True, 4), "not_text"),
])
def test_unusable_rewrites_are_named(sampled, reason):
    assert check_rewrite(sampled, max_words=30) == reason
    assert reason is None or reason in REASONS


def test_reward_judges_the_video_against_the_original_request_never_the_rewrite():
    request = VideoPrompt("a big crimson ball drifting leftwards", parse_caption("a large red circle moving left slowly"))
    rewrites = [Sampled("a large red circle moving left slowly", True, 7),   # the request in the model's words
                Sampled("a small blue square staying still", True, 6),      # a different request, drawn perfectly
                Sampled(request.prompt, True, 6),                           # the request as it is: not a caption
                Sampled("", True, 0), Sampled("a red circle", False, 48)]   # unusable: no video
    s = scorer()
    scores = s.score([request] * 5, rewrites, [3] * 5, [None] * 5)
    assert scores[0]["passed"] == 1.0 and scores[0]["reward"] > 5.5  # of 5.7: smoothness just under 1
    assert scores[0]["reward"] == pytest.approx(1.3 * scores[0]["object"] + 1.3 * scores[0]["colour"] + 1.1 * scores[0]["motion"]
                                                + scores[0]["consistency"] + scores[0]["smoothness"])
    assert scores[1]["reward"] < scores[0]["reward"] and scores[1]["passed"] == 0.0
    assert scores[1]["colour"] == 0.0 and scores[1]["object"] == 0.0
    assert scores[2]["reward"] < scores[0]["reward"]
    assert [x["valid"] for x in scores] == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert scores[3]["reward"] == 0.0 and scores[3]["reason_empty"] == 1.0 and scores[4]["reason_endless"] == 1.0
    assert s.video_model.calls == [[r.text for r in rewrites[:3]]]  # one batch, no video for unusable rewrites
    assert s.clears(scores[0]) and not s.clears(scores[1]) and not s.clears(scores[3])
    assert weighted_reward({"object": 1.0, "colour": 0.5}, {"object": 2.0, "colour": 2.0}) == 3.0
    with pytest.raises(ValueError, match="reward.weights: unknown dimension 'beauty'"):
        scorer(weights={"beauty": 1.0})


def test_several_videos_per_rewrite_average_their_scores_and_are_all_kept(tmp_path):
    request = VideoPrompt("a huge scarlet box sitting motionless", parse_caption("a large red square staying still"))
    right = Sampled("a large red square staying still", True, 6)
    one = scorer(model=EvenSeedsOnly()).score([request], [right], [4], [tmp_path / "a.npy"])[0]
    two = scorer(videos=2, model=EvenSeedsOnly()).score([request], [right], [4], [tmp_path / "b.npy"])[0]
    assert one["passed"] == 1.0 and two["passed"] == 0.5  # seeds 4 and 5: one drawn, one blank
    assert two["reward"] == pytest.approx(one["reward"] / 2, abs=0.05)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy", "b_0.npy", "b_1.npy"]
    with pytest.raises(ValueError, match="at least 1"):
        scorer(videos=0)


def test_names_colours_reads_the_models_colour_words():
    from apps.t2v.pav_eval import names_colours

    two = parse_caption("a red circle moving left and a blue square moving up")
    assert names_colours(two, "A RED ball, then a blue box") and not names_colours(two, "a crimson ball and a blue box")
    assert not names_colours(two, "a reddish circle and a blue square")


def test_booster_chat_replays_the_best_rewrites_so_far_best_last():
    plain = booster_messages("a tiny navy box vanishing")
    assert [m["role"] for m in plain] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert plain[-1]["content"] == "Request: a tiny navy box vanishing"
    chat = booster_messages("a tiny navy box vanishing", [("a small blue square disappearing", 5.7), ("a box", 1.25)])
    assert chat[:len(plain)] == plain
    replay = chat[len(plain):]
    assert [m["role"] for m in replay] == ["assistant", "user", "assistant", "user"]
    assert [replay[0]["content"], replay[2]["content"]] == ["a box", "a small blue square disappearing"]  # worst first
    assert "1.25" in replay[1]["content"] and "5.70" in replay[3]["content"]
    assert clean_rewrite("'a red circle'") == "a red circle"


class ScriptedBooster:
    """Stands in for `rewrite`: answers from a script per request and records what the booster was shown."""

    def __init__(self, answers):
        self.answers, self.shown, self.calls = answers, [], 0

    def __call__(self, model, tokenizer, texts, args, *, samples=1, greedy=False, seed=None, shown=None):
        self.calls += 1
        self.shown.append(dict(zip(texts, shown)))
        return [[Sampled(self.answers[t][self.calls - 1][k], True, 5) for k in range(samples)] for t in texts]


def test_evolution_keeps_the_best_shows_it_stops_early_and_resumes(tmp_path, monkeypatch):
    reqs = requests()[:2]
    right = [caption_of(r.scene) for r in reqs]
    answers = {reqs[0].prompt: [["a thing", right[0]], ["never asked", "never asked"]],   # right in iteration 1
               reqs[1].prompt: [["a thing", "", ], ["a small thing", right[1]]]}          # right in iteration 2
    booster = ScriptedBooster(answers)
    monkeypatch.setattr(pav, "rewrite", booster)
    args = pav.PromptAVideoArgs(iterations=2, rewrites_per_iteration=2, shown=2, require_gain=True)
    s = scorer()
    evolution = pav.Evolution(tmp_path, reqs, s, args, RewriteArgs(), seed=0)
    original = evolution.original()
    rows = evolution.run(None, None)
    assert len(rows) == 6  # request 0 cleared every threshold in iteration 1 and is not asked again
    assert set(booster.shown[1]) == {reqs[1].prompt}
    assert [t for t, _ in booster.shown[1][reqs[1].prompt]] == ["a thing"]  # the empty rewrite is never shown
    best = evolution.best(rows)
    assert best[0]["rewrite"] == right[0] and best[1]["rewrite"] == right[1]
    examples = evolution.sft_examples(rows, original)
    assert [e["completion"] for e in examples] == right
    assert examples[0]["prompt"] == booster_messages(reqs[0].prompt)
    assert all(e["reward"] > e["request_reward"] for e in examples)
    lines = (tmp_path / "sft_examples.jsonl").read_text().splitlines()
    assert [json.loads(line)["completion"] for line in lines] == right
    assert (tmp_path / rows[1]["videos"][0]).is_file() and rows[3]["videos"] == []  # videos kept; none for ""
    # A rerun reads every iteration back and asks the booster nothing.
    again = pav.Evolution(tmp_path, reqs, scorer(), args, RewriteArgs(), seed=0)
    assert again.run(None, None) == rows and booster.calls == 2 and again.original() == original
    # Without iteration 1, iteration 2 (built on it) is redone rather than read back.
    (tmp_path / "iter_01.jsonl").unlink()
    redo = ScriptedBooster(answers)
    monkeypatch.setattr(pav, "rewrite", redo)
    assert pav.Evolution(tmp_path, reqs, scorer(), args, RewriteArgs(), seed=0).run(None, None) == rows
    assert redo.calls == 2


def test_sft_targets_need_a_gain_over_the_request_when_asked(tmp_path, monkeypatch):
    reqs = [VideoPrompt("a large red circle moving left slowly", parse_caption("a large red circle moving left slowly"))]
    monkeypatch.setattr(pav, "rewrite", ScriptedBooster({reqs[0].prompt: [["a red circle moving left slowly", "x y z"]]}))
    args = pav.PromptAVideoArgs(iterations=1, rewrites_per_iteration=2)
    evolution = pav.Evolution(tmp_path, reqs, scorer(), args, RewriteArgs(), seed=0)
    original = evolution.original()
    rows = evolution.run(None, None)
    assert evolution.sft_examples(rows, original) == []  # the request was already a perfect caption
    args.require_gain = False
    assert [e["completion"] for e in evolution.sft_examples(rows, original)] == ["a red circle moving left slowly"]


@pytest.mark.parametrize("name", ["ipo", "tiny", "paper_cogvideox", "prompt_a_video", "prompt_a_video_tiny",
                                  "prompt_a_video_paper"])
def test_every_t2v_config_reads(name):
    from apps.t2v.config import METHODS, T2VConfig
    from shared.config import load_yaml

    cfg = load_yaml(T2VConfig, f"configs/t2v/{name}.yaml")
    assert cfg.method in METHODS
    cfg.reward.check()
    if name.startswith("prompt_a_video"):
        assert cfg.method == "prompt_a_video" and cfg.booster_dpo.beta == 0.1


def test_evolution_files_are_reused_only_under_the_same_settings(tmp_path):
    from shared.loop import LoopError

    pav.check_settings(tmp_path, {"pav": {"iterations": 3}, "seed": 0})
    pav.check_settings(tmp_path, {"pav": {"iterations": 3}, "seed": 0})  # the same: reused
    with pytest.raises(LoopError, match=r"other settings \(pav, video_model changed\)"):
        pav.check_settings(tmp_path, {"pav": {"iterations": 8}, "seed": 0, "video_model": "other"})
