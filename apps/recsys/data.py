"""The recommendation data of a run: interactions, items, the leave-last-out split and the user simulator.

Default: MovieLens-100k, read at run time from the installed `recbole` package's example files (never
copied into the repo: the MovieLens licence forbids redistribution). Users' own files come by path:
an interaction file (user, item, timestamp[, rating]: RecBole atomic, CSV/TSV or Amazon-review JSON
lines) and an item table (apps.recsys.interactions). Each user's items are ordered by time; the last
is the test target, the second-to-last the validation target, the rest trains (RecBole's
leave-one-out). Training examples slide over each training sequence: the up-to-`max_history` items
before position t are the history, the `session` items from t on the target session.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from apps.recsys.interactions import (
    Item,
    Split,
    item_popularity,
    leave_last_out,
    load_movielens_100k,
    read_interactions,
    read_items,
    user_sequences,
)
from apps.recsys.simulator import SimulatorArgs, UserSimulator

MOVIELENS = "movielens-100k"


@dataclass
class DataArgs:
    """Where interactions and items come from and how they are cut.

    Attributes:
        interactions: "movielens-100k" (from the installed recbole package) or an interaction file path.
        items: the item table path (ignored for movielens-100k).
        min_interactions: users with fewer interactions are dropped.
        min_rating: keep only interactions rated at least this (0: all).
        max_users: use at most this many users (a seeded draw; 0: all).
        max_history: most recent items the generator reads.
        session: items per generated session (OneRec's m).
        window_stride: one training window every this many positions of a training sequence.
        simulator: the synthetic user simulator whose known tastes give the true engagement.
    """

    interactions: str = MOVIELENS
    items: str = ""
    min_interactions: int = 5
    min_rating: float = 0.0
    max_users: int = 0
    max_history: int = 20
    session: int = 5
    window_stride: int = 1
    simulator: SimulatorArgs = field(default_factory=SimulatorArgs)


@dataclass
class RecData:
    """Everything a run reads: items (only those some kept user interacted with), the split, popularity, simulator."""

    items: dict[str, Item]
    item_ids: list[str]
    split: Split
    popularity: dict[str, int]
    simulator: UserSimulator

    def windows(self, max_history: int, session: int, stride: int = 1) -> list[tuple[list[str], list[str]]]:
        """(history, next session) training windows from every training sequence (histories non-empty)."""
        out = []
        for user in sorted(self.split.train):
            seq = self.split.train[user]
            for t in range(1, len(seq), max(1, stride)):
                out.append((seq[max(0, t - max_history):t], seq[t:t + session]))
        return out


def load_data(args: DataArgs, seed: int) -> RecData:
    """Read, order and split the interactions; build the simulator. Raises ValueError with path:line on bad files."""
    if args.interactions == MOVIELENS:
        interactions, items = load_movielens_100k()
    else:
        if not args.items:
            raise ValueError("data.items: an item table path is needed with data.interactions set to a file")
        interactions, items = read_interactions(args.interactions), read_items(args.items)
    sequences = user_sequences(interactions, items, min_interactions=max(3, args.min_interactions),
                               min_rating=args.min_rating or None)
    if args.max_users and len(sequences) > args.max_users:
        keep = sorted(random.Random(seed).sample(sorted(sequences), args.max_users))
        sequences = {u: sequences[u] for u in keep}
    if not sequences:
        raise ValueError(f"data.interactions: no user has {max(3, args.min_interactions)} or more interactions")
    split = leave_last_out(sequences, max_history=10**9)  # histories are cut where each model reads them
    used = sorted({i for seq in sequences.values() for i in seq}, key=_item_order)
    kept = {i: items[i] for i in used}
    popularity = item_popularity(split.train)
    return RecData(kept, used, split, popularity, UserSimulator(kept, popularity, args.simulator))


def _item_order(item: str):
    return (0, int(item), item) if item.isdigit() else (1, 0, item)
