"""Read an OpenAI chat-completion or completion request body into prompts and sampling, or an OpenAIError (400).

Parameters that would change what is generated and that the server cannot honour (tools,
logprobs, penalties other than 0, image parts, ...) are refused with the parameter named, rather
than ignored; so are parameters OpenAI's API does not have.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.serving.errors import OpenAIError
from shared.serving.textmodel import Prompt, Sampling
from shared.serving.validation import Limits, json_type

MAX_STOPS = 4
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


def _empty(value: Any) -> bool:
    return value is None or value == [] or value == {}


# Parameters accepted when their value leaves generation unchanged: name -> (what is accepted, test).
_HARMLESS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "user": ("a string", lambda v: v is None or isinstance(v, str)),
    "metadata": ("an object", lambda v: v is None or isinstance(v, dict)),
    "store": ("false", lambda v: v in (None, False)),
    "service_tier": ("auto or default", lambda v: v in (None, "auto", "default")),
    "frequency_penalty": ("0", lambda v: v is None or (not isinstance(v, bool) and v == 0)),
    "presence_penalty": ("0", lambda v: v is None or (not isinstance(v, bool) and v == 0)),
    "logit_bias": ("an empty object", _empty),
}
_CHAT_HARMLESS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "logprobs": ("false", lambda v: v in (None, False)),
    "top_logprobs": ("null", lambda v: v is None),
    "tools": ("an empty list", _empty),
    "functions": ("an empty list", _empty),
    "tool_choice": ("none", lambda v: v in (None, "none")),
    "function_call": ("none", lambda v: v in (None, "none")),
    "parallel_tool_calls": ("a boolean", lambda v: v is None or isinstance(v, bool)),
    "response_format": ('{"type": "text"}', lambda v: v is None or v == {"type": "text"}),
}
_COMPLETION_HARMLESS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "logprobs": ("null", lambda v: v is None),
    "echo": ("false", lambda v: v in (None, False)),
    "suffix": ("null", lambda v: v in (None, "")),
    "best_of": ("1", lambda v: v is None or (not isinstance(v, bool) and v == 1)),
}
_COMMON = {"model", "max_tokens", "temperature", "top_p", "n", "seed", "stop", "stream", "stream_options"}
_CHAT_FIELDS = _COMMON | {"messages", "max_completion_tokens"}
_COMPLETION_FIELDS = _COMMON | {"prompt"}


@dataclass(frozen=True)
class OpenAIRequest:
    """A checked request: its prompts (conversations for chat), choices per prompt and how to sample them."""

    model: str | None
    prompts: list[Prompt]
    n: int
    sampling: Sampling
    stream: bool
    include_usage: bool

    @property
    def rows(self) -> list[Prompt]:
        """Return each prompt n times in a row: row i is choice i (OpenAI numbers choices prompt by prompt)."""
        return [p for p in self.prompts for _ in range(self.n)]


def requested_model(data: dict[str, Any]) -> str | None:
    """Return the body's `model` (None when it leaves it out), or raise a 400 OpenAIError when it is not a string."""
    model = data.get("model")
    if model is not None and not isinstance(model, str):
        raise OpenAIError(400, f"model must be a string, got {json_type(model)}", "model")
    return model


def parse_chat(data: dict[str, Any], limits: Limits) -> OpenAIRequest:
    """Return the checked request of a /v1/chat/completions body (its one conversation as the only prompt)."""
    _check_fields(data, _CHAT_FIELDS, _CHAT_HARMLESS)
    max_tokens = _number(data, "max_tokens", 1, limits.max_new_tokens_limit, integer=True)
    max_completion = _number(data, "max_completion_tokens", 1, limits.max_new_tokens_limit, integer=True)
    if None not in (max_tokens, max_completion) and max_tokens != max_completion:
        raise OpenAIError(400, "max_tokens and max_completion_tokens differ; give one of them", "max_tokens")
    conversation = _messages(data.get("messages"), limits)
    return _request(data, [conversation], max_completion if max_tokens is None else max_tokens, limits)


def parse_completion(data: dict[str, Any], limits: Limits) -> OpenAIRequest:
    """Return the checked request of a /v1/completions body (one prompt, or a list of them)."""
    _check_fields(data, _COMPLETION_FIELDS, _COMPLETION_HARMLESS)
    max_tokens = _number(data, "max_tokens", 1, limits.max_new_tokens_limit, integer=True)
    return _request(data, _prompts(data.get("prompt"), limits), max_tokens, limits)


def _request(data: dict[str, Any], prompts: list[Prompt], max_tokens: int | None, limits: Limits) -> OpenAIRequest:
    n = _number(data, "n", 1, limits.max_prompts_per_request, integer=True) or 1
    if n * len(prompts) > limits.max_prompts_per_request:
        raise OpenAIError(400, f"n={n} for {len(prompts)} prompts asks for {n * len(prompts)} completions; "
                               f"the limit is {limits.max_prompts_per_request}", "n")
    stream = data.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise OpenAIError(400, f"stream must be a boolean, got {json_type(stream)}", "stream")
    sampling = Sampling(
        max_tokens=max_tokens,
        temperature=_number(data, "temperature", 0.0, 2.0),
        top_p=_number(data, "top_p", 0.0, 1.0),
        seed=_number(data, "seed", 0, 2**63 - 1, integer=True),
        stop=_stops(data.get("stop"), limits),
    )
    return OpenAIRequest(requested_model(data), prompts, n, sampling, bool(stream),
                         _include_usage(data.get("stream_options"), bool(stream)))


