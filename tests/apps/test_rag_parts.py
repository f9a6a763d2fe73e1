"""The RAG app's parts: claims, ALCE's metrics (hand-worked), entailment adapters, answers, pairs, data files."""

from __future__ import annotations

import json
import random

import pytest

from apps.rag.answers import correct_citations, degrade_citations, minimal_support, renumber, write_answer
from apps.rag.claims import ClaimReader
from apps.rag.data import Doc, Example, embedded_world, examples, load_file, load_questions
from apps.rag.entailment import KBEntailment
from apps.rag.kb import KnowledgeBase
from apps.rag.metrics import (answer_row, citation_scores, citations, normalize_answer, remove_citations, sentences,
                              str_em)
from apps.rag.pairs import build_pairs, score_candidates, stage_prompts, to_candidates
from apps.rag.retrieval import BM25Retriever, recall_at_k, world_corpus
from shared.records import RecordError

# A hand-made world: two companies, their founders, two cities, one country.
KB = KnowledgeBase(
    entities={"company": ["Vorla Works", "Kessim Mills"], "person": ["Ada Brenn", "Tomo Kuzel"],
              "city": ["Drozen", "Pelka"], "country": ["Marovia"]},
    facts=[("Vorla Works", "founded_year", "1832"), ("Vorla Works", "founded_by", "Ada Brenn"),
           ("Vorla Works", "headquarters", "Drozen"), ("Vorla Works", "products", "turbines"),
           ("Vorla Works", "products", "pumps"), ("Ada Brenn", "born_in", "Pelka"),
           ("Ada Brenn", "lives_in", "Drozen"), ("Kessim Mills", "founded_year", "1901"),
           ("Kessim Mills", "founded_by", "Tomo Kuzel"), ("Drozen", "country", "Marovia")],
    aliases={"vorla works": "Vorla Works", "vorla": "Vorla Works", "kessim mills": "Kessim Mills",
             "kessim": "Kessim Mills", "ada brenn": "Ada Brenn", "brenn": "Ada Brenn", "tomo kuzel": "Tomo Kuzel",
             "kuzel": "Tomo Kuzel", "drozen": "Drozen", "pelka": "Pelka", "marovia": "Marovia",
             "turbines": "turbines", "pumps": "pumps"},
    types={"Vorla Works": "company", "Kessim Mills": "company", "Ada Brenn": "person", "Tomo Kuzel": "person",
           "Drozen": "city", "Pelka": "city", "Marovia": "country", "turbines": "product", "pumps": "product"},
)
READER = ClaimReader(KB)
JUDGE = KBEntailment(KB)


def doc(title, *facts, text=None, golden=False):
    return Doc(title, text or " ".join(f"{f[0]} {f[1]} {f[2]}." for f in facts), "golden" if golden else "given",
               tuple(facts), golden)


D_FOUNDED = doc("Vorla Works", ("Vorla Works", "founded_year", "1832"), golden=True)
D_FOUNDER = doc("Vorla Works", ("Vorla Works", "founded_by", "Ada Brenn"), golden=True)
D_BORN = doc("Ada Brenn", ("Ada Brenn", "born_in", "Pelka"), golden=True)
D_LIVES = doc("Ada Brenn", ("Ada Brenn", "lives_in", "Drozen"))
D_OTHER = doc("Kessim Mills", ("Kessim Mills", "founded_year", "1901"))
D_TURBINES = doc("Vorla Works", ("Vorla Works", "products", "turbines"), golden=True)
D_PUMPS = doc("Vorla Works", ("Vorla Works", "products", "pumps"), golden=True)


# ---------------------------------------------------------------- claims

@pytest.mark.parametrize("sentence, expected", [
    ("Vorla Works was founded by Ada Brenn.", {("Vorla Works", "founded_by", "Ada Brenn")}),
    ("Brenn founded Vorla in 1832.", {("Vorla Works", "founded_by", "Ada Brenn"), ("Vorla Works", "founded_year", "1832")}),
    # the year goes with the nearer cue ("born"), so "founded" gets none
    ("Ada Brenn was born in 1801 and founded Vorla Works.",
     {("Ada Brenn", "born_year", "1801"), ("Vorla Works", "founded_by", "Ada Brenn")}),
    ("Vorla Works makes turbines and pumps.", {("Vorla Works", "products", "turbines"), ("Vorla Works", "products", "pumps")}),
    ("vorla works is headquartered in drozen, which is located in Marovia.",
     {("Vorla Works", "headquarters", "Drozen"), ("Drozen", "country", "Marovia")}),
    ("Vorla Works was founded in 1790.", {("Vorla Works", "founded_year", "1790")}),  # false, still asserted
    ("Vorla Works is a fine company in Drozen.", set()),  # no relation cue
    ("It was founded long ago.", set()),
    ("", set()),
])
def test_claims_of_sentences(sentence, expected):
    assert READER.claims(sentence) == expected


