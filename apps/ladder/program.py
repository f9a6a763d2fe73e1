"""Ladder-diagram programs: the rung structure, the text form the model writes, and its parser.

Text form, one rung per line (blank lines are ignored):

    rung     := element* coil+                  the coils share the rung's power (parallel outputs)
    element  := contact | block | '[' series (',' series)+ ']'    a bracket is a parallel branch (OR)
    series   := element+                        elements side by side are in series (AND)
    contact  := NO(op) | NC(op) | P(op) | N(op)  normally open / closed, rising / falling edge
    op       := NAME | NAME '.Q'                a variable, or the Q output of a timer or counter
    block    := TON(NAME, TIME) | TOF(NAME, TIME) | TP(NAME, TIME)     IEC timers; power in = IN, out = Q
              | CTU(NAME, INT, NAME) | CTD(NAME, INT, NAME)            counters: power in = CU / CD,
                                                  the INT is PV, the last NAME the reset (CTU) / load (CTD) input
    coil     := OUT(NAME) | NOT(NAME) | SET(NAME) | RST(NAME)          normal, negated, set, reset coil
    TIME     := T#<n>ms | T#<n>s | T#<n>s<m>ms  (IEC 61131-3 duration literals; stored in milliseconds)

Example (start/stop with seal-in, then an on-delay):

    [NO(StartPB),NO(Motor)] NC(StopPB) OUT(Motor)
    NO(Motor) TON(T1,T#3s) OUT(Fan)

`parse_program` raises ProgramError with a reason (line and position) on anything else, and never
anything but ProgramError on any input (model output is arbitrary text); `try_parse` returns the reason.
`format_program` writes the text form back; `canonical` sorts parallel branches and coils, so two
programs that differ only in drawing order compare equal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Union

CONTACTS = ("NO", "NC", "P", "N")
COILS = ("OUT", "NOT", "SET", "RST")
TIMERS = ("TON", "TOF", "TP")
COUNTERS = ("CTU", "CTD")
MAX_DEPTH = 6  # nested brackets; deeper input is rejected instead of recursing on garbage
MAX_ELEMENTS = 200  # per program
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_TOKEN = re.compile(rf"\s*(?:(?P<punct>[\[\],()])|(?P<time>T#[0-9A-Za-z_.]+)|(?P<word>{_NAME}(?:\.Q)?)|(?P<int>\d+))")
_TIME = re.compile(r"^T#(?:(?P<s>\d+(?:\.\d+)?)s)?(?:(?P<ms>\d+)ms)?$", re.IGNORECASE)


class ProgramError(ValueError):
    """A program text that is not in the grammar, or a program that is not consistent (the message says why)."""


@dataclass(frozen=True)
class Contact:
    """A contact: kind NO (normally open), NC (normally closed), P (rising edge) or N (falling edge)."""

    kind: str
    var: str


@dataclass(frozen=True)
class Timer:
    """An IEC timer block (TON on-delay, TOF off-delay, TP pulse) with its instance name and preset PT."""

    kind: str
    name: str
    preset_ms: int


@dataclass(frozen=True)
class Counter:
    """An IEC counter block (CTU up, CTD down): instance name, preset PV, and its reset (CTU) / load (CTD) variable."""

    kind: str
    name: str
    preset: int
    aux: str


@dataclass(frozen=True)
class Parallel:
    """Parallel branches (a logical OR of series), at least two."""

    branches: tuple[tuple["Element", ...], ...]


Element = Union[Contact, Timer, Counter, Parallel]


@dataclass(frozen=True)
class Coil:
    """A coil: kind OUT (normal), NOT (negated), SET (latch) or RST (unlatch)."""

    kind: str
    var: str


@dataclass(frozen=True)
class Rung:
    """Elements in series from the left rail, then one or more coils in parallel to the right rail."""

    elements: tuple[Element, ...]
    coils: tuple[Coil, ...]


@dataclass(frozen=True)
class Program:
    """Rungs, evaluated top to bottom every scan."""

    rungs: tuple[Rung, ...]


# ---------------------------------------------------------------- text form

def format_time(ms: int) -> str:
    """IEC duration literal: T#3s, T#500ms, T#1s500ms."""
    s, rest = divmod(ms, 1000)
    if s and rest:
        return f"T#{s}s{rest}ms"
    return f"T#{s}s" if s else f"T#{rest}ms"


def parse_time(text: str) -> int:
    """Milliseconds of an IEC duration literal (T#2s, T#1.5s, T#500ms, T#1s500ms); ProgramError otherwise."""
    m = _TIME.match(text)
    if not m or not (m["s"] or m["ms"]):
        raise ProgramError(f"bad duration {text!r} (expected T#2s, T#500ms or T#1s500ms)")
    return round(float(m["s"] or 0) * 1000) + int(m["ms"] or 0)


