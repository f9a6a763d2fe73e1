"""Lightning owns the loop: one place that turns TrainerArgs into a configured `lightning.Trainer`.

Loggers (CSV by default; TensorBoard, W&B, MLflow by name), precision, gradient accumulation,
gradient clipping, the distributed strategy (ddp, fsdp, deepspeed) and checkpoints with exact
resume all come from Lightning; this module only maps our config onto it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from torch.utils.data import DataLoader, Sampler

from shared.resources import PeakRSS, record_resources, set_mmap_threshold

LOGGERS = ("csv", "tensorboard", "wandb", "mlflow", "none")

# Messages that every CPU run prints and that say nothing about the run at hand.
_NOISE = (
    r".*`validation_step` but have no `val_dataloader`.*",
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",
    r".*`is_gradient_checkpointing` is deprecated.*",
    r".*does not have many workers which may be a bottleneck.*",
    r".*Found \d+ module\(s\) in eval mode.*",
)


def quiet_lightning() -> None:
    """Silence Lightning's start-up banners (GPU/TPU availability, tips) and known harmless warnings.

    Command-line entry points call this so that what they print is about the run; warnings that
    concern the user's settings still show.
    """
    import logging
    import warnings

    for name in ("lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in _NOISE:
        warnings.filterwarnings("ignore", message=pattern)


@dataclass
class TrainerArgs:
    """How Lightning runs the fit.

    Attributes:
        max_steps: optimiser steps to run (-1: use max_epochs).
        max_epochs: passes over the data when max_steps is -1.
        precision: Lightning precision ("32-true", "bf16-mixed", "16-mixed", "bf16-true").
        accumulate_grad_batches: micro-batches per optimiser step.
        gradient_clip_val: clip the gradient norm to this value (null: no clipping).
        strategy: "auto", "ddp", "ddp_spawn", "fsdp" or "deepspeed" (deepspeed needs the package).
        accelerator: "auto", "cpu", "gpu".
        devices: number of devices, or "auto".
        num_nodes: machines for multi-node runs.
        logger: "csv", "tensorboard", "wandb", "mlflow" or "none".
        log_every_n_steps: how often metrics are logged.
        checkpoint_every_n_steps: save `last.ckpt` every N steps (null: at the end of each epoch).
        progress_bar: show Lightning's progress bar.
        seed: seed for Python, NumPy and torch (and dataloader workers).
        deterministic: use only deterministic kernels (slower; GPU runs need it for bit-exact repeats).
        mmap_threshold_kb: glibc only, process-wide, applied when the run starts: allocations of at
            least this many KiB are mmapped and so returned to the OS when freed, which keeps a
            step's resident peak at what the batch needs instead of the heap's high-water mark, for
            25-65% more time per step on SmolLM2-sized models (docs/benchmarks.md). 0 keeps glibc's
            adaptive default; `MALLOC_MMAP_THRESHOLD_` in the environment takes precedence.
    """

    max_steps: int = 100
    max_epochs: int = 1
    precision: str = "32-true"
    accumulate_grad_batches: int = 1
    gradient_clip_val: float | None = 1.0
    strategy: str = "auto"
    accelerator: str = "auto"
    devices: str = "auto"
    num_nodes: int = 1
    logger: Literal["csv", "tensorboard", "wandb", "mlflow", "none"] = "csv"
    log_every_n_steps: int = 10
    checkpoint_every_n_steps: int | None = None
    progress_bar: bool = True
    seed: int = 0
    deterministic: bool = False
    mmap_threshold_kb: int = 0

    def __post_init__(self) -> None:
        if self.mmap_threshold_kb < 0:
            raise ValueError(f"mmap_threshold_kb must be >= 0 (0: glibc's default), got {self.mmap_threshold_kb}")


def _logger(kind: str, run_dir: Path):
    if kind == "csv":
        from lightning.pytorch.loggers import CSVLogger

        return CSVLogger(run_dir, name="logs")  # version_N per fit, so a resumed fit keeps earlier logs
    if kind == "tensorboard":
        from lightning.pytorch.loggers import TensorBoardLogger

        return TensorBoardLogger(run_dir, name="logs")
    if kind == "wandb":
        from lightning.pytorch.loggers import WandbLogger

        return WandbLogger(save_dir=run_dir, project="aligned-generators")
    if kind == "mlflow":
        from lightning.pytorch.loggers import MLFlowLogger

        return MLFlowLogger(experiment_name="aligned-generators", save_dir=str(run_dir / "mlruns"))
    if kind == "none":
        return False
    raise ValueError(f"trainer.logger: '{kind}' is not one of {', '.join(LOGGERS)}")


def _devices(value: str) -> int | str:
    return int(value) if str(value).isdigit() else value


def build_trainer(args: TrainerArgs, run_dir: str | Path, callbacks: list | None = None) -> L.Trainer:
    """Return a Lightning Trainer writing logs and checkpoints under `run_dir` (checkpoints/last.ckpt)."""
    run_dir = Path(run_dir)
    set_mmap_threshold(args.mmap_threshold_kb)
    L.seed_everything(args.seed, workers=True, verbose=False)
    checkpoint = ModelCheckpoint(dirpath=run_dir / "checkpoints", save_last=True, save_top_k=0,
                                 every_n_train_steps=args.checkpoint_every_n_steps)
    callbacks = [checkpoint, ResumeMidEpoch(), *(callbacks or [])]
    return L.Trainer(
        max_steps=args.max_steps, max_epochs=args.max_epochs if args.max_steps < 0 else -1,
        precision=args.precision, accumulate_grad_batches=args.accumulate_grad_batches,
        gradient_clip_val=args.gradient_clip_val, strategy=args.strategy, accelerator=args.accelerator,
        devices=_devices(args.devices), num_nodes=args.num_nodes, logger=_logger(args.logger, run_dir),
        log_every_n_steps=args.log_every_n_steps, callbacks=callbacks,
        enable_progress_bar=args.progress_bar, enable_model_summary=False, default_root_dir=run_dir,
        deterministic="warn" if args.deterministic else None,
    )


def last_checkpoint(run_dir: str | Path) -> Path | None:
    """Return run_dir/checkpoints/last.ckpt if a previous fit left one, else None."""
    path = Path(run_dir) / "checkpoints" / "last.ckpt"
    return path if path.is_file() else None


def fit(trainer: L.Trainer, module: L.LightningModule, train_loader, val_loader=None, resume: bool = True) -> None:
    """Run trainer.fit, resuming exactly from the run folder's last checkpoint when there is one."""
    ckpt = last_checkpoint(trainer.default_root_dir) if resume else None
    trainer.fit(module, train_loader, val_loader, ckpt_path=ckpt)


