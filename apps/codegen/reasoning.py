"""Posterior-GRPO's reasoning pairs: a correct trace (optimized) against a systematically worsened one (degraded).

The reasoning reward model is trained Bradley-Terry on these pairs. A degraded trace is the
correct one worsened along one axis:

- factual: a stated fact is changed (even/odd, sum/product, `<`/`>`, a number, the function name, ...);
- logic: a necessary step is dropped, the steps are reversed, a justification is replaced by a
  non-sequitur, or the conclusion is claimed before its premises;
- coherence: the sentences are shuffled, an off-topic sentence is inserted, a sentence is
  repeated, or a sentence is cut off mid-way.

A trace is a sequence of sentences; every degradation returns a list that differs from it.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence

from apps.codegen.data import Task
from apps.codegen.prompts import THINK_CLOSE, THINK_OPEN, reasoning_prompt
from shared.records import Pair

KINDS = ("factual", "logic", "coherence")

# Word pairs swapped in both directions by the factual degradation (matched as whole words).
_OPPOSITES = [
    ("even", "odd"), ("sum", "product"), ("ascending", "descending"), ("first", "last"), ("larger", "smaller"),
    ("largest", "smallest"), ("longer", "shorter"), ("longest", "shortest"), ("max", "min"),
    ("maximum", "minimum"), ("upper", "lower"), ("before", "after"), ("left", "right"), ("True", "False"),
    ("positive", "negative"), ("greater", "less"), ("above", "below"), ("start", "end"), ("keys", "values"),
    ("key", "value"), ("vowels", "consonants"), ("later", "earlier"), ("front", "end"), ("add", "subtract"),
    ("forward", "backward"), ("kept", "dropped"), ("inclusive", "exclusive"), ("divisible", "indivisible"),
]
# Operators and results swapped by the factual degradation (matched literally).
_SYMBOLS = [("<=", ">="), (" < ", " > "), ("==", "!="), ("+ 1", "- 1"), ("// ", "/ "), ("[::-1]", "[::1]"),
            ("gives 0", "gives None"), ("gives an empty list", "gives None"), ("gives []", "gives None"),
            ("an int", "a float"), ("a list", "a tuple"), ("a dictionary", "a list")]
_NON_SEQUITURS = (
    "Therefore the input must already be sorted, so no work is needed.",
    "Therefore only the first element matters and the rest can be ignored.",
    "Therefore the result does not depend on the input at all.",
    "Therefore the loop can stop after a single iteration.",
    "Therefore Python evaluates it lazily, which makes the answer correct.",
    "Therefore the function is correct because it has a docstring.",
)
_OFF_TOPIC = (
    "The weather has been pleasant this week.",
    "Python was first released in 1991.",
    "Many people prefer tea to coffee in the morning.",
    "A good night's sleep improves concentration.",
    "The capital of France is Paris.",
    "Some editors highlight matching brackets.",
    "Bananas are botanically berries.",
)
_FALSE_FACTS = (
    "{} returns None for every input.",
    "{} expects its input sorted in descending order.",
    "{} raises an exception on an empty input.",
    "{} always returns a string.",
)


def _with_case(word: str, like: str) -> str:
    return word[:1].upper() + word[1:] if like[:1].isupper() else word


def _factual(trace: list[str], rng: random.Random, task: Task | None) -> list[str]:
    """Swap one stated fact for a wrong one; when none is found, add a false statement about the task."""
    sites: list[tuple[int, int, int, str]] = []
    for i, sentence in enumerate(trace):
        for a, b in _OPPOSITES:
            for x, y in ((a, b), (b, a)):
                for m in re.finditer(rf"\b{re.escape(x)}\b", sentence, flags=re.IGNORECASE):
                    sites.append((i, m.start(), m.end(), _with_case(y, m.group())))
        for a, b in _SYMBOLS:
            for x, y in ((a, b), (b, a)):
                sites += [(i, m.start(), m.end(), y) for m in re.finditer(re.escape(x), sentence)]
        for m in re.finditer(r"(?<![\w.])\d+(?![\w.])", sentence):
            value = int(m.group())
            sites.append((i, m.start(), m.end(), str(value + rng.choice([1, 2, -1]) if value > 1 else value + 1)))
        if task is not None and task.entry_point:
            for m in re.finditer(rf"\b{re.escape(task.entry_point)}\b", sentence):
                sites.append((i, m.start(), m.end(), task.entry_point + "_helper"))
    out = list(trace)
    if sites:
        i, start, end, replacement = rng.choice(sorted(sites))
        out[i] = out[i][:start] + replacement + out[i][end:]
    if out == list(trace):
        subject = f"The function `{task.entry_point}`" if task is not None else "The function"
        out.insert(rng.randint(0, len(out)), rng.choice(_FALSE_FACTS).format(subject))
    return out


def _logic(trace: list[str], rng: random.Random, task: Task | None) -> list[str]:
    """Break the argument: drop a step, reverse the steps, add a non-sequitur, or conclude first."""
    n = len(trace)

    def drop() -> list[str]:
        i = rng.randrange(n)
        return trace[:i] + trace[i + 1:]

    def reverse() -> list[str]:
        return trace[::-1]

    def non_sequitur() -> list[str]:
        i = rng.randrange(1, n) if n > 1 else n
        return trace[:i] + [rng.choice(_NON_SEQUITURS)] + trace[i + 1:]

    def conclude_first() -> list[str]:
        return ["So, " + trace[-1][:1].lower() + trace[-1][1:]] + trace[:-1]

    options: list[Callable[[], list[str]]] = [non_sequitur]
    if n >= 2:
        options += [drop, reverse, conclude_first]
    rng.shuffle(options)
    for option in options:
        out = option()
        if out != trace:
            return out
    return trace + [_NON_SEQUITURS[0]]


def _cut(sentence: str, rng: random.Random) -> str:
    words = sentence.split()
    return " ".join(words[:rng.randint(1, len(words) - 1)]) if len(words) > 1 else sentence[: len(sentence) // 2]


def _coherence(trace: list[str], rng: random.Random, task: Task | None) -> list[str]:
    """Disturb the flow: shuffle the sentences, insert an off-topic one, repeat one, or cut one short."""
    n = len(trace)

    def shuffle() -> list[str]:
        out = list(trace)
        for _ in range(5):
            rng.shuffle(out)
            if out != trace:
                break
        return out

    def insert() -> list[str]:
        out = list(trace)
        out.insert(rng.randint(0, n), rng.choice(_OFF_TOPIC))
        return out

    def repeat() -> list[str]:
        i = rng.randrange(n)
        return trace[:i + 1] + [trace[i]] + trace[i + 1:]

    def cut() -> list[str]:
        i = rng.randrange(n)
        return trace[:i] + [_cut(trace[i], rng)] + trace[i + 1:]

    options: list[Callable[[], list[str]]] = [insert]
    if n >= 1:
        options += [repeat, cut]
    if n >= 2:
        options.append(shuffle)
    rng.shuffle(options)
    for option in options:
        out = option()
        if out != trace:
            return out
    return insert()


_DEGRADERS = {"factual": _factual, "logic": _logic, "coherence": _coherence}


def degrade(trace: Sequence[str], kind: str, rng: random.Random, task: Task | None = None) -> list[str]:
    """Return a copy of the trace worsened along one axis ("factual", "logic" or "coherence"); never equal to it."""
    if kind not in _DEGRADERS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return _DEGRADERS[kind](list(trace), rng, task)


def format_think(trace: Sequence[str]) -> str:
    """Return the trace as the model writes it: `<think>sentence sentence ...</think>`."""
    return THINK_OPEN + " ".join(trace) + THINK_CLOSE


def format_completion(task: Task) -> str:
    """Return the SFT target for reasoning_prompt(task): the think block, then the reference function in a python block."""
    return format_think(task.reasoning) + "\n```python\n" + task.reference_function() + "\n```"


def reasoning_pairs(tasks: Sequence[Task], per_task: int, seed: int) -> list[Pair]:
    """Return `per_task` (optimized, degraded) reasoning pairs per task that has a trace.

    chosen and rejected are think blocks only, without the code after them: the reasoning
    reward model scores the reasoning part of a completion. The kinds cycle over KINDS across
    all pairs, so they are balanced; each task draws from its own seeded generator, so a task's
    pairs do not depend on which other tasks are in the list. A task's rejected traces differ
    from one another where the degradations allow it.
    """
    pairs, count = [], 0
    for task in tasks:
        if not task.reasoning:
            continue
        rng = random.Random(f"{seed}/{task.task_id}")
        prompt, chosen, seen = reasoning_prompt(task), format_think(task.reasoning), set()
        for _ in range(per_task):
            kind = KINDS[count % len(KINDS)]
            count += 1
            for _ in range(10):
                rejected = format_think(degrade(task.reasoning, kind, rng, task))
                if rejected not in seen:
                    break
            seen.add(rejected)
            pairs.append(Pair(prompt=prompt, chosen=chosen, rejected=rejected,
                              metadata={"kind": kind, "task_id": task.task_id}))
    return pairs
