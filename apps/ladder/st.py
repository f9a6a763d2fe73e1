"""Export a ladder program as IEC 61131-3 Structured Text with the same scan behaviour.

Series contacts become AND, parallel branches OR, NC contacts NOT; each edge contact gets its own
R_TRIG / F_TRIG instance called every scan (as `simulate.py` evaluates every element every scan);
a timer or counter on the rung becomes a call of its instance whose Q carries the power on. Each
rung's power is computed into a BOOL (`rungN`) and the coils write from it in order: OUT `:=`,
NOT `:= NOT`, SET/RST `IF ... THEN x := TRUE/FALSE`.
"""

from __future__ import annotations

from apps.ladder.program import Contact, Counter, Element, Parallel, Program, Timer, blocks, format_time, variables


class _Writer:
    def __init__(self):
        self.lines: list[str] = []
        self.triggers: list[tuple[str, str]] = []

    def series(self, elements: tuple[Element, ...], power: str) -> str:
        for e in elements:
            power = self.element(e, power)
        return power

    def element(self, e: Element, power: str) -> str:
        if isinstance(e, Parallel):
            alts = [self.series(b, power) for b in e.branches]
            return "(" + " OR ".join(alts) + ")"
        if isinstance(e, Contact):
            if e.kind in ("NO", "NC"):
                term = e.var if e.kind == "NO" else f"NOT {e.var}"
            else:
                name = f"{'R' if e.kind == 'P' else 'F'}_TRIG{len(self.triggers)}"
                self.triggers.append((name, "R_TRIG" if e.kind == "P" else "F_TRIG"))
                self.lines.append(f"  {name}(CLK := {e.var});")
                term = f"{name}.Q"
            return term if power == "TRUE" else f"{power} AND {term}"
        if isinstance(e, Timer):
            self.lines.append(f"  {e.name}(IN := {power}, PT := {format_time(e.preset_ms)});")
        elif isinstance(e, Counter):
            edge, aux = ("CU", "R") if e.kind == "CTU" else ("CD", "LD")
            self.lines.append(f"  {e.name}({edge} := {power}, {aux} := {e.aux}, PV := {e.preset});")
        return f"{e.name}.Q"


def to_structured_text(program: Program, name: str = "program0", roles: dict[str, str] | None = None) -> str:
    """The program as one ST PROGRAM POU (inputs as VAR_INPUT, outputs as VAR_OUTPUT, blocks and rung powers as VAR)."""
    roles = roles or variables(program)
    w = _Writer()
    for r, rung in enumerate(program.rungs):
        power = w.series(rung.elements, "TRUE")
        w.lines.append(f"  rung{r} := {power};")
        for c in rung.coils:
            if c.kind == "OUT":
                w.lines.append(f"  {c.var} := rung{r};")
            elif c.kind == "NOT":
                w.lines.append(f"  {c.var} := NOT rung{r};")
            else:
                w.lines.append(f"  IF rung{r} THEN {c.var} := {'TRUE' if c.kind == 'SET' else 'FALSE'}; END_IF;")
    out = [f"PROGRAM {name}"]
    for section, role in (("VAR_INPUT", "input"), ("VAR_OUTPUT", "output"), ("VAR", "memory")):
        names = [v for v, k in roles.items() if k == role]
        if names:
            out += [f"  {section}"] + [f"    {v} : BOOL;" for v in names] + ["  END_VAR"]
    locals_ = [f"    {b.name} : {b.kind};" for b in blocks(program).values()]
    locals_ += [f"    {n} : {t};" for n, t in w.triggers]
    locals_ += [f"    rung{r} : BOOL;" for r in range(len(program.rungs))]
    out += ["  VAR"] + locals_ + ["  END_VAR"]
    return "\n".join(out + w.lines + ["END_PROGRAM", ""])
