"""Video checker: track palette-coloured shapes across frames and score a video against its video scene.

Tracking: `checker.detect` on every frame (identical frames are detected once), detections of no
shape dropped; within a frame, detection-track pairs of the same colour and shape are linked
greedily, nearest centroid first (the track's last centroid, within `LINK_DISTANCE` of the image
side); a detection left over starts a track. A track is one colour, so an object that changes
colour leaves two.

Scoring (`check_video`): each scene object is split into segments of constant colour (the frames
where it should be visible with that colour, at the video's frame count); segments and tracks of
the same shape are matched one to one, greedily, tracks of the segment's colour first, then by
the number of frames they share. An object is found (`object`) when its matched tracks cover at
least half its visible frames, found in colour (`colour`) when the tracks of the right colour
do; its centre path is its matched tracks' centroids over its segments' frames, from which
`motion` (net displacement) and `smoothness` (second differences) are read. `consistency` counts
the frames whose set of detected (colour, shape) is what the scene shows then, up to one frame of
slack around every appear / disappear / colour change. `corrupt_video` makes the failures the
scores should catch; `checker_accuracy_video` measures both on renders.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np

from shared.scenes.checker import IMAGE_SIDES, Detection, detect
from shared.scenes.image import BACKGROUND, COLOURS
from shared.scenes.video import VELOCITY, VideoScene, frame_times, render_video

LINK_DISTANCE = 0.35  # of the image side: the furthest a track's last centroid may be from its next detection
STILL_DISTANCE = 0.08  # of the side: a still object's largest net displacement
MOVE_DISTANCE = 0.1  # of the side: a moving object's smallest net displacement along its direction
SMOOTH_SCALE = 0.25  # of the side: the mean second difference that scores smoothness 0
SMOOTH_PASS = 0.8
DIMENSIONS = ("object", "colour", "motion", "consistency", "smoothness")
CORRUPTIONS = ("none", "noise", "shuffle", "freeze", "reverse", "drop_object")
NOISE_STD = 64.0  # of 255: Gaussian pixel noise of the "noise" corruption


class VideoError(ValueError):
    """An input that cannot be read as a video (one-line message)."""


@dataclass
class Track:
    """One object followed across frames: colour, shape, majority size, frame indices and centroids (x, y)."""

    colour: str
    shape: str
    size: str = "large"
    frames: list[int] = field(default_factory=list)
    centres: list[tuple[float, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready dict (centres rounded to 0.01 px)."""
        return {"colour": self.colour, "shape": self.shape, "size": self.size, "frames": list(self.frames),
                "centres": [[round(x, 2), round(y, 2)] for x, y in self.centres]}


def as_video(video: Any) -> np.ndarray:
    """Return `video` as an (F, S, S, 3) uint8 array, S in checker.IMAGE_SIDES; raise VideoError saying what is wrong.

    Accepts (F, H, W, 3) or one (H, W, 3) frame: uint8 as is, other integers clipped to [0, 255],
    booleans as 0 / 255, floats as [0, 1] (NaN -> 0, clipped, rounded).
    """
    try:
        array = np.asarray(video)
    except Exception as exc:
        raise VideoError(f"not an array: {type(exc).__name__}") from None
    if array.dtype.kind not in "biufc":
        raise VideoError(f"expected a numeric array, got dtype {array.dtype}")
    if array.ndim == 3:
        array = array[None]
    lo, hi = IMAGE_SIDES
    if array.ndim != 4 or array.shape[-1] != 3:
        raise VideoError(f"expected shape (F, S, S, 3) or (S, S, 3), got {tuple(np.shape(video))}")
    if array.shape[0] == 0:
        raise VideoError("expected at least one frame, got 0")
    if array.shape[1] != array.shape[2] or not lo <= array.shape[1] <= hi:
        raise VideoError(f"expected square frames of side {lo} to {hi}, got {array.shape[1]}x{array.shape[2]}")
    if array.dtype == np.uint8:
        return array
    if array.dtype.kind == "c":
        array = array.real
    if array.dtype.kind == "b":
        return array.astype(np.uint8) * 255
    if array.dtype.kind in "iu":
        return np.clip(array, 0, 255).astype(np.uint8)
    clean = np.nan_to_num(array.astype(np.float64), nan=0.0, posinf=1.0, neginf=0.0)
    return np.rint(np.clip(clean, 0.0, 1.0) * 255).astype(np.uint8)


def _detect_frames(video: np.ndarray) -> list[list[Detection]]:
    cache: dict[bytes, list[Detection]] = {}
    out = []
    for frame in video:
        key = frame.tobytes()
        if key not in cache:
            cache[key] = [d for d in detect(frame) if d.shape is not None]
        out.append(cache[key])
    return out


