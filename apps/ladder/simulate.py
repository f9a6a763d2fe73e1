"""PLC scan-cycle simulation of a ladder program, and behavioural equivalence of two programs.

One scan: the inputs are read (a snapshot), the rungs are evaluated top to bottom, and coil writes
take effect at once (a later rung reads what an earlier rung wrote in the same scan, as on a PLC);
the outputs are what the variables hold at the end of the scan. Power flows left to right: a
contact passes power when it conducts (NO: variable on; NC: off; P: off->on since this contact's
previous evaluation; N: on->off), a parallel branch passes the OR of its branches, a block passes
its Q. Every element is evaluated every scan (no short circuit), so edge contacts and blocks see
every scan. Coils: OUT writes the power, NOT its negation, SET latches on when powered, RST off.

Timers run on a simulated clock advanced by `scan_ms` per scan (IEC 61131-3 semantics):
TON: Q once IN has been on for PT; TOF: Q on with IN and for PT after IN goes off; TP: a pulse of
length PT started by a rising IN while no pulse runs. Counters: CTU counts rising CU edges, R
resets to 0, Q = CV >= PV; CTD counts down on rising CD, LD loads PV, Q = CV <= 0. A `NAME.Q`
contact reads the block's Q as last computed (this scan if the block's rung is above).

Two programs are equivalent on a set of input sequences when their outputs agree after every
scan of every sequence. `input_sequences` makes the sequences: every input held alone, pairs of
inputs, pulses, and random sequences with holds long enough for the timers to elapse.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from apps.ladder.program import Contact, Counter, Element, Parallel, Program, Timer

SCAN_MS = 100


@dataclass
class _BlockState:
    q: bool = False
    et: int = 0  # elapsed ms (timers)
    cv: int = 0  # count (counters)
    last_in: bool = False
    running: bool = False  # TP pulse / TOF delay in progress


@dataclass
class Simulator:
    """Runs one program scan by scan; variables start off, counters at 0."""

    program: Program
    scan_ms: int = SCAN_MS
    values: dict[str, bool] = field(default_factory=dict)

    def __post_init__(self):
        self.blocks: dict[str, _BlockState] = {}
        self.edges: dict[tuple, bool] = {}  # previous variable value seen by each edge contact

    def read(self, var: str) -> bool:
        if var.endswith(".Q"):
            state = self.blocks.get(var[:-2])
            return state.q if state else False
        return self.values.get(var, False)

    def scan(self, inputs: dict[str, bool]) -> None:
        """One scan cycle with these input values."""
        self.values.update(inputs)
        for r, rung in enumerate(self.program.rungs):
            power = self._series(rung.elements, True, (r,))
            for coil in rung.coils:
                if coil.kind == "OUT":
                    self.values[coil.var] = power
                elif coil.kind == "NOT":
                    self.values[coil.var] = not power
                elif coil.kind == "SET" and power:
                    self.values[coil.var] = True
                elif coil.kind == "RST" and power:
                    self.values[coil.var] = False

    def _series(self, elements: tuple[Element, ...], power: bool, path: tuple) -> bool:
        for i, e in enumerate(elements):
            power = self._element(e, power, path + (i,))
        return power

    def _element(self, e: Element, power: bool, path: tuple) -> bool:
        if isinstance(e, Parallel):
            outs = [self._series(b, power, path + (j,)) for j, b in enumerate(e.branches)]
            return any(outs)
        if isinstance(e, Contact):
            v = self.read(e.var)
            if e.kind == "NO":
                return power and v
            if e.kind == "NC":
                return power and not v
            prev = self.edges.get(path, False)
            self.edges[path] = v
            return power and (v and not prev if e.kind == "P" else prev and not v)
        if isinstance(e, Timer):
            return self._timer(e, power)
        return self._counter(e, power)

    def _timer(self, t: Timer, x: bool) -> bool:
        s = self.blocks.setdefault(t.name, _BlockState())
        if t.kind == "TON":
            s.et = min(s.et + self.scan_ms, t.preset_ms) if x and s.last_in else (0 if not x else s.et)
            s.q = x and s.et >= t.preset_ms
        elif t.kind == "TOF":
            if x:
                s.q, s.et, s.running = True, 0, False
            elif s.last_in or s.running:
                s.running = True
                s.et = min(s.et + (self.scan_ms if not s.last_in else 0), t.preset_ms)
                s.q = s.et < t.preset_ms
                s.running = s.q
        else:  # TP
            if x and not s.last_in and not s.running:
                s.running, s.et = True, 0
            elif s.running:
                s.et = min(s.et + self.scan_ms, t.preset_ms)
            if s.running and s.et >= t.preset_ms:
                s.running = False
            s.q = s.running
            if not s.running and not x:
                s.et = 0
        s.last_in = x
        return s.q

    def _counter(self, c: Counter, x: bool) -> bool:
        s = self.blocks.setdefault(c.name, _BlockState())
        rising = x and not s.last_in
        if c.kind == "CTU":
            if self.read(c.aux):
                s.cv = 0
            elif rising:
                s.cv += 1
            s.q = s.cv >= c.preset
        else:
            if self.read(c.aux):
                s.cv = c.preset
            elif rising:
                s.cv -= 1
            s.q = s.cv <= 0
        s.last_in = x
        return s.q


def run(program: Program, sequence: Sequence[dict[str, bool]], outputs: Sequence[str],
        scan_ms: int = SCAN_MS) -> list[tuple[bool, ...]]:
    """The outputs' values after each scan of one input sequence, from a fresh PLC."""
    sim = Simulator(program, scan_ms)
    trace = []
    for inputs in sequence:
        sim.scan(inputs)
        trace.append(tuple(sim.values.get(o, False) for o in outputs))
    return trace


