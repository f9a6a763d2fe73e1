"""OpenAI's response objects: chat.completion, text_completion, their streamed chunks, usage and SSE lines."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from typing import Any

from shared.serving.textmodel import Completion

DONE_EVENT = "data: [DONE]\n\n"


def sse(payload: dict[str, Any]) -> str:
    """Return one Server-Sent Event line `data: {json}` followed by its blank line."""
    return f"data: {json.dumps(payload, ensure_ascii=False, separators=(',', ':'))}\n\n"


def usage(completions: Sequence[Completion], n: int) -> dict[str, int]:
    """Return OpenAI's usage object of one request's rows (n rows per prompt, whose tokens count once)."""
    prompt = sum(c.prompt_tokens for c in completions[::n])
    generated = sum(c.completion_tokens for c in completions)
    return {"prompt_tokens": prompt, "completion_tokens": generated, "total_tokens": prompt + generated}


class Reply:
    """The objects of one response, sharing its id, creation time and model: a chat or a text completion."""

    def __init__(self, model: str, *, chat: bool) -> None:
        self.chat = chat
        self.head = {
            "id": f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}",
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": None,
        }

    def full(self, completions: Sequence[Completion], n: int) -> dict[str, Any]:
        """Return the whole response: one choice per row, in order, and the usage."""
        choices = []
        for i, c in enumerate(completions):
            body = {"message": {"role": "assistant", "content": c.text, "refusal": None}} if self.chat else {"text": c.text}
            choices.append({"index": i, **body, "logprobs": None, "finish_reason": c.finish_reason})
        return {**self.head, "choices": choices, "usage": usage(completions, n)}

    def opening(self, rows: int, *, include_usage: bool) -> list[dict[str, Any]]:
        """Return the chunks a stream starts with: for chat, each choice's role (text completions have none)."""
        if not self.chat:
            return []
        delta = {"role": "assistant", "content": ""}
        return [self._chunk([{"index": i, "delta": delta, "logprobs": None, "finish_reason": None}], include_usage)
                for i in range(rows)]

    def pieces(self, index: int, piece: Completion, *, include_usage: bool) -> list[dict[str, Any]]:
        """Return the chunks of one streamed piece of choice `index`: its text, then its finish reason if it ends."""
        if not self.chat:
            choice = {"index": index, "text": piece.text, "logprobs": None, "finish_reason": piece.finish_reason}
            return [self._chunk([choice], include_usage)]
        chunks = []
        if piece.text:
            choice = {"index": index, "delta": {"content": piece.text}, "logprobs": None, "finish_reason": None}
            chunks.append(self._chunk([choice], include_usage))
        if piece.finish_reason:
            choice = {"index": index, "delta": {}, "logprobs": None, "finish_reason": piece.finish_reason}
            chunks.append(self._chunk([choice], include_usage))
        return chunks

    def usage_chunk(self, finals: Sequence[Completion], n: int) -> dict[str, Any]:
        """Return the stream's last chunk under stream_options.include_usage: no choices, the request's usage."""
        return {**self._chunk([], True), "usage": usage(finals, n)}

    def _chunk(self, choices: list[dict[str, Any]], include_usage: bool) -> dict[str, Any]:
        kind = "chat.completion.chunk" if self.chat else "text_completion"
        return {**self.head, "object": kind, "choices": choices, **({"usage": None} if include_usage else {})}
