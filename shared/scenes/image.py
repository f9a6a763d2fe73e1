"""Compositional scenes: scene graphs, their prompts, a procedural renderer and a split by composition.

A scene is 1-4 flat objects (colour, shape, size) on a plain light background, in one of six
GenEval-like categories; every prompt names the colour of every object, so that the train /
held-out split can be made by (colour, shape) combination:

    category       objects                                   prompt
    single_object  1                                         a photo of a red circle
    two_objects    2, same colour, different shapes          a photo of a red circle and a red square
    counting       2-4 identical (colour, shape)             a photo of three blue squares
    colors         2, same shape, different colours          a photo of a red circle and a blue circle
    position       2, different (colour, shape), a relation  a photo of a red circle left of a blue square
    color_attr     2, different colours and shapes           a photo of a red circle and a blue square

Sizes (small / large) vary the renders but are not named in prompts. `render` is deterministic
in (scene, resolution, seed): objects never overlap (at least `gap` background pixels between
bounding boxes), and in a position scene `objects[0]` lies `relation` of `objects[1]` with its
bounding box fully past the other's along the relation's axis and at most half as far off it.
The layout depends on the seed, the sizes and the relation, never on colours or shapes, so a scene
and its attribute-swapped negative (OSPO) render with their objects in the same places.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 160, 50),
    "blue": (30, 60, 230),
    "yellow": (240, 200, 20),
    "purple": (170, 40, 190),
    "cyan": (20, 200, 200),
}
BACKGROUND: tuple[int, int, int] = (240, 240, 240)
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
SIZES: tuple[str, ...] = ("small", "large")
SIZE_FRACTION: dict[str, float] = {"small": 0.25, "large": 0.375}  # bounding-box side / image side
RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below")
CATEGORIES: tuple[str, ...] = ("single_object", "two_objects", "counting", "colors", "position", "color_attr")
NUMBERS: dict[int, str] = {2: "two", 3: "three", 4: "four"}
MIN_RESOLUTION = 32

# 4 of the 18 (colour, shape) pairs (22%), four different colours and every shape kept in training.
HELDOUT_PAIRS: frozenset[tuple[str, str]] = frozenset(
    {("red", "triangle"), ("green", "square"), ("blue", "circle"), ("yellow", "triangle")}
)
SPLITS: tuple[str, ...] = ("train", "heldout")


class SceneError(ValueError):
    """An invalid scene graph: `field` (a path such as "objects[1].colour", "" for the whole) and a one-line message."""

    def __init__(self, field: str, message: str) -> None:
        self.field, self.message = field, message
        super().__init__(f"field '{field}': {message}" if field else message)

    def under(self, parent: str) -> SceneError:
        """Return the same error with its field path prefixed by `parent`."""
        return SceneError(f"{parent}.{self.field}" if self.field else parent, self.message)


def _choice_error(field: str, kind: str, value: Any, allowed: Any) -> SceneError:
    return SceneError(field, f"unknown {kind} {value!r} (expected one of {', '.join(allowed)})")


def _check_dict(d: Any, required: tuple[str, ...], allowed: tuple[str, ...]) -> None:
    if not isinstance(d, dict):
        raise SceneError("", f"expected an object, got {type(d).__name__}")
    for name in required:
        if name not in d:
            raise SceneError(name, "missing")
    unknown = sorted(set(d) - set(allowed))
    if unknown:
        raise SceneError(unknown[0], f"unknown field (expected {', '.join(allowed)})")


@dataclass(frozen=True)
class SceneObject:
    """One object of a scene: a palette colour, a shape and a size."""

    colour: str
    shape: str
    size: str = "large"

    def __post_init__(self) -> None:
        for name, allowed in (("colour", COLOURS), ("shape", SHAPES), ("size", SIZES)):
            value = getattr(self, name)
            if not isinstance(value, str) or value not in allowed:
                raise _choice_error(name, name, value, allowed)

    @property
    def pair(self) -> tuple[str, str]:
        """Return the (colour, shape) combination the split is made on."""
        return (self.colour, self.shape)

    def to_dict(self) -> dict[str, str]:
        """Return the JSON-ready dict."""
        return {"colour": self.colour, "shape": self.shape, "size": self.size}

    @classmethod
    def from_dict(cls, d: Any) -> SceneObject:
        """Return the object of a JSON dict (`size` defaults to large); raise SceneError naming the field."""
        _check_dict(d, ("colour", "shape"), ("colour", "shape", "size"))
        return cls(d["colour"], d["shape"], d.get("size", "large"))


def _check_structure(category: str, objects: tuple[SceneObject, ...], relation: str | None) -> None:
    n = len(objects)
    colours = {o.colour for o in objects}
    shapes = {o.shape for o in objects}
    if category == "position":
        if relation not in RELATIONS:
            raise _choice_error("relation", "relation", relation, RELATIONS)
    elif relation is not None:
        raise SceneError("relation", f"only position scenes have a relation, this is {category}")
    rules = {
        "single_object": (n == 1, "exactly 1 object"),
        "two_objects": (n == 2 and len(colours) == 1 and len(shapes) == 2, "2 objects of one colour and different shapes"),
        "counting": (n in NUMBERS and len(colours) == 1 and len(shapes) == 1, "2-4 objects of one colour and shape"),
        "colors": (n == 2 and len(colours) == 2 and len(shapes) == 1, "2 objects of one shape and different colours"),
        "position": (n == 2 and objects[0].pair != objects[-1].pair, "2 objects differing in colour or shape"),
        "color_attr": (n == 2 and len(colours) == 2 and len(shapes) == 2, "2 objects of different colours and shapes"),
    }
    ok, expected = rules[category]
    if not ok:
        got = ", ".join(f"{o.colour} {o.shape}" for o in objects) or "none"
        raise SceneError("objects", f"a {category} scene needs {expected}, got {got}")


@dataclass(frozen=True)
class Scene:
    """A scene graph: its category, its objects and, for position scenes, `objects[0] <relation> objects[1]`."""

    category: str
    objects: tuple[SceneObject, ...]
    relation: str | None = None

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise _choice_error("category", "category", self.category, CATEGORIES)
        object.__setattr__(self, "objects", tuple(self.objects))
        for i, obj in enumerate(self.objects):
            if not isinstance(obj, SceneObject):
                raise SceneError(f"objects[{i}]", f"expected a SceneObject, got {type(obj).__name__}")
        _check_structure(self.category, self.objects, self.relation)

    @property
    def pairs(self) -> set[tuple[str, str]]:
        """Return the (colour, shape) combinations in the scene."""
        return {o.pair for o in self.objects}

    @property
    def split(self) -> str:
        """Return "heldout" when the scene holds a held-out (colour, shape) combination, else "train"."""
        return "heldout" if self.pairs & HELDOUT_PAIRS else "train"

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready dict (`relation` only for position scenes)."""
        out: dict[str, Any] = {"category": self.category, "objects": [o.to_dict() for o in self.objects]}
        if self.relation is not None:
            out["relation"] = self.relation
        return out

    @classmethod
    def from_dict(cls, d: Any) -> Scene:
        """Return the scene of a JSON dict; raise SceneError whose message starts with the field at fault."""
        _check_dict(d, ("category", "objects"), ("category", "objects", "relation"))
        if not isinstance(d["objects"], list):
            raise SceneError("objects", f"expected a list, got {type(d['objects']).__name__}")
        objects = []
        for i, item in enumerate(d["objects"]):
            try:
                objects.append(SceneObject.from_dict(item))
            except SceneError as exc:
                raise exc.under(f"objects[{i}]") from None
        return cls(d["category"], tuple(objects), d.get("relation"))


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def prompt_of(scene: Scene) -> str:
    """Return the prompt that describes the scene ("a photo of a red circle left of a blue square")."""
    first = scene.objects[0]
    if scene.category == "counting":
        return f"a photo of {NUMBERS[len(scene.objects)]} {first.colour} {first.shape}s"
    phrases = [f"{_article(o.colour)} {o.colour} {o.shape}" for o in scene.objects]
    if scene.category == "position":
        return f"a photo of {phrases[0]} {scene.relation} {phrases[1]}"
    return "a photo of " + " and ".join(phrases)


