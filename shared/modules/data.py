"""Tokenised preference data: Pair records -> (prompt ids, chosen ids, rejected ids) -> packed batches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from shared.logprobs import collate_packed, collate_padded, collate_seq2seq, collate_shared_prefix
from shared.records import Pair, RankedList


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
    """Token ids of one preference pair, plus its optional per-pair weight, strength and margin.

    `chosen_scored` / `rejected_scored` (0/1 per completion token) mark which completion tokens
    the policy chose; the others (context inserted inside a completion) are not scored.
    """

    prompt: list[int]
    chosen: list[int]
    rejected: list[int]
    weight: float | None = None
    strength: float | None = None
    margin: float | None = None
    ref_chosen: float | None = None
    ref_rejected: float | None = None
    chosen_scored: tuple[int, ...] | None = None
    rejected_scored: tuple[int, ...] | None = None

    def completions(self) -> list[list[int]]:
        """Return the completions in batch order (chosen, rejected)."""
        return [self.chosen, self.rejected]

    def with_reference(self, values: Sequence[float]) -> EncodedPair:
        """Return a copy carrying precomputed reference log-probs (chosen, rejected)."""
        return replace(self, ref_chosen=values[0], ref_rejected=values[1])


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


LAYOUTS = ("auto", "shared_prefix", "packed", "padded")


class PreferenceCollator:
    """Collate EncodedPairs into one batch scoring all chosen then all rejected sequences.

    Layouts: "shared_prefix" computes each pair's prompt once ([prompt | chosen | rejected] with a
    4D mask; the mask costs rows x T^2, and flash-attention cannot take it); "packed" puts chosen
    and rejected in separate packed sequences (no padding, works with flash-attention's varlen
    path); "padded" is the plain right-padded batch; "auto" (default) is shared_prefix while
    blocks stay within `shared_prefix_max_tokens`, else packed. With `decoder_start_id` (an
    encoder-decoder policy) the layout is "seq2seq": prompts feed the encoder, completions the decoder.
    """

    def __init__(self, pad_id: int, layout: str = "auto", shared_prefix_max_tokens: int = 1024,
                 decoder_start_id: int | None = None):
        if layout not in LAYOUTS:
            raise ValueError(f"PreferenceCollator: layout '{layout}' is not one of {', '.join(LAYOUTS)}")
        self.pad_id, self.layout, self.shared_prefix_max_tokens = pad_id, layout, shared_prefix_max_tokens
        self.decoder_start_id = decoder_start_id

    def _layout(self, items: Sequence[EncodedPair]) -> str:
        if self.decoder_start_id is not None:
            return "seq2seq"
        if any(i.chosen_scored is not None or i.rejected_scored is not None for i in items):
            return "padded" if self.layout == "padded" else "packed"  # shared_prefix scores every completion token
        if self.layout != "auto":
            return self.layout
        longest = max(len(i.prompt) + len(i.chosen) + len(i.rejected) for i in items)
        return "shared_prefix" if longest <= self.shared_prefix_max_tokens else "packed"

    def __call__(self, items: Sequence[EncodedPair]) -> dict[str, Tensor]:
        layout = self._layout(items)
        sequences = ([(i.prompt, i.chosen, i.chosen_scored) for i in items]
                     + [(i.prompt, i.rejected, i.rejected_scored) for i in items])
        if layout == "seq2seq":
            batch = collate_seq2seq(sequences, self.pad_id, self.decoder_start_id)
        elif layout == "shared_prefix":
            batch = collate_shared_prefix([(i.prompt, i.chosen, i.rejected) for i in items], pad_id=self.pad_id)
        elif layout == "packed":
            batch = collate_packed(sequences, pad_id=self.pad_id)
        else:
            batch = collate_padded(sequences, self.pad_id)
        batch["num_pairs"] = torch.tensor(len(items))
        for name in ("weight", "strength", "margin"):
            values = [getattr(i, name) for i in items]
            if all(v is not None for v in values):
                batch[name] = torch.tensor(values, dtype=torch.float32)
        if all(i.ref_chosen is not None for i in items):
            batch["ref_logps"] = torch.tensor([i.ref_chosen for i in items] + [i.ref_rejected for i in items])
        return batch

    @staticmethod
    def split_reference(items: Sequence[EncodedPair], logps: Sequence[float]) -> list[tuple[float, float]]:
        """Return per-pair (chosen, rejected) values from a batch's sequence log-probs."""
        n = len(items)
        return [(logps[i], logps[n + i]) for i in range(n)]


@dataclass(frozen=True)
class EncodedList:
    """Token ids of a ranked list (outputs best first) with graded scores and optional reference log-probs."""

    prompt: list[int]
    outputs: list[list[int]]
    scores: list[float]
    ref: tuple[float, ...] | None = None

    def completions(self) -> list[list[int]]:
        """Return the outputs, best first."""
        return self.outputs

    def with_reference(self, values: Sequence[float]) -> EncodedList:
        """Return a copy carrying precomputed reference log-probs, one per output."""
        return replace(self, ref=tuple(values))


def encode_ranked_lists(lists: Sequence[RankedList], tokenizer: PreTrainedTokenizerBase,
                        max_length: int = 1024) -> list[EncodedList]:
    """Tokenise ranked lists like encode_pairs (prompt cut from the left, outputs from the right)."""
    out = []
    for ranked in lists:
        prompt = encode_prompt(tokenizer, ranked.prompt)
        prompt = prompt[-max(1, min(len(prompt), max_length // 2)):]
        room = max(1, max_length - len(prompt))
        outputs = [encode_completion(tokenizer, o)[:room] for o in ranked.outputs]
        out.append(EncodedList(prompt, outputs, list(ranked.scores)))
    return out


class RankedListCollator:
    """Collate EncodedLists: every output of every list in one batch, plus a (lists, list_size) index map.

    `list_index[b, k]` is the sequence number of list b's k-th output, or -1 past a shorter list's end.
    """

    def __init__(self, pad_id: int, packed: bool = True):
        self.pad_id, self.packed = pad_id, packed

    def __call__(self, items: Sequence[EncodedList]) -> dict[str, Tensor]:
        sequences, width = [], max(len(i.outputs) for i in items)
        index = torch.full((len(items), width), -1, dtype=torch.long)
        scores = torch.zeros((len(items), width))
        for b, item in enumerate(items):
            for k, output in enumerate(item.outputs):
                index[b, k] = len(sequences)
                scores[b, k] = item.scores[k]
                sequences.append((item.prompt, output))
        batch = collate_packed(sequences, pad_id=self.pad_id) if self.packed else collate_padded(sequences, self.pad_id)
        batch["list_index"], batch["list_scores"] = index, scores
        if all(i.ref is not None for i in items):
            batch["ref_logps"] = torch.tensor([v for i in items for v in i.ref])
        return batch

    @staticmethod
    def split_reference(items: Sequence[EncodedList], logps: Sequence[float]) -> list[tuple[float, ...]]:
        """Return per-list reference values from a batch's sequence log-probs (in output order)."""
        out, start = [], 0
        for item in items:
            out.append(tuple(logps[start:start + len(item.outputs)]))
            start += len(item.outputs)
        return out
