"""Decks as .pptx files: embedded templates, writing and reading plans, template fit and rendering.

- Templates: `embedded_template` writes one of TEMPLATES ("plain": python-pptx's default 4:3 deck,
  "wide": a 16:9 restyle of it, "large": 4:3 with larger text); `load_template` opens and validates
  a user's .pptx or .potx, `content_layouts` picks its title-slide and title-and-content layouts.
- Writing: `build_deck` turns a DeckPlan into a deck on a template (bullets as paragraphs, `**x**`
  as bold runs, the speech draft as speaker notes); `check_package` inspects the saved zip.
- Reading: `read_deck` turns a deck back into a DeckPlan (the sections are a heuristic).
- Fit: `TemplateMetrics.of` resolves the placeholders' boxes and font sizes once per template file,
  `fit_slide` / `fit_report` wrap the text with DejaVu Sans metrics and say what overflows; fast
  enough to score thousands of sampled plans.
- Rendering: `render_pngs` (LibreOffice + poppler, None when either is missing) and `contact_sheet`.

Every file is written through shared.atomic.atomic_writer. Errors about a file are DeckError with a
one-line message that starts with the file's path.
"""

from __future__ import annotations

import io
import math
import os
import posixpath
import re
import shutil
import signal
import subprocess
import tempfile
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote

from lxml import etree
from pptx import Presentation
from pptx.enum.shapes import PP_PLACEHOLDER
from pptx.opc.constants import RELATIONSHIP_TYPE as RT
from pptx.util import Emu

from apps.slides.categories import categorize
from apps.slides.plan import DeckPlan, SlidePlan
from shared.atomic import atomic_writer

NS = {
    "a": "http://schemas.openxmlformats.org/drawingml/2006/main",
    "p": "http://schemas.openxmlformats.org/presentationml/2006/main",
    "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
    "p14": "http://schemas.microsoft.com/office/powerpoint/2010/main",
    "ct": "http://schemas.openxmlformats.org/package/2006/content-types",
    "rel": "http://schemas.openxmlformats.org/package/2006/relationships",
}
EMU_PER_PT = 12700
EMU_PER_INCH = 914400
WIDE_SIZE = (12192000, 6858000)  # 16:9, PowerPoint's "Widescreen"
TEMPLATES = ("plain", "wide", "large")

# Placeholder roles, most preferred kind first. The title slide falls back to body kinds so that the
# content layout can stand in for a missing title-slide layout.
TITLE_KINDS = (PP_PLACEHOLDER.TITLE, PP_PLACEHOLDER.CENTER_TITLE)
CENTER_TITLE_KINDS = (PP_PLACEHOLDER.CENTER_TITLE, PP_PLACEHOLDER.TITLE)
BODY_KINDS = (PP_PLACEHOLDER.OBJECT, PP_PLACEHOLDER.BODY)
SUBTITLE_KINDS = (PP_PLACEHOLDER.SUBTITLE, PP_PLACEHOLDER.OBJECT, PP_PLACEHOLDER.BODY)
META_KINDS = (PP_PLACEHOLDER.DATE, PP_PLACEHOLDER.FOOTER, PP_PLACEHOLDER.SLIDE_NUMBER, PP_PLACEHOLDER.HEADER)

_MAIN_CT = "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml"
_MACRO_MAIN_CT = "application/vnd.ms-powerpoint.presentation.macroEnabled.main+xml"
_OTHER_MAIN_CTS = (
    "application/vnd.openxmlformats-officedocument.presentationml.template.main+xml",
    "application/vnd.openxmlformats-officedocument.presentationml.slideshow.main+xml",
)


class DeckError(ValueError):
    """A deck or template file that cannot be used; the one-line message starts with its path."""


def _q(name: str) -> str:
    """Clark notation for a prefixed name ("r:id" -> "{...relationships}id")."""
    prefix, local = name.split(":")
    return f"{{{NS[prefix]}}}{local}"


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error(path: str | os.PathLike, what: str) -> DeckError:
    return DeckError(f"{path}: {_one_line(what)}")


def _exc_text(exc: BaseException) -> str:
    """An exception's message; KeyError's repr quotes are dropped."""
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    return str(exc) or type(exc).__name__


# --------------------------------------------------------------------------------------- templates


def embedded_template(name: str, folder: Path) -> Path:
    """Write (if missing) and return folder/<name>.pptx, one of TEMPLATES, with no slides."""
    if name not in TEMPLATES:
        raise ValueError(f"unknown template {name!r} (one of: {', '.join(TEMPLATES)})")
    path = Path(folder) / f"{name}.pptx"
    if not path.exists():
        prs = Presentation()
        _STYLERS[name](prs)
        _save(prs, path)
    return path


