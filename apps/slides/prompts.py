"""The planner's prompt: the presenter's distilled preferences, the template's capacity, the slide count and
the paper; the answer is a deck plan in apps/slides/plan.py's chain-of-speech format."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from apps.slides.documents import Document, to_markdown
from apps.slides.profiles import Profile
from apps.slides.pptx_io import TemplateMetrics

AVERAGE_CHAR_EM = 0.55  # DejaVu Sans: an average character is about 0.55 em wide


@lru_cache(maxsize=64)
def template_capacity(template: Path) -> tuple[int, int]:
    """(lines, characters per line) of a content slide's body at the template's level-1 font size."""
    body = TemplateMetrics.of(template).content.body
    lines = int((body.height + body.space_before) // (body.line_height + body.space_before))
    chars = int((body.width - body.indent) / (AVERAGE_CHAR_EM * body.size))
    return max(1, lines), max(1, chars)


def deck_prompt(document: Document, profile: Profile, template: Path, slides: int) -> list[dict]:
    """Chat messages asking for a `slides`-slide plan of `document` that follows `profile` on `template`."""
    lines, chars = template_capacity(Path(template))
    text = (
        f"Plan {slides} slides on the paper below. The presenter's preferences:\n{profile.describe()}\n"
        f"- Template: a slide body holds about {lines} lines of {chars} characters\n"
        "Per slide: '## <section>', 'Title:', 'Purpose:', 'Speech:' (what to say), then '- ' bullets from the "
        "speech. Only facts from the paper.\n\n"
        f"{to_markdown(document).strip()}"
    )
    return [{"role": "user", "content": text}]
