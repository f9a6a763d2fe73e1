"""Video scenes: still scenes with motion and time, their captions, a procedural renderer and a split by composition.

A video scene is 1-3 flat objects (colour, shape, size) on the plain background of image.py, each
with a motion (still or one of four directions at a speed: its centre travels `SPEED_FRACTION` of
the image side over the whole clip), a visible interval [appear, disappear) in clip time [0, 1] and,
in "events" scenes only, a colour change at a time. Five text-to-video categories and a generic one:

    category      objects                                            caption
    moving        1, moving, visible throughout                      a large red circle moving left slowly
    two_moving    2 small slow ones, different (colour, shape),      a red circle moving left and a blue square
                  moving in different directions, visible throughout   moving up
    still         1, still, visible throughout                       a small blue square staying still
    appearing     1, still, appear in [0.3, 0.6], disappear 1        a large green triangle appearing
    disappearing  1, still, appear 0, disappear in [0.4, 0.7]        a small yellow circle disappearing
    events        1-3 of distinct (colour, shape), anything valid    one clause per `events` entry, ", then "

The caption names neither size nor speed in two_moving, so the structure fixes them (small, slow:
two large objects crossing each other's paths do not fit 32 px); a still object's speed is "slow".
The split is by (colour, motion) combination (`HELDOUT_MOTIONS`; an object that changes colour
counts with both colours). `render_video` is deterministic in (scene, frames, resolution, seed):
frame f shows the clip at t = f / (frames - 1); positions are whole pixels (the offset from the
start is rounded at each frame); every object stays inside the
border for the whole clip, and two objects visible in the same frame are at least image.py's gap
apart there. The layout depends on the seed, frames, resolution, sizes, motions, speeds and times,
never on colours or shapes, so attribute-swapped scenes render with their objects in the same places.
"""

from __future__ import annotations

import functools
import itertools
import math
import random
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from shared.scenes.image import (BACKGROUND, COLOURS, MIN_RESOLUTION, SHAPES, SIZES, SPLITS, Box, SceneError, _apart,
                                 _article, _check_dict, _choice_error, _gap, object_side, shape_mask)

