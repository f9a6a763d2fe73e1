"""Ladder tasks from files, retrieval of examples, scoring of model output and the DPO negatives."""

from __future__ import annotations

import gzip
import json
import random

import pytest

from apps.ladder.data import DataArgs, load_split, load_tasks, task_record
from apps.ladder.negatives import EDIT_KINDS, _apply, edited_negatives
from apps.ladder.program import canonical, parse_program
from apps.ladder.prompts import describe, task_prompt
from apps.ladder.retrieval import ExampleRetriever
from apps.ladder.score import Reference, extract_program, score_program
from apps.ladder.tasks import generate


def _write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_embedded_tasks_round_trip_through_jsonl(tmp_path):
    tasks = generate("train", 20, seed=2)
    path = _write(tmp_path / "tasks.jsonl", [task_record(t) for t in tasks])
    back = load_tasks(path)
    assert [(t.instruction, t.program, t.variables, t.blocks) for t in back] == \
           [(t.instruction, t.program, t.variables, t.blocks) for t in tasks]
    gz = tmp_path / "tasks.jsonl.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert len(load_tasks(gz)) == 20
    assert len(load_split(DataArgs(train=str(path), max_train=5), "train")) == 5


def test_a_task_without_a_table_reads_it_from_the_program(tmp_path):
    path = _write(tmp_path / "t.jsonl", [{"instruction": "Seal in M.", "program": "[NO(S),NO(M)] NC(P) OUT(M)"}])
    (task,) = load_tasks(path)
    assert {v.name: v.role for v in task.variables} == {"M": "output", "S": "input", "P": "input"}
    assert task.patterns == ("file",) and task.id == "line-1"


@pytest.mark.parametrize("row, field", [
    ({"program": "NO(A) OUT(B)"}, "instruction"),
    ({"instruction": "x"}, "program: missing"),
    ({"instruction": "x", "program": "NO(A) OUT(B"}, "program: line 1"),
    ({"instruction": "x", "program": 3}, "program: expected"),
    ({"instruction": "x", "program": "NO(A) OUT(B)", "variables": [{"name": "A", "role": "sensor"}]}, "variables[0].role"),
    ({"instruction": "x", "program": "NO(A) OUT(B)", "variables": [{"name": "1A"}]}, "variables[0].name"),
    ({"instruction": "x", "program": "NO(A) OUT(B)", "variables": {"A": "input"}}, "uses B"),
    ({"instruction": "x", "program": "NO(A) OUT(B)", "variables": "A"}, "variables: expected"),
    ({"instruction": "x", "program": "NO(A) OUT(B)", "pattern": 1}, "pattern"),
    ({"instruction": "x", "plcopen": "missing.xml"}, "plcopen"),
    ("{not json", "line"),
    ("[1, 2]", "JSON object"),
])
def test_malformed_task_lines_name_file_line_and_field(tmp_path, row, field):
    good = {"instruction": "Seal in M.", "program": "[NO(S),NO(M)] NC(P) OUT(M)"}
    path = _write(tmp_path / "bad.jsonl", [good, row])
    with pytest.raises(ValueError) as err:
        load_tasks(path)
    message = str(err.value)
    assert f"{path}:2" in message and field in message and "\n" not in message


