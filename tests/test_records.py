"""Records: validation, TRL compatibility, file:line errors, atomic writes."""

import gzip
import json
import os

import pytest

from shared.records import Candidate, Pair, RankedList, RecordError, read_jsonl, write_jsonl

CONV_PROMPT = [{"role": "user", "content": "What color is the sky?"}]
CONV_CHOSEN = [{"role": "assistant", "content": "It is blue."}]
CONV_REJECTED = [{"role": "assistant", "content": "It is green."}]


def _write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "record",
    [
        Candidate("p1", "Say hi", "hi", scores={"total": 1.5, "valid": 1.0}, metadata={"round": 2}),
        Candidate("p2", CONV_PROMPT, CONV_CHOSEN),
        Pair("Say hi", "hi", "go away", weight=0.5, margin=1.25, strength=0.9, metadata={"builder": "x"}),
        Pair(CONV_PROMPT, CONV_CHOSEN, CONV_REJECTED),
        RankedList("Say hi", ["hi", "hello", "bye"], [3.0, 3.0, -1.0], metadata={"prompt_id": "p1"}),
    ],
    ids=["candidate", "candidate-conv", "pair", "pair-conv", "ranked"],
)
def test_round_trip_file(tmp_path, record):
    path = write_jsonl(tmp_path / "r.jsonl", [record, record])
    assert read_jsonl(path, type(record)) == [record, record]


def test_round_trip_gzip(tmp_path):
    pairs = [Pair("p", "a", "b", margin=float(i)) for i in range(3)]
    path = write_jsonl(tmp_path / "sub" / "pairs.jsonl.gz", pairs)
    with gzip.open(path, "rt", encoding="utf-8") as f:
        assert len(f.read().splitlines()) == 3
    assert read_jsonl(path, Pair) == pairs


def test_to_dict_leaves_out_unset_optionals():
    assert Pair("p", "a", "b").to_dict() == {"prompt": "p", "chosen": "a", "rejected": "b"}


def test_trl_standard_file_loads_and_writes_back_same_keys(tmp_path):
    rows = [
        {"prompt": "The sky is", "chosen": " blue.", "rejected": " green.", "id": 7, "score_chosen": 8.0},
        {"prompt": "The sun is", "chosen": " hot.", "rejected": " cold.", "id": 8, "score_chosen": 6.5},
    ]
    src = _write_lines(tmp_path / "trl.jsonl", [json.dumps(r) for r in rows])
    pairs = read_jsonl(src, Pair)
    assert pairs[0] == Pair("The sky is", " blue.", " green.", metadata={"id": 7, "score_chosen": 8.0})
    out = read_jsonl(write_jsonl(tmp_path / "out.jsonl", pairs))
    for row, written in zip(rows, out):
        assert {k: written[k] for k in ("prompt", "chosen", "rejected")} == {
            k: row[k] for k in ("prompt", "chosen", "rejected")
        }
        assert written["metadata"] == {"id": row["id"], "score_chosen": row["score_chosen"]}


def test_trl_conversational_explicit_prompt_loads(tmp_path):
    row = {"prompt": CONV_PROMPT, "chosen": CONV_CHOSEN, "rejected": CONV_REJECTED}
    src = _write_lines(tmp_path / "conv.jsonl", [json.dumps(row)])
    (pair,) = read_jsonl(src, Pair)
    assert (pair.prompt, pair.chosen, pair.rejected) == (CONV_PROMPT, CONV_CHOSEN, CONV_REJECTED)
    (written,) = read_jsonl(write_jsonl(tmp_path / "out.jsonl", [pair]))
    assert written == row


def test_trl_conversational_implicit_prompt_is_split_like_trl(tmp_path):
    system = {"role": "system", "content": "Be brief."}
    row = {"chosen": [system, *CONV_PROMPT, *CONV_CHOSEN], "rejected": [system, *CONV_PROMPT, *CONV_REJECTED]}
    src = _write_lines(tmp_path / "implicit.jsonl", [json.dumps(row)])
    (pair,) = read_jsonl(src, Pair)
    assert pair.prompt == [system, *CONV_PROMPT]
    assert pair.chosen == CONV_CHOSEN and pair.rejected == CONV_REJECTED


def test_implicit_prompt_with_no_shared_prefix_is_an_error(tmp_path):
    row = {"chosen": CONV_CHOSEN, "rejected": CONV_REJECTED}
    src = _write_lines(tmp_path / "bad.jsonl", [json.dumps(row)])
    with pytest.raises(RecordError, match=r"bad\.jsonl:1: missing field 'prompt'"):
        read_jsonl(src, Pair)


