"""The options of a config dataclass: dotted keys, types, effective defaults and docs."""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import re
import typing
from dataclasses import MISSING, dataclass
from typing import Any

from shared.config.values import type_name


class ConfigError(ValueError):
    """A user mistake in a config file or override; the message is one line naming where."""


@dataclass(frozen=True)
class Option:
    """One settable leaf: `key` is dotted (`train.lr`); `default` is MISSING when required."""

    key: str
    type: Any
    default: Any
    doc: str


@dataclass(frozen=True)
class Group:
    """A nested dataclass field (`train`), whose fields are options or further groups."""

    key: str
    cls: type
    doc: str


_ENTRY = re.compile(r"^(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


def _parse_attributes(doc: str) -> dict[str, str]:
    # Google style: "Attributes:" then "name: text" (or "name (type): text") entries, each
    # possibly continued on more-indented lines; the section ends at the first dedent.
    out: dict[str, str] = {}
    lines = inspect.cleandoc(doc).splitlines()
    section_indent = entry_indent = None
    name = None
    for line in lines:
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if section_indent is None:
            if stripped == "Attributes:":
                section_indent = indent
            continue
        if not stripped:
            continue
        if indent <= section_indent:
            break
        entry_indent = indent if entry_indent is None else entry_indent
        match = _ENTRY.match(stripped)
        if indent == entry_indent and match:
            name = match[1]
            out[name] = match[2]
        elif name:
            out[name] += " " + stripped
    return {k: v.strip() for k, v in out.items()}


def attribute_docs(cls: type) -> dict[str, str]:
    """Return field name -> doc from the `Attributes:` sections of cls and its bases."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        doc = klass.__dict__.get("__doc__")
        if doc:
            docs.update(_parse_attributes(doc))
    return docs


def summary(cls: type) -> str:
    """Return the first line of cls's own docstring ('' for a dataclass's generated one)."""
    doc = inspect.cleandoc(cls.__dict__.get("__doc__") or "")
    first = doc.splitlines()[0].strip() if doc else ""
    return "" if first.startswith(cls.__name__ + "(") else first


def _field_default(field: dataclasses.Field, base: Any) -> Any:
    if base is not None:
        return getattr(base, field.name)
    if field.default is not MISSING:
        return field.default
    if field.default_factory is not MISSING:
        return field.default_factory()
    return MISSING


class Schema:
    """Every option and group of a config dataclass, in declaration order (depth first)."""

    def __init__(self, cls: type):
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise TypeError(f"a config must be a dataclass type, got {cls!r}")
        self.cls = cls
        self.options: dict[str, Option] = {}
        self.groups: dict[str, Group] = {}
        self._add(cls, "", None)

    def _add(self, cls: type, prefix: str, base: Any) -> None:
        try:
            hints = typing.get_type_hints(cls)
        except NameError as exc:
            raise TypeError(f"cannot resolve the annotations of {cls.__qualname__}: {exc}") from None
        docs = attribute_docs(cls)
        for field in dataclasses.fields(cls):
            if not field.init:
                continue
            key, tp = prefix + field.name, hints[field.name]
            doc = str(field.metadata.get("help", docs.get(field.name, "")))
            default = _field_default(field, base)
            if isinstance(tp, type) and dataclasses.is_dataclass(tp):
                self.groups[key] = Group(key, tp, doc or summary(tp))
                self._add(tp, key + ".", None if default is MISSING else default)
                continue
            try:
                type_name(tp)
            except TypeError as exc:
                raise TypeError(f"config field '{key}' of {cls.__qualname__}: {exc}") from None
            self.options[key] = Option(key, tp, default, doc)

    def suggest(self, key: str) -> str:
        """Return ` (did you mean 'x'?)` for the known key closest to an unknown one, or ''."""
        known = [*self.options, *self.groups]
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        if not close:  # a right name in the wrong group: `lr` for `train.lr`
            leaf = key.rsplit(".", 1)[-1]
            close = [k for k in known if k.rsplit(".", 1)[-1] == leaf][:1]
        return f" (did you mean '{close[0]}'?)" if close else ""

    def unknown(self, key: str) -> str:
        """Return the message for an unknown key."""
        return f"unknown key '{key}'{self.suggest(key)}"