def _save(prs, path: Path) -> None:
    with atomic_writer(path) as handle:
        prs.save(handle)


def _style_plain(prs) -> None:
    """python-pptx's default template as it is."""


def _style_wide(prs) -> None:
    """16:9 with placeholders stretched to match, DejaVu Sans, a blue-grey palette and smaller text."""
    scale = WIDE_SIZE[0] / prs.slide_width
    prs.slide_width, prs.slide_height = Emu(WIDE_SIZE[0]), Emu(WIDE_SIZE[1])
    for master in prs.slide_masters:
        for element in (master.element, *(layout.element for layout in master.slide_layouts)):
            for xfrm in element.iterfind(".//p:spTree/p:sp/p:spPr/a:xfrm", NS):
                _scale_xfrm(xfrm, scale)
        _set_text_sizes(master.element, title=36, body=(24, 20, 18, 16, 16))
        fill = master.element.find("p:txStyles/p:titleStyle/a:lvl1pPr/a:defRPr/a:solidFill/a:schemeClr", NS)
        if fill is not None:
            fill.set("val", "tx2")  # titles in the theme's dark accent
        theme = master.part.part_related_by(RT.THEME)
        theme.blob = _restyle_theme(theme.blob)


def _style_large(prs) -> None:
    """4:3 with larger text, so the same text overflows sooner."""
    for master in prs.slide_masters:
        _set_text_sizes(master.element, title=48, body=(36, 32, 28, 24, 24))


_STYLERS: dict[str, Callable] = {"plain": _style_plain, "wide": _style_wide, "large": _style_large}


def _scale_xfrm(xfrm, scale: float) -> None:
    off, ext = xfrm.find("a:off", NS), xfrm.find("a:ext", NS)
    if off is not None:
        off.set("x", str(round(int(off.get("x", "0")) * scale)))
    if ext is not None:
        ext.set("cx", str(round(int(ext.get("cx", "0")) * scale)))


def _set_text_sizes(master, *, title: int, body: Sequence[int]) -> None:
    """Set the master's titleStyle level-1 size and bodyStyle level sizes (points)."""
    styles = master.find("p:txStyles", NS)
    _level_rpr(styles.find("p:titleStyle", NS), 1).set("sz", str(title * 100))
    for level, size in enumerate(body, 1):
        _level_rpr(styles.find("p:bodyStyle", NS), level).set("sz", str(size * 100))


def _level_rpr(style, level: int):
    """The defRPr of a style's lvl<level>pPr, created when absent."""
    ppr = style.find(f"a:lvl{level}pPr", NS)
    if ppr is None:
        ppr = etree.SubElement(style, _q(f"a:lvl{level}pPr"))
    rpr = ppr.find("a:defRPr", NS)
    if rpr is None:
        rpr = etree.SubElement(ppr, _q("a:defRPr"))
    return rpr


_WIDE_COLOURS = {"dk2": "1F3B57", "lt2": "E9EEF3", "accent1": "2A7AB0", "accent2": "D9822B",
                 "accent3": "4E9A6B", "accent4": "7D5BA6", "accent5": "3BA3B5", "accent6": "C2493D"}


def _restyle_theme(blob: bytes) -> bytes:
    """The theme with DejaVu Sans as major and minor latin font and the wide palette."""
    root = etree.fromstring(blob)
    fonts = root.find(".//a:fontScheme", NS)
    fonts.set("name", "Slides Wide")
    for which in ("majorFont", "minorFont"):
        fonts.find(f"a:{which}/a:latin", NS).set("typeface", "DejaVu Sans")
    colours = root.find(".//a:clrScheme", NS)
    colours.set("name", "Slides Wide")
    for slot, value in _WIDE_COLOURS.items():
        holder = colours.find(f"a:{slot}", NS)
        for child in list(holder):
            holder.remove(child)
        etree.SubElement(holder, _q("a:srgbClr"), val=value)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)


def _open_presentation(path: str | os.PathLike):
    """Open a .pptx (or .potx / .ppsx) as a python-pptx Presentation; DeckError when unreadable."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise _error(path, f"cannot read ({exc.strerror or exc})") from exc
    try:
        return Presentation(io.BytesIO(_as_presentation_package(data)))
    except Exception as exc:  # python-pptx surfaces KeyError, BadZipFile, ValueError, XML errors...
        raise _error(path, f"not a readable .pptx ({_exc_text(exc)})") from exc


def _as_presentation_package(data: bytes) -> bytes:
    """The package with a template's or slideshow's main content type renamed to a presentation's.

    python-pptx parses .potx/.ppsx fine but refuses their main content type; the renamed package is
    what a deck built from the template should carry anyway.
    """
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        types = zf.read("[Content_Types].xml")
    if not any(ct.encode() in types for ct in (_MAIN_CT, _MACRO_MAIN_CT, *_OTHER_MAIN_CTS)):
        raise ValueError("no presentation part among its content types")
    if not any(ct.encode() in types for ct in _OTHER_MAIN_CTS):
        return data

    def rename(blob: bytes) -> bytes:
        for ct in _OTHER_MAIN_CTS:
            blob = blob.replace(ct.encode(), _MAIN_CT.encode())
        return blob

    return _rewrite_zip(data, {"[Content_Types].xml": rename})


def _rewrite_zip(data: bytes, edits: dict[str, Callable[[bytes], bytes]]) -> bytes:
    """A copy of a zip with some members passed through edit functions."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            blob = src.read(info)
            if info.filename in edits:
                blob = edits[info.filename](blob)
            dst.writestr(info, blob)
    return out.getvalue()


