"""Typed config values: YAML dialect, type names, checking/conversion and one-line rendering."""

from __future__ import annotations

import dataclasses
import difflib
import enum
import re
import types
import typing
from pathlib import PurePath
from typing import Any, Literal, Union

import yaml

# PyYAML follows YAML 1.1, where `1e-5` (no dot) is a string; read and write it as a float
# (YAML 1.2), so a learning rate written the usual way is a number.
_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")


class Loader(yaml.SafeLoader):
    """Safe YAML loader that also reads `1e-5` as a float."""


class Dumper(yaml.SafeDumper):
    """Safe YAML dumper that quotes what Loader would not read back as the same string."""


for _cls in (Loader, Dumper):
    _cls.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789"))


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Double quotes keep a multi-line string on one line (as \n escapes).
    style = '"' if "\n" in value or "\r" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


Dumper.add_representer(str, _represent_str)


class Mismatch(Exception):
    """A value does not fit a type (internal; turned into a ConfigError with its location)."""


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType)


def _is_class(tp: Any, base: type) -> bool:
    return isinstance(tp, type) and issubclass(tp, base)


def type_name(tp: Any) -> str:
    """Return a short name of a supported config type (`float`, `{dpo,ipo}`, `int | null`); TypeError otherwise."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is type(None):
        return "null"
    if tp in (bool, int, float, str):
        return tp.__name__
    if _is_class(tp, PurePath):
        return "Path"
    if origin is Literal:
        return "{" + ",".join(format_value(a) for a in args) + "}"
    if _is_class(tp, enum.Enum):
        return "{" + ",".join(format_value(m.value) for m in tp) + "}"
    if _is_union(tp):
        return " | ".join(type_name(a) for a in args)
    if origin is list and len(args) == 1:
        return f"list[{type_name(args[0])}]"
    if origin is tuple and args:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"tuple[{type_name(args[0])}, ...]"
        return f"tuple[{', '.join(type_name(a) for a in args)}]"
    if origin is dict and len(args) == 2:
        return f"dict[{type_name(args[0])}, {type_name(args[1])}]"
    raise TypeError(
        f"unsupported type {tp!r}: use bool, int, float, str, Path, Literal, Enum, Optional/unions of "
        "these, list[...], tuple[...], dict[..., ...] or a nested dataclass"
    )


def convert(tp: Any, value: Any) -> Any:
    """Return value checked against tp (ints widen to float, strings become Paths/Enums); raise Mismatch."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is type(None):
        if value is None:
            return None
    elif _is_union(tp):
        for arg in args:
            try:
                return convert(arg, value)
            except Mismatch:
                pass
    elif origin is Literal:
        for arg in args:
            if type(value) is type(arg) and value == arg:
                return arg
    elif tp is bool or tp is str:
        if type(value) is tp:
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif _is_class(tp, PurePath):
        if isinstance(value, (str, PurePath)):
            return tp(value)
    elif _is_class(tp, enum.Enum):
        if isinstance(value, tp):
            return value
        for member in tp:
            if (type(value) is type(member.value) and value == member.value) or value == member.name:
                return member
    elif origin in (list, tuple) and isinstance(value, (list, tuple)):
        if origin is list:
            return [convert(args[0], v) for v in value]
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(convert(args[0], v) for v in value)
        if len(args) == len(value):
            return tuple(convert(a, v) for a, v in zip(args, value))
    elif origin is dict and isinstance(value, dict):
        return {convert(args[0], k): convert(args[1], v) for k, v in value.items()}
    raise Mismatch


def _members(tp: Any) -> tuple:
    return typing.get_args(tp) if _is_union(tp) else (tp,)


def expected(tp: Any, value: Any) -> str:
    """Return `expected <type>, got <value>` for a Mismatch, with a did-you-mean for Literal choices."""
    choices = [a for m in _members(tp) if typing.get_origin(m) is Literal for a in typing.get_args(m)]
    texts = [c for c in choices if isinstance(c, str)]
    hint = ""
    if isinstance(value, str) and texts:
        close = difflib.get_close_matches(value, texts, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
    elif isinstance(value, bool) and (texts or str in _members(tp)):
        hint = " (YAML reads yes/no/on/off as booleans: quote it to pass text)"
    if choices:
        nullable = " or null" if type(None) in _members(tp) else ""
        return f"expected one of {', '.join(map(repr, choices))}{nullable}, got {value!r}{hint}"
    return f"expected {type_name(tp)}, got {value!r}{hint}"


def to_plain(value: Any) -> Any:
    """Return value as YAML/JSON-ready builtins: dataclasses -> dicts, Paths -> str, Enums -> value, tuples -> lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, enum.Enum):
        return to_plain(value.value)
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {to_plain(k): to_plain(v) for k, v in value.items()}
    return value


def format_value(value: Any) -> str:
    """Return value as one line of YAML, as it would be typed in a file or an override."""
    text = yaml.dump(to_plain(value), Dumper=Dumper, default_flow_style=True, width=2**31 - 1,
                     allow_unicode=True, sort_keys=False)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def parse_text(text: str) -> Any:
    """Return a command-line value read as YAML; raise yaml.YAMLError if it is not valid YAML."""
    return yaml.load(text, Loader=Loader)
