"""Resolving a config: defaults < YAML files (in order) < overrides (in order), then construction."""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from shared.config.schema import ConfigError, Schema
from shared.config.values import Loader, Mismatch, convert, expected, parse_text
from shared.textfile import read_text

C = TypeVar("C")
Values = dict[str, Any]  # dotted option key -> checked value


def _key_lines(node: yaml.Node, prefix: str, lines: dict[str, int], where: str) -> None:
    # Record the line of every mapping key (dotted), rejecting duplicates PyYAML would silently drop.
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = prefix + key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(f"{where}:{line}: duplicate key '{key}'")
            seen.add(key)
            lines[key] = line
            _key_lines(value_node, key + ".", lines, where)


def read_yaml(path: str | os.PathLike) -> tuple[Any, dict[str, int]]:
    """Return a YAML file's data and the line of each dotted key; ConfigError names file and line.

    The bytes are read as shared.textfile reads every user file (strict UTF-8, a leading UTF-8 BOM
    skipped), so a Latin-1 or UTF-16 file, NUL bytes or a character YAML refuses give one line too.
    """
    try:
        text = read_text(path, error=ConfigError)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: a folder, not a config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from None
    lines: dict[str, int] = {}
    loader = None
    try:
        loader = Loader(text)  # checks every character: a control character raises ReaderError here
        node = loader.get_single_node()
        if node is None:
            return {}, lines
        _key_lines(node, "", lines, str(path))
        return loader.construct_document(node), lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        start = exc.context_mark
        opened = f" ({exc.context} at line {start.line + 1})" if exc.context and start and start is not mark else ""
        raise ConfigError(f"{where}: invalid YAML: {exc.problem or exc.context}{opened}") from None
    except yaml.reader.ReaderError as exc:  # no mark, a character offset into the text
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - text.rfind("\n", 0, exc.position)
        raise ConfigError(f"{path}:{line}:{column}: invalid YAML: unacceptable character #x{exc.character:04x} "
                          f"({exc.reason})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {' '.join(str(exc).split())}") from None
    finally:
        if loader is not None:
            loader.dispose()


def _flatten(schema: Schema, data: Mapping, prefix: str, where: Callable[[str], str], out: Values) -> None:
    # Walk nested mappings down the schema's groups; every leaf lands in `out` under its dotted key.
    for name, value in data.items():
        if not isinstance(name, str):
            raise ConfigError(f"{where(prefix.rstrip('.'))}: config keys must be strings, got {name!r}")
        key = prefix + name
        if key in schema.groups:
            if value is None:  # `train:` with every field commented out
                continue
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where(key)}: {key}: expected a mapping of its options, got {value!r}")
            _flatten(schema, value, key + ".", where, out)
        elif key in schema.options:
            out[key] = _check(schema, key, value, f"{where(key)}: {key}")
        else:
            raise ConfigError(f"{where(key)}: {schema.unknown(key)}")


def _check(schema: Schema, key: str, value: Any, context: str) -> Any:
    tp = schema.options[key].type
    try:
        return convert(tp, value)
    except Mismatch:
        raise ConfigError(f"{context}: {expected(tp, value)}") from None


def _check_text(schema: Schema, key: str, text: str, context: str) -> Any:
    # A command-line value is read as YAML (`1e-5`, `[a, b]`, `null`); if that does not fit
    # the type, the raw text is tried, so `name=123` or `name=yes` stays a string for a str field.
    tp = schema.options[key].type
    try:
        value = parse_text(text)
    except yaml.YAMLError:
        value = text
    try:
        return convert(tp, value)
    except Mismatch:
        try:
            return convert(tp, text)
        except Mismatch:
            raise ConfigError(f"{context}: {expected(tp, value)}") from None


def apply_yaml(schema: Schema, path: str | os.PathLike, out: Values) -> None:
    """Check one YAML file against the schema and set its values in `out`."""
    data, lines = read_yaml(path)
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}:1: expected a mapping of config keys, got {type(data).__name__}")
    _flatten(schema, data, "", lambda key: f"{path}:{lines[key]}" if key in lines else str(path), out)


def apply_override(schema: Schema, key: str, text: str, source: str, out: Values) -> None:
    """Check one `key=value` override (source: how it was typed) and set it in `out`."""
    key = key.strip().replace("-", "_")
    if key in schema.options:
        out[key] = _check_text(schema, key, text, source)
    elif key in schema.groups:
        try:
            value = parse_text(text)
        except yaml.YAMLError:
            value = text
        _flatten(schema, {key: value}, "", lambda _: source, out)
    else:
        raise ConfigError(f"{source}: {schema.unknown(key)}")


def build(schema: Schema, values: Values, cls: type | None = None, prefix: str = "") -> Any:
    """Return the config object: each option from `values` or its default; ConfigError if one is missing."""
    if cls is None:
        missing = [k for k, o in schema.options.items() if o.default is dataclasses.MISSING and k not in values]
        if missing:
            names = ", ".join(f"'{k}'" for k in missing)
            raise ConfigError(f"missing required option{'s' if len(missing) > 1 else ''} {names}: "
                              "set it in a config file or as key=value")
        cls = schema.cls
    kwargs = {}
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        key = prefix + field.name
        if key in schema.groups:
            kwargs[field.name] = build(schema, values, schema.groups[key].cls, key + ".")
        else:
            kwargs[field.name] = values[key] if key in values else copy.deepcopy(schema.options[key].default)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except ValueError as exc:  # a __post_init__ check that the values break
        raise ConfigError(f"{prefix.rstrip('.') or cls.__name__}: {exc}") from None


def resolve(cls: type[C], configs: Iterable[str | os.PathLike] = (), overrides: Iterable[str] = ()) -> C:
    """Return cls resolved from defaults, then each YAML file, then each `key=value` override, in order."""
    schema, values = Schema(cls), {}
    for path in configs:
        apply_yaml(schema, path, values)
    for item in overrides:
        key, eq, text = item.partition("=")
        if not eq:
            raise ConfigError(f"override {item}: expected key=value")
        apply_override(schema, key, text, f"override {item}", values)
    return build(schema, values)


def load_yaml(cls: type[C], path: str | os.PathLike) -> C:
    """Return cls from its defaults and one YAML file (e.g. a run's saved config.yaml)."""
    return resolve(cls, [path])


def from_dict(cls: type[C], data: Mapping[str, Any], *, source: str = "<dict>") -> C:
    """Return cls from its defaults and a nested mapping (the inverse of to_dict)."""
    schema, values = Schema(cls), {}
    _flatten(schema, data, "", lambda _: source, values)
    return build(schema, values)
