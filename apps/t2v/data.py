"""Video prompts: the train / held-out split by composition and prompt files (JSONL).

A prompt file holds one JSON object per line: `{"prompt": "...", "scene": {...}}`. The scene
(`VideoScene.to_dict`: category and objects with colour, shape, size, motion, speed, appear /
disappear times) is optional: without it the prompt must be a caption the critic can read
(`parse_caption`, e.g. "a red circle moving left"), and its scene is parsed from it; with it,
`prompt` may be left out (written by `caption_of`) or be any non-empty text. Other keys are kept
in `metadata`. Errors name the file, the line and the field.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.records import RecordError, iter_jsonl, write_jsonl
from shared.scenes.image import SceneError
from shared.scenes.video import VideoScene, caption_of, parse_caption, sample_video_scene

CATEGORIES = ("moving", "two_moving", "still", "appearing", "disappearing")
SPLITS = ("train", "heldout")


@dataclass(frozen=True)
class VideoPrompt:
    """A prompt with the video scene it describes."""

    prompt: str
    scene: VideoScene
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, scene: VideoScene) -> VideoPrompt:
        """Return the scene with its caption as the prompt."""
        return cls(caption_of(scene), scene)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready dict (metadata keys at top level)."""
        return {**self.metadata, "prompt": self.prompt, "scene": self.scene.to_dict()}

    @classmethod
    def from_dict(cls, d: Any, where: str = "") -> VideoPrompt:
        """Return the record of a JSON object; raise RecordError `where: field '...': what is wrong`."""
        prefix = f"{where}: " if where else ""
        if not isinstance(d, dict):
            raise RecordError(f"{prefix}expected a JSON object, got {type(d).__name__}")
        prompt = d.get("prompt")
        if "prompt" in d and (not isinstance(prompt, str) or not prompt.strip()):
            raise RecordError(f"{prefix}field 'prompt': expected a non-empty string, got {prompt!r:.60}")
        if "scene" in d:
            try:
                scene = VideoScene.from_dict(d["scene"])
            except SceneError as exc:
                raise RecordError(f"{prefix}{exc.under('scene')}") from None
        elif prompt is None:
            raise RecordError(f"{prefix}field 'prompt': missing (give a prompt, a scene, or both)")
        else:
            scene = parse_caption(prompt)
            if scene is None:
                raise RecordError(f"{prefix}field 'scene': missing, and the prompt {prompt!r:.80} is not a caption the "
                                  "critic reads (e.g. 'a red circle moving left'); give the scene graph")
        return cls(prompt if prompt is not None else caption_of(scene), scene,
                   {k: v for k, v in d.items() if k not in ("prompt", "scene")})


@dataclass
class DataArgs:
    """Prompts and real (rendered) videos.

    Attributes:
        sft_videos: rendered training clips (one per scene, categories in turn) for SFT.
        train_prompts: a JSONL prompt file of IPO's training prompts instead of generated scenes ("": generated).
        heldout_prompts: a JSONL prompt file for evaluation instead of the generated held-out split.
    """

    sft_videos: int = 4000
    train_prompts: str = ""
    heldout_prompts: str = ""


def load_prompts(path: str | os.PathLike) -> list[VideoPrompt]:
    """Return the records of a prompt file (`.jsonl` or `.jsonl.gz`); RecordError `path:line: ...` at the first bad line."""
    path = Path(path)
    if not path.is_file():
        raise RecordError(f"{path}: no such file")
    records = list(iter_jsonl(path, VideoPrompt))
    if not records:
        raise RecordError(f"{path}:1: empty file: expected one JSON object per line")
    return records  # type: ignore[return-value]


def write_prompts(path: str | os.PathLike, records: Iterable[VideoPrompt | VideoScene]) -> Path:
    """Write records (a bare scene gets its caption) atomically as JSONL and return the path."""
    return write_jsonl(path, (r if isinstance(r, VideoPrompt) else VideoPrompt.of(r) for r in records))


def build_split(n_train: int, n_heldout: int, seed: int = 0,
                categories: Iterable[str] = CATEGORIES) -> dict[str, dict[str, list[VideoScene]]]:
    """Return {"train": {category: scenes}, "heldout": {category: scenes}}, n_train / n_heldout per category.

    Train scenes hold no held-out (colour, motion) combination; held-out scenes hold at least one
    (`shared.scenes.video.HELDOUT_MOTIONS`). Categories without motion (still, appearing,
    disappearing) have no held-out scene and get none. Deterministic in `seed`.
    """
    sizes = {"train": n_train, "heldout": n_heldout}
    out: dict[str, dict[str, list[VideoScene]]] = {split: {} for split in SPLITS}
    for category in categories:
        for split in SPLITS:
            if split == "heldout" and category not in ("moving", "two_moving"):
                out[split][category] = []
                continue
            rng = random.Random(f"t2v-split:{seed}:{split}:{category}")
            out[split][category] = [sample_video_scene(rng, category, split) for _ in range(sizes[split])]
    return out
