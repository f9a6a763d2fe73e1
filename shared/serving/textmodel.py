"""The text-model contract behind the OpenAI-compatible routes: prompts or conversations in, completions out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, Union, runtime_checkable

# A prompt is raw text (encoded as is) or a conversation: a list of {"role", "content"} messages
# rendered with the model's chat template and its generation prompt.
Prompt = Union[str, list[dict[str, str]]]


@dataclass(frozen=True)
class Sampling:
    """How to sample one batch; None means the model's own default (its max_new_tokens, temperature, top_p).

    `temperature` 0 is greedy decoding; `seed` makes sampling reproducible; generation of a row
    ends at the first of `stop`'s strings, which is left out of the text.
    """

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class Completion:
    """A row's completion, or a streamed piece of it.

    `finish_reason` is "stop" (end of sequence or a stop string) or "length" (max_tokens reached);
    a streamed piece has None until the row's last piece. Token counts are set on the full
    completion and on the last piece: `prompt_tokens` as the tokenizer encodes the prompt,
    `completion_tokens` the tokens generated for the text (a closing end-of-sequence token not counted).
    """

    text: str
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


# on_piece(row, piece) -> whether to keep generating; see TextModel.complete.
OnPiece = Callable[[int, Completion], bool]


@runtime_checkable
class TextModel(Protocol):
    """A language model the server exposes through /v1/completions and /v1/chat/completions.

    `complete` runs one batch of rows in order. With `on_piece`, it calls `on_piece(row, piece)` with
    each row's new text as it is generated, and each row's last piece carries its finish_reason and
    token counts; when on_piece returns False, generation stops early. `count_tokens` raises
    ValueError for a prompt the model cannot take (a conversation without a chat template, one its
    template refuses). Calls come one at a time from one thread, except count_tokens, which the
    server calls from its event loop to check a request before queueing it.
    """

    name: str

    def complete(self, prompts: list[Prompt], sampling: Sampling, on_piece: OnPiece | None = None) -> list[Completion]: ...

    def count_tokens(self, prompt: Prompt) -> int: ...


def find_text_model(generator: Any) -> TextModel | None:
    """Return the generator's `text_model` attribute, the generator itself when it is a TextModel, else None."""
    model = getattr(generator, "text_model", None)
    if model is not None:
        return model
    return generator if isinstance(generator, TextModel) else None
