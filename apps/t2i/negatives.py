"""OSPO's hard negative prompts: edit a scene graph so that its meaning conflicts with the original.

Edits (each gives zero or more candidate scenes): replace an object's colour, replace its shape,
swap the colours of two objects (attribute binding), drop an object, change a count by one, flip
a relation. A candidate is kept only when it is a valid scene, holds no held-out combination (the
negatives are training data), and conflicts: its own render fails at least one of the original
prompt's object questions (checked with the renderer's exact scene, not a model's image).
"""

from __future__ import annotations

import random
from dataclasses import replace

from shared.scenes.checker import check
from shared.scenes.image import COLOURS, NUMBERS, SHAPES, Scene, SceneError, SceneObject, render

EDITS = ("colour", "shape", "swap", "drop", "count", "relation")
FLIP = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}


def _scene(category: str, objects, relation=None) -> Scene | None:
    try:
        return Scene(category, tuple(objects), relation)
    except SceneError:
        return None


def _category_of(objects: list[SceneObject]) -> str | None:
    """The non-position category a list of objects fits (the scenes module's rules), or None."""
    colours, shapes = {o.colour for o in objects}, {o.shape for o in objects}
    n = len(objects)
    if n == 1:
        return "single_object"
    if len(colours) == 1 and len(shapes) == 1 and n in NUMBERS:
        return "counting"
    if n == 2 and len(colours) == 1:
        return "two_objects"
    if n == 2 and len(shapes) == 1:
        return "colors"
    if n == 2:
        return "color_attr"
    return None


def _rebuild(scene: Scene, objects: list[SceneObject]) -> Scene | None:
    if scene.category == "position" and len(objects) == 2:
        return _scene("position", objects, scene.relation)
    category = _category_of(objects)
    return _scene(category, objects) if category else None


def candidates(scene: Scene, edit: str) -> list[Scene]:
    """Every scene one `edit` of `scene` gives (before the conflict and split filters)."""
    objs = list(scene.objects)
    out: list[Scene | None] = []
    if edit in ("colour", "shape"):
        values = COLOURS if edit == "colour" else SHAPES
        for i, o in enumerate(objs):
            for v in values:
                if v != getattr(o, edit):  # a counting scene's objects are identical: all change together
                    out.append(_rebuild(scene, [replace(x, **{edit: v}) if (j == i or scene.category == "counting") else x
                                                for j, x in enumerate(objs)]))
    elif edit == "swap" and len(objs) == 2 and objs[0].colour != objs[1].colour:
        a, b = objs
        out.append(_rebuild(scene, [replace(a, colour=b.colour), replace(b, colour=a.colour)]))
    elif edit == "drop" and len(objs) >= 2:
        for i in range(len(objs)):
            rest = objs[:i] + objs[i + 1:]
            out.append(_scene(_category_of(rest), rest) if _category_of(rest) else None)
    elif edit == "count" and scene.category == "counting":
        for n in (len(objs) - 1, len(objs) + 1):
            if n in NUMBERS:
                out.append(_scene("counting", [objs[0]] * n))
    elif edit == "relation" and scene.category == "position":
        out.append(_scene("position", objs, FLIP[scene.relation]))
    return [s for s in out if s is not None and s != scene]


def conflicts(base: Scene, negative: Scene, resolution: int = 32, seed: int = 0) -> bool:
    """Whether the negative scene's own render fails at least one of the base prompt's questions."""
    return not check(render(negative, resolution, seed).image, base)["passed"]


def hard_negatives(scene: Scene, rng: random.Random, n: int, resolution: int = 32) -> list[Scene]:
    """Up to n distinct conflicting training-split negatives of `scene`, spread over the edit kinds (seeded)."""
    edits = list(EDITS)
    rng.shuffle(edits)
    pools = {e: candidates(scene, e) for e in edits}
    for pool in pools.values():
        rng.shuffle(pool)
    out: list[Scene] = []
    while len(out) < n and any(pools.values()):
        for e in edits:  # round robin over the edit kinds, so one prompt's negatives differ in kind
            while pools[e]:
                cand = pools[e].pop()
                if cand.split == "train" and cand not in out and conflicts(scene, cand, resolution):
                    out.append(cand)
                    break
            if len(out) == n:
                break
    return out