def parse_prompt(text: str) -> Scene | None:
    """Return the scene a prompt written like `prompt_of`'s describes (sizes large), or None for any other text."""
    words = text.lower().replace(",", " ").split()
    if words[:3] != ["a", "photo", "of"]:
        return None
    words = words[3:]
    numbers = {v: k for k, v in NUMBERS.items()}
    if len(words) == 3 and words[0] in numbers and words[2].endswith("s"):
        try:
            return Scene("counting", (SceneObject(words[1], words[2][:-1]),) * numbers[words[0]])
        except SceneError:
            return None
    text = " ".join(words)
    relation = next((r for r in RELATIONS if f" {r} " in text), None)
    phrases = text.split(f" {relation} ") if relation else text.split(" and ")
    objects = []
    for phrase in phrases:
        parts = phrase.split()
        if len(parts) != 3 or parts[0] not in ("a", "an"):
            return None
        try:
            objects.append(SceneObject(parts[1], parts[2]))
        except SceneError:
            return None
    candidates = ["position"] if relation else ["single_object", "two_objects", "colors", "color_attr"]
    for category in candidates:
        try:
            return Scene(category, tuple(objects), relation)
        except SceneError:
            continue
    return None


def _draw(rng: random.Random, category: str) -> Scene:
    colours, pairs = list(COLOURS), list(itertools.product(COLOURS, SHAPES))

    def size() -> str:
        return rng.choice(SIZES)

    if category == "single_object":
        return Scene(category, (SceneObject(rng.choice(colours), rng.choice(SHAPES), size()),))
    if category == "counting":
        colour, shape = rng.choice(pairs)
        return Scene(category, tuple(SceneObject(colour, shape, size()) for _ in range(rng.choice(list(NUMBERS)))))
    if category == "position":
        (c1, s1), (c2, s2) = rng.sample(pairs, 2)
        return Scene(category, (SceneObject(c1, s1, size()), SceneObject(c2, s2, size())), rng.choice(RELATIONS))
    c1, c2 = rng.sample(colours, 2)
    s1, s2 = rng.sample(SHAPES, 2)
    if category == "two_objects":
        c2 = c1
    elif category == "colors":
        s2 = s1
    return Scene(category, (SceneObject(c1, s1, size()), SceneObject(c2, s2, size())))


