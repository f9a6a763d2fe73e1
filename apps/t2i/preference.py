"""OSPO's data steps on the model's own images: prompts, hard negatives, images, object checks, pairs.

1. Initial prompts: training-split scenes, the same number per category.
2. Hard negative prompts per scene (apps.t2i.negatives).
3. Images: `images_per_prompt` per base prompt and per negative prompt, from the SFT model.
4. Object questions of the BASE scene on every image (shared.scenes.checker).
5. Pairs, per method, from that one pool of images:
   - ospo: chosen = a base-prompt image passing every question; rejected = a negative-prompt image
     failing at least one (a hard negative: the model drew the conflicting prompt); the pair keeps
     the negative prompt for the conditional term and both images' object masks.
   - diffusion_dpo (no hard negatives): chosen and rejected both from the base prompt's own images,
     one passing every question against one failing (lowest checker score first).
   - diffusion_kto: every base-prompt image, desirable when it passes every question.
Images are PNG files under the round folder; samples and pairs are JSONL (paths relative to it).
"""

from __future__ import annotations

from dataclasses import dataclass

import io
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from shared.scenes.checker import check
from apps.t2i.negatives import hard_negatives
from shared.scenes.image import CATEGORIES, Scene, prompt_of, sample_scene
from shared.atomic import write_bytes
from shared.records import Candidate, Pair

def initial_scenes(per_category: int, seed: int) -> list[Scene]:
    """Distinct training-split scenes, `per_category` of each category (fewer where a category has fewer)."""
    rng = random.Random(f"t2i-ospo-prompts:{seed}")
    out: list[Scene] = []
    for category in CATEGORIES:
        seen: list[Scene] = []
        for _ in range(50 * per_category):
            scene = sample_scene(rng, category, "train")
            if scene not in seen:
                seen.append(scene)
            if len(seen) == per_category:
                break
        out.extend(seen)
    return out


@dataclass
class OSPOArgs:
    """OSPO's data construction from the SFT model's own images.

    Attributes:
        prompts_per_category: initial (training-split) prompts per category.
        negatives_per_prompt: hard negative prompts per initial prompt.
        images_per_prompt: images drawn per base and per negative prompt.
        max_pairs_per_prompt: pairs kept per initial prompt and method.
    """

    prompts_per_category: int = 16
    negatives_per_prompt: int = 2
    images_per_prompt: int = 4
    max_pairs_per_prompt: int = 4


def png_bytes(image: np.ndarray | Image.Image) -> bytes:
    """PNG file contents of a uint8 (H, W, 3) array or a PIL image."""
    buffer = io.BytesIO()
    (image if isinstance(image, Image.Image) else Image.fromarray(image)).save(buffer, format="PNG")
    return buffer.getvalue()


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def generation_requests(scenes: Sequence[Scene], negatives_per_prompt: int, images_per_prompt: int, seed: int,
                        resolution: int) -> list[dict]:
    """One request per image to draw: base and negative prompts, each with its seed; the base scene is what is checked."""
    rng = random.Random(f"t2i-ospo-negatives:{seed}")
    requests = []
    for i, base in enumerate(scenes):
        prompts = [("base", base)] + [("negative", neg) for neg in hard_negatives(base, rng, negatives_per_prompt, resolution)]
        for source, scene in prompts:
            for k in range(images_per_prompt):
                requests.append({"base": base, "scene": scene, "source": source, "seed": seed * 1_000_003 + len(requests),
                                 "group": i, "sample": k})
    return requests


def draw_and_check(model, requests: Sequence[dict], out_dir: Path, *, steps: int, guidance: float,
                   batch_size: int) -> list[Candidate]:
    """Generate every requested image, write it as PNG, check it against its base scene; return the candidates."""
    prompts = [prompt_of(r["scene"]) for r in requests]
    images = model.generate(prompts, [r["seed"] for r in requests], steps=steps, guidance=guidance, batch_size=batch_size)
    out = []
    for n, (r, prompt, image) in enumerate(zip(requests, prompts, images)):
        name = f"images/{n:05d}.png"
        write_bytes(out_dir / name, png_bytes(image))
        verdict = check(image, r["base"])
        out.append(Candidate(
            prompt_id=prompt_of(r["base"]), prompt=prompt, output=name,
            scores={"passed": float(verdict["passed"]), "score": float(verdict["score"])},
            metadata={"source": r["source"], "seed": r["seed"], "group": r["group"], "scene": r["scene"].to_dict(),
                      "base_scene": r["base"].to_dict(), "reason": verdict["reason"],
                      "boxes": [o["box"] for o in verdict["objects"]]}))
    return out


def _by_group(samples: Sequence[Candidate]) -> dict[int, list[Candidate]]:
    groups: dict[int, list[Candidate]] = {}
    for c in samples:
        groups.setdefault(int(c.metadata["group"]), []).append(c)
    return groups


def ospo_pairs(samples: Sequence[Candidate], max_per_prompt: int, seed: int) -> list[Pair]:
    """Chosen: base-prompt images passing every question; rejected: negative-prompt images failing one."""
    rng = random.Random(f"t2i-ospo-pairs:{seed}")
    pairs = []
    for group in _by_group(samples).values():
        chosen = [c for c in group if c.metadata["source"] == "base" and c.scores["passed"] == 1.0]
        rejected = [c for c in group if c.metadata["source"] == "negative" and c.scores["passed"] == 0.0]
        rng.shuffle(rejected)
        for k, r in enumerate(rejected[:max_per_prompt]):
            if not chosen:
                break
            w = chosen[k % len(chosen)]
            pairs.append(Pair(prompt=w.prompt, chosen=w.output, rejected=r.output,
                              metadata={"negative_prompt": r.prompt, "chosen_boxes": w.metadata["boxes"],
                                        "rejected_boxes": r.metadata["boxes"], "rejected_reason": r.metadata["reason"]}))
    return pairs


def dpo_pairs(samples: Sequence[Candidate], max_per_prompt: int, seed: int) -> list[Pair]:
    """Chosen and rejected from the base prompt's own images: passing against failing (lowest score first)."""
    pairs = []
    for group in _by_group(samples).values():
        own = [c for c in group if c.metadata["source"] == "base"]
        chosen = [c for c in own if c.scores["passed"] == 1.0]
        rejected = sorted((c for c in own if c.scores["passed"] == 0.0), key=lambda c: c.scores["score"])
        for k, r in enumerate(rejected[:max_per_prompt]):
            if not chosen:
                break
            w = chosen[k % len(chosen)]
            pairs.append(Pair(prompt=w.prompt, chosen=w.output, rejected=r.output,
                              metadata={"chosen_boxes": w.metadata["boxes"], "rejected_boxes": r.metadata["boxes"],
                                        "rejected_reason": r.metadata["reason"]}))
    return pairs


def kto_samples(samples: Sequence[Candidate]) -> list[Candidate]:
    """Every base-prompt image, labelled desirable (scores.passed == 1) or not."""
    return [c for c in samples if c.metadata["source"] == "base"]