def input_sequences(inputs: Sequence[str], *, seed: int = 0, random_sequences: int = 12, length: int = 80,
                   hold_scans: int = 60) -> list[list[dict[str, bool]]]:
    """Input sequences that exercise a program: targeted ones, then random ones (deterministic in seed).

    Targeted: each input held on for `hold_scans` (6 s: longer than the generated timer presets at 100 ms
    per scan) then off; each ordered pair of inputs (the first on, then both, then the first off);
    each input pulsed four times (counters and edges). Random: every input toggles with probability
    0.15 per scan, so values are held for several scans.
    """
    inputs = list(inputs)
    off = {i: False for i in inputs}
    seqs: list[list[dict[str, bool]]] = []

    def on(*names):
        return {**off, **{n: True for n in names}}

    for a in inputs:
        seqs.append([on(a)] * hold_scans + [off] * hold_scans)
        seqs.append(([on(a)] + [off] * 2) * 8 + [off] * hold_scans)
    for a in inputs:
        for b in inputs:
            if a != b:
                seqs.append([on(a)] * 5 + [on(a, b)] * 5 + [on(b)] * 5 + [off] * 20)
    rng = random.Random(f"{seed}:{','.join(inputs)}")
    for _ in range(random_sequences):
        state, seq = dict(off), []
        for _ in range(length):
            for i in inputs:
                if rng.random() < 0.15:
                    state[i] = not state[i]
            seq.append(dict(state))
        seqs.append(seq)
    return seqs or [[{}] * hold_scans]


@dataclass(frozen=True)
class Behaviour:
    """A program's output traces on a fixed set of input sequences (equal behaviours = equivalent programs)."""

    outputs: tuple[str, ...]
    traces: tuple[tuple[tuple[bool, ...], ...], ...]


def behaviour(program: Program, sequences: Sequence[Sequence[dict[str, bool]]], outputs: Sequence[str]) -> Behaviour:
    """The output traces of `program` on every sequence."""
    return Behaviour(tuple(outputs), tuple(tuple(run(program, s, outputs)) for s in sequences))


def first_difference(a: Behaviour, b: Behaviour) -> str:
    """Where two behaviours first differ ("" when equal): the sequence, scan and output."""
    for k, (ta, tb) in enumerate(zip(a.traces, b.traces)):
        for t, (va, vb) in enumerate(zip(ta, tb)):
            if va != vb:
                o = next(i for i, (x, y) in enumerate(zip(va, vb)) if x != y)
                return f"sequence {k}, scan {t}: {a.outputs[o]} is {va[o]} vs {vb[o]}"
    return ""


def outputs_matching(a: Behaviour, b: Behaviour) -> float:
    """Share of a's outputs whose value agrees with b's after every scan of every sequence (b: same sequences)."""
    if not a.outputs:
        return 1.0
    same = [all(sa[k] == sb[k] for ta, tb in zip(a.traces, b.traces) for sa, sb in zip(ta, tb))
            for k in range(len(a.outputs))]
    return sum(same) / len(same)