def _link(per_frame: list[list[Detection]], side: int) -> list[Track]:
    tracks: list[Track] = []
    sizes: list[list[str]] = []
    for f, detections in enumerate(per_frame):
        pairs = []
        for d_index, d in enumerate(detections):
            for t_index, t in enumerate(tracks):
                if (t.colour, t.shape) == (d.colour, d.shape):
                    distance = float(np.hypot(*np.subtract(d.centroid, t.centres[-1])))
                    if distance <= LINK_DISTANCE * side:
                        pairs.append((distance, d_index, t_index))
        used_d, used_t = set(), set()
        for _, d_index, t_index in sorted(pairs):
            if d_index not in used_d and t_index not in used_t:
                used_d.add(d_index)
                used_t.add(t_index)
                tracks[t_index].frames.append(f)
                tracks[t_index].centres.append(detections[d_index].centroid)
                sizes[t_index].append(detections[d_index].size)
        for d_index, d in enumerate(detections):
            if d_index not in used_d:
                tracks.append(Track(d.colour, d.shape, d.size, [f], [d.centroid]))  # type: ignore[arg-type]
                sizes.append([d.size])
    for t, s in zip(tracks, sizes):
        t.size = collections.Counter(s).most_common(1)[0][0]
    return tracks


def track(video: Any) -> list[Track]:
    """Return the tracks of the objects in a video (see the module docstring); VideoError on a non-video."""
    video = as_video(video)
    return _link(_detect_frames(video), video.shape[1])


@dataclass
class _Segment:
    index: int  # scene object
    colour: str
    shape: str
    frames: list[int]
    tracks: list[Track] = field(default_factory=list)

    def covered(self, right_colour: bool = False) -> set[int]:
        """Return the segment's frames its tracks (of its colour only, when asked) are seen in."""
        seen = {f for t in self.tracks if not right_colour or t.colour == self.colour for f in t.frames}
        return seen & set(self.frames)


def _segments(scene: VideoScene, n_frames: int) -> list[_Segment]:
    times = frame_times(n_frames)
    out = []
    for i, o in enumerate(scene.objects):
        by_colour: dict[str, list[int]] = {}
        for f, t in enumerate(times):
            if o.visible_at(t):
                by_colour.setdefault(o.colour_at(t), []).append(f)
        out.extend(_Segment(i, c, o.shape, fs) for c, fs in by_colour.items())
    return out


def _match(segments: list[_Segment], tracks: list[Track]) -> None:
    """Give each segment its tracks: one to one first, then leftover tracks that fill frames it lacks."""
    pairs = []
    for s_index, s in enumerate(segments):
        for t_index, t in enumerate(tracks):
            shared = len(set(s.frames) & set(t.frames))
            if t.shape == s.shape and shared:
                pairs.append((t.colour != s.colour, -shared, s_index, t_index))
    used_s, used_t = set(), set()
    for _, _, s_index, t_index in sorted(pairs):
        if s_index not in used_s and t_index not in used_t:
            used_s.add(s_index)
            used_t.add(t_index)
            segments[s_index].tracks.append(tracks[t_index])
    # a track broken by a colour change or a jump: a leftover piece joins the segment whose gap it fills
    for t_index in sorted(set(range(len(tracks))) - used_t, key=lambda k: -len(tracks[k].frames)):
        t, candidates = tracks[t_index], []
        for s_index, s in enumerate(segments):
            seen, mine = {f for u in s.tracks for f in u.frames}, set(t.frames)
            gain = len((mine & set(s.frames)) - seen)
            if t.shape == s.shape and gain and not mine & seen:
                candidates.append((t.colour == s.colour, gain, -s_index))
        if candidates:
            segments[-max(candidates)[2]].tracks.append(t)


def _path(segments: list[_Segment]) -> dict[int, tuple[float, float]]:
    """Return frame -> centroid of an object's matched tracks over its segments' frames."""
    path = {}
    for s in segments:
        wanted = set(s.frames)
        for t in s.tracks:
            path.update({f: c for f, c in zip(t.frames, t.centres) if f in wanted})
    return dict(sorted(path.items()))


def _moved_as_told(motion: str, path: dict[int, tuple[float, float]], side: int) -> bool:
    if not path:
        return False
    points = list(path.values())
    dx, dy = np.subtract(points[-1], points[0])
    if motion == "still":
        return bool(np.hypot(dx, dy) <= STILL_DISTANCE * side)
    vx, vy = VELOCITY[motion]
    along, off = (dx * vx, dy) if vx else (dy * vy, dx)
    return bool(along >= MOVE_DISTANCE * side and along > abs(off))


