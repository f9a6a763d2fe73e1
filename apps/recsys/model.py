"""OneRec's generator: an encoder over the user's history and a sparse mixture-of-experts decoder that writes the
next session of items as semantic-ID tokens, with beam search constrained to items that exist.

The network is transformers' NLLB-MoE built from config (`NllbMoeForConditionalGeneration`): an
encoder-decoder whose feed-forward layers are top-2-of-N expert mixtures with the Switch/GShard
load-balancing loss (`router_aux_loss_coef`), the shape OneRec describes. Tokens: four specials
(<pad>, <s> the decoder start, </s>, <unk>), then one token per code of each semantic-ID level, written
`<a_12>`, `<b_3>`, `<c_7>` (and `<d_0>` for the extra level that separates colliding items). The
encoder reads the history's items oldest first, each as its code tokens; the decoder writes m items
and </s>. The tokenizer is a `PreTrainedTokenizerFast` (WordLevel), so a saved model folder is a
plain `save_pretrained` one.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from apps.recsys.semantic_ids import ItemTrie, SemanticIds

SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")
PAD, START, EOS, UNK = range(4)


@dataclass
class ModelArgs:
    """The generator's size (NLLB-MoE from config).

    Attributes:
        d_model: hidden size.
        encoder_layers: encoder layers.
        decoder_layers: decoder layers.
        heads: attention heads.
        ffn_dim: each expert's feed-forward width.
        experts: experts per mixture layer (each token goes to the top 2).
        sparse_step: every sparse_step-th layer is a mixture (1: all).
        aux_loss_coef: weight of the load-balancing loss.
        dropout: dropout in attention and feed-forward layers.
        init_from: a saved generator folder to start from instead of a fresh one.
    """

    d_model: int = 128
    encoder_layers: int = 2
    decoder_layers: int = 2
    heads: int = 4
    ffn_dim: int = 256
    experts: int = 4
    sparse_step: int = 1
    aux_loss_coef: float = 0.01
    dropout: float = 0.1
    init_from: str = ""


def code_token(level: int, code: int) -> str:
    """The token text of `code` at semantic-ID level `level` (0-based): <a_12>, <b_3>, ..."""
    return f"<{string.ascii_lowercase[level]}_{code}>"


class SessionVocab:
    """Token ids of items and sessions for one SemanticIds table."""

    def __init__(self, sids: SemanticIds):
        self.sids = sids
        sizes = list(sids.codebook_sizes) + ([sids.extra_size] if sids.extra_size else [])
        self.tokens = list(SPECIALS)
        self.offsets = []
        for level, size in enumerate(sizes):
            self.offsets.append(len(self.tokens))
            self.tokens.extend(code_token(level, c) for c in range(size))
        self.trie = ItemTrie(sids)

    def __len__(self) -> int:
        return len(self.tokens)

    def item_ids(self, item: str) -> list[int]:
        """The token ids of one item's semantic ID."""
        return [self.offsets[level] + code for level, code in enumerate(self.sids.code_of(item))]

    def history_ids(self, history: Sequence[str], max_items: int) -> list[int]:
        """Encoder input: the most recent max_items items, oldest first, then </s>."""
        if not history:
            raise ValueError("empty history: the generator needs at least one item the user interacted with")
        return [t for item in list(history)[-max_items:] for t in self.item_ids(item)] + [EOS]

    def session_ids(self, session: Sequence[str]) -> list[int]:
        """Decoder target: the session's items then </s>."""
        return [t for item in session for t in self.item_ids(item)] + [EOS]

    def level_of(self, token: int) -> tuple[int, int] | None:
        """(level, code) of a code token; None for a special token."""
        for level in range(len(self.offsets) - 1, -1, -1):
            if token >= self.offsets[level]:
                return level, token - self.offsets[level]
        return None

    def decode(self, ids: Sequence[int]) -> tuple[list[str], int]:
        """Items of generated tokens (up to </s>) and the number of token runs that name no item.

        A token at the wrong level, a code no item has, or a code left unfinished counts as one invalid item.
        """
        items, invalid, partial = [], 0, []
        for token in ids:
            token = int(token)
            if token in (PAD, START):
                continue
            if token == EOS:
                break
            located = self.level_of(token)
            if located is None or located[0] != len(partial) or located[1] not in self.trie.children(tuple(partial)):
                invalid += 1
                partial = []
                continue
            partial.append(located[1])
            item = self.trie.item_at(tuple(partial))
            if item is not None:
                items.append(item)
                partial = []
        return items, invalid + (1 if partial else 0)

    def text(self, ids: Sequence[int]) -> str:
        """Readable token text of ids (specials dropped)."""
        return " ".join(self.tokens[int(t)] for t in ids if int(t) >= len(SPECIALS))

    def tokenizer(self):
        """A transformers tokenizer over this vocabulary (word-level), for save_pretrained."""
        from shared.models import word_level_tokenizer

        return word_level_tokenizer(self.tokens)


