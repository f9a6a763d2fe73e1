"""The generator contract the server calls, and the request parameters a generator accepts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Param:
    """A request parameter: its JSON type (int, float, bool or str) and optional inclusive bounds."""

    kind: type
    low: float | None = None
    high: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in (int, float, bool, str):
            raise ValueError(f"Param kind must be int, float, bool or str, got {self.kind!r}")


# What a text generator takes; a generator without `accepted_params` is assumed to take these.
TEXT_PARAMS: Mapping[str, Param] = {
    "temperature": Param(float, 0.0, 100.0),
    "top_p": Param(float, 0.0, 1.0),
    "max_new_tokens": Param(int, 1, None),
    "seed": Param(int, 0, 2**63 - 1),
}


@runtime_checkable
class Generator(Protocol):
    """Anything with a batched `generate(prompts, **params)` returning one JSON-serialisable output per prompt.

    An output is text, or a dict such as {"cif": ...} or {"image_png_base64": ...}. A generator may
    set `accepted_params` (name -> Param) to declare its request parameters; the default is
    TEXT_PARAMS. Parameters the request leaves out are not passed, so `generate` owns the defaults.
    A generator whose prompts have a structure (JSON, a stub) may define `check_prompt(prompt)`,
    raising ValueError with a one-line reason: the server calls it on each prompt before batching
    and answers 422 `prompts[i]: reason`, so a malformed prompt never fails other requests' batch.
    """

    def generate(self, prompts: list[str], **params: Any) -> list[Any]: ...


def accepted_params(generator: Any) -> Mapping[str, Param]:
    """Return the request parameters a generator declares, TEXT_PARAMS when it declares none."""
    return getattr(generator, "accepted_params", TEXT_PARAMS)


def generator_name(generator: Any) -> str:
    """Return a generator's `name` attribute, or its class name."""
    return str(getattr(generator, "name", None) or type(generator).__name__)