def _second_differences(path: dict[int, tuple[float, float]]) -> list[float]:
    return [float(np.hypot(*(np.subtract(path[f + 2], path[f + 1]) - np.subtract(path[f + 1], path[f]))))
            for f in path if f + 1 in path and f + 2 in path]


def _consistency(scene: VideoScene, per_frame: list[list[Detection]]) -> float:
    n = len(per_frame)
    times = frame_times(n)
    shown = [{(o.colour_at(t), o.shape) for o in scene.objects if o.visible_at(t)} for t in times]
    ok = 0
    for f, detections in enumerate(per_frame):
        near = [shown[g] for g in range(max(0, f - 1), min(n, f + 2))]
        required, allowed = set.intersection(*near), set.union(*near)
        ok += required <= {(d.colour, d.shape) for d in detections} <= allowed
    return ok / n


def _verdict(scores: dict[str, float], **extra: Any) -> dict[str, Any]:
    passed = (all(scores[k] == 1.0 for k in DIMENSIONS[:4]) and scores["smoothness"] >= SMOOTH_PASS
              and extra.get("valid", True) and extra.get("frames_ok", True))
    return {**scores, "passed": bool(passed), **extra}


def check_video(video: Any, scene: VideoScene, frames_expected: int | None = None) -> dict[str, Any]:
    """Return the checker's verdict on a video for a scene; never raises on a numeric array.

    Keys: the `DIMENSIONS` scores in [0, 1] (see the module docstring); `passed` (object, colour,
    motion and consistency all 1, smoothness >= 0.8, a readable video of `frames_expected` frames
    when given); `valid` (False, with every score 0, when the array is not a video); `reason` (""
    when passed, else the first failure); `frames` (the video's frame count); `frames_ok`; `tracks`.
    Only input that is not a numeric array raises VideoError.
    """
    try:
        array = as_video(video)
    except VideoError as exc:
        try:
            kind = np.asarray(video).dtype.kind
        except Exception:
            kind = "O"
        if kind not in "biufc":
            raise
        return _verdict(dict.fromkeys(DIMENSIONS, 0.0), valid=False, reason=str(exc), frames=0, frames_ok=False,
                        tracks=[])
    n, side = array.shape[0], array.shape[1]
    per_frame = _detect_frames(array)
    tracks = _link(per_frame, side)
    segments = _segments(scene, n)
    _match(segments, tracks)
    found, coloured, moved, steps = [], [], [], []
    for i, o in enumerate(scene.objects):
        mine = [s for s in segments if s.index == i]
        visible = sum(len(s.frames) for s in mine)  # 0: never on screen at this frame count, nothing to find
        hit = sum(len(s.covered()) for s in mine)
        right = sum(len(s.covered(right_colour=True)) for s in mine)
        path = _path(mine)
        found.append(hit >= visible / 2)
        coloured.append(right >= visible / 2)
        moved.append(_moved_as_told(o.motion, path, side) if visible else True)
        steps.extend(_second_differences(path))
    smoothness = float(np.clip(1 - np.mean(steps) / (SMOOTH_SCALE * side), 0, 1)) if steps else 0.0
    scores = {"object": float(np.mean(found)), "colour": float(np.mean(coloured)), "motion": float(np.mean(moved)),
              "consistency": _consistency(scene, per_frame), "smoothness": smoothness}
    frames_ok = frames_expected is None or n == frames_expected
    reason = "" if frames_ok else f"expected {frames_expected} frames, got {n}"
    for name in DIMENSIONS:
        low = scores[name] < (SMOOTH_PASS if name == "smoothness" else 1.0)
        if low and not reason:
            reason = "no objects tracked" if not tracks else f"{name} {scores[name]:.2f}"
    return _verdict(scores, valid=True, reason=reason, frames=n, frames_ok=frames_ok,
                    tracks=[t.to_dict() for t in tracks])


