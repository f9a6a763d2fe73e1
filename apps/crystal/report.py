"""Per-round rates: a CSV and a PNG of the S.U.N. rate (with its 95% interval) by round; round 0 is the SFT model."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

from shared.atomic import write_bytes, write_text

RATES = ("valid", "stable", "metastable", "unique", "novel", "sun", "msun", "sg_match")


def write_rates_csv(path: Path, rows: Sequence[tuple[int, Mapping[str, float]]]) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["round", *(f"{n}{suffix}" for n in RATES for suffix in ("", "_low", "_high"))])
    for r, m in rows:
        w.writerow([r, *(f"{m[f'{n}{s}']:.4f}" if f"{n}{s}" in m else "" for n in RATES for s in ("", "_low", "_high"))])
    return write_text(path, buf.getvalue())


def plot_rates(path: Path, rows: Sequence[tuple[int, Mapping[str, float]]]) -> Path:
    """S.U.N. and metastable S.U.N. rates by round with 95% bootstrap intervals."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3.4), layout="constrained")
    ax = fig.add_subplot()
    rounds = [r for r, _ in rows]
    for name, label in (("sun", "S.U.N. (E_hull <= 0)"), ("msun", "metastable S.U.N. (E_hull <= 0.08)")):
        y = [m[name] for _, m in rows]
        err = [[m[name] - m[f"{name}_low"] for _, m in rows], [m[f"{name}_high"] - m[name] for _, m in rows]]
        ax.errorbar(rounds, y, yerr=err, marker="o", capsize=3, label=label)
    ax.set_xticks(rounds, ["SFT" if r == 0 else f"DPO {r}" for r in rounds])
    ax.set_ylabel("rate over unconditional samples")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    buf = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buf)
    return write_bytes(path, buf.getvalue())
