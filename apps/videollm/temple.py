"""TEMPLE's preference pairs: a caption written from the clips in order (chosen) and from a perturbed order (rejected).

Perturbations of a list of N clip descriptions at magnitude m (TEMPLE's code; its m is 2-16 on 4-32
clips, here 2-8 on 4-8 clips, so the chunk sizes span the same range, 1 clip to half the video):

    drop      keep max(1, N // m) clips, drawn at random, in their order
    shuffle   cut into chunks of max(1, N // m) clips and shuffle the chunks' order (redrawn until it changes)
    reverse   cut into chunks of max(1, N // m) clips and reverse the chunks' order

A larger m changes more (single clips move): the easy end of the curriculum. The same model writes
both captions from the description lists (a text-only prompt, greedy). TEMPLE's filters then drop a
pair when the rejected caption is at least as long as the chosen one (drop), when the chosen is
contained in the rejected, when (shuffle, reverse) one is over 1.5x the other's length, and here
also when the two are equal or either is empty.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from apps.videollm.data import VideoItem, writer_prompt
from apps.videollm.generation import generate_answers
from apps.videollm.questions import CAPTION_PROMPT
from apps.videollm.stories import SEPARATOR
from shared.records import Pair

OPERATIONS: tuple[str, ...] = ("drop", "shuffle", "reverse")


def _chunks(clips: Sequence[str], size: int) -> list[list[str]]:
    return [list(clips[i:i + size]) for i in range(0, len(clips), size)]


def perturb(clips: Sequence[str], operation: str, magnitude: int, rng: random.Random) -> list[str] | None:
    """Return the perturbed clip list, or None when the operation cannot change this list."""
    n, size = len(clips), max(1, len(clips) // magnitude)
    if operation == "drop":
        if size >= n:
            return None
        keep = sorted(rng.sample(range(n), size))
        return [clips[i] for i in keep]
    chunks = _chunks(clips, size)
    if len(chunks) < 2:
        return None
    if operation == "reverse":
        out = [c for chunk in reversed(chunks) for c in chunk]
    elif operation == "shuffle":
        for _ in range(20):
            order = rng.sample(range(len(chunks)), len(chunks))
            if order != sorted(order):
                break
        out = [c for k in order for c in chunks[k]]
    else:
        raise ValueError(f"perturbation {operation!r}: expected one of {', '.join(OPERATIONS)}")
    return None if out == list(clips) else out


def keep_pair(chosen: str, rejected: str, operation: str) -> str | None:
    """Return why TEMPLE's filters drop the pair, or None to keep it."""
    if not chosen.strip() or not rejected.strip():
        return "empty"
    if chosen == rejected:
        return "equal"
    if operation == "drop" and len(rejected) >= len(chosen):
        return "drop_not_shorter"
    if chosen in rejected:
        return "chosen_in_rejected"
    if operation != "drop" and max(len(chosen), len(rejected)) > 1.5 * min(len(chosen), len(rejected)):
        return "length_ratio"
    return None


def plan_perturbations(items: Sequence[VideoItem], magnitudes: Sequence[int], operations: Sequence[str],
                       seed: int) -> list[dict]:
    """Return one planned perturbation per (video with clips, magnitude): an operation drawn from those that change it."""
    plans = []
    for item in items:
        if not item.clips or len(item.clips) < 2:
            continue
        for m in magnitudes:
            rng = random.Random(f"temple:{seed}:{item.id}:{m}")
            for op in rng.sample(list(operations), len(operations)):
                perturbed = perturb(item.clips, op, m, rng)
                if perturbed is not None:
                    plans.append({"video": item.id, "magnitude": m, "operation": op, "clips": list(item.clips),
                                  "perturbed": perturbed})
                    break
    return plans


def write_pairs(model, processor, items: Sequence[VideoItem], plans: Sequence[dict], max_new_tokens: int = 128,
                batch_size: int = 32) -> tuple[list[Pair], list[dict]]:
    """Return (kept pairs, every written record with its verdict): the model captions each ordered and perturbed list.

    With model None the captions are the lists joined with ", then " (the ground-truth caption form:
    for a model that cannot write yet, e.g. a few-step tiny model in tests).
    """
    ordered = {p["video"]: p["clips"] for p in plans}
    names = list(ordered)
    lists = [ordered[v] for v in names] + [p["perturbed"] for p in plans]
    if model is None:
        texts = [SEPARATOR.join(clips) for clips in lists]
    else:
        texts = generate_answers(model, processor, [(writer_prompt(c), None) for c in lists],
                                 max_new_tokens=max_new_tokens, batch_size=batch_size)
    chosen_of = dict(zip(names, texts[:len(names)]))
    pairs, records = [], []
    for plan, rejected in zip(plans, texts[len(names):]):
        chosen = chosen_of[plan["video"]]
        dropped = keep_pair(chosen, rejected, plan["operation"])
        records.append({**plan, "chosen": chosen, "rejected": rejected, "dropped": dropped})
        if dropped is None:
            pairs.append(Pair(prompt=CAPTION_PROMPT, chosen=chosen, rejected=rejected,
                              metadata={"video": plan["video"], "magnitude": plan["magnitude"],
                                        "operation": plan["operation"]}))
    return pairs, records


def magnitude_difficulty(pair: Pair) -> float:
    """The curriculum's difficulty: -magnitude (a larger magnitude perturbs more: easier, trained first)."""
    return -float(pair.metadata["magnitude"])
