"""Tasks: (example deck -> profile, template, new document, slide count), embedded or from a user's JSONL.

A task is what SlideTailor takes: a presenter's example deck (its preferences), a .pptx template, a new
document and the number of slides wanted. The profile is distilled from the example deck
(apps/slides/profiles.py); the reference deck, when known, is what the presenter would have made.

Embedded (`embedded:train`, `embedded:heldout`): generated papers (apps/slides/documents.py) and random
presenters; the example deck is written from (another paper, the presenter's profile); the reference deck
for the new paper from (paper, profile, slide count). Held-out tasks use other papers and presenters, and
their example decks go through a real .pptx on the task's template and back (read_deck -> distill), as a
user's deck does; training tasks distil from the written plan directly (the same profile: tested).

A user's JSONL, one task per line (paths relative to the file):
    {"id": "t1", "example_deck": "me/talk.pptx", "template": "me/template.pptx",  # or "embedded:wide"
     "document": "papers/new.pdf", "slides": 8, "reference_deck": "me/new_talk.pptx"}
`slides` defaults to the example deck's count; `reference_deck` (needed for training and for coverage /
flow) is optional for evaluation and inference.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from apps.slides.documents import Document, DocumentError, generate_documents, load_document
from apps.slides.plan import DeckPlan
from apps.slides.pptx_io import TEMPLATES, DeckError, build_deck, embedded_template, load_template, read_deck
from apps.slides.profiles import Profile, distill, sample_profile, write_deck
from shared.records import iter_json_objects

SPLIT_SEEDS = {"train": 1, "heldout": 2}


@dataclass
class DataArgs:
    """Where tasks come from.

    Attributes:
        train: `embedded:train` or a JSONL file of tasks with reference decks.
        heldout: `embedded:heldout` or a JSONL file of tasks.
        train_size: embedded training tasks.
        heldout_size: embedded held-out tasks.
        min_slides: fewest slides an embedded task asks for (title slide included).
        max_slides: most slides an embedded task asks for.
        min_words: shortest embedded paper (words).
        max_words: longest embedded paper (words; papers go whole into the prompt, so this sets its length).
        templates: embedded templates the tasks draw from (apps/slides/pptx_io.py TEMPLATES).
        seed: seed of the embedded papers and presenters.
        max_train: keep the first N training tasks (0: all).
        max_heldout: keep the first N held-out tasks (0: all).
    """

    train: str = "embedded:train"
    heldout: str = "embedded:heldout"
    train_size: int = 800
    heldout_size: int = 100
    min_slides: int = 3
    max_slides: int = 4
    min_words: int = 90
    max_words: int = 170
    templates: list[str] = field(default_factory=lambda: list(TEMPLATES))
    seed: int = 0
    max_train: int = 0
    max_heldout: int = 0


@dataclass(frozen=True)
class Task:
    """One deck to make. `reference` is None when the user gave no reference deck."""

    id: str
    document: Document
    profile: Profile
    template: Path
    slides: int
    reference: DeckPlan | None = None
    example_deck: Path | None = None


def templates_folder(run_dir: Path) -> Path:
    return run_dir / "templates"


def embedded_tasks(args: DataArgs, split: str, folder: Path) -> list[Task]:
    """Generated tasks of a split; held-out example decks are written to folder/examples/<id>.pptx and read back."""
    if split not in SPLIT_SEEDS:
        raise ValueError(f"unknown embedded split {split!r} (embedded:train or embedded:heldout)")
    size = args.train_size if split == "train" else args.heldout_size
    limit = args.max_train if split == "train" else args.max_heldout
    size = min(size, limit) if limit else size
    unknown = [t for t in args.templates if t not in TEMPLATES]
    if unknown or not args.templates:
        raise ValueError(f"data.templates: {unknown or 'empty'}; choose from {', '.join(TEMPLATES)}")
    if not 2 <= args.min_slides <= args.max_slides:
        raise ValueError(f"data.min_slides/max_slides: need 2 <= min <= max, got {args.min_slides}, {args.max_slides}")
    seed = f"{args.seed}:{SPLIT_SEEDS[split]}"
    docs = generate_documents(2 * size, seed=hash_seed(seed), min_words=args.min_words, max_words=args.max_words)
    tasks = []
    for i in range(size):
        rng = random.Random(f"{seed}:{i}")
        example_doc, document = docs[2 * i], docs[2 * i + 1]
        latent = sample_profile(rng)
        template = embedded_template(rng.choice(args.templates), templates_folder(folder))
        example = write_deck(example_doc, latent)
        example_path = None
        if split == "heldout":
            example_path = folder / "examples" / f"{split}-{i:04d}.pptx"
            if not example_path.exists():
                build_deck(example, template, example_path)
            profile = distill(read_deck(example_path))
        else:
            profile = distill(example)
        slides = rng.randint(args.min_slides, args.max_slides)
        reference = write_deck(document, profile, slides)
        tasks.append(Task(f"{split}-{i:04d}", document, profile, template, len(reference.slides), reference,
                          example_path))
    return tasks


def hash_seed(text: str) -> int:
    """A stable integer seed from a string (Python's hash() is salted per process)."""
    import zlib

    return zlib.crc32(text.encode())


def load_split(args: DataArgs, split: str, folder: Path) -> list[Task]:
    """The tasks of `split` ("train" or "heldout") from args; `folder` keeps templates and example decks."""
    source = args.train if split == "train" else args.heldout
    if source.startswith("embedded:"):
        return embedded_tasks(args, source.split(":", 1)[1], folder)
    tasks = read_tasks(Path(source), folder, need_reference=split == "train")
    limit = args.max_train if split == "train" else args.max_heldout
    return tasks[:limit] if limit else tasks


def read_tasks(path: Path, folder: Path, *, need_reference: bool = False) -> list[Task]:
    """Tasks from a user's JSONL (the module docstring's format); errors name the file, line and field."""
    tasks, seen = [], set()
    for lineno, row in iter_json_objects(path):
        where = f"{path}:{lineno}"
        task = task_from_row(row, where, path.parent, folder, need_reference)
        if task.id in seen:
            raise ValueError(f"{where}: field 'id': duplicate id {task.id!r}")
        seen.add(task.id)
        tasks.append(task)
    if not tasks:
        raise ValueError(f"{path}: no tasks (the file is empty)")
    return tasks


def _path_field(row: dict, name: str, where: str, base: Path, required: bool = True) -> Path | None:
    value = row.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: field {name!r}: expected a file path, got {value!r}")
    return (base / value) if not Path(value).is_absolute() else Path(value)


def resolve_template(value: str, base: Path, folder: Path) -> Path:
    """`embedded:<name>` -> the embedded template file (written under folder/templates), else a path."""
    if value.startswith("embedded:"):
        return embedded_template(value.split(":", 1)[1], templates_folder(folder))
    path = Path(value) if Path(value).is_absolute() else base / value
    load_template(path)
    return path


def task_from_row(row: dict, where: str, base: Path, folder: Path, need_reference: bool) -> Task:
    """One task from a JSONL object; ValueError `where: field 'x': reason`."""
    try:
        example_path = _path_field(row, "example_deck", where, base)
        try:
            profile = distill(read_deck(example_path))
        except DeckError as exc:
            raise ValueError(f"{where}: field 'example_deck': {exc}") from None
        template_value = row.get("template")
        if not isinstance(template_value, str) or not template_value:
            raise ValueError(f"{where}: field 'template': expected a .pptx path or embedded:<name>, got {template_value!r}")
        try:
            template = resolve_template(template_value, base, folder)
        except (DeckError, ValueError) as exc:
            raise ValueError(f"{where}: field 'template': {exc}") from None
        try:
            document = load_document(_path_field(row, "document", where, base))
        except DocumentError as exc:
            raise ValueError(f"{where}: field 'document': {exc}") from None
        reference = None
        ref_path = _path_field(row, "reference_deck", where, base, required=need_reference)
        if ref_path is not None:
            try:
                reference = read_deck(ref_path)
            except DeckError as exc:
                raise ValueError(f"{where}: field 'reference_deck': {exc}") from None
        slides = row.get("slides", len(reference.slides) if reference else profile.slides())
        if not isinstance(slides, int) or isinstance(slides, bool) or not 1 <= slides <= 60:
            raise ValueError(f"{where}: field 'slides': expected an integer from 1 to 60, got {slides!r}")
        task_id = row.get("id", f"{Path(where.split(':')[0]).stem}-{where.rsplit(':', 1)[1]}")
        if not isinstance(task_id, str) or not task_id:
            raise ValueError(f"{where}: field 'id': expected a non-empty string, got {task_id!r}")
    except ValueError as exc:
        raise ValueError(str(exc).splitlines()[0]) from None
    return Task(task_id, document, profile, template, slides, reference, example_path)
