"""The ladder text form, its parser on hostile input, the scan-cycle simulator and the Structured Text export."""

from __future__ import annotations

import random

import pytest

from apps.ladder.program import (
    Coil, Contact, Counter, Parallel, Program, ProgramError, Rung, Timer, canonical_text, format_program, parse_program,
    parse_time, try_parse, variables,
)
from apps.ladder.simulate import Simulator, behaviour, run, input_sequences
from apps.ladder.st import to_structured_text
from apps.ladder.tasks import FAMILIES, HELDOUT_PAIRS, compositions, generate


def test_text_form_round_trips_and_reads_every_element():
    text = ("[NO(Start),NO(Motor)] NC(Stop) OUT(Motor) OUT(Lamp)\n"
            "P(Part) CTU(C1,5,Reset) [NO(A) NC(C1.Q),N(B)] NOT(Full)\n"
            "NO(X) TON(T1,T#1s500ms) TOF(T2,T#500ms) TP(T3,T#2s) SET(Y)\n"
            "NO(Y) CTD(C2,3,Load) RST(Y)")
    p = parse_program(text)
    assert format_program(p) == text
    assert p.rungs[0].elements[0] == Parallel(((Contact("NO", "Start"),), (Contact("NO", "Motor"),)))
    assert p.rungs[0].coils == (Coil("OUT", "Motor"), Coil("OUT", "Lamp"))
    assert p.rungs[1].elements[1] == Counter("CTU", "C1", 5, "Reset")
    assert p.rungs[2].elements[1] == Timer("TON", "T1", 1500)
    assert variables(p)["Motor"] == "output" and variables(p)["Reset"] == "input" and "C1.Q" not in variables(p)


def test_canonical_ignores_branch_and_coil_order_but_not_rung_order():
    a = parse_program("[NO(A),NO(B) NC(C)] OUT(X) OUT(Y)\nNO(X) OUT(Z)")
    b = parse_program("[NO(B) NC(C),NO(A)] OUT(Y) OUT(X)\nNO(X) OUT(Z)")
    c = parse_program("NO(X) OUT(Z)\n[NO(A),NO(B) NC(C)] OUT(X) OUT(Y)")
    assert canonical_text(a) == canonical_text(b) != canonical_text(c)
    # two coils of one variable keep their order (it decides the result)
    assert canonical_text(parse_program("NO(A) RST(X) OUT(X)")) != canonical_text(parse_program("NO(A) OUT(X) RST(X)"))


@pytest.mark.parametrize("text, why", [
    ("", "no rung"),
    ("NO(A)", "must end with a coil"),
    ("OUT(A) NO(B)", "only coils may follow a coil"),
    ("NO(A", "expected ')'"),
    ("NO(A) [NO(B)] OUT(C)", "at least two"),
    ("NO(A) [NO(B),] OUT(C)", "empty branch"),
    ("[NO(A),OUT(B)] OUT(C)", "coil inside a branch"),
    ("NO(T1.Q) OUT(A)", "no timer or counter named T1"),
    ("TON(T1,T#x) OUT(A)", "bad duration"),
    ("TON(T1,5) OUT(A)", "duration"),
    ("NO(A) OUT(A.Q)", ".Q output can only be read"),
    ("TON(T,T#1s) TON(T,T#2s) OUT(X)", "used twice"),
    ("NO(A) TON(T1,T#1s) OUT(T1)", "writes the block instance"),
    ("CTU(C1,x,R) OUT(Y)", "expected an integer"),
    ("XIC(A) OTE(B)", "expected a contact"),
    ("NO(A) OUT(B) \x00", "unexpected character"),
    ("[" * 40 + "NO(A)", "nested deeper"),
])
def test_malformed_programs_give_a_reason(text, why):
    program, reason = try_parse(text)
    assert program is None and why in reason
    with pytest.raises(ProgramError):
        parse_program(text)


