"""apps/slides/pptx_io.py: templates, writing, reading, package checks, template fit and rendering."""

from __future__ import annotations

import io
import os
import random
import shutil
import stat
import time
import zipfile
from pathlib import Path

import pytest
from lxml import etree
from pptx import Presentation
from pptx.enum.shapes import PP_PLACEHOLDER
from pptx.util import Inches

from apps.slides.pptx_io import (
    NS,
    TEMPLATES,
    DeckError,
    SlideFit,
    TemplateMetrics,
    build_deck,
    check_package,
    contact_sheet,
    content_layouts,
    embedded_template,
    fit_report,
    fit_slide,
    libreoffice,
    load_template,
    read_deck,
    render_pngs,
)
from apps.slides.categories import categorize
from apps.slides.plan import DeckPlan, SlidePlan

PLAN = DeckPlan((
    SlidePlan("title", "SparseFuse: Learned Sparse Retrieval", "open", "Hello, I am Ada.",
              ("Ada Lovelace", "University of **Nowhere**")),
    SlidePlan("motivation", "Motivation", "why care", "Dense retrieval is slow and BM25 is brittle.",
              ("Dense retrieval is **slow**", "BM25 is **robust** but **brittle**")),
    SlidePlan("method", "Method Overview", "explain", "SparseFuse fuses a sparse encoder with BM25.",
              ("Learned sparse encoder scores passages", "Fused with **BM25** scores")),
    SlidePlan("experiments", "Experiment Setup and Results", "show", "We test on BEIR.",
              ("**+4.1** nDCG@10 on BEIR", "Ablation: **both** parts matter")),
    SlidePlan("conclusion", "Conclusions", "close", "", ("Sparse plus lexical is a strong default",)),
))


def without_purpose(plan: DeckPlan) -> DeckPlan:
    return DeckPlan(tuple(SlidePlan(s.section, s.title, "", s.speech, s.bullets) for s in plan.slides))


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("templates")
    return {name: embedded_template(name, folder) for name in TEMPLATES}


