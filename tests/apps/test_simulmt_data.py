"""The embedded language pair (grammar, alignments, key points, split) and the parallel-file loaders."""

from __future__ import annotations

import json

import pytest

from apps.simulmt.data import DataArgs, load_pairs, load_split, oracle_delays, parse_alignment
from apps.simulmt.language import (
    COMPOUNDS,
    PARTICLES,
    Clause,
    Lexicon,
    NounPhrase,
    embedded_split,
    generate,
    realise,
)

LEX = Lexicon.build()
DOG, CAT, SEE = "dog", "cat", ("see", "sees", "saw")


def src(*english: str) -> list[str]:
    """The source words of English content words and particle names, for readable expectations."""
    table = {**LEX.nouns, **LEX.adjectives, **LEX.verbs, **LEX.places, **PARTICLES}
    return [table[w] for w in english]


def test_a_declarative_clause_is_sov_with_adjectives_after_the_noun():
    pair = realise([Clause(NounPhrase(DOG, "black"), NounPhrase(CAT), SEE, past=True)], False, LEX, "s")
    assert pair.source == src("dog", "black", "subject", "cat", "object", "see", "past")
    assert pair.references == ["the black dog saw the cat .", "the dog that is black saw the cat ."]
    # "black" needs the adjective (position 1); "saw" the verb and `ta` (5, 6); the object waits for nothing but itself
    canonical = dict(zip(pair.references[0].split(), pair.alignments[0]))
    assert canonical["black"] == [1] and canonical["saw"] == [5, 6] and canonical["cat"] == [3]
    assert pair.key_points == [[["dog"]], [["black"]], [["cat"]], [["saw"]], [["."]]]


def test_a_question_starts_with_a_word_known_only_at_the_end():
    pair = realise([Clause(NounPhrase(DOG), NounPhrase(CAT), SEE, negated=True)], True, LEX, "q")
    assert pair.source[-1] == PARTICLES["question"]
    assert pair.reference == "does the dog not see the cat ?"
    assert pair.alignments[0][0] == [len(pair.source) - 1]
    assert oracle_delays(pair, 0, 3) == [len(pair.source)] * len(pair.reference.split())


def test_the_monotone_reference_fronts_the_place_and_follows_source_order():
    clause = Clause(NounPhrase(DOG), NounPhrase(CAT), SEE, place=NounPhrase("park", "big"))
    pair = realise([clause], False, LEX, "p")
    assert pair.source[:3] == src("park", "big", "in")
    assert pair.references == ["the dog sees the cat in the big park .", "in the park that is big , the dog sees the cat ."]
    delays = oracle_delays(pair, 1, 3)
    assert delays[:3] == [1, 1, 1]  # "in the park" is written after reading the first word
    assert oracle_delays(pair, 0, 3)[0] == 4  # the canonical reference starts with the subject


def test_compounds_are_one_source_word_and_two_english_words():
    modifier, head = COMPOUNDS[0]
    pair = realise([Clause(NounPhrase((modifier, head)), NounPhrase(CAT), SEE)], False, LEX, "c")
    assert pair.source[0] == LEX.compounds[(modifier, head)]
    assert pair.reference.startswith(f"the {modifier} {head} sees")
    assert [[modifier, head]] in pair.key_points


def test_generated_alignments_are_valid_and_oracle_schedules_monotone():
    for pair in generate(300, seed=3, prefix="t"):
        assert len(pair.references) == 2 and len(pair.alignments) == 2
        for ref, align in zip(pair.references, pair.alignments):
            assert len(ref.split()) == len(align)
            assert all(0 <= i < len(pair.source) for deps in align for i in deps)
        for r in range(2):
            d = oracle_delays(pair, r, 3)
            assert d == sorted(d) and d[-1] == len(pair.source) and d[0] >= 1
        words = set(LEX.target_words())
        assert all(w in words for ref in pair.references for w in ref.split())


def test_the_split_has_no_heldout_source_in_train():
    train, heldout = embedded_split(500, 80, seed=0)
    assert len(train) == 500 and len(heldout) == 80
    assert not {" ".join(p.source) for p in train} & {" ".join(p.source) for p in heldout}
    assert embedded_split(500, 80, seed=0)[1][5].source == heldout[5].source  # deterministic


def test_load_split_limits_and_names_embedded_parts():
    args = DataArgs(train_size=50, heldout_size=10, max_heldout=4)
    assert len(load_split(args, "train")) == 50 and len(load_split(args, "heldout")) == 4
    with pytest.raises(ValueError, match="embedded:train or embedded:heldout"):
        load_split(DataArgs(train="embedded:dev"), "train")


def test_tsv_and_jsonl_files_load_with_alignments(tmp_path):
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("ich sehe den Hund\tI see the dog\t0-0 1-1 2-2 3-3\n\nguten Tag\tgood day\n")
    pairs = load_pairs(tsv)
    assert [p.source for p in pairs] == [["ich", "sehe", "den", "Hund"], ["guten", "Tag"]]
    assert pairs[0].alignments == [[[0], [1], [2], [3]]] and pairs[1].alignments is None
    assert oracle_delays(pairs[1], 0, 1) == [1, 2]  # no alignment: wait-1 here
    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_text(json.dumps({"id": "a", "source": "x y", "references": ["p q", "q p"], "alignment": "1-0 0-1"}) + "\n"
                     + json.dumps({"source": "z", "target": "r"}) + "\n")
    pairs = load_pairs(jsonl)
    assert pairs[0].id == "a" and pairs[0].references == ["p q", "q p"] and pairs[0].alignments == [[[1], [0]]]
    assert oracle_delays(pairs[0], 0, 3) == [2, 2]
    assert pairs[1].reference == "r"


@pytest.mark.parametrize("name, text, message", [
    ("bad.tsv", "only one column\n", r"bad.tsv:1: expected 2 or 3 tab-separated columns"),
    ("bad.tsv", "a b\tc d\n\t x\n", r"bad.tsv:2: source: expected non-empty text"),
    ("bad.tsv", "a b\tc d\t0-0 5-1\n", r"bad.tsv:1: alignment: '5-1' is outside the sentence"),
    ("bad.tsv", "a b\tc d\t0:0\n", r"bad.tsv:1: alignment: '0:0' is not an i-j pair"),
    ("bad.jsonl", '{"source": "a"}\n', r"bad.jsonl:1: reference: expected non-empty text"),
    ("bad.jsonl", '{"source": "a", "reference": "b"}\n{oops\n', r"bad.jsonl:2: invalid JSON"),
    ("bad.jsonl", '["a", "b"]\n', r"bad.jsonl:1: expected a JSON object"),
    ("bad.jsonl", '{"source": 3, "reference": "b"}\n', r"bad.jsonl:1: source: expected non-empty text"),
    ("bad.jsonl", '{"source": "a", "reference": "b", "alignment": [1]}\n', r"bad.jsonl:1: alignment: expected Pharaoh"),
    ("empty.tsv", "\n\n", r"empty.tsv: no sentence pair"),
])
def test_malformed_files_fail_in_one_line_naming_path_line_and_field(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as info:
        load_pairs(path)
    assert "\n" not in str(info.value)


def test_parse_alignment_collects_many_to_one():
    assert parse_alignment("0-0 1-0 2-1", 3, 2) == [[0, 1], [2]]
    with pytest.raises(ValueError):
        load_pairs("/nonexistent/file.tsv")
