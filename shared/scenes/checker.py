"""Object-level checker: detect palette-coloured shapes in an image and answer GenEval-style object questions.

Colour: a pixel belongs to the palette colour whose blend line with the background (background ->
colour) passes closest to it, when it lies at least half-way along that line and within
`COLOUR_THRESHOLD` of it; other pixels belong to nothing. Blur mixes an object with the
background along that line, so the half-way contour of a blurred object stays near its edge.
Objects: each colour's pixels split into 8-connected components (scipy.ndimage), holes filled;
components smaller than `MIN_AREA` or with a side over `MAX_SIDE` (fractions of the image) are
dropped. Shape, from the component's bounding box: not square-ish or too sparse -> none;
centroid off the box centre -> triangle (any of four orientations); else by fill ratio, square
(~1.0) or circle (~0.79). Size: large when the longer box side exceeds the midpoint of the
renderer's two sizes.

Questions (GenEval's): `exists` (at least one), `count` (exactly n) and `position` (GenEval's
relative-position rule on bounding boxes, true when some pair of matching objects satisfies it).
`checker_accuracy` measures all of this against the renderer's ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from scipy import ndimage

from shared.scenes.image import BACKGROUND, COLOURS, NUMBERS, RELATIONS, SHAPES, SIZE_FRACTION, Scene, render

COLOUR_THRESHOLD = 60.0  # RGB distance to a colour's background blend line; the lines are >= 71 apart at mid-blend
MIN_AREA = 0.012  # of the image area: 12 px at 32 px, 49 px at 64 px
MAX_SIDE = 0.75  # of the image side: larger regions are not objects
MIN_ASPECT = 0.6  # bounding box: every shape is about as wide as high
MIN_FILL = 0.4
TRIANGLE_OFFSET = 0.05  # centroid off the box centre: a triangle in any of four orientations (~0.17 when sharp)
SQUARE_FILL = 0.88  # square ~1.0, circle ~0.79
CIRCLE_FILL = 0.65  # circle ~0.79 (lower when blurred), a symmetric shape below is none of ours
POSITION_THRESHOLD = 0.1  # GenEval's
LARGE_SIDE = (SIZE_FRACTION["small"] + SIZE_FRACTION["large"]) / 2
IMAGE_SIDES = (16, 1024)  # accepted image sides; the renderer draws from 32 up
KINDS = ("exists", "count", "position")
OPPOSITE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}

_BACKGROUND = np.array(BACKGROUND, dtype=np.float32)
_DIRECTIONS = np.array(list(COLOURS.values()), dtype=np.float32) - _BACKGROUND
_NAMES = list(COLOURS)


class ImageError(ValueError):
    """An input that is not an RGB uint8 image of a supported size."""


@dataclass(frozen=True, eq=False)
class Detection:
    """One detected object: colour, shape (None when it is none of SHAPES), size, bounding box, centroid and mask."""

    colour: str
    shape: str | None
    size: str
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive)
    centroid: tuple[float, float]  # x, y of the mask's pixel centres
    mask: np.ndarray

    @property
    def centre(self) -> tuple[float, float]:
        """Return the bounding box's centre (x, y), the point GenEval's position rule uses."""
        x0, y0, x1, y1 = self.box
        return ((x0 + x1) / 2, (y0 + y1) / 2)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready summary (no mask)."""
        return {"colour": self.colour, "shape": self.shape, "size": self.size, "box": list(self.box),
                "centroid": [round(c, 2) for c in self.centroid]}