# ---------------------------------------------------------------- ALCE metrics

def test_normalisation_and_str_em_match_squad_rules():
    assert normalize_answer("The  Vorla-Works, an Inc.!") == "vorlaworks inc"
    groups = [["turbines"], ["pumps"], ["bells"]]
    assert str_em("Vorla Works makes Turbines [1] and the pumps [2].", groups) == pytest.approx(2 / 3)
    assert str_em("pumps\nturbines bells", groups) == pytest.approx(1 / 3)  # only the first line counts
    assert str_em("Ada Brenn", [["Ada Brenn", "Brenn"]]) == 1.0
    assert str_em("", groups) == 0.0


def test_citation_parsing_follows_alce():
    assert citations("A [1][2] b [3, 4] c [5] [6] [7]") == [1, 2, 3, 5, 6, 7]
    assert citations("no citation, [x], [ 2]") == []
    assert citations("unclosed [2") == [2]
    assert remove_citations("Vorla Works was founded in 1832 [1][2].") == "Vorla Works was founded in 1832."
    assert sentences("Vorla Works was founded in 1832 [1]. Ada Brenn was born in Pelka [2].\nignored line.") == [
        "Vorla Works was founded in 1832 [1].", "Ada Brenn was born in Pelka [2]."]


def test_citation_recall_and_precision_hand_worked():
    docs = [D_FOUNDED, D_FOUNDER, D_BORN, D_OTHER, D_LIVES]
    # sentence 1: cites 1 (supports) and 4 (unnecessary: alone it fails, without it 1 still entails) -> 1 of 2 precise
    # sentence 2: cites 2 and 3 jointly needed for the two claims -> both precise
    # sentence 3: cites 5, which states lives_in, not born_in -> unsupported, its citation imprecise
    answer = ("Vorla Works was founded in 1832 [1][4]. Vorla Works was founded by Ada Brenn, who was born in Pelka [2][3]. "
              "Ada Brenn was born in Drozen [5].")
    s = citation_scores(answer, docs, JUDGE)
    assert s.sentences == 3 and s.citations == 5
    assert s.recall == pytest.approx(2 / 3)
    assert s.precision == pytest.approx(3 / 5)
    assert s.f1 == pytest.approx(2 * 0.6 * (2 / 3) / (0.6 + 2 / 3))


def test_only_the_first_three_citations_count():
    docs = [D_OTHER, D_LIVES, D_BORN, D_FOUNDED, D_FOUNDER]
    s = citation_scores("Vorla Works was founded in 1832 [1][2][3][4].", docs, JUDGE)  # [4] is dropped
    assert (s.recall, s.precision, s.citations) == (0.0, 0.0, 3)


def test_each_of_two_needed_citations_is_precise():
    docs = [D_TURBINES, D_PUMPS]
    s = citation_scores("Vorla Works makes turbines and pumps [1][2].", docs, JUDGE)
    assert (s.recall, s.precision) == (1.0, 1.0)
    s = citation_scores("Vorla Works makes turbines and pumps [1].", docs, JUDGE)
    assert (s.recall, s.precision) == (0.0, 0.0)


@pytest.mark.parametrize("answer", [
    "Vorla Works was founded in 1832 [99].", "Vorla Works was founded in 1832 [x].", "Vorla Works was founded in 1832.",
    "Vorla Works was founded in 1832 [0].", "Vorla Works was founded in 1832 [1", "[[[[]]]", "", "\n\n", "]" * 50,
    "Vorla Works was founded in 1832 [99999999999999999999999].", "\x00\ufffd [1]",
])
def test_garbage_citations_score_without_crashing(answer):
    row = answer_row(answer, [["1832"]], [D_FOUNDED, D_OTHER], JUDGE)
    assert set(row) >= {"str_em", "citation_recall", "citation_precision", "citation_f1"}
    assert all(0.0 <= row[k] <= 1.0 for k in ("str_em", "citation_recall", "citation_precision", "citation_f1"))
    if answer.endswith(("[99].", "[x].", "1832.", "[0].", "[99999999999999999999999].")):
        assert row["citation_recall"] == 0.0


