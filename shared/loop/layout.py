"""Where each artefact of a run lives: run_dir/round_NNN/{candidates,scored,pairs}.jsonl, checkpoint/, ..."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

STAGES = ("sample", "score", "build", "fit", "evaluate")

# The file each stage writes last; state.json names a step complete only once it exists.
ARTEFACTS = {
    "sample": "candidates.jsonl",
    "score": "scored.jsonl",
    "build": "pairs.jsonl",
    "fit": "fit.json",
    "evaluate": "metrics.json",
}

_ROUND_DIR = re.compile(r"round_\d{3,}")


@dataclass(frozen=True)
class RunLayout:
    """Paths inside one run folder."""

    root: Path

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def metrics_csv(self) -> Path:
        return self.root / "metrics.csv"

    @property
    def plot(self) -> Path:
        return self.root / "rounds.png"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    def round_dir(self, r: int) -> Path:
        """Return the folder of round `r` (0-based)."""
        return self.root / f"round_{r:03d}"

    def artefact(self, r: int, stage: str) -> Path:
        """Return the file that stage `stage` of round `r` writes."""
        return self.round_dir(r) / ARTEFACTS[stage]

    def checkpoint(self, r: int) -> Path:
        """Return the folder a finished fit's checkpoint is moved to."""
        return self.round_dir(r) / "checkpoint"

    def staging(self, r: int) -> Path:
        """Return the folder a fit writes into; it becomes checkpoint/ only once fit returns."""
        return self.round_dir(r) / "checkpoint.partial"

    def round_dirs(self) -> list[Path]:
        """Return the round folders present on disk, in order."""
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if p.is_dir() and _ROUND_DIR.fullmatch(p.name))

    def loop_files(self) -> list[Path]:
        """Return everything the loop itself has written here (not the app's other files)."""
        files = [self.state, self.metrics_csv, self.plot]
        return [p for p in files if p.exists()] + self.round_dirs()