def sample_scene(rng: random.Random, category: str, split: str | None = None) -> Scene:
    """Return a random scene of `category`; with `split`, one whose `Scene.split` is that split."""
    if category not in CATEGORIES:
        raise _choice_error("category", "category", category, CATEGORIES)
    if split is not None and split not in SPLITS:
        raise _choice_error("split", "split", split, SPLITS)
    while True:
        scene = _draw(rng, category)
        if split is None or scene.split == split:
            return scene


class Rendering(NamedTuple):
    """A rendered scene: the RGB image and one boolean mask per scene object, in `scene.objects` order."""

    image: np.ndarray  # (resolution, resolution, 3) uint8
    masks: np.ndarray  # (len(scene.objects), resolution, resolution) bool


Box = tuple[int, int, int]  # x0, y0, side in pixels


def object_side(size: str, resolution: int) -> int:
    """Return the bounding-box side in pixels of an object of `size` at `resolution`."""
    return round(SIZE_FRACTION[size] * resolution)


def _gap(resolution: int) -> int:
    return max(2, round(0.08 * resolution))


def _apart(a: Box, b: Box, gap: int) -> bool:
    (ax, ay, ad), (bx, by, bd) = a, b
    return ax + ad + gap <= bx or bx + bd + gap <= ax or ay + ad + gap <= by or by + bd + gap <= ay


def relation_holds(a: Box, b: Box, relation: str, gap: int) -> bool:
    """Return whether box a lies `relation` of box b: past it by `gap` along the axis, off it by at most half as much."""
    (ax, ay, ad), (bx, by, bd) = a, b
    dx, dy = (ax + ad / 2) - (bx + bd / 2), (ay + ad / 2) - (by + bd / 2)
    if relation in ("left of", "right of"):
        past = ax + ad + gap <= bx if relation == "left of" else bx + bd + gap <= ax
        return past and abs(dy) <= abs(dx) / 2
    past = ay + ad + gap <= by if relation == "above" else by + bd + gap <= ay
    return past and abs(dx) <= abs(dy) / 2


def layout(scene: Scene, resolution: int = 32, seed: int = 0) -> list[Box]:
    """Return one (x0, y0, side) box per object: inside the image, apart by a gap, respecting the relation."""
    if not isinstance(resolution, (int, np.integer)) or resolution < MIN_RESOLUTION:
        raise SceneError("resolution", f"expected an int >= {MIN_RESOLUTION}, got {resolution!r}")
    resolution = int(resolution)
    rng = random.Random(f"t2i-layout:{resolution}:{seed}")
    gap, border = _gap(resolution), max(1, round(0.03 * resolution))
    sides = [object_side(o.size, resolution) for o in scene.objects]
    for _ in range(2000):
        boxes: list[Box] = []
        for side in sides:
            for _ in range(50):
                top = resolution - border - side
                box = (rng.randint(border, top), rng.randint(border, top), side)
                if all(_apart(box, other, gap) for other in boxes) and (
                    len(boxes) != 1 or scene.relation is None or relation_holds(boxes[0], box, scene.relation, gap)
                ):
                    boxes.append(box)
                    break
            else:
                break
        if len(boxes) == len(sides):
            return boxes
    raise SceneError("objects", f"cannot place {len(sides)} objects at resolution {resolution}")


def shape_mask(shape: str, box: Box, resolution: int) -> np.ndarray:
    """Return the boolean mask of `shape` drawn in `box` (a pixel is inside when its centre is)."""
    x0, y0, side = box
    ys, xs = np.mgrid[0:resolution, 0:resolution] + 0.5
    u, v = (xs - x0) / side, (ys - y0) / side  # box coordinates in [0, 1]
    inside = (u >= 0) & (u <= 1) & (v >= 0) & (v <= 1)
    if shape == "circle":
        return inside & ((u - 0.5) ** 2 + (v - 0.5) ** 2 <= 0.25)
    if shape == "triangle":
        return inside & (v >= 2 * np.abs(u - 0.5))
    return inside


def render(scene: Scene, resolution: int = 32, seed: int = 0) -> Rendering:
    """Return the scene drawn at `resolution` (plain background, flat colours) and its per-object masks."""
    boxes = layout(scene, resolution, seed)
    image = np.empty((resolution, resolution, 3), dtype=np.uint8)
    image[:] = BACKGROUND
    masks = np.stack([shape_mask(o.shape, box, resolution) for o, box in zip(scene.objects, boxes)])
    for obj, mask in zip(scene.objects, masks):
        image[mask] = COLOURS[obj.colour]
    return Rendering(image, masks)
