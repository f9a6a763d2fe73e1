"""The loop's file operations: atomic writes (from shared.atomic), whole-folder swaps, temp-file sweeps."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from shared.atomic import TEMP_GLOB, fsync_dir, write_bytes, write_json  # noqa: F401  (re-exported for the loop)


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