def format_element(e: Element) -> str:
    if isinstance(e, Contact):
        return f"{e.kind}({e.var})"
    if isinstance(e, Timer):
        return f"{e.kind}({e.name},{format_time(e.preset_ms)})"
    if isinstance(e, Counter):
        return f"{e.kind}({e.name},{e.preset},{e.aux})"
    return "[" + ",".join(format_series(b) for b in e.branches) + "]"


def format_series(series: tuple[Element, ...]) -> str:
    return " ".join(format_element(e) for e in series)


def format_rung(rung: Rung) -> str:
    return " ".join([format_element(e) for e in rung.elements] + [f"{c.kind}({c.var})" for c in rung.coils])


def format_program(program: Program) -> str:
    """The text form: one rung per line."""
    return "\n".join(format_rung(r) for r in program.rungs)


class _Parser:
    def __init__(self, line: str, lineno: int):
        self.line, self.lineno, self.tokens, self.i = line, lineno, [], 0
        pos = 0
        while pos < len(line):
            if line[pos:].strip() == "":
                break
            m = _TOKEN.match(line, pos)
            if not m or m.end() == pos:
                self.fail(f"unexpected character {line[pos:].lstrip()[:1]!r}", pos)
            kind = m.lastgroup
            self.tokens.append((kind, m[kind], m.start(kind)))
            pos = m.end()

    def fail(self, why: str, pos: int | None = None):
        if pos is None:
            pos = self.tokens[self.i][2] if self.i < len(self.tokens) else len(self.line)
        raise ProgramError(f"line {self.lineno}, column {pos + 1}: {why}")

    def peek(self, offset: int = 0):
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else (None, None, len(self.line))

    def take(self, kind: str, value: str | None = None) -> str:
        k, v, _ = self.peek()
        if k != kind or (value is not None and v != value):
            want = repr(value) if value else {"word": "a name", "int": "an integer", "time": "a duration"}[kind]
            self.fail(f"expected {want}, found {repr(v) if v is not None else 'end of line'}")
        self.i += 1
        return v

    def name(self, allow_q: bool = False) -> str:
        v = self.take("word")
        if v.endswith(".Q") and not allow_q:
            self.i -= 1
            self.fail(f"{v!r}: a .Q output can only be read by a contact")
        return v

    def rung(self) -> Rung:
        elements = []
        while self.peek()[0] is not None and not self.is_coil():
            elements.append(self.element(0))
        coils = []
        while self.peek()[0] is not None:
            if not self.is_coil():
                self.fail("only coils may follow a coil")
            kind = self.take("word")
            self.take("punct", "(")
            var = self.name()
            self.take("punct", ")")
            coils.append(Coil(kind, var))
        if not coils:
            self.fail("a rung must end with a coil (OUT, NOT, SET or RST)")
        return Rung(tuple(elements), tuple(coils))

    def is_coil(self) -> bool:
        k, v, _ = self.peek()
        return k == "word" and v in COILS and self.peek(1)[1] == "("

    def series(self, depth: int) -> tuple[Element, ...]:
        out = []
        while self.peek()[1] not in (",", "]", None):
            if self.is_coil():
                self.fail("a coil inside a branch (coils go at the end of the rung)")
            out.append(self.element(depth))
        if not out:
            self.fail("empty branch")
        return tuple(out)

    def element(self, depth: int) -> Element:
        k, v, _ = self.peek()
        if v == "[":
            if depth >= MAX_DEPTH:
                self.fail(f"branches nested deeper than {MAX_DEPTH}")
            self.i += 1
            branches = [self.series(depth + 1)]
            while self.peek()[1] == ",":
                self.i += 1
                branches.append(self.series(depth + 1))
            self.take("punct", "]")
            if len(branches) < 2:
                self.fail("a parallel branch needs at least two series separated by ','")
            return Parallel(tuple(branches))
        if k != "word" or v not in CONTACTS + TIMERS + COUNTERS:
            self.fail(f"expected a contact, block or '[', found {repr(v) if v is not None else 'end of line'}")
        self.i += 1
        self.take("punct", "(")
        if v in CONTACTS:
            out: Element = Contact(v, self.name(allow_q=True))
        elif v in TIMERS:
            name = self.name()
            self.take("punct", ",")
            k2, t, pos = self.peek()
            if k2 != "time":
                self.fail("expected a duration such as T#2s")
            self.i += 1
            try:
                out = Timer(v, name, parse_time(t))
            except ProgramError as exc:
                self.fail(str(exc), pos)
        else:
            name = self.name()
            self.take("punct", ",")
            preset = int(self.take("int"))
            self.take("punct", ",")
            out = Counter(v, name, preset, self.name())
        self.take("punct", ")")
        return out


