"""t2i prompt files: malformed bytes give one line naming the file and line, in load_prompts and the train CLI."""

import gzip
import subprocess
import sys
from pathlib import Path

import pytest

from apps.t2i.data import load_prompts
from shared.records import RecordError

ROOT = Path(__file__).resolve().parents[2]
GOOD = b'{"scene": {"category": "single_object", "objects": [{"colour": "red", "shape": "circle"}]}}\n'


@pytest.mark.parametrize("name, data, problem", [
    ("latin1.jsonl", GOOD + '{"prompt": "une fleur rouge é"}\n'.encode("latin-1"), ":2: not UTF-8: byte 0xe9"),
    ("utf16.jsonl", GOOD.decode().encode("utf-16"), ":1: UTF-16 text (byte-order mark ff fe)"),
    ("nul.jsonl", GOOD + b"\x00" * 8 + b"\n", ":2: NUL byte at column 1"),
    ("truncated.jsonl.gz", gzip.compress(GOOD * 30, mtime=0)[:-10], ": truncated gzip file"),
    ("plain.jsonl.gz", GOOD, ": the name ends in .gz but the file is not gzip-compressed"),
    ("prompts.json", b"[" + GOOD.strip() + b"]\n", ":1: expected a JSON object, got list (JSONL holds one JSON object"),
], ids=["latin1", "utf16", "nul", "truncated-gz", "plain-named-gz", "json-array"])
def test_malformed_bytes_in_a_prompt_file_give_one_line_error(tmp_path, name, data, problem):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(RecordError) as info:
        load_prompts(path)
    message = str(info.value)
    assert message.startswith(f"{path}{problem}") and "\n" not in message, message


def test_prompt_file_with_bom_and_crlf_loads(tmp_path):
    path = tmp_path / "excel.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.replace(b"\n", b"\r\n") * 2)
    assert [r.prompt for r in load_prompts(path)] == ["a photo of a red circle"] * 2


def test_train_cli_with_a_utf16_prompt_file_exits_2_with_one_line(tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_bytes(GOOD.decode().encode("utf-16"))
    result = subprocess.run([sys.executable, "-m", "apps.t2i.train", f"data.train_prompts={prompts}",
                             f"run_dir={tmp_path / 'run'}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr == (f"python -m apps.t2i.train: error: {prompts}:1: UTF-16 text (byte-order mark ff fe); "
                             "save the file as UTF-8\n")