def test_plain_pair_without_prompt_is_an_error(tmp_path):
    src = _write_lines(tmp_path / "bad.jsonl", [json.dumps({"chosen": "a", "rejected": "b"})])
    with pytest.raises(RecordError, match=r"bad\.jsonl:1: missing field 'prompt'$"):
        read_jsonl(src, Pair)


GOOD = json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"})


@pytest.mark.parametrize(
    "bad_line, line_no, message",
    [
        ('{"prompt": "p", "chosen": "a", "rejected": ', 3, "invalid JSON: Expecting value (column 44)"),
        (json.dumps({"prompt": "p", "chosen": "a"}), 3, "missing field 'rejected'"),
        (
            json.dumps({"prompt": "p", "chosen": 5, "rejected": "b"}),
            3,
            "field 'chosen' must be a string or a list of messages, got int",
        ),
        (json.dumps(["p", "a", "b"]), 3, "expected a JSON object, got list"),
        (
            json.dumps({"prompt": [{"role": "user"}], "chosen": "a", "rejected": "b"}),
            3,
            "field 'prompt[0].content' must be a string or a list of content parts, got null",
        ),
        (
            json.dumps({"prompt": "p", "chosen": "a", "rejected": "b", "margin": "big"}),
            3,
            "field 'margin' must be a number, got str",
        ),
    ],
    ids=["bad-json", "missing-rejected", "wrong-type", "not-object", "bad-message", "bad-margin"],
)
def test_malformed_line_gives_one_line_path_line_error(tmp_path, bad_line, line_no, message):
    path = _write_lines(tmp_path / "pairs.jsonl", [GOOD, "", bad_line, GOOD])
    with pytest.raises(RecordError) as info:
        read_jsonl(path, Pair)
    text = str(info.value)
    assert text == f"{path}:{line_no}: {message}"
    assert "\n" not in text
    assert isinstance(info.value, ValueError)


def test_raw_dict_reading_still_checks_objects(tmp_path):
    path = _write_lines(tmp_path / "raw.jsonl", [json.dumps({"a": 1}), "  ", "3"])
    with pytest.raises(RecordError, match=r"raw\.jsonl:3: expected a JSON object, got int"):
        read_jsonl(path)
    assert read_jsonl(_write_lines(tmp_path / "ok.jsonl", ['{"a": 1}', "", '{"b": 2}'])) == [{"a": 1}, {"b": 2}]


GOOD_BYTES = (GOOD + "\n").encode()


def _corrupt_crc(data: bytes) -> bytes:
    # gzip's trailer is CRC32 then size; a flipped CRC byte is a "CRC check failed" at the end of the stream.
    return data[:-8] + bytes([data[-8] ^ 0xFF]) + data[-7:]


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("latin1.jsonl", GOOD_BYTES + '{"prompt": "café"}\n'.encode("latin-1"),
         ":2: not UTF-8: byte 0xe9 at column 16 (invalid continuation byte); save the file as UTF-8"),
        ("utf16.jsonl", GOOD_BYTES.decode().encode("utf-16"),
         ":1: UTF-16 text (byte-order mark ff fe); save the file as UTF-8"),
        ("nul.jsonl", GOOD_BYTES + b"\x00\x00\x00\n",
         ":2: NUL byte at column 1: binary data or UTF-16 text, not UTF-8"),
        ("truncated.jsonl.gz", gzip.compress(GOOD_BYTES * 50, mtime=0)[:-12],
         ": truncated gzip file (Compressed file ended before the end-of-stream marker was reached), after line "),
        ("crc.jsonl.gz", _corrupt_crc(gzip.compress(GOOD_BYTES * 3, mtime=0)),
         ": corrupt gzip data (CRC check failed"),
        ("garbled.jsonl.gz", gzip.compress(GOOD_BYTES, mtime=0)[:10] + b"\xff" * 30,
         ": corrupt gzip data (Error -3 while decompressing data: invalid block type), before line 1"),
        ("plain.jsonl.gz", GOOD_BYTES,
         """: the name ends in .gz but the file is not gzip-compressed (it starts with b'{"pr'); """
         "rename or compress it"),
        ("gzip-latin1.jsonl.gz", gzip.compress(b'{"prompt": "\xe9"}\n'), ":1: not UTF-8: byte 0xe9 at column 13"),
        ("array.json", ("[" + GOOD + "]\n").encode(),
         ":1: expected a JSON object, got list (JSONL holds one JSON object per line, not a JSON array)"),
        ("pretty.json", b'[\n  {"prompt": "p"}\n]\n',
         ":1: invalid JSON: Expecting value (column 2) (JSONL holds one JSON object per line, not a JSON array)"),
    ],
    ids=["latin1", "utf16", "nul", "truncated-gz", "crc-gz", "garbled-gz", "plain-named-gz", "gz-latin1", "array",
         "pretty-array"],
)
def test_malformed_bytes_give_one_line_naming_file_and_line(tmp_path, name, data, message):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(RecordError) as info:
        read_jsonl(path, Pair)
    text = str(info.value)
    assert text.startswith(f"{path}{message}") and "\n" not in text, text