def load_template(path: str | os.PathLike):
    """Open a template (.pptx or .potx) and check it has a content layout; DeckError otherwise."""
    prs = _open_presentation(path)
    try:
        content_layouts(prs)
    except DeckError as exc:
        raise _error(path, str(exc)) from None
    return prs


def _kind(placeholder):
    return placeholder.placeholder_format.type


def _find_placeholder(placeholders: Iterable, kinds: Sequence, *, with_text: bool = False):
    """The first placeholder of the earliest kind in `kinds` (optionally only one holding text)."""
    candidates = list(placeholders)
    for kind in kinds:
        for placeholder in candidates:
            if _kind(placeholder) != kind:
                continue
            if with_text and not (placeholder.has_text_frame and placeholder.text_frame.text.strip()):
                continue
            return placeholder
    return None


def _count(layout, kinds: Sequence) -> int:
    return sum(_kind(placeholder) in kinds for placeholder in layout.placeholders)


def content_layouts(prs) -> tuple:
    """(title_layout, content_layout) of a presentation, chosen by placeholder types.

    The content layout has a title and a body/object placeholder; "Title and Content" by name wins,
    then a layout of type obj/tx, then one with a single body. The title layout has a (centred)
    title and a subtitle, "Title Slide" winning; without one it is the content layout. DeckError
    (without a path) when there is no content layout.
    """
    layouts = [layout for master in prs.slide_masters for layout in master.slide_layouts]
    content = [lay for lay in layouts if _count(lay, TITLE_KINDS) and _count(lay, BODY_KINDS)]
    if not content:
        raise DeckError("no layout with a title and a body placeholder")
    content_layout = min(content, key=lambda lay: (
        lay.name.strip().lower() != "title and content",
        lay.element.get("type") not in ("obj", "tx"),
        _count(lay, BODY_KINDS) != 1,
    ))
    titles = [lay for lay in layouts if _count(lay, TITLE_KINDS) and _count(lay, (PP_PLACEHOLDER.SUBTITLE,))]
    if not titles:
        return content_layout, content_layout
    title_layout = min(titles, key=lambda lay: (
        lay.name.strip().lower() != "title slide",
        lay.element.get("type") != "title",
    ))
    return title_layout, content_layout


def _roles(is_title_slide: bool) -> tuple[Sequence, Sequence]:
    """(title kinds, body kinds) for a slide on the title or the content layout."""
    return (CENTER_TITLE_KINDS, SUBTITLE_KINDS) if is_title_slide else (TITLE_KINDS, BODY_KINDS)


# ----------------------------------------------------------------------------------------- writing


