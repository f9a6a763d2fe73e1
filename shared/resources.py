"""Time and peak resident memory of a stage, recorded next to what the stage wrote.

`PeakRSS` samples this process's resident set size (/proc/self/statm) from a daemon thread every
`interval_s` and keeps the maximum, so a stage's own peak is known without resetting the kernel's
process-wide high-water mark (which whole-run measurements such as `/usr/bin/time -v` read).
Peaks shorter than the interval can be missed; on systems without /proc it records nothing.

How much of a peak is the batch's own need and how much is the allocator's slack (glibc keeps
freed heap for reuse) is measured in docs/benchmarks.md; `set_mmap_threshold` and
`release_memory` are the two levers the core pulls on it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from shared.atomic import write_json

_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20 if hasattr(os, "sysconf") else 0.0
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number (malloc.h)
GLIBC_THRESHOLD_ENV = "MALLOC_MMAP_THRESHOLD_"  # glibc reads it at start-up; a user who set it keeps it


@functools.lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def set_mmap_threshold(kb: int) -> bool:
    """Make glibc serve every allocation of at least `kb` KiB by mmap, so it goes back to the OS when freed.

    By default glibc raises this threshold (up to 32 MiB) after the first large frees, so a training
    step's activations then come from the heap, which keeps what is freed: a step's resident peak
    grows well past what the batch needs and stays there for the rest of the process
    (docs/benchmarks.md: a codegen SFT step peaks at 6.1 GB, 4.1 GB at 128 KiB). The price is page
    faults on fresh memory, 25-65% more time per step on SmolLM2-sized models. Process-wide; 0
    leaves glibc's default. Returns True when set; False with 0, where `MALLOC_MMAP_THRESHOLD_` is
    already in the environment (the user's choice wins) or where the C library has no `mallopt`.
    """
    if kb < 0:
        raise ValueError(f"mmap_threshold_kb must be >= 0 (0: glibc's default), got {kb}")
    if kb == 0 or GLIBC_THRESHOLD_ENV in os.environ:
        return False
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, int(kb) * 1024))


def release_memory() -> None:
    """Collect garbage and hand the heap's free pages back to the OS (glibc `malloc_trim`; off glibc, only the first).

    So the next stage starts from what is still alive rather than from the previous stage's
    high-water mark.
    """
    gc.collect()
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


RELEASE_MIN_GROWTH_MB = 256.0


def release_after(usage: PeakRSS) -> bool:
    """Call `release_memory` when the stage `usage` measures grew the process by RELEASE_MIN_GROWTH_MB or more.

    A full garbage collection costs time in proportion to the objects alive: worth it after a stage
    that allocated gigabytes, not after every small one (a test session runs hundreds). Returns
    whether it released.
    """
    usage._update()
    if usage.start_mb is None or usage.peak_mb is None or usage.peak_mb - usage.start_mb < RELEASE_MIN_GROWTH_MB:
        return False
    release_memory()
    return True


def rss_mb() -> float | None:
    """Return this process's resident memory in MB (None where /proc is not available)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * _PAGE_MB
    except (OSError, ValueError, IndexError):
        return None


class PeakRSS:
    """Context manager: `start_mb`, `peak_mb`, `end_mb` and `seconds` of the block it wraps."""

    def __init__(self, interval_s: float = 0.05):
        self.interval_s = interval_s
        self.start_mb = self.peak_mb = self.end_mb = None
        self.seconds = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._update()

    def _update(self) -> None:
        now = rss_mb()
        if now is not None:
            self.peak_mb = now if self.peak_mb is None else max(self.peak_mb, now)

    def __enter__(self) -> PeakRSS:
        self.start_mb = rss_mb()
        self._update()
        self._t0 = time.perf_counter()
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, name="peak-rss", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._update()
        self.end_mb = rss_mb()
        self.seconds = time.perf_counter() - self._t0

    def record(self) -> dict[str, Any]:
        """Return the figures as a JSON-ready dict (MB rounded to 1 decimal, seconds to 0.01)."""
        r = lambda v: None if v is None else round(v, 1)  # noqa: E731
        return {"seconds": round(self.seconds, 2), "rss_start_mb": r(self.start_mb), "peak_rss_mb": r(self.peak_mb),
                "rss_end_mb": r(self.end_mb)}


def record_resources(path: str | os.PathLike, key: str, usage: PeakRSS) -> None:
    """Merge `usage` under `key` into the JSON file at `path` (written atomically)."""
    path = Path(path)
    try:
        current = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        current = {}
    current[key] = usage.record()
    write_json(path, current)


def run_resources(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Return every stage's recorded figures under a run folder: {"stage", "key", "seconds", "peak_rss_mb"},
    stages in path order (a stage is a folder holding resources.json, named relative to the run)."""
    run = Path(run_dir)
    rows = []
    for path in sorted(run.rglob("resources.json"), key=lambda p: p.parent.parts):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        for key, figures in sorted(record.items()):
            if isinstance(figures, dict):
                rows.append({"stage": str(path.parent.relative_to(run)) or ".", "key": key,
                             "seconds": figures.get("seconds"), "peak_rss_mb": figures.get("peak_rss_mb")})
    return rows


def resources_markdown(run_dir: str | os.PathLike) -> str:
    """Return the run's stage times and peak resident memory as a markdown table (what the apps' docs show)."""
    rows = run_resources(run_dir)
    lines = ["| stage | seconds | peak RSS (GB) |", "|---|---|---|"]
    for r in rows:
        name = r["stage"] if r["key"] == "fit" else f"{r['stage']} ({r['key']})"
        peak = "-" if r["peak_rss_mb"] is None else f"{r['peak_rss_mb'] / 1024:.2f}"
        lines.append(f"| {name} | {r['seconds']:.0f} | {peak} |")
    total = sum(r["seconds"] or 0 for r in rows)
    peak = max((r["peak_rss_mb"] for r in rows if r["peak_rss_mb"] is not None), default=None)
    lines.append(f"| all stages | {total:.0f} | {'-' if peak is None else f'{peak / 1024:.2f}'} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m shared.resources RUN_DIR   (prints every stage's time and peak RSS)")
    print(resources_markdown(sys.argv[1]), end="")
