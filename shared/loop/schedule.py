"""Per-round values (temperature, beta, learning rate, ...): a constant or one value per round."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from shared.loop.errors import LoopError


class ScheduleError(LoopError):
    """A schedule that does not fit the run; the message names the key."""


def _per_round(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


class Schedule:
    """Named values resolved per round: a list or tuple gives one value per round, anything else is constant.

    A list always means per round; to keep a list-valued setting constant, repeat it once per round.
    """

    def __init__(self, values: Mapping[str, Any] | None = None):
        self.values: dict[str, Any] = {}
        for key, value in (values or {}).items():
            if not isinstance(key, str) or not key:
                raise ScheduleError(f"schedule keys must be non-empty strings, got {key!r}")
            value = list(value) if _per_round(value) else value
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError) as exc:
                # Values are saved in state.json to detect a changed schedule on resume.
                raise ScheduleError(f"schedule '{key}' must hold JSON values (numbers, strings, ...): {exc}") from None
            self.values[key] = value

    def validate(self, rounds: int) -> None:
        """Raise ScheduleError naming the first key whose per-round list does not have `rounds` values."""
        for key, value in self.values.items():
            if isinstance(value, list) and len(value) != rounds:
                raise ScheduleError(
                    f"schedule '{key}' has {len(value)} value{'s' * (len(value) != 1)} for {rounds} "
                    f"round{'s' * (rounds != 1)}; give one value per round or a single constant"
                )

    def at(self, round_index: int) -> dict[str, Any]:
        """Return every value for round `round_index` (0-based)."""
        out = {}
        for key, value in self.values.items():
            if isinstance(value, list):
                if not 0 <= round_index < len(value):
                    raise ScheduleError(f"schedule '{key}' has no value for round {round_index} ({len(value)} given)")
                value = value[round_index]
            out[key] = value
        return out

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schedule) and self.values == other.values

    def __repr__(self) -> str:
        return f"Schedule({self.values!r})"


def as_schedule(schedule: Schedule | Mapping[str, Any] | None) -> Schedule:
    """Return `schedule` as a Schedule (a mapping or None is converted)."""
    return schedule if isinstance(schedule, Schedule) else Schedule(schedule)
