"""Grid layout of a ladder program in the pixel units of LD editors (Beremiz, OpenPLC): for drawing and XML.

Every contact, block, coil and rail gets a Box (x, y, width, height; y grows downwards) with its
connection points, and every wire of `graph.to_graph` a Wire with the points of its path. Elements in
series run left to right along the rung's power line, parallel branches stack downwards below it, each
block's constant and variable inputs (PT, PV, R / LD) get an in-variable box to its left, coils stack
downwards at the right, and rungs stack top to bottom without overlap. All rungs share the x of their
coils and right rails, as in an editor's sheet.

Sizes follow Beremiz: contacts and coils 21 x 15 with their connection points 8 below the top, rails 3
wide, blocks 60 wide with 25 between input pins.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from apps.ladder.graph import coil_node, element_node, left_rail, right_rail
from apps.ladder.program import Contact, Counter, Parallel, Program, Timer, format_time

RAIL_WIDTH = 3
CONTACT_WIDTH, CONTACT_HEIGHT, PIN_Y = 21, 15, 8  # coils too; PIN_Y: connection points below the top
BLOCK_WIDTH = 60
BLOCK_PIN_Y, BLOCK_PIN_PITCH, BLOCK_BOTTOM = 30, 25, 20  # first pin below the top, pin spacing, below the last
VARIABLE_HEIGHT = 20  # in-variable boxes (PT, PV, R / LD), connection point at half height
LABEL = 14  # room above an element for its variable or instance name
H_GAP = 30  # wire between elements in series
STUB = 20  # wire between a parallel's vertical bus and its branches
V_GAP = 12  # between stacked branches
VAR_GAP = 15  # between an in-variable and its block
RUNG_GAP = 30
MARGIN = 20

# block kind -> (input pins, output pins); the first input takes the power, Q gives it on
BLOCK_PINS = {
    "TON": (("IN", "PT"), ("Q", "ET")),
    "TOF": (("IN", "PT"), ("Q", "ET")),
    "TP": (("IN", "PT"), ("Q", "ET")),
    "CTU": (("CU", "R", "PV"), ("Q", "CV")),
    "CTD": (("CD", "LD", "PV"), ("Q", "CV")),
}

Point = tuple[int, int]


@dataclass
class Box:
    """One drawn element. `node` is its graph node id; an in-variable's is "<block node>.<pin>"."""

    node: str
    type: str  # left_rail, right_rail, contact, coil, block, variable
    x: int
    y: int
    width: int
    height: int
    rung: int
    kind: str = ""  # NO, NC, P, N / OUT, NOT, SET, RST / TON, ..., CTD
    label: str = ""  # variable, instance name, or the in-variable's expression
    inputs: dict[str, Point] = field(default_factory=dict)  # pin -> absolute connection point
    outputs: dict[str, Point] = field(default_factory=dict)


@dataclass(frozen=True)
class Wire:
    """A wire from an output pin to an input pin; `points` run from the source to the destination."""

    src: str
    src_pin: str
    dst: str
    dst_pin: str
    points: tuple[Point, ...]


@dataclass
class Layout:
    boxes: dict[str, Box]
    wires: list[Wire]
    rungs: list[tuple[int, int]]  # (top, bottom) of each rung
    width: int
    height: int


