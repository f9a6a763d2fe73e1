"""Generated industrial control tasks: patterns composed into programs with instructions and variable tables.

Eight pattern families a PLC course starts with, each with variants:
start/stop with seal-in, interlock, jog, alarm with acknowledge, delay (on-delay, off-delay, pulse),
counting (up, down), sequencer (star-delta, two-step batch) and mode selection (auto/manual).
A program is one pattern or two of different families (each with its own variables and block
instances); its instruction joins one paraphrase per pattern, drawn from several per variant.
Variable names come from pools of industrial names with a unit number, so the model must read
the variable table to write the right names.

Held-out split by composition: the two-family combinations in `HELDOUT_PAIRS` never occur in
training, so held-out programs combine patterns in ways the model has not seen (every family
alone and in other combinations is in training). The `seen` split is the in-distribution check:
new tasks of the training compositions, none repeating a training task.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

from apps.ladder.program import Program, parse_program

FAMILIES = ("seal_in", "interlock", "jog", "alarm", "delay", "counting", "sequencer", "mode")
_ALL_PAIRS = list(itertools.combinations(FAMILIES, 2))
HELDOUT_PAIRS = tuple(_ALL_PAIRS[i] for i in (2, 7, 11, 15, 19, 22, 26))  # 7 of 28, every family in at least one


@dataclass(frozen=True)
class Var:
    """A variable table row: name, role (input, output, memory) and what it is."""

    name: str
    role: str
    comment: str


@dataclass(frozen=True)
class Task:
    """An instruction with its variable table (BOOLs and block instances) and the reference program text."""

    id: str
    instruction: str
    variables: tuple[Var, ...]
    blocks: tuple[tuple[str, str], ...]  # (instance name, type)
    program: str
    patterns: tuple[str, ...]  # "family/variant" per composed pattern

    @property
    def families(self) -> tuple[str, ...]:
        return tuple(p.split("/")[0] for p in self.patterns)

    def parsed(self) -> Program:
        return parse_program(self.program)


class _Names:
    """Unique names in one program: a pool word plus a unit number."""

    def __init__(self, rng: random.Random):
        self.rng, self.used = rng, set()
        self.unit = rng.randint(1, 4)
        self.timers = self.counters = 0

    def pick(self, pool: tuple[str, ...]) -> str:
        for _ in range(50):
            name = f"{self.rng.choice(pool)}{self.unit}"
            if name not in self.used:
                self.used.add(name)
                return name
        name = f"{pool[0]}{self.unit}_{len(self.used)}"
        self.used.add(name)
        return name

    def timer(self) -> str:
        self.timers += 1
        return f"T{self.timers}"

    def counter(self) -> str:
        self.counters += 1
        return f"C{self.counters}"


MOTORS = ("Motor", "Pump", "Conveyor", "Fan", "Mixer", "Compressor", "Agitator", "Blower")
LAMPS = ("RunLamp", "Beacon", "PilotLight", "StatusLamp")
SENSORS = ("Sensor", "PhotoEye", "ProxSwitch", "LevelSwitch", "LimitSwitch")
SECONDS = (1, 2, 3, 4, 5)


def _seconds(rng) -> tuple[int, str]:
    s = rng.choice(SECONDS + (0.5, 1.5))
    ms = int(s * 1000)
    return ms, (f"{s:g} second" + ("" if s == 1 else "s"))


def _seal_in(rng, n: _Names):
    start, stop, motor = n.pick(("StartPB", "StartBtn", "Start")), n.pick(("StopPB", "StopBtn", "Stop")), n.pick(MOTORS)
    vars_ = [Var(start, "input", "start push button"), Var(stop, "input", "stop push button"), Var(motor, "output", "motor contactor")]
    variant = rng.choice(("basic", "overload", "lamp"))
    if variant == "basic":
        rungs = [f"[NO({start}),NO({motor})] NC({stop}) OUT({motor})"]
        texts = [f"Pressing {start} starts {motor}; it keeps running after {start} is released until {stop} is pressed.",
                 f"Latch {motor} on with {start} (seal-in) and drop it out with {stop}.",
                 f"{motor} is self-holding: {start} switches it on, its own contact holds it, {stop} switches it off."]
    elif variant == "overload":
        ol = n.pick(("Overload", "ThermalTrip", "OLRelay"))
        vars_.append(Var(ol, "input", "overload relay tripped"))
        rungs = [f"[NO({start}),NO({motor})] NC({stop}) NC({ol}) OUT({motor})"]
        texts = [f"Start {motor} with {start} and keep it running (seal-in); {stop} or a tripped {ol} stops it.",
                 f"{motor} latches on from {start} and drops out when {stop} is pressed or {ol} trips.",
                 f"Self-holding {motor}: on by {start}, off by {stop}; the overload {ol} also breaks the circuit."]
    else:
        lamp = n.pick(LAMPS)
        vars_.append(Var(lamp, "output", "run indicator"))
        rungs = [f"[NO({start}),NO({motor})] NC({stop}) OUT({motor}) OUT({lamp})"]
        texts = [f"{start} starts {motor} and it stays on until {stop}; {lamp} is lit whenever {motor} runs.",
                 f"Seal-in circuit: {start} latches {motor}, {stop} releases it, and {lamp} shows the same state.",
                 f"Latch {motor} with {start}, unlatch with {stop}, and drive {lamp} from the same rung."]
    return variant, rungs, texts, vars_


def _interlock(rng, n: _Names):
    variant = rng.choice(("reversing", "permissive"))
    if variant == "reversing":
        fpb, rpb, stop = n.pick(("FwdPB", "FwdBtn")), n.pick(("RevPB", "RevBtn")), n.pick(("StopPB", "StopBtn"))
        fwd, rev = n.pick(("Forward", "FwdRun")), n.pick(("Reverse", "RevRun"))
        vars_ = [Var(fpb, "input", "forward push button"), Var(rpb, "input", "reverse push button"),
                 Var(stop, "input", "stop push button"), Var(fwd, "output", "forward contactor"),
                 Var(rev, "output", "reverse contactor")]
        rungs = [f"[NO({fpb}),NO({fwd})] NC({stop}) NC({rev}) OUT({fwd})",
                 f"[NO({rpb}),NO({rev})] NC({stop}) NC({fwd}) OUT({rev})"]
        texts = [f"Reversing starter: {fpb} latches {fwd}, {rpb} latches {rev}, {stop} stops both, and each direction is locked out while the other runs.",
                 f"{fwd} and {rev} are self-holding from {fpb} and {rpb}; they interlock each other and {stop} drops them out.",
                 f"Run forward ({fwd}) with {fpb} or reverse ({rev}) with {rpb}, sealed in, never both at once; {stop} stops."]
    else:
        req, guard, out = n.pick(("RunReq", "Request", "Demand")), n.pick(("GuardClosed", "DoorClosed", "SafetyOK")), n.pick(MOTORS)
        block = n.pick(("EStop", "Fault", "Trip"))
        vars_ = [Var(req, "input", "run request"), Var(guard, "input", "guard closed"), Var(block, "input", "emergency stop active"),
                 Var(out, "output", "drive")]
        rungs = [f"NO({req}) NO({guard}) NC({block}) OUT({out})"]
        texts = [f"{out} runs while {req} is on, but only when {guard} is closed and {block} is not active.",
                 f"Drive {out} from {req}, permitted by {guard} and blocked by {block}.",
                 f"{out} = {req} with the interlocks {guard} (must be on) and {block} (must be off)."]
    return variant, rungs, texts, vars_


def _jog(rng, n: _Names):
    variant = rng.choice(("latch_jog", "jog_only"))
    motor, jog = n.pick(MOTORS), n.pick(("JogPB", "JogBtn", "Inch"))
    if variant == "latch_jog":
        start, stop, run = n.pick(("StartPB", "Start")), n.pick(("StopPB", "Stop")), n.pick(("RunLatch", "RunMem"))
        vars_ = [Var(start, "input", "start push button"), Var(stop, "input", "stop push button"),
                 Var(jog, "input", "jog push button"), Var(run, "memory", "run latch"), Var(motor, "output", "motor")]
        rungs = [f"[NO({start}),NO({run})] NC({stop}) OUT({run})", f"[NO({run}),NO({jog})] OUT({motor})"]
        texts = [f"{start} latches {run} until {stop}; {motor} runs when {run} is set or while {jog} is held (jog).",
                 f"Run/jog: a latched run memory {run} (on by {start}, off by {stop}) or the jog button {jog} drives {motor}.",
                 f"Keep {motor} running after {start} via {run}, stop with {stop}, and let {jog} inch it without latching."]
    else:
        stop = n.pick(("StopPB", "Stop"))
        vars_ = [Var(jog, "input", "jog push button"), Var(stop, "input", "stop push button"), Var(motor, "output", "motor")]
        rungs = [f"NO({jog}) NC({stop}) OUT({motor})"]
        texts = [f"{motor} runs only while {jog} is held, and never while {stop} is pressed.",
                 f"Jog {motor} with {jog} (no latch); {stop} overrides.",
                 f"Inching: {motor} follows {jog} as long as {stop} is not pressed."]
    return variant, rungs, texts, vars_


def _alarm(rng, n: _Names):
    fault, ack, alarm = n.pick(("HighTemp", "HighPressure", "LowLevel", "Leak")), n.pick(("AckPB", "Ack", "Reset")), n.pick(("Alarm", "AlarmLatch"))
    vars_ = [Var(fault, "input", "fault condition"), Var(ack, "input", "acknowledge button"), Var(alarm, "output", "alarm")]
    variant = rng.choice(("latched", "edge", "horn"))
    if variant == "latched":
        rungs = [f"NO({fault}) SET({alarm})", f"NO({ack}) NC({fault}) RST({alarm})"]
        texts = [f"{fault} sets {alarm}; {alarm} stays on until {ack} is pressed while {fault} has cleared.",
                 f"Latch {alarm} on {fault}; {ack} resets it, but only once {fault} is gone.",
                 f"Set {alarm} whenever {fault} is active and reset it with {ack} when the fault is no longer present."]
    elif variant == "edge":
        rungs = [f"P({fault}) SET({alarm})", f"NO({ack}) RST({alarm})"]
        texts = [f"When {fault} comes on, set {alarm}; {ack} resets it (a fault that stays on does not set it again).",
                 f"The rising edge of {fault} latches {alarm}; {ack} clears it.",
                 f"Set {alarm} once at the moment {fault} appears and reset it with {ack}."]
    else:
        horn = n.pick(("Horn", "Siren", "Buzzer"))
        vars_.append(Var(horn, "output", "audible alarm"))
        rungs = [f"NO({fault}) SET({alarm})", f"NO({ack}) NC({fault}) RST({alarm})", f"NO({alarm}) NC({ack}) OUT({horn})"]
        texts = [f"{fault} latches {alarm} until {ack} after the fault clears; {horn} sounds while {alarm} is on and {ack} is not pressed.",
                 f"Alarm with acknowledge: set {alarm} on {fault}, reset it with {ack} once {fault} is off, and sound {horn} from {alarm} unless {ack} is held.",
                 f"Latch {alarm} from {fault} (reset by {ack} when clear) and drive {horn} from {alarm}, silenced while {ack} is pressed."]
    return variant, rungs, texts, vars_


def _delay(rng, n: _Names):
    variant = rng.choice(("on_delay", "off_delay", "pulse", "falling_pulse"))
    ms, span = _seconds(rng)
    t = n.timer()
    sensor, out = n.pick(SENSORS), n.pick(("Valve", "Fan", "Heater", "Lamp", "Horn", "Light"))
    vars_ = [Var(sensor, "input", "sensor"), Var(out, "output", "actuator")]
    if variant == "on_delay":
        rungs = [f"NO({sensor}) TON({t},{_fmt(ms)}) OUT({out})"]
        texts = [f"Switch {out} on once {sensor} has been on for {span} (on-delay, timer {t}); off as soon as {sensor} goes off.",
                 f"{out} follows {sensor} with a {span} on-delay ({t}).",
                 f"After {sensor} is active continuously for {span}, energise {out}; use {t} as a TON."]
    elif variant == "off_delay":
        rungs = [f"NO({sensor}) TOF({t},{_fmt(ms)}) OUT({out})"]
        texts = [f"{out} turns on with {sensor} and stays on for {span} after {sensor} goes off (off-delay, {t}).",
                 f"Give {out} a {span} run-on after {sensor} drops (TOF {t}).",
                 f"Keep {out} energised while {sensor} is on and for {span} afterwards, using {t}."]
    elif variant == "pulse":
        rungs = [f"NO({sensor}) TP({t},{_fmt(ms)}) OUT({out})"]
        texts = [f"When {sensor} comes on, pulse {out} for exactly {span} ({t}), however long {sensor} stays on.",
                 f"{sensor} triggers a {span} pulse on {out} (TP {t}).",
                 f"Fire {out} for {span} on each activation of {sensor}, with pulse timer {t}."]
    else:
        rungs = [f"N({sensor}) TP({t},{_fmt(ms)}) OUT({out})"]
        texts = [f"When {sensor} goes off, switch {out} on for {span} ({t}).",
                 f"The falling edge of {sensor} starts a {span} pulse on {out} (TP {t}).",
                 f"On release of {sensor}, pulse {out} for {span} using {t}."]
    return variant, rungs, texts, vars_


def _fmt(ms: int) -> str:
    from apps.ladder.program import format_time

    return format_time(ms)


def _counting(rng, n: _Names):
    variant = rng.choice(("up", "down"))
    c, preset = n.counter(), rng.randint(2, 6)
    if variant == "up":
        part, reset, full = n.pick(("PartSensor", "BottleEye", "BoxSensor")), n.pick(("CountReset", "ResetPB")), n.pick(("BatchDone", "BoxFull", "CountDone"))
        vars_ = [Var(part, "input", "part detected"), Var(reset, "input", "counter reset"), Var(full, "output", "batch complete")]
        rungs = [f"NO({part}) CTU({c},{preset},{reset}) OUT({full})"]
        texts = [f"Count parts on {part} with {c}; {full} comes on at {preset} parts; {reset} clears the count.",
                 f"{full} signals that {preset} pulses of {part} have been counted (CTU {c}, reset by {reset}).",
                 f"Up-count {part} in {c} to a preset of {preset}, output {full}, reset with {reset}."]
    else:
        dispense, load, empty = n.pick(("Dispense", "Vend", "Eject")), n.pick(("Refill", "LoadPB")), n.pick(("Empty", "OutOfStock"))
        vars_ = [Var(dispense, "input", "item dispensed"), Var(load, "input", "magazine refilled"), Var(empty, "output", "magazine empty")]
        rungs = [f"NO({dispense}) CTD({c},{preset},{load}) OUT({empty})"]
        texts = [f"A magazine holds {preset} items: {load} loads {c} with {preset}, each {dispense} counts down, {empty} is on at zero.",
                 f"Down-counter {c} (preset {preset}, load {load}) counts {dispense}; {empty} shows the count has reached zero.",
                 f"Track stock with CTD {c}: {load} sets it to {preset}, {dispense} decrements, {empty} when nothing is left."]
    return variant, rungs, texts, vars_


def _sequencer(rng, n: _Names):
    variant = rng.choice(("star_delta", "batch"))
    ms, span = _seconds(rng)
    t = n.timer()
    if variant == "star_delta":
        run, star, delta = n.pick(("RunCmd", "StartCmd")), n.pick(("Star", "StarK")), n.pick(("Delta", "DeltaK"))
        vars_ = [Var(run, "input", "run command"), Var(star, "output", "star contactor"), Var(delta, "output", "delta contactor")]
        rungs = [f"NO({run}) NC({t}.Q) OUT({star})", f"NO({run}) TON({t},{_fmt(ms)}) OUT({delta})"]
        texts = [f"Star-delta start: while {run} is on, {star} is on for the first {span}, then {delta} takes over (timer {t}).",
                 f"On {run}, energise {star}; after {span} ({t}) switch to {delta}; both off when {run} drops.",
                 f"Start in star ({star}) and change to delta ({delta}) {span} after {run} comes on, using TON {t}."]
    else:
        start, high, fill, mix = n.pick(("StartPB", "CycleStart")), n.pick(("LevelHigh", "TankFull")), n.pick(("FillValve", "Inlet")), n.pick(("MixStep", "Mixing"))
        vars_ = [Var(start, "input", "cycle start"), Var(high, "input", "high level reached"),
                 Var(fill, "output", "fill valve"), Var(mix, "output", "mixer step")]
        rungs = [f"P({start}) SET({fill})", f"NO({fill}) NO({high}) RST({fill}) SET({mix})",
                 f"NO({mix}) TON({t},{_fmt(ms)}) RST({mix})"]
        texts = [f"Batch cycle: {start} opens {fill}; at {high} close {fill} and start {mix}; end {mix} after {span} ({t}).",
                 f"Step 1 fills ({fill}, set on the rising edge of {start}) until {high}; step 2 mixes ({mix}) for {span} with {t}.",
                 f"Sequence: the edge of {start} sets {fill}, {high} moves from {fill} to {mix}, and {t} resets {mix} after {span}."]
    return variant, rungs, texts, vars_


def _mode(rng, n: _Names):
    variant = rng.choice(("selector", "two_switches"))
    out, demand, manual_btn = n.pick(MOTORS), n.pick(("Demand", "AutoReq", "FlowReq")), n.pick(("ManualPB", "HandPB"))
    if variant == "selector":
        sel = n.pick(("ManualMode", "HandMode"))
        vars_ = [Var(sel, "input", "selector in manual"), Var(demand, "input", "automatic demand"),
                 Var(manual_btn, "input", "manual run button"), Var(out, "output", "drive")]
        rungs = [f"[NC({sel}) NO({demand}),NO({sel}) NO({manual_btn})] OUT({out})"]
        texts = [f"With {sel} off (auto), {out} follows {demand}; with {sel} on (manual), {out} follows {manual_btn}.",
                 f"Mode selection by {sel}: automatic operation from {demand}, manual operation from {manual_btn}, driving {out}.",
                 f"{out} runs on {demand} in auto mode and on {manual_btn} in manual mode ({sel} on)."]
    else:
        auto, man = n.pick(("AutoMode", "AutoSel")), n.pick(("HandMode", "ManSel"))
        vars_ = [Var(auto, "input", "auto mode"), Var(man, "input", "manual mode"), Var(demand, "input", "automatic demand"),
                 Var(manual_btn, "input", "manual run button"), Var(out, "output", "drive")]
        rungs = [f"[NO({auto}) NO({demand}),NO({man}) NO({manual_btn})] OUT({out})"]
        texts = [f"{out} runs when {auto} is selected and {demand} is on, or when {man} is selected and {manual_btn} is pressed.",
                 f"Two modes: {auto} with {demand}, or {man} with {manual_btn}; either path drives {out}.",
                 f"Drive {out} from {demand} in {auto}, and from {manual_btn} in {man}."]
    return variant, rungs, texts, vars_


PATTERNS = {"seal_in": _seal_in, "interlock": _interlock, "jog": _jog, "alarm": _alarm, "delay": _delay,
            "counting": _counting, "sequencer": _sequencer, "mode": _mode}


def make_task(families: tuple[str, ...], rng: random.Random, task_id: str) -> Task:
    """One program composing the given pattern families, with a paraphrased instruction and its variable table."""
    names = _Names(rng)
    rungs, sentences, vars_, patterns = [], [], [], []
    for family in families:
        variant, r, texts, v = PATTERNS[family](rng, names)
        rungs += r
        sentences.append(rng.choice(texts))
        vars_ += v
        patterns.append(f"{family}/{variant}")
    program = "\n".join(rungs)
    parsed = parse_program(program)
    block_rows = tuple((b.name, b.kind) for r in parsed.rungs for b in _blocks_in(r))
    return Task(task_id, " ".join(sentences), tuple(vars_), block_rows, program, tuple(patterns))


def _blocks_in(rung):
    from apps.ladder.program import Counter, Timer, walk

    return [e for e in walk(rung.elements) if isinstance(e, (Timer, Counter))]


def compositions(split: str) -> list[tuple[str, ...]]:
    """The family combinations of a split: train (and seen) = every family alone and every pair not held out;
    heldout = HELDOUT_PAIRS."""
    if split == "heldout":
        return list(HELDOUT_PAIRS)
    return [(f,) for f in FAMILIES] + [p for p in _ALL_PAIRS if p not in HELDOUT_PAIRS]


def generate(split: str, count: int, seed: int = 0) -> list[Task]:
    """`count` tasks of a split, cycling through its compositions (both orders of a pair), deterministic in seed.

    `seen` draws training compositions from another random stream: new tasks of the kinds training has
    (`data.load_split` drops any that repeat a training task's instruction or program).
    """
    if split not in ("train", "heldout", "seen"):
        raise ValueError(f"unknown split {split!r} (train, heldout or seen)")
    rng = random.Random(f"ladder:{split}:{seed}")
    combos = compositions(split)
    out = []
    for i in range(count):
        combo = combos[i % len(combos)]
        if len(combo) == 2 and rng.random() < 0.5:
            combo = combo[::-1]
        out.append(make_task(combo, rng, f"{split}-{i:05d}"))
    return out
