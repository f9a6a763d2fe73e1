"""Record dataclasses that flow between stages: Candidate, Pair, RankedList.

`Pair` keeps TRL's preference keys (`prompt`, `chosen`, `rejected`); a text is either a plain
string or a conversational list of `{"role": ..., "content": ...}` messages. Constructing a record
validates it; `from_dict` adds the `where` prefix (`path:line`) to the error and keeps unknown
keys in `metadata`, so a TRL file with extra columns (`id`, `score_chosen`, ...) loads as is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from numbers import Real
from typing import Any, ClassVar, TypeVar

Messages = list[dict[str, Any]]
Text = str | Messages


R = TypeVar("R", bound="_Record")


class RecordError(ValueError):
    """A malformed record; the message is one line, prefixed `path:line:` when read from a file."""


def _tname(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _check_text(value: Any, name: str) -> None:
    if isinstance(value, str):
        return
    if not isinstance(value, list):
        raise RecordError(f"field '{name}' must be a string or a list of messages, got {_tname(value)}")
    for i, msg in enumerate(value):
        if not isinstance(msg, dict):
            raise RecordError(f"field '{name}[{i}]' must be a message object, got {_tname(msg)}")
        if not isinstance(msg.get("role"), str):
            raise RecordError(f"field '{name}[{i}].role' must be a string, got {_tname(msg.get('role'))}")
        content = msg.get("content")
        # TRL's multimodal messages carry a list of content parts ({"type": "text", ...}).
        if not (isinstance(content, str) or (isinstance(content, list) and all(isinstance(p, dict) for p in content))):
            raise RecordError(
                f"field '{name}[{i}].content' must be a string or a list of content parts, got {_tname(content)}"
            )


def _check_number(value: Any, name: str, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, Real):
        raise RecordError(f"field '{name}' must be a number, got {_tname(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise RecordError(f"field '{name}' must be finite, got {value}")
    return value


def _check_scores(scores: Any, name: str = "scores") -> dict[str, float]:
    if not isinstance(scores, dict):
        raise RecordError(f"field '{name}' must be an object of numbers, got {_tname(scores)}")
    out = {}
    for key, value in scores.items():
        if not isinstance(key, str):
            raise RecordError(f"field '{name}' keys must be strings, got {_tname(key)}")
        out[key] = _check_number(value, f"{name}.{key}")
    return out


def _check_metadata(metadata: Any) -> None:
    if not isinstance(metadata, dict):
        raise RecordError(f"field 'metadata' must be an object, got {_tname(metadata)}")


class _Record:
    """Shared to_dict/from_dict for the record dataclasses."""

    _optional: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready dict; None optionals and empty metadata are left out."""
        out = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if (f.name in self._optional and value is None) or (f.name == "metadata" and not value):
                continue
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls: type[R], d: Any, where: str = "") -> R:
        """Return the record built from a JSON object; raise RecordError prefixed by `where`."""
        try:
            if not isinstance(d, dict):
                raise RecordError(f"expected a JSON object, got {_tname(d)}")
            return cls(**cls._split_fields(d))  # type: ignore[call-arg]
        except RecordError as exc:
            raise RecordError(f"{where}: {exc}" if where else str(exc)) from None

    @classmethod
    def _split_fields(cls, d: dict[str, Any]) -> dict[str, Any]:
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        required = [f.name for f in fields(cls) if f.name not in cls._optional and f.name != "metadata"]  # type: ignore[arg-type]
        for name in required:
            if name not in d:
                raise RecordError(f"missing field '{name}'")
        known = {k: v for k, v in d.items() if k in names}
        extra = {k: v for k, v in d.items() if k not in names}
        if extra:
            metadata = known.get("metadata", {})
            _check_metadata(metadata)
            clash = sorted(set(extra) & set(metadata))
            if clash:
                raise RecordError(f"key '{clash[0]}' appears both at top level and in 'metadata'")
            known["metadata"] = {**metadata, **extra}
        return known


@dataclass
class Candidate(_Record):
    """One sampled output for a prompt, with its scores by aspect."""

    prompt_id: str
    prompt: Text
    output: Text
    scores: dict[str, float] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.prompt_id, str):
            raise RecordError(f"field 'prompt_id' must be a string, got {_tname(self.prompt_id)}")
        _check_text(self.prompt, "prompt")
        _check_text(self.output, "output")
        self.scores = _check_scores(self.scores)
        _check_metadata(self.metadata)


@dataclass
class Pair(_Record):
    """A preference pair in TRL's layout, with optional weight, margin and strength (OSP's p)."""

    prompt: Text
    chosen: Text
    rejected: Text
    weight: float | None = None
    margin: float | None = None
    strength: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    _optional: ClassVar[tuple[str, ...]] = ("weight", "margin", "strength")

    def __post_init__(self) -> None:
        _check_text(self.prompt, "prompt")
        _check_text(self.chosen, "chosen")
        _check_text(self.rejected, "rejected")
        self.weight = _check_number(self.weight, "weight", optional=True)
        self.margin = _check_number(self.margin, "margin", optional=True)
        self.strength = _check_number(self.strength, "strength", optional=True)
        if self.strength is not None and not 0.0 <= self.strength <= 1.0:
            raise RecordError(f"field 'strength' must lie in [0, 1], got {self.strength}")
        _check_metadata(self.metadata)

    @classmethod
    def _split_fields(cls, d: dict[str, Any]) -> dict[str, Any]:
        if "prompt" not in d and isinstance(d.get("chosen"), list) and isinstance(d.get("rejected"), list):
            d = {**d, **_extract_prompt(d["chosen"], d["rejected"])}
        return super()._split_fields(d)


def _extract_prompt(chosen: list, rejected: list) -> dict[str, list]:
    """Split the longest common leading messages off as the prompt (TRL's implicit prompt)."""
    n = 0
    while n < min(len(chosen), len(rejected)) and chosen[n] == rejected[n]:
        n += 1
    if n == 0:
        raise RecordError("missing field 'prompt' (chosen and rejected share no leading messages)")
    if n == len(chosen) or n == len(rejected):
        raise RecordError("missing field 'prompt' (one of chosen/rejected is a prefix of the other)")
    return {"prompt": chosen[:n], "chosen": chosen[n:], "rejected": rejected[n:]}


@dataclass
class RankedList(_Record):
    """Outputs for one prompt, best first, with their scores (non-increasing)."""

    prompt: Text
    outputs: list[Text]
    scores: list[float]
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_text(self.prompt, "prompt")
        if not isinstance(self.outputs, list):
            raise RecordError(f"field 'outputs' must be a list, got {_tname(self.outputs)}")
        for i, output in enumerate(self.outputs):
            _check_text(output, f"outputs[{i}]")
        if not isinstance(self.scores, list):
            raise RecordError(f"field 'scores' must be a list of numbers, got {_tname(self.scores)}")
        self.scores = [_check_number(s, f"scores[{i}]") for i, s in enumerate(self.scores)]  # type: ignore[misc]
        if len(self.scores) != len(self.outputs):
            raise RecordError(
                f"fields 'outputs' and 'scores' differ in length ({len(self.outputs)} vs {len(self.scores)})"
            )
        for i in range(1, len(self.scores)):
            if self.scores[i] > self.scores[i - 1]:  # type: ignore[operator]
                raise RecordError(f"field 'scores' must be best first (non-increasing); scores[{i}] > scores[{i - 1}]")
        _check_metadata(self.metadata)