def build_deck(plan: DeckPlan, template: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write `plan` as a deck on `template` (its own slides removed) to `out`, atomically.

    A "title" slide goes on the title layout (bullets as subtitle lines), every other slide on the
    content layout (bullets as level-0 paragraphs); `**x**` becomes a bold run; titles are plain text
    (markers dropped); the speech draft becomes the speaker notes; unused placeholders are removed.
    """
    prs = load_template(template)
    title_layout, content_layout = content_layouts(prs)
    _remove_slides(prs)
    for slide_plan in plan.slides:
        is_title = slide_plan.section == "title"
        _add_slide(prs, slide_plan, title_layout if is_title else content_layout, is_title)
    out = Path(out)
    _save(prs, out)
    return out


def _remove_slides(prs) -> None:
    """Drop every slide of the template, with its relationship, so no orphan part gets saved."""
    pres = prs.element
    id_list = pres.find("p:sldIdLst", NS)
    if id_list is None or not len(id_list):
        return
    # Custom shows and sections refer to the slides too; a dangling reference makes PowerPoint repair.
    for shows in pres.findall("p:custShowLst", NS):
        pres.remove(shows)
    removed = set()
    for sld_id in list(id_list):
        removed.add(sld_id.get("id"))
        id_list.remove(sld_id)
        prs.part.rels.pop(sld_id.get(_q("r:id")))
    for entry in pres.iterfind(".//p14:sectionLst/p14:section/p14:sldIdLst/p14:sldId", NS):
        if entry.get("id") in removed:
            entry.getparent().remove(entry)


def _add_slide(prs, slide_plan: SlidePlan, layout, is_title: bool) -> None:
    slide = prs.slides.add_slide(layout)
    title_kinds, body_kinds = _roles(is_title)
    used = set()
    title_ph = _find_placeholder(slide.placeholders, title_kinds)
    if title_ph is not None and slide_plan.title.strip():
        title_ph.text_frame.text = _plain(slide_plan.title)
        used.add(title_ph.placeholder_format.idx)
    body_ph = _find_placeholder(slide.placeholders, body_kinds)
    if body_ph is not None and slide_plan.bullets:
        _write_paragraphs(body_ph.text_frame, slide_plan.bullets)
        used.add(body_ph.placeholder_format.idx)
    for placeholder in list(slide.placeholders):
        if placeholder.placeholder_format.idx not in used:
            placeholder.element.getparent().remove(placeholder.element)
    _write_notes(slide, slide_plan.speech)


def _write_paragraphs(frame, lines: Sequence[str]) -> None:
    for i, line in enumerate(lines):
        paragraph = frame.paragraphs[0] if i == 0 else frame.add_paragraph()
        paragraph.level = 0
        for text, bold in _runs(line):
            run = paragraph.add_run()
            run.text = text
            if bold:
                run.font.bold = True


def _write_notes(slide, speech: str) -> None:
    notes = slide.notes_slide
    frame = notes.notes_text_frame
    if frame is None:  # a notes master without a body placeholder
        frame = notes.shapes.add_textbox(Emu(685800), Emu(4572000), Emu(5486400), Emu(3429000)).text_frame
    frame.text = speech


def _runs(text: str) -> list[tuple[str, bool]]:
    """`**x**` markup as (text, bold) runs; an unmatched trailing `**` stays literal text."""
    parts = text.split("**")
    if len(parts) % 2 == 0:
        parts[-2:] = [parts[-2] + "**" + parts[-1]]
    return [(part, i % 2 == 1) for i, part in enumerate(parts) if part]


def _plain(text: str) -> str:
    return "".join(part for part, _ in _runs(text))


def check_package(path: str | os.PathLike) -> list[str]:
    """Problems found by reading a saved deck's zip; [] for a sound package.

    Checks: no duplicate zip entries; every part has a content type and every override names a part;
    every internal relationship target exists and relationship ids are unique per source; every part
    is reachable from the package relationships (no orphans); slide ids and their r:ids in
    presentation.xml are unique and point at slides; every slide has a notes slide.
    """
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        return [f"not a zip file ({_exc_text(exc)})"]
    with zf:
        names = zf.namelist()
        problems = [f"/{name}: duplicate zip entry" for name, n in Counter(names).items() if n > 1]
        parts = {"/" + name for name in names if not name.endswith("/")}
        problems += _check_content_types(zf, parts)
        edges, rel_problems = _read_relationships(zf, parts)
        problems += rel_problems
        problems += _check_reachable(parts, edges)
        problems += _check_slides(zf, edges)
    return problems


def _xml(zf: zipfile.ZipFile, part: str):
    return etree.fromstring(zf.read(part.lstrip("/")))


def _check_content_types(zf: zipfile.ZipFile, parts: set[str]) -> list[str]:
    if "/[Content_Types].xml" not in parts:
        return ["[Content_Types].xml is missing"]
    root = _xml(zf, "/[Content_Types].xml")
    defaults = {d.get("Extension", "").lower() for d in root.iterfind("ct:Default", NS)}
    overrides = {o.get("PartName", "").lower() for o in root.iterfind("ct:Override", NS)}
    lowered = {part.lower() for part in parts}
    problems = []
    for part in sorted(parts - {"/[Content_Types].xml"}):
        ext = part.rsplit(".", 1)[-1].lower() if "." in part.rsplit("/", 1)[-1] else ""
        if part.lower() not in overrides and ext not in defaults:
            problems.append(f"{part}: no content type")
    problems += [f"{name}: content type override for a missing part" for name in sorted(overrides - lowered)]
    return problems


def _rels_source(rels_part: str) -> str:
    """The part a .rels part belongs to ("/" for the package itself)."""
    folder, name = posixpath.split(rels_part)
    return posixpath.join(posixpath.dirname(folder), name[: -len(".rels")]) if name != ".rels" else "/"


def _read_relationships(zf: zipfile.ZipFile, parts: set[str]) -> tuple[dict[str, list[tuple[str, str]]], list[str]]:
    """source part -> [(relationship type, target part)], and the problems found on the way."""
    edges: dict[str, list[tuple[str, str]]] = {}
    problems = []
    for rels in sorted(p for p in parts if p.endswith(".rels") and "/_rels/" in p):
        source = _rels_source(rels)
        if source != "/" and source not in parts:
            problems.append(f"{rels}: relationships of a missing part {source}")
        base = "/" if source == "/" else posixpath.dirname(source)
        ids = Counter()
        for rel in _xml(zf, rels).iterfind("rel:Relationship", NS):
            ids[rel.get("Id")] += 1
            if rel.get("TargetMode") == "External":
                continue
            target = unquote(rel.get("Target", ""))
            target = posixpath.normpath(target if target.startswith("/") else posixpath.join(base, target))
            edges.setdefault(source, []).append((rel.get("Type", ""), target))
            if target not in parts:
                problems.append(f"{rels}: {rel.get('Id')} points at missing part {target}")
        problems += [f"{rels}: relationship id {rid} used {n} times" for rid, n in ids.items() if n > 1]
    return edges, problems


def _check_reachable(parts: set[str], edges: dict[str, list[tuple[str, str]]]) -> list[str]:
    seen, todo = set(), ["/"]
    while todo:
        for _, target in edges.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    skip = {"/[Content_Types].xml"}
    return [f"{part}: orphan part (no relationship reaches it)" for part in sorted(parts - seen - skip)
            if not part.endswith(".rels")]


def _check_slides(zf: zipfile.ZipFile, edges: dict[str, list[tuple[str, str]]]) -> list[str]:
    main = next((t for kind, t in edges.get("/", ()) if kind.endswith("/officeDocument")), None)
    if main is None or main.lstrip("/") not in zf.namelist():
        return ["no presentation part (officeDocument relationship)"]
    rels_part = posixpath.join(posixpath.dirname(main), "_rels", posixpath.basename(main) + ".rels").lstrip("/")
    targets = {}
    if rels_part in zf.namelist():
        for rel in _xml(zf, rels_part).iterfind("rel:Relationship", NS):
            targets[rel.get("Id")] = (rel.get("Type", ""), rel.get("Target", ""))
    entries = _xml(zf, main).findall("p:sldIdLst/p:sldId", NS)
    problems = [f"{main}: slide id {i} used {n} times" for i, n in Counter(e.get("id") for e in entries).items() if n > 1]
    rids = [e.get(_q("r:id")) for e in entries]
    problems += [f"{main}: slide r:id {r} used {n} times" for r, n in Counter(rids).items() if n > 1]
    for number, rid in enumerate(rids, 1):
        kind, target = targets.get(rid, ("", ""))
        if not kind.endswith("/slide"):
            problems.append(f"{main}: slide {number} ({rid}) is not a slide relationship")
            continue
        slide = posixpath.normpath(posixpath.join(posixpath.dirname(main), unquote(target)))
        if not any(k.endswith("/notesSlide") for k, _ in edges.get(slide, ())):
            problems.append(f"{slide}: slide {number} has no notes slide")
    return problems


# ----------------------------------------------------------------------------------------- reading


def read_deck(path: str | os.PathLike) -> DeckPlan:
    """Read a deck back into a DeckPlan (purpose is always '').

    Per slide: the title placeholder's text (else the first text shape's); bullets are the non-empty
    paragraphs of the body/subtitle placeholder (else of the other text shapes, date/footer/number
    placeholders skipped; groups and tables are not read), bold runs written as `**x**`; the speech is
    the speaker notes' text.

    Sections are a heuristic for users' decks: the first slide is "title" when it uses a title-slide
    layout (a ctrTitle or subTitle placeholder); otherwise `categorize(title)`, or when that finds
    nothing, the previous slide's section ("method" for the first slide).
    """
    prs = _open_presentation(path)
    if not len(prs.slides):
        raise _error(path, "the deck has no slides")
    slides: list[SlidePlan] = []
    for index, slide in enumerate(prs.slides):
        title, bullets = _slide_text(slide)
        if index == 0 and _uses_title_layout(slide):
            section = "title"
        else:
            section = categorize(title) or (slides[-1].section if slides else "method")
        slides.append(SlidePlan(section, title, "", _notes_text(slide), tuple(bullets)))
    return DeckPlan(tuple(slides))


def _is_meta(shape) -> bool:
    return shape.is_placeholder and _kind(shape) in META_KINDS


def _slide_text(slide) -> tuple[str, list[str]]:
    text_shapes = [s for s in slide.shapes if s.has_text_frame and not _is_meta(s)]
    title_shape = _find_placeholder(slide.placeholders, CENTER_TITLE_KINDS, with_text=True)
    if title_shape is None:
        title_shape = next((s for s in text_shapes if s.text_frame.text.strip()), None)
    title = " ".join(title_shape.text_frame.text.split()) if title_shape is not None else ""
    body = _find_placeholder(slide.placeholders, SUBTITLE_KINDS, with_text=True)
    if body is not None:
        sources = [body]
    else:
        skip = title_shape.shape_id if title_shape is not None else None
        sources = [s for s in text_shapes if s.shape_id != skip]
    bullets = []
    for shape in sources:
        for paragraph in shape.text_frame.paragraphs:
            markup = _paragraph_markup(paragraph._p).strip()
            if markup:
                bullets.append(markup)
    return title, bullets


def _paragraph_markup(p) -> str:
    """A paragraph's text with bold runs as `**x**` (adjacent bold runs merged, line breaks as spaces)."""
    segments: list[list] = []
    for child in p:
        if not isinstance(child.tag, str):
            continue
        local = etree.QName(child).localname
        if local in ("r", "fld"):
            t = child.find("a:t", NS)
            text = (t.text or "") if t is not None else ""
            rpr = child.find("a:rPr", NS)
            bold = rpr is not None and rpr.get("b") in ("1", "true")
        elif local == "br":
            text, bold = " ", False
        else:
            continue
        if not text:
            continue
        bold = bold and not text.isspace()
        if segments and segments[-1][1] == bold:
            segments[-1][0] += text
        else:
            segments.append([text, bold])
    return "".join(_bold_markup(text) if bold else text for text, bold in segments)


