"""Reference log-probs behind one interface: frozen copy, policy with its adapter disabled, or precomputed."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor

from shared.atomic import atomic_writer
from shared.logprobs import sequence_logps, token_logps


class Reference(Protocol):
    """Gives reference log-probs for a batch of sequences (never tracks gradients)."""

    def logps(self, policy: torch.nn.Module, batch: dict[str, Tensor]) -> Tensor: ...


class FrozenCopyReference(torch.nn.Module):
    """A frozen deep copy of the policy taken at construction (before any update).

    In iterative methods, building it at the start of a round from the policy loaded from the
    previous round's checkpoint gives the previous-round snapshot as reference.
    """

    def __init__(self, policy: torch.nn.Module):
        super().__init__()
        self.model = copy.deepcopy(policy).eval()
        self.model.requires_grad_(False)

    @torch.no_grad()
    def logps(self, policy: torch.nn.Module, batch: dict[str, Tensor]) -> Tensor:
        """Return reference sequence log-probs from the frozen copy."""
        return sequence_logps(self.model, batch).logps

    @torch.no_grad()
    def token_logps(self, policy: torch.nn.Module, batch: dict[str, Tensor]) -> Tensor:
        """Return reference per-token completion log-probs (num_sequences, longest completion)."""
        return token_logps(self.model, batch)[0]


class AdapterDisabledReference:
    """The policy itself with its LoRA adapter switched off: the base model, at no memory cost."""

    @torch.no_grad()
    def logps(self, policy: torch.nn.Module, batch: dict[str, Tensor]) -> Tensor:
        """Return sequence log-probs of the policy's base model (adapters disabled)."""
        with self._base(policy):
            return sequence_logps(policy, batch).logps

    @torch.no_grad()
    def token_logps(self, policy: torch.nn.Module, batch: dict[str, Tensor]) -> Tensor:
        """Return the base model's per-token completion log-probs (num_sequences, longest completion)."""
        with self._base(policy):
            return token_logps(policy, batch)[0]

    @staticmethod
    @contextmanager
    def _base(policy: torch.nn.Module) -> Iterator[None]:
        """Adapters off and every module in eval mode (no dropout in the reference); both restored."""
        if not hasattr(policy, "disable_adapter"):
            raise ValueError("reference 'adapter_disabled' needs a LoRA (peft) policy; set model.lora or use 'frozen_copy'")
        modes = [(m, m.training) for m in policy.modules()]
        policy.eval()
        try:
            with policy.disable_adapter():
                yield
        finally:
            for module, training in modes:
                module.training = training


class PrecomputedReference:
    """Reference log-probs computed once and carried in each batch as `ref_logps`."""

    def logps(self, policy: torch.nn.Module, batch: dict[str, Tensor]) -> Tensor:
        """Return the batch's precomputed `ref_logps`."""
        if "ref_logps" not in batch:
            raise ValueError("reference 'precomputed': the batch has no 'ref_logps' (run precompute_reference first)")
        return batch["ref_logps"]


def build_reference(kind: str, policy: torch.nn.Module) -> Reference:
    """Return the reference named `kind`: frozen_copy, adapter_disabled or precomputed."""
    if kind == "frozen_copy":
        return FrozenCopyReference(policy)
    if kind == "adapter_disabled":
        return AdapterDisabledReference()
    if kind == "precomputed":
        return PrecomputedReference()
    raise ValueError(f"reference: '{kind}' is not one of frozen_copy, adapter_disabled, precomputed")


def model_fingerprint(model: torch.nn.Module) -> str:
    """Return a hash of the model's parameters and buffers (names, shapes, values)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def data_fingerprint(items: Sequence) -> str:
    """Return a hash of tokenised preference data (the token ids of every prompt and completion)."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(json.dumps([item.prompt, *item.completions()]).encode())
    return digest.hexdigest()[:16]


def precompute_reference(model: torch.nn.Module, items: Sequence, collate, *, batch_size: int = 8,
                         cache_dir: str | Path | None = None) -> list:
    """Return the items with reference log-probs attached, computed once (no gradients) and cached.

    `items` are EncodedPair or EncodedList objects; `collate` is their collator. The cache file
    is keyed by the data and model fingerprints, so a changed model or dataset never reuses
    stale numbers; it is written atomically.
    """
    cache = None
    if cache_dir is not None:
        cache = Path(cache_dir) / f"ref-logps-{data_fingerprint(items)}-{model_fingerprint(model)}.pt"
        if cache.is_file():
            return [item.with_reference(values) for item, values in zip(items, torch.load(cache))]
    was_training = model.training
    model.eval()
    values = []
    with torch.no_grad():
        for start in range(0, len(items), batch_size):
            chunk = items[start:start + batch_size]
            logps = sequence_logps(model, collate(chunk)).logps.tolist()
            values.extend(collate.split_reference(chunk, logps))
    model.train(was_training)
    if cache is not None:
        with atomic_writer(cache) as handle:
            torch.save(values, handle)
    return [item.with_reference(v) for item, v in zip(items, values)]


class ReferenceSoftSync(Callback):
    """Periodically move a frozen-copy reference toward the policy (TR-DPO, Gorbatovski et al. 2024).

    Every `every_n_steps` optimiser steps: ref <- alpha * policy + (1 - alpha) * ref. alpha = 1 is
    a hard reset of the reference to the current policy.
    """

    def __init__(self, every_n_steps: int, alpha: float = 0.6):
        if every_n_steps < 1 or not 0 < alpha <= 1:
            raise ValueError("ReferenceSoftSync: every_n_steps must be >= 1 and alpha in (0, 1]")
        self.every_n_steps, self.alpha = every_n_steps, alpha

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step % self.every_n_steps == 0 and isinstance(pl_module.reference, FrozenCopyReference):
            soft_update(pl_module.reference.model, pl_module.policy, self.alpha)


@torch.no_grad()
def soft_update(target: torch.nn.Module, source: torch.nn.Module, alpha: float) -> None:
    """Set target <- alpha * source + (1 - alpha) * target, parameter by parameter (same architecture)."""
    for t, s in zip(target.parameters(), source.parameters(), strict=True):
        t.lerp_(s.to(t.dtype), alpha)