def test_bom_crlf_and_gzip_by_magic_bytes_are_read(tmp_path):
    pair = Pair("p", "a", "b")
    bom = tmp_path / "excel.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + GOOD_BYTES.replace(b"\n", b"\r\n") * 2)  # Notepad / Excel: BOM and CRLF
    assert read_jsonl(bom, Pair) == [pair, pair]
    misnamed = tmp_path / "downloaded.jsonl"  # gzip data without .gz in the name: the magic bytes decide
    misnamed.write_bytes(gzip.compress(b"\xef\xbb\xbf" + GOOD_BYTES))
    assert read_jsonl(misnamed, Pair) == [pair]
    empty = tmp_path / "empty.jsonl.gz"
    empty.write_bytes(b"")
    assert read_jsonl(empty) == []


def test_a_non_object_line_is_refused_before_the_record_class_sees_it(tmp_path):
    class Strict:
        @classmethod
        def from_dict(cls, d, where):
            return d["x"]  # would be a TypeError on a list, not a one-line error

    path = _write_lines(tmp_path / "r.jsonl", ['{"x": 1}', "[1]"])
    with pytest.raises(RecordError, match=r"r\.jsonl:2: expected a JSON object, got list$"):
        read_jsonl(path, Strict)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Candidate(3, "p", "o"), "field 'prompt_id' must be a string, got int"),
        (
            lambda: Candidate("i", "p", "o", scores={"total": float("nan")}),
            "field 'scores.total' must be finite, got nan",
        ),
        (lambda: Candidate("i", "p", "o", scores={"total": True}), "field 'scores.total' must be a number, got bool"),
        (lambda: Pair("p", "a", "b", strength=1.5), "field 'strength' must lie in [0, 1], got 1.5"),
        (lambda: RankedList("p", ["a", "b"], [1.0]), "fields 'outputs' and 'scores' differ in length (2 vs 1)"),
        (
            lambda: RankedList("p", ["a", "b"], [1.0, 2.0]),
            "field 'scores' must be best first (non-increasing); scores[1] > scores[0]",
        ),
    ],
)
def test_constructor_validates(make, message):
    with pytest.raises(RecordError) as info:
        make()
    assert str(info.value) == message


def test_extra_key_clashing_with_metadata_is_an_error():
    with pytest.raises(RecordError, match=r"^x\.jsonl:2: key 'id' appears both at top level and in 'metadata'$"):
        Pair.from_dict(
            {"prompt": "p", "chosen": "a", "rejected": "b", "id": 1, "metadata": {"id": 2}}, where="x.jsonl:2"
        )


def test_candidate_from_dict_keeps_extras_and_converts_ints():
    c = Candidate.from_dict({"prompt_id": "q", "prompt": "p", "output": "o", "scores": {"total": 2}, "seed": 11})
    assert c.scores == {"total": 2.0} and isinstance(c.scores["total"], float)
    assert c.metadata == {"seed": 11}


def test_atomic_write_leaves_no_temp_file(tmp_path):
    write_jsonl(tmp_path / "pairs.jsonl", [Pair("p", "a", "b")])
    assert os.listdir(tmp_path) == ["pairs.jsonl"]


def test_failed_write_keeps_previous_file_and_cleans_up(tmp_path):
    path = write_jsonl(tmp_path / "pairs.jsonl", [Pair("p", "a", "b")])
    before = path.read_bytes()
    unserialisable = Pair("p", "a", "b", metadata={"obj": object()})
    with pytest.raises(RecordError, match=r"pairs\.jsonl:2: cannot serialise record"):
        write_jsonl(path, [Pair("p", "new", "rows"), unserialisable])
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["pairs.jsonl"]


def test_failure_in_the_record_iterator_keeps_previous_file(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [Candidate("a", "p", "o")])

    def records():
        yield Candidate("b", "p", "o")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_jsonl(path, records())
    assert read_jsonl(path, Candidate) == [Candidate("a", "p", "o")]
    assert os.listdir(tmp_path) == ["c.jsonl"]


def test_written_file_respects_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_jsonl(tmp_path / "c.jsonl", [])
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
    assert path.read_bytes() == b""
