"""PNG plots a person can read: training curves from Lightning's CSV logs, metrics by round."""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from shared.atomic import atomic_writer  # noqa: E402

DEFAULT_CURVES = ("loss", "rewards/accuracies", "rewards/margins")


def read_metrics_csv(paths: Sequence[str | Path]) -> dict[str, list[tuple[int, float]]]:
    """Return {metric: [(step, value), ...]} merged over Lightning CSV files (e.g. version_0, version_1 after a resume)."""
    series: dict[str, dict[int, float]] = {}
    for path in paths:
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                step = int(row.get("step") or 0)
                for key, value in row.items():
                    if key in ("step", "epoch") or value in ("", None):
                        continue
                    series.setdefault(key, {})[step] = float(value)
    return {k: sorted(v.items()) for k, v in series.items()}


def _save(fig, out: Path) -> Path:
    with atomic_writer(out) as handle:
        fig.savefig(handle, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out


def plot_training_curves(run_dir: str | Path, out: str | Path | None = None,
                         curves: Sequence[str] = DEFAULT_CURVES, extra: Sequence[str] = ()) -> Path | None:
    """Write a PNG of loss, reward accuracy and margins (train/ and val/) over steps from run_dir/logs/*/metrics.csv.

    Returns the PNG path, or None when the run has no CSV logs yet.
    """
    run_dir = Path(run_dir)
    files = sorted(run_dir.glob("logs/*/metrics.csv")) or sorted(run_dir.glob("logs/metrics.csv"))
    if not files:
        return None
    series = read_metrics_csv(files)
    names = [c for c in (*curves, *extra) if any(k.endswith("/" + c) or k == c for k in series)]
    if not names:
        return None
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.2), squeeze=False)
    for ax, name in zip(axes[0], names):
        for key in sorted(k for k in series if k.endswith("/" + name) or k == name):
            steps, values = zip(*series[key])
            ax.plot(steps, values, marker="." if len(steps) < 50 else None, label=key.split("/")[0])
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, Path(out) if out else run_dir / "training.png")


def plot_by_round(rows: Sequence[Mapping[str, float]], out: str | Path, metrics: Sequence[str] | None = None,
                  x: str = "round") -> Path:
    """Write a PNG with one panel per metric, plotted against `x` (e.g. rounds or stages)."""
    metrics = list(metrics or [k for k in rows[0] if k != x])
    cols = min(3, len(metrics))
    fig, axes = plt.subplots(math.ceil(len(metrics) / cols), cols, figsize=(4.2 * cols, 3.2 * math.ceil(len(metrics) / cols)),
                             squeeze=False)
    for ax, name in zip(axes.flat, metrics):
        ax.plot([r[x] for r in rows], [r[name] for r in rows], marker="o")
        ax.set_title(name)
        ax.set_xlabel(x)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    return _save(fig, Path(out))