def test_unclosed_bracket_counts_as_a_citation_like_alce():
    assert citation_scores("Vorla Works was founded in 1832 [1", [D_FOUNDED], JUDGE).recall == 1.0


# ---------------------------------------------------------------- entailment

def test_kb_entailment_is_not_string_containment():
    # "Drozen" and "Ada Brenn" both appear in the document, but it states where she lives, not where she was born
    assert not JUDGE([D_LIVES], "Ada Brenn was born in Drozen.")
    assert JUDGE([D_LIVES], "Ada Brenn lives in Drozen.")
    assert not JUDGE([D_FOUNDED], "Vorla Works is a company.")  # asserts nothing checkable
    assert not JUDGE([], "Vorla Works was founded in 1832.")
    # documents without recorded claims are read from their text
    assert JUDGE([Doc("x", "Vorla Works was established in 1832. It is old.")], "Vorla Works was founded in 1832.")


def test_nli_entailment_adapter_reads_the_entailment_label(tmp_path):
    torch = pytest.importorskip("torch")
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast
    from tokenizers import Tokenizer, models, pre_tokenizers

    from apps.rag.entailment import NLIEntailment

    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = BertTokenizerFast(tokenizer_object=raw, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                            sep_token="[SEP]")
    for entail_bias, expected in ((10.0, True), (-10.0, False)):
        cfg = BertConfig(vocab_size=4, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8,
                         num_labels=3, id2label={0: "contradiction", 1: "neutral", 2: "entailment"},
                         label2id={"contradiction": 0, "neutral": 1, "entailment": 2})
        model = BertForSequenceClassification(cfg)
        with torch.no_grad():
            model.classifier.weight.zero_()
            model.classifier.bias.copy_(torch.tensor([0.0, 0.0, entail_bias]))
        folder = tmp_path / f"nli{entail_bias}"
        model.save_pretrained(folder)
        tok.save_pretrained(folder)
        judge = NLIEntailment(str(folder), device="cpu")
        assert judge([D_FOUNDED], "Vorla Works was founded in 1832.") is expected
        assert citation_scores("Vorla Works was founded in 1832 [1].", [D_FOUNDED], judge).recall == float(expected)
    cfg = BertConfig(vocab_size=4, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8,
                     num_labels=2, id2label={0: "yes", 1: "no"}, label2id={"yes": 0, "no": 1})
    BertForSequenceClassification(cfg).save_pretrained(tmp_path / "bad")
    tok.save_pretrained(tmp_path / "bad")
    with pytest.raises(ValueError, match="names no single entailment class"):
        NLIEntailment(str(tmp_path / "bad"), device="cpu")


# ---------------------------------------------------------------- rule-written answers

def _example(docs, facts, answers):
    return Example("q", "Where was the founder of Vorla Works born?", answers, docs, "distract", "two_hop", facts)


def test_written_answer_cites_the_document_stating_each_fact():
    ex = _example([D_OTHER, D_BORN, D_FOUNDER], [("Vorla Works", "founded_by", "Ada Brenn"), ("Ada Brenn", "born_in", "Pelka")],
                  [["Pelka"]])
    answer = write_answer(ex)
    assert answer == "Vorla Works was founded by Ada Brenn [3]. Ada Brenn was born in Pelka [2]."
    assert answer_row(answer, ex.answers, ex.docs, JUDGE)["citation_f1"] == 1.0
    multi = _example([D_PUMPS, D_OTHER, D_TURBINES], [("Vorla Works", "products", "turbines"),
                                                      ("Vorla Works", "products", "pumps")], [["turbines"], ["pumps"]])
    written = write_answer(multi)
    assert written == "Vorla Works makes turbines [3] and pumps [1]."
    assert answer_row(written, multi.answers, multi.docs, JUDGE)["citation_recall"] == 1.0
    assert write_answer(_example([D_OTHER], ex.facts, ex.answers)) is None


