"""Resolve what a user names as a model: the embedded base model, a training run folder, or a model folder."""

from __future__ import annotations

import json
from pathlib import Path

from shared.models import ModelSpec


def resolve_model(source: str) -> tuple[ModelSpec, str | None]:
    """Return (spec, the run's prompt mode or None) for `smollm2`, a run folder (final_model.json) or a save_pretrained folder."""
    if source == "smollm2":
        return ModelSpec(source="smollm2"), None
    folder, mode = Path(source), None
    if (folder / "final_model.json").is_file():
        final = json.loads((folder / "final_model.json").read_text())
        folder, mode = Path(final["path"]), final.get("mode")
    if not (folder / "config.json").is_file():
        raise ValueError(f"{source}: neither a training run folder (final_model.json) nor a save_pretrained model folder")
    return ModelSpec(source="hf", path=str(folder)), mode
