"""Slides documents: the embedded paper generator, Markdown round trip, PDF reading and one-line errors."""

from __future__ import annotations

import dataclasses
import re
import textwrap

import pytest

from apps.slides.categories import CATEGORIES, categorize
from apps.slides.documents import (
    HEADINGS,
    MAX_WORDS,
    MIN_WORDS,
    Document,
    DocumentError,
    Section,
    generate_documents,
    load_document,
    read_markdown,
    read_pdf,
    split_sentences,
    to_markdown,
)

DOCS = generate_documents(300, 0)
# A number standing alone (not part of a name such as "TernGraph-2k", "NDCG@10" or "DeepLabv3").
NUMBER = re.compile(r"(?<![\w@.,-])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w@-]|[.,]\d)")


def _numbers(text: str) -> list[str]:
    return NUMBER.findall(text)


def _value(text: str) -> float:
    return float(text.replace(",", ""))


def _error(call, path) -> str:
    """The DocumentError message of call(path), checked to be one line naming the file."""
    with pytest.raises(DocumentError) as info:
        call(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert path.name in message
    return message


# ----------------------------------------------------------------------------------------------------
# Generator


def test_generator_is_deterministic_and_stable_per_index():
    assert generate_documents(12, 5) == generate_documents(12, 5)
    assert generate_documents(20, 5)[:12] == generate_documents(12, 5)
    assert generate_documents(3, 5)[2] == generate_documents(30, 5)[2]
    assert generate_documents(5, 5) != generate_documents(5, 6)
    doc = generate_documents(4, 9)[3]
    assert doc.source == "embedded:9:3"
    assert len({d.id for d in DOCS}) == len(DOCS)


def test_every_heading_maps_to_its_category():
    for category, headings in HEADINGS.items():
        for heading in headings:
            assert categorize(heading) == category, heading
    for doc in DOCS:
        for sec in doc.sections:
            assert sec.category in CATEGORIES and sec.category != "title"
            assert categorize(sec.heading) == sec.category, (doc.id, sec.heading)


def test_section_presence_and_order():
    paper_order = ["motivation", "background", "problem", "related", "method", "dataset", "experiments",
                   "related", "future", "conclusion"]
    seen_optional = set()
    for doc in DOCS:
        cats = doc.categories()
        assert {"motivation", "method", "experiments", "conclusion"} <= set(cats)
        assert len(cats) == len(set(cats))
        positions = [paper_order.index(c) if c != "related" else None for c in cats]
        known = [p for p in positions if p is not None]
        assert known == sorted(known)
        rel = cats.index("related") if "related" in cats else None
        if rel is not None:  # related sits just before method or just after experiments
            assert cats[rel + 1] == "method" or cats[rel - 1] == "experiments"
        seen_optional |= set(cats) - {"motivation", "method", "experiments", "conclusion"}
    assert seen_optional == {"background", "problem", "related", "dataset", "future"}


def test_word_range_and_sentence_shape():
    words = [doc.words() for doc in DOCS]
    assert MIN_WORDS <= min(words) and max(words) <= MAX_WORDS
    assert max(words) - min(words) > 60
    for doc in DOCS:
        assert 2 <= len(doc.authors) <= 4
        assert re.fullmatch(r"[A-Z][a-z]+[A-Z][a-z]+: .+ for .+", doc.title)
        for sec in doc.sections:
            assert 2 <= len(sec.sentences) <= 4
            for sentence in sec.sentences:
                assert sentence.endswith(".") and sentence[0].isupper()
                assert 8 <= len(sentence.split()) <= 22, sentence


def test_documents_vary():
    methods = {d.title.split(":")[0] for d in DOCS}
    fields = {d.title.split(" for ")[-1] for d in DOCS}
    section_sets = {tuple(d.categories()) for d in DOCS}
    headline = {d.section("experiments").sentences[0] for d in DOCS}
    assert len(methods) > 200 and len(fields) == 10 and len(section_sets) > 30 and len(headline) == len(DOCS)
    metrics = {d.section("experiments").table[0][1] for d in DOCS}
    assert {"F1", "BLEU", "WER", "mIoU", "NDCG@10"} <= metrics


def test_experiment_numbers_agree_with_the_table():
    for doc in DOCS:
        method = doc.title.split(":")[0]
        exp = doc.section("experiments")
        header, *rows = exp.table
        assert header[0] == "Method" and 2 <= len(header) <= 3 and 2 <= len(rows) <= 4
        assert rows[-1][0] == method and all(len(r) == len(header) for r in rows)
        cells = {c for r in rows for c in r[1:]}
        assert all(NUMBER.fullmatch(c) for c in cells)
        main = exp.sentences[0]
        numbers = _numbers(main)
        assert len(numbers) == 2 and set(numbers) <= cells, main
        ours, theirs = numbers
        assert rows[-1][1] == ours
        best_name = next(r[0] for r in rows[:-1] if r[1] == theirs)
        assert best_name in main and method in main and header[1] in main
        higher = " reaches " in main
        baseline_values = [_value(r[1]) for r in rows[:-1]]
        best = max(baseline_values) if higher else min(baseline_values)
        assert _value(theirs) == best
        assert (_value(ours) > best) if higher else (_value(ours) < best)
        # The second metric's sentence quotes table numbers too.
        if len(header) == 3:
            second = exp.sentences[1]
            assert header[2] in second and set(_numbers(second)) <= {r[2] for r in rows}
        # An ablation lands between the best baseline and the method.
        for sentence in exp.sentences:
            if sentence.startswith("Removing"):
                ablated = _value(_numbers(sentence)[0])
                assert min(_value(ours), best) <= ablated <= max(_value(ours), best)
        # The conclusion restates the headline number; stated gains are the table's difference.
        conclusion = doc.section("conclusion").sentences
        assert ours in _numbers(conclusion[0]) and method in conclusion[0]
        gain = abs(_value(ours) - best)
        for sentence in (*conclusion, *doc.section("motivation").sentences):
            if " by " in sentence and (" beats " in sentence or " over the strongest" in sentence):
                assert abs(_value(_numbers(sentence.split(" by ")[1])[0]) - gain) < 1e-9, sentence


def test_dataset_splits_add_up():
    checked = 0
    for doc in DOCS:
        sec = doc.section("dataset")
        if sec is None:
            continue
        total = _value(_numbers(sec.sentences[0])[0])
        train, dev, test = (_value(x) for x in _numbers(sec.sentences[1]))
        assert train + dev + test == total and train > dev and train > test
        checked += 1
    assert checked > 100


def test_document_accessors():
    doc = DOCS[0]
    text = doc.full_text()
    assert text.startswith(doc.title + "\n")
    for sec in doc.sections:
        assert sec.heading in text and all(s in text for s in sec.sentences)
        assert all(c in text for row in sec.table for c in row)
    assert doc.words() == len(text.split())
    assert doc.section("experiments").table
    assert doc.section("nonexistent") is None
    assert doc.categories() == [s.category for s in doc.sections]
    mixed = dataclasses.replace(doc, sections=(Section("Appendix", None, ("Extra text.",)), *doc.sections))
    assert mixed.categories() == doc.categories()


# ----------------------------------------------------------------------------------------------------
# Sentences and Markdown


def test_sentence_splitter_keeps_abbreviations_and_decimals():
    text = ("We follow Okafor et al. (2021) closely. Strong encoders, e.g. BERT, help. "
            "Fig. 2 shows 71.3 F1 against 68.2 for BM25. See Sec. 4 and J. Park's notes! "
            "Is it 12,400 items? 3 annotators agreed, i.e. most did.")
    assert split_sentences(text) == [
        "We follow Okafor et al. (2021) closely.",
        "Strong encoders, e.g. BERT, help.",
        "Fig. 2 shows 71.3 F1 against 68.2 for BM25.",
        "See Sec. 4 and J. Park's notes!",
        "Is it 12,400 items?",
        "3 annotators agreed, i.e. most did.",
    ]


def test_markdown_round_trip(tmp_path):
    for doc in DOCS:
        path = tmp_path / f"{doc.id}.md"
        path.write_text(to_markdown(doc), encoding="utf-8")
        back = read_markdown(path)
        assert back.id == doc.id and back.source == str(path)
        assert dataclasses.replace(back, source=doc.source) == doc


def test_to_markdown_layout():
    doc = DOCS[1]
    lines = to_markdown(doc).splitlines()
    assert lines[0] == f"# {doc.title}"
    assert lines[1] == "Authors: " + ", ".join(doc.authors)
    assert lines[2] == "" and lines[3] == f"## {doc.sections[0].heading}"
    assert lines[4] == " ".join(doc.sections[0].sentences)
    header = doc.section("experiments").table[0]
    assert "| " + " | ".join(header) + " |" in lines
    assert "| " + " | ".join("---" for _ in header) + " |" in lines


def test_read_markdown_handles_real_world_markup(tmp_path):
    text = textwrap.dedent("""\
        <!-- draft -->
        # Fast Retrieval for Everyone

        authors: Ana Silva; Kofi Mensah and Lina Berg

        We study **fast** retrieval, e.g. BM25 with [learned weights](https://example.org).
        It works.

        ## 1 Introduction
        Retrieval is slow
        when corpora are large. Fig. 2 shows the gap.

        - First bullet point
        - Second bullet: 71.3 F1

        #### A deeper heading
        Deeper text stays in the introduction.

        ```python
        print("code is skipped")
        ```

        ### Results ###
        | Method | F1 |
        |:------ | --:|
        | BM25 | 68.2 |
        | Ours \\| v2 | 71.3 |

        Text after the table.

        | Second | table |
        | --- | --- |
        | is | skipped |

        ## Related Work
        """)
    path = tmp_path / "paper.md"
    path.write_text(text, encoding="utf-8")
    doc = read_markdown(path)
    assert doc.id == "paper" and doc.title == "Fast Retrieval for Everyone"
    assert doc.authors == ("Ana Silva", "Kofi Mensah", "Lina Berg")
    assert [s.heading for s in doc.sections] == ["Abstract", "1 Introduction", "Results", "Related Work"]
    assert [s.category for s in doc.sections] == [None, "motivation", "experiments", "related"]
    abstract, intro, results, related = doc.sections
    assert abstract.sentences == ("We study fast retrieval, e.g. BM25 with learned weights.", "It works.")
    assert intro.sentences == (
        "Retrieval is slow when corpora are large.", "Fig. 2 shows the gap.", "First bullet point.",
        "Second bullet: 71.3 F1.", "Deeper text stays in the introduction.")
    assert results.table == (("Method", "F1"), ("BM25", "68.2"), ("Ours | v2", "71.3"))
    assert results.sentences == ("Text after the table.",)
    assert related.sentences == () and related.table == ()


@pytest.mark.parametrize("suffix", [".md", ".markdown", ".txt"])
def test_load_document_markdown_suffixes(tmp_path, suffix):
    path = tmp_path / f"paper{suffix}"
    path.write_text(to_markdown(DOCS[2]), encoding="utf-8")
    doc = load_document(path)
    assert doc.sections == DOCS[2].sections and doc.id == "paper"


def test_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "bom.md"
    path.write_bytes(b"\xef\xbb\xbf" + to_markdown(DOCS[3]).encode())
    assert load_document(path).title == DOCS[3].title


# ----------------------------------------------------------------------------------------------------
# PDF


def _write_pdf(path, lines: list[str], title: str | None = None) -> None:
    """A PDF with one line of text per entry (about 60 lines a page), drawn by matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    per_page = 60
    with matplotlib.rc_context({"pdf.fonttype": 42}), PdfPages(path, metadata={"Title": title}) as pdf:
        for start in range(0, max(len(lines), 1), per_page):
            fig = plt.figure(figsize=(8.5, 11))
            for i, line in enumerate(lines[start : start + per_page]):
                fig.text(0.05, 0.97 - i * 0.0155, line, fontsize=8)
            pdf.savefig(fig)
            plt.close(fig)


def _pdf_lines(doc: Document) -> tuple[list[str], list[str]]:
    """The document laid out as PDF lines, and the headings as they should come back."""
    lines, headings = [doc.title, ", ".join(doc.authors)], []
    for i, sec in enumerate(doc.sections):
        style = i % 3
        shown = [f"{i + 1} {sec.heading}", sec.heading.upper(), sec.heading][style]
        lines.append(shown)
        headings.append(sec.heading.upper() if style == 1 else sec.heading)
        lines += textwrap.wrap(" ".join(sec.sentences), 110, break_on_hyphens=False)
    return lines, headings


def test_read_pdf_generated_paper(tmp_path):
    for doc in DOCS[:2]:
        path = tmp_path / f"{doc.id}.pdf"
        lines, headings = _pdf_lines(doc)
        _write_pdf(path, lines)
        back = load_document(path)
        assert back.id == doc.id and back.source == str(path)
        assert back.title == doc.title and back.authors == doc.authors
        assert [s.heading for s in back.sections] == headings
        assert back.categories() == doc.categories()
        for got, want in zip(back.sections, doc.sections):
            assert got.sentences == want.sentences


def test_read_pdf_headings_hyphens_and_metadata_title(tmp_path):
    lines = [
        "Learning to Fold Faster",
        "Sana Rahman1, Omar Farouk2*",
        "University of Somewhere",
        "Abstract—We fold proteins, e.g. small ones. Fig. 2 shows 41.5 recovery.",
        "I. INTRODUCTION",
        "Folding is a hard prob-",
        "lem for models such as ESM-",
        "IF and for the NLLB-",
        "600M translator",
        "II. Method",
        "Our method uses three layers.",
        "2 encoders share weights",
        "3.1 Results on ReefQA",
        "It reaches 41.5 recovery.",
        "Concluding Thoughts and Outlook",
        "We will go further.",
    ]
    path = tmp_path / "fold.pdf"
    _write_pdf(path, lines, title="Learning to Fold Faster")
    doc = read_pdf(path)
    assert doc.title == "Learning to Fold Faster"
    assert doc.authors == ("Sana Rahman", "Omar Farouk")
    assert [s.heading for s in doc.sections] == [
        "Abstract", "INTRODUCTION", "Method", "Results on ReefQA", "Concluding Thoughts and Outlook"]
    assert [s.category for s in doc.sections] == [None, "motivation", "method", "experiments", "future"]
    assert doc.sections[0].sentences == ("We fold proteins, e.g. small ones.", "Fig. 2 shows 41.5 recovery.")
    assert doc.sections[1].sentences == (
        "Folding is a hard problem for models such as ESM-IF and for the NLLB-600M translator.",)
    assert doc.sections[2].sentences == ("Our method uses three layers.", "2 encoders share weights.")


def test_pdf_preamble_without_headings_becomes_abstract(tmp_path):
    path = tmp_path / "plain.pdf"
    _write_pdf(path, ["Plain Notes", "Some text without any heading at all", "More text here."])
    doc = load_document(path)
    assert doc.title == "Plain Notes" and doc.authors == ()
    assert [s.heading for s in doc.sections] == ["Abstract"]
    assert doc.sections[0].sentences == ("Some text without any heading at all More text here.",)


# ----------------------------------------------------------------------------------------------------
# Errors


def test_pdf_errors(tmp_path):
    garbage = tmp_path / "garbage.pdf"
    garbage.write_bytes(b"this is not a pdf at all\x00\x01" * 20)
    assert "not a readable PDF" in _error(load_document, garbage)

    good = tmp_path / "good.pdf"
    _write_pdf(good, ["A Title", "1 Introduction", "Some text."])
    truncated = tmp_path / "truncated.pdf"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert "not a readable PDF" in _error(load_document, truncated)

    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    assert "empty file" in _error(load_document, empty)

    blank = tmp_path / "blank.pdf"
    _write_pdf(blank, [])
    assert "no extractable text" in _error(load_document, blank)


def test_encrypted_pdf_error(tmp_path):
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    writer.encrypt(user_password="secret", algorithm="RC4-128")
    path = tmp_path / "locked.pdf"
    with open(path, "wb") as handle:
        writer.write(handle)
    assert "encrypted" in _error(load_document, path)


def test_markdown_errors(tmp_path):
    empty = tmp_path / "empty.md"
    empty.write_text("  \n\n", encoding="utf-8")
    assert "empty file" in _error(load_document, empty)

    untitled = tmp_path / "untitled.md"
    untitled.write_text("## Introduction\nText without a title.\n", encoding="utf-8")
    assert "title" in _error(load_document, untitled)

    bad_table = tmp_path / "table.md"
    bad_table.write_text("# T\n\n## Results\nText.\n\n| A | B | C | D |\n| - | - | - | - |\n| 1 | 2 | 3 |\n")
    assert _error(load_document, bad_table) == f"{bad_table}:8: table row has 3 cells, header has 4"

    hollow = tmp_path / "hollow.md"
    hollow.write_text("# A Title\nAuthors: A B\n\n## Introduction\n\n## Method\n", encoding="utf-8")
    assert read_markdown(hollow).title == "A Title"
    assert _error(load_document, hollow).endswith("empty document (no text in any section)")

    heading = tmp_path / "heading.md"
    heading.write_text("# T\n\n##\nText.\n", encoding="utf-8")
    assert _error(load_document, heading).startswith(f"{heading}:3: empty heading")

    latin = tmp_path / "latin.md"
    latin.write_bytes("# Caf".encode() + b"\xe9 paper\n\n## Intro\nText.\n")
    message = _error(load_document, latin)
    assert "UTF-8" in message and "offset 5" in message and "0xe9" in message


def test_file_errors(tmp_path):
    unknown = tmp_path / "paper.docx"
    unknown.write_bytes(b"PK\x03\x04")
    message = _error(load_document, unknown)
    assert "'.docx'" in message and ".md" in message and ".pdf" in message

    missing = tmp_path / "missing.md"
    assert "no such file" in _error(load_document, missing)
    assert "no such file" in _error(read_pdf, tmp_path / "missing.pdf")
    assert "directory" in _error(read_markdown, tmp_path)
