"""The baselines a generative recommender is measured against: most-popular items and a SASRec-style
next-item transformer.

SASRec (Kang & McAuley 2018) is a causal self-attention model over item ids trained to predict the
next item at every position; here it is a tiny Llama from config whose vocabulary is the items
(token = 4 specials + item index), trained through the core's SFTModule with the whole sequence as
the scored completion (full softmax cross-entropy at every position, as RecBole's SASRec with
`loss_type: CE`). Ranking reads the logits after the history's last item.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

SPECIAL = 4  # <pad>, <s>, </s>, <unk>: the same reserved ids as the generator
BOS = 1


@dataclass
class SASRecArgs:
    """The SASRec-style baseline (a causal transformer over item ids).

    Attributes:
        d_model: hidden size.
        layers: transformer blocks.
        heads: attention heads.
        max_history: most recent items per training sequence and at ranking time.
        steps: optimiser steps (0: no SASRec baseline).
        batch_size: sequences per step.
        lr: AdamW learning rate.
        eval_every: check validation NDCG@10 every this many steps and keep the best weights (0: keep the last).
        patience: stop after this many checks without a gain (0: never early).
    """

    d_model: int = 64
    layers: int = 2
    heads: int = 2
    max_history: int = 50
    steps: int = 2000
    batch_size: int = 32
    lr: float = 3e-3
    eval_every: int = 100
    patience: int = 5


def popularity_ranking(popularity: Mapping[str, int], history: Sequence[str], k: int) -> list[str]:
    """The k most popular training items the user has not interacted with (ties by item id)."""
    seen = set(history)
    ranked = sorted(popularity, key=lambda item: (-popularity[item], item))
    return [item for item in ranked if item not in seen][:k]


def build_sasrec(args: SASRecArgs, num_items: int):
    """A fresh causal transformer over item tokens (Llama blocks from config)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=num_items + SPECIAL, hidden_size=args.d_model, intermediate_size=2 * args.d_model,
                         num_hidden_layers=args.layers, num_attention_heads=args.heads,
                         num_key_value_heads=args.heads, max_position_embeddings=args.max_history + 2,
                         pad_token_id=0, bos_token_id=BOS, eos_token_id=2, tie_word_embeddings=True)
    return LlamaForCausalLM(config)


class ItemTokens:
    """Item id <-> SASRec token id."""

    def __init__(self, item_ids: Sequence[str]):
        self.items = list(item_ids)
        self.token = {item: i + SPECIAL for i, item in enumerate(self.items)}

    def example(self, sequence: Sequence[str], max_history: int) -> tuple[list[int], list[int]]:
        """A training example: prompt <s>, completion the last max_history items (every one is a target)."""
        return [BOS], [self.token[i] for i in list(sequence)[-max_history:]]

    def tokenizer(self):
        """A word-level tokenizer whose tokens are item_<id> (so the saved folder is a plain save_pretrained one)."""
        from shared.models import word_level_tokenizer

        return word_level_tokenizer(["<pad>", "<s>", "</s>", "<unk>", *(f"item_{item}" for item in self.items)])

    @torch.no_grad()
    def rank(self, model, histories: Sequence[Sequence[str]], k: int, max_history: int,
             exclude_history: bool = True, batch_size: int = 64) -> list[list[str]]:
        """The k highest-scoring items after each history (history items excluded when asked)."""
        out = []
        model.eval()
        for start in range(0, len(histories), batch_size):
            chunk = histories[start:start + batch_size]
            rows = [[BOS] + [self.token[i] for i in list(h)[-max_history:]] for h in chunk]
            width = max(len(r) for r in rows)
            ids = torch.zeros((len(rows), width), dtype=torch.long)
            mask = torch.zeros_like(ids)
            for r, row in enumerate(rows):  # left padding: the last position is every row's newest item
                ids[r, width - len(row):] = torch.tensor(row)
                mask[r, width - len(row):] = 1
            logits = model(input_ids=ids, attention_mask=mask).logits[:, -1, SPECIAL:].float()
            for r, history in enumerate(chunk):
                if exclude_history:
                    logits[r, [self.token[i] - SPECIAL for i in set(history)]] = float("-inf")
                top = logits[r].topk(min(k, logits.size(1))).indices.tolist()
                out.append([self.items[t] for t in top])
        return out
