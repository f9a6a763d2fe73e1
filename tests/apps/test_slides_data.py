"""Tasks: embedded splits are deterministic and disjoint; users' task files fail in one line naming file, line, field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apps.slides.data import DataArgs, load_split, read_tasks
from apps.slides.documents import generate_documents, to_markdown
from apps.slides.pptx_io import build_deck, embedded_template, read_deck
from apps.slides.profiles import distill, sample_profile, write_deck


def test_embedded_tasks_are_deterministic_and_held_out(tmp_path):
    args = DataArgs(train_size=30, heldout_size=6)
    a = load_split(args, "train", tmp_path / "a")
    b = load_split(args, "train", tmp_path / "b")
    assert [(t.id, t.document, t.profile, t.slides, t.reference) for t in a] == \
           [(t.id, t.document, t.profile, t.slides, t.reference) for t in b]
    held = load_split(args, "heldout", tmp_path / "a")
    assert not {t.document.title for t in held} & {t.document.title for t in a}
    for t in held:  # held-out profiles come from a real .pptx
        assert t.example_deck.is_file() and args.min_slides <= t.slides <= args.max_slides
        assert len(t.reference.slides) == t.slides


@pytest.fixture()
def files(tmp_path):
    import random

    doc, other = generate_documents(2, 9)
    profile = sample_profile(random.Random(4))
    template = embedded_template("wide", tmp_path)
    build_deck(write_deck(doc, profile), template, tmp_path / "example.pptx")
    build_deck(write_deck(other, profile, 4), template, tmp_path / "reference.pptx")
    (tmp_path / "paper.md").write_text(to_markdown(other))
    return tmp_path


def _write(folder: Path, rows) -> Path:
    path = folder / "tasks.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


GOOD = {"id": "t1", "example_deck": "example.pptx", "template": "embedded:wide", "document": "paper.md", "slides": 4,
        "reference_deck": "reference.pptx"}


def test_a_users_task_file_loads(files):
    tasks = read_tasks(_write(files, [GOOD, {**GOOD, "id": "t2", "template": "example.pptx"}]), files / "cache",
                       need_reference=True)
    assert [t.id for t in tasks] == ["t1", "t2"] and tasks[0].slides == 4
    assert tasks[0].profile == distill(read_deck(files / "example.pptx"))  # the profile is the example deck's
    assert tasks[0].reference == read_deck(files / "reference.pptx")
    assert tasks[1].template == files / "example.pptx"


@pytest.mark.parametrize("row, message", [
    ({**GOOD, "example_deck": None}, "field 'example_deck': expected a file path"),
    ({**GOOD, "example_deck": "corrupt.pptx"}, "field 'example_deck': "),
    ({**GOOD, "template": "corrupt.pptx"}, "field 'template': "),
    ({**GOOD, "template": "embedded:fancy"}, "field 'template': "),
    ({**GOOD, "document": "empty.md"}, "field 'document': "),
    ({**GOOD, "document": "broken.pdf"}, "field 'document': "),
    ({**GOOD, "slides": 0}, "field 'slides': expected an integer"),
    ({**GOOD, "reference_deck": "missing.pptx"}, "field 'reference_deck': "),
    ({k: v for k, v in GOOD.items() if k != "reference_deck"}, "field 'reference_deck': expected a file path"),
    ("[1, 2]", "expected a JSON object"),
    ("{not json", "invalid JSON"),
])
def test_bad_task_rows_fail_in_one_line(files, row, message):
    (files / "corrupt.pptx").write_bytes(b"PK\x03\x04 not really a zip")
    (files / "empty.md").write_text("")
    (files / "broken.pdf").write_bytes(b"%PDF-1.4\n garbage")
    path = _write(files, [GOOD, row])
    with pytest.raises(ValueError) as info:
        read_tasks(path, files / "cache", need_reference=True)
    text = str(info.value)
    assert text.startswith(f"{path}:2: ") and message in text and "\n" not in text


def test_duplicate_ids_and_empty_files(files):
    with pytest.raises(ValueError, match=r"tasks.jsonl:2: field 'id': duplicate"):
        read_tasks(_write(files, [GOOD, GOOD]), files / "cache")
    with pytest.raises(ValueError, match="no tasks"):
        read_tasks(_write(files, []), files / "cache")
