"""Stories: videos made of a sequence of clips, one event per clip, rendered by the core's video scenes.

A story is N clips (`VideoScene`s of the core's "events" category with one object and exactly one
event each: it appears, disappears, moves in a direction, or changes colour). Each clip is rendered
with `shared.scenes.video.render_video` and the clips are concatenated in time, so the story's
ground truth is its ordered list of clip descriptions (the core's event clauses):

    ["a red circle appears", "a blue square moves left", "a red circle changes colour to green", ...]

and its caption joins them with ", then " (the core's caption form for events scenes). The split is
by event composition: a story is held out when one of its clips holds a held-out (colour, direction)
combination (`shared.scenes.video.HELDOUT_MOTIONS`), so held-out stories show moves of colours in
directions no training story shows.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.scenes.image import COLOURS, SHAPES, SIZES, SceneError
from shared.scenes.video import DIRECTIONS, VideoObject, VideoScene, events, render_video

KINDS: tuple[str, ...] = ("appears", "disappears", "moves", "changes")
SEPARATOR = ", then "

_CLAUSE = re.compile(
    rf"^an? ({'|'.join(COLOURS)}) ({'|'.join(SHAPES)}) "
    rf"(appears|disappears|moves ({'|'.join(DIRECTIONS)})|changes colour to ({'|'.join(COLOURS)}))$"
)


def clip_scene(kind: str, colour: str, shape: str, size: str = "large", direction: str = "left",
               to_colour: str = "red") -> VideoScene:
    """Return the one-object, one-event clip of `kind` (appears / disappears / moves / changes)."""
    if kind == "appears":
        obj = VideoObject(colour, shape, size, appear=0.4)
    elif kind == "disappears":
        obj = VideoObject(colour, shape, size, disappear=0.6)
    elif kind == "moves":
        obj = VideoObject(colour, shape, size, motion=direction, speed="fast")
    elif kind == "changes":
        obj = VideoObject(colour, shape, size, recolour=(to_colour, 0.5))
    else:
        raise SceneError("kind", f"expected one of {', '.join(KINDS)}, got {kind!r}")
    return VideoScene("events", (obj,))


def describe(clip: VideoScene) -> str:
    """Return the clip's event clause ("a red circle appears")."""
    (event,) = events(clip)
    return event.text


@dataclass(frozen=True)
class Story:
    """A video as clips in time order; `seed` fixes where each clip's object is drawn."""

    clips: tuple[VideoScene, ...]
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.clips:
            raise SceneError("clips", "a story needs at least one clip")
        for i, clip in enumerate(self.clips):
            if len(clip.objects) != 1 or len(events(clip)) != 1:
                raise SceneError(f"clips[{i}]", "each clip needs one object with exactly one event")

    @property
    def descriptions(self) -> list[str]:
        """Return the per-clip event clauses in order."""
        return [describe(c) for c in self.clips]

    @property
    def caption(self) -> str:
        """Return the ground-truth caption: the clauses joined with ', then '."""
        return SEPARATOR.join(self.descriptions)

    @property
    def split(self) -> str:
        """Return "heldout" when a clip holds a held-out (colour, direction) move, else "train"."""
        return "heldout" if any(c.split == "heldout" for c in self.clips) else "train"

    def render(self, frames_per_clip: int = 4, resolution: int = 32) -> np.ndarray:
        """Return the story's frames (N * frames_per_clip, R, R, 3) uint8, clip after clip."""
        return np.concatenate([render_video(c, frames_per_clip, resolution, seed=f"{self.seed}:{i}").frames
                               for i, c in enumerate(self.clips)])

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready dict."""
        return {"seed": self.seed, "clips": [c.to_dict() for c in self.clips]}

    @classmethod
    def from_dict(cls, d: Any) -> Story:
        """Return the story of a JSON dict; raise SceneError naming the field at fault."""
        if not isinstance(d, dict) or not isinstance(d.get("clips"), list):
            raise SceneError("clips", "expected an object with a list 'clips'")
        seed = d.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise SceneError("seed", f"expected an int, got {seed!r}")
        clips = []
        for i, c in enumerate(d["clips"]):
            try:
                clips.append(VideoScene.from_dict(c))
            except SceneError as exc:
                raise exc.under(f"clips[{i}]") from None
        return cls(tuple(clips), seed)


def _random_clip(rng: random.Random) -> VideoScene:
    kind = rng.choice(KINDS)
    colour, shape = rng.choice(list(COLOURS)), rng.choice(SHAPES)
    to_colour = rng.choice([c for c in COLOURS if c != colour])
    return clip_scene(kind, colour, shape, rng.choice(SIZES), rng.choice(DIRECTIONS), to_colour)


def sample_story(rng: random.Random, clips: int, split: str | None = None) -> Story:
    """Return a random story of `clips` clips (no clause twice); with `split`, one of that split."""
    if clips < 1:
        raise SceneError("clips", f"expected >= 1, got {clips}")
    while True:
        picked: list[VideoScene] = []
        while len(picked) < clips:
            clip = _random_clip(rng)
            if describe(clip) not in {describe(c) for c in picked}:
                picked.append(clip)
        story = Story(tuple(picked), seed=rng.randrange(2**31))
        if split is None or story.split == split:
            return story


def parse_clause(text: str) -> tuple[str, ...] | None:
    """Return (colour, shape, event) of an event clause, or None when it is not one."""
    m = _CLAUSE.match(" ".join(str(text).lower().replace(".", " ").split()))
    if not m:
        return None
    return (m.group(1), m.group(2), m.group(3))


def parse_caption(text: Any) -> list[tuple[str, ...] | None]:
    """Return the caption's clauses parsed (None for a clause that is not an event), in order."""
    if not isinstance(text, str) or not text.strip():
        return []
    parts = re.split(r",?\s*\bthen\b\s*|\.\s+", text.strip().rstrip("."))
    return [parse_clause(p) for p in parts if p.strip()]
