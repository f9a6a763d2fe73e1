"""Ladder programs as graphs: to_graph / from_graph round trips, graphs the text form cannot write, edit distance."""

from __future__ import annotations

import random
import time

import networkx as nx
import pytest

from apps.ladder.graph import coil_node, edit_distance, element_node, from_graph, left_rail, right_rail, to_graph
from apps.ladder.program import (COILS, CONTACTS, COUNTERS, TIMERS, Coil, Contact, Counter, Parallel, Program,
                                 ProgramError, Rung, Timer, canonical, canonical_text, parse_program, walk)

# Hand-built programs; together they use every contact, coil, timer and counter kind, .Q contacts, nested
# parallels, parallels of parallels, blocks inside branches, several coils per rung and several rungs.
PROGRAMS = {
    "seal_in": "[NO(StartPB),NO(Motor)] NC(StopPB) OUT(Motor)\nNO(Motor) TON(T1,T#3s) OUT(Fan)",
    "edges": "P(Btn) SET(Lamp)\nN(Btn) RST(Lamp)\nNC(Lamp) NOT(Dark)",
    "off_delay": "NO(Door) TOF(T2,T#500ms) OUT(Light)\nNO(T2.Q) NC(Alarm) OUT(Ready)",
    "pulse": "P(Start) TP(T3,T#1s500ms) OUT(Pulse) SET(Seen)",
    "count_up": "P(Part) CTU(C1,5,Reset) OUT(Full)\nNO(C1.Q) RST(Belt)",
    "count_down": "N(Sensor) CTD(C2,3,Load) NOT(Empty)\nNC(C2.Q) OUT(Stock)",
    "nested": "NO(A) [NO(B) [NC(C),P(D)],N(E)] OUT(X) OUT(Y) RST(Z)",
    "two_parallels": "[NO(A),NO(B)] [NO(C),NO(D) NC(E)] OUT(Q1)",
    "parallel_first_in_branch": "[[NO(A),NO(B)] NO(C),NO(D) [NO(E),NO(F) NO(G)]] TON(T4,T#2s) OUT(H)",
    "deep": "[NO(A) [NO(B) [NO(C),NO(D) [NO(E),NC(F)]],NO(G)],NO(H)] OUT(I)",
    "blocks_in_branches": "[NO(A) TON(T5,T#100ms),NO(B) CTU(C3,10,R1)] OUT(C)\nNO(T5.Q) NO(C3.Q) OUT(D)",
    "coils_only": "OUT(AlwaysOn)\nNO(AlwaysOn) OUT(Copy) NOT(Inverse)",
    "four_rungs": "NO(I1) NO(I2) NO(I3) NC(I4) OUT(O1)\n"
                  "[NO(O1),P(I5)] TOF(T6,T#250ms) SET(O2)\n"
                  "NO(T6.Q) [NO(I6),NC(I7),N(I8)] RST(O2) OUT(O3)\n"
                  "NC(O3) CTD(C4,7,I9) OUT(O4) NOT(O5) SET(O6) RST(O7)",
    "same_variable_twice": "[NO(A),NO(A) NO(B)] [NC(A),NC(B)] OUT(C)",
}


def program(name: str) -> Program:
    return parse_program(PROGRAMS[name])


def flatten(series: tuple) -> tuple:
    """A branch that is a single parallel merges into its parent: the graph cannot tell them apart."""
    out = []
    for e in series:
        if isinstance(e, Parallel):
            branches = []
            for b in e.branches:
                b = flatten(b)
                branches += b[0].branches if len(b) == 1 and isinstance(b[0], Parallel) else [b]
            e = Parallel(tuple(branches))
        out.append(e)
    return tuple(out)


def random_program(rng: random.Random) -> Program:
    names: list[str] = []

    def series(depth: int) -> tuple:
        out = []
        for _ in range(rng.randint(1, 3)):
            r = rng.random()
            if r < 0.25 and depth < 3:
                out.append(Parallel(tuple(series(depth + 1) for _ in range(rng.randint(2, 3)))))
            elif r < 0.35:
                names.append(f"T{len(names)}")
                out.append(Timer(rng.choice(TIMERS), names[-1], rng.choice([100, 1500, 3000])))
            elif r < 0.42:
                names.append(f"C{len(names)}")
                out.append(Counter(rng.choice(COUNTERS), names[-1], rng.randint(1, 9), rng.choice("RS")))
            else:
                out.append(Contact(rng.choice(CONTACTS), rng.choice(list("ABCD") + [n + ".Q" for n in names])))
        return tuple(out)

    rungs = []
    for _ in range(rng.randint(1, 4)):
        elements = series(0) if rng.random() > 0.05 else ()
        coils = tuple(Coil(rng.choice(COILS), rng.choice("XYZ")) for _ in range(rng.choice([1, 1, 2, 3])))
        rungs.append(Rung(elements, coils))
    return Program(tuple(rungs))