def _bold_markup(text: str) -> str:
    """`**x**` with the run's outer whitespace kept outside the markers."""
    core = text.strip()
    lead = text[: len(text) - len(text.lstrip())]
    trail = text[len(text.rstrip()):]
    return f"{lead}**{core}**{trail}"


def _notes_text(slide) -> str:
    if not slide.has_notes_slide:
        return ""
    notes = slide.notes_slide
    frame = notes.notes_text_frame
    if frame is not None:
        return frame.text.strip()
    return "\n".join(s.text_frame.text for s in notes.shapes if s.has_text_frame and not s.is_placeholder).strip()


def _uses_title_layout(slide) -> bool:
    kinds = (PP_PLACEHOLDER.CENTER_TITLE, PP_PLACEHOLDER.SUBTITLE)
    return any(_kind(ph) in kinds for ph in (*slide.placeholders, *slide.slide_layout.placeholders))


# ------------------------------------------------------------------------------------- template fit


@dataclass(frozen=True)
class BoxMetrics:
    """A placeholder's text box in points: inside the insets, and its level-1 text properties."""

    width: float
    height: float
    size: float  # font size
    line_height: float  # baseline to baseline
    space_before: float  # before every paragraph but the first
    indent: float  # left margin of the text (the bullet indent)


@dataclass(frozen=True)
class LayoutMetrics:
    """A layout's title box and body (or subtitle) box."""

    title: BoxMetrics
    body: BoxMetrics