def layout(program: Program) -> Layout:
    """Positions of every element and wire of `program` (node ids as in `graph.to_graph`)."""
    widths = [_series_size(r.elements)[0] for r in program.rungs]
    x_series = MARGIN + RAIL_WIDTH + H_GAP
    x_coil = x_series + max(widths, default=0) + H_GAP + STUB
    x_right = x_coil + CONTACT_WIDTH + H_GAP
    out = Layout({}, [], [], x_right + RAIL_WIDTH + MARGIN, 0)
    top = MARGIN
    for i, rung in enumerate(program.rungs):
        _, up, down = _series_size(rung.elements)
        up = max(up, PIN_Y + LABEL)
        y0 = top + up
        placer = _Placer(out, i)
        left = Box(left_rail(i), "left_rail", MARGIN, top, RAIL_WIDTH, 0, i)
        left.outputs["out"] = (MARGIN + RAIL_WIDTH, y0)
        out.boxes[left.node] = left
        exits = placer.series(rung.elements, x_series, y0, [(left.node, "out", None)], None)
        y = y0
        coils = []
        for j, c in enumerate(rung.coils):
            if j:
                y += CONTACT_HEIGHT - PIN_Y + V_GAP + PIN_Y + LABEL
            box = placer.add(Box(coil_node(i, j), "coil", x_coil, y - PIN_Y, CONTACT_WIDTH, CONTACT_HEIGHT, i,
                                 c.kind, c.var))
            box.inputs["in"], box.outputs["out"] = (x_coil, y), (x_coil + CONTACT_WIDTH, y)
            placer.connect(exits, box.node, "in", x_coil - STUB // 2)
            coils.append(box)
        bottom = max(y0 + down, y + CONTACT_HEIGHT - PIN_Y)
        right = Box(right_rail(i), "right_rail", x_right, top, RAIL_WIDTH, bottom - top, i)
        out.boxes[right.node] = right
        for j, box in enumerate(coils):
            right.inputs[f"in{j}"] = (x_right, box.outputs["out"][1])
            placer.wire(box.node, "out", right.node, f"in{j}", None)
        left.height = bottom - top
        out.rungs.append((top, bottom))
        top = bottom + RUNG_GAP
    out.height = top - RUNG_GAP + MARGIN
    return out


# ---------------------------------------------------------------- sizes

def _element_size(e) -> tuple[int, int, int]:
    """(width, up, down): extent left to right, above and below the power line at the element's input."""
    if isinstance(e, Contact):
        return CONTACT_WIDTH, PIN_Y + LABEL, CONTACT_HEIGHT - PIN_Y
    if isinstance(e, (Timer, Counter)):
        height = _block_height(e.kind)
        return _variables_width(e) + VAR_GAP + BLOCK_WIDTH, BLOCK_PIN_Y + LABEL, height - BLOCK_PIN_Y
    sizes = [_series_size(b) for b in e.branches]
    width = STUB + max(w for w, _, _ in sizes) + STUB
    return width, sizes[0][1], _branch_offsets(sizes)[-1] + sizes[-1][2]


def _series_size(series) -> tuple[int, int, int]:
    sizes = [_element_size(e) for e in series]
    if not sizes:
        return 0, 0, 0
    return sum(w for w, _, _ in sizes) + H_GAP * (len(sizes) - 1), max(u for _, u, _ in sizes), \
        max(d for _, _, d in sizes)


def _branch_offsets(sizes) -> list[int]:
    """Power-line offsets of stacked branches below the first."""
    offsets = [0]
    for (_, _, down), (_, up, _) in zip(sizes, sizes[1:]):
        offsets.append(offsets[-1] + down + V_GAP + up)
    return offsets


def _block_height(kind: str) -> int:
    n = max(len(pins) for pins in BLOCK_PINS[kind])
    return BLOCK_PIN_Y + BLOCK_PIN_PITCH * (n - 1) + BLOCK_BOTTOM


def block_parameters(e: Timer | Counter) -> list[tuple[str, str]]:
    """The in-variables of a block: (pin, expression), e.g. [("PT", "T#3s")] or [("R", "Reset"), ("PV", "5")]."""
    if isinstance(e, Timer):
        return [("PT", format_time(e.preset_ms))]
    return [(BLOCK_PINS[e.kind][0][1], e.aux), ("PV", str(e.preset))]


def variable_width(text: str) -> int:
    return max(30, 8 * len(text) + 12)


def _variables_width(e) -> int:
    return max(variable_width(text) for _, text in block_parameters(e))


# ---------------------------------------------------------------- placement

class _Placer:
    """Places one rung's elements and wires into a Layout."""

    def __init__(self, out: Layout, rung: int):
        self.out, self.rung = out, rung
        self.ids = (element_node(rung, k) for k in itertools.count())

    def add(self, box: Box) -> Box:
        self.out.boxes[box.node] = box
        return box

    def wire(self, src: str, src_pin: str, dst: str, dst_pin: str, bus: int | None, src_bus: int | None = None):
        """A wire; when the ends are at different heights it turns down (or up) at the x of a vertical bus:
        the destination's fan-out bus if it starts a branch, else the source's merge bus."""
        (sx, sy) = self.out.boxes[src].outputs[src_pin]
        (dx, dy) = self.out.boxes[dst].inputs[dst_pin]
        if sy == dy:
            points = ((sx, sy), (dx, dy))
        else:
            bx = bus if bus is not None else src_bus if src_bus is not None else (sx + dx) // 2
            points = ((sx, sy), (bx, sy), (bx, dy), (dx, dy))
        self.out.wires.append(Wire(src, src_pin, dst, dst_pin, points))

    def connect(self, sources, dst: str, dst_pin: str, bus: int | None):
        for node, pin, src_bus in sources:
            self.wire(node, pin, dst, dst_pin, bus, src_bus)

    def series(self, series, x: int, y0: int, sources: list, bus: int | None) -> list:
        """Place `series` with its power line at y0 from x, fed by `sources` [(node, pin, merge bus x)];
        `bus` is the fan-out bus for the first element. Returns the exits in the same form."""
        for e in series:
            width = _element_size(e)[0]
            if isinstance(e, Parallel):
                sizes = [_series_size(b) for b in e.branches]
                exits = []
                for b, offset in zip(e.branches, _branch_offsets(sizes)):
                    exits += self.series(b, x + STUB, y0 + offset, sources, x + STUB // 2)
                merge = x + width - STUB // 2
                sources = [(node, pin, merge) for node, pin, _ in exits]
            else:
                node = next(self.ids)
                if isinstance(e, Contact):
                    box = self.add(Box(node, "contact", x, y0 - PIN_Y, CONTACT_WIDTH, CONTACT_HEIGHT, self.rung,
                                       e.kind, e.var))
                    box.inputs["in"], box.outputs["out"] = (x, y0), (x + CONTACT_WIDTH, y0)
                    power_in = "in"
                else:
                    power_in = self.block(node, e, x + width - BLOCK_WIDTH, y0)
                self.connect(sources, node, power_in, bus)
                sources = [(node, "out" if isinstance(e, Contact) else "Q", None)]
            bus = None
            x += width + H_GAP
        return sources

    def block(self, node: str, e: Timer | Counter, x: int, y0: int) -> str:
        """Place a block with its input pins at x and its power input at y0; returns that pin's name."""
        inputs, outputs = BLOCK_PINS[e.kind]
        top = y0 - BLOCK_PIN_Y
        box = self.add(Box(node, "block", x, top, BLOCK_WIDTH, _block_height(e.kind), self.rung, e.kind, e.name))
        for k, pin in enumerate(inputs):
            box.inputs[pin] = (x, top + BLOCK_PIN_Y + BLOCK_PIN_PITCH * k)
        for k, pin in enumerate(outputs):
            box.outputs[pin] = (x + BLOCK_WIDTH, top + BLOCK_PIN_Y + BLOCK_PIN_PITCH * k)
        for pin, text in block_parameters(e):
            px, py = box.inputs[pin]
            w = variable_width(text)
            var = self.add(Box(f"{node}.{pin}", "variable", px - VAR_GAP - w, py - VARIABLE_HEIGHT // 2, w,
                               VARIABLE_HEIGHT, self.rung, label=text))
            var.outputs["out"] = (px - VAR_GAP, py)
            self.wire(var.node, "out", node, pin, None)
        return inputs[0]