# ---------------------------------------------------------------- round trips

def test_programs_cover_every_kind():
    used = set()
    for text in PROGRAMS.values():
        p = parse_program(text)
        for r in p.rungs:
            used |= {e.kind for e in walk(r.elements)} | {c.kind for c in r.coils}
            used |= {"Q" for e in walk(r.elements) if isinstance(e, Contact) and e.var.endswith(".Q")}
            used |= {"coils" for _ in r.coils[1:]} | {"no elements" for _ in r.coils if not r.elements}
        used |= {"rungs" for _ in p.rungs[2:]}
    assert used >= set(CONTACTS + COILS + TIMERS + COUNTERS) | {"Q", "coils", "no elements", "rungs"}
    assert len(PROGRAMS) >= 12


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_round_trip(name):
    p = program(name)
    assert canonical(from_graph(to_graph(p))) == canonical(p)


def test_round_trip_random_programs():
    rng = random.Random(7)
    for _ in range(300):
        p = random_program(rng)
        expected = Program(tuple(Rung(flatten(r.elements), r.coils) for r in p.rungs))
        assert canonical_text(from_graph(to_graph(p))) == canonical_text(expected), canonical_text(p)


def test_a_branch_that_is_one_parallel_comes_back_flattened():
    p = parse_program("[[NO(A),NO(B)],NO(C)] OUT(D)")
    assert canonical_text(from_graph(to_graph(p))) == "[NO(A),NO(B),NO(C)] OUT(D)"


def test_branch_order_does_not_matter():
    g = to_graph(program("nested"))
    shuffled = nx.DiGraph()
    shuffled.add_nodes_from(reversed(list(g.nodes(data=True))))
    shuffled.add_edges_from(g.edges)
    assert canonical(from_graph(shuffled)) == canonical(program("nested"))


# ---------------------------------------------------------------- graph shape

def test_graph_nodes_and_wires():
    g = to_graph(program("seal_in"))
    start, motor, stop, coil = element_node(0, 0), element_node(0, 1), element_node(0, 2), coil_node(0, 0)
    assert g.nodes[start] == {"rung": 0, "type": "contact", "kind": "NO", "var": "StartPB"}
    assert g.nodes[coil] == {"rung": 0, "type": "coil", "kind": "OUT", "var": "Motor"}
    assert g.nodes[left_rail(0)]["type"] == "left_rail" and g.nodes[right_rail(1)]["type"] == "right_rail"
    assert set(g.predecessors(stop)) == {start, motor}  # the OR of the parallel branch
    assert set(g.successors(left_rail(0))) == {start, motor}
    assert list(g.successors(coil)) == [right_rail(0)]
    timer = element_node(1, 1)
    assert g.nodes[timer] == {"rung": 1, "type": "block", "kind": "TON", "name": "T1", "preset_ms": 3000}
    counter = to_graph(program("count_up")).nodes[element_node(0, 1)]
    assert counter == {"rung": 0, "type": "block", "kind": "CTU", "name": "C1", "preset": 5, "aux": "Reset"}


def test_coils_take_the_power_of_the_last_element_or_the_left_rail():
    g = to_graph(program("nested"))
    ends = {element_node(0, k) for k in (2, 3, 4)}  # NC(C), P(D), N(E)
    for j in range(3):
        assert set(g.predecessors(coil_node(0, j))) == ends
    g = to_graph(program("coils_only"))
    assert list(g.predecessors(coil_node(0, 0))) == [left_rail(0)]


def test_chained_coils_are_coils_of_one_rung():
    g = to_graph(parse_program("NO(A) OUT(X) SET(Y)"))
    g.remove_edges_from([(element_node(0, 0), coil_node(0, 1)), (coil_node(0, 0), right_rail(0))])
    g.add_edge(coil_node(0, 0), coil_node(0, 1))  # A -> X -> Y -> right rail, as Beremiz draws it
    assert canonical_text(from_graph(g)) == "NO(A) OUT(X) SET(Y)"


# ---------------------------------------------------------------- graphs the text form cannot write

def _graph(text: str, add=(), remove=()) -> nx.DiGraph:
    g = to_graph(parse_program(text))
    g.remove_edges_from(remove)
    g.add_edges_from(add)
    return g


def _coil_feeds_contact():
    g = _graph("NO(A) OUT(X)\nNO(B) OUT(Y)")
    g.add_edge(coil_node(0, 0), element_node(0, 0))
    return g


def _bridge():  # A -> C and B -> C, A -> D: C and D cannot both be written
    g = _graph("[NO(A),NO(B)] [NO(C),NO(D)] OUT(X)", remove=[(element_node(0, 1), element_node(0, 3))])
    return g


def _two_rungs_wired():
    return _graph("NO(A) OUT(X)\nNO(B) OUT(Y)", add=[(element_node(0, 0), element_node(1, 0))])


