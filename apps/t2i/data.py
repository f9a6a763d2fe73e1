"""Scene prompts: the train / held-out split by composition and prompt files (JSONL).

A prompt file holds one JSON object per line: `{"prompt": "...", "scene": {...}}`. The scene graph
(`Scene.to_dict`) is required, since the checker needs it; `prompt` may be left out and is then
written from the scene (`prompt_of`), or given as any non-empty text (a paraphrase, a longer
caption). Other keys are kept in `metadata`.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.scenes.image import CATEGORIES, SPLITS, Scene, SceneError, prompt_of, sample_scene
from shared.records import RecordError, iter_jsonl, write_jsonl

@dataclass(frozen=True)
class ScenePrompt:
    """A prompt with the scene graph it describes."""

    prompt: str
    scene: Scene
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, scene: Scene) -> ScenePrompt:
        """Return the scene with its written prompt."""
        return cls(prompt_of(scene), scene)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready dict (metadata keys at top level)."""
        return {**self.metadata, "prompt": self.prompt, "scene": self.scene.to_dict()}

    @classmethod
    def from_dict(cls, d: Any, where: str = "") -> ScenePrompt:
        """Return the record of a JSON object; raise RecordError `where: field '...': what is wrong`."""
        prefix = f"{where}: " if where else ""
        if not isinstance(d, dict):
            raise RecordError(f"{prefix}expected a JSON object, got {type(d).__name__}")
        if "scene" not in d:
            raise RecordError(f"{prefix}field 'scene': missing (the checker needs the scene graph)")
        try:
            scene = Scene.from_dict(d["scene"])
        except SceneError as exc:
            raise RecordError(f"{prefix}{exc.under('scene')}") from None
        prompt = d.get("prompt", prompt_of(scene))
        if not isinstance(prompt, str) or not prompt.strip():
            raise RecordError(f"{prefix}field 'prompt': expected a non-empty string, got {prompt!r:.60}")
        return cls(prompt, scene, {k: v for k, v in d.items() if k not in ("prompt", "scene")})


@dataclass
class DataArgs:
    """Prompts and images.

    Attributes:
        sft_images: rendered training scenes (one image each, all categories equally) for SFT.
        train_prompts: a JSONL prompt file ({"scene": {...}, "prompt": optional}) of OSPO's initial
            prompts instead of generated training scenes ("": generated).
        heldout_prompts: a JSONL prompt file for evaluation instead of the generated held-out split.
    """

    sft_images: int = 6000
    train_prompts: str = ""
    heldout_prompts: str = ""


def load_prompts(path: str | os.PathLike) -> list[ScenePrompt]:
    """Return the records of a prompt file (`.jsonl` or `.jsonl.gz`); RecordError `path:line: ...` at the first bad line."""
    path = Path(path)
    if not path.is_file():
        raise RecordError(f"{path}: no such file")
    records = list(iter_jsonl(path, ScenePrompt))
    if not records:
        raise RecordError(f"{path}:1: empty file: expected one JSON object per line")
    return records  # type: ignore[return-value]


def write_prompts(path: str | os.PathLike, records: Iterable[ScenePrompt | Scene]) -> Path:
    """Write records (a bare Scene gets its written prompt) atomically as JSONL and return the path."""
    return write_jsonl(path, (r if isinstance(r, ScenePrompt) else ScenePrompt.of(r) for r in records))


def build_split(n_train: int, n_heldout: int, seed: int = 0,
                categories: Iterable[str] = CATEGORIES) -> dict[str, dict[str, list[Scene]]]:
    """Return {"train": {category: scenes}, "heldout": {category: scenes}}, n_train / n_heldout per category.

    Train scenes hold no held-out (colour, shape) combination; held-out scenes hold at least one
    (`scenes.HELDOUT_PAIRS`), so no held-out prompt is a train prompt. Scenes may repeat within
    a split (a single_object train set has 28 distinct scenes). Deterministic in `seed`.
    """
    sizes = {"train": n_train, "heldout": n_heldout}
    out: dict[str, dict[str, list[Scene]]] = {split: {} for split in SPLITS}
    for category in categories:
        for split in SPLITS:
            rng = random.Random(f"t2i-split:{seed}:{split}:{category}")
            out[split][category] = [sample_scene(rng, category, split) for _ in range(sizes[split])]
    return out