def _box(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def make_detection(mask: np.ndarray, colour: str, shape: str | None, size: str | None = None) -> Detection:
    """Return the Detection of a boolean mask with the given labels (size from the mask when None)."""
    x0, y0, x1, y1 = _box(mask)
    if size is None:
        size = "large" if max(x1 - x0, y1 - y0) > LARGE_SIDE * mask.shape[0] else "small"
    ys, xs = np.nonzero(mask)
    return Detection(colour, shape, size, (x0, y0, x1, y1), (float(xs.mean()) + 0.5, float(ys.mean()) + 0.5), mask)


def shape_features(crop: np.ndarray) -> tuple[float, float, float]:
    """Return (aspect, fill, offset) of a mask cropped to its bounding box.

    aspect: shorter / longer side; fill: area / box area; offset: the centroid's largest distance
    from the box centre as a fraction of the box side (~0.17 for a triangle, 0 for symmetric shapes).
    """
    h, w = crop.shape
    ys, xs = np.nonzero(crop)
    offset = max(abs((xs.mean() + 0.5) / w - 0.5), abs((ys.mean() + 0.5) / h - 0.5)) if len(xs) else 0.0
    return min(h, w) / max(h, w), float(crop.sum() / (h * w)), float(offset)


def classify_shape(crop: np.ndarray) -> str | None:
    """Return the shape of a mask cropped to its bounding box, or None when it is none of them."""
    aspect, fill, offset = shape_features(crop)
    if aspect < MIN_ASPECT or fill < MIN_FILL:
        return None
    if offset >= TRIANGLE_OFFSET:
        return "triangle"
    if fill >= SQUARE_FILL:
        return "square"
    return "circle" if fill >= CIRCLE_FILL else None


def as_image(image: Any) -> np.ndarray:
    """Return `image` as a square (S, S, 3) uint8 array, S in IMAGE_SIDES; raise ImageError saying what is wrong."""
    try:
        array = np.asarray(image)
    except Exception as exc:
        raise ImageError(f"not an array: {type(exc).__name__}") from None
    if array.dtype != np.uint8:
        raise ImageError(f"expected dtype uint8, got {array.dtype}")
    lo, hi = IMAGE_SIDES
    square = array.ndim == 3 and array.shape[2] == 3 and array.shape[0] == array.shape[1]
    if not square or not lo <= array.shape[0] <= hi:
        raise ImageError(f"expected shape (S, S, 3) with {lo} <= S <= {hi}, got {tuple(array.shape)}")
    return array


def detect(image: Any) -> list[Detection]:
    """Return the objects in an RGB uint8 image (by palette colour, then raster order); ImageError on a non-image."""
    image = as_image(image)
    side = image.shape[0]
    offset = image.astype(np.float32) - _BACKGROUND
    t = offset @ _DIRECTIONS.T / (_DIRECTIONS**2).sum(axis=1)
    residual = np.linalg.norm(offset[:, :, None, :] - t[..., None] * _DIRECTIONS, axis=-1)
    residual[t < 0.5] = np.inf
    nearest = residual.argmin(axis=-1)
    close = residual.min(axis=-1) <= COLOUR_THRESHOLD
    out = []
    for index, colour in enumerate(_NAMES):
        labels, _ = ndimage.label((nearest == index) & close, structure=np.ones((3, 3), dtype=bool))
        for k, (rows, cols) in enumerate(ndimage.find_objects(labels), start=1):
            crop = ndimage.binary_fill_holes(labels[rows, cols] == k)
            if crop.sum() < MIN_AREA * side * side or max(crop.shape) > MAX_SIDE * side:
                continue
            mask = np.zeros((side, side), dtype=bool)
            mask[rows, cols] = crop
            out.append(make_detection(mask, colour, classify_shape(crop)))
    return out


@dataclass(frozen=True)
class Target:
    """What a question looks for: a shape, optionally of one colour."""

    shape: str
    colour: str | None = None

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"unknown shape {self.shape!r} (expected one of {', '.join(SHAPES)})")
        if self.colour is not None and self.colour not in COLOURS:
            raise ValueError(f"unknown colour {self.colour!r} (expected one of {', '.join(COLOURS)})")

    @property
    def phrase(self) -> str:
        """Return "red circle" (or "circle" without a colour)."""
        return f"{self.colour} {self.shape}" if self.colour else self.shape

    def matches(self, detection: Detection) -> bool:
        """Return whether the detection is this shape (and colour)."""
        return detection.shape == self.shape and (self.colour is None or detection.colour == self.colour)


