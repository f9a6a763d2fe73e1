"""Tokenizers built offline: byte-level (tiny models in tests and fast demos) and word-level over a given vocabulary."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

SPECIALS = ("<pad>", "<s>", "</s>")
# A minimal chat template in the ChatML shape SmolLM2 uses, so chat code paths run on tiny models too.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def byte_tokenizer() -> PreTrainedTokenizerFast:
    """Return a 259-token tokenizer (3 specials + 256 bytes) that round-trips any UTF-8 text."""
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {tok: i for i, tok in enumerate(SPECIALS)}
    for ch in sorted(alphabet):
        vocab[ch] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False), pre_tokenizers.Split("", "isolated")]
    )
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>")
    fast.chat_template = CHAT_TEMPLATE
    return fast


def word_level_tokenizer(tokens: list[str]) -> PreTrainedTokenizerFast:
    """Return a tokenizer with one id per entry of `tokens` (in order), split on whitespace.

    The first four entries must be the specials <pad> <s> </s> <unk> (ids 0-3); models whose
    vocabulary is not text (item ids, semantic-ID codes) use it so their folders save and load
    with save_pretrained / AutoTokenizer like any other.
    """
    if list(tokens[:4]) != ["<pad>", "<s>", "</s>", "<unk>"]:
        raise ValueError("word_level_tokenizer: the first four tokens must be <pad> <s> </s> <unk>")
    if len(set(tokens)) != len(tokens):
        raise ValueError("word_level_tokenizer: tokens repeat")
    raw = Tokenizer(models.WordLevel({t: i for i, t in enumerate(tokens)}, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=raw, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>")


PROMPT_SPECIALS = ("[PAD]", "[UNK]", "[BOS]", "[EOS]")


def drawn_vocabulary(draw: Callable[[random.Random, str], str], kinds: Sequence[str], draws: int = 400,
                     seed: int = 0) -> list[str]:
    """Every lower-case word of the prompts `draw(rng, kind)` writes, `draws` prompts of each kind (sorted): the
    vocabulary of a generated prompt grammar, for `prompt_word_tokenizer`."""
    rng = random.Random(seed)
    words: set[str] = set()
    for kind in kinds:
        for _ in range(draws):
            words.update(re.findall(r"[a-z]+", draw(rng, kind).lower()))
    return sorted(words)


def prompt_word_tokenizer(words: list[str], max_length: int) -> PreTrainedTokenizerFast:
    """A word-level prompt tokenizer for tiny diffusion text encoders: [BOS] words [EOS], padded with [PAD]
    to `max_length` (lower-cased; unknown words -> [UNK]); ids 0-3 are the specials, then `words` in order."""
    pad, unk, bos, eos = PROMPT_SPECIALS
    vocab = {tok: i for i, tok in enumerate([*PROMPT_SPECIALS, *words])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=unk))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A {eos}", special_tokens=[(bos, 2), (eos, 3)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=pad, unk_token=unk, bos_token=bos, eos_token=eos,
                                   model_max_length=max_length)


def fixed_length_ids(tokenizer, prompts: list[str]) -> torch.Tensor:
    """Token ids padded (and truncated) to the tokenizer's fixed length, as diffusion pipelines encode prompts."""
    return tokenizer(list(prompts), padding="max_length", truncation=True, max_length=tokenizer.model_max_length,
                     return_tensors="pt").input_ids
