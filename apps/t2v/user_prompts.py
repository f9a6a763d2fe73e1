"""Short user requests for Prompt-A-Video: the scene a caption describes, said the way a user would say it.

The text-to-video model was trained on `caption_of`'s captions ("a large red circle moving left
slowly") with a word-level tokenizer of their vocabulary, so a request in other words ("a big
crimson ball drifting leftwards") reaches it as unknown tokens. That gap is what a prompt booster
closes: it rewrites the request into the model's own language. Each request keeps the scene it
means (a prompt file's `scene`), and the critic always judges a video against that scene, never
against the rewrite.

`user_request(scene, rng)` draws one: every colour, shape, size, direction, speed and event word
is the caption's own word with probability `plain`, else one of its synonyms; the sentence follows
one of a few templates per category. Deterministic in the rng.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from apps.t2v.data import CATEGORIES, VideoPrompt
from shared.scenes.video import VideoObject, VideoScene, caption_of, sample_video_scene

COLOUR_WORDS = {"red": ("crimson", "scarlet", "cherry"), "green": ("emerald", "lime", "grassy"),
                "blue": ("navy", "azure", "cobalt"), "yellow": ("golden", "lemon", "mustard"),
                "purple": ("violet", "lilac", "plum"), "cyan": ("turquoise", "teal", "aqua")}
SHAPE_WORDS = {"circle": ("ball", "disc", "dot"), "square": ("box", "block", "tile"),
               "triangle": ("wedge", "pyramid", "three-sided shape")}
SIZE_WORDS = {"large": ("big", "huge", "giant"), "small": ("tiny", "little", "mini")}
DIRECTION_WORDS = {"left": ("leftwards", "to the left", "toward the left edge"),
                   "right": ("rightwards", "to the right", "toward the right edge"),
                   "up": ("upwards", "toward the top", "skyward"),
                   "down": ("downwards", "toward the bottom", "earthward")}
MOVE_VERBS = ("drifting", "sliding", "gliding", "heading", "travelling")
SPEED_PHRASES = {"slow": ("gently", "at a leisurely pace", "unhurriedly"), "fast": ("rapidly", "in a hurry", "at full speed")}
STILL_PHRASES = ("sitting motionless", "not moving at all", "resting in place")
APPEAR_PHRASES = ("popping into view", "fading in", "showing up")
DISAPPEAR_PHRASES = ("vanishing", "fading away", "blinking out")


def _word(rng: random.Random, canonical: str, synonyms: Iterable[str], plain: float) -> str:
    return canonical if rng.random() < plain else rng.choice(tuple(synonyms))


def _thing(rng: random.Random, o: VideoObject, plain: float, size: bool) -> str:
    words = [_word(rng, o.size, SIZE_WORDS[o.size], plain)] if size else []
    words += [_word(rng, o.colour, COLOUR_WORDS[o.colour], plain), _word(rng, o.shape, SHAPE_WORDS[o.shape], plain)]
    text = " ".join(words)
    return ("an " if text[0] in "aeiou" else "a ") + text


def _motion(rng: random.Random, o: VideoObject, plain: float, speed: bool) -> str:
    verb = "moving" if rng.random() < plain else rng.choice(MOVE_VERBS)
    text = f"{verb} {_word(rng, o.motion, DIRECTION_WORDS[o.motion], plain)}"
    if speed:
        text += " " + _word(rng, {"slow": "slowly", "fast": "quickly"}[o.speed], SPEED_PHRASES[o.speed], plain)
    return text


def user_request(scene: VideoScene, rng: random.Random, plain: float = 0.3) -> str:
    """A user's short request for the scene (one of the five text-to-video categories), in its own words."""
    objects, category = scene.objects, scene.category
    if category == "moving":
        return f"{_thing(rng, objects[0], plain, True)} {_motion(rng, objects[0], plain, True)}"
    if category == "two_moving":
        joiner = rng.choice((" and ", " while ", ", and "))
        return joiner.join(f"{_thing(rng, o, plain, False)} {_motion(rng, o, plain, False)}" for o in objects)
    if category == "still":
        phrase = "staying still" if rng.random() < plain else rng.choice(STILL_PHRASES)
        return f"{_thing(rng, objects[0], plain, True)} {phrase}"
    if category in ("appearing", "disappearing"):
        own = APPEAR_PHRASES if category == "appearing" else DISAPPEAR_PHRASES
        phrase = category if rng.random() < plain else rng.choice(own)
        return f"{_thing(rng, objects[0], plain, True)} {phrase}"
    raise ValueError(f"user_request: category {category!r} is not one of {', '.join(CATEGORIES)}")


def user_prompt_split(n_train: int, n_heldout: int, seed: int = 0, plain: float = 0.3) -> dict[str, list[VideoPrompt]]:
    """{"train": ..., "heldout": ...}: n per category of requests for training-split scenes (the compositions the
    video model learned: the booster is judged on its rewriting, not on compositions the video model never saw).

    Held-out requests are for scenes none of the training requests describes, in fresh words. Each
    record's metadata keeps the scene's caption ("caption") and its category order.
    """
    out: dict[str, list[VideoPrompt]] = {"train": [], "heldout": []}
    taken: set[str] = set()
    for split, n in (("train", n_train), ("heldout", n_heldout)):
        for category in CATEGORIES:
            rng = random.Random(f"t2v-requests:{seed}:{split}:{category}")
            found = 0
            for _ in range(200 * max(n, 1)):
                if found == n:
                    break
                scene = sample_video_scene(rng, category, "train")
                caption = caption_of(scene)
                if caption in taken:
                    continue
                taken.add(caption)
                out[split].append(VideoPrompt(user_request(scene, rng, plain), scene, {"caption": caption}))
                found += 1
    return out
