"""Writing a config: plain dicts, commented YAML, and the run folder's atomic `config.yaml`."""

from __future__ import annotations

import dataclasses
import os
import textwrap
from pathlib import Path
from typing import Any

from shared.atomic import write_text
from shared.config.schema import Schema
from shared.config.values import format_value, to_plain


def to_dict(cfg: Any) -> dict[str, Any]:
    """Return the config as nested builtins (Paths as str, Enums as values, tuples as lists)."""
    return to_plain(cfg)


def _comment(text: str, pad: str) -> list[str]:
    return textwrap.wrap(" ".join(text.split()), 100, initial_indent=pad + "# ", subsequent_indent=pad + "# ")


def _emit(obj: Any, schema: Schema, prefix: str, lines: list[str]) -> None:
    pad = "  " * prefix.count(".")
    after_group = False
    for field in dataclasses.fields(obj):
        if not field.init:
            continue
        key, value = prefix + field.name, getattr(obj, field.name)
        if not prefix and (key in schema.groups or after_group):
            lines.append("")  # a blank line around each top-level group
        after_group = key in schema.groups
        if key in schema.groups:
            lines += _comment(schema.groups[key].doc, pad)
            lines.append(f"{pad}{field.name}:")
            _emit(value, schema, key + ".", lines)
            continue
        option = schema.options[key]
        note = option.doc
        if option.default is not dataclasses.MISSING and to_plain(value) != to_plain(option.default):
            note += f" (default: {format_value(option.default)})"
        lines += _comment(note, pad)
        lines.append(f"{pad}{field.name}: {format_value(value)}")


def to_yaml(cfg: Any, *, header: str = "") -> str:
    """Return the config as YAML with each field's doc as a comment above it (and its default if changed)."""
    lines = _comment(header, "") if header else []
    _emit(cfg, Schema(type(cfg)), "", lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def save_resolved(cfg: Any, run_dir: str | os.PathLike) -> Path:
    """Write the config to `run_dir/config.yaml` atomically (temp file + os.replace) and return its path."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "config.yaml"
    text = to_yaml(cfg, header=f"Resolved {type(cfg).__name__} of this run; rerun it with --config {path}")
    return write_text(path, text)
