"""The one results table every app writes: results.json, results.csv, table.md and a PNG per metric.

App docs paste table.md as written, so a table in the docs is exactly what the code printed.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shared.atomic import write_bytes, write_json, write_text
from shared.evaluation.metrics import Estimate, Metric


@dataclass
class ModelResult:
    """One model's row: each metric's estimate over the pooled seeds, its value per seed, and where it came from."""

    estimates: dict[str, Estimate]
    per_seed: dict[int, dict[str, float]]
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class ResultsTable:
    """Models x metrics with intervals; `headline` is the metric whose per-seed values get their own column."""

    metrics: list[Metric]
    models: dict[str, ModelResult]
    seeds: list[int]
    caption: str = ""
    headline: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def columns(self) -> list[Metric]:
        """The metrics at least one model has rows for, in declaration order."""
        return [m for m in self.metrics if any(r.estimates[m.name].n for r in self.models.values())]

    def markdown(self) -> str:
        """Return the caption and a markdown table: one row per model, `value [low, high]` per metric."""
        cols = self.columns()
        per_seed = self.headline is not None and len(self.seeds) > 1
        head = ["model", *(m.heading for m in cols)]
        if per_seed:
            head.append(f"{self._heading(self.headline)} per seed")
        lines = ([self.caption, ""] if self.caption else []) + ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
        for name, r in self.models.items():
            cells = [name, *(r.estimates[m.name].cell() for m in cols)]
            if per_seed:
                cells.append(", ".join(_fmt(r.per_seed[s].get(self.headline, math.nan)) for s in self.seeds))
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def as_json(self) -> dict[str, Any]:
        """Return the table as plain JSON data (what results.json holds)."""
        return {
            "caption": self.caption, "seeds": self.seeds, "headline": self.headline, "settings": self.settings,
            "metrics": [{"name": m.name, "label": m.heading} for m in self.metrics],
            "models": {name: {"info": r.info, "metrics": {k: _no_nan(asdict(e)) for k, e in r.estimates.items()},
                              "per_seed": {str(s): _no_nan(v) for s, v in r.per_seed.items()}}
                       for name, r in self.models.items()},
        }

    def csv(self) -> str:
        """Return one line per (model, metric): value, interval, rows and the per-seed values."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["model", "metric", "value", "low", "high", "n", *(f"seed_{s}" for s in self.seeds)])
        for name, r in self.models.items():
            for m in self.metrics:
                e = r.estimates[m.name]
                w.writerow([name, m.name, _num(e.value), _num(e.low), _num(e.high), e.n,
                            *(_num(r.per_seed[s].get(m.name, math.nan)) for s in self.seeds)])
        return buf.getvalue()

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write results.json, results.csv, table.md and metric_<name>.png into out_dir (atomically); return the paths."""
        out = Path(out_dir)
        paths = {"json": write_json(out / "results.json", self.as_json()),
                 "csv": write_text(out / "results.csv", self.csv()),
                 "markdown": write_text(out / "table.md", self.markdown())}
        for m in self.columns():
            paths[f"png:{m.name}"] = write_bytes(out / f"metric_{slug(m.name)}.png", self.plot(m))
        return paths

    def plot(self, metric: Metric) -> bytes:
        """Return a PNG of one metric per model with its interval as an error bar."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        names = [n for n, r in self.models.items() if r.estimates[metric.name].n]
        est = [self.models[n].estimates[metric.name] for n in names]
        fig = Figure(figsize=(max(3.5, 0.9 * len(names) + 1.5), 3.2), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        err = [[max(0.0, e.value - e.low) for e in est], [max(0.0, e.high - e.value) for e in est]]
        ax.errorbar(range(len(names)), [e.value for e in est], yerr=err, fmt="o", capsize=4)
        ax.set_xticks(range(len(names)), names, rotation=20 if len(names) > 4 else 0)
        ax.set_ylabel(metric.heading)
        level = self.settings.get("level")
        ax.set_title(f"{metric.heading}" + (f" ({level:.0%} interval)" if isinstance(level, float) else ""), fontsize=9)
        ax.grid(alpha=0.3, axis="y")
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        return buf.getvalue()

    def _heading(self, name: str) -> str:
        return next((m.heading for m in self.metrics if m.name == name), name)


def slug(name: str) -> str:
    """Return a file-name-safe form of a metric name (`heldout pass@1` -> `heldout_pass_1`)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "metric"


def _no_nan(d: Mapping[str, Any]) -> dict[str, Any]:
    """JSON has no NaN: an undefined value (no rows) is written as null."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in d.items()}


def _fmt(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.3f}"


def _num(x: float) -> str:
    return "" if isinstance(x, float) and math.isnan(x) else repr(float(x))

