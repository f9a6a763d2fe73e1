"""Vision inputs beside token sequences: batches a vision-language policy trains on (SFT and pairs).

An item is (encoded example, media): the example as the text collators take it (SFT's
(prompt ids, completion ids), an EncodedPair) and a dict of the tensors its vision placeholders
stand for (e.g. Qwen2.5-VL's {"pixel_values_videos": (patches, dim), "video_grid_thw": (1, 3)};
empty for a text-only example). The inner collator must pad (a VL model computes its positions
from the attention mask); the media are concatenated in the batch's sequence order: `copies` 1 for
SFT, 2 for pairs (all chosen sequences, then all rejected ones, each with its pair's video).
`token_types` maps placeholder token ids to the modality type transformers' VL models read from
`mm_token_type_ids` (Qwen2.5-VL: 1 image, 2 video).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor


def token_type_ids(input_ids: Tensor, token_types: Mapping[int, int]) -> Tensor:
    """Return mm_token_type_ids for a batch: each placeholder token's modality type, 0 for text."""
    types = torch.zeros_like(input_ids, dtype=torch.int32)
    for token, kind in token_types.items():
        types[input_ids == token] = kind
    return types


class MediaCollator:
    """Collate (example, media) items with a padding text collator and append the media in sequence order."""

    def __init__(self, inner: Callable[[Sequence[Any]], dict[str, Tensor]], copies: int = 1,
                 token_types: Mapping[int, int] | None = None):
        if copies < 1:
            raise ValueError(f"copies must be >= 1, got {copies}")
        self.inner, self.copies, self.token_types = inner, copies, dict(token_types or {})

    def __call__(self, items: Sequence[tuple[Any, Mapping[str, Tensor]]]) -> dict[str, Tensor]:
        batch = self.inner([example for example, _ in items])
        if "attention_mask" not in batch:
            raise ValueError("MediaCollator needs a padding inner collator (the batch has no attention_mask)")
        media = [m for _, m in items if m] * self.copies
        for key in (media[0] if media else {}):
            batch[key] = torch.cat([m[key] for m in media])
        if self.token_types:
            batch["mm_token_type_ids"] = token_type_ids(batch["input_ids"], self.token_types)
        return batch
