"""Make a deck: example deck + template + paper in, a .pptx with speaker notes out; or serve the planner.

    python -m apps.slides.infer --model runs/slides/dpo --example-deck my_talk.pptx \\
        --template embedded:wide --document paper.pdf --slides 6 --out runs/slides/answer
    python -m apps.slides.infer serve --model runs/slides/dpo --port 8000
    curl -s localhost:8000/generate -H 'content-type: application/json' -d '{"prompts": ["{\\"example_deck\\":
         \\"my_talk.pptx\\", \\"template\\": \\"embedded:wide\\", \\"document\\": \\"paper.md\\", \\"slides\\": 6}"]}'

The presenter's profile is distilled from the example deck (apps/slides/profiles.py); the planner
writes a grammar-constrained chain-of-speech plan for the paper (Markdown or PDF); the deck is built
on the template's own layouts with each slide's speech draft in its speaker notes. With --out, the
CLI writes deck.pptx, plan.txt, profile.json and scores.json there (and slide PNGs plus a contact
sheet when LibreOffice is installed; --no-render skips them).

A server prompt is a JSON object (as a string): "example_deck" and "template" (paths on the server,
or "example_deck_base64" / "template_base64" with the file's bytes; "template" may be
"embedded:plain|wide|large"), the paper as "document" (a path) or "document_markdown" (text), and
"slides" (default: as many as the example deck). Each output is {"plan", "profile", "scores"
(adherence, faithfulness, template fit; coverage and flow need a reference deck), "pptx_base64"}.
A malformed prompt gets a 422 naming the field; a request may be up to 64 MB (files as base64). The server also speaks OpenAI's API
(/v1/chat/completions, ...) for the planner itself, grammar-constrained: send the prompt of
apps/slides/prompts.py as the messages.
"""

from __future__ import annotations

import base64
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from apps.slides.data import Task, resolve_template
from apps.slides.documents import Document, DocumentError, load_document, read_markdown
from apps.slides.plan import PlanError, parse_plan
from apps.slides.pptx_io import DeckError, build_deck, read_deck
from apps.slides.profiles import distill
from apps.slides.prompts import deck_prompt
from apps.slides.reward import score_plan
from shared.serving import HFTextGenerator
from shared.serving.cli import infer_parser, serve, serve_kwargs
from shared.serving.textmodel import Sampling

PROG = "python -m apps.slides.infer"
# A request may carry a deck and a template as base64 and a whole paper: larger limits than the core's text defaults.
MAX_PROMPT_CHARS = 20_000_000
MAX_BODY_BYTES = 64_000_000


@dataclass
class Request:
    """A parsed request: the task (its files materialised in `folder`) and where it came from."""

    task: Task
    folder: Path


def _file(obj: dict, name: str, folder: Path, suffix: str) -> Path | None:
    """The request's file field: a server path, or <name>_base64 bytes written into folder."""
    if f"{name}_base64" in obj:
        try:
            data = base64.b64decode(obj[f"{name}_base64"], validate=True)
        except (ValueError, TypeError):
            raise ValueError(f"prompt field '{name}_base64' is not valid base64") from None
        path = folder / f"{name}{suffix}"
        path.write_bytes(data)
        return path
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"prompt field '{name}' must be a file path")
    return Path(value)


def parse_request(prompt: str, folder: Path) -> Task:
    """The task of a request (module docstring); ValueError naming the bad field."""
    text = prompt.strip()
    if not text:
        raise ValueError("prompt is empty")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"prompt is not valid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise ValueError("prompt must be a JSON object")
    example = _file(obj, "example_deck", folder, ".pptx")
    if example is None:
        raise ValueError("prompt field 'example_deck' (or 'example_deck_base64') is required")
    try:
        profile = distill(read_deck(example))
    except DeckError as exc:
        raise ValueError(f"prompt field 'example_deck': {exc}") from None
    template_value = obj.get("template")
    try:
        if "template_base64" in obj:
            template = resolve_template(str(_file(obj, "template", folder, ".pptx")), Path("."), folder)
        elif isinstance(template_value, str) and template_value:
            template = resolve_template(template_value, Path("."), folder)
        else:
            raise ValueError("a path, embedded:<name> or 'template_base64' is required")
    except (DeckError, ValueError) as exc:
        raise ValueError(f"prompt field 'template': {exc}") from None
    document = _document(obj, folder)
    slides = obj.get("slides", profile.slides())
    if not isinstance(slides, int) or isinstance(slides, bool) or not 1 <= slides <= 60:
        raise ValueError(f"prompt field 'slides' must be an integer from 1 to 60, got {slides!r}")
    return Task("request", document, profile, template, slides, None, example)


def _document(obj: dict, folder: Path) -> Document:
    try:
        if "document_markdown" in obj:
            markdown = obj["document_markdown"]
            if not isinstance(markdown, str):
                raise ValueError("must be text")
            path = folder / "document.md"
            path.write_text(markdown, encoding="utf-8")
            return _checked(read_markdown(path), path)
        path = _file(obj, "document", folder, ".pdf")
        if path is None:
            raise ValueError("'document' (a path) or 'document_markdown' (text) is required")
        return load_document(path)
    except (DocumentError, ValueError) as exc:
        raise ValueError(f"prompt field 'document': {exc}") from None


def _checked(document: Document, path: Path) -> Document:
    if not any(s.sentences for s in document.sections):
        raise DocumentError(f"{path}: empty document (no text in any section)")
    return document


