"""Serve a Hugging Face causal LM + tokenizer as a Generator: batched, left-padded, greedy or sampled."""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from transformers import LogitsProcessorList

from shared.constrained import ConstrainedLogits, TokenAutomaton
from shared.serving.protocol import TEXT_PARAMS

_log = logging.getLogger(__name__)


class HFTextGenerator:
    """Generates text continuations with `model.generate`, one batched call per list of prompts.

    Prompts are left-padded so every row continues right after its own last token. With
    `chat=True` and a tokenizer that has a chat template, each prompt becomes one user message
    rendered with the generation prompt; otherwise the prompt text is encoded as is. A request's
    `temperature` 0 means greedy decoding, above 0 sampling with `top_p`; `seed` makes sampling
    reproducible without touching the caller's global RNG state. The constructor's values are
    the defaults for parameters a request leaves out. The model is put in eval mode, and a
    tokenizer without a pad token gets its eos token as pad token. Other settings (eos ids,
    repetition penalty, ...) come from the model's `generation_config`. With `constraint` (a
    shared.constrained.TokenAutomaton) every continuation follows that format.
    """

    accepted_params = TEXT_PARAMS

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        max_new_tokens: int = 128,
        *,
        chat: bool = False,
        temperature: float = 0.0,
        top_p: float = 1.0,
        name: str | None = None,
        constraint: TokenAutomaton | None = None,
    ) -> None:
        if tokenizer.pad_token_id is None:
            if tokenizer.eos_token is None:
                raise ValueError("the tokenizer has neither a pad token nor an eos token to pad with")
            tokenizer.pad_token = tokenizer.eos_token
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.chat = chat and bool(getattr(tokenizer, "chat_template", None))
        if chat and not self.chat:
            _log.warning("chat=True but the tokenizer has no chat template; prompts are encoded as plain text")
        self.name = name or getattr(model.config, "name_or_path", "") or type(model).__name__
        self.constraint = constraint

    def generate(
        self,
        prompts: list[str],
        *,
        temperature: float | None = None,
        top_p: float | None = None,
        max_new_tokens: int | None = None,
        seed: int | None = None,
    ) -> list[str]:
        """Return the decoded continuation of each prompt, special tokens removed."""
        if not prompts:
            return []
        texts = [self._render(p) for p in prompts] if self.chat else list(prompts)
        encoded = self.tokenizer(
            texts,
            return_tensors="pt",
            padding=True,
            padding_side="left",
            # a chat template writes its own special tokens (BOS included)
            add_special_tokens=not self.chat,
        ).to(self.model.device)
        empty = (encoded["attention_mask"].sum(dim=1) == 0).nonzero().flatten().tolist()
        if empty:
            raise ValueError(f"prompt {empty[0]} encodes to no tokens; give it text or use a tokenizer that adds BOS")
        config = self._generation_config(
            self.temperature if temperature is None else temperature,
            self.top_p if top_p is None else top_p,
            self.max_new_tokens if max_new_tokens is None else max_new_tokens,
        )
        extra = {}
        if self.constraint is not None:
            width = encoded["input_ids"].shape[1]
            extra["logits_processor"] = LogitsProcessorList([ConstrainedLogits(self.constraint, width)])
        with torch.inference_mode(), self._seeded(seed):
            output = self.model.generate(**encoded, generation_config=config, **extra)
        new_tokens = output[:, encoded["input_ids"].shape[1] :]
        return self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)

    def _render(self, prompt: str) -> str:
        messages = [{"role": "user", "content": prompt}]
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def _generation_config(self, temperature: float, top_p: float, max_new_tokens: int) -> Any:
        # start from the model's own config to keep its eos ids, then let the request decide sampling
        config = copy.deepcopy(self.model.generation_config)
        config.max_new_tokens = max_new_tokens
        config.pad_token_id = self.tokenizer.pad_token_id
        config.do_sample = temperature > 0
        config.temperature = temperature if temperature > 0 else None
        config.top_p = top_p if temperature > 0 else None
        config.top_k = None  # the request's top_p is the only truncation
        return config

    @contextmanager
    def _seeded(self, seed: int | None) -> Iterator[None]:
        if seed is None:
            yield
            return
        device = self.model.device
        devices = [] if device.type == "cpu" else [device.index or 0]
        with torch.random.fork_rng(devices=devices, device_type=device.type):
            torch.manual_seed(seed)
            yield
