"""Rejected programs for DPO: graph edits of the reference that change its behaviour.

Edit kinds (one edit per negative; `edits` may apply several):
- contact_type: a contact becomes another kind (NO <-> NC, or an edge contact).
- series_parallel: two elements in series become parallel branches, or a parallel branch becomes a series.
- drop_contact / add_contact: a contact is removed, or one on another table variable is inserted.
- wrong_coil: a coil's kind changes (OUT, NOT, SET, RST) or it writes another output.
- wrong_variable: a contact reads another variable of the table.
- preset: a timer's preset or kind (TON/TOF/TP), or a counter's preset, changes.
An edit is kept only when the edited program still parses and behaves differently from the
reference under simulation (an edit that changes nothing observable is not a wrong program).
"""

from __future__ import annotations

import random
from dataclasses import replace

from apps.ladder.program import (
    COILS, Coil, Contact, Counter, Parallel, Program, ProgramError, Rung, Timer, check, format_program, walk,
)
from apps.ladder.score import Reference

EDIT_KINDS = ("contact_type", "series_parallel", "drop_contact", "add_contact", "wrong_coil", "wrong_variable", "preset")


def _lists(program: Program) -> list:
    def series(elems):
        return [["par", [series(b) for b in e.branches]] if isinstance(e, Parallel) else e for e in elems]

    return [{"elements": series(r.elements), "coils": list(r.coils)} for r in program.rungs]


def _program(rungs: list) -> Program:
    def series(items):
        out = []
        for e in items:
            if isinstance(e, list):
                branches = [series(b) for b in e[1] if b]
                if len(branches) >= 2:
                    out.append(Parallel(tuple(branches)))
                elif branches:
                    out.extend(branches[0])
            else:
                out.append(e)
        return tuple(out)

    return Program(tuple(Rung(series(r["elements"]), tuple(r["coils"])) for r in rungs))


def _series_lists(rungs: list) -> list[list]:
    """Every series list (rung bodies and branch bodies), for in-place edits."""
    out = []

    def visit(items):
        out.append(items)
        for e in items:
            if isinstance(e, list):
                for b in e[1]:
                    visit(b)

    for r in rungs:
        visit(r["elements"])
    return out


def _apply(kind: str, program: Program, ref: Reference, rng: random.Random) -> Program | None:
    rungs = _lists(program)
    lists = _series_lists(rungs)
    slots = [(s, i) for s in lists for i, e in enumerate(s) if not isinstance(e, list)]
    contacts = [(s, i) for s, i in slots if isinstance(s[i], Contact)]
    names = ref.inputs + ref.outputs
    if kind == "contact_type" and contacts:
        s, i = rng.choice(contacts)
        c = s[i]
        others = {"NO": ["NC", "NC", "P"], "NC": ["NO", "NO", "N"], "P": ["NO", "N"], "N": ["NC", "P"]}[c.kind]
        s[i] = replace(c, kind=rng.choice(others))
    elif kind == "series_parallel":
        pairs = [(s, i) for s in lists for i in range(len(s) - 1)
                 if isinstance(s[i], Contact) and isinstance(s[i + 1], Contact)]
        pars = [(s, i) for s in lists for i, e in enumerate(s) if isinstance(e, list)]
        if pars and (not pairs or rng.random() < 0.5):
            s, i = rng.choice(pars)
            s[i:i + 1] = [e for b in s[i][1] for e in b]
        elif pairs:
            s, i = rng.choice(pairs)
            s[i:i + 2] = [["par", [[s[i]], [s[i + 1]]]]]
        else:
            return None
    elif kind == "drop_contact" and contacts:
        s, i = rng.choice(contacts)
        del s[i]
    elif kind == "add_contact" and names:
        s = rng.choice(lists)
        s.insert(rng.randint(0, len(s)), Contact(rng.choice(["NO", "NC"]), rng.choice(names)))
    elif kind == "wrong_coil":
        r = rng.choice(rungs)
        j = rng.randrange(len(r["coils"]))
        c = r["coils"][j]
        other_outputs = [o for o in ref.outputs if o != c.var]
        if other_outputs and rng.random() < 0.5:
            r["coils"][j] = replace(c, var=rng.choice(other_outputs))
        else:
            r["coils"][j] = replace(c, kind=rng.choice([k for k in COILS if k != c.kind]))
    elif kind == "wrong_variable" and contacts:
        s, i = rng.choice(contacts)
        others = [n for n in names if n != s[i].var]
        if not others:
            return None
        s[i] = replace(s[i], var=rng.choice(others))
    elif kind == "preset":
        blocks = [(s, i) for s, i in slots if isinstance(s[i], (Timer, Counter))]
        if not blocks:
            return None
        s, i = rng.choice(blocks)
        b = s[i]
        if isinstance(b, Timer):
            if rng.random() < 0.3:
                s[i] = replace(b, kind=rng.choice([k for k in ("TON", "TOF", "TP") if k != b.kind]))
            else:
                s[i] = replace(b, preset_ms=rng.choice([p for p in (b.preset_ms * 2, max(100, b.preset_ms // 2),
                                                                     b.preset_ms + 2000) if p != b.preset_ms]))
        else:
            s[i] = replace(b, preset=rng.choice([p for p in (b.preset - 1, b.preset + 1, b.preset * 2) if p > 0]))
    else:
        return None
    if any(not r["coils"] for r in rungs):
        return None
    edited = _program(rungs)
    try:
        check(edited)
    except ProgramError:
        return None
    return edited


def edited_negatives(ref: Reference, rng: random.Random, count: int, kinds: tuple[str, ...] = EDIT_KINDS,
                     tries: int = 12) -> list[tuple[str, str]]:
    """Up to `count` (edit kind, program text) whose behaviour differs from the reference, distinct kinds first."""
    out, seen = [], {format_program(ref.program)}
    order = list(kinds)
    rng.shuffle(order)
    for attempt in range(tries):
        if len(out) >= count:
            break
        kind = order[attempt % len(order)]
        edited = _apply(kind, ref.program, ref, rng)
        if edited is None:
            continue
        text = format_program(edited)
        if text in seen or ref.behaves_like(edited)[0]:
            continue
        seen.add(text)
        out.append((kind, text))
    return out