class EpochShuffleSampler(Sampler[int]):
    """Shuffles with a permutation that depends only on (seed, epoch), so a resumed run sees the same order.

    Lightning calls `set_epoch` at the start of every epoch (and after restoring a checkpoint),
    unlike a plain RandomSampler, whose order depends on the global RNG at that moment.
    """

    def __init__(self, length: int, seed: int = 0):
        self.length, self.seed, self.epoch, self.skip = length, seed, 0, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.length, generator=generator).tolist()
        skip, self.skip = self.skip, 0  # a resumed epoch starts after the samples it already trained on
        return iter(order[skip:])

    def __len__(self) -> int:
        return self.length


class ResumeMidEpoch(Callback):
    """After a restore in the middle of an epoch, skip the batches that epoch already trained on.

    Lightning restores the loop's batch counter but restarts the epoch's data from the top; an
    EpochShuffleSampler told how many samples to skip makes the resumed run see exactly the
    batches an uninterrupted run would have seen.
    """

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Runs once per fit, after the checkpoint is restored and before the epoch's data iterator
        # exists (Lightning does not call on_train_epoch_start for an epoch it resumes mid-way).
        loader = trainer.train_dataloader
        sampler = getattr(loader, "sampler", None)
        if not isinstance(sampler, EpochShuffleSampler):
            return
        done = trainer.fit_loop.epoch_loop.batch_progress.current.ready
        if 0 < done < len(loader):  # at an epoch boundary the counter still holds the finished epoch's count
            sampler.skip = done * loader.batch_size