@dataclass(frozen=True)
class Question:
    """A yes/no object question: exists(target), count(target, n) or position(target, relation, other)."""

    kind: str
    target: Target
    n: int | None = None
    relation: str | None = None
    other: Target | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown question kind {self.kind!r} (expected one of {', '.join(KINDS)})")
        if (self.kind == "count") != (self.n is not None) or (self.n is not None and self.n < 0):
            raise ValueError("a count question, and only one, needs n >= 0")
        if (self.kind == "position") != (self.relation is not None and self.other is not None):
            raise ValueError("a position question, and only one, needs a relation and another target")
        if self.relation is not None and self.relation not in RELATIONS:
            raise ValueError(f"unknown relation {self.relation!r} (expected one of {', '.join(RELATIONS)})")

    @classmethod
    def exists(cls, shape: str, colour: str | None = None) -> Question:
        """Return "Is there a (colour) shape?"."""
        return cls("exists", Target(shape, colour))

    @classmethod
    def count(cls, shape: str, n: int, colour: str | None = None) -> Question:
        """Return "Are there exactly n (colour) shapes?"."""
        return cls("count", Target(shape, colour), n=n)

    @classmethod
    def position(cls, a: Target, relation: str, b: Target) -> Question:
        """Return "Is the a <relation> the b?"."""
        return cls("position", a, relation=relation, other=b)

    @property
    def text(self) -> str:
        """Return the question in English."""
        if self.kind == "exists":
            return f"Is there a {self.target.phrase}?"
        if self.kind == "count":
            return f"Are there exactly {NUMBERS.get(self.n, self.n)} {self.target.phrase}s?"
        return f"Is the {self.target.phrase} {self.relation} the {self.other.phrase}?"  # type: ignore[union-attr]