MOTIONS: tuple[str, ...] = ("still", "left", "right", "up", "down")
DIRECTIONS: tuple[str, ...] = MOTIONS[1:]
SPEEDS: tuple[str, ...] = ("slow", "fast")
SPEED_FRACTION: dict[str, float] = {"slow": 0.25, "fast": 0.5}  # centre travel over the clip / image side
SPEED_WORDS: dict[str, str] = {"slow": "slowly", "fast": "quickly"}
VIDEO_CATEGORIES: tuple[str, ...] = ("moving", "two_moving", "still", "appearing", "disappearing", "events")
T2V_CATEGORIES: tuple[str, ...] = VIDEO_CATEGORIES[:5]
CANONICAL_APPEAR, CANONICAL_DISAPPEAR = 0.45, 0.55  # what parse_caption returns for appearing / disappearing
VELOCITY: dict[str, tuple[int, int]] = {"still": (0, 0), "left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}

# 4 of the 24 (colour, direction) pairs, four colours and every direction kept in training.
HELDOUT_MOTIONS: frozenset[tuple[str, str]] = frozenset(
    {("red", "left"), ("green", "up"), ("blue", "right"), ("yellow", "down")}
)


def _time(field: str, value: Any, lo: float, hi: float) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not lo <= value <= hi:
        raise SceneError(field, f"expected a number in [{lo:g}, {hi:g}], got {value!r}")
    return float(value)


@dataclass(frozen=True)
class VideoObject:
    """One object of a video scene: colour, shape, size, motion and speed, visible interval, optional colour change.

    `appear` / `disappear` are clip times in [0, 1] (appear < disappear; visible while appear <= t <
    disappear, and at t = 1 when disappear is 1); `recolour` is None or (colour, at): from time `at`
    (appear < at < disappear) the object has that other colour.
    """

    colour: str
    shape: str
    size: str = "large"
    motion: str = "still"
    speed: str = "slow"
    appear: float = 0.0
    disappear: float = 1.0
    recolour: tuple[str, float] | None = None

    def __post_init__(self) -> None:
        for name, allowed in (("colour", COLOURS), ("shape", SHAPES), ("size", SIZES), ("motion", MOTIONS),
                              ("speed", SPEEDS)):
            value = getattr(self, name)
            if not isinstance(value, str) or value not in allowed:
                raise _choice_error(name, name, value, allowed)
        if self.motion == "still" and self.speed != "slow":
            raise SceneError("speed", f"a still object has no speed (leave it 'slow'), got {self.speed!r}")
        object.__setattr__(self, "appear", _time("appear", self.appear, 0.0, 1.0))
        object.__setattr__(self, "disappear", _time("disappear", self.disappear, 0.0, 1.0))
        if self.appear >= self.disappear:
            raise SceneError("disappear", f"must be after appear ({self.appear:g}), got {self.disappear:g}")
        if self.recolour is not None:
            if not isinstance(self.recolour, (tuple, list)) or len(self.recolour) != 2:
                raise SceneError("recolour", f"expected None or a (colour, at) pair, got {self.recolour!r}")
            colour, at = self.recolour
            if not isinstance(colour, str) or colour not in COLOURS:
                raise _choice_error("recolour.colour", "colour", colour, COLOURS)
            if colour == self.colour:
                raise SceneError("recolour.colour", f"must differ from the object's colour {self.colour!r}")
            at = _time("recolour.at", at, 0.0, 1.0)
            if not self.appear < at < self.disappear or not 0 < at < 1:
                raise SceneError("recolour.at", f"expected a time in (0, 1) while the object is visible "
                                                f"({self.appear:g} to {self.disappear:g}), got {at:g}")
            object.__setattr__(self, "recolour", (colour, at))

    @property
    def pair(self) -> tuple[str, str]:
        """Return the (colour, shape) combination (the colour at the start)."""
        return (self.colour, self.shape)

    @property
    def motion_pairs(self) -> set[tuple[str, str]]:
        """Return the (colour, motion) combinations the split is made on (both colours when it changes colour)."""
        colours = {self.colour} | ({self.recolour[0]} if self.recolour else set())
        return {(c, self.motion) for c in colours}

    def colour_at(self, t: float) -> str:
        """Return the object's colour at clip time t."""
        return self.recolour[0] if self.recolour is not None and t >= self.recolour[1] else self.colour

    def visible_at(self, t: float) -> bool:
        """Return whether the object is visible at clip time t."""
        return self.appear <= t and (t < self.disappear or self.disappear >= 1.0)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready dict (`recolour` as [colour, at] or null)."""
        return {"colour": self.colour, "shape": self.shape, "size": self.size, "motion": self.motion,
                "speed": self.speed, "appear": self.appear, "disappear": self.disappear,
                "recolour": list(self.recolour) if self.recolour is not None else None}

    @classmethod
    def from_dict(cls, d: Any) -> VideoObject:
        """Return the object of a JSON dict (omitted fields take their defaults); raise SceneError naming the field."""
        fields = ("colour", "shape", "size", "motion", "speed", "appear", "disappear", "recolour")
        _check_dict(d, ("colour", "shape"), fields)
        recolour = d.get("recolour")
        return cls(**{**{k: d[k] for k in fields if k in d},
                      "recolour": tuple(recolour) if isinstance(recolour, list) else recolour})


def _check_structure(category: str, objects: tuple[VideoObject, ...]) -> None:
    n = len(objects)
    for i, o in enumerate(objects):
        if o.recolour is not None and category != "events":
            raise SceneError(f"objects[{i}].recolour", f"only events scenes change colours, this is {category}")
    whole = all(o.appear == 0.0 and o.disappear == 1.0 for o in objects)
    still = all(o.motion == "still" for o in objects)
    distinct = len({o.pair for o in objects}) == n
    rules = {
        "moving": (n == 1 and not still and whole, "exactly 1 moving object visible throughout"),
        "two_moving": (n == 2 and distinct and whole and all(o.motion != "still" for o in objects)
                       and objects[0].motion != objects[-1].motion
                       and all(o.size == "small" and o.speed == "slow" for o in objects),
                       "2 small slow objects of different (colour, shape) moving in different directions, "
                       "visible throughout"),
        "still": (n == 1 and still and whole, "exactly 1 still object visible throughout"),
        "appearing": (n == 1 and still and 0.3 <= objects[0].appear <= 0.6 and objects[0].disappear == 1.0,
                      "exactly 1 still object with appear in [0.3, 0.6] and disappear 1"),
        "disappearing": (n == 1 and still and objects[0].appear == 0.0 and 0.4 <= objects[0].disappear <= 0.7,
                         "exactly 1 still object with appear 0 and disappear in [0.4, 0.7]"),
        "events": (1 <= n <= 3 and distinct, "1-3 objects of different (colour, shape)"),
    }
    ok, expected = rules[category]
    if not ok:
        got = ", ".join(f"{o.colour} {o.shape} {o.motion} [{o.appear:g}, {o.disappear:g})" for o in objects) or "none"
        raise SceneError("objects", f"a {category} scene needs {expected}, got {got}")


@dataclass(frozen=True)
class VideoScene:
    """A video scene graph: its category and its objects (see the module docstring for the rules per category)."""

    category: str
    objects: tuple[VideoObject, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.category, str) or self.category not in VIDEO_CATEGORIES:
            raise _choice_error("category", "category", self.category, VIDEO_CATEGORIES)
        if not isinstance(self.objects, (tuple, list)):
            raise SceneError("objects", f"expected a sequence of VideoObject, got {type(self.objects).__name__}")
        object.__setattr__(self, "objects", tuple(self.objects))
        for i, obj in enumerate(self.objects):
            if not isinstance(obj, VideoObject):
                raise SceneError(f"objects[{i}]", f"expected a VideoObject, got {type(obj).__name__}")
        _check_structure(self.category, self.objects)

    @property
    def motion_pairs(self) -> set[tuple[str, str]]:
        """Return the (colour, motion) combinations in the scene."""
        return set().union(*(o.motion_pairs for o in self.objects))

    @property
    def split(self) -> str:
        """Return "heldout" when the scene holds a held-out (colour, motion) combination, else "train"."""
        return "heldout" if self.motion_pairs & HELDOUT_MOTIONS else "train"

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready dict."""
        return {"category": self.category, "objects": [o.to_dict() for o in self.objects]}

    @classmethod
    def from_dict(cls, d: Any) -> VideoScene:
        """Return the scene of a JSON dict; raise SceneError whose message starts with the field at fault."""
        _check_dict(d, ("category", "objects"), ("category", "objects"))
        if not isinstance(d["objects"], list):
            raise SceneError("objects", f"expected a list, got {type(d['objects']).__name__}")
        objects = []
        for i, item in enumerate(d["objects"]):
            try:
                objects.append(VideoObject.from_dict(item))
            except SceneError as exc:
                raise exc.under(f"objects[{i}]") from None
        return cls(d["category"], tuple(objects))


class Event(NamedTuple):
    """Something that happens in a clip: its time, the object's index, a kind and a clause ("a red circle appears")."""

    time: float
    index: int
    kind: str  # "appears", "moves <direction>", "changes colour to <colour>", "disappears"
    text: str


def _phrase(colour: str, shape: str, size: str | None = None) -> str:
    words = " ".join(w for w in (size, colour, shape) if w)
    return f"{_article(words)} {words}"


def events(scene: VideoScene) -> list[Event]:
    """Return the scene's events in time order (ties: object index, then appears / moves / changes / disappears).

    An object appears at `appear` when that is after 0, moves in its direction from its first visible
    moment, changes colour at its recolour time and disappears at `disappear` when that is before 1.
    """
    out = []
    for i, o in enumerate(scene.objects):
        if o.appear > 0:
            out.append(Event(o.appear, i, "appears", f"{_phrase(o.colour, o.shape)} appears"))
        if o.motion != "still":
            out.append(Event(o.appear, i, f"moves {o.motion}", f"{_phrase(o.colour, o.shape)} moves {o.motion}"))
        if o.recolour is not None:
            colour, at = o.recolour
            out.append(Event(at, i, f"changes colour to {colour}",
                             f"{_phrase(o.colour, o.shape)} changes colour to {colour}"))
        if o.disappear < 1:
            out.append(Event(o.disappear, i, "disappears",
                             f"{_phrase(o.colour_at(o.disappear), o.shape)} disappears"))
    return sorted(out, key=lambda e: (e.time, e.index))  # stable: keeps the per-object order above


def caption_of(scene: VideoScene) -> str:
    """Return the caption that describes the scene ("a large red circle moving left slowly")."""
    first = scene.objects[0]
    single = _phrase(first.colour, first.shape, first.size)
    if scene.category == "moving":
        return f"{single} moving {first.motion} {SPEED_WORDS[first.speed]}"
    if scene.category == "two_moving":
        return " and ".join(f"{_phrase(o.colour, o.shape)} moving {o.motion}" for o in scene.objects)
    if scene.category == "still":
        return f"{single} staying still"
    if scene.category in ("appearing", "disappearing"):
        return f"{single} {scene.category}"
    clauses = [e.text for e in events(scene)]
    if not clauses:  # nothing happens: every object stays still throughout
        return " and ".join(_phrase(o.colour, o.shape) for o in scene.objects) + " staying still"
    return ", then ".join(clauses)


def _parse_object(words: list[str]) -> VideoObject | None:
    """Return the object of ["a", (size,) colour, shape], or None."""
    if len(words) not in (3, 4) or words[0] not in ("a", "an"):
        return None
    size = words[1] if len(words) == 4 else "large"
    try:
        return VideoObject(words[-2], words[-1], size)
    except SceneError:
        return None


def parse_caption(text: Any) -> VideoScene | None:
    """Return the scene a caption written like `caption_of`'s describes (five t2v categories), or None.

    Case and whitespace are ignored, a final full stop too; an omitted size reads as large, an omitted
    speed as slow; appearing / disappearing scenes get the canonical times 0.45 / 0.55.
    """
    if not isinstance(text, str):
        return None
    words = text.lower().strip().rstrip(".").replace(",", " ").split()
    try:
        if "and" in words:
            cut = words.index("and")
            parts = [words[:cut], words[cut + 1:]]
            objects = []
            for part in parts:
                if len(part) != 5 or part[3] != "moving":
                    return None
                obj = _parse_object(part[:3])
                if obj is None:
                    return None
                objects.append(VideoObject(obj.colour, obj.shape, "small", part[4], "slow"))
            return VideoScene("two_moving", tuple(objects))
        if words[-2:] == ["staying", "still"]:
            obj = _parse_object(words[:-2])
            return VideoScene("still", (obj,)) if obj else None
        if words and words[-1] in ("appearing", "disappearing"):
            obj = _parse_object(words[:-1])
            if obj is None:
                return None
            times = {"appear": CANONICAL_APPEAR} if words[-1] == "appearing" else {"disappear": CANONICAL_DISAPPEAR}
            return VideoScene(words[-1], (VideoObject(obj.colour, obj.shape, obj.size, **times),))
        if "moving" in words:
            cut = words.index("moving")
            obj, rest = _parse_object(words[:cut]), words[cut + 1:]
            speeds = {"slowly": "slow", "slow": "slow", "quickly": "fast", "fast": "fast"}
            if obj is None or len(rest) not in (1, 2) or (len(rest) == 2 and rest[1] not in speeds):
                return None
            speed = speeds[rest[1]] if len(rest) == 2 else "slow"
            return VideoScene("moving", (VideoObject(obj.colour, obj.shape, obj.size, rest[0], speed),))
    except SceneError:
        return None
    return None


def _draw_event_object(rng: random.Random, colour: str, shape: str, taken: set[tuple[str, str]],
                       size: str, crowded: bool) -> VideoObject:
    """Return a random events-scene object with at least one event, whose moves the checker can see.

    In a crowded (3-object) scene a moving object is slow and visible throughout, so that three fit 32 px.
    """
    while True:
        motion = rng.choice(MOTIONS)
        appear, disappear, recolour = 0.0, 1.0, None
        if rng.random() < 0.35 and (motion == "still" or not crowded):
            appear = round(rng.uniform(0.1, 0.25), 2)
        if rng.random() < 0.35 and (motion == "still" or appear == 0):  # a moving object keeps >= 0.75 of the clip
            disappear = round(rng.uniform(0.75, 0.9), 2)
        if motion == "still" or crowded:
            speed = "slow"
        else:
            speed = "fast" if appear > 0 or disappear < 1 else rng.choice(SPEEDS)
        if rng.random() < 0.35:
            others = [c for c in COLOURS if c != colour and (c, shape) not in taken]
            recolour = (rng.choice(others), round(rng.uniform(appear + 0.2, disappear - 0.2), 2))
        obj = VideoObject(colour, shape, size, motion, speed, appear, disappear, recolour)
        if motion != "still" or appear > 0 or disappear < 1 or recolour is not None:
            return obj


def _draw(rng: random.Random, category: str) -> VideoScene:
    pairs = list(itertools.product(COLOURS, SHAPES))
    if category == "two_moving":
        (c1, s1), (c2, s2) = rng.sample(pairs, 2)
        m1, m2 = rng.sample(DIRECTIONS, 2)
        return VideoScene(category, (VideoObject(c1, s1, "small", m1), VideoObject(c2, s2, "small", m2)))
    if category == "events":
        chosen = rng.sample(pairs, rng.randint(1, 3))
        objects: list[VideoObject] = []
        for colour, shape in chosen:
            taken = set(chosen) | {(o.recolour[0], o.shape) for o in objects if o.recolour}
            size = rng.choice(SIZES) if len(chosen) == 1 else "small"
            objects.append(_draw_event_object(rng, colour, shape, taken, size, len(chosen) == 3))
        return VideoScene(category, tuple(objects))
    colour, shape = rng.choice(pairs)
    size = rng.choice(SIZES)
    if category == "moving":
        obj = VideoObject(colour, shape, size, rng.choice(DIRECTIONS), rng.choice(SPEEDS))
    elif category == "still":
        obj = VideoObject(colour, shape, size)
    elif category == "appearing":
        obj = VideoObject(colour, shape, size, appear=round(rng.uniform(0.3, 0.6), 2))
    else:
        obj = VideoObject(colour, shape, size, disappear=round(rng.uniform(0.4, 0.7), 2))
    return VideoScene(category, (obj,))


def sample_video_scene(rng: random.Random, category: str, split: str | None = None) -> VideoScene:
    """Return a random scene of `category`; with `split`, one whose `VideoScene.split` is that split.

    Still-object categories (still, appearing, disappearing) are always "train"; asking for their
    held-out split raises SceneError("split").

    Times are drawn to two decimals. Events scenes have small objects when there are 2-3 (slow and
    visible throughout when they move among 3), give every object at least one event, keep it
    visible for at least half the clip (a moving one for 0.75, fast when it appears or disappears,
    so that its move is long enough for the checker to see) and change a colour at least 0.2 after
    it appears and before it disappears.
    """
    if category not in VIDEO_CATEGORIES:
        raise _choice_error("category", "category", category, VIDEO_CATEGORIES)
    if split is not None and split not in SPLITS:
        raise _choice_error("split", "split", split, SPLITS)
    if split == "heldout" and category in ("still", "appearing", "disappearing"):
        raise SceneError("split", f"{category} scenes are never held out (a still object has no direction)")
    while True:
        scene = _draw(rng, category)
        if split is None or scene.split == split:
            return scene


def frame_times(frames: int) -> list[float]:
    """Return the clip time of each frame: f / (frames - 1), or 0 for a single frame."""
    return [f / (frames - 1) if frames > 1 else 0.0 for f in range(frames)]


def visibility(scene: VideoScene, frames: int) -> np.ndarray:
    """Return the (frames, n_objects) bool array of which object is visible in which frame."""
    times = frame_times(frames)
    return np.array([[o.visible_at(t) for o in scene.objects] for t in times], dtype=bool).reshape(frames, -1)


class VideoRendering(NamedTuple):
    """A rendered video: RGB frames, per-frame per-object masks and box centres (x, y; NaN while invisible)."""

    frames: np.ndarray  # (F, R, R, 3) uint8
    masks: np.ndarray  # (F, n_objects, R, R) bool
    centres: np.ndarray  # (F, n_objects, 2) float


def _check_size(frames: Any, resolution: Any) -> tuple[int, int]:
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 1:
        raise SceneError("frames", f"expected an int >= 1, got {frames!r}")
    if not isinstance(resolution, (int, np.integer)) or resolution < MIN_RESOLUTION:
        raise SceneError("resolution", f"expected an int >= {MIN_RESOLUTION}, got {resolution!r}")
    return int(frames), int(resolution)


def _offsets(motion: str, speed: str, resolution: int, times: list[float]) -> list[tuple[int, int]]:
    (vx, vy), travel = VELOCITY[motion], SPEED_FRACTION[speed] * resolution
    return [(round(vx * travel * t), round(vy * travel * t)) for t in times]


@functools.lru_cache(maxsize=4096)
def _layout(key: tuple[tuple[int, str, str, float, float], ...], frames: int, resolution: int,
            seed: str) -> tuple[tuple[Box, ...], ...]:
    rng = random.Random(f"video-layout:{resolution}:{frames}:{seed}")
    gap, border = _gap(resolution), max(1, round(0.03 * resolution))
    times = frame_times(frames)
    plans = []  # per object: side, x range, y range, per-frame offsets, per-frame visibility
    for i, (side, motion, speed, appear, disappear) in enumerate(key):
        offsets = _offsets(motion, speed, resolution, times)
        ends = _offsets(motion, speed, resolution, [0.0, 1.0]) + offsets  # inside for the whole clip
        xs, ys = [o[0] for o in ends], [o[1] for o in ends]
        x_range = (border - min(xs), resolution - border - side - max(xs))
        y_range = (border - min(ys), resolution - border - side - max(ys))
        if x_range[0] > x_range[1] or y_range[0] > y_range[1]:
            raise SceneError(f"objects[{i}]", f"cannot keep a {motion} object inside at resolution {resolution}")
        shown = [appear <= t and (t < disappear or disappear >= 1.0) for t in times]
        plans.append((side, x_range, y_range, offsets, shown))
    for _ in range(1000):
        placed: list[list[Box]] = []
        for side, (x_lo, x_hi), (y_lo, y_hi), offsets, shown in plans:
            for _ in range(50):
                x0, y0 = rng.randint(x_lo, x_hi), rng.randint(y_lo, y_hi)
                boxes = [(x0 + dx, y0 + dy, side) for dx, dy in offsets]
                if all(_apart(boxes[f], other[f], gap) for j, other in enumerate(placed)
                       for f in range(frames) if shown[f] and plans[j][4][f]):
                    placed.append(boxes)
                    break
            else:
                break
        if len(placed) == len(plans):
            return tuple(tuple(boxes) for boxes in placed)
    raise SceneError("objects", f"cannot place {len(plans)} moving objects apart at resolution {resolution}")


def video_layout(scene: VideoScene, frames: int = 8, resolution: int = 32, seed: Any = 0) -> list[tuple[Box, ...]]:
    """Return, per object, its (x0, y0, side) box at every frame (also where it is invisible).

    Each object moves linearly (offset from its start rounded to whole pixels at each frame), stays
    inside the border for the whole clip, and is at least the gap away from every object visible in
    the same frame; the start positions are drawn from random.Random(f"video-layout:...") by rejection.
    """
    frames, resolution = _check_size(frames, resolution)
    key = tuple((object_side(o.size, resolution), o.motion, o.speed, o.appear, o.disappear) for o in scene.objects)
    return list(_layout(key, frames, resolution, str(seed)))


@functools.lru_cache(maxsize=64)
def _patch(shape: str, side: int) -> np.ndarray:
    patch = shape_mask(shape, (0, 0, side), side)
    patch.flags.writeable = False
    return patch


def render_video(scene: VideoScene, frames: int = 8, resolution: int = 32, seed: Any = 0) -> VideoRendering:
    """Return the scene drawn as `frames` frames at `resolution` (image.py's look), its masks and box centres."""
    frames, resolution = _check_size(frames, resolution)
    boxes = video_layout(scene, frames, resolution, seed)
    times = frame_times(frames)
    n = len(scene.objects)
    video = np.empty((frames, resolution, resolution, 3), dtype=np.uint8)
    video[:] = BACKGROUND
    masks = np.zeros((frames, n, resolution, resolution), dtype=bool)
    centres = np.full((frames, n, 2), np.nan)
    for i, obj in enumerate(scene.objects):
        for f, t in enumerate(times):
            if not obj.visible_at(t):
                continue
            x0, y0, side = boxes[i][f]
            patch = _patch(obj.shape, side)
            masks[f, i, y0:y0 + side, x0:x0 + side] = patch
            video[f, y0:y0 + side, x0:x0 + side][patch] = COLOURS[obj.colour_at(t)]
            centres[f, i] = (x0 + side / 2, y0 + side / 2)
    return VideoRendering(video, masks, centres)
