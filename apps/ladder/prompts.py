"""The prompt: the task (instruction, variable table, block instances), optionally after retrieved examples (RAFT).

    [Example task:\n<task>\nProgram:\n<program>\n\n ...]   k retrieved training examples (RAFT), most similar last
    Task:\n<task>\nWrite the ladder program in rung text, one rung per line.

A task is written as its instruction, then `Inputs: A, B`, `Outputs: ...`, `Memory: ...`
and `Blocks: T1 TON, ...` lines (names only: the instruction
says what they are; prompt length is what CPU training pays for). The model's answer is the program text alone (SFT target).
"""

from __future__ import annotations

from collections.abc import Sequence

from apps.ladder.tasks import Task

SYSTEM = "You write PLC ladder-diagram programs in rung text."
ASK = "Write the ladder program in rung text, one rung per line."


def describe(task: Task) -> str:
    """The instruction and the variable table as prompt lines."""
    lines = [task.instruction]
    for role, title in (("input", "Inputs"), ("output", "Outputs"), ("memory", "Memory")):
        rows = [v.name for v in task.variables if v.role == role]
        if rows:
            lines.append(f"{title}: " + ", ".join(rows))
    if task.blocks:
        lines.append("Blocks: " + ", ".join(f"{name} {kind}" for name, kind in task.blocks))
    return "\n".join(lines)


def task_prompt(task: Task, examples: Sequence[Task] = ()) -> list[dict[str, str]]:
    """Chat messages for a task, with retrieved examples first when given."""
    shots = "".join(f"Example task:\n{describe(e)}\nProgram:\n{e.program}\n\n" for e in examples)
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"{shots}Task:\n{describe(task)}\n{ASK}"}]