@pytest.fixture(scope="module")
def decks(templates, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("decks")
    return {name: build_deck(PLAN, path, folder / f"{name}.pptx") for name, path in templates.items()}


def one_line_from(exc: pytest.ExceptionInfo, path: Path) -> str:
    message = str(exc.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    return message


# ---------------------------------------------------------------------------------------- templates


def test_embedded_templates_open_without_slides(templates):
    sizes = {}
    for name, path in templates.items():
        prs = load_template(path)
        assert len(prs.slides) == 0
        sizes[name] = (prs.slide_width, prs.slide_height)
        title_layout, content_layout = content_layouts(prs)
        assert (title_layout.name, content_layout.name) == ("Title Slide", "Title and Content")
        assert check_package(path) == []
    assert sizes["plain"] == sizes["large"] == (9144000, 6858000)
    assert sizes["wide"] == (12192000, 6858000)


def test_wide_template_is_restyled(templates):
    with zipfile.ZipFile(templates["wide"]) as zf:
        theme = etree.fromstring(zf.read("ppt/theme/theme1.xml"))
        master = etree.fromstring(zf.read("ppt/slideMasters/slideMaster1.xml"))
    fonts = {e.get("typeface") for e in theme.iterfind(".//a:fontScheme/*/a:latin", NS)}
    assert fonts == {"DejaVu Sans"}
    assert theme.find(".//a:clrScheme/a:accent1/a:srgbClr", NS).get("val") == "2A7AB0"
    title_ext = master.find(".//p:sp/p:spPr/a:xfrm/a:ext", NS)
    assert int(title_ext.get("cx")) == round(8229600 * 4 / 3)
    assert master.find("p:txStyles/p:titleStyle/a:lvl1pPr/a:defRPr", NS).get("sz") == "3600"


def test_embedded_template_is_written_once_and_names_are_checked(tmp_path):
    path = embedded_template("plain", tmp_path)
    before = path.stat().st_mtime_ns
    assert embedded_template("plain", tmp_path) == path
    assert path.stat().st_mtime_ns == before
    with pytest.raises(ValueError, match="plain, wide, large"):
        embedded_template("fancy", tmp_path)


def test_potx_template_is_accepted(templates, tmp_path):
    data = templates["plain"].read_bytes()
    potx = tmp_path / "template.potx"
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            blob = src.read(info)
            if info.filename == "[Content_Types].xml":
                blob = blob.replace(b"presentation.main+xml", b"template.main+xml")
            dst.writestr(info, blob)
    potx.write_bytes(out.getvalue())
    deck = build_deck(PLAN, potx, tmp_path / "deck.pptx")
    assert check_package(deck) == []
    assert read_deck(deck) == without_purpose(PLAN)


def test_unreadable_templates_raise_one_line_errors(tmp_path):
    corrupt = tmp_path / "corrupt.pptx"
    corrupt.write_bytes(random.Random(0).randbytes(4096))
    with pytest.raises(DeckError) as exc:
        load_template(corrupt)
    assert "not a readable .pptx (File is not a zip file)" in one_line_from(exc, corrupt)

    not_pptx = tmp_path / "notes.pptx"
    with zipfile.ZipFile(not_pptx, "w") as zf:
        zf.writestr("hello.txt", "not a presentation")
    with pytest.raises(DeckError) as exc:
        load_template(not_pptx)
    assert "not a readable .pptx" in one_line_from(exc, not_pptx)

    word = tmp_path / "word.pptx"
    with zipfile.ZipFile(word, "w") as zf:
        zf.writestr("[Content_Types].xml", '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                    '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
                    'officedocument.wordprocessingml.document.main+xml"/></Types>')
        zf.writestr("word/document.xml", "<w:document/>")
    with pytest.raises(DeckError) as exc:
        load_template(word)
    assert one_line_from(exc, word).endswith("not a readable .pptx (no presentation part among its content types)")

    missing = tmp_path / "missing.pptx"
    with pytest.raises(DeckError) as exc:
        load_template(missing)
    assert "cannot read" in one_line_from(exc, missing)


def test_template_without_content_layout_is_refused(tmp_path):
    prs = Presentation()
    for layout in list(prs.slide_layouts):
        if any(ph.placeholder_format.type in (PP_PLACEHOLDER.BODY, PP_PLACEHOLDER.OBJECT) for ph in layout.placeholders):
            prs.slide_layouts.remove(layout)
    assert len(prs.slide_layouts) == 3  # Title Slide, Title Only, Blank
    path = tmp_path / "template.pptx"
    prs.save(path)
    with pytest.raises(DeckError) as exc:
        load_template(path)
    assert one_line_from(exc, path).endswith("no layout with a title and a body placeholder")


def test_missing_title_slide_layout_falls_back_to_content_layout(tmp_path):
    prs = Presentation()
    prs.slide_layouts.remove(prs.slide_layouts.get_by_name("Title Slide"))
    path = tmp_path / "template.pptx"
    prs.save(path)
    title_layout, content_layout = content_layouts(load_template(path))
    assert title_layout is content_layout
    deck = build_deck(PLAN, path, tmp_path / "deck.pptx")
    assert check_package(deck) == []
    back = read_deck(deck)
    assert back.slides[0].title == PLAN.slides[0].title
    assert back.slides[0].bullets == PLAN.slides[0].bullets
    assert back.slides[1:] == without_purpose(PLAN).slides[1:]


# ------------------------------------------------------------------------------------------ writing


def test_built_decks_are_sound_and_round_trip(decks):
    assert all(categorize(s.title) == s.section for s in PLAN.slides[1:])  # what the round trip needs
    for name, deck in decks.items():
        assert check_package(deck) == [], name
        assert read_deck(deck) == without_purpose(PLAN), name


def test_notes_on_every_slide_and_no_empty_placeholders(decks):
    prs = Presentation(decks["plain"])
    assert len(prs.slides) == len(PLAN.slides)
    for slide, plan in zip(prs.slides, PLAN.slides):
        assert slide.has_notes_slide
        assert slide.notes_slide.notes_text_frame.text == plan.speech
        for ph in slide.placeholders:
            assert ph.text_frame.text.strip(), f"empty placeholder on {plan.title!r}"
    first = prs.slides[0]
    assert {ph.placeholder_format.type for ph in first.placeholders} == {PP_PLACEHOLDER.CENTER_TITLE, PP_PLACEHOLDER.SUBTITLE}


def test_bold_spans_become_bold_runs(decks):
    slide = Presentation(decks["plain"]).slides[1]
    body = [ph for ph in slide.placeholders if ph.placeholder_format.idx == 1][0]
    runs = [(r.text, bool(r.font.bold)) for r in body.text_frame.paragraphs[1].runs]
    assert runs == [("BM25 is ", False), ("robust", True), (" but ", False), ("brittle", True)]
    assert "**" not in body.text_frame.text


def test_adjacent_bold_runs_are_merged_when_read(tmp_path):
    prs = Presentation()
    slide = prs.slides.add_slide(prs.slide_layouts[1])
    slide.shapes.title.text = "Method"
    paragraph = slide.placeholders[1].text_frame.paragraphs[0]
    for text, bold in (("Uses ", False), ("BM", True), ("25", True), (" and ", False), ("SPLADE", True)):
        run = paragraph.add_run()
        run.text = text
        run.font.bold = bold or None
    path = tmp_path / "deck.pptx"
    prs.save(path)
    assert read_deck(path).slides[0].bullets == ("Uses **BM25** and **SPLADE**",)


def test_template_slides_are_removed(templates, tmp_path):
    prs = Presentation(templates["plain"])
    for i in range(2):
        slide = prs.slides.add_slide(prs.slide_layouts[1])
        slide.shapes.title.text = f"Old slide {i}"
        slide.notes_slide.notes_text_frame.text = "old notes"
        slide.shapes.add_textbox(Inches(1), Inches(1), Inches(2), Inches(1)).text = "old"
    with_slides = tmp_path / "with_slides.pptx"
    prs.save(with_slides)
    assert len(Presentation(with_slides).slides) == 2

    deck = build_deck(PLAN, with_slides, tmp_path / "deck.pptx")
    assert check_package(deck) == []
    assert read_deck(deck) == without_purpose(PLAN)
    with zipfile.ZipFile(deck) as zf:
        slides = [n for n in zf.namelist() if n.startswith("ppt/slides/slide")]
        notes = [n for n in zf.namelist() if n.startswith("ppt/notesSlides/notesSlide")]
        text = b"".join(zf.read(n) for n in slides + notes)
    assert len(slides) == len(notes) == len(PLAN.slides)
    assert b"Old slide" not in text and b"old notes" not in text


def test_check_package_reports_problems(decks, tmp_path):
    broken = tmp_path / "broken.pptx"
    with zipfile.ZipFile(decks["plain"]) as src, zipfile.ZipFile(broken, "w") as dst:
        for info in src.infolist():
            if info.filename == "ppt/notesSlides/notesSlide2.xml":
                continue
            blob = src.read(info)
            if info.filename == "ppt/presentation.xml":
                blob = blob.replace(b'id="257"', b'id="256"')
            dst.writestr(info, blob)
        dst.writestr("ppt/media/stray.png", b"x")
    problems = check_package(broken)
    assert any("notesSlide2.xml" in p and "missing" in p for p in problems)
    assert any("slide id 256 used 2 times" in p for p in problems)
    assert any("stray.png: orphan part" in p for p in problems)
    assert any("stray.png: no content type" in p for p in problems)
    assert check_package(tmp_path / "nothing.pptx")[0].startswith("not a zip file")


# ------------------------------------------------------------------------------------------ reading


def test_read_deck_heuristics_for_users_decks(tmp_path):
    prs = Presentation()
    cover = prs.slides.add_slide(prs.slide_layouts[0])  # Title Slide
    cover.shapes.title.text = "A Paper"
    cover.placeholders[1].text = "Someone"
    intro = prs.slides.add_slide(prs.slide_layouts[1])
    intro.shapes.title.text = "Introduction"
    intro.placeholders[1].text = "Why it matters"
    loose = prs.slides.add_slide(prs.slide_layouts[6])  # Blank: text boxes only
    loose.shapes.add_textbox(Inches(1), Inches(1), Inches(6), Inches(1)).text = "A Curious Observation"
    box = loose.shapes.add_textbox(Inches(1), Inches(2), Inches(6), Inches(3)).text_frame
    box.text = "first point"
    box.add_paragraph().text = "  "
    box.add_paragraph().text = "second point"
    path = tmp_path / "user.pptx"
    prs.save(path)

    plan = read_deck(path)
    assert plan.sections() == ["title", "motivation", "motivation"]
    assert plan.slides[2].title == "A Curious Observation"
    assert plan.slides[2].bullets == ("first point", "second point")
    assert plan.slides[1].speech == "" and plan.slides[1].purpose == ""


def test_read_deck_first_unknown_slide_is_method(tmp_path):
    prs = Presentation()
    slide = prs.slides.add_slide(prs.slide_layouts[1])
    slide.shapes.title.text = "Something else"
    path = tmp_path / "deck.pptx"
    prs.save(path)
    assert read_deck(path).sections() == ["method"]


def test_read_deck_errors(templates, tmp_path):
    with pytest.raises(DeckError) as exc:
        read_deck(templates["plain"])
    assert one_line_from(exc, templates["plain"]).endswith("the deck has no slides")
    corrupt = tmp_path / "corrupt.pptx"
    corrupt.write_bytes(b"PK\x03\x04" + random.Random(1).randbytes(500))
    with pytest.raises(DeckError) as exc:
        read_deck(corrupt)
    assert "not a readable .pptx" in one_line_from(exc, corrupt)


# ------------------------------------------------------------------------------------- template fit

MEDIUM = (
    "Sparse encoders score passages fast",
    "Hybrid scores beat dense retrieval",
    "Index size stays under ten gigabytes",
    "Ablations confirm both parts matter",
    "Gains hold across all eight datasets",
    "Training uses hard negatives only",
)
LONG = "The learned sparse encoder assigns a weight to every vocabulary term and the fused score adds BM25"


def fit(template: Path, bullets, title="Results", section="experiments") -> SlideFit:
    return fit_slide(SlidePlan(section, title, bullets=tuple(bullets)), TemplateMetrics.of(template))


def test_short_slide_fits_everywhere_long_slide_nowhere(templates):
    for name, path in templates.items():
        short = fit(path, ["Fast", "Accurate", "Simple"])
        assert short.fits and short.title_lines == 1 and short.body_ratio < 0.5, name
        long = fit(path, [LONG] * 12)
        assert not long.fits and long.body_ratio > 1.5, name


def test_the_template_decides_whether_medium_bullets_fit(templates):
    ratios = {name: fit(path, MEDIUM).body_ratio for name, path in templates.items()}
    assert ratios["wide"] < ratios["plain"] <= 1.0 < ratios["large"]
    assert fit(templates["plain"], MEDIUM).fits and not fit(templates["large"], MEDIUM).fits


def test_long_title_does_not_fit(templates):
    title = " ".join(["retrieval"] * 30)
    for name, path in templates.items():
        result = fit(path, ["ok"], title=title)
        assert result.title_lines > 2 and not result.title_fits and not result.fits, name


def test_metrics_resolve_inheritance(templates):
    plain = TemplateMetrics.of(templates["plain"])
    assert plain.content.title.size == 44 and plain.content.body.size == 32
    assert plain.content.body.indent == pytest.approx(27.0)  # bodyStyle lvl1 marL 342900 EMU
    assert plain.content.body.width == pytest.approx((8229600 - 2 * 91440) / 12700)
    assert plain.title_slide.body.indent == 0  # the subtitle's own lstStyle sets marL="0"
    assert plain.content.body.space_before == pytest.approx(0.2 * 1.2 * 32)
    assert TemplateMetrics.of(templates["large"]).content.body.size == 36
    assert TemplateMetrics.of(templates["wide"]).content.body.size == 24


def test_metrics_are_cached_per_mtime(templates, tmp_path):
    path = tmp_path / "t.pptx"
    path.write_bytes(templates["plain"].read_bytes())
    first = TemplateMetrics.of(path)
    assert TemplateMetrics.of(path) is first
    path.write_bytes(templates["large"].read_bytes())
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert TemplateMetrics.of(path).content.body.size == 36


def test_fit_is_fast(templates):
    rng = random.Random(0)
    words = LONG.split() + ["**bold**", "nDCG@10", "BEIR", "x"]
    slides = [SlidePlan("method", " ".join(rng.choices(words, k=rng.randint(2, 9))),
                        bullets=tuple(" ".join(rng.choices(words, k=rng.randint(3, 18))) for _ in range(rng.randint(1, 7))))
              for _ in range(200)]
    plan = DeckPlan(tuple(slides))
    fit_report(plan, templates["wide"])  # warm the metrics and font caches
    start = time.perf_counter()
    report = fit_report(plan, templates["wide"])
    elapsed = time.perf_counter() - start
    assert len(report) == 200
    assert elapsed < 1.0, f"{elapsed:.3f} s for 200 slides"


# ---------------------------------------------------------------------------------------- rendering


def test_render_returns_none_without_tools(decks, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert libreoffice() is None
    assert render_pngs(decks["plain"], tmp_path / "png") is None


def fake_tools(folder: Path, soffice_body: str) -> None:
    folder.mkdir()
    for name, body in (("soffice", soffice_body), ("pdftoppm", "exit 0")):
        script = folder / name
        script.write_text(f"#!/bin/sh\n{body}\n")
        script.chmod(script.stat().st_mode | stat.S_IXUSR)


@pytest.mark.parametrize("body, expected", [
    ("echo 'starting' >&2; echo 'javaldx: broken profile' >&2; exit 3", "soffice failed (exit 3): starting | javaldx: broken profile"),
    ("exit 0", "LibreOffice wrote no PDF"),
    (f"{shutil.which('sleep') or '/bin/sleep'} 10", "soffice timed out after 1 s"),
])
def test_render_failures_raise_one_line_errors(decks, tmp_path, monkeypatch, body, expected):
    fake_tools(tmp_path / "bin", body)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    with pytest.raises(DeckError) as exc:
        render_pngs(decks["plain"], tmp_path / "png", timeout=1)
    assert one_line_from(exc, decks["plain"]).endswith(expected)


def test_contact_sheet(tmp_path):
    from PIL import Image

    pngs = []
    for i, colour in enumerate(["red", "green", "blue", "black"]):
        path = tmp_path / f"slide-{i + 1}.png"
        Image.new("RGB", (40, 30), colour).save(path)
        pngs.append(path)
    sheet = contact_sheet(pngs, tmp_path / "sheet.png", columns=3)
    with Image.open(sheet) as image:
        assert image.size == (3 * 40 + 4 * 8, 2 * 30 + 3 * 8)
        assert image.getpixel((8 + 5, 8 + 5)) == (255, 0, 0)
        assert image.getpixel((8 + 5, 2 * 8 + 30 + 5)) == (0, 0, 0)
    with pytest.raises(ValueError):
        contact_sheet([], tmp_path / "empty.png")


@pytest.mark.skipif(libreoffice() is None, reason="LibreOffice (soffice) is not installed")
@pytest.mark.parametrize("name", TEMPLATES)
def test_libreoffice_renders_every_slide(decks, tmp_path, name):
    pngs = render_pngs(decks[name], tmp_path / "png", dpi=30)
    if pngs is None:
        pytest.skip("pdftoppm (poppler) is not installed")
    assert [p.name for p in pngs] == [f"slide-{n}.png" for n in range(1, len(PLAN.slides) + 1)]
    sheet = contact_sheet(pngs, tmp_path / "sheet.png")
    assert sheet.stat().st_size > 0