def test_citation_correction_degradation_and_renumbering():
    docs = [D_OTHER, D_BORN, D_FOUNDER, D_LIVES]
    wrong = "Vorla Works was founded by Ada Brenn [1][2]. Ada Brenn was born in Pelka. She likes tea [4]."
    fixed = correct_citations(wrong, docs, JUDGE)
    assert fixed == "Vorla Works was founded by Ada Brenn [3]. Ada Brenn was born in Pelka [2]."
    assert minimal_support("Vorla Works was founded by Ada Brenn, born in Pelka.", docs, JUDGE) == [2, 3]
    assert correct_citations("Nothing to support [1].", docs, JUDGE) is None
    rng = random.Random(0)
    for _ in range(10):
        bad = degrade_citations(fixed, len(docs), rng)
        assert bad != fixed
        assert answer_row(bad, [["Pelka"]], docs, JUDGE)["citation_f1"] < 1.0
    assert renumber("A [1][2]. B [3].", {1: 4, 2: 2}) == "A [4][2]. B [103]."


# ---------------------------------------------------------------- pairs

def test_stage_pairs_prefer_the_better_answer():
    _, train, _ = embedded_world()
    # a two-hop question whose subset keeps one of its two golden documents (the seeded draw decides which)
    q = next(q for q in train if q.kind == "two_hop"
             and any(d.golden for d in stage_prompts("informativeness", [q], seed=0)[1]["example"].docs))
    prompts = stage_prompts("informativeness", [q], seed=0)
    assert [p["variant"] for p in prompts] == ["full", "subset"]
    full, sub = prompts[0]["pair_example"], prompts[1]["example"]
    assert len(sub.docs) < len(full.docs)
    good = write_answer(full)
    bad = "I do not know."
    cands = score_candidates(to_candidates(prompts, [[good, bad], [bad, bad]]), {q.qid: full}, KBEntailment(embedded_world()[0]))
    pairs = build_pairs("informativeness", cands, {q.qid: full}, KBEntailment(embedded_world()[0]), seed=0)
    assert len(pairs) == 1 and pairs[0].chosen == good and pairs[0].rejected == bad
    # the subset's answer is renumbered into the full prompt's numbering
    sub_answer = write_answer(sub)
    assert sub_answer is not None
    moved = to_candidates(prompts, [[bad], [sub_answer]])[1].metadata["as_pair_answer"]
    assert answer_row(moved, full.answers, full.docs, KBEntailment(embedded_world()[0]))["citation_recall"] == 1.0


def test_citation_stage_pairs_differ_only_in_citations():
    kb, train, _ = embedded_world()
    judge = KBEntailment(kb)
    q = next(q for q in train if q.kind == "single")
    prompts = stage_prompts("citation", [q], seed=0)
    full = prompts[0]["pair_example"]
    good = write_answer(full)
    uncited = remove_citations(good)
    cands = score_candidates(to_candidates(prompts, [[uncited, "nothing"]]), {q.qid: full}, judge)
    [pair] = build_pairs("citation", cands, {q.qid: full}, judge, seed=0)
    assert pair.chosen == good and pair.rejected == uncited and pair.metadata["rejected_from"] == "sample"
    assert remove_citations(pair.chosen) == remove_citations(pair.rejected)


# ---------------------------------------------------------------- data and retrieval

def test_embedded_world_is_split_by_entity_and_deterministic():
    kb, train, heldout = embedded_world()
    subject = lambda q: q.facts[0][0]  # noqa: E731
    assert not {subject(q) for q in train} & {subject(q) for q in heldout}
    assert {q.kind for q in heldout} == {"single", "multi", "two_hop"}
    assert [q.question for q in load_questions("embedded:heldout", limit=5)] == \
        [q.question for q in load_questions("embedded:heldout", limit=5)]
    ex = examples(heldout[:20], ["golden", "distract", "mislead"], seed=0)
    for e in ex:
        assert any(d.golden for d in e.docs)
        assert len(e.docs) == (sum(d.golden for d in e.docs) if e.setting == "golden" else 5)
        if e.setting == "mislead":
            [bad] = [d for d in e.docs if d.kind == "misleading"]
            assert not all(kb.is_true(c) for c in bad.claims) and bad.title != e.facts[-1][0]
        assert write_answer(e) is not None


def test_bm25_retrieves_golden_passages():
    _, train, heldout = embedded_world()
    retriever = BM25Retriever(world_corpus(train + heldout))
    single = [q for q in heldout if q.kind == "single"][:30]
    assert recall_at_k(retriever, single, 5) > 0.8


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_alce_style_files_load(tmp_path):
    path = _write(tmp_path / "asqa.jsonl", [
        json.dumps({"question": "q1", "qa_pairs": [{"short_answers": ["a", "b"]}, {"short_answers": ["c"]}],
                    "docs": [{"title": "t", "text": "x", "answers_found": [0, 1]}, {"title": "u", "text": "y"}],
                    "answer": "long"}),
        "",
        json.dumps({"question": "q2", "answers": ["Paris", "paris, france"], "docs": [{"title": "t", "text": "x"}]}),
    ])
    q1, q2 = load_file(path)
    assert q1.answers == [["a", "b"], ["c"]] and q1.target == "long"
    assert [d.golden for d in q1.pools["given"]] == [True, False]
    assert q2.answers == [["Paris", "paris, france"]] and q2.qid == "line3"
    [ex] = examples([q2], ["golden"], seed=0)
    assert ex.setting == "given" and ex.docs[0].title == "t"


