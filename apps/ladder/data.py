"""Tasks: the generated control tasks (apps/ladder/tasks.py) or users' (instruction, program) JSONL files.

JSONL, one object per line:
    instruction  (str)            what the program must do
    program      (str)            the program in the rung text form (apps/ladder/program.py), or
    plcopen      (str)            a PLCopen TC6 XML file (path relative to the JSONL file) whose LD body is the program
    variables    (optional)       the variable table: a list of {"name", "role" (input|output|memory), "comment"},
                                  or an object name -> role; default: read from the program (read only -> input)
    pattern      (optional str)   a label for the per-pattern breakdown of the eval (default "file")
    id           (optional str)
Every malformed line raises ValueError naming `path:line` and the field; files may be gzip-compressed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from apps.ladder.program import Counter, ProgramError, Timer, format_program, parse_program, variables, walk
from apps.ladder.tasks import Task, Var, generate
from shared.records import iter_json_objects

ROLES = ("input", "output", "memory")


@dataclass
class DataArgs:
    """Where the tasks come from.

    Attributes:
        train: `embedded:train` or a JSONL file of training tasks (also the retrieval pool of RAFT).
        heldout: `embedded:heldout` (pattern combinations training never has), `embedded:seen` (new tasks of the
            training combinations, none repeating a training task's instruction or program) or a JSONL file.
        train_size: embedded training tasks generated.
        heldout_size: embedded held-out tasks generated (their pattern combinations never occur in training).
        seed: seed of the embedded tasks.
        max_train: use at most this many training tasks (0: all).
        max_heldout: evaluate on at most this many held-out tasks (0: all).
    """

    train: str = "embedded:train"
    heldout: str = "embedded:heldout"
    train_size: int = 2000
    heldout_size: int = 200
    seed: int = 0
    max_train: int = 0
    max_heldout: int = 0


def _variables(where: str, raw, program) -> tuple[Var, ...]:
    derived = variables(program)
    if raw is None:
        return tuple(Var(n, r, "") for n, r in derived.items())
    rows = list(raw.items()) if isinstance(raw, dict) else raw
    if not isinstance(rows, list):
        raise ValueError(f"{where}: variables: expected a list of objects or an object name -> role")
    out = []
    for i, row in enumerate(rows):
        if isinstance(row, tuple):
            name, role, comment = row[0], row[1], ""
        elif isinstance(row, dict):
            name, role, comment = row.get("name"), row.get("role", "input"), row.get("comment", "")
        else:
            raise ValueError(f"{where}: variables[{i}]: expected an object with name and role")
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"{where}: variables[{i}].name: expected an identifier, got {name!r}")
        if role not in ROLES:
            raise ValueError(f"{where}: variables[{i}].role: expected one of {', '.join(ROLES)}, got {role!r}")
        if not isinstance(comment, str):
            raise ValueError(f"{where}: variables[{i}].comment: expected text")
        out.append(Var(name, role, comment))
    missing = [n for n in derived if n not in {v.name for v in out}]
    if missing:
        raise ValueError(f"{where}: variables: the program uses {missing[0]}, which the table does not declare")
    return tuple(out)


def task_from_row(where: str, row: dict, folder: Path, number: int) -> Task:
    """One Task from a JSONL object (see the module docstring); ValueError names `where` and the field."""
    instruction = row.get("instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        raise ValueError(f"{where}: instruction: expected non-empty text")
    if "program" in row:
        if not isinstance(row["program"], str):
            raise ValueError(f"{where}: program: expected the rung text form")
        try:
            program = parse_program(row["program"])
        except ProgramError as exc:
            raise ValueError(f"{where}: program: {exc}") from None
    elif "plcopen" in row:
        if not isinstance(row["plcopen"], str):
            raise ValueError(f"{where}: plcopen: expected a path to a PLCopen XML file")
        from apps.ladder.plcopen import from_plcopen

        xml = folder / row["plcopen"]
        try:
            program = from_plcopen(xml)
        except (ValueError, OSError) as exc:
            raise ValueError(f"{where}: plcopen: {exc}") from None
    else:
        raise ValueError(f"{where}: program: missing (give `program` text or a `plcopen` file)")
    pattern = row.get("pattern", "file")
    if not isinstance(pattern, str):
        raise ValueError(f"{where}: pattern: expected text")
    table = _variables(where, row.get("variables"), program)
    block_rows = tuple((e.name, e.kind) for r in program.rungs for e in walk(r.elements) if isinstance(e, (Timer, Counter)))
    return Task(str(row.get("id", f"line-{number}")), " ".join(instruction.split()), table, block_rows,
                format_program(program), (pattern,))


def load_tasks(path: str | Path) -> list[Task]:
    """Read a JSONL file of tasks; ValueError names `path:line` and the field."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    out = [task_from_row(f"{path}:{n}", row, path.parent, n) for n, row in iter_json_objects(path)]
    if not out:
        raise ValueError(f"{path}: no task")
    return out


def load_split(args: DataArgs, which: str) -> list[Task]:
    """The training or held-out tasks of the data section (`which`: train | heldout), limited by max_*."""
    source, limit = (args.train, args.max_train) if which == "train" else (args.heldout, args.max_heldout)
    if source.startswith("embedded"):
        part = source.partition(":")[2] or which
        if part not in ("train", "heldout", "seen"):
            raise ValueError(f"data.{which}: '{source}' is not embedded:train, embedded:heldout or embedded:seen")
        tasks = generate(part, args.train_size if part == "train" else args.heldout_size, args.seed)
        if part == "seen":  # training compositions, but never a task training has
            train = generate("train", args.train_size, args.seed)
            known = {t.instruction for t in train} | {t.program for t in train}
            tasks = [t for t in tasks if t.instruction not in known and t.program not in known]
    else:
        tasks = load_tasks(source)
    return tasks[:limit] if limit else tasks


def task_record(task: Task) -> dict:
    """The JSONL object of a task (what `load_tasks` reads back)."""
    return {"id": task.id, "instruction": task.instruction, "program": task.program, "pattern": "+".join(task.patterns),
            "variables": [{"name": v.name, "role": v.role, "comment": v.comment} for v in task.variables]}