class DeckGenerator:
    """Distils the profile, prompts the planner, and builds the deck."""

    def __init__(self, model, tokenizer, *, max_new_tokens: int = 448):
        from apps.slides.generate import grammar_for

        self.text_model = HFTextGenerator(model, tokenizer, max_new_tokens=max_new_tokens, chat=True, name="slides",
                                          constraint=grammar_for(tokenizer))
        self.accepted_params = self.text_model.accepted_params
        self.name = "slides"

    def check_prompt(self, prompt: str) -> None:
        """Raise ValueError naming the bad field of a malformed prompt (the server answers 422 before batching)."""
        with tempfile.TemporaryDirectory() as tmp:
            parse_request(prompt, Path(tmp))

    def generate(self, prompts: list[str], **params: Any) -> list[dict]:
        with tempfile.TemporaryDirectory() as tmp:
            tasks = []
            for i, prompt in enumerate(prompts):
                folder = Path(tmp) / str(i)
                folder.mkdir()
                tasks.append(parse_request(prompt, folder))
            texts = self.plans(tasks, **params)
            return [self._answer(task, text, Path(tmp) / f"deck-{i}.pptx")
                    for i, (task, text) in enumerate(zip(tasks, texts))]

    def plans(self, tasks: list[Task], **params: Any) -> list[str]:
        sampling = Sampling(max_tokens=params.get("max_new_tokens"), temperature=params.get("temperature"),
                            top_p=params.get("top_p"), seed=params.get("seed"))
        messages = [deck_prompt(t.document, t.profile, t.template, t.slides) for t in tasks]
        return [c.text for c in self.text_model.complete(messages, sampling)]

    @staticmethod
    def _answer(task: Task, text: str, path: Path) -> dict:
        scores = score_plan(text, task)
        out = {"plan": text, "profile": task.profile.to_dict(),
               "scores": {k: v for k, v in scores.items() if k not in ("coverage", "flow")}, "pptx_base64": None}
        try:
            build_deck(parse_plan(text), task.template, path)
            out["pptx_base64"] = base64.b64encode(path.read_bytes()).decode()
        except PlanError:
            pass
        return out


def main(argv: list[str] | None = None) -> None:
    from shared.config import ConfigError
    from shared.models import load_policy, resolve_model

    parser, rest, serving = infer_parser(PROG, __doc__, list(sys.argv[1:] if argv is None else argv))
    if not serving:
        parser.add_argument("--example-deck", type=Path, required=True, help="the presenter's example deck (.pptx)")
        parser.add_argument("--template", required=True, help="a .pptx/.potx template, or embedded:plain|wide|large")
        parser.add_argument("--document", type=Path, required=True, help="the paper (Markdown or PDF)")
        parser.add_argument("--slides", type=int, help="slides wanted (default: as many as the example deck)")
        parser.add_argument("--out", type=Path, default=Path("runs/slides/answer"),
                            help="folder for deck.pptx, plan.txt, profile.json, scores.json (default: %(default)s)")
        parser.add_argument("--no-render", action="store_true", help="skip the PNG renders even with LibreOffice")
        parser.add_argument("--temperature", type=float, default=0.0)
        parser.add_argument("--seed", type=int)
    args = parser.parse_args(rest)
    try:
        spec, _ = resolve_model(args.model)
        task = None
        if not serving:
            args.out.mkdir(parents=True, exist_ok=True)
            request = {"example_deck": str(args.example_deck), "template": args.template,
                       "document": str(args.document)}
            if args.slides is not None:
                request["slides"] = args.slides
            task = parse_request(json.dumps(request), args.out)
    except (ValueError, OSError, ConfigError) as exc:
        parser.error(str(exc))
    model, tok = load_policy(spec)
    generator = DeckGenerator(model, tok, max_new_tokens=args.max_new_tokens)
    if serving:
        serve(generator, **serve_kwargs(args), max_prompt_chars=MAX_PROMPT_CHARS, max_body_bytes=MAX_BODY_BYTES)
        return
    from shared.atomic import write_json, write_text

    text = generator.plans([task], temperature=args.temperature, seed=args.seed)[0]
    scores = score_plan(text, task)
    write_text(args.out / "plan.txt", text if text.endswith("\n") else text + "\n")
    write_json(args.out / "profile.json", task.profile.to_dict())
    write_json(args.out / "scores.json", {k: v for k, v in scores.items() if k not in ("coverage", "flow")})
    try:
        deck = build_deck(parse_plan(text), task.template, args.out / "deck.pptx")
    except PlanError as exc:
        print(f"{PROG}: the plan does not parse ({exc}); see {args.out / 'plan.txt'}", file=sys.stderr)
        sys.exit(1)
    print(f"deck: {deck} ({len(parse_plan(text).slides)} slides, speech drafts in the speaker notes)")
    if not args.no_render:
        from apps.slides.pptx_io import contact_sheet, libreoffice, render_pngs

        if libreoffice() is None:
            print("renders: skipped (LibreOffice is not installed: apt-get install libreoffice-impress poppler-utils)")
        else:
            pngs = render_pngs(deck, args.out / "slides")
            if pngs:
                sheet = contact_sheet(pngs, args.out / "slides.png")
                print(f"renders: {len(pngs)} PNGs in {args.out / 'slides'}, contact sheet {sheet}")
    print(json.dumps({k: v for k, v in scores.items() if k not in ("coverage", "flow", "reason")}, indent=2))


if __name__ == "__main__":
    main()
