"""Finished model folders: save a policy with its adapter merged and a completion marker; resolve what a user names.

A stage that writes a model marks the folder complete last (`DONE`), so a rerun after a crash can
tell a finished model from a half-written one and skip only the former. A training run folder
names its final model in `final_model.json` ({"path": ..., plus app-specific keys such as "mode"}).
"""

from __future__ import annotations

import json
from pathlib import Path

from dataclasses import replace

from shared.models.loading import LoraSpec, ModelSpec, merge_adapter, save_policy

DONE = "DONE"


def mark_complete(folder: str | Path) -> Path:
    """Mark a fully written model folder complete (the last write of a stage that saves a model)."""
    folder = Path(folder)
    (folder / DONE).write_text("complete\n")
    return folder


def save_merged(policy, tokenizer, folder: str | Path) -> Path:
    """Save the policy with its adapter merged (a plain save_pretrained folder) and mark it complete."""
    folder = Path(folder)
    save_policy(merge_adapter(policy), tokenizer, folder)
    return mark_complete(folder)


def saved_spec(spec: ModelSpec, folder: str | Path, seed: int, lora: bool = True) -> ModelSpec:
    """The spec that loads a saved full-model folder, with a fresh adapter of `spec`'s LoRA settings or none."""
    out = replace(spec, source="hf", path=str(folder), seed=seed)
    return out if lora else replace(out, lora=LoraSpec(r=0))


def is_complete(folder: str | Path) -> bool:
    """True when save_merged finished writing this folder."""
    return (Path(folder) / DONE).is_file()


def resolve_model(source: str) -> tuple[ModelSpec, dict]:
    """Return (spec, the run's final_model.json or {}) for `smollm2`, a run folder, or a save_pretrained folder."""
    if source == "smollm2":
        return ModelSpec(source="smollm2"), {}
    folder, final = Path(source), {}
    if (folder / "final_model.json").is_file():
        final = json.loads((folder / "final_model.json").read_text())
        folder = Path(final["path"])
    if not (folder / "config.json").is_file():
        raise ValueError(f"{source}: neither a training run folder (final_model.json) nor a save_pretrained model folder")
    return ModelSpec(source="hf", path=str(folder)), final
