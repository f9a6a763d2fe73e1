"""The reward contract: score a batch by aspect, never raise on a malformed output, score it invalid.

Every score dict holds the reward's `aspects` plus the reserved aspect `valid` (1.0 or 0.0). An
invalid sample has `valid = 0.0` and every aspect at the reward's `invalid_score`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any, Protocol, runtime_checkable

VALID = "valid"


@runtime_checkable
class Reward(Protocol):
    """Anything with `aspects` and a batched `__call__` returning per-sample scores by aspect."""

    aspects: tuple[str, ...]

    def __call__(
        self, prompts: Sequence[Any], outputs: Sequence[Any], contexts: Sequence[dict] | None = None
    ) -> list[dict[str, float]]: ...


def invalid_scores(aspects: Sequence[str], invalid_score: float = 0.0) -> dict[str, float]:
    """Return the score dict of an invalid sample: every aspect at invalid_score, valid = 0.0."""
    return {**{a: float(invalid_score) for a in aspects}, VALID: 0.0}


def normalize_batch(
    prompts: Sequence[Any], outputs: Sequence[Any], contexts: Sequence[dict] | None
) -> tuple[list[Any], list[Any], list[dict]]:
    """Return the batch as lists, with an empty context per sample when contexts is None; lengths must agree."""
    prompts, outputs = list(prompts), list(outputs)
    contexts = [{} for _ in outputs] if contexts is None else list(contexts)
    if not len(prompts) == len(outputs) == len(contexts):
        raise ValueError(
            f"batch lengths differ: {len(prompts)} prompts, {len(outputs)} outputs, {len(contexts)} contexts"
        )
    return prompts, outputs, contexts


def describe_error(exc: BaseException) -> str:
    """Return `Type: message` for an exception, even one whose __str__ itself raises."""
    try:
        message = str(exc)
    except Exception:
        message = "<unprintable message>"
    return f"{type(exc).__name__}: {message}"[:500]


def _as_float(value: Any) -> float | None:
    if isinstance(value, Real):
        return float(value)
    # numpy / torch 0-d arrays and tensors
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        item = value.item()
        return float(item) if isinstance(item, Real) else None
    return None


class RewardFunction:
    """Base class: implement `score` (one sample) or `score_batch`; `__call__` turns any failure into invalid.

    Failures scored invalid: an exception, a result that is not a mapping, a missing aspect, a
    non-numeric or non-finite value, an output of a type outside `output_types`, or longer than
    `max_output_len`. The reason per sample of the last call is in `last_errors` (None when scored).
    A `score_batch` override that raises falls back to `score` per sample.
    """

    aspects: tuple[str, ...] = ()
    invalid_score: float = 0.0
    output_types: tuple[type, ...] | None = None
    max_output_len: int | None = None

    def score(self, prompt: Any, output: Any, context: dict) -> Mapping[str, float]:
        """Return the scores by aspect of one sample (may include `valid`: 0.0 to mark it invalid)."""
        raise NotImplementedError(f"{type(self).__name__} implements neither score nor score_batch")

    def score_batch(
        self, prompts: list[Any], outputs: list[Any], contexts: list[dict]
    ) -> Sequence[Mapping[str, float]]:
        """Return the scores of a batch; override when scoring many at once is cheaper."""
        return [self.score(p, o, c) for p, o, c in zip(prompts, outputs, contexts)]

    def __call__(
        self, prompts: Sequence[Any], outputs: Sequence[Any], contexts: Sequence[dict] | None = None
    ) -> list[dict[str, float]]:
        """Return one score dict per sample (aspects + valid); never raises on a malformed output."""
        if VALID in self.aspects:
            raise ValueError(f"{type(self).__name__}: '{VALID}' is reserved and cannot be an aspect")
        prompts, outputs, contexts = normalize_batch(prompts, outputs, contexts)
        results: list[dict[str, float] | None] = [None] * len(outputs)
        self.last_errors: list[str | None] = [None] * len(outputs)
        todo = []
        for i, output in enumerate(outputs):
            reason = self._gate(output)
            if reason is None:
                todo.append(i)
            else:
                results[i], self.last_errors[i] = self._invalid(), reason
        raw = self._score_many(todo, prompts, outputs, contexts)
        for i, (value, reason) in zip(todo, raw):
            if reason is None:
                try:
                    results[i], self.last_errors[i] = self._clean(value)
                except Exception as exc:  # a result object that fails when read
                    results[i], self.last_errors[i] = self._invalid(), describe_error(exc)
            else:
                results[i], self.last_errors[i] = self._invalid(), reason
        return results  # type: ignore[return-value]

    def _invalid(self) -> dict[str, float]:
        return invalid_scores(self.aspects, self.invalid_score)

    def _gate(self, output: Any) -> str | None:
        try:
            if self.output_types is not None and not isinstance(output, self.output_types):
                expected = ", ".join(t.__name__ for t in self.output_types)
                return f"output is {type(output).__name__}, expected {expected}"
            if self.max_output_len is not None and hasattr(output, "__len__") and len(output) > self.max_output_len:
                return f"output length {len(output)} exceeds max_output_len {self.max_output_len}"
        except Exception as exc:
            return describe_error(exc)
        return None

    def _score_many(self, idx: list[int], prompts: list, outputs: list, contexts: list) -> list[tuple[Any, str | None]]:
        """(result, None) or (None, reason) per index; one failing sample never spoils the others."""
        batch_error = None
        if idx and type(self).score_batch is not RewardFunction.score_batch:
            try:
                values = list(
                    self.score_batch([prompts[i] for i in idx], [outputs[i] for i in idx], [contexts[i] for i in idx])
                )
                if len(values) != len(idx):
                    raise ValueError(f"score_batch returned {len(values)} results for {len(idx)} samples")
                return [(v, None) for v in values]
            except Exception as exc:
                batch_error = describe_error(exc)
        out = []
        for i in idx:
            try:
                out.append((self.score(prompts[i], outputs[i], contexts[i]), None))
            except NotImplementedError as exc:
                out.append(
                    (
                        None,
                        f"score_batch failed ({batch_error}) and {describe_error(exc)}"
                        if batch_error
                        else describe_error(exc),
                    )
                )
            except Exception as exc:
                out.append((None, describe_error(exc)))
        return out

    def _clean(self, value: Any) -> tuple[dict[str, float], str | None]:
        if not isinstance(value, Mapping):
            return self._invalid(), f"score returned {type(value).__name__}, expected a mapping of aspect -> number"
        out = {}
        for aspect in (*self.aspects, VALID):
            if aspect not in value:
                if aspect == VALID:
                    out[VALID] = 1.0
                    continue
                return self._invalid(), f"aspect '{aspect}' missing from the score"
            number = _as_float(value[aspect])
            if number is None:
                return self._invalid(), f"aspect '{aspect}' is {type(value[aspect]).__name__}, not a number"
            if not math.isfinite(number):
                return self._invalid(), f"aspect '{aspect}' is {number}"
            out[aspect] = number
        if out[VALID] not in (0.0, 1.0):
            return self._invalid(), f"aspect '{VALID}' must be 0 or 1, got {out[VALID]}"
        return out, None
