"""Supervised fine-tuning as a LightningModule: token-mean NLL of completions given prompts (packed)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from shared.logprobs import collate_packed, collate_padded, collate_seq2seq, sequence_logps
from shared.modules.base import StepModule
from shared.modules.data import encode_completion, encode_prompt


def encode_sft(examples: Sequence[tuple[object, object]], tokenizer: PreTrainedTokenizerBase,
               max_length: int = 1024) -> list[tuple[list[int], list[int]]]:
    """Tokenise (prompt, completion) examples (plain or conversational) into (prompt ids, completion ids + EOS)."""
    out = []
    for prompt, completion in examples:
        p, c = encode_prompt(tokenizer, prompt), encode_completion(tokenizer, completion)
        p = p[-max(1, min(len(p), max_length // 2)):]
        out.append((p, c[: max(1, max_length - len(p))]))
    return out


class SFTCollator:
    """Collate (prompt ids, completion ids) examples, packed without padding by default.

    With `decoder_start_id` the batch is an encoder-decoder one (shared.logprobs.collate_seq2seq):
    the prompt feeds the encoder, the completion is the decoder's target.
    """

    def __init__(self, pad_id: int, packed: bool = True, decoder_start_id: int | None = None):
        self.pad_id, self.packed, self.decoder_start_id = pad_id, packed, decoder_start_id

    def __call__(self, items):
        if self.decoder_start_id is not None:
            return collate_seq2seq(items, self.pad_id, self.decoder_start_id)
        return collate_packed(items, pad_id=self.pad_id) if self.packed else collate_padded(items, self.pad_id)


class SFTModule(StepModule):
    """Fine-tune a causal LM (or an encoder-decoder one) on completions: loss = -(sum of completion-token
    log-probs) / (completion tokens), plus a mixture-of-experts model's weighted load-balancing loss."""

    def __init__(self, policy: torch.nn.Module, *, lr: float = 1e-4, weight_decay: float = 0.0):
        super().__init__()
        self.policy = policy
        self.lr, self.weight_decay = lr, weight_decay
        self.save_hyperparameters(ignore=["policy"])

    def _step(self, batch: dict[str, Tensor], stage: str, batch_idx: int = 0) -> Tensor:
        scored = sequence_logps(self.policy, batch)
        tokens = scored.lengths.sum().clamp(min=1)
        loss = -scored.logps.sum() / tokens
        metrics = {"nll": loss.detach()}
        if scored.aux_loss is not None:
            loss = loss + scored.aux_loss
            metrics["aux_loss"] = scored.aux_loss.detach()
        metrics["loss"] = loss.detach()
        self.log_metrics(metrics, stage, batch_size=scored.logps.numel())
        return loss

