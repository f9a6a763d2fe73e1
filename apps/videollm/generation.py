"""Greedy answers of a video LLM to (question, video) items, batched with left padding."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from apps.videollm.model import VideoProcessor
from shared.modules.media import token_type_ids


@torch.no_grad()
def generate_answers(model, processor: VideoProcessor, items: Sequence[tuple[str, np.ndarray | None]],
                     max_new_tokens: int = 64, batch_size: int = 16) -> list[str]:
    """Return the model's greedy answer to each (question, frames or None), in order."""
    model.eval()
    tok = processor.tokenizer
    out: list[str] = []
    for start in range(0, len(items), batch_size):
        chunk = [processor.prompt(q, frames) for q, frames in items[start:start + batch_size]]
        width = max(len(ids) for ids, _ in chunk)
        input_ids = torch.full((len(chunk), width), tok.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, (ids, _) in enumerate(chunk):
            input_ids[row, width - len(ids):] = torch.tensor(ids)
            attention[row, width - len(ids):] = 1
        kwargs = {}
        media = [m for _, m in chunk if m]
        if media:
            kwargs = {k: torch.cat([m[k] for m in media]) for k in media[0]}
            kwargs["mm_token_type_ids"] = token_type_ids(input_ids, processor.token_types)
        generated = model.generate(input_ids=input_ids, attention_mask=attention, max_new_tokens=max_new_tokens,
                                   do_sample=False, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                                   **kwargs)
        out.extend(tok.decode(row[width:], skip_special_tokens=True).strip() for row in generated)
    return out