def build_generator(args: ModelArgs, vocab_size: int, max_positions: int):
    """A fresh NLLB-MoE encoder-decoder of `args`' size over `vocab_size` tokens."""
    from transformers import NllbMoeConfig, NllbMoeForConditionalGeneration

    config = NllbMoeConfig(
        vocab_size=vocab_size, d_model=args.d_model, encoder_layers=args.encoder_layers,
        decoder_layers=args.decoder_layers, encoder_attention_heads=args.heads, decoder_attention_heads=args.heads,
        encoder_ffn_dim=args.ffn_dim, decoder_ffn_dim=args.ffn_dim, num_experts=args.experts,
        encoder_sparse_step=args.sparse_step, decoder_sparse_step=args.sparse_step,
        expert_capacity=1 << 20,  # no token is dropped for capacity: batches here are small
        moe_token_dropout=0.0, router_aux_loss_coef=args.aux_loss_coef, router_z_loss_coef=0.0,
        dropout=args.dropout, attention_dropout=args.dropout, activation_dropout=0.0,
        encoder_layerdrop=0.0, decoder_layerdrop=0.0,  # a skipped layer would leave its router loss out
        max_position_embeddings=max_positions, scale_embedding=True,
        pad_token_id=PAD, bos_token_id=START, eos_token_id=EOS, decoder_start_token_id=START,
    )
    return NllbMoeForConditionalGeneration(config)


def load_generator(folder: Path | str):
    """A saved generator (save_pretrained folder) in eval mode."""
    from transformers import NllbMoeForConditionalGeneration
    from transformers.utils import logging

    logging.disable_progress_bar()  # one bar per load, many loads per run
    return NllbMoeForConditionalGeneration.from_pretrained(str(folder)).eval()


class SessionConstraint:
    """`prefix_allowed_tokens_fn` for transformers' generate: every generated item exists, none repeats within the
    session, none is in the row's `banned` set (its history, when excluded), and the session ends after `items`."""

    def __init__(self, vocab: SessionVocab, banned: Sequence[frozenset[str]], items: int):
        self.vocab, self.banned, self.items = vocab, list(banned), items

    def __call__(self, batch_id: int, input_ids: torch.Tensor) -> list[int]:
        trie, vocab = self.vocab.trie, self.vocab
        chosen: list[str] = []
        partial: list[int] = []
        for token in input_ids.tolist():
            if token in (PAD, START):
                continue
            if token == EOS:
                return [PAD]
            partial.append(vocab.level_of(token)[1])
            item = trie.item_at(tuple(partial))
            if item is not None:
                chosen.append(item)
                partial = []
        if len(chosen) >= self.items:
            return [EOS]
        banned = self.banned[batch_id] | frozenset(chosen)
        codes = trie.allowed(tuple(partial), banned)
        if not codes:  # every item left is banned: end the session early rather than invent one
            return [EOS]
        return [vocab.offsets[len(partial)] + c for c in codes]


@torch.no_grad()
def generate_sessions(model, vocab: SessionVocab, histories: Sequence[Sequence[str]], *, items: int, beams: int,
                      returns: int, max_history: int, exclude_history: bool = True, constrained: bool = True,
                      batch_size: int = 32) -> list[list[dict]]:
    """Beam-search `returns` sessions of `items` items per history, best first.

    Each session is {"items": [...], "invalid": count of token runs naming no item, "score": the sequence's
    log-probability (beam scores are length-normalised by transformers' default length penalty 1.0)}.
    Unconstrained generation can produce invalid runs; constrained generation cannot.
    """
    max_len = max(len(vocab.offsets), 1) * items + 1
    out: list[list[dict]] = []
    for start in range(0, len(histories), batch_size):
        chunk = histories[start:start + batch_size]
        encoded = [vocab.history_ids(h, max_history) for h in chunk]
        width = max(len(e) for e in encoded)
        ids = torch.full((len(chunk), width), PAD, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, e in enumerate(encoded):  # left padding keeps the newest items adjacent across rows
            ids[row, width - len(e):] = torch.tensor(e)
            mask[row, width - len(e):] = 1
        banned = [frozenset(h) if exclude_history else frozenset() for h in chunk]
        kwargs = dict(max_new_tokens=max_len, num_return_sequences=returns, output_scores=True,
                      return_dict_in_generate=True, pad_token_id=PAD, eos_token_id=EOS,
                      decoder_start_token_id=START)
        if constrained:
            kwargs["prefix_allowed_tokens_fn"] = SessionConstraint(vocab, banned, items)
        kwargs.update(num_beams=max(beams, returns), do_sample=False)
        result = model.generate(input_ids=ids, attention_mask=mask, **kwargs)
        scores = result.sequences_scores.tolist() if getattr(result, "sequences_scores", None) is not None \
            else [0.0] * result.sequences.size(0)
        for row in range(len(chunk)):
            sessions = []
            for r in range(returns):
                k = row * returns + r
                got, invalid = vocab.decode(result.sequences[k].tolist())
                sessions.append({"items": got, "invalid": invalid, "score": float(scores[k])})
            out.append(sessions)
    return out
