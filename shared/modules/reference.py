"""Reference log-probs behind one interface: frozen copy, policy with its adapter disabled, or precomputed."""

from __future__ import annotations

import copy
from typing import Protocol

import torch
from torch import Tensor

from shared.logprobs import SequenceLogps, sequence_logps, token_logps


class Reference(Protocol):
    """Gives reference log-probs for a batch of sequences (never tracks gradients)."""

    def logps(self, policy: torch.nn.Module, batch: dict[str, Tensor]) -> Tensor: ...


class FrozenCopyReference(torch.nn.Module):
    """A frozen deep copy of the policy taken at construction (before any update)."""

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
    def _base(policy: torch.nn.Module):
        if not hasattr(policy, "disable_adapter"):
            raise ValueError("reference 'adapter_disabled' needs a LoRA (peft) policy; set model.lora or use 'frozen_copy'")
        return policy.disable_adapter()


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


def reference_logps_of(policy: torch.nn.Module, batch: dict[str, Tensor]) -> SequenceLogps:
    """Return sequence log-probs for a batch without gradients (for precomputing a reference)."""
    with torch.no_grad():
        return sequence_logps(policy, batch)
