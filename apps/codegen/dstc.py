"""DSTC: the model writes codes and tests for each task; the code x test pass matrix picks DPO/KTO pairs.

Per task: sample `codes` code completions and `test_samples` test-writing completions; the
distinct asserts that call the entry point (up to `max_tests`) are the self-generated tests; each
extracted code runs against each test in the sandbox (one program per cell, so one failing or
hanging test cannot hide the others); `shared.pairs.minimax_pairs` picks chosen = the code passing
most tests with the tests it passes, rejected = the code passing fewest with the tests it fails;
each response is one python block, code then asserts. The hidden reference tests are never used
for pairs: each code candidate's hidden verdict is recorded only to report how often the
self-tests picked a truly correct chosen code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from apps.codegen.data import Task
from apps.codegen.execution import assert_program, new_marker, passed, prompt_imports, task_program
from apps.codegen.parsing import extract_asserts, extract_function
from apps.codegen.prompts import code_prompt, test_prompt
from shared.generation import sample_texts
from shared.pairs import minimax_pairs
from shared.records import Candidate, Pair
from shared.sandbox import Limits, run_programs

HIDDEN = -1  # the cell index of a code's hidden-test program


@dataclass
class DSTCArgs:
    """DSTC's own choices (sample.n codes per task; pref.* trains on the minimax pairs).

    Attributes:
        tasks_per_round: training tasks sampled per round (0: all).
        test_samples: test-writing completions sampled per task.
        max_tests: distinct asserts kept per task (m).
        reuse_samples_from: another DSTC run's folder whose sampled and scored candidates each round reuses
            (e.g. KTO on exactly the pairs a DPO run built); empty: sample afresh.
    """

    tasks_per_round: int = 0
    test_samples: int = 2
    max_tests: int = 6
    reuse_samples_from: str = ""


def sample_candidates(model, tokenizer, tasks: Sequence[Task], *, codes: int, test_samples: int, temperature: float,
                      top_p: float, max_new_tokens: int, batch_size: int, seed: int) -> list[Candidate]:
    """Return code and test candidates (metadata kind "code" / "test") for every task."""
    out = []
    for kind, prompt_of, n in (("code", code_prompt, codes), ("test", test_prompt, test_samples)):
        texts = sample_texts(model, tokenizer, [prompt_of(t) for t in tasks], samples=n, temperature=temperature,
                             top_p=top_p, max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed)
        for task, group in zip(tasks, texts):
            out.extend(Candidate(prompt_id=task.task_id, prompt=prompt_of(task), output=text,
                                 metadata={"kind": kind, "sample": j}) for j, text in enumerate(group))
    return out


def self_tests(task: Task, test_outputs: Sequence[str], max_tests: int) -> list[str]:
    """Return the distinct asserts calling the entry point found in the test completions, in order, at most max_tests."""
    seen: dict[str, None] = {}
    for text in test_outputs:
        for a in extract_asserts(text, task.entry_point):
            seen.setdefault(a, None)
    return list(seen)[:max_tests]


def score_candidates(tasks: Sequence[Task], candidates: Sequence[Candidate], *, max_tests: int, limits: Limits,
                     workers: int | None) -> list[Candidate]:
    """Fill each code candidate's pass row over its task's self-tests and its hidden-test verdict."""
    by_id = {t.task_id: t for t in tasks}
    marker = new_marker()
    jobs, cells = [], []  # cells[i] = (candidate index, test index) of program i
    tests_of: dict[str, list[str]] = {}
    code_of: dict[int, str | None] = {}
    for task_id in dict.fromkeys(c.prompt_id for c in candidates):
        task = by_id[task_id]
        tests_of[task_id] = self_tests(task, [c.output for c in candidates if c.prompt_id == task_id
                                              and c.metadata["kind"] == "test"], max_tests)
    for i, c in enumerate(candidates):
        if c.metadata["kind"] != "code":
            continue
        task = by_id[c.prompt_id]
        code_of[i] = extract_function(c.output, task.entry_point)
        if code_of[i] is None:
            continue
        jobs.append(task_program(task, code_of[i], marker))  # the hidden verdict, for reporting only
        cells.append((i, HIDDEN))
        for j, test in enumerate(tests_of[c.prompt_id]):
            jobs.append(assert_program(prompt_imports(task.prompt) + code_of[i], [test], marker))
            cells.append((i, j))
    rows = {i: [0] * len(tests_of[candidates[i].prompt_id]) for i in code_of}
    hidden = dict.fromkeys(code_of, 0.0)
    for (i, j), v in zip(cells, run_programs(jobs, limits, workers=workers)):
        if j == HIDDEN:
            hidden[i] = float(passed(v, marker))
        else:
            rows[i][j] = int(passed(v, marker))
    out = list(candidates)
    for i in code_of:
        c = candidates[i]
        out[i] = replace(c, scores={"self_tests_passed": float(sum(rows[i])), "hidden_outcome": hidden[i]},
                         metadata={**c.metadata, "code": code_of[i], "self_tests": tests_of[c.prompt_id],
                                   "passes": rows[i]})
    return out


def _block(text: str) -> str:
    return "```python\n" + text.strip() + "\n```"


def build_pairs(scored: Sequence[Candidate]) -> list[Pair]:
    """Return one minimax pair per task whose code candidates pass different numbers of self-tests."""
    pairs = []
    for task_id in dict.fromkeys(c.prompt_id for c in scored):
        codes = [c for c in scored if c.prompt_id == task_id and c.metadata["kind"] == "code"]
        if not codes or not codes[0].metadata.get("self_tests"):
            continue
        tests = codes[0].metadata["self_tests"]
        # A code that did not parse into a function passes nothing; its raw text is the response.
        texts = [c.metadata["code"] if c.metadata.get("code") else c.output for c in codes]
        matrix = np.array([c.metadata["passes"] for c in codes], dtype=bool)
        pair = minimax_pairs(texts, tests, matrix, prompt=codes[0].prompt)
        if pair is None:
            continue
        chosen, rejected = codes[pair.metadata["chosen_index"]], codes[pair.metadata["rejected_index"]]
        pairs.append(replace(pair, chosen=_block(pair.chosen), rejected=_block(pair.rejected), metadata={
            **pair.metadata, "task_id": task_id, "chosen_hidden_outcome": chosen.scores["hidden_outcome"],
            "rejected_hidden_outcome": rejected.scores["hidden_outcome"]}))
    return pairs
