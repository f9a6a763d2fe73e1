"""Scoring a generated program against a task's reference: parse, exact match, simulation equivalence.

- parsed: the text is in the grammar and consistent (apps/ladder/program.py); otherwise `reason` says why.
- exact: equal to the reference after canonicalisation (branch and coil order do not matter).
- equivalent: the program-level accuracy of the paper: the outputs of the task's variable table agree
  with the reference's after every scan of every test sequence (apps/ladder/simulate.py), so a
  program drawn differently (other rung order, De Morgan, a different but equivalent structure)
  counts when it behaves the same.
- outputs: partial credit (ours): the share of the task's outputs whose every value agrees.
A score never raises on model output: whatever the text is, it is scored (invalid at worst).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from apps.ladder.program import Program, canonical_text, try_parse
from apps.ladder.simulate import Behaviour, behaviour, first_difference, input_sequences, outputs_matching
from apps.ladder.tasks import Task

_FENCE = re.compile(r"```[a-zA-Z]*\n(.*?)(?:```|$)", re.DOTALL)


def extract_program(text: str) -> str:
    """The program part of a model's answer: the first fenced block if there is one, else the whole text."""
    if not isinstance(text, str):
        return ""
    m = _FENCE.search(text)
    return (m.group(1) if m else text).strip()


@dataclass
class Reference:
    """A task's reference program with its test sequences and behaviour (computed once per task)."""

    task: Task
    program: Program
    canonical: str
    inputs: list[str]
    outputs: list[str]
    sequences: list
    behaviour: Behaviour

    @classmethod
    def of(cls, task: Task, seed: int = 0) -> "Reference":
        program = task.parsed()
        inputs = [v.name for v in task.variables if v.role == "input"]
        outputs = [v.name for v in task.variables if v.role == "output"]
        sequences = input_sequences(inputs, seed=seed)
        return cls(task, program, canonical_text(program), inputs, outputs, sequences,
                   behaviour(program, sequences, outputs))

    def behaves_like(self, program: Program) -> tuple[bool, str]:
        """(equivalent, where the outputs first differ)."""
        return self.compare(program)[:2]

    def compare(self, program: Program) -> tuple[bool, str, float]:
        """(equivalent, where the outputs first differ, share of the outputs that behave as the reference's)."""
        other = behaviour(program, self.sequences, self.outputs)
        diff = first_difference(self.behaviour, other)
        return not diff, diff, outputs_matching(self.behaviour, other)


def score_program(text: str, ref: Reference) -> dict:
    """parsed / exact / equivalent (booleans), `outputs` (the share of the task's outputs that behave as the
    reference's: partial credit, 0 when the text does not parse) and the parse failure or first behavioural
    difference as `reason`."""
    program, reason = try_parse(extract_program(text))
    if program is None:
        return {"parsed": False, "exact": False, "equivalent": False, "outputs": 0.0, "reason": reason}
    same, diff, share = ref.compare(program)
    return {"parsed": True, "exact": canonical_text(program) == ref.canonical, "equivalent": same,
            "outputs": share, "reason": diff}