def relative_position(a: Detection, b: Detection) -> set[str]:
    """Return the relations of a to b by GenEval's rule: box-centre offset shrunk by 0.1 of the summed sides."""
    (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = a.box, b.box
    offset = np.subtract(a.centre, b.centre)
    dims = np.array([ax1 - ax0 + bx1 - bx0, ay1 - ay0 + by1 - by0], dtype=float)
    revised = np.maximum(np.abs(offset) - POSITION_THRESHOLD * dims, 0) * np.sign(offset)
    if np.all(np.abs(revised) < 1e-3):
        return set()
    dx, dy = revised / np.linalg.norm(offset)
    tests = (("left of", dx < -0.5), ("right of", dx > 0.5), ("above", dy < -0.5), ("below", dy > 0.5))
    return {name for name, holds in tests if holds}


def answer(question: Question, detections: Sequence[Detection]) -> bool:
    """Return the answer to the question about these detections."""
    found = [d for d in detections if question.target.matches(d)]
    if question.kind == "exists":
        return bool(found)
    if question.kind == "count":
        return len(found) == question.n
    others = [d for d in detections if question.other.matches(d)]  # type: ignore[union-attr]
    return any(question.relation in relative_position(a, b) for a in found for b in others if a is not b)


def questions_of(scene: Scene) -> list[Question]:
    """Return the questions the scene's prompt implies: each named object exists (counting: exactly n), the relation."""
    if scene.category == "counting":
        first = scene.objects[0]
        return [Question.count(first.shape, len(scene.objects), first.colour)]
    questions = [Question.exists(o.shape, o.colour) for o in scene.objects]
    if scene.category == "position":
        a, b = (Target(o.shape, o.colour) for o in scene.objects)
        questions.append(Question.position(a, scene.relation, b))  # type: ignore[arg-type]
    return questions


def check(image: Any, scene: Scene) -> dict[str, Any]:
    """Return the checker's verdict on an image for a scene; never raises on a bad image.

    Keys: `valid` (False when the input is not an RGB uint8 image), `reason` ("" when every
    question passes, else why not), `passed` (every question answered yes), `score` (fraction of
    questions answered yes), `answers` ([{question, kind, answer}]) and `objects` (detections).
    """
    questions = questions_of(scene)
    try:
        detections = detect(image)
    except ImageError as exc:
        answers = [{"question": q.text, "kind": q.kind, "answer": False} for q in questions]
        return {"valid": False, "reason": str(exc), "passed": False, "score": 0.0, "answers": answers,
                "objects": []}
    answers = [{"question": q.text, "kind": q.kind, "answer": answer(q, detections)} for q in questions]
    failed = [a["question"] for a in answers if not a["answer"]]
    reason = "" if not failed else ("no objects detected" if not detections else f"no to: {failed[0]}")
    return {"valid": True, "reason": reason, "passed": not failed, "score": 1 - len(failed) / len(answers),
            "answers": answers, "objects": [d.to_dict() for d in detections]}


def corrupt(image: np.ndarray, rng: np.random.Generator, noise: float = 0.0, blur: float = 0.0) -> np.ndarray:
    """Return the image blurred (Gaussian, sigma `blur` pixels), then with Gaussian noise (std `noise`, of 255)."""
    out = image.astype(np.float32)
    if blur > 0:
        out = ndimage.gaussian_filter(out, sigma=(blur, blur, 0))
    if noise > 0:
        out = out + rng.normal(0.0, noise, out.shape)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def contrasts(question: Question, scene: Scene) -> list[Question]:
    """Return near misses of a question: the opposite relation; n - 1 and n + 1; for exists, each other colour
    and shape of the scene and the next ones in palette order (binding swaps among them)."""
    t = question.target
    if question.kind == "position":
        return [Question.position(t, OPPOSITE[question.relation], question.other)]  # type: ignore[arg-type, index]
    if question.kind == "count":
        n = question.n or 0
        return [Question.count(t.shape, m, t.colour) for m in (n - 1, n + 1) if m >= 1]
    colours, shapes = {o.colour for o in scene.objects}, {o.shape for o in scene.objects} | {_next(SHAPES, t.shape)}
    if t.colour is not None:
        colours.add(_next(tuple(COLOURS), t.colour))
    return [Question.exists(t.shape, c) for c in sorted(colours - {t.colour}) if t.colour is not None] + [
        Question.exists(s, t.colour) for s in sorted(shapes - {t.shape})
    ]


def _next(names: tuple[str, ...], name: str) -> str:
    return names[(names.index(name) + 1) % len(names)]


def checker_accuracy(scenes: Sequence[Scene], resolution: int = 32, seeds: Sequence[int] = (0,),
                     noise: float = 0.0, blur: float = 0.0) -> dict[str, Any]:
    """Return the checker's per-question accuracy on renders of the scenes against the renderer's ground truth.

    Each scene i is rendered once per seed s (render seed `s * len(scenes) + i`), optionally
    corrupted (`corrupt` with the same seed); its questions (`questions_of`, true by construction)
    and their `contrasts` (mostly false) are answered on the detections and on the ground truth
    (the renderer's masks and labels). Keys: `overall`, `positive` (on the scene's own questions),
    `contrast`, `by_category`, `pass_rate` (images whose every own question is answered yes),
    `n_questions`.
    """
    hits: dict[str, list[bool]] = {"positive": [], "contrast": []}
    by_category: dict[str, list[bool]] = {}
    passed = []
    for s in seeds:
        for i, scene in enumerate(scenes):
            seed = s * len(scenes) + i
            rendering = render(scene, resolution, seed)
            truth = [make_detection(m, o.colour, o.shape, o.size) for o, m in zip(scene.objects, rendering.masks)]
            image = corrupt(rendering.image, np.random.default_rng(seed), noise, blur)
            found = detect(image)
            own = questions_of(scene)
            passed.append(all(answer(q, found) for q in own))
            for group, questions in (("positive", own), ("contrast", [c for q in own for c in contrasts(q, scene)])):
                for q in questions:
                    ok = answer(q, found) == answer(q, truth)
                    hits[group].append(ok)
                    by_category.setdefault(scene.category, []).append(ok)

    def mean(xs: list[bool]) -> float:
        return float(np.mean(xs)) if xs else float("nan")

    return {"overall": mean(hits["positive"] + hits["contrast"]), "positive": mean(hits["positive"]),
            "contrast": mean(hits["contrast"]), "by_category": {c: mean(v) for c, v in by_category.items()},
            "pass_rate": mean(passed), "n_questions": len(hits["positive"]) + len(hits["contrast"])}