@pytest.mark.parametrize("line, message", [
    ('{"answers": ["a"], "docs": [{"title": "t", "text": "x"}]}', ":2: field 'question'"),
    ('{"question": "q", "docs": [{"title": "t", "text": "x"}]}', ":2: missing field 'answers'"),
    ('{"question": "q", "answers": ["a"], "docs": []}', ":2: field 'docs'"),
    ('{"question": "q", "answers": ["a"], "docs": [{"title": "t"}]}', ":2: field 'docs[0].text'"),
    ('{"question": "q", "qa_pairs": [{"short_answers": []}], "docs": [{"title": "t", "text": "x"}]}',
     ":2: field 'qa_pairs[0].short_answers'"),
    ('{"question": "q", "answers": [1], "docs": [{"title": "t", "text": "x"}]}', ":2: field 'answers'"),
    ('{"question": "q", "answers": ["a"], "docs": [{"title": "t", "text": "x"}]', ":2: invalid JSON"),
])
def test_malformed_files_fail_with_one_line(tmp_path, line, message):
    good = '{"question": "q", "answers": ["a"], "docs": [{"title": "t", "text": "x"}]}'
    path = _write(tmp_path / "bad.jsonl", [good, line])
    with pytest.raises(RecordError) as info:
        load_file(path)
    text = str(info.value)
    assert "\n" not in text and text.startswith(f"{path}:") and message in text


def test_dense_retriever_ranks_by_mean_pooled_cosine(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import BertConfig, BertModel, BertTokenizerFast

    from apps.rag.retrieval import DenseRetriever, make_retriever

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "vorla", "works", "kessim", "mills", "founded", "drozen"]
    raw = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = BertTokenizerFast(tokenizer_object=raw, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
                            do_lower_case=True)
    model = BertModel(BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=16))
    model.save_pretrained(tmp_path / "enc")
    tok.save_pretrained(tmp_path / "enc")
    docs = [Doc("Kessim Mills", "Kessim Mills founded"), Doc("Vorla Works", "Vorla Works founded"), Doc("Drozen", "Drozen")]
    retriever = make_retriever(str(tmp_path / "enc"), docs)
    assert isinstance(retriever, DenseRetriever)
    # an exact copy of a document's text embeds identically, so it ranks first
    assert retriever.search("Vorla Works. Vorla Works founded", 1)[0].title == "Vorla Works"
    assert retriever.search("Kessim Mills. Kessim Mills founded", 1)[0].title == "Kessim Mills"


def test_document_files_load_or_fail_naming_line_and_field(tmp_path):
    from apps.rag.data import load_docs

    good = json.dumps({"title": "t", "text": "x"})
    assert load_docs(_write(tmp_path / "docs.jsonl", [good, "", good])) == [Doc("t", "x"), Doc("t", "x")]
    path = _write(tmp_path / "bad.jsonl", [good, "", json.dumps({"title": "t", "text": 5})])
    with pytest.raises(RecordError, match=r"bad.jsonl:3: field 'doc.text' must be a string$"):
        load_docs(path)


def test_request_prompts_parse_or_fail_naming_the_field():
    from apps.rag.infer import parse_prompt

    assert parse_prompt("Who founded Vorla Works?") == ("Who founded Vorla Works?", None)
    q, docs = parse_prompt(json.dumps({"question": "q", "docs": [{"title": "t", "text": "x"}]}))
    assert q == "q" and docs == [Doc("t", "x")]
    assert parse_prompt(json.dumps({"question": "q"})) == ("q", None)
    for bad, fragment in (("{oops", "not valid JSON"), (json.dumps({"question": 3}), "'question'"),
                          (json.dumps({"question": "q", "docs": [{"title": 1, "text": "x"}]}), "'docs\\[0\\].title'"),
                          (json.dumps({"question": "q", "docs": {}}), "'docs'")):
        with pytest.raises(ValueError, match=fragment):
            parse_prompt(bad)
