"""metrics.csv (one row per evaluated round) and rounds.png (each metric by round)."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from pathlib import Path

from shared.loop.files import write_bytes


def metric_names(rows: list[tuple[int, Mapping[str, float]]]) -> list[str]:
    """Return every metric name, in order of first appearance."""
    names: dict[str, None] = {}
    for _, metrics in rows:
        names.update(dict.fromkeys(metrics))
    return list(names)


def write_csv(path: Path, rows: list[tuple[int, Mapping[str, float]]]) -> Path:
    """Write `round,<metrics...>` with one row per round atomically; a metric a round lacks is left blank."""
    names = metric_names(rows)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["round", *names])
    for r, metrics in rows:
        writer.writerow([r, *(repr(float(metrics[n])) if n in metrics else "" for n in names)])
    return write_bytes(path, buf.getvalue().encode("utf-8"))


def write_plot(path: Path, rows: list[tuple[int, Mapping[str, float]]]) -> Path | None:
    """Write a PNG with one panel per metric against round atomically; None (nothing written) without metrics."""
    names = metric_names(rows)
    if not names:
        return None
    # Figure + Agg canvas directly, not pyplot: leaves the caller's matplotlib backend alone.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    cols = min(3, len(names))
    nrows = math.ceil(len(names) / cols)
    fig = Figure(figsize=(4 * cols, 3 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, cols, squeeze=False).ravel()
    for ax, name in zip(axes, names):
        points = [(r, m[name]) for r, m in rows if name in m]
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o")
        ax.set_title(name)
        ax.set_xlabel("round")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return write_bytes(path, buf.getvalue())
