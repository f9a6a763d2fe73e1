"""The iterative driver: rounds of sample -> score -> build -> fit -> evaluate, resumable step by step.

Each step reads its inputs from the files the previous steps wrote, writes its artefact atomically,
then records itself in state.json. A rerun skips every recorded step, so a resumed run and an
uninterrupted one feed the stages the same records. Fitting is the recipe's (under Lightning).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path
from typing import Any

from shared.loop.errors import LoopError
from shared.loop.files import read_json, remove_temp_files, replace_dir, write_json
from shared.loop.layout import STAGES, RunLayout
from shared.loop.recipe import PathLike, Recipe, Round, check_recipe, round_seed
from shared.loop.report import write_csv, write_plot
from shared.resources import PeakRSS, record_resources, release_after
from shared.loop.schedule import Schedule, as_schedule
from shared.loop.state import RunState, check_fingerprint, load_state, locked, plain, save_state
from shared.records import Candidate, Pair, RankedList, iter_jsonl, read_jsonl, write_jsonl

log = logging.getLogger(__name__)


@dataclass
class LoopResult:
    """What a call to run_loop leaves: per-round metrics, the last checkpoint, and the steps it ran."""

    run_dir: Path
    metrics: list[dict[str, float]]
    checkpoint: Path | None
    ran: list[tuple[int, str]] = field(default_factory=list)


def run_loop(
    recipe: Recipe,
    run_dir: PathLike,
    rounds: int,
    *,
    schedule: Schedule | Mapping[str, Any] | None = None,
    seed: int = 0,
    initial_checkpoint: PathLike | None = None,
    config: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> LoopResult:
    """Run, or resume, `rounds` rounds in `run_dir`; `config` is everything else that shapes a round's result."""
    check_recipe(recipe)
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise LoopError(f"rounds must be a positive integer, got {rounds!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise LoopError(f"seed must be an integer, got {seed!r}")
    schedule = as_schedule(schedule)
    schedule.validate(rounds)
    fingerprint = plain({"seed": seed, "initial_checkpoint": None if initial_checkpoint is None
                         else str(initial_checkpoint), "config": dict(config or {})}, "config")
    layout = RunLayout(Path(run_dir).resolve())
    with locked(layout):
        if overwrite:
            _clear(layout)
        for path in remove_temp_files([layout.root, *layout.round_dirs()]):
            log.info("removed %s, left by an interrupted run", path)
        state = load_state(layout)
        if state is None:
            state = RunState(fingerprint)
        else:
            check_fingerprint(state, fingerprint, schedule, rounds, layout.root)
            log.info("resuming %s after round %s %s", layout.root, state.round, state.stage)
        steps = _Steps(recipe, layout, state, schedule, seed, initial_checkpoint)
        for r in range(rounds):
            for stage in STAGES:
                if not state.done(r, stage):
                    steps.run(r, stage)
        # Also rebuilt here in case a run was killed between a round's metrics.json and its report.
        rows = _write_report(layout, state)
        metrics = [m for r, m in rows if r < rounds]
        return LoopResult(layout.root, metrics, steps.checkpoint(rounds - 1), steps.ran)


def _clear(layout: RunLayout) -> None:
    for path in layout.loop_files():
        log.info("overwrite: removing %s", path)
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def _write_report(layout: RunLayout, state: RunState) -> list[tuple[int, dict[str, float]]]:
    rows = [(r, read_json(layout.artefact(r, "evaluate"))) for r in state.evaluated_rounds()]
    if rows:
        write_csv(layout.metrics_csv, rows)
        write_plot(layout.plot, rows)
    return rows


class _Steps:
    """Runs one step at a time: read inputs from disk, call the recipe, check, write, record."""

    def __init__(self, recipe: Recipe, layout: RunLayout, state: RunState, schedule: Schedule, seed: int,
                 initial_checkpoint: PathLike | None):
        self.recipe, self.layout, self.state, self.schedule, self.seed = recipe, layout, state, schedule, seed
        self.initial = None if initial_checkpoint is None else Path(initial_checkpoint)
        self.ran: list[tuple[int, str]] = []

    def run(self, r: int, stage: str) -> None:
        """Run step (r, stage), write its artefact, then mark it complete in state.json."""
        ctx = Round(index=r, seed=round_seed(self.seed, r), dir=self.layout.round_dir(r),
                    schedule=self.schedule.at(r), checkpoint_dir=self.layout.staging(r))
        ctx.dir.mkdir(parents=True, exist_ok=True)
        log.info("round %d: %s", r, stage)
        with PeakRSS() as usage:
            getattr(self, "_" + stage)(ctx)
            release_after(usage)  # the next step starts from what is alive, not this one's high-water mark
        record_resources(ctx.dir / "resources.json", stage, usage)
        self.state.round, self.state.stage = r, stage
        self.state.schedule = [plain(self.schedule.at(i), "schedule") for i in range(r + 1)]
        save_state(self.layout, self.state)
        self.ran.append((r, stage))
        if stage == "evaluate":
            _write_report(self.layout, self.state)

    def checkpoint(self, r: int) -> Path | None:
        """Return the checkpoint round r's fit saved; round -1 is the initial checkpoint."""
        if r < 0:
            return self.initial
        saved = Path(read_json(self.layout.artefact(r, "fit"))["checkpoint"])
        return saved if saved.is_absolute() else self.layout.root / saved

    def _sample(self, ctx: Round) -> None:
        out = self.recipe.sample(ctx, self.checkpoint(ctx.index - 1), dict(ctx.schedule))
        write_jsonl(self.layout.artefact(ctx.index, "sample"), _records(out, (Candidate,), ctx, "sample"))

    def _score(self, ctx: Round) -> None:
        candidates = read_jsonl(self.layout.artefact(ctx.index, "sample"), Candidate)
        out = self.recipe.score(ctx, candidates)
        write_jsonl(self.layout.artefact(ctx.index, "score"), _records(out, (Candidate,), ctx, "score"))

    def _build(self, ctx: Round) -> None:
        scored = read_jsonl(self.layout.artefact(ctx.index, "score"), Candidate)
        out = _records(self.recipe.build(ctx, scored), (Pair, RankedList), ctx, "build")
        if not out:
            raise LoopError(f"round {ctx.index} build: no pairs or ranked lists to fit on")
        write_jsonl(self.layout.artefact(ctx.index, "build"), out)

    def _fit(self, ctx: Round) -> None:
        pairs = _read_pairs(self.layout.artefact(ctx.index, "build"))
        staging, final = ctx.checkpoint_dir, self.layout.checkpoint(ctx.index)
        # What an interrupted fit left is incomplete: every fit starts clean from the previous checkpoint.
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir()
        returned = self.recipe.fit(ctx, pairs, dict(ctx.schedule), self.checkpoint(ctx.index - 1))
        if not isinstance(returned, (str, os.PathLike)):
            raise LoopError(f"round {ctx.index} fit: expected the saved checkpoint's path, got "
                            f"{type(returned).__name__}")
        saved = Path(returned).resolve()
        if not saved.exists():
            raise LoopError(f"round {ctx.index} fit: returned {saved}, which does not exist")
        inside = saved.is_relative_to(staging)
        if inside:
            saved = final / saved.relative_to(staging)
        if any(staging.iterdir()):
            replace_dir(staging, final)
        else:
            staging.rmdir()
            if inside:
                raise LoopError(f"round {ctx.index} fit: returned its checkpoint folder but saved nothing there")
        root = self.layout.root
        recorded = saved.relative_to(root).as_posix() if saved.is_relative_to(root) else str(saved)
        write_json(self.layout.artefact(ctx.index, "fit"), {"checkpoint": recorded})

    def _evaluate(self, ctx: Round) -> None:
        out = self.recipe.evaluate(ctx, self.checkpoint(ctx.index))
        write_json(self.layout.artefact(ctx.index, "evaluate"), _metrics(out, ctx))


def _records(out: Any, kinds: tuple[type, ...], ctx: Round, stage: str) -> list:
    """Return `out` as a list of one of `kinds`, or raise LoopError naming the round and stage."""
    names = " or ".join(k.__name__ for k in kinds)
    if not isinstance(out, (list, tuple)):
        raise LoopError(f"round {ctx.index} {stage}: expected a list of {names}, got {type(out).__name__}")
    kind = next((k for k in kinds if out and isinstance(out[0], k)), None)
    if not out or (kind is not None and all(isinstance(x, kind) for x in out)):
        return list(out)
    bad = 0 if kind is None else next(i for i, x in enumerate(out) if not isinstance(x, kind))
    raise LoopError(f"round {ctx.index} {stage}: expected a list of {names} (one kind), item {bad} is "
                    f"{type(out[bad]).__name__}")


def _read_pairs(path: Path) -> list[Pair] | list[RankedList]:
    with contextlib.closing(iter_jsonl(path)) as records:
        first = next(records, None)
    if first is None:
        return []
    return read_jsonl(path, RankedList if "outputs" in first else Pair)


def _metrics(out: Any, ctx: Round) -> dict[str, float]:
    """Return evaluate's result as {name: float}, or raise LoopError naming the bad metric."""
    if not isinstance(out, Mapping):
        raise LoopError(f"round {ctx.index} evaluate: expected a mapping of metric name to number, "
                        f"got {type(out).__name__}")
    metrics = {}
    for name, value in out.items():
        if not isinstance(name, str) or isinstance(value, bool) or not isinstance(value, Real) \
                or not math.isfinite(value):
            raise LoopError(f"round {ctx.index} evaluate: metric {name!r} must be a finite number, got {value!r}")
        metrics[name] = float(value)
    return metrics
