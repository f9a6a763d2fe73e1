"""JSONL reading with per-line validation and atomic JSONL writing (`.jsonl` or `.jsonl.gz`).

Reading goes through `shared.textfile`: gzip is found by its magic bytes (a `.gz` name with plain
text in it is refused), text must be UTF-8 (a leading UTF-8 byte-order mark is skipped), and every
malformed input (bad bytes, a truncated gzip file, NUL bytes, a line that is not a JSON object)
raises RecordError with one line naming the file and the line.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from shared.atomic import atomic_writer
from shared.records.types import RecordError
from shared.textfile import is_gzip_name, iter_lines

R = TypeVar("R")


def _not_jsonl_hint(lineno: int, line: str) -> str:
    # A `.json` file holding one array is the usual mistake; say so where it shows (line 1 opens with `[`).
    if lineno == 1 and line.lstrip().startswith("["):
        return " (JSONL holds one JSON object per line, not a JSON array)"
    return ""


def iter_json_objects(path: str | os.PathLike) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, JSON object) per non-blank line of a JSONL file; RecordError `path:line: ...` on a line
    that is not JSON or not an object. The reader of every JSONL file a user hands in, records or an app's own."""
    path = Path(path)
    for lineno, line in iter_lines(path, error=RecordError):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            hint = _not_jsonl_hint(lineno, line)
            raise RecordError(f"{where}: invalid JSON: {exc.msg} (column {exc.colno}){hint}") from None
        if not isinstance(obj, dict):  # checked here for every kind, so no from_dict meets a list or a number
            hint = _not_jsonl_hint(lineno, line)
            raise RecordError(f"{where}: expected a JSON object, got {type(obj).__name__}{hint}")
        yield lineno, obj


def iter_jsonl(path: str | os.PathLike, kind: type[R] | None = None) -> Iterator[R | dict[str, Any]]:
    """Yield one validated record (or raw dict when kind is None) per non-blank line; RecordError `path:line: ...`.

    `kind` is a class with `from_dict(obj, where=...)`; it is only given JSON objects.
    """
    for lineno, obj in iter_json_objects(path):
        yield obj if kind is None else kind.from_dict(obj, where=f"{Path(path)}:{lineno}")  # type: ignore[attr-defined]


def read_jsonl(path: str | os.PathLike, kind: type[R] | None = None) -> list[R | dict[str, Any]]:
    """Return every record of the file, validated; raise RecordError `path:line: ...` on the first bad line."""
    return list(iter_jsonl(path, kind))


def _to_dict(record: Any) -> Mapping[str, Any]:
    if hasattr(record, "to_dict"):
        return record.to_dict()
    if isinstance(record, Mapping):
        return record
    raise TypeError(f"expected a record or a dict, got {type(record).__name__}")


def write_jsonl(path: str | os.PathLike, records: Iterable[Any]) -> Path:
    """Write records atomically (temp file, fsync, rename) and return the path."""
    path = Path(path)
    with atomic_writer(path) as raw:
        # mtime=0 keeps gzip output byte-identical across runs.
        stream = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) if is_gzip_name(path) else raw
        for lineno, record in enumerate(records, start=1):
            try:
                line = json.dumps(_to_dict(record), ensure_ascii=False, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise RecordError(f"{path}:{lineno}: cannot serialise record: {exc}") from None
            stream.write(line.encode("utf-8") + b"\n")
        if stream is not raw:
            stream.close()
    return path
