"""Sampling a group of completions per prompt with the prompt computed once: one prefill, its KV cache shared."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from shared.logprobs import _backbone_and_head


def left_pad(prompt_ids: Sequence[Sequence[int]], pad_id: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (input_ids, attention_mask), prompts left-padded to the longest."""
    width = max(map(len, prompt_ids))
    ids = torch.tensor([[pad_id] * (width - len(p)) + list(p) for p in prompt_ids], device=device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompt_ids], device=device)
    return ids, mask


def _prefill_shared(model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor, group_size: int):
    """Run the prompts but their last token once each; return the KV cache repeated for the group's rows, or None.

    None when the model cannot share it (encoder-decoder, or a cache without batch_repeat_interleave).
    """
    config = getattr(model, "config", None)
    if ids.size(1) < 2 or getattr(config, "is_encoder_decoder", False):
        return None
    backbone, _ = _backbone_and_head(model)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # as generate numbers left-padded prompts
    cache = backbone(input_ids=ids[:, :-1], attention_mask=mask[:, :-1], position_ids=positions[:, :-1],
                     use_cache=True).cache
    if not hasattr(cache, "batch_repeat_interleave"):
        return None
    cache.batch_repeat_interleave(group_size)
    return cache


def generate_groups(model: torch.nn.Module, prompt_ids: Sequence[Sequence[int]], group_size: int, *, pad_id: int,
                    share_prefix: bool = True, **generate_kwargs) -> torch.Tensor:
    """Return `model.generate` rows for `group_size` samples per prompt, group after group: (B * G, width + new).

    With share_prefix, each prompt is run once (all but its last token) and its KV cache repeated
    for the group's rows, instead of generate's num_return_sequences, which runs every row's
    prompt again: the same samples (same logits to ~1e-6, same random draws) for 1/G of the prompt
    cost. Rows are left-padded prompts of the same width, so completions start at column `width`.
    """
    ids, mask = left_pad(prompt_ids, pad_id, device=model.device)
    cache = _prefill_shared(model, ids, mask, group_size) if share_prefix and group_size > 1 else None
    if cache is None:
        return model.generate(input_ids=ids, attention_mask=mask, num_return_sequences=group_size, pad_token_id=pad_id,
                              **generate_kwargs)
    return model.generate(input_ids=ids.repeat_interleave(group_size, 0), attention_mask=mask.repeat_interleave(group_size, 0),
                          cache=cache, pad_token_id=pad_id, **generate_kwargs)
