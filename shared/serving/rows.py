"""Follow each row of a batched `model.generate` call: its text, stop strings, finish reason and streamed pieces."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

import torch
from transformers import StoppingCriteria

from shared.serving.textmodel import Completion, OnPiece

_INCOMPLETE = "\ufffd"  # what decoding gives for the leading bytes of a character still being generated


def find_stop(text: str, stops: Sequence[str]) -> int | None:
    """Return where the earliest of `stops` starts in text, or None when none occurs."""
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(found) if found else None


def safe_prefix(text: str, stops: Sequence[str]) -> str:
    """Return the part of a growing text that later tokens cannot change or turn into the start of a stop string.

    Left out: trailing incomplete characters, and the longest tail that is a proper prefix of a stop string.
    """
    text = text.rstrip(_INCOMPLETE)
    held = max((k for s in stops for k in range(len(s) - 1, 0, -1) if text.endswith(s[:k])), default=0)
    return text[: len(text) - held]


class _Row:
    __slots__ = ("prompt_tokens", "tokens", "sent", "finish", "text")

    def __init__(self, prompt_tokens: int) -> None:
        self.prompt_tokens = prompt_tokens
        self.tokens: list[int] = []
        self.sent = ""
        self.finish: str | None = None
        self.text = ""


class RowTracker(StoppingCriteria):
    """A stopping criterion that follows every row of one generate call and says which rows are done.

    A row is done at an end-of-sequence token ("stop"), when its text contains a stop string
    ("stop"; the text is cut before it) or after `max_tokens` tokens ("length"). With `on_piece`,
    each row's new text is reported as it is generated, holding back what may still change;
    the pieces of a row add up to its final text, and its last piece carries the finish reason and
    token counts. When on_piece returns False every row stops. Rows start after `prompt_width`
    (left-padded) prompt tokens.
    """

    def __init__(
        self,
        decode: Callable[[list[int]], str],
        prompt_width: int,
        prompt_tokens: Sequence[int],
        *,
        max_tokens: int,
        eos_ids: Collection[int],
        stops: Sequence[str] = (),
        on_piece: OnPiece | None = None,
    ) -> None:
        self.decode = decode
        self.seen = prompt_width
        self.rows = [_Row(n) for n in prompt_tokens]
        self.max_tokens = max_tokens
        self.eos_ids = set(eos_ids)
        self.stops = tuple(stops)
        self.on_piece = on_piece
        self.cancelled = False

    def __call__(self, input_ids: torch.LongTensor, scores: Any = None, **kwargs: Any) -> torch.BoolTensor:
        new = input_ids[:, self.seen :].tolist()
        self.seen = input_ids.shape[1]
        for r, (row, tokens) in enumerate(zip(self.rows, new)):
            for token in tokens:
                if row.finish is None and not self.cancelled:
                    self._add(r, row, token)
        done = [self.cancelled or row.finish is not None for row in self.rows]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    def results(self) -> list[Completion]:
        """Return every row's completion; rows still open (generate reached its length limit) end with "length"."""
        for r, row in enumerate(self.rows):
            if row.finish is None:
                self._finish(r, row, "length")
        return [Completion(row.text, row.finish, row.prompt_tokens, len(row.tokens)) for row in self.rows]

    def _add(self, r: int, row: _Row, token: int) -> None:
        if token in self.eos_ids:
            self._finish(r, row, "stop")
            return
        row.tokens.append(token)
        if not self.stops and self.on_piece is None:  # nothing to look at before the row ends
            if len(row.tokens) >= self.max_tokens:
                self._finish(r, row, "length")
            return
        text = self.decode(row.tokens)
        cut = find_stop(text, self.stops)
        if cut is not None:
            self._finish(r, row, "stop", text[:cut])
        elif len(row.tokens) >= self.max_tokens:
            self._finish(r, row, "length", text)
        elif self.on_piece is not None:
            safe = safe_prefix(text, self.stops)
            if len(safe) > len(row.sent) and safe.startswith(row.sent):
                self._report(r, Completion(safe[len(row.sent) :]))
                row.sent = safe

    def _finish(self, r: int, row: _Row, reason: str, text: str | None = None) -> None:
        row.finish = reason
        row.text = self.decode(row.tokens) if text is None else text
        if self.on_piece is not None:
            # a decoding that rewrote text already sent cannot be taken back; the rest still arrives
            rest = row.text[len(row.sent) :] if row.text.startswith(row.sent) else ""
            self._report(r, Completion(rest, reason, row.prompt_tokens, len(row.tokens)))

    def _report(self, r: int, piece: Completion) -> None:
        if self.on_piece(r, piece) is False:
            self.cancelled = True
