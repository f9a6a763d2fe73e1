"""What every app's entry points do the same way: parse the config, load the data or fail in one line, record the result.

    cfg, (train, heldout) = start_run(MyConfig, argv, doc=__doc__, prog=PROG, prepare=load_data)
    ...
    finish_run(cfg.run_dir, final_model_folder, summary, mode="code")
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from shared.atomic import write_json
from shared.config import ConfigError, parse_or_exit, save_resolved
from shared.kit.stages import set_threads
from shared.loop import LoopError
from shared.resources import set_mmap_threshold
from shared.training import quiet_lightning

C = TypeVar("C")
T = TypeVar("T")


def fail(prog: str, message: object) -> NoReturn:
    """Print `prog: error: message` (one line) on stderr and exit 2, as argparse does."""
    print(f"{prog}: error: {' '.join(str(message).split())}", file=sys.stderr)
    raise SystemExit(2)


@contextmanager
def loop_errors(prog: str) -> Iterator[None]:
    """End the program in one line (exit 2) on a LoopError: a started run folder whose config changed, a round
    with nothing to train on, a malformed artefact. Wrap the rounds of a recipe's main in it."""
    try:
        yield
    except LoopError as exc:
        fail(prog, exc)


def start_run(config_cls: type[C], argv: list[str] | None, *, doc: str | None, prog: str,
              prepare: Callable[[C], T]) -> tuple[C, T]:
    """Parse the config (`--help`, `--config`, overrides), run `prepare(cfg)` and save the resolved config.

    Also sets torch's threads and, from cfg.trainer.mmap_threshold_kb, glibc's mmap threshold.

    A malformed config, data file or option (ConfigError, ValueError, OSError from prepare) ends
    the program with one line and exit 2 before anything is written to the run folder.
    """
    cfg = parse_or_exit(config_cls, argv, description=doc, prog=prog)
    quiet_lightning()
    set_threads()
    trainer = getattr(cfg, "trainer", None)
    if trainer is not None:  # process-wide, so before data and models are loaded (shared.resources)
        set_mmap_threshold(trainer.mmap_threshold_kb)
    try:
        prepared = prepare(cfg)
    except (ConfigError, ValueError, OSError) as exc:
        fail(prog, exc)
    save_resolved(cfg, cfg.run_dir)
    return cfg, prepared


def record_final_model(run_dir: Path, final_model: Path | str, **extra: Any) -> Path:
    """Write final_model.json: {"path": the final model folder, **extra}, what eval, infer and resolve_model read."""
    return write_json(Path(run_dir) / "final_model.json", {"path": str(Path(final_model).resolve()), **extra})


def finish_run(run_dir: Path, final_model: Path | str, summary: dict[str, Any], **final_extra: Any) -> dict[str, Any]:
    """Write final_model.json (see record_final_model) and results.json (the summary); return the summary."""
    record_final_model(run_dir, final_model, **final_extra)
    write_json(Path(run_dir) / "results.json", summary)
    return summary


def eval_parser(prog: str, doc: str | None, *, run: bool = True) -> argparse.ArgumentParser:
    """Return the eval CLI parser with the options every app shares: --run (when the app evaluates a run's models),
    --model NAME=SOURCE, --seeds and --out."""
    parser = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if run:
        parser.add_argument("--run", type=Path, required=True, help="a training run folder")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=SOURCE",
                        help="also evaluate this model under NAME (repeatable)")
    parser.add_argument("--seeds", type=int, nargs="+", help="evaluation seeds (default: the run's eval.seeds, else 0)")
    parser.add_argument("--out", type=Path, help="output folder (default: <run>/eval)")
    parser.add_argument("--resamples", type=int, help="bootstrap resamples per interval (default: the run's eval.resamples, else 2000)")
    parser.add_argument("--level", type=float, help="interval coverage, e.g. 0.9 (default: the run's eval.level, else 0.95)")
    return parser


def named(entry: str, what: str = "SOURCE") -> tuple[str, str]:
    """Split a `NAME=SOURCE` option value; raise ValueError with a one-line reason."""
    name, sep, source = entry.partition("=")
    if not sep or not name or not source:
        raise ValueError(f"--model {entry!r}: expected NAME={what}")
    return name, source
