"""A PNG of a ladder program's rungs, drawn with matplotlib (Agg canvas, no pyplot state) from `layout`.

Rails are thick vertical lines, wires thin lines (a dot where wires join at a bus), contacts `| |` `|/|` `|P|` `|N|`, coils `( )` `(/)`
`(S)` `(R)`, blocks boxes with their type, pins and instance name, block inputs small framed values;
variable names are written above contacts and coils.
"""

from __future__ import annotations

import os

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Arc, Rectangle

from apps.ladder.layout import BLOCK_PINS, Box, layout
from apps.ladder.program import Program

SCALE = 2.0  # image pixels per layout pixel
DPI = 100
CONTACT_MARK = {"NO": "", "NC": "/", "P": "P", "N": "N"}
COIL_MARK = {"OUT": "", "NOT": "/", "SET": "S", "RST": "R"}


def render_rungs(program: Program, path, title: str | None = None) -> None:
    """Draw the rungs of `program` into the PNG file `path`."""
    lay = layout(program)
    top = 24 if title else 0
    width, height = lay.width, lay.height + top
    fig = Figure(figsize=(width * SCALE / DPI, height * SCALE / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(lay.height, -top)  # layout y grows downwards
    ax.set_axis_off()
    pt = SCALE * 72 / DPI  # points per layout pixel
    font = 9 * pt
    if title:
        ax.text(width / 2, -top / 2, title, ha="center", va="center", fontsize=11 * pt, weight="bold")
    for w in lay.wires:
        xs, ys = zip(*w.points)
        ax.plot(xs, ys, color="0.25", lw=0.8 * pt, solid_capstyle="butt", zorder=1)
    for x, y in _junctions(lay.wires):
        ax.plot([x], [y], marker="o", markersize=2.2 * pt, color="0.25", zorder=1)
    for box in lay.boxes.values():
        _draw(ax, box, pt, font)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=DPI, facecolor="white")


def _draw(ax, box: Box, pt: float, font: float) -> None:
    x, y, w, h = box.x, box.y, box.width, box.height
    mid = y + h / 2
    if box.type in ("left_rail", "right_rail"):
        ax.add_patch(Rectangle((x, y), w, h, color="black", zorder=3))
    elif box.type == "contact":
        ax.add_patch(Rectangle((x, y - 1), w, h + 2, color="white", zorder=2))  # hide the wire under it
        for bar in (x + 4, x + w - 4):
            ax.plot([bar, bar], [y, y + h], color="black", lw=1.4 * pt, zorder=3)
        ax.plot([x, x + 4], [mid, mid], [x + w - 4, x + w], [mid, mid], color="black", lw=0.8 * pt, zorder=3)
        mark = CONTACT_MARK[box.kind]
        if mark == "/":
            ax.plot([x + 7, x + w - 7], [y + h - 2, y + 2], color="black", lw=1.0 * pt, zorder=3)
        elif mark:
            ax.text(x + w / 2, mid, mark, ha="center", va="center", fontsize=font * 0.9, zorder=3)
        _label(ax, box, font)
    elif box.type == "coil":
        ax.add_patch(Rectangle((x, y - 1), w, h + 2, color="white", zorder=2))
        for center, start in ((x + 9, 120), (x + w - 9, -60)):
            ax.add_patch(Arc((center, mid), 12, h, theta1=start, theta2=start + 120, lw=1.2 * pt, zorder=3))
        ax.plot([x, x + 3], [mid, mid], [x + w - 3, x + w], [mid, mid], color="black", lw=0.8 * pt, zorder=3)
        mark = COIL_MARK[box.kind]
        if mark == "/":
            ax.plot([x + 8, x + w - 8], [y + h - 2, y + 2], color="black", lw=1.0 * pt, zorder=3)
        elif mark:
            ax.text(x + w / 2, mid, mark, ha="center", va="center", fontsize=font * 0.9, zorder=3)
        _label(ax, box, font)
    elif box.type == "block":
        ax.add_patch(Rectangle((x, y), w, h, facecolor="#eef3fb", edgecolor="black", lw=1.0 * pt, zorder=3))
        ax.text(x + w / 2, y + 12, box.kind, ha="center", va="center", fontsize=font, weight="bold", zorder=4)
        ax.text(x + w / 2, y - 4, box.label, ha="center", va="bottom", fontsize=font, zorder=4)
        inputs, outputs = BLOCK_PINS[box.kind]
        for pin in inputs:
            ax.text(x + 3, box.inputs[pin][1], pin, ha="left", va="center", fontsize=font * 0.75, zorder=4)
        for pin in outputs:
            ax.text(x + w - 3, box.outputs[pin][1], pin, ha="right", va="center", fontsize=font * 0.75, zorder=4)
    else:  # a block's input value
        ax.add_patch(Rectangle((x, y), w, h, facecolor="white", edgecolor="0.4", lw=0.6 * pt, zorder=3))
        ax.text(x + w / 2, y + h / 2, box.label, ha="center", va="center", fontsize=font * 0.85, zorder=4)


def _label(ax, box: Box, font: float) -> None:
    ax.text(box.x + box.width / 2, box.y - 3, box.label, ha="center", va="bottom", fontsize=font * 0.9, zorder=4)


def _junctions(wires) -> set[tuple[int, int]]:
    """Corners of wires that another wire also passes through: drawn as dots, so that a bus that joins
    wires is told apart from wires that merely cross."""
    def on(point, w) -> bool:
        (px, py) = point
        return any(min(x0, x1) <= px <= max(x0, x1) and min(y0, y1) <= py <= max(y0, y1)
                   for (x0, y0), (x1, y1) in zip(w.points, w.points[1:]))

    dots = set()
    for k, w in enumerate(wires):
        for corner in w.points[1:-1]:
            if corner not in dots and any(on(corner, v) for j, v in enumerate(wires) if j != k):
                dots.add(corner)
    return dots
