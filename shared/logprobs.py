"""Per-sequence log-probs of completions given prompts, padded or packed without padding.

A batch holds (prompt_ids, completion_ids) sequences. Only positions that predict a completion
token are pushed through the LM head: the (tokens, vocab) logits exist for completion tokens
alone, never the full (batch, time, vocab) tensor.

Packing: all sequences are concatenated into one row with position ids restarting at 0 for each
sequence and no attention mask; transformers then builds a block-diagonal causal mask (sdpa and
eager attention; flash-attention does the same from the position ids), so no sequence attends to
another and no compute is spent on padding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

Example = tuple[Sequence[int], Sequence[int]]  # (prompt token ids, completion token ids)


@dataclass
class SequenceLogps:
    """Sums of completion-token log-probs per sequence, with completion lengths (both (num_sequences,))."""

    logps: Tensor
    lengths: Tensor

    def average(self) -> Tensor:
        """Return length-normalised log-probs logps / lengths."""
        return self.logps / self.lengths.clamp(min=1)


def collate_padded(examples: Sequence[Example], pad_id: int) -> dict[str, Tensor]:
    """Return a right-padded batch: input_ids, attention_mask and completion_mask, each (batch, time)."""
    width = max(len(p) + len(c) for p, c in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(examples), width), dtype=torch.long)
    completion = torch.zeros((len(examples), width), dtype=torch.long)
    for row, (prompt, comp) in enumerate(examples):
        n_p, n = len(prompt), len(prompt) + len(comp)
        ids[row, :n] = torch.tensor([*prompt, *comp], dtype=torch.long)
        attention[row, :n] = 1
        completion[row, n_p:n] = 1
    return {"input_ids": ids, "attention_mask": attention, "completion_mask": completion}


def collate_packed(examples: Sequence[Example]) -> dict[str, Tensor]:
    """Return a packed batch: one row of input_ids, position_ids, completion_mask and segment_ids."""
    ids, positions, completion, segments = [], [], [], []
    for index, (prompt, comp) in enumerate(examples):
        n = len(prompt) + len(comp)
        ids.extend([*prompt, *comp])
        positions.extend(range(n))
        completion.extend([0] * len(prompt) + [1] * len(comp))
        segments.extend([index] * n)
    as_row = lambda xs: torch.tensor(xs, dtype=torch.long).unsqueeze(0)  # noqa: E731
    return {"input_ids": as_row(ids), "position_ids": as_row(positions), "completion_mask": as_row(completion),
            "segment_ids": as_row(segments)}


def _backbone_and_head(model: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Return the decoder stack and the LM head of a causal LM (peft-wrapped or not)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.get_decoder(), base.get_output_embeddings()


def _completion_token_logps(model: torch.nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, int]:
    """Return (log-prob of each completion token, its sequence index, number of sequences), in order."""
    backbone, head = _backbone_and_head(model)
    input_ids = batch["input_ids"]
    packed = "segment_ids" in batch
    kwargs = {"position_ids": batch["position_ids"]} if packed else {"attention_mask": batch["attention_mask"]}
    hidden = backbone(input_ids=input_ids, use_cache=False, **kwargs).last_hidden_state
    if packed:
        segments = batch["segment_ids"]
        same_sequence = segments[:, 1:] == segments[:, :-1]
        num_sequences = int(segments.max()) + 1
        owner = segments[:, 1:]
    else:
        same_sequence = torch.ones_like(input_ids[:, 1:], dtype=torch.bool)
        num_sequences = input_ids.size(0)
        owner = torch.arange(num_sequences, device=input_ids.device)[:, None].expand_as(input_ids[:, 1:])
    scored = batch["completion_mask"][:, 1:].bool() & same_sequence
    logits = head(hidden[:, :-1][scored]).float()  # (completion tokens, vocab) only
    token_logps = -F.cross_entropy(logits, input_ids[:, 1:][scored], reduction="none")
    return token_logps, owner[scored], num_sequences


def sequence_logps(model: torch.nn.Module, batch: dict[str, Tensor]) -> SequenceLogps:
    """Return per-sequence sums of completion log-probs for a padded or packed batch.

    Sequences are numbered in batch order (packed: by segment id). A completion token is scored
    from the previous position of the same sequence only.
    """
    token_logps, index, num_sequences = _completion_token_logps(model, batch)
    sums = torch.zeros(num_sequences, dtype=token_logps.dtype, device=token_logps.device).index_add(0, index, token_logps)
    lengths = torch.bincount(index, minlength=num_sequences)
    return SequenceLogps(sums, lengths)


def token_logps(model: torch.nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """Return (per-token completion log-probs, mask), both (num_sequences, longest completion), left-aligned."""
    values, index, num_sequences = _completion_token_logps(model, batch)
    lengths = torch.bincount(index, minlength=num_sequences)
    starts = torch.cumsum(lengths, 0) - lengths
    position = torch.arange(values.numel(), device=values.device) - starts[index]
    width = int(lengths.max()) if num_sequences else 0
    out = values.new_zeros(num_sequences, width).index_put((index, position), values)
    mask = torch.zeros(num_sequences, width, dtype=torch.bool, device=values.device).index_put(
        (index, position), torch.ones_like(index, dtype=torch.bool))
    return out, mask
