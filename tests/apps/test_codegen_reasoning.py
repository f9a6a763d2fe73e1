"""Codegen reasoning pairs: every degradation changes the trace, is seeded, and pairs have TRL's shape."""

import random

import pytest

from apps.codegen.data import embedded_tasks
from apps.codegen.parsing import extract_function, strip_think
from apps.codegen.prompts import reasoning_prompt
from apps.codegen.reasoning import KINDS, degrade, format_completion, format_think, reasoning_pairs
from shared.records import Pair

TASKS = embedded_tasks()
TRACE = ["The function must return the sum of the even numbers in the list.",
         "Iterate over the list and keep each x with x % 2 == 0.",
         "Add the kept numbers with sum(), which gives 0 for an empty list."]


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_changes_every_embedded_trace(kind):
    rng = random.Random(0)
    for task in TASKS:
        for _ in range(3):
            degraded = degrade(task.reasoning, kind, rng, task)
            assert degraded != list(task.reasoning) and all(isinstance(s, str) and s for s in degraded)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("trace", [[], ["One sentence only."], ["Short.", "Short."], TRACE])
def test_degrade_changes_short_and_degenerate_traces(kind, trace):
    for seed in range(20):
        assert degrade(trace, kind, random.Random(seed)) != trace


@pytest.mark.parametrize("kind", KINDS)
def test_degrade_is_deterministic_under_a_seed(kind):
    runs = [[degrade(TRACE, kind, rng) for _ in range(10)] for rng in (random.Random(7), random.Random(7))]
    assert runs[0] == runs[1]
    assert len({" ".join(d) for d in runs[0]}) > 1  # the rng does vary the degradation


def test_factual_swaps_a_fact():
    seen = {" ".join(degrade(TRACE, "factual", random.Random(seed))) for seed in range(40)}
    assert any("odd numbers" in s for s in seen) and any("product" in s for s in seen)
    assert any("x % 2 != 0" in s or "x % 3" in s for s in seen) and any("gives None" in s for s in seen)
    assert all(len(s.split()) <= len(" ".join(TRACE).split()) + 1 for s in seen)  # a swap, not an addition


def test_factual_falls_back_to_a_false_statement():
    task = TASKS[0]
    degraded = degrade(["Nothing to flip here."], "factual", random.Random(0), task)
    assert len(degraded) == 2 and task.entry_point in " ".join(degraded)


def test_logic_and_coherence_keep_the_material():
    words = set(" ".join(TRACE).lower().split())
    for seed in range(20):
        logic = degrade(TRACE, "logic", random.Random(seed))
        assert len(logic) in (2, 3) and (set(" ".join(logic).lower().split()) <= words | {"so,"}
                                         or any(s.startswith("Therefore") for s in logic))
        coherence = degrade(TRACE, "coherence", random.Random(seed))
        assert len(coherence) in (3, 4)


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="factual"):
        degrade(TRACE, "style", random.Random(0))


def test_reasoning_pairs_shape_balance_and_determinism():
    tasks = TASKS[:30]
    pairs = reasoning_pairs(tasks, per_task=3, seed=1)
    assert len(pairs) == 90 and all(isinstance(p, Pair) for p in pairs)
    assert reasoning_pairs(tasks, per_task=3, seed=1) == pairs
    assert reasoning_pairs(tasks, per_task=3, seed=2) != pairs
    assert [p.metadata["kind"] for p in pairs[:6]] == list(KINDS) * 2
    for pair, task in zip(pairs, [t for t in tasks for _ in range(3)]):
        assert pair.metadata["task_id"] == task.task_id
        assert pair.prompt == reasoning_prompt(task)
        assert pair.chosen == format_think(task.reasoning) and pair.rejected != pair.chosen
        assert strip_think(pair.rejected)[0] is not None and strip_think(pair.rejected)[1] == ""
        assert Pair.from_dict(pair.to_dict()) == pair
    assert reasoning_pairs([t for t in tasks if False], per_task=2, seed=0) == []


def test_format_completion_is_think_then_a_working_function():
    task = TASKS[0]
    completion = format_completion(task)
    reasoning, rest = strip_think(completion)
    assert reasoning == " ".join(task.reasoning)
    program = extract_function(completion, task.entry_point)
    namespace: dict = {}
    exec(program + "\n" + "\n".join(task.tests), namespace)