def test_the_parser_never_raises_anything_else_on_random_text():
    rng = random.Random(0)
    alphabet = "NOCPTUSRF()[],#.0123456789 \n_abcXQms"
    good = "[NO(A),NO(B) NC(C)] TON(T1,T#2s) OUT(X)\nNO(T1.Q) CTU(C1,3,R) SET(Y)"
    for i in range(3000):
        if i % 2:
            text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        else:  # mutations of a valid program
            chars = list(good)
            for _ in range(rng.randint(1, 4)):
                chars[rng.randrange(len(chars))] = rng.choice(alphabet)
            text = "".join(chars)
        program, reason = try_parse(text)
        assert (program is None) == bool(reason)
    assert try_parse(None)[0] is None and try_parse(b"NO(A) OUT(B)")[0] is None


def test_durations():
    assert parse_time("T#2s") == 2000 and parse_time("T#500ms") == 500 and parse_time("T#1s500ms") == 1500
    assert parse_time("T#1.5s") == 1500 and parse_time("t#3S") == 3000
    for bad in ("T#", "T#2h", "2s", "T#s"):
        with pytest.raises(ProgramError):
            parse_time(bad)


def _trace(text, inputs, seq):
    return [o[0] for o in run(parse_program(text), [dict(zip(inputs, s)) for s in seq], ["Y"])]


def test_seal_in_latches_and_stop_breaks_it():
    t = "[NO(Start),NO(Y)] NC(Stop) OUT(Y)"
    seq = [(1, 0), (0, 0), (0, 0), (0, 1), (0, 0), (1, 1)]
    assert _trace(t, ["Start", "Stop"], seq) == [True, True, True, False, False, False]


def test_on_delay_off_delay_and_pulse_timers_on_the_simulated_clock():
    on = [(1,)] * 6 + [(0,)] * 2
    # TON 300 ms at 100 ms per scan: Q once IN has been on for 300 ms (the 4th scan), off with IN
    assert _trace("NO(X) TON(T1,T#300ms) OUT(Y)", ["X"], on) == [False] * 3 + [True] * 3 + [False] * 2
    # TOF 300 ms: Q with IN, then for 300 ms after IN drops
    seq = [(1,)] * 2 + [(0,)] * 5
    assert _trace("NO(X) TOF(T1,T#300ms) OUT(Y)", ["X"], seq) == [True, True, True, True, True, False, False]
    # TP 200 ms: a pulse of two scans on the rising edge, however long IN stays on; no retrigger while on
    seq = [(1,)] * 5 + [(0,)] + [(1,)] + [(0,)] * 3
    assert _trace("NO(X) TP(T1,T#200ms) OUT(Y)", ["X"], seq) == [True, True, False, False, False, False, True, True,
                                                                   False, False]


def test_counters_edges_and_set_reset():
    seq = [(1, 0), (0, 0), (1, 0), (1, 0), (0, 0), (1, 0), (0, 1), (1, 0)]
    # CTU counts rising edges (a held input counts once); PV 3 reached at the 3rd edge; R clears
    assert _trace("NO(X) CTU(C1,3,R) OUT(Y)", ["X", "R"], seq) == [False] * 5 + [True, False, False]
    # CTD loaded with 2 by LD, down on edges; Q when CV <= 0 (true before any load)
    seq = [(0, 0), (0, 1), (1, 0), (0, 0), (1, 0), (0, 0)]
    assert _trace("NO(X) CTD(C1,2,L) OUT(Y)", ["X", "L"], seq) == [True, False, False, False, True, True]
    seq = [(0,), (1,), (1,), (0,), (1,)]
    assert _trace("P(X) OUT(Y)", ["X"], seq) == [False, True, False, False, True]
    assert _trace("N(X) OUT(Y)", ["X"], seq) == [False, False, False, True, False]
    assert _trace("NO(X) SET(Y)\nNO(R) RST(Y)", ["X", "R"], [(1, 0), (0, 0), (0, 1), (0, 0)]) == [True, True, False, False]
    assert _trace("NO(X) NOT(Y)", ["X"], [(0,), (1,)]) == [True, False]


def test_rungs_run_top_to_bottom_within_a_scan():
    # Y reads M written by the rung above in the same scan; reversed, it sees the previous scan's M
    top_down = _trace("NO(X) OUT(M)\nNO(M) OUT(Y)", ["X"], [(1,), (0,)])
    bottom_up = _trace("NO(M) OUT(Y)\nNO(X) OUT(M)", ["X"], [(1,), (0,)])
    assert top_down == [True, False] and bottom_up == [False, True]