def parse_program(text: str) -> Program:
    """The program in `text` (one rung per line); ProgramError naming the line and column otherwise."""
    if not isinstance(text, str):
        raise ProgramError(f"a program is text, not {type(text).__name__}")
    rungs = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.strip():
            p = _Parser(line, lineno)
            rungs.append(p.rung())
    if not rungs:
        raise ProgramError("no rung")
    program = Program(tuple(rungs))
    check(program)
    return program


def try_parse(text) -> tuple[Program | None, str]:
    """(program, "") or (None, reason); never raises."""
    try:
        return parse_program(text), ""
    except ProgramError as exc:
        return None, str(exc)
    except RecursionError:  # pragma: no cover - MAX_DEPTH bounds recursion
        return None, "nested too deeply"


# ---------------------------------------------------------------- structure

def walk(elements: tuple[Element, ...]):
    """Every contact and block in a series, depth first, left to right (parallel branches top to bottom)."""
    for e in elements:
        if isinstance(e, Parallel):
            for b in e.branches:
                yield from walk(b)
        else:
            yield e


def blocks(program: Program) -> dict[str, Timer | Counter]:
    """Timer and counter instances by name."""
    return {e.name: e for r in program.rungs for e in walk(r.elements) if isinstance(e, (Timer, Counter))}


def check(program: Program) -> None:
    """ProgramError when a block instance is used twice, a .Q names no block, a coil writes a block, or it is too big."""
    seen: dict[str, Element] = {}
    count = 0
    for r in program.rungs:
        for e in walk(r.elements):
            count += 1
            if isinstance(e, (Timer, Counter)):
                if e.name in seen:
                    raise ProgramError(f"block instance {e.name} is used twice")
                seen[e.name] = e
        count += len(r.coils)
    if count > MAX_ELEMENTS:
        raise ProgramError(f"more than {MAX_ELEMENTS} elements")
    for r in program.rungs:
        for e in walk(r.elements):
            if isinstance(e, Contact) and e.var.endswith(".Q") and e.var[:-2] not in seen:
                raise ProgramError(f"{e.var}: no timer or counter named {e.var[:-2]}")
            if isinstance(e, Counter) and e.aux in seen:
                raise ProgramError(f"{e.kind}({e.name}): its {'reset' if e.kind == 'CTU' else 'load'} input "
                                   f"{e.aux} is a block instance, not a variable")
        for c in r.coils:
            if c.var in seen:
                raise ProgramError(f"coil {c.kind}({c.var}) writes the block instance {c.var}")


def variables(program: Program) -> dict[str, str]:
    """Every BOOL variable with its role: `input` (only read), `output` (written by a coil); a task's table may
    also call a written variable `memory` (internal, not compared by the scorer).

    Timer and counter instances are not listed (see `blocks`); .Q operands are not variables.
    """
    read, written = [], []
    for r in program.rungs:
        for e in walk(r.elements):
            if isinstance(e, Contact) and not e.var.endswith(".Q"):
                read.append(e.var)
            elif isinstance(e, Counter):
                read.append(e.aux)
        written += [c.var for c in r.coils]
    out = {v: "output" for v in dict.fromkeys(written)}
    for v in read:
        out.setdefault(v, "input")
    return out


def _canon_series(series: tuple[Element, ...]) -> tuple[Element, ...]:
    out = []
    for e in series:
        if isinstance(e, Parallel):
            branches = []
            for b in map(_canon_series, e.branches):  # [[A,B],C] is [A,B,C]: the drawing is the same
                branches.extend(b[0].branches if len(b) == 1 and isinstance(b[0], Parallel) else [b])
            out.append(Parallel(tuple(sorted(branches, key=format_series))))
        else:
            out.append(e)
    return tuple(out)


def canonical(program: Program) -> Program:
    """The program with parallel branches and each rung's coils in sorted order (the drawing order does not matter),
    and a branch that is itself only a parallel merged into its parent.

    Coils are sorted by variable only (a stable sort): two coils of one variable keep their order, which matters.
    """
    return Program(tuple(Rung(_canon_series(r.elements), tuple(sorted(r.coils, key=lambda c: c.var)))
                         for r in program.rungs))


def canonical_text(program: Program) -> str:
    """The text of the canonical program: equal texts are the same drawing up to branch and coil order."""
    return format_program(canonical(program))
