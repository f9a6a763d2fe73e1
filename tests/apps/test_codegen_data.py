"""Codegen tasks: the embedded set is correct, deterministic and has tests with teeth; loaders and their errors."""

import gzip
import hashlib
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from apps.codegen.data import (Task, embedded_tasks, load_humaneval, load_task_file, load_tasks, split_embedded,
                               write_task_file)
from apps.codegen.templates import TEMPLATES
from shared.records import RecordError

TASKS = embedded_tasks()
ROOT = Path(__file__).resolve().parents[2]


def _passes(program: str, task: Task) -> bool:
    """Run our own reference-style code in-process: the program, the hidden tests, then check(candidate)."""
    namespace: dict = {}
    try:
        exec(program, namespace)
        for assertion in task.tests:
            exec(assertion, namespace)
        exec(task.test, namespace)
        namespace["check"](namespace[task.entry_point])
    except Exception:
        return False
    return True


def _digest(tasks) -> str:
    return hashlib.sha256(json.dumps([t.to_dict() for t in tasks]).encode()).hexdigest()


def test_embedded_set_size_and_uniqueness():
    assert len(TASKS) >= 300
    assert len({t.task_id for t in TASKS}) == len(TASKS)
    assert len({t.prompt for t in TASKS}) == len(TASKS)
    assert TASKS[0].task_id == "embedded/0001"
    assert {t.family for t in TASKS} == {"strings", "lists", "arithmetic", "dicts"}
    assert {t.template for t in TASKS} == {t.name for t in TEMPLATES}
    assert all(5 <= len(t.tests) <= 8 and 2 <= len(t.reasoning) <= 4 for t in TASKS)


def test_every_reference_solution_passes_its_tests_and_check():
    failing = [t.task_id for t in TASKS if not _passes(t.solution(), t)]
    assert failing == []


def test_reference_function_is_the_docstring_free_solution():
    """The SFT target (signature + body, no docstring) passes every task's tests and starts with its def line."""
    failing = [t.task_id for t in TASKS if not _passes(t.reference_function(), t)]
    assert failing == []
    assert all(t.reference_function().startswith(f"def {t.entry_point}(") and '"""' not in t.reference_function()
               for t in TASKS if not t.prompt.startswith(("import", "from")))


def test_tests_have_teeth():
    """A body returning None, or the first test's expected value, fails (nearly) every task."""
    assert sum(_passes(t.prompt + "    return None\n", t) for t in TASKS) == 0
    constant = [t for t in TASKS if _passes(t.prompt + "    return " + t.tests[0].split(" == ", 1)[1] + "\n", t)]
    assert len(constant) <= len(TASKS) // 100


def test_prompt_is_humaneval_style():
    task = TASKS[0]
    assert task.prompt.startswith(f"def {task.entry_point}(")
    assert '"""' in task.prompt and ">>> " + task.entry_point in task.prompt
    assert task.test.startswith("def check(candidate):")
    assert task.to_dict()["tests"] == list(task.tests)


def test_embedded_is_deterministic_across_hash_seeds():
    code = ("import hashlib, json; from apps.codegen.data import embedded_tasks; "
            "print(hashlib.sha256(json.dumps([t.to_dict() for t in embedded_tasks()]).encode()).hexdigest())")
    digests = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={"PYTHONHASHSEED": seed}, cwd=ROOT).stdout.strip()
               for seed in ("1", "2")}
    assert digests == {_digest(TASKS)}
    assert embedded_tasks() == TASKS


def test_split_is_disjoint_sized_and_covers_every_template():
    train, heldout = split_embedded(TASKS, heldout_fraction=0.3)
    assert len(heldout) == round(0.3 * len(TASKS)) and len(train) + len(heldout) == len(TASKS)
    assert not {t.task_id for t in train} & {t.task_id for t in heldout}
    assert not {t.prompt for t in train} & {t.prompt for t in heldout}
    assert {t.template for t in train} == {t.template for t in heldout} == {t.name for t in TEMPLATES}
    assert split_embedded(TASKS) == (train, heldout)
    assert load_tasks("embedded:train") == train and load_tasks("embedded:heldout") == heldout


@pytest.mark.parametrize("name", ["tasks.jsonl", "tasks.jsonl.gz"])
def test_task_file_round_trip(tmp_path, name):
    path = write_task_file(tmp_path / name, TASKS[:20])
    assert load_task_file(path) == TASKS[:20]
    assert load_tasks(str(path)) == TASKS[:20]


def test_humaneval_loader():
    tasks = load_humaneval()
    assert len(tasks) == 164 and load_tasks("humaneval")[0] == tasks[0]
    assert sum(bool(t.tests) for t in tasks) >= 150
    first = tasks[0]
    assert first.family == "humaneval" and first.reasoning == ()
    assert first.tests[0].startswith(f"assert {first.entry_point}(")
    assert all(_passes(t.solution(), replace(t, test="def check(c): pass")) for t in tasks)


def _write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


GOOD = json.dumps({"task_id": "t/0", "prompt": "def f(x):\n", "entry_point": "f",
                   "canonical_solution": "    return x\n",
                   "test": "def check(candidate):\n    assert candidate(1) == 1\n"})