def test_missing_or_empty_files(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        load_tasks(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(ValueError, match="no task"):
        load_tasks(tmp_path / "empty.jsonl")
    with pytest.raises(ValueError, match="embedded:train, embedded:heldout or embedded:seen"):
        load_split(DataArgs(train="embedded:test"), "train")


def test_retrieval_never_returns_the_task_itself_and_finds_its_families():
    train = generate("train", 400, seed=0)
    retriever = ExampleRetriever(train)
    shared = 0
    for t in train[:50]:
        (ex,) = retriever.examples(t, 1)
        assert ex.id != t.id
        shared += bool(set(ex.families) & set(t.families))
    assert shared >= 45
    two = retriever.examples(train[0], 2)
    assert len(two) == 2 and two[-1] == retriever.examples(train[0], 1)[0]  # the best one sits last, next to the task
    assert retriever.examples(train[0], 0) == []
    prompt = task_prompt(train[0], two)[-1]["content"]
    assert prompt.count("Example task:") == 2 and prompt.index(two[-1].program) > prompt.index(two[0].program)
    assert prompt.rstrip().endswith("one rung per line.") and describe(train[0]) in prompt


def test_scores_of_model_output():
    (task,) = generate("heldout", 1, seed=0)
    ref = Reference.of(task)
    assert score_program(task.program, ref) == {"parsed": True, "exact": True, "equivalent": True, "outputs": 1.0,
                                                "reason": ""}
    fenced = f"Here it is:\n```\n{task.program}\n```\nDone."
    assert extract_program(fenced) == task.program and score_program(fenced, ref)["exact"]
    reordered = "\n".join(reversed(task.program.splitlines()))
    s = score_program(reordered, ref)
    assert s["parsed"] and not s["exact"]  # rung order is part of the drawing; behaviour decides equivalence
    for garbage in ("", "\x00\x01", "NO(" * 500, 42, None, "OUT(" + "A" * 10000 + ")"):
        s = score_program(garbage, ref)
        assert s["equivalent"] in (False, True) and isinstance(s["reason"], str)
    assert not score_program("NO(Nothing) OUT(Else)", ref)["equivalent"]
    # partial credit: the first rung alone gets the outputs it writes right (and none of the others)
    first = task.program.splitlines()[0]
    s = score_program(first, ref)
    assert not s["equivalent"] and 0 < s["outputs"] < 1


def test_every_edit_kind_applies_and_kept_negatives_change_behaviour():
    tasks = generate("train", 120, seed=4)
    seen = set()
    for t in tasks:
        ref = Reference.of(t)
        rng = random.Random(t.id)
        for kind in EDIT_KINDS:
            edited = _apply(kind, ref.program, ref, rng)
            if edited is not None:
                seen.add(kind)
        for kind, text in edited_negatives(ref, rng, 3):
            program = parse_program(text)
            assert kind in EDIT_KINDS and not ref.behaves_like(program)[0] and text != t.program
    assert seen == set(EDIT_KINDS)


def test_edits_that_change_nothing_observable_are_dropped():
    from apps.ladder.tasks import Task, Var

    # dropping either of the two identical contacts leaves the behaviour as it was: no negative
    task = Task("t", "Y follows A.", (Var("A", "input", ""), Var("Y", "output", "")), (), "NO(A) NO(A) OUT(Y)", ("x",))
    ref = Reference.of(task)
    assert _apply("drop_contact", ref.program, ref, random.Random(0)) is not None
    assert edited_negatives(ref, random.Random(0), 5, kinds=("drop_contact",), tries=20) == []
    assert edited_negatives(ref, random.Random(0), 1, kinds=("contact_type",), tries=20)


def test_a_task_can_name_a_plcopen_file_for_its_program(tmp_path):
    from apps.ladder.plcopen import to_plcopen

    task = generate("train", 3, seed=5)[2]
    (tmp_path / "xml").mkdir()
    (tmp_path / "xml" / "p.xml").write_bytes(to_plcopen(task.parsed()))
    path = _write(tmp_path / "tasks.jsonl", [{"instruction": task.instruction, "plcopen": "xml/p.xml"}])
    (loaded,) = load_tasks(path)
    assert canonical(parse_program(loaded.program)) == canonical(task.parsed())
    assert Reference.of(loaded).behaves_like(task.parsed())[0]
    (tmp_path / "xml" / "bad.xml").write_text("<project><oops")
    bad = _write(tmp_path / "bad.jsonl", [{"instruction": "x", "plcopen": "xml/bad.xml"}])
    with pytest.raises(ValueError, match=rf"{bad}:1: plcopen: .*bad.xml"):
        load_tasks(bad)


def test_the_seen_split_has_training_compositions_but_no_training_task():
    args = DataArgs(train_size=300, heldout_size=120, heldout="embedded:seen")
    train, seen = load_split(args, "train"), load_split(args, "heldout")
    assert 100 <= len(seen) <= 120
    train_combos = {tuple(sorted(t.families)) for t in train}
    assert {tuple(sorted(t.families)) for t in seen} <= train_combos
    known = {t.instruction for t in train} | {t.program for t in train}
    assert not any(t.instruction in known or t.program in known for t in seen)
