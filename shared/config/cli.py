"""Command line: `--config FILE ...`, `key=value` / `--key value` overrides, `--help`, `--print-config`."""

from __future__ import annotations

import dataclasses
import shutil
import sys
import textwrap
import types
import typing
from pathlib import Path
from typing import TypeVar

from shared.config.load import apply_override, apply_yaml, build
from shared.config.save import to_yaml
from shared.config.schema import ConfigError, Schema, summary
from shared.config.values import format_value, type_name

C = TypeVar("C")

_USAGE_NOTE = (
    "Values resolve as: field defaults < each --config file, in order < each override, in order. "
    "Override any option below as key=value or --key value; values are read as YAML "
    "(1e-5, [a, b], {k: 1}, null). A later file or override of a list or dict replaces it whole."
)


def _is_flag(tp: typing.Any) -> bool:
    return tp is bool or (typing.get_origin(tp) in (typing.Union, types.UnionType)
                          and set(typing.get_args(tp)) == {bool, type(None)})


def _wrap(text: str, indent: str) -> str:
    width = max(60, min(shutil.get_terminal_size((100, 24)).columns, 100))
    return textwrap.fill(" ".join(text.split()), width, initial_indent=indent, subsequent_indent=indent)


def help_text(cls: type, *, description: str = "", prog: str = "") -> str:
    """Return the --help text: usage, then every option (dotted) with its type, default and doc."""
    schema = Schema(cls)
    out = [f"usage: {prog or _prog()} [-h] [--config FILE ...] [--print-config] [KEY=VALUE | --KEY VALUE ...]", ""]
    description = description.strip() or summary(cls)
    if description:
        out += [description, ""]
    out += [_wrap(_USAGE_NOTE, ""), "", "options:",
            "  -h, --help        show this help and exit",
            "  --config FILE     a YAML config file; repeat to layer several (later wins)",
            "  --print-config    print the resolved config as YAML and exit"]
    group = None
    for key, option in schema.options.items():
        parent = key.rpartition(".")[0]
        if parent != group:
            group = parent
            doc = schema.groups[parent].doc if parent else summary(cls)
            out += ["", f"{parent or cls.__name__}:" + (f" {doc}" if doc else "")]
        default = "(required)" if option.default is dataclasses.MISSING else f"= {format_value(option.default)}"
        out.append(f"  --{key}: {type_name(option.type)} {default}")
        if option.doc:
            out.append(_wrap(option.doc, " " * 6))
    return "\n".join(out) + "\n"


def _prog() -> str:
    return Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "prog"


def parse(cls: type[C], argv: list[str] | None = None, *, description: str = "", prog: str = "") -> C:
    """Return cls resolved from argv; --help/--print-config print and raise SystemExit(0); ConfigError on mistakes."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "-h" in argv or "--help" in argv:
        sys.stdout.write(help_text(cls, description=description, prog=prog))
        raise SystemExit(0)
    schema, configs, overrides, print_config = Schema(cls), [], [], False
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--print-config":
            print_config = True
        elif token == "--config" or token.startswith("--config="):
            path = token.partition("=")[2] if "=" in token else (argv[i + 1] if i + 1 < len(argv) else "")
            i += "=" not in token
            if not path:
                raise ConfigError("--config: expected a YAML file path")
            configs.append(path)
        elif token.startswith("--") and len(token) > 2:
            key, eq, text = token[2:].partition("=")
            option = schema.options.get(key.replace("-", "_"))
            following = argv[i + 1] if i + 1 < len(argv) else None
            source = f"override {token}"
            if not eq:
                if option is not None and _is_flag(option.type) and (following is None or following.startswith("--")):
                    text = "true"  # a bare `--flag`
                elif following is None:
                    raise ConfigError(f"{source}: expected a value after it")
                else:
                    text, i, source = following, i + 1, f"{source} {following}"
            overrides.append((key, text, source))
        elif "=" in token and not token.startswith("-"):
            key, _, text = token.partition("=")
            overrides.append((key, text, f"override {token}"))
        else:
            raise ConfigError(f"unexpected argument {token!r}: use key=value, --key value or --config FILE")
        i += 1
    values: dict = {}
    for path in configs:
        apply_yaml(schema, path, values)
    for key, text, source in overrides:
        apply_override(schema, key, text, source, values)
    cfg = build(schema, values)
    if print_config:
        sys.stdout.write(to_yaml(cfg))
        raise SystemExit(0)
    return cfg


def parse_or_exit(cls: type[C], argv: list[str] | None = None, *, description: str = "", prog: str = "") -> C:
    """Return parse(...); on a ConfigError print `prog: error: <message>` (one line) to stderr and exit 2."""
    try:
        return parse(cls, argv, description=description, prog=prog)
    except ConfigError as exc:
        message = " ".join(str(exc).splitlines())
        print(f"{prog or _prog()}: error: {message}", file=sys.stderr)
        raise SystemExit(2) from None
