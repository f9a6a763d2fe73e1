"""Turn a /generate request body into (prompts, params), or a RequestError naming the bad field."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.serving.protocol import Param

_JSON_TYPE = {int: "an integer", float: "a number", bool: "a boolean", str: "a string"}


class RequestError(Exception):
    """A client error: an HTTP status and a one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = " ".join(message.split())


@dataclass(frozen=True)
class Limits:
    """What one request may ask for."""

    max_prompts_per_request: int = 64
    max_prompt_chars: int = 16_384
    max_new_tokens_limit: int = 1024
    max_body_bytes: int = 1_000_000

    def __post_init__(self) -> None:
        for field, value in vars(self).items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{field} must be a positive integer, got {value!r}")


def json_type(value: Any) -> str:
    """Return the JSON name of a decoded value's type (object, array, string, number, boolean, null)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {dict: "object", list: "array", str: "string"}.get(type(value), type(value).__name__)


def json_object(body: bytes, not_an_object: int = 422) -> dict[str, Any]:
    """Return the body's JSON object; a RequestError: 400 when it is not JSON, `not_an_object` when not an object."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(400, f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise RequestError(not_an_object, f"body must be a JSON object, got {json_type(data)}")
    return data


def parse_body(body: bytes, specs: Mapping[str, Param], limits: Limits) -> tuple[list[str], dict[str, Any]]:
    """Return the prompts and checked params of a body `{"prompts": [...] | "prompt": "...", "params": {...}}`."""
    data = json_object(body)
    unknown = sorted(set(data) - {"prompts", "prompt", "params"})
    if unknown:
        raise RequestError(422, f"unknown field '{unknown[0]}'; expected 'prompts' or 'prompt', and optional 'params'")
    prompts = _prompts(data, limits)
    params = data.get("params")
    if params is None:
        return prompts, {}
    if not isinstance(params, dict):
        raise RequestError(422, f"params must be a JSON object, got {json_type(params)}")
    return prompts, {name: _param(name, value, specs, limits) for name, value in params.items()}


def upper_bound(name: str, spec: Param, limits: Limits) -> float | None:
    """Return a parameter's inclusive upper bound; max_new_tokens is also capped by the server's limit."""
    if name != "max_new_tokens":
        return spec.high
    return limits.max_new_tokens_limit if spec.high is None else min(spec.high, limits.max_new_tokens_limit)


def _prompts(data: dict, limits: Limits) -> list[str]:
    if ("prompts" in data) == ("prompt" in data):
        raise RequestError(422, "give exactly one of 'prompts' (a list of strings) or 'prompt' (a string)")
    if "prompt" in data:
        field, prompts = "prompt", [data["prompt"]]
        if not isinstance(data["prompt"], str):
            raise RequestError(422, f"prompt must be a string, got {json_type(data['prompt'])}")
    else:
        field, prompts = "prompts", data["prompts"]
        if not isinstance(prompts, list):
            raise RequestError(422, f"prompts must be a list of strings, got {json_type(prompts)}")
        if not prompts:
            raise RequestError(422, "prompts is empty; give at least one prompt")
        if len(prompts) > limits.max_prompts_per_request:
            raise RequestError(
                413, f"prompts has {len(prompts)} entries; the limit is {limits.max_prompts_per_request}"
            )
    for i, prompt in enumerate(prompts):
        where = field if field == "prompt" else f"prompts[{i}]"
        if not isinstance(prompt, str):
            raise RequestError(422, f"{where} must be a string, got {json_type(prompt)}")
        if len(prompt) > limits.max_prompt_chars:
            raise RequestError(413, f"{where} has {len(prompt)} characters; the limit is {limits.max_prompt_chars}")
    return prompts


def _param(name: str, value: Any, specs: Mapping[str, Param], limits: Limits) -> Any:
    spec = specs.get(name)
    if spec is None:
        accepted = ", ".join(sorted(specs)) or "none"
        raise RequestError(422, f"params.{name}: unknown parameter; accepted: {accepted}")
    # bool is a subclass of int in Python but not a number in JSON
    ok = isinstance(value, spec.kind) and (spec.kind is bool or not isinstance(value, bool))
    if spec.kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise RequestError(422, f"params.{name} must be {_JSON_TYPE[spec.kind]}, got {json_type(value)}")
    if spec.kind is float and not math.isfinite(value):
        raise RequestError(422, f"params.{name} must be a finite number")
    high = upper_bound(name, spec, limits)
    if spec.kind in (int, float):
        if spec.low is not None and value < spec.low:
            raise RequestError(422, f"params.{name} must be at least {spec.kind(spec.low)}, got {value}")
        if high is not None and value > high:
            raise RequestError(422, f"params.{name} must be at most {spec.kind(high)}, got {value}")
    return value
