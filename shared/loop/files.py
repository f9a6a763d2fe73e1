"""Atomic writes for the loop's JSON, CSV and PNG files, and removal of temp files a killed run left."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

# Same pattern as shared.records.write_jsonl's temp files, so one sweep removes both kinds.
TEMP_GLOB = ".*.tmp"


def write_bytes(path: Path, data: bytes) -> Path:
    """Write `data` to `path` atomically: temp file in the same folder, fsync, os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def write_json(path: Path, obj: Any) -> Path:
    """Write `obj` as indented JSON atomically (NaN and infinity refused)."""
    return write_bytes(path, (json.dumps(obj, indent=1, allow_nan=False) + "\n").encode("utf-8"))


def read_json(path: Path) -> Any:
    """Return the JSON value in `path`."""
    return json.loads(path.read_text(encoding="utf-8"))


def replace_dir(src: Path, dst: Path) -> None:
    """Move folder `src` to `dst`, replacing a `dst` that exists, so `dst` is never half there."""
    if dst.exists():
        # A complete folder left by a run killed between this move and its state update.
        old = dst.parent / f".{dst.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.old"
        os.replace(dst, old)
        os.replace(src, dst)
        shutil.rmtree(old)
    else:
        os.replace(src, dst)
    fsync_dir(dst.parent)


def remove_temp_files(folders: list[Path]) -> list[Path]:
    """Delete the temp files and half-replaced folders a killed writer left in `folders`; return them."""
    removed = []
    for folder in folders:
        for path in sorted(folder.glob(TEMP_GLOB)) + sorted(folder.glob(".*.old")):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable, where the platform can open a folder."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
