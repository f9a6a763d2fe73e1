"""The policy's token stream: a decoder-only model reads source words and writes target words in one sequence.

    prompt:      <s> <simul>                      (or <translate>: the read/write schedule is imposed)
    completion:  <read> w1 <read> w2 t1 t2 <read> w3 </src> t3 t4 </s>

At each position the model either emits `<read>` (the environment then appends the next source
word, and `</src>` after the last one) or writes a target token; `</s>` ends the translation and
is only allowed once the whole source is read. Source words and `</src>` are context the policy
did not choose: they are never scored (the `scored` mask of shared.logprobs). Under `<simul>` the
`<read>` tokens are the model's own read/write policy and are scored; under `<translate>` (wait-k
and full-sentence translation, SFT's translation task) the schedule comes from outside and only
target tokens are scored. Any tokenizer works: the action tokens are added as special tokens when
missing (a tiny model gets a word-level tokenizer over the data's words).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from shared.models import ModelSpec, load_policy, save_policy
from shared.models.saved import mark_complete

READ, SOURCE_END = "<read>", "</src>"
TAGS = {"simul": "<simul>", "translate": "<translate>"}
ACTION_TOKENS = [READ, SOURCE_END, *TAGS.values()]


def word_tokenizer(words: Iterable[str]) -> PreTrainedTokenizerFast:
    """A word-level tokenizer: one token per whitespace word of `words`, the action tokens and <pad> <s> </s> <unk>."""
    vocab: dict[str, int] = {}
    for token in ["<pad>", "<s>", "</s>", "<unk>", *ACTION_TOKENS, *sorted(set(words))]:
        vocab.setdefault(token, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with single spaces
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", additional_special_tokens=ACTION_TOKENS)


def build_initial_policy(spec: ModelSpec, words: Iterable[str], folder: Path) -> Path:
    """Write the starting model to `folder` (once): a tiny Llama with a word-level tokenizer when spec.source is tiny,
    else the given model with the action tokens added (new embedding rows initialised at the mean)."""
    from shared.models import is_complete

    if is_complete(folder):
        return folder
    if spec.source == "tiny":
        tok = word_tokenizer(words)
        config = LlamaConfig(
            vocab_size=len(tok), hidden_size=spec.hidden_size, num_hidden_layers=spec.num_layers,
            num_attention_heads=spec.num_heads, num_key_value_heads=spec.num_heads,
            intermediate_size=spec.intermediate_size, max_position_embeddings=spec.max_position_embeddings,
            pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
            tie_word_embeddings=True)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.seed)
            model = LlamaForCausalLM(config)
    else:
        from dataclasses import replace

        from shared.models import LoraSpec

        model, tok = load_policy(replace(spec, lora=LoraSpec(r=0)))
        missing = [t for t in ACTION_TOKENS if t not in tok.get_vocab()]
        if missing:
            tok.add_special_tokens({"additional_special_tokens": missing})
            model.resize_token_embeddings(len(tok), mean_resizing=True)
    save_policy(model, tok, folder)
    return mark_complete(folder)


@dataclass
class Vocabulary:
    """Token ids the decoder and the encoders need, with a cache of each word's tokens."""

    tok: PreTrainedTokenizerFast
    read: int = field(init=False)
    source_end: int = field(init=False)
    eos: int = field(init=False)
    tags: dict[str, int] = field(init=False)
    _words: dict[str, list[int]] = field(init=False, default_factory=dict)

    def __post_init__(self):
        ids = self.tok.convert_tokens_to_ids
        self.read, self.source_end, self.eos = ids(READ), ids(SOURCE_END), self.tok.eos_token_id
        self.tags = {mode: ids(tag) for mode, tag in TAGS.items()}
        unknown = [t for t in ACTION_TOKENS if ids(t) in (None, self.tok.unk_token_id)]
        if unknown:
            raise ValueError(f"the tokenizer has no {unknown[0]} token: build the model with build_initial_policy")

    def word(self, word: str) -> list[int]:
        """Token ids of one word as it appears after a space."""
        if word not in self._words:
            self._words[word] = self.tok(" " + word, add_special_tokens=False)["input_ids"]
        return self._words[word]

    def prompt(self, mode: str) -> list[int]:
        """The prompt of a stream: BOS (when the tokenizer has one) and the mode's tag."""
        bos = [] if self.tok.bos_token_id is None else [self.tok.bos_token_id]
        return bos + [self.tags[mode]]

    def banned(self) -> list[int]:
        """Tokens the policy may never emit (tags, </src>, padding, BOS, unknown)."""
        ids = [*self.tags.values(), self.source_end, self.tok.pad_token_id, self.tok.bos_token_id, self.tok.unk_token_id]
        return sorted({i for i in ids if i is not None and i != self.eos})


def read_tokens(vocab: Vocabulary, source: Sequence[str], index: int) -> list[int]:
    """What one read appends: <read>, then the next source word, then </src> after the last one."""
    out = [vocab.read, *vocab.word(source[index])]
    return out + [vocab.source_end] if index + 1 == len(source) else out


def encode_schedule(vocab: Vocabulary, mode: str, source: Sequence[str], target: Sequence[str],
                    delays: Sequence[int], score_reads: bool) -> tuple[list[int], list[int], list[int]]:
    """(prompt ids, completion ids, scored mask) of writing `target` with `delays` (reads before each word).

    The rest of the source is read before </s>. Reads are scored when `score_reads` (the model's
    own policy), source words and </src> never; target tokens and </s> always.
    """
    if len(delays) != len(target):
        raise ValueError(f"{len(delays)} delays for {len(target)} target words")
    ids, scored, read = [], [], 0

    def do_read():
        nonlocal read
        tokens = read_tokens(vocab, source, read)
        ids.extend(tokens)
        scored.extend([int(score_reads)] + [0] * (len(tokens) - 1))
        read += 1

    for word, delay in zip(target, delays):
        while read < min(delay, len(source)):
            do_read()
        tokens = vocab.word(word)
        ids.extend(tokens)
        scored.extend([1] * len(tokens))
    while read < len(source):
        do_read()
    return vocab.prompt(mode), ids + [vocab.eos], scored + [1]
