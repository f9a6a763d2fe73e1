"""What an app supplies to the loop: five stage callables, and the per-round context they receive."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Union

from shared.loop.errors import LoopError
from shared.loop.layout import STAGES
from shared.records import Candidate, Pair, RankedList

PathLike = Union[str, os.PathLike]


@dataclass(frozen=True)
class Round:
    """The round a stage runs in: index (0-based), its seed, its folder and its schedule values."""

    index: int
    seed: int
    dir: Path
    schedule: dict[str, Any]
    # Where fit should save; the loop renames it to dir/checkpoint once fit returns.
    checkpoint_dir: Path


class Recipe(Protocol):
    """The app's side of the loop. Any object with these five methods (or a RecipeFunctions) will do."""

    def sample(self, round: Round, checkpoint: Path | None, schedule: dict[str, Any]) -> list[Candidate]:
        """Return new candidates from the policy at `checkpoint` (None: the app's initial policy)."""
        ...

    def score(self, round: Round, candidates: list[Candidate]) -> list[Candidate]:
        """Return the candidates with their scores filled in."""
        ...

    def build(self, round: Round, scored: list[Candidate]) -> list[Pair] | list[RankedList]:
        """Return the pairs (or ranked lists) to train on."""
        ...

    def fit(self, round: Round, pairs: list[Pair] | list[RankedList], schedule: dict[str, Any],
            init_checkpoint: Path | None) -> PathLike:
        """Train from `init_checkpoint` (under Lightning), save under round.checkpoint_dir, return the saved path."""
        ...

    def evaluate(self, round: Round, checkpoint: Path) -> Mapping[str, float]:
        """Return this round's metrics by name."""
        ...


@dataclass(frozen=True)
class RecipeFunctions:
    """A Recipe made of five plain functions, for apps that need no class."""

    sample: Callable[[Round, Path | None, dict[str, Any]], list[Candidate]]
    score: Callable[[Round, list[Candidate]], list[Candidate]]
    build: Callable[[Round, list[Candidate]], list[Pair] | list[RankedList]]
    fit: Callable[[Round, list, dict[str, Any], Path | None], PathLike]
    evaluate: Callable[[Round, Path], Mapping[str, float]]


def check_recipe(recipe: Any) -> None:
    """Raise LoopError naming the first stage the recipe lacks."""
    for stage in STAGES:
        if not callable(getattr(recipe, stage, None)):
            raise LoopError(f"recipe {type(recipe).__name__} has no callable '{stage}'")


def round_seed(seed: int, r: int) -> int:
    """Return round r's seed: a hash of (seed, r), so runs with nearby seeds do not share rounds."""
    digest = hashlib.sha256(f"{seed}/{r}".encode()).digest()
    return int.from_bytes(digest[:4], "big")
