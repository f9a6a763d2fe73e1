"""state.json: the last complete step and the fingerprint (seed, config, schedule, ...) it was run with."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.loop.errors import LoopError
from shared.loop.files import read_json, write_json
from shared.loop.layout import STAGES, RunLayout
from shared.loop.schedule import Schedule

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one run per folder is then up to the user.
    fcntl = None  # type: ignore[assignment]

VERSION = 1


@dataclass
class RunState:
    """The last complete (round, stage), or none yet, and what the run's rounds were made with."""

    # What shapes every round: seed, initial checkpoint, the app's config.
    fingerprint: dict[str, Any]
    round: int | None = None
    stage: str | None = None
    # Schedule values of every round that has a complete step, by round.
    schedule: list[dict[str, Any]] = field(default_factory=list)

    def done(self, r: int, stage: str) -> bool:
        """Return whether step (r, stage) is complete."""
        if self.round is None:
            return False
        return (r, STAGES.index(stage)) <= (self.round, STAGES.index(self.stage))

    def evaluated_rounds(self) -> list[int]:
        """Return the rounds whose evaluate step is complete."""
        if self.round is None:
            return []
        return list(range(self.round + (self.stage == "evaluate")))

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON object saved as state.json."""
        return {"version": VERSION, "round": self.round, "stage": self.stage, "fingerprint": self.fingerprint,
                "schedule": self.schedule}


def plain(value: Any, what: str) -> Any:
    """Return `value` as JSON builtins (tuples as lists, Paths as str); LoopError if it has no JSON form."""
    try:
        return json.loads(json.dumps(value, allow_nan=False, default=_default))
    except (TypeError, ValueError) as exc:
        raise LoopError(f"{what} must be JSON-serialisable: {exc}") from None


def _default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} {value!r} has no JSON form")


def save_state(layout: RunLayout, state: RunState) -> None:
    """Write state.json atomically."""
    write_json(layout.state, state.to_dict())


def load_state(layout: RunLayout) -> RunState | None:
    """Return the saved state, or None for a folder no step has completed in."""
    if not layout.state.exists():
        return None
    try:
        d = read_json(layout.state)
        if d.get("version") != VERSION:
            raise ValueError(f"version {d.get('version')!r}, expected {VERSION}")
        if d["stage"] is not None and d["stage"] not in STAGES:
            raise ValueError(f"unknown stage {d['stage']!r}")
        return RunState(fingerprint=dict(d["fingerprint"]), round=d["round"], stage=d["stage"],
                        schedule=list(d["schedule"]))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LoopError(f"{layout.state}: unreadable run state ({exc}); start over in a new run folder, "
                        "or delete this one (run_loop(..., overwrite=True) does)") from None


def check_fingerprint(saved: RunState, fingerprint: dict[str, Any], schedule: Schedule, rounds: int,
                      run_dir: Path) -> None:
    """Raise a one-line LoopError if the fingerprint, or the schedule of a round already run, has changed."""
    change = _first_change(saved, fingerprint, schedule, rounds)
    if change:
        raise LoopError(f"{run_dir}: {change} since this run folder was started; use a new run folder, "
                        "or delete this one to start it over (run_loop(..., overwrite=True) does)")


def _first_change(saved: RunState, fingerprint: dict[str, Any], schedule: Schedule, rounds: int) -> str | None:
    old, new = _flatten(saved.fingerprint), _flatten(fingerprint)
    for key in sorted(old.keys() | new.keys()):
        if old.get(key, _UNSET) != new.get(key, _UNSET):
            return f"'{key}' changed from {_show(old.get(key, _UNSET))} to {_show(new.get(key, _UNSET))}"
    # Rounds past the requested count are not run again, so their schedule may differ.
    for r, before in enumerate(saved.schedule[:rounds]):
        now = plain(schedule.at(r), "schedule")
        for key in sorted(before.keys() | now.keys()):
            if before.get(key, _UNSET) != now.get(key, _UNSET):
                return (f"schedule '{key}' of round {r} changed from {_show(before.get(key, _UNSET))} "
                        f"to {_show(now.get(key, _UNSET))}")
    return None


_UNSET = object()


def _show(value: Any) -> str:
    return "unset" if value is _UNSET else json.dumps(value)


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in d.items():
        if isinstance(value, Mapping) and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@contextlib.contextmanager
def locked(layout: RunLayout) -> Iterator[None]:
    """Hold an exclusive lock on the run folder; LoopError if another run holds it."""
    if fcntl is None:
        yield
        return
    layout.root.mkdir(parents=True, exist_ok=True)
    with open(layout.lock, "a") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LoopError(f"{layout.root}: another run is using this folder") from None
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
