"""Batched sampling from a causal LM for the sample step of every app: prompts in, texts out.

Prompts are plain text or chat messages (rendered with the chat template and its generation
prompt, as the training collators encode them), left-padded per batch. Completions stop at the
tokenizer's EOS; special tokens are removed from the returned text. With `constraint` (a
shared.constrained.TokenAutomaton) every completion follows that format. `sample_completions`
also says whether each completion ended (EOS) or ran into max_new_tokens, for rewards that score
an endless output as invalid.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from transformers import LogitsProcessorList, PreTrainedTokenizerBase

from shared.constrained import ConstrainedLogits, TokenAutomaton
from shared.group_sampling import generate_groups
from shared.modules.data import encode_prompt


class Sampled(NamedTuple):
    """One sampled completion: its text (special tokens removed), whether it ended with EOS, and its token count
    (EOS excluded)."""

    text: str
    finished: bool
    tokens: int


def sample_texts(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, prompts: Sequence, *, samples: int = 1,
                 temperature: float = 0.0, top_p: float = 1.0, max_new_tokens: int = 128, batch_size: int = 16,
                 seed: int | None = None, constraint: TokenAutomaton | None = None) -> list[list[str]]:
    """Return `samples` completions per prompt (greedy when temperature is 0; then samples must be 1).

    `batch_size` counts sequences (prompts x samples) per `generate` call; each prompt is computed
    once for its samples (`generate_groups`). With `seed`, sampling is
    reproducible and the caller's global RNG state is left as it was.
    """
    return [[c.text for c in row] for row in sample_completions(
        model, tokenizer, prompts, samples=samples, temperature=temperature, top_p=top_p,
        max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed, constraint=constraint)]


def sample_completions(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, prompts: Sequence, *,
                       samples: int = 1, temperature: float = 0.0, top_p: float = 1.0, max_new_tokens: int = 128,
                       batch_size: int = 16, seed: int | None = None,
                       constraint: TokenAutomaton | None = None) -> list[list[Sampled]]:
    """`sample_texts` with each completion's `finished` flag and token count."""
    if temperature <= 0 and samples != 1:
        raise ValueError("greedy decoding (temperature 0) gives one completion per prompt; set samples=1")
    encoded = [encode_prompt(tokenizer, p) for p in prompts]
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    per_call = max(1, batch_size // samples)
    was_training = model.training
    model.eval()
    out: list[list[Sampled]] = []
    try:
        with torch.random.fork_rng(devices=[]), torch.inference_mode():
            if seed is not None:
                torch.manual_seed(seed)
            for start in range(0, len(encoded), per_call):
                chunk = encoded[start:start + per_call]
                width = max(map(len, chunk))
                sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p} if temperature > 0 else {"do_sample": False}
                if constraint is not None:
                    sampling["logits_processor"] = LogitsProcessorList([ConstrainedLogits(constraint, width)])
                generated = generate_groups(model, chunk, samples, pad_id=pad, max_new_tokens=max_new_tokens,
                                            eos_token_id=eos, **sampling)
                done = [_completion(tokenizer, row, eos) for row in generated[:, width:].tolist()]
                out.extend(done[i:i + samples] for i in range(0, len(done), samples))
    finally:
        model.train(was_training)
    return out


def _completion(tokenizer: PreTrainedTokenizerBase, row: list[int], eos: int) -> Sampled:
    """The completion of one generated row (cut at its first EOS; rows that ended early are padded after it)."""
    finished = eos in row
    kept = row[:row.index(eos)] if finished else row
    return Sampled(tokenizer.decode(kept, skip_special_tokens=True), finished, len(kept))