_METRICS_CACHE: dict[tuple[str, int, int], TemplateMetrics] = {}


@dataclass(frozen=True)
class TemplateMetrics:
    """The title slide's and the content slide's boxes of a template."""

    title_slide: LayoutMetrics
    content: LayoutMetrics

    @classmethod
    def of(cls, path: str | os.PathLike) -> TemplateMetrics:
        """Metrics of a template file, cached per path, mtime and size."""
        path = Path(path)
        try:
            stat = path.stat()
        except OSError as exc:
            raise _error(path, f"cannot read ({exc.strerror or exc})") from exc
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
        if key not in _METRICS_CACHE:
            _METRICS_CACHE[key] = cls.from_presentation(load_template(path))
        return _METRICS_CACHE[key]

    @classmethod
    def from_presentation(cls, prs) -> TemplateMetrics:
        title_layout, content_layout = content_layouts(prs)
        size = (prs.slide_width, prs.slide_height)
        return cls(_layout_metrics(title_layout, True, size), _layout_metrics(content_layout, False, size))


def _layout_metrics(layout, is_title: bool, slide_size: tuple[int, int]) -> LayoutMetrics:
    title_kinds, body_kinds = _roles(is_title)
    title = _find_placeholder(layout.placeholders, title_kinds)
    body = _find_placeholder(layout.placeholders, body_kinds)
    return LayoutMetrics(_box_metrics(layout, title, "title", slide_size), _box_metrics(layout, body, "body", slide_size))


def _master_placeholder(master, family: str):
    """The master's title or body placeholder element (families: ctrTitle -> title, others -> body)."""
    for sp in master.element.iterfind("p:cSld/p:spTree/p:sp", NS):
        ph = sp.find("p:nvSpPr/p:nvPr/p:ph", NS)
        if ph is None:
            continue
        kind = ph.get("type", "obj")
        if (family == "title") == (kind in ("title", "ctrTitle")) and kind not in ("dt", "ftr", "sldNum", "hdr"):
            return sp
    return None