def make_loader(dataset, batch_size: int, collate_fn, *, shuffle: bool = True, seed: int = 0,
                num_workers: int = 0) -> DataLoader:
    """Return a DataLoader whose shuffling is resumable (EpochShuffleSampler) and reproducible."""
    sampler = EpochShuffleSampler(len(dataset), seed) if shuffle else None
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=collate_fn, num_workers=num_workers)


class SelectBest(Callback):
    """Keep the weights that score best on a validation metric; stop after `patience` checks without a gain.

    Every `every_n_steps` optimiser steps `score(module)` is called (higher is better; e.g. a
    ranking metric on validation users, RecBole's `valid_metric` early stopping) and logged as
    `val/<name>`; the final weights are checked too, and when training ends the best weights are put back into the module's trainable
    part. The best score and weights travel in Lightning's checkpoint, so a resumed fit keeps them.
    The module is in eval mode during `score` and returned to train mode after.
    """

    def __init__(self, score, every_n_steps: int, patience: int = 0, name: str = "select_metric"):
        if every_n_steps < 1:
            raise ValueError("SelectBest: every_n_steps must be >= 1")
        self.score, self.every, self.patience, self.name = score, every_n_steps, patience, name
        self.best: float | None = None
        self.best_step = 0
        self.best_state: dict | None = None
        self.checks_without_gain = 0
        self.history: list[tuple[int, float]] = []

    def _target(self, pl_module) -> torch.nn.Module:
        return pl_module.trainable_module() if hasattr(pl_module, "trainable_module") else pl_module

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step % self.every != 0 or (self.history and self.history[-1][0] == step):
            return
        self._check(trainer, pl_module, step, log=True)

    def _check(self, trainer, pl_module, step: int, log: bool = False) -> None:
        target = self._target(pl_module)
        was_training = target.training
        target.eval()
        with torch.no_grad():
            value = float(self.score(pl_module))
        target.train(was_training)
        self.history.append((step, value))
        if log and trainer.logger is not None:  # straight to the logger: one row per check, not a value that lingers
            trainer.logger.log_metrics({f"val/{self.name}": value}, step=step)
        if self.best is None or value > self.best:
            self.best, self.best_step, self.checks_without_gain = value, step, 0
            self.best_state = {k: v.detach().clone() for k, v in target.state_dict().items()}
        else:
            self.checks_without_gain += 1
            if self.patience and self.checks_without_gain >= self.patience:
                trainer.should_stop = True

    def on_train_end(self, trainer, pl_module) -> None:
        step = trainer.global_step
        if not self.history or self.history[-1][0] != step:
            self._check(trainer, pl_module, step)  # the final weights compete too
        if self.best_state is not None:
            self._target(pl_module).load_state_dict(self.best_state)

    def state_dict(self) -> dict:
        return {"best": self.best, "best_step": self.best_step, "best_state": self.best_state,
                "checks_without_gain": self.checks_without_gain, "history": self.history}

    def load_state_dict(self, state_dict: dict) -> None:
        self.best, self.best_step = state_dict["best"], state_dict["best_step"]
        self.best_state, self.checks_without_gain = state_dict["best_state"], state_dict["checks_without_gain"]
        self.history = [tuple(h) for h in state_dict["history"]]


class StageResources(Callback):
    """Record a Lightning fit's time and peak resident memory in `path` under `key` (default "fit")."""

    def __init__(self, path: str | os.PathLike, key: str = "fit", interval_s: float = 0.05):
        self.path, self.key = Path(path), key
        self.usage = PeakRSS(interval_s)

    def on_fit_start(self, trainer, pl_module) -> None:
        self.usage.__enter__()

    def on_fit_end(self, trainer, pl_module) -> None:
        self.usage.__exit__()
        if trainer.is_global_zero:
            record_resources(self.path, self.key, self.usage)
            peak = self.usage.peak_mb
            if peak is not None:
                print(f"{self.path.parent.name}: {self.key} peak RSS {peak / 1024:.2f} GB, {self.usage.seconds:.0f} s",
                      flush=True)