def test_equivalent_programs_drawn_differently_behave_the_same_and_edits_do_not():
    seqs = input_sequences(["A", "B", "C"])
    ref = parse_program("[NO(A),NO(B)] NC(C) OUT(Y)")
    same = parse_program("NC(C) [NO(B),NO(A)] OUT(Y)")  # commuted series and branches
    morgan = parse_program("[NO(A) NC(C),NO(B) NC(C)] OUT(Y)")  # distributed
    wrong = parse_program("[NO(A),NO(B)] NO(C) OUT(Y)")
    b = behaviour(ref, seqs, ["Y"])
    assert behaviour(same, seqs, ["Y"]) == b == behaviour(morgan, seqs, ["Y"]) != behaviour(wrong, seqs, ["Y"])


def test_test_sequences_hold_inputs_long_enough_for_timers():
    seqs = input_sequences(["A", "B"], seed=3)
    assert seqs == input_sequences(["A", "B"], seed=3)
    assert any(sum(s["A"] and not s["B"] for s in seq[:60]) == 60 for seq in seqs)
    on_delay = parse_program("NO(A) TON(T1,T#4s) OUT(Y)")
    assert any(any(o[0] for o in run(on_delay, seq, ["Y"])) for seq in seqs)


def test_structured_text_mirrors_the_rungs():
    p = parse_program("[NO(Start),NO(M)] NC(Stop) OUT(M)\nP(Part) CTU(C1,3,Reset) NOT(Full)\nNO(M) TON(T1,T#2s) SET(Y)")
    st = to_structured_text(p)
    assert st.startswith("PROGRAM program0") and st.rstrip().endswith("END_PROGRAM")
    assert "rung0 := (Start OR M) AND NOT Stop;" in st
    assert "R_TRIG0(CLK := Part);" in st and "C1(CU := R_TRIG0.Q, R := Reset, PV := 3);" in st
    assert "Full := NOT rung1;" in st and "T1(IN := M, PT := T#2s);" in st
    assert "IF rung2 THEN Y := TRUE; END_IF;" in st
    assert "    C1 : CTU;" in st and "    T1 : TON;" in st and "    Start : BOOL;" in st


def test_generated_tasks_cover_every_family_and_hold_out_compositions():
    train, heldout = generate("train", 300, seed=1), generate("heldout", 60, seed=1)
    assert {f for t in train for f in t.families} == set(FAMILIES)
    held = {tuple(sorted(p)) for p in HELDOUT_PAIRS}
    assert {tuple(sorted(t.families)) for t in heldout} == held
    assert not {tuple(sorted(t.families)) for t in train} & held
    assert {f for p in HELDOUT_PAIRS for f in p} == set(FAMILIES)
    assert len(compositions("train")) == len(FAMILIES) + 28 - len(HELDOUT_PAIRS)
    for t in train[:100] + heldout:
        p = t.parsed()
        declared = {v.name for v in t.variables}
        assert set(variables(p)) <= declared, t.id
        assert {b for b, _ in t.blocks} == {e.name for r in p.rungs for e in r.elements
                                            if isinstance(e, (Timer, Counter))}
        outputs = [v.name for v in t.variables if v.role == "output"]
        inputs = [v.name for v in t.variables if v.role == "input"]
        traces = behaviour(p, input_sequences(inputs), outputs).traces
        for k, o in enumerate(outputs):  # every output switches on somewhere in the tests
            assert any(step[k] for trace in traces for step in trace), (t.id, o)
    assert generate("train", 50, seed=1) == train[:50]
    assert len({t.instruction for t in train}) > 250


def test_rung_and_program_types_are_hashable_values():
    p = Program((Rung((Contact("NO", "A"),), (Coil("OUT", "B"),)),))
    assert p == parse_program("NO(A) OUT(B)") and hash(p) == hash(parse_program("NO(A) OUT(B)"))
    sim = Simulator(p)
    sim.scan({"A": True})
    assert sim.values["B"] is True