def _first(elements: Iterable, path: str, attr: str | None = None):
    """The first `path` match (or its `attr` value) found along an inheritance chain of elements."""
    for element in elements:
        if element is None:
            continue
        found = element.find(path, NS)
        if found is not None and (attr is None or found.get(attr) is not None):
            return found if attr is None else found.get(attr)
    return None


def _box_metrics(layout, placeholder, family: str, slide_size: tuple[int, int]) -> BoxMetrics:
    """Resolve a layout placeholder's box and level-1 text style through master and txStyles."""
    master = layout.slide_master
    sps = [placeholder.element if placeholder is not None else None, _master_placeholder(master, family)]
    style = master.element.find(f"p:txStyles/p:{family}Style", NS)
    levels = [sp.find("p:txBody/a:lstStyle/a:lvl1pPr", NS) if sp is not None else None for sp in sps]
    levels.append(style.find("a:lvl1pPr", NS) if style is not None else None)

    ext = _first(sps, "p:spPr/a:xfrm/a:ext")
    width, height = (int(ext.get("cx", 0)), int(ext.get("cy", 0))) if ext is not None else slide_size
    insets = {}
    for attr, default in (("lIns", 91440), ("rIns", 91440), ("tIns", 45720), ("bIns", 45720)):
        value = _first(sps, "p:txBody/a:bodyPr", attr)
        insets[attr] = int(value) if value is not None else default

    size_value = _first(levels, "a:defRPr", "sz")
    size = int(size_value) / 100 if size_value is not None else 18.0
    margin = next((level.get("marL") for level in levels if level is not None and level.get("marL") is not None), None)
    indent = int(margin) if margin is not None else (0 if family == "title" else EMU_PER_INCH * 3 // 8)
    line = _spacing(_first(levels, "a:lnSpc"), size, default=1.0)
    before = _spacing(_first(levels, "a:spcBef"), size, default=0.0)
    return BoxMetrics(
        width=(width - insets["lIns"] - insets["rIns"]) / EMU_PER_PT,
        height=(height - insets["tIns"] - insets["bIns"]) / EMU_PER_PT,
        size=size,
        line_height=line,
        space_before=before,
        indent=indent / EMU_PER_PT,
    )


def _spacing(element, size: float, *, default: float) -> float:
    """Points of an a:lnSpc / a:spcBef: spcPct in lines (1.2 x the font size), spcPts in 1/100 pt."""
    if element is not None:
        pct = element.find("a:spcPct", NS)
        if pct is not None:
            return int(pct.get("val", "100000")) / 100000 * 1.2 * size
        pts = element.find("a:spcPts", NS)
        if pts is not None:
            return int(pts.get("val", "0")) / 100
    return default * 1.2 * size


@dataclass(frozen=True)
class SlideFit:
    """How a slide's text fits its layout: title lines, whether the title box holds them, and the
    body's needed / available height."""

    title_lines: int
    title_fits: bool
    body_ratio: float
    fits: bool


_REF_SIZE = 100  # widths are measured at 100 px and scaled linearly to the point size


@lru_cache(maxsize=2)
def _font(bold: bool):
    import matplotlib
    from PIL import ImageFont

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name), _REF_SIZE)


@lru_cache(maxsize=1 << 17)
def _width(text: str, bold: bool) -> float:
    """Advance width of `text` at _REF_SIZE."""
    return _font(bold).getlength(text)


_SPACES = re.compile(r"(\s+)")


def _word_widths(text: str) -> list[float]:
    """Widths (at _REF_SIZE) of the words of a marked-up line; a word may mix bold and plain runs."""
    widths: list[float] = []
    current: float | None = None
    for segment, bold in _runs(text):
        for piece in _SPACES.split(segment):
            if not piece:
                continue
            if piece.isspace():
                if current is not None:
                    widths.append(current)
                    current = None
            else:
                current = (current or 0.0) + _width(piece, bold)
    if current is not None:
        widths.append(current)
    return widths


def _count_lines(text: str, width: float, size: float) -> int:
    """Lines that greedy word wrapping needs for `text` in `width` points at `size` points."""
    limit = width * _REF_SIZE / size if size > 0 else math.inf
    if limit <= 0:
        return 10**6
    space = _width(" ", False)
    lines, used = 1, 0.0
    for word in _word_widths(text):
        if used and used + space + word <= limit:
            used += space + word
            continue
        if used:
            lines += 1
        # A word longer than the line breaks across lines.
        extra = max(0, math.ceil(word / limit) - 1)
        lines += extra
        used = word - extra * limit
    return lines


