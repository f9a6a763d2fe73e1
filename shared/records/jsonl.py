"""JSONL reading with per-line validation and atomic JSONL writing (`.jsonl` or `.jsonl.gz`)."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, TypeVar

from shared.atomic import atomic_writer
from shared.records.types import RecordError

R = TypeVar("R")


def _open_text(path: Path, mode: str) -> IO[str]:
    if path.name.endswith(".gz"):
        return gzip.open(path, mode + "t", encoding="utf-8")  # type: ignore[return-value]
    return open(path, mode, encoding="utf-8")


def iter_jsonl(path: str | os.PathLike, kind: type[R] | None = None) -> Iterator[R | dict[str, Any]]:
    """Yield one validated record (or raw dict when kind is None) per non-blank line."""
    path = Path(path)
    with _open_text(path, "r") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                obj = json.loads(line.rstrip("\r\n"))
            except json.JSONDecodeError as exc:
                raise RecordError(f"{where}: invalid JSON: {exc.msg} (column {exc.colno})") from None
            if kind is None:
                if not isinstance(obj, dict):
                    raise RecordError(f"{where}: expected a JSON object, got {type(obj).__name__}")
                yield obj
            else:
                yield kind.from_dict(obj, where=where)  # type: ignore[attr-defined]


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
        stream = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) if path.name.endswith(".gz") else raw
        for lineno, record in enumerate(records, start=1):
            try:
                line = json.dumps(_to_dict(record), ensure_ascii=False, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise RecordError(f"{path}:{lineno}: cannot serialise record: {exc}") from None
            stream.write(line.encode("utf-8") + b"\n")
        if stream is not raw:
            stream.close()
    return path
