"""The three instructions the codegen app gives a chat model: write the code, write tests, reason then code.

Every task (embedded, HumanEval, MBPP, a user's file) carries a HumanEval-style `prompt`: the
function's signature and docstring. The instructions wrap it as a user message.
"""

from __future__ import annotations

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


def code_prompt(task) -> list[dict]:
    """Ask for the completed function in a python code block."""
    return [{"role": "user", "content": (
        "Complete this Python function.\n\n```python\n" + task.prompt.rstrip() + "\n```\n\n"
        "Answer with the whole function in one ```python code block.")}]


def test_prompt(task, n_asserts: int = 3) -> list[dict]:
    """Ask for assert statements that check the function (DSTC's self-generated tests)."""
    return [{"role": "user", "content": (
        f"Write {n_asserts} assert statements that test the function `{task.entry_point}` below, "
        "each calling it with concrete arguments and comparing with the expected result.\n\n"
        "```python\n" + task.prompt.rstrip() + "\n```\n\n"
        "Answer with the asserts in one ```python code block.")}]


def reasoning_prompt(task) -> list[dict]:
    """Ask for a short reasoning trace inside <think></think>, then the function (Posterior-GRPO's format)."""
    return [{"role": "user", "content": (
        "Complete this Python function.\n\n```python\n" + task.prompt.rstrip() + "\n```\n\n"
        f"First explain your approach in a few sentences inside {THINK_OPEN} {THINK_CLOSE}, "
        "then give the whole function in one ```python code block.")}]