@pytest.mark.parametrize("lines, line, needle", [
    ([GOOD, GOOD.replace("t/0", "t/1"), "{not json"], 3, "invalid JSON"),
    ([GOOD, json.dumps({"task_id": "t/1", "prompt": "def g():\n", "test": ""})], 2, "'entry_point'"),
    ([json.dumps({"task_id": 5, "prompt": "def f():\n", "entry_point": "f", "test": ""})], 1, "'task_id' must be str"),
    ([json.dumps({"task_id": "a", "prompt": "def f():\n", "entry_point": "f", "test": "", "tests": [1]})], 1,
     "'tests[0]'"),
    ([json.dumps(["a list"])], 1, "JSON object"),
    ([json.dumps({"task_id": 1, "text": "t", "code": "x = 1", "test_list": []})], 1, "'code'"),
    ([json.dumps({"task_id": 1, "text": "t", "code": "def f():\n    return 1", "test_list": "nope"})], 1,
     "'test_list' must be list"),
    ([GOOD, "", GOOD], 3, "'task_id' repeats"),
])
def test_malformed_file_gives_one_line_error(tmp_path, lines, line, needle):
    path = _write(tmp_path / "bad.jsonl", lines)
    with pytest.raises(RecordError) as info:
        load_task_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: ") and needle in message and "\n" not in message


def test_empty_and_missing_files(tmp_path):
    with pytest.raises(RecordError, match=r"empty\.jsonl:1: empty file"):
        load_task_file(_write(tmp_path / "empty.jsonl", ["", "  "]))
    with pytest.raises(ValueError, match="no such file"):
        load_tasks(str(tmp_path / "absent.jsonl"))



@pytest.mark.parametrize("name, data, problem", [
    ("latin1.jsonl", GOOD.encode() + b"\n" + '{"task_id": "é"}\n'.encode("latin-1"), ":2: not UTF-8: byte 0xe9"),
    ("utf16.jsonl", (GOOD + "\n").encode("utf-16"), ":1: UTF-16 text"),
    ("binary.jsonl", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ":1: not UTF-8: byte 0x89 at column 1"),
    ("truncated.jsonl.gz", gzip.compress((GOOD + "\n").encode(), mtime=0)[:-6], ": truncated gzip file"),
    ("plain.jsonl.gz", (GOOD + "\n").encode(), ": the name ends in .gz but the file is not gzip-compressed"),
], ids=["latin1", "utf16", "binary", "truncated-gz", "plain-named-gz"])
def test_malformed_bytes_in_a_task_file_give_one_line_error(tmp_path, name, data, problem):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(RecordError) as info:
        load_tasks(str(path))
    message = str(info.value)
    assert message.startswith(f"{path}{problem}") and "\n" not in message, message


def test_task_file_with_bom_and_crlf_loads(tmp_path):
    path = tmp_path / "windows.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + (GOOD + "\r\n").encode())
    assert [t.task_id for t in load_tasks(str(path))] == ["t/0"]


def test_train_cli_with_a_truncated_gzip_task_file_exits_2_with_one_line(tmp_path):
    tasks = tmp_path / "tasks.jsonl.gz"
    lines = "".join(GOOD.replace("t/0", f"t/{i}") + "\n" for i in range(40))
    tasks.write_bytes(gzip.compress(lines.encode(), mtime=0)[:-20])
    result = subprocess.run([sys.executable, "-m", "apps.codegen.train", f"data.train={tasks}",
                             f"run_dir={tmp_path / 'run'}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"python -m apps.codegen.train: error: {tasks}: truncated gzip file")

MBPP = [
    {"task_id": 11, "text": "Write a python function to remove first and last occurrence of a given character.",
     "code": "def remove_Occ(s,ch): \r\n    for i in range(len(s)): \r\n        if (s[i] == ch): \r\n"
             "            s = s[0 : i] + s[i + 1:] \r\n            break\r\n    for i in range(len(s) - 1,-1,-1):  \r\n"
             "        if (s[i] == ch): \r\n            s = s[0 : i] + s[i + 1:] \r\n            break\r\n    return s ",
     "test_list": ['assert remove_Occ("hello","l") == "heo"', 'assert remove_Occ("abcda","a") == "bcd"'],
     "test_setup_code": "", "challenge_test_list": []},
    {"task_id": 2, "text": "Sum of squares using a helper, tab-indented.",
     "code": "import math\ndef sq(x):\n\treturn x * x\ndef sum_sq(xs):\n\treturn sum(sq(x) for x in xs)\n",
     "test_list": ["assert sum_sq([1, 2]) == 5", "assert sum_sq([]) == 0"]},
    {"task_id": 3, "text": "Needs setup.", "code": "def g(x):\n  return x + K",
     "test_list": ["assert g(1) == 3"], "test_setup_code": "K = 2"},
]


def test_mbpp_file_loads_and_its_code_passes(tmp_path):
    path = tmp_path / "mbpp.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(record) + "\n" for record in MBPP)
    tasks = load_task_file(path)
    assert [t.entry_point for t in tasks] == ["remove_Occ", "sum_sq", "g"]
    assert [t.task_id for t in tasks] == ["11", "2", "3"] and {t.family for t in tasks} == {"mbpp"}
    assert tasks[0].prompt.rstrip().endswith('"""') and MBPP[0]["text"] in tasks[0].prompt
    assert "def sq" not in tasks[1].prompt and tasks[1].prompt.startswith("import math")
    assert tasks[2].tests == () and tasks[2].test.startswith("K = 2")
    for task in tasks:
        assert _passes(task.solution(), task), task.task_id
        assert not _passes(task.prompt + task.canonical_solution.replace("return", "return None and", 1), task)