def fit_slide(slide: SlidePlan, metrics: TemplateMetrics) -> SlideFit:
    """How `slide` fits its layout in `metrics` (title slide layout for section "title")."""
    layout = metrics.title_slide if slide.section == "title" else metrics.content
    title_box, body_box = layout.title, layout.body
    title = _plain(slide.title)
    title_lines = _count_lines(title, title_box.width - title_box.indent, title_box.size) if title.strip() else 0
    title_fits = title_lines * title_box.line_height <= title_box.height + 1e-6
    needed = 0.0
    for i, bullet in enumerate(slide.bullets):
        lines = _count_lines(bullet, body_box.width - body_box.indent, body_box.size)
        needed += lines * body_box.line_height + (body_box.space_before if i else 0.0)
    body_ratio = needed / body_box.height if body_box.height > 0 else (math.inf if needed else 0.0)
    return SlideFit(title_lines, title_fits, body_ratio, title_fits and body_ratio <= 1.0)


def fit_report(plan: DeckPlan, template: str | os.PathLike) -> list[SlideFit]:
    """fit_slide for every slide of `plan` on `template`."""
    metrics = TemplateMetrics.of(template)
    return [fit_slide(slide, metrics) for slide in plan.slides]


# --------------------------------------------------------------------------------------- rendering


def libreoffice() -> str | None:
    """The LibreOffice executable, or None when it is not installed."""
    return shutil.which("soffice") or shutil.which("libreoffice")


def render_pngs(pptx: str | os.PathLike, out_dir: str | os.PathLike, *, dpi: int = 60,
                timeout: int = 180) -> list[Path] | None:
    """Render a deck to out_dir/slide-<n>.png (n from 1) through LibreOffice's PDF and pdftoppm.

    None when soffice or pdftoppm is missing. LibreOffice runs with a private user profile so that
    first or concurrent runs do not clash. Stale slide-<n>.png files past the deck's end are removed.
    DeckError (one line, with the tail of stderr) when a tool fails, times out or writes no PDF.
    """
    soffice, pdftoppm = libreoffice(), shutil.which("pdftoppm")
    if soffice is None or pdftoppm is None:
        return None
    pptx, out_dir = Path(pptx), Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="slides-render-") as tmp_name:
        tmp = Path(tmp_name)
        _run_tool([soffice, f"-env:UserInstallation={(tmp / 'profile').as_uri()}", "--headless", "--norestore",
                   "--convert-to", "pdf", "--outdir", str(tmp), str(pptx.resolve())], pptx, timeout)
        pdf = tmp / f"{pptx.stem}.pdf"
        if not pdf.exists():
            raise _error(pptx, "LibreOffice wrote no PDF")
        _run_tool([pdftoppm, "-png", "-r", str(dpi), str(pdf), str(tmp / "page")], pptx, timeout)
        pages = sorted(tmp.glob("page-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
        written = []
        for number, page in enumerate(pages, 1):
            target = out_dir / f"slide-{number}.png"
            with atomic_writer(target) as handle:
                handle.write(page.read_bytes())
            written.append(target)
    for stale in out_dir.glob("slide-*.png"):
        suffix = stale.stem.split("-", 1)[1]
        if suffix.isdigit() and int(suffix) > len(written):
            stale.unlink()
    return written


def _run_tool(command: list[str], pptx: Path, timeout: int) -> None:
    """Run a converter in its own process group (soffice forks), killing the group on timeout."""
    name = Path(command[0]).name
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise _error(pptx, f"{name} timed out after {timeout} s") from None
    if proc.returncode != 0:
        tail = err.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise _error(pptx, f"{name} failed (exit {proc.returncode}): {' | '.join(tail) or 'no stderr'}")


def contact_sheet(pngs: Sequence[str | os.PathLike], out_path: str | os.PathLike, columns: int = 3) -> Path:
    """One PNG with the slide renders in a grid, `columns` wide, on a light grey background."""
    from PIL import Image

    if not pngs:
        raise ValueError("contact_sheet needs at least one image")
    images = []
    for png in pngs:
        with Image.open(png) as image:
            images.append(image.convert("RGB"))
    pad = 8
    cell_w, cell_h = max(i.width for i in images), max(i.height for i in images)
    cols = max(1, min(columns, len(images)))
    rows = math.ceil(len(images) / cols)
    sheet = Image.new("RGB", (cols * cell_w + (cols + 1) * pad, rows * cell_h + (rows + 1) * pad), (220, 220, 220))
    for i, image in enumerate(images):
        row, col = divmod(i, cols)
        x = pad + col * (cell_w + pad) + (cell_w - image.width) // 2
        y = pad + row * (cell_h + pad) + (cell_h - image.height) // 2
        sheet.paste(image, (x, y))
    out_path = Path(out_path)
    with atomic_writer(out_path) as handle:
        sheet.save(handle, format="PNG")
    return out_path