def _untyped():
    g = _graph("NO(A) OUT(X)")
    del g.nodes[element_node(0, 0)]["type"]
    return g


def _dead_end():
    g = _graph("NO(A) NO(B) OUT(X)")
    g.add_node("r0.extra", rung=0, type="contact", kind="NO", var="C")
    g.add_edge(element_node(0, 0), "r0.extra")
    return g


def _no_coil():
    g = _graph("NO(A) OUT(X)")
    g.remove_node(coil_node(0, 0))
    return g


BAD_GRAPHS = {
    "only coils and the right rail may follow a coil": _coil_feeds_contact,
    "a cycle": lambda: _graph("NO(A) NO(B) OUT(X)", add=[(element_node(0, 1), element_node(0, 0))]),
    "bypasses": lambda: _graph("NO(A) NO(B) OUT(X)", add=[(element_node(0, 0), coil_node(0, 0))]),
    "bypasses everything": lambda: _graph("NO(A) OUT(X)", add=[(left_rail(0), right_rail(0))]),
    "not connected to the right rail": _dead_end,
    "not connected to the left rail": lambda: _graph("NO(A) NO(B) OUT(X)",
                                                     remove=[(element_node(0, 0), element_node(0, 1))]),
    "feeds the right rail directly": lambda: _graph("NO(A) OUT(X)", add=[(element_node(0, 0), right_rail(0))]),
    "not series-parallel": _bridge,
    "different power": lambda: _graph("NO(A) OUT(X) OUT(Y)", remove=[(element_node(0, 0), coil_node(0, 1))],
                                      add=[(left_rail(0), coil_node(0, 1))]),
    "joins rungs": _two_rungs_wired,
    "a node needs": _untyped,
    "no coil": _no_coil,
}


@pytest.mark.parametrize("why", sorted(BAD_GRAPHS))
def test_from_graph_rejects_with_a_one_line_reason(why):
    with pytest.raises(ProgramError) as err:
        from_graph(BAD_GRAPHS[why]())
    assert why in str(err.value) and "\n" not in str(err.value)


def test_from_graph_checks_the_program():
    g = to_graph(parse_program("NO(A) TON(T1,T#1s) OUT(X)\nNO(B) TON(T2,T#1s) OUT(Y)"))
    g.nodes[element_node(1, 1)]["name"] = "T1"
    with pytest.raises(ProgramError, match="cannot write this program: block instance T1 is used twice"):
        from_graph(g)
    g = to_graph(parse_program("NO(A) OUT(X)"))
    g.nodes[element_node(0, 0)]["var"] = "A B"
    with pytest.raises(ProgramError, match="cannot write this program: line 1"):
        from_graph(g)
    series: tuple = (Contact("NO", "X"),)
    for k in range(7):  # [[[X Z0,Y0] Z1,Y1] ...]: one level deeper than the parser takes
        series = (Parallel((series + (Contact("NO", f"Z{k}"),), (Contact("NO", f"Y{k}"),))),)
    with pytest.raises(ProgramError, match="nested deeper than 6"):
        from_graph(to_graph(Program((Rung(series, (Coil("OUT", "W"),)),))))


# ---------------------------------------------------------------- edit distance

def test_edit_distance_counts_node_and_wire_edits():
    p = program("four_rungs")
    assert edit_distance(p, p) == 0.0
    assert edit_distance(p, parse_program(PROGRAMS["four_rungs"].replace("NC(I4)", "NO(I4)"))) == 1.0
    assert edit_distance(p, parse_program(PROGRAMS["four_rungs"].replace("T#250ms", "T#1s"))) == 1.0
    # one more coil: the coil, its wire in and its wire to the right rail
    assert edit_distance(p, parse_program(PROGRAMS["four_rungs"].replace("SET(O2)", "SET(O2) OUT(O9)"))) == 3.0
    # a rung dropped: its 8 nodes (rails included) and 10 wires
    first_three = Program(p.rungs[:3])
    assert edit_distance(p, first_three) == edit_distance(first_three, p) == 18.0
    # branch order is not in the graph
    assert edit_distance(parse_program("[NO(A),NO(B)] OUT(X)"), parse_program("[NO(B),NO(A)] OUT(X)")) == 0.0


def test_edit_distance_stays_within_its_budget():
    rng = random.Random(3)
    pairs = [(random_program(rng), random_program(rng)) for _ in range(5)]
    for a, b in pairs:
        start = time.perf_counter()
        d = edit_distance(a, b, timeout=0.03)
        elapsed = time.perf_counter() - start
        ga, gb = to_graph(a), to_graph(b)
        assert 0 <= d <= sum(x.number_of_nodes() + x.number_of_edges() for x in (ga, gb))
        assert elapsed < 0.5  # 0.03 s of search plus set-up; loose for slow CI machines
