"""Tokenised preference data: Pair records -> (prompt ids, chosen ids, rejected ids) -> packed batches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from shared.logprobs import collate_packed, collate_padded
from shared.records import Pair


def _completion_text(value) -> str:
    """Return a completion as text: a plain string, or the assistant messages' contents joined."""
    if isinstance(value, str):
        return value
    return "".join(m["content"] for m in value if m.get("role") == "assistant")


def encode_prompt(tokenizer: PreTrainedTokenizerBase, prompt) -> list[int]:
    """Return prompt token ids; a conversational prompt goes through the chat template with a generation prompt."""
    if isinstance(prompt, str):
        return tokenizer(prompt, add_special_tokens=False)["input_ids"]
    return list(tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"])


def encode_completion(tokenizer: PreTrainedTokenizerBase, completion) -> list[int]:
    """Return completion token ids followed by EOS."""
    return tokenizer(_completion_text(completion), add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]


@dataclass(frozen=True)
class EncodedPair:
    """Token ids of one preference pair, plus its optional per-pair weight, strength and margin."""

    prompt: list[int]
    chosen: list[int]
    rejected: list[int]
    weight: float | None = None
    strength: float | None = None
    margin: float | None = None


def encode_pairs(pairs: Sequence[Pair], tokenizer: PreTrainedTokenizerBase, max_length: int = 1024) -> list[EncodedPair]:
    """Tokenise pairs; the prompt is cut from the left and completions from the right to fit max_length."""
    out = []
    for pair in pairs:
        prompt = encode_prompt(tokenizer, pair.prompt)
        chosen, rejected = encode_completion(tokenizer, pair.chosen), encode_completion(tokenizer, pair.rejected)
        keep_prompt = max(1, min(len(prompt), max_length // 2))
        prompt = prompt[-keep_prompt:]
        room = max(1, max_length - len(prompt))
        out.append(EncodedPair(prompt, chosen[:room], rejected[:room], pair.weight, pair.strength, pair.margin))
    return out


class PreferenceCollator:
    """Collate EncodedPairs into one batch holding all chosen then all rejected sequences."""

    def __init__(self, pad_id: int, packed: bool = True):
        self.pad_id, self.packed = pad_id, packed

    def __call__(self, items: Sequence[EncodedPair]) -> dict[str, Tensor]:
        sequences = [(i.prompt, i.chosen) for i in items] + [(i.prompt, i.rejected) for i in items]
        batch = collate_packed(sequences) if self.packed else collate_padded(sequences, self.pad_id)
        batch["num_pairs"] = torch.tensor(len(items))
        for name in ("weight", "strength", "margin"):
            values = [getattr(i, name) for i in items]
            if all(v is not None for v in values):
                batch[name] = torch.tensor(values, dtype=torch.float32)
        return batch
