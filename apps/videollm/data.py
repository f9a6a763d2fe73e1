"""The app's data: embedded stories rendered on the fly, or users' video JSONL read through PyAV.

A `VideoItem` is one video with what is known about it: its frames, its caption, its per-clip
descriptions (TEMPLE's pair writer needs them) and temporal questions with answers. Embedded items
come from `stories.sample_story` (train / held-out split by event composition); users give JSONL
files, one video per line:

    {"video": "clips/0001.mp4", "caption": "...", "clips": ["...", "..."],
     "questions": [{"type": "order", "question": "...", "answer": "..."}]}

`video` is a path (relative to the JSONL file's folder) to a file PyAV reads (MP4, WebM, GIF, ...)
or a .npy frame array; every other field is optional. Frames are read when the file is loaded, so a
corrupt, empty or frameless video, or a malformed line, ends the program with `path:line: field: reason`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from apps.videollm.questions import questions
from apps.videollm.stories import SEPARATOR, Story, sample_story
from shared.records.jsonl import iter_json_objects
from shared.video_io import VideoReadError, read_video

WRITER_PROMPT = "Clip descriptions, in order:\n{clips}\nWrite one caption of the whole video."


@dataclass
class VideoItem:
    """One video: an id, a frame source, and its caption / clip descriptions / questions where known."""

    id: str
    frames_of: Callable[[], np.ndarray]
    caption: str | None = None
    clips: list[str] | None = None
    questions: list[dict[str, str]] = field(default_factory=list)
    story: Story | None = None

    def frames(self) -> np.ndarray:
        return self.frames_of()


def writer_prompt(clips: list[str]) -> str:
    """Return the text-only prompt asking the model for one caption of a clip-description list."""
    return WRITER_PROMPT.format(clips="\n".join(f"{i + 1}. {c}" for i, c in enumerate(clips)))


@dataclass
class DataArgs:
    """Embedded stories (counts and sizes) or users' JSONL files.

    Attributes:
        clips_min: fewest clips per story (instruction, pair and held-out stories).
        clips_max: most clips per story.
        frames_per_clip: frames rendered per clip.
        resolution: frame side in pixels.
        pretrain_clips: single-clip videos captioned in pre-training (the stand-in for a pre-trained video LLM).
        pretrain_stories: 2-3 clip stories captioned in pre-training.
        pretrain_lists: text-only (clip descriptions -> caption) examples in pre-training.
        instruct_stories: training stories of the instruction SFT (a caption and the questions of each).
        pair_stories: training stories TEMPLE's pairs are written for.
        heldout_stories: held-out stories of the evaluation.
        questions_per_type: questions of each type per story (instruction data and evaluation).
        train_file: users' JSONL of the instruction SFT (replaces instruct_stories).
        pairs_file: users' JSONL whose lines have `clips` (replaces pair_stories).
        heldout_file: users' JSONL of the evaluation (replaces heldout_stories).
    """

    clips_min: int = 4
    clips_max: int = 8
    frames_per_clip: int = 4
    resolution: int = 32
    pretrain_clips: int = 6000
    pretrain_stories: int = 3000
    pretrain_lists: int = 2400
    instruct_stories: int = 1000
    pair_stories: int = 300
    heldout_stories: int = 60
    questions_per_type: int = 1
    train_file: str = ""
    pairs_file: str = ""
    heldout_file: str = ""


def story_item(story: Story, name: str, data: DataArgs, rng: random.Random) -> VideoItem:
    """Return the item of an embedded story (frames rendered when asked for)."""
    return VideoItem(name, lambda: story.render(data.frames_per_clip, data.resolution), story.caption,
                     story.descriptions, questions(story, rng, data.questions_per_type), story)


def embedded_stories(data: DataArgs, split: str, count: int, seed: int, clips: tuple[int, int] | None = None,
                     tag: str = "") -> list[VideoItem]:
    """Return `count` stories of `split` with a clip count drawn from `clips` (default clips_min..clips_max)."""
    lo, hi = clips or (data.clips_min, data.clips_max)
    rng = random.Random(f"videollm:{tag or split}:{seed}")
    return [story_item(sample_story(rng, rng.randint(lo, hi), split), f"{tag or split}-{i:04d}", data, rng)
            for i in range(count)]


def _field(where: str, row: dict, name: str, kind: type) -> Any:
    value = row.get(name)
    if value is not None and not isinstance(value, kind):
        raise ValueError(f"{where}: {name}: expected {kind.__name__}, got {type(value).__name__}")
    return value


def read_video_jsonl(path: str | Path) -> list[VideoItem]:
    """Return the file's items with their frames read; raise ValueError `path:line: field: reason` on a bad line."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    items = []
    for lineno, row in iter_json_objects(path):  # path:line errors for bad bytes, bad JSON, non-objects
        where = f"{path}:{lineno}"
        video = _field(where, row, "video", str)
        if not video:
            raise ValueError(f"{where}: video: required (a video file path)")
        file = Path(video) if Path(video).is_absolute() else path.parent / video
        try:
            frames = read_video(file)
        except VideoReadError as exc:
            raise ValueError(f"{where}: video: {exc}") from None
        caption = _field(where, row, "caption", str)
        clips = _field(where, row, "clips", list)
        if clips is not None and (not clips or not all(isinstance(c, str) and c.strip() for c in clips)):
            raise ValueError(f"{where}: clips: expected a non-empty list of non-empty strings")
        qs = _field(where, row, "questions", list) or []
        for k, q in enumerate(qs):
            if not isinstance(q, dict) or not all(isinstance(q.get(f), str) for f in ("question", "answer")):
                raise ValueError(f"{where}: questions[{k}]: expected an object with string question and answer")
        if caption is None and clips:
            caption = SEPARATOR.join(clips)
        items.append(VideoItem(str(row.get("id", f"{path.stem}-{lineno}")), lambda f=frames: f, caption, clips,
                               [{"type": q.get("type", "qa"), "question": q["question"], "answer": q["answer"]}
                                for q in qs]))
    if not items:
        raise ValueError(f"{path}: no videos")
    return items
