"""The video LLM app's parts: stories, questions and graders, TEMPLE's perturbations and filters, video inputs."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from apps.videollm.data import DataArgs, embedded_stories, read_video_jsonl
from apps.videollm.questions import answer_correct, caption_scores, questions
from apps.videollm.stories import SEPARATOR, Story, clip_scene, parse_caption, parse_clause, sample_story
from apps.videollm.temple import keep_pair, magnitude_difficulty, perturb, plan_perturbations, write_pairs
from shared.pairs import curriculum_order
from shared.scenes.image import BACKGROUND
from shared.records import Pair
from shared.video_io import write_mp4


def story(*clips) -> Story:
    return Story(tuple(clip_scene(*c) for c in clips), seed=3)


STORY = story(("appears", "red", "circle"), ("moves", "blue", "square", "large", "left"),
              ("changes", "red", "circle", "small", "left", "green"), ("disappears", "yellow", "triangle"))


def test_story_descriptions_caption_and_frames():
    assert STORY.descriptions == ["a red circle appears", "a blue square moves left",
                                  "a red circle changes colour to green", "a yellow triangle disappears"]
    assert STORY.caption == SEPARATOR.join(STORY.descriptions)
    frames = STORY.render(frames_per_clip=4, resolution=32)
    assert frames.shape == (16, 32, 32, 3) and frames.dtype == np.uint8
    assert (frames[0] == BACKGROUND).all()  # the first clip's object appears at 0.4: frame 0 is empty
    assert (frames[3] != BACKGROUND).any()
    assert Story.from_dict(json.loads(json.dumps(STORY.to_dict()))) == STORY


def test_split_by_composition():
    assert story(("moves", "red", "circle", "large", "left")).split == "heldout"  # a held-out (colour, direction)
    assert story(("moves", "red", "circle", "large", "right")).split == "train"
    rng = random.Random(0)
    assert all(sample_story(rng, 5, "heldout").split == "heldout" for _ in range(5))
    drawn = sample_story(random.Random(1), 6, "train")
    assert len(drawn.clips) == 6 and len(set(drawn.descriptions)) == 6


def test_parse_caption_and_scores():
    assert parse_clause("A red circle appears.") == ("red", "circle", "appears")
    assert parse_clause("a red blob appears") is None
    assert caption_scores(STORY.caption, STORY) == {"order": 1.0, "order_score": 1.0, "order_score_no_shape": 1.0,
                                                     "events": 1.0, "objects": 1.0, "colours": 1.0}
    wrong_shapes = STORY.caption.replace("circle", "triangle")
    assert caption_scores(wrong_shapes, STORY)["order_score"] == 0.5  # the square's and the triangle's clauses
    assert caption_scores(wrong_shapes, STORY)["order_score_no_shape"] == 1.0
    backwards = SEPARATOR.join(reversed(STORY.descriptions))
    scores = caption_scores(backwards, STORY)
    assert scores["order"] == 0.0 and scores["order_score"] == 0.25 and scores["events"] == 1.0
    half = SEPARATOR.join(STORY.descriptions[:2])
    assert caption_scores(half, STORY)["order_score"] == 0.5
    assert caption_scores(half, STORY)["colours"] == 0.75  # the red circle of clips 1 and 3, the blue square
    for garbage in ("", "\x00\x01 then then", None, 42):
        assert caption_scores(garbage, STORY)["order"] == 0.0
    assert parse_caption("a red circle appears then a blue square moves left.") == [
        ("red", "circle", "appears"), ("blue", "square", "moves left")]


def test_questions_have_the_right_answers():
    qs = {q["type"]: q for q in questions(STORY, random.Random(0))}
    assert qs["first"]["answer"] == "a red circle appears"
    assert qs["last"]["answer"] == "a yellow triangle disappears"
    after = qs["after"]
    k = STORY.descriptions.index(after["question"].removeprefix("What happens right after ").rstrip("?"))
    assert after["answer"] == STORY.descriptions[k + 1]
    assert qs["direction"] == {"type": "direction", "question": "Which way does the blue square move?", "answer": "left"}
    twice = story(("appears", "red", "circle"), ("appears", "blue", "square"), ("moves", "red", "circle", "large", "up"))
    counts = {q["question"]: q["answer"] for q in questions(twice, random.Random(0), per_type=4) if q["type"] == "count"}
    assert counts == {"How many times does something appear?": "2", "How many times does something move?": "1",
                      "How many times does something disappear?": "0",
                      "How many times does something change colour?": "0"}
    assert answer_correct(" Left. ", "left") and not answer_correct("right", "left")


def test_perturbations_follow_temple():
    clips = [f"c{i}" for i in range(8)]
    rng = random.Random(0)
    dropped = perturb(clips, "drop", 4, rng)
    assert len(dropped) == 2 and dropped == sorted(dropped, key=clips.index)
    assert perturb(clips, "reverse", 8, rng) == clips[::-1]
    assert perturb(clips, "reverse", 2, rng) == clips[4:] + clips[:4]  # chunks of 4, order reversed
    shuffled = perturb(clips, "shuffle", 4, rng)
    assert shuffled != clips and sorted(shuffled) == sorted(clips)
    assert [shuffled[i:i + 2] for i in range(0, 8, 2)] != [clips[i:i + 2] for i in range(0, 8, 2)]
    assert perturb(["a", "b"], "drop", 1, rng) is None  # keeps every clip: no change
    assert perturb(["a"], "reverse", 2, rng) is None
    with pytest.raises(ValueError, match="perturbation 'spin'"):
        perturb(clips, "spin", 2, rng)


def test_filters():
    assert keep_pair("a b, then c d", "a b", "drop") is None
    assert keep_pair("a b", "a b, then c", "drop") == "drop_not_shorter"
    assert keep_pair("x", "x then y", "shuffle") == "chosen_in_rejected"
    assert keep_pair("a long caption here", "short", "reverse") == "length_ratio"
    assert keep_pair("same", "same", "shuffle") == "equal"
    assert keep_pair("", "x", "shuffle") == "empty"


def test_pairs_and_curriculum_easy_to_hard():
    items = embedded_stories(DataArgs(), "train", 6, seed=0, tag="t")
    plans = plan_perturbations(items, [2, 8, 4], ["drop", "shuffle", "reverse"], seed=0)
    assert len(plans) == 18
    pairs, written = write_pairs(None, None, items, plans)
    assert len(written) == 18 and all(p.chosen == next(i.caption for i in items if i.id == p.metadata["video"])
                                      for p in pairs)
    stages = curriculum_order(pairs, magnitude_difficulty, stages=None)
    assert [s[0].metadata["magnitude"] for s in stages] == [8, 4, 2]
    assert all(len({p.metadata["magnitude"] for p in s}) == 1 for s in stages)


def test_video_patches_match_the_image_processor(tiny_model):
    _, processor = tiny_model
    frame = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    video = processor.video_inputs(np.stack([frame, frame]))
    image = processor.image_processor(images=[frame], return_tensors="pt")
    assert video["video_grid_thw"].tolist() == image["image_grid_thw"].tolist() == [[1, 4, 4]]
    torch.testing.assert_close(video["pixel_values_videos"], image["pixel_values"].float(), atol=1e-5, rtol=0)
    # time order: a patch's temporal slots hold consecutive frames; an odd count repeats the last frame
    three = processor.video_inputs(np.stack([frame, 255 - frame, frame]))
    assert three["video_grid_thw"].tolist() == [[2, 4, 4]]
    assert processor.video_tokens(three) == 8


def test_one_line_errors_for_bad_videos(tmp_path):
    write_mp4(tmp_path / "ok.mp4", STORY.render())
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "corrupt.mp4").write_bytes(b"\x00garbage" * 100)
    np.save(tmp_path / "none.npy", np.zeros((0, 32, 32, 3), np.uint8))
    cases = {"empty.mp4": "empty file", "corrupt.mp4": "not a readable video", "none.npy": "zero frames",
             "missing.mp4": "no such file"}
    for name, reason in cases.items():
        f = tmp_path / "data.jsonl"
        f.write_text(json.dumps({"video": "ok.mp4", "caption": "x"}) + "\n" + json.dumps({"video": name}) + "\n")
        with pytest.raises(ValueError) as err:
            read_video_jsonl(f)
        assert str(err.value).startswith(f"{f}:2: video: ") and reason in str(err.value)
        assert "\n" not in str(err.value)
    f.write_text('{"video": "ok.mp4", "clips": []}\n')
    with pytest.raises(ValueError, match=r"data.jsonl:1: clips: expected a non-empty list"):
        read_video_jsonl(f)
    f.write_text("{not json\n")
    with pytest.raises(ValueError, match=r"data.jsonl:1: invalid JSON"):
        read_video_jsonl(f)
    f.write_text(json.dumps({"video": "ok.mp4", "clips": ["a red circle appears", "a red circle disappears"]}) + "\n")
    (item,) = read_video_jsonl(f)
    assert item.frames().shape == (16, 32, 32, 3) and item.caption == "a red circle appears, then a red circle disappears"


@pytest.fixture(scope="module")
def tiny_model():
    from apps.videollm.model import VideoLLMSpec, load_video_llm

    return load_video_llm(VideoLLMSpec())


def test_batched_scores_and_answers_match_one_at_a_time(tiny_model):
    from apps.videollm.generation import generate_answers
    from apps.videollm.stages import encode_examples, encode_video_pairs
    from shared.logprobs import sequence_logps
    from shared.modules import MediaCollator, PreferenceCollator, SFTCollator

    model, processor = tiny_model
    stories = [sample_story(random.Random(i), n) for i, n in enumerate((3, 5, 4))]
    frames = [s.render() for s in stories]
    examples = [("Describe.", f, s.caption) for s, f in zip(stories, frames)] + [("text only", None, "a b")]
    data = encode_examples(processor, examples)
    collate = MediaCollator(SFTCollator(processor.tokenizer.pad_token_id, packed=False), token_types=processor.token_types)
    with torch.no_grad():
        together = sequence_logps(model, collate(data)).logps
        alone = torch.cat([sequence_logps(model, collate([d])).logps for d in data])
    torch.testing.assert_close(together, alone, atol=1e-4, rtol=1e-5)
    # pairs: chosen rows then rejected rows, each with its pair's video
    pairs = [Pair(prompt="Describe.", chosen=s.caption, rejected=SEPARATOR.join(s.descriptions[::-1]),
                  metadata={"video": str(i)}) for i, s in enumerate(stories)]
    encoded = encode_video_pairs(processor, pairs, {str(i): f for i, f in enumerate(frames)})
    pair_collate = MediaCollator(PreferenceCollator(processor.tokenizer.pad_token_id, layout="padded"), copies=2,
                                 token_types=processor.token_types)
    with torch.no_grad():
        scored = sequence_logps(model, pair_collate(encoded)).logps
    torch.testing.assert_close(scored[:3], alone[:3], atol=1e-4, rtol=1e-5)
    items = [(q, f) for q, f, _ in examples]
    assert generate_answers(model, processor, items, max_new_tokens=6) == \
        [generate_answers(model, processor, [i], max_new_tokens=6)[0] for i in items]


def test_a_different_video_changes_the_score(tiny_model):
    from apps.videollm.stages import encode_examples
    from shared.logprobs import sequence_logps
    from shared.modules import MediaCollator, SFTCollator

    model, processor = tiny_model
    collate = MediaCollator(SFTCollator(processor.tokenizer.pad_token_id, packed=False), token_types=processor.token_types)
    a, b = STORY.render(), STORY.render()[::-1].copy()
    with torch.no_grad():
        la, lb = (sequence_logps(model, collate(encode_examples(processor, [("Describe.", f, STORY.caption)]))).logps
                  for f in (a, b))
    assert not torch.allclose(la, lb)


@pytest.mark.parametrize("name", ["temple", "tiny", "paper_qwen25vl"])
def test_every_config_reads(name):
    from apps.videollm.config import VideoLLMConfig
    from shared.config import load_yaml

    cfg = load_yaml(VideoLLMConfig, f"configs/videollm/{name}.yaml")
    assert cfg.temple.magnitudes == sorted(cfg.temple.magnitudes, reverse=True)


def test_text_side_from_smollm2_gives_smollm2s_logits_on_text():
    from apps.videollm.model import VideoLLMSpec, load_video_llm
    from shared.models import ModelSpec, load_policy

    vl, processor = load_video_llm(VideoLLMSpec(text_init="smollm2", vision_depth=1))
    smol, tok = load_policy(ModelSpec(source="smollm2"))
    ids = tok("The red circle moves left, then the blue square", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        expected = smol(input_ids=ids).logits
        got = vl(input_ids=ids).logits[..., :expected.size(-1)]
    torch.testing.assert_close(got, expected, atol=2e-4, rtol=1e-4)
    assert processor.tokenizer("a red circle")["input_ids"] == tok("a red circle")["input_ids"]


def test_a_batch_with_more_videos_than_tokens_per_row_generates(tiny_model):
    # transformers' default seconds-per-grid iterator has one entry per token of a row: 24 one-clip videos
    # (about 20 tokens a row) ran it out before video_inputs passed second_per_grid_ts
    from apps.videollm.generation import generate_answers

    model, processor = tiny_model
    clips = [Story((clip_scene("appears", colour, "circle"),), seed=k) for k, colour in enumerate(["red", "blue"] * 12)]
    items = [("Describe.", s.render()) for s in clips]
    assert len(processor.prompt("Describe.", items[0][1])[0]) < len(items)
    together = generate_answers(model, processor, items, max_new_tokens=4, batch_size=24)
    assert together[:2] == [generate_answers(model, processor, [i], max_new_tokens=4)[0] for i in items[:2]]
