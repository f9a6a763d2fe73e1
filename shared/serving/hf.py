"""Serve a Hugging Face causal LM + tokenizer: a Generator for /generate and a TextModel for the OpenAI routes."""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from transformers import LogitsProcessorList, StoppingCriteriaList

from shared.constrained import ConstrainedLogits, TokenAutomaton
from shared.group_sampling import left_pad
from shared.serving.protocol import TEXT_PARAMS
from shared.serving.rows import RowTracker
from shared.serving.textmodel import Completion, OnPiece, Prompt, Sampling

_log = logging.getLogger(__name__)


class HFTextGenerator:
    """Generates text continuations with `model.generate`, one batched call per list of prompts.

    Prompts are left-padded so every row continues right after its own last token. With
    `chat=True` and a tokenizer that has a chat template, each /generate prompt becomes one user
    message rendered with the generation prompt; otherwise the prompt text is encoded as is. A
    request's `temperature` 0 means greedy decoding, above 0 sampling with `top_p`; `seed` makes
    sampling reproducible without touching the caller's global RNG state. The constructor's values
    are the defaults for parameters a request leaves out. The model is put in eval mode, and a
    tokenizer without a pad token gets its eos token as pad token. Other settings (eos ids,
    repetition penalty, ...) come from the model's `generation_config`. With `constraint` (a
    shared.constrained.TokenAutomaton) every continuation follows that format.

    It is also a TextModel (shared.serving.textmodel): `complete` takes raw prompts and whole
    conversations, stop strings, and streams pieces, for the server's OpenAI-compatible routes.
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
        self.chat = chat and self.has_chat_template
        if chat and not self.chat:
            _log.warning("chat=True but the tokenizer has no chat template; prompts are encoded as plain text")
        self.name = name or getattr(model.config, "name_or_path", "") or type(model).__name__
        self.constraint = constraint
        # the event loop counts prompt tokens while the worker thread generates; a fast tokenizer
        # must not be used from two threads at once
        self._tokenizer_lock = threading.Lock()

    @property
    def has_chat_template(self) -> bool:
        """Return whether the tokenizer has a chat template to render conversations with."""
        return bool(getattr(self.tokenizer, "chat_template", None))

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
        rows: list[Prompt] = [[{"role": "user", "content": p}] for p in prompts] if self.chat else list(prompts)
        sampling = Sampling(max_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed)
        return [c.text for c in self.complete(rows, sampling)]

    def count_tokens(self, prompt: Prompt) -> int:
        """Return how many tokens the prompt encodes to; ValueError for a conversation the model cannot render."""
        return len(self._encode(prompt))

    def complete(self, prompts: list[Prompt], sampling: Sampling = Sampling(),
                 on_piece: OnPiece | None = None) -> list[Completion]:
        """Return one completion per prompt (raw text, or a conversation rendered with the chat template).

        With on_piece, each row's text is also reported piece by piece as it is generated
        (see shared.serving.textmodel.TextModel).
        """
        if not prompts:
            return []
        encoded = [self._encode(p) for p in prompts]
        empty = [i for i, ids in enumerate(encoded) if not ids]
        if empty:
            raise ValueError(f"prompt {empty[0]} encodes to no tokens; give it text or use a tokenizer that adds BOS")
        width = max(map(len, encoded))
        pad = self.tokenizer.pad_token_id
        device = self.model.device
        input_ids, attention_mask = left_pad(encoded, pad, device=device)
        config = self._generation_config(sampling)
        eos = config.eos_token_id
        tracker = RowTracker(self._decode, width, [len(ids) for ids in encoded], max_tokens=config.max_new_tokens,
                             eos_ids=[] if eos is None else [eos] if isinstance(eos, int) else eos,
                             stops=sampling.stop, on_piece=on_piece)
        extra = {}
        if self.constraint is not None:
            extra["logits_processor"] = LogitsProcessorList([ConstrainedLogits(self.constraint, width)])
        with torch.inference_mode(), self._seeded(sampling.seed):
            self.model.generate(input_ids=input_ids, attention_mask=attention_mask, generation_config=config,
                                stopping_criteria=StoppingCriteriaList([tracker]), **extra)
        return tracker.results()

    def _encode(self, prompt: Prompt) -> list[int]:
        if isinstance(prompt, str):
            with self._tokenizer_lock:
                return self.tokenizer(prompt, add_special_tokens=True)["input_ids"]
        if not self.has_chat_template:
            raise ValueError("this model's tokenizer has no chat template; send raw text to /v1/completions instead")
        try:
            text = self.tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        except Exception as exc:  # jinja2's TemplateError, or what a template's raise_exception raises
            raise ValueError(f"the chat template refused the conversation: {exc}") from None
        with self._tokenizer_lock:
            # a chat template writes its own special tokens (BOS included)
            return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _decode(self, tokens: list[int]) -> str:
        with self._tokenizer_lock:
            return self.tokenizer.decode(tokens, skip_special_tokens=True)

    def _generation_config(self, sampling: Sampling) -> Any:
        temperature = self.temperature if sampling.temperature is None else sampling.temperature
        top_p = self.top_p if sampling.top_p is None else sampling.top_p
        # start from the model's own config to keep its eos ids, then let the request decide sampling
        config = copy.deepcopy(self.model.generation_config)
        config.max_new_tokens = self.max_new_tokens if sampling.max_tokens is None else sampling.max_tokens
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