def _check_fields(data: dict[str, Any], fields: set[str], harmless: dict[str, tuple[str, Callable[[Any], bool]]]) -> None:
    accepted_when = {**_HARMLESS, **harmless}
    for name, value in data.items():
        if name in fields:
            continue
        if name not in accepted_when:
            raise OpenAIError(400, f"Unrecognized request argument supplied: {name}", name, "unknown_parameter")
        accepted, ok = accepted_when[name]
        if not ok(value):
            raise OpenAIError(400, f"{name}={json.dumps(value)} is not supported by this server; it accepts {accepted}",
                              name, "unsupported_value")


def _number(data: dict[str, Any], name: str, low: float, high: float, *, integer: bool = False) -> Any:
    value = data.get(name)
    if value is None:
        return None
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise OpenAIError(400, f"{name} must be {'an integer' if integer else 'a number'}, got {json_type(value)}", name)
    if not math.isfinite(value) or not low <= value <= high:
        raise OpenAIError(400, f"{name} must be between {low} and {high}, got {value}", name)
    return value if integer else float(value)


def _stops(value: Any, limits: Limits) -> tuple[str, ...]:
    if value is None:
        return ()
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise OpenAIError(400, f"stop must be a string or a list of strings, got {json_type(value)}", "stop")
    if len(stops) > MAX_STOPS:
        raise OpenAIError(400, f"stop has {len(stops)} strings; the limit is {MAX_STOPS}", "stop")
    if any(not s or len(s) > limits.max_prompt_chars for s in stops):
        raise OpenAIError(400, "stop strings must be non-empty and no longer than a prompt", "stop")
    return tuple(stops)


def _include_usage(options: Any, stream: bool) -> bool:
    if options is None:
        return False
    if not stream:
        raise OpenAIError(400, "stream_options is only allowed when stream is true", "stream_options")
    if not isinstance(options, dict):
        raise OpenAIError(400, f"stream_options must be an object, got {json_type(options)}", "stream_options")
    unknown = sorted(set(options) - {"include_usage", "include_obfuscation"})
    if unknown:
        raise OpenAIError(400, f"stream_options.{unknown[0]} is not supported; it accepts include_usage",
                          "stream_options")
    include = options.get("include_usage")
    if include is not None and not isinstance(include, bool):
        raise OpenAIError(400, f"stream_options.include_usage must be a boolean, got {json_type(include)}",
                          "stream_options")
    return bool(include)


def _messages(value: Any, limits: Limits) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise OpenAIError(400, f"messages must be a non-empty list of messages, got {json_type(value)}", "messages")
    conversation = [_message(i, m) for i, m in enumerate(value)]
    chars = sum(len(m["content"]) for m in conversation)
    if chars > limits.max_prompt_chars:
        raise OpenAIError(400, f"messages have {chars} characters; the limit is {limits.max_prompt_chars}", "messages")
    return conversation


def _message(i: int, message: Any) -> dict[str, str]:
    where = f"messages[{i}]"
    if not isinstance(message, dict):
        raise OpenAIError(400, f"{where} must be an object, got {json_type(message)}", "messages")
    role = message.get("role")
    if role not in _ROLES:
        raise OpenAIError(400, f"{where}.role {json.dumps(role)} is not supported; use system, developer, user or "
                               "assistant (no tool or function messages)", "messages")
    for key, value in message.items():
        if key not in ("role", "content", "name") and not _empty(value):
            raise OpenAIError(400, f"{where}.{key} is not supported (no tool calls, audio or refusals)", "messages")
    return {"role": _ROLES[role], "content": _content(where, message.get("content"))}


def _content(where: str, content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise OpenAIError(400, f"{where}.content must be a string or a list of text parts, got {json_type(content)}",
                          "messages")
    texts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else json_type(part)
        if kind != "text" or not isinstance(part.get("text"), str):
            raise OpenAIError(400, f"{where}.content[{j}]: only text parts ({{\"type\": \"text\", \"text\": ...}}) are "
                                   f"supported, got {kind}", "messages")
        texts.append(part["text"])
    return "\n".join(texts)


def _prompts(value: Any, limits: Limits) -> list[Prompt]:
    prompts = [value] if isinstance(value, str) else value
    if not isinstance(prompts, list) or not prompts:
        raise OpenAIError(400, f"prompt must be a string or a non-empty list of strings, got {json_type(value)}",
                          "prompt")
    if not all(isinstance(p, str) for p in prompts):
        raise OpenAIError(400, "prompt must be text: token-id prompts are not supported", "prompt")
    for i, p in enumerate(prompts):
        if len(p) > limits.max_prompt_chars:
            raise OpenAIError(400, f"prompt {i} has {len(p)} characters; the limit is {limits.max_prompt_chars}",
                              "prompt")
    return list(prompts)
