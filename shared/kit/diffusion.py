"""Recipe stages for diffusion models: denoising SFT and a preference fit (Diffusion-DPO family), each resumable.

The app gives its pipeline object (anything with `unet`, `noise_scheduler` and `text_encoder`),
how to load and save it, and its batches; diffusers is only imported by the modules these build.
"""

from __future__ import annotations

import json

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from shared.kit.sections import DiffusionSFTArgs, FitArgs
from shared.kit.stages import train_stage
from shared.models import LoraSpec, is_complete
from shared.training import TrainerArgs, make_loader


def stack_batch(batch: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Collate dicts of equally shaped tensors into a dict of stacked tensors."""
    return {k: torch.stack([b[k] for b in batch]) for k in batch[0]}


def run_diffusion_sft(run_dir: Path, sft: DiffusionSFTArgs, trainer: TrainerArgs, seed: int, *,
                      load: Callable[[], Any], dataset: Callable[[Any], list[dict]], empty_ids: Callable[[Any], torch.Tensor],
                      save: Callable[[Any, Path], Path], train_text_encoder: bool) -> Path:
    """Return the SFT pipeline folder: sft.init_from, run_dir/sft/model when complete, or a fresh denoising SFT saved there.

    `dataset(model)` gives {"samples", "input_ids"} items in the model's space; `empty_ids(model)` the
    empty prompt's token ids (condition dropout); `save(model, folder)` writes the pipeline and marks it complete.
    """
    from shared.modules.diffusion_sft import DiffusionSFTModule

    if sft.init_from:
        return Path(sft.init_from)
    folder = run_dir / "sft" / "model"
    if is_complete(folder):
        return folder
    model = load()
    if sft.steps > 0:
        data = dataset(model)
        print(f"SFT: {sft.steps} steps on {len(data)} examples", flush=True)
        module = DiffusionSFTModule(model.unet, model.noise_scheduler, text_encoder=model.text_encoder,
                                    empty_ids=empty_ids(model), train_text_encoder=sft.train_text_encoder and train_text_encoder,
                                    condition_dropout=sft.condition_dropout, lr=sft.lr, seed=seed)
        train_stage(run_dir / "sft", trainer, sft.steps, seed, module,
                    make_loader(data, sft.batch_size, stack_batch, seed=seed), curves=("loss",))
    return save(model, folder)


def add_unet_lora(unet: torch.nn.Module, lora: LoraSpec) -> None:
    """Freeze the UNet and give it a peft LoRA adapter (diffusers' add_adapter) when lora.r > 0."""
    if lora.r <= 0:
        return
    from peft import LoraConfig

    unet.requires_grad_(False)
    unet.add_adapter(LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                target_modules=list(lora.target_modules), init_lora_weights="gaussian"))


def fit_diffusion_preference(stage_dir: Path, model: Any, items: Sequence[dict], *, loss: str, loss_kwargs: dict,
                             fit: FitArgs, trainer: TrainerArgs, seed: int, save: Callable[[Any, Path], Path],
                             real_weight: float = 0.0) -> Path:
    """Train model.unet on preference batches (DiffusionPreferenceModule) and save the pipeline to stage_dir/model.

    Items may carry real samples ("real", "real_encoder_hidden_states"), weighted by `real_weight`."""
    from shared.modules.diffusion import DiffusionPreferenceModule

    module = DiffusionPreferenceModule(model.unet, model.noise_scheduler, loss=loss, loss_kwargs=loss_kwargs, lr=fit.lr,
                                       real_weight=real_weight, seed=seed)
    train_stage(stage_dir, trainer, fit.steps, seed, module, make_loader(list(items), fit.batch_size, stack_batch, seed=seed))
    return save(model, stage_dir / "model")


def resolve_pipeline(source: str, which: str | None = None) -> Path:
    """The pipeline folder a user names: a run folder (its final model, or `which` of its models) or a pipeline."""
    folder = Path(source)
    final = folder / "final_model.json"
    if final.is_file():
        record = json.loads(final.read_text())
        if which:
            if which not in record.get("models", {}):
                raise ValueError(f"{source}: the run has no model {which!r} (has: {', '.join(record.get('models', {}))})")
            return Path(record["models"][which])
        return Path(record["path"])
    if which:
        raise ValueError("--which needs a training run folder")
    if not (folder / "model_index.json").is_file():
        raise ValueError(f"{source}: neither a training run folder (final_model.json) nor a diffusers pipeline folder")
    return folder


def run_pipelines(run: Path, entries: Sequence[str], app: str) -> dict[str, Path]:
    """The pipelines an eval CLI compares: every model a finished run recorded (final_model.json "models"), plus
    `--model NAME=FOLDER` entries, each a diffusers pipeline folder; ValueError in one line otherwise."""
    from shared.kit.cli import named

    if not (run / "config.yaml").is_file() or not (run / "final_model.json").is_file():
        raise ValueError(f"{run}: not a finished {app} training run folder (no config.yaml or final_model.json)")
    models = {k: Path(v) for k, v in json.loads((run / "final_model.json").read_text())["models"].items()}
    for entry in entries:
        name, folder = named(entry, "FOLDER")
        if not (Path(folder) / "model_index.json").is_file():
            raise ValueError(f"--model {entry!r}: expected NAME=FOLDER with a diffusers pipeline folder")
        models[name] = Path(folder)
    return models