def corrupt_video(frames: np.ndarray, rng: np.random.Generator, kind: str, masks: np.ndarray | None = None,
                  index: int | None = None, noise: float = NOISE_STD) -> np.ndarray:
    """Return a corrupted copy of (F, H, W, 3) uint8 frames, to validate the checker.

    Kinds: "none"; "noise" (Gaussian pixel noise of std `noise`, of 255); "shuffle" (a random
    permutation of the frames, neither the identity nor the reversal when there are other ones);
    "freeze" (the first frame throughout); "reverse"; "drop_object" (object `index`, random when
    None, painted with the background: needs the rendering's (F, n_objects, H, W) `masks`).
    """
    frames = np.asarray(frames)
    n = frames.shape[0]
    if kind == "none":
        return frames.copy()
    if kind == "noise":
        return np.clip(np.rint(frames.astype(np.float32) + rng.normal(0.0, noise, frames.shape)), 0, 255).astype(
            np.uint8)
    if kind == "shuffle":
        order = np.arange(n)
        if n >= 2:
            banned = [list(range(n)), list(range(n))[::-1]] if n > 2 else [list(range(n))]
            while order.tolist() in banned:
                order = rng.permutation(n)
        return frames[order]
    if kind == "freeze":
        return np.repeat(frames[:1], n, axis=0)
    if kind == "reverse":
        return frames[::-1].copy()
    if kind == "drop_object":
        if masks is None or masks.ndim != 4 or masks.shape[0] != n or masks.shape[1] == 0:
            raise ValueError("drop_object needs the rendering's (F, n_objects, H, W) masks")
        index = int(rng.integers(masks.shape[1])) if index is None else index
        out = frames.copy()
        out[masks[:, index]] = BACKGROUND
        return out
    raise ValueError(f"unknown corruption {kind!r} (expected one of {', '.join(CORRUPTIONS)})")


def miscolour(scene: VideoScene, index: int = 0) -> VideoScene:
    """Return the scene with object `index` in the next palette colour that keeps the scene valid."""
    names = list(COLOURS)
    obj = scene.objects[index]
    others = {o.pair for j, o in enumerate(scene.objects) if j != index}
    for step in range(1, len(names)):
        colour = names[(names.index(obj.colour) + step) % len(names)]
        if (colour, obj.shape) not in others and (obj.recolour is None or obj.recolour[0] != colour):
            objects = list(scene.objects)
            objects[index] = replace(obj, colour=colour)
            return VideoScene(scene.category, tuple(objects))
    raise ValueError("no other colour fits")  # unreachable with six colours and at most three objects


def checker_accuracy_video(scenes: Sequence[VideoScene], frames: int = 8, resolution: int = 32,
                           seeds: Sequence[int] = (0,), kinds: Sequence[str] | None = None) -> dict[str, Any]:
    """Return the checker's pass rate on clean renders and its mean scores under each corruption.

    Scene i is rendered once per seed s (render seed `s * len(scenes) + i`) and checked clean, under
    each of `kinds` (default: every `CORRUPTIONS` kind but "none", then "miscolour"; a numpy
    generator seeded by the render seed) where "miscolour" checks the clean video against
    `miscolour(scene)` (one object in another colour). Keys:
    `n_videos`, `pass_rate`, `pass_rate_by_category`, `clean` ({dimension: mean}), `corruptions`
    ({kind: {dimension: mean}}) and `corruptions_by_category` ({kind: {category: {dimension: mean}}}).
    """
    kinds = [k for k in CORRUPTIONS if k != "none"] + ["miscolour"] if kinds is None else list(kinds)
    for kind in kinds:
        if kind not in CORRUPTIONS + ("miscolour",):
            raise ValueError(f"unknown corruption {kind!r} (expected one of {', '.join(CORRUPTIONS)}, miscolour)")
    passed: dict[str, list[bool]] = {}
    scores: dict[str, dict[str, list[dict[str, Any]]]] = {k: {} for k in ["clean"] + kinds}
    for s in seeds:
        for i, scene in enumerate(scenes):
            seed = s * len(scenes) + i
            rendering = render_video(scene, frames, resolution, seed)
            rng = np.random.default_rng(seed)
            verdict = check_video(rendering.frames, scene, frames)
            passed.setdefault(scene.category, []).append(verdict["passed"])
            scores["clean"].setdefault(scene.category, []).append(verdict)
            for kind in kinds:
                if kind == "miscolour":
                    verdict = check_video(rendering.frames, miscolour(scene), frames)
                else:
                    verdict = check_video(corrupt_video(rendering.frames, rng, kind, rendering.masks), scene, frames)
                scores[kind].setdefault(scene.category, []).append(verdict)

    def means(verdicts: list[dict[str, Any]]) -> dict[str, float]:
        return {d: float(np.mean([v[d] for v in verdicts])) for d in DIMENSIONS}

    def flat(kind: str) -> list[dict[str, Any]]:
        return [v for vs in scores[kind].values() for v in vs]

    return {"n_videos": sum(len(v) for v in passed.values()),
            "pass_rate": float(np.mean([p for ps in passed.values() for p in ps])) if passed else float("nan"),
            "pass_rate_by_category": {c: float(np.mean(ps)) for c, ps in passed.items()},
            "clean": means(flat("clean")) if passed else {},
            "corruptions": {k: means(flat(k)) for k in kinds} if passed else {},
            "corruptions_by_category": {k: {c: means(vs) for c, vs in scores[k].items()} for k in kinds}}
