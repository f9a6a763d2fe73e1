"""A simulated user with known tastes: the true click, like and watch probabilities of every (user, item).

Rewards and a learned reward model can then be checked against the truth instead of against logs.

Each item has a unit latent vector v_i: the mean of its genres' random unit vectors scaled by `genre_weight`,
plus an item-specific random part of size ITEM_NOISE, L2-normalised; and a popularity prior p_i, log(1 + count)
standardised over the catalogue. A user's taste u is the recency-weighted mean of the history's vectors
(weights RECENCY_DECAY ** age, the newest age 0), normalised, plus `personal_weight` times the user's own
random unit vector, normalised. With affinity s = u . v_i (a cosine):

    click = sigmoid(sharpness * s + 0.5 * p - 1)       the chance the user clicks the item
    like  = sigmoid(1.5 * sharpness * s - 2)           the chance the user likes it
    watch = sigmoid(sharpness * s + 0.2 * p - 0.5)     the expected share of it watched, in [0, 1]

Every random vector comes from a generator seeded by a hash (hashlib, stable across runs and machines) of
the seed, its kind and its name, so an item's vector depends neither on the catalogue's order nor on the others.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from apps.recsys.interactions import Item

SIGNALS = ("click", "like", "watch")
ITEM_NOISE = 0.3  # size of an item's own random part next to its genre part
RECENCY_DECAY = 0.9  # weight of a history item per position back from the newest
CLICK_POPULARITY = 0.5
CLICK_BIAS = -1.0
LIKE_SHARPNESS_SCALE = 1.5
LIKE_BIAS = -2.0
WATCH_POPULARITY = 0.2
WATCH_BIAS = -0.5
CANDIDATE_MODES = ("mixed", "popular", "uniform")


@dataclass
class SimulatorArgs:
    """The simulated users' tastes.

    Attributes:
        dim: size of the latent vectors.
        genre_weight: weight of an item's genres in its vector (0: items are unrelated random vectors).
        personal_weight: weight of a user's own random taste next to the taste read from the history.
        sharpness: how strongly affinity moves the probabilities.
        seed: seeds every random vector.
    """

    dim: int = 16
    genre_weight: float = 1.0
    personal_weight: float = 0.5
    sharpness: float = 4.0
    seed: int = 0


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """Return the logistic function of `x`, elementwise."""
    return 1.0 / (1.0 + np.exp(-x))


def _unit(vector: np.ndarray) -> np.ndarray:
    """Return `vector` scaled to length 1 (a zero vector stays zero)."""
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


class UserSimulator:
    """Known tastes over an item table: taste vectors, true signal probabilities, logged impressions drawn from them."""

    def __init__(self, items: dict[str, Item], popularity: dict[str, int], args: SimulatorArgs | None = None):
        args = args or SimulatorArgs()
        if not items:
            raise ValueError("the simulator needs at least one item")
        if args.dim < 1:
            raise ValueError(f"SimulatorArgs.dim must be at least 1, got {args.dim}")
        unknown = [item for item in popularity if item not in items]
        if unknown:
            raise ValueError(f"{len(unknown)} popularity entries name items missing from the item table, "
                             f"e.g. {unknown[0]!r}")
        self.args = args
        self.item_ids: tuple[str, ...] = tuple(items)
        self.index: dict[str, int] = {item: i for i, item in enumerate(self.item_ids)}
        self.factors = np.stack([self._item_vector(items[item]) for item in self.item_ids])
        counts = np.array([popularity.get(item, 0) for item in self.item_ids], dtype=np.float64)
        if (counts < 0).any():
            raise ValueError("popularity counts must be non-negative")
        self.counts = counts
        prior = np.log1p(counts)
        spread = prior.std()
        self.popularity = (prior - prior.mean()) / spread if spread > 0 else np.zeros_like(prior)

    def _random_unit(self, kind: str, name: str) -> np.ndarray:
        """Return the fixed random unit vector of (kind, name) under this seed."""
        digest = hashlib.blake2b(f"{self.args.seed}\x00{kind}\x00{name}".encode(), digest_size=8).digest()
        rng = np.random.default_rng(int.from_bytes(digest, "little"))
        return _unit(rng.standard_normal(self.args.dim))

    def _item_vector(self, item: Item) -> np.ndarray:
        """Return the item's unit latent vector: its genres' part plus its own random part, normalised."""
        vector = ITEM_NOISE * self._random_unit("item", item.id)
        if item.genres:
            genre_part = np.mean([self._random_unit("genre", genre) for genre in item.genres], axis=0)
            vector = vector + self.args.genre_weight * genre_part
        return _unit(vector)

    def _indices(self, items: Sequence[str], what: str) -> np.ndarray:
        """Return the catalogue positions of `items`; ValueError naming the first unknown one."""
        try:
            return np.array([self.index[item] for item in items], dtype=np.int64)
        except KeyError as exc:
            raise ValueError(f"{what} names item {exc.args[0]!r}, which is not in the simulator's item table") from None

    def taste(self, user: str, history: Sequence[str]) -> np.ndarray:
        """Return the user's unit taste vector (dim,): recency-weighted history plus the user's own random part."""
        personal = self.args.personal_weight * self._random_unit("user", user)
        if not history:
            return _unit(personal)
        positions = self._indices(history, f"the history of user {user!r}")
        weights = RECENCY_DECAY ** np.arange(len(positions) - 1, -1, -1, dtype=np.float64)
        from_history = _unit(weights @ self.factors[positions])
        return _unit(from_history + personal)

    def probabilities(self, user: str, history: Sequence[str], items: Sequence[str]) -> dict[str, np.ndarray]:
        """Return each signal's true probability for `items` under the user's taste: {signal: (len(items),)}."""
        positions = self._indices(items, "the scored items")
        return self._probabilities(self.taste(user, history), positions)

    def _probabilities(self, taste: np.ndarray, positions: np.ndarray) -> dict[str, np.ndarray]:
        """Return each signal's probability at catalogue `positions` for a taste vector."""
        affinity = self.factors[positions] @ taste
        prior = self.popularity[positions]
        sharpness = self.args.sharpness
        return {
            "click": _sigmoid(sharpness * affinity + CLICK_POPULARITY * prior + CLICK_BIAS),
            "like": _sigmoid(LIKE_SHARPNESS_SCALE * sharpness * affinity + LIKE_BIAS),
            "watch": _sigmoid(sharpness * affinity + WATCH_POPULARITY * prior + WATCH_BIAS),
        }

    def session_engagement(self, user: str, history: Sequence[str], session: Sequence[str]) -> dict[str, float]:
        """Return the mean true probability of each signal over the session's items, and "total", their mean."""
        if not session:
            raise ValueError(f"the session for user {user!r} is empty")
        truth = self.probabilities(user, history, session)
        out = {signal: float(truth[signal].mean()) for signal in SIGNALS}
        out["total"] = float(np.mean([out[signal] for signal in SIGNALS]))
        return out

    def sample_impressions(self, users: dict[str, list[str]], *, per_user: int, rng: np.random.Generator,
                           candidates: str = "mixed") -> list[dict]:
        """Return simulated logged impressions with labels drawn from the truth, to train a reward model.

        For each user (id -> history), `per_user` distinct items outside the history: with "mixed", half
        drawn by popularity (weights count + 1) and the rest uniformly; "popular" or "uniform" draw all one
        way. Each impression: {"user", "item", "click", "like", "watch" (0/1: Bernoulli of the truth; watch
        means more than half watched), "truth": {signal: probability}}. The same rng state gives the same list.
        """
        if candidates not in CANDIDATE_MODES:
            raise ValueError(f"candidates must be one of {', '.join(CANDIDATE_MODES)}, got {candidates!r}")
        if per_user < 1:
            raise ValueError(f"per_user must be at least 1, got {per_user}")
        weights = self.counts + 1.0
        out: list[dict] = []
        for user, history in users.items():
            seen = self._indices(history, f"the history of user {user!r}")
            allowed = np.ones(len(self.item_ids), dtype=bool)
            allowed[seen] = False
            if allowed.sum() < per_user:
                raise ValueError(f"user {user!r} has {int(allowed.sum())} unseen items, fewer than per_user={per_user}")
            n_popular = {"mixed": per_user // 2, "popular": per_user, "uniform": 0}[candidates]
            pool = np.flatnonzero(allowed)
            chosen = np.empty(0, dtype=np.int64)
            if n_popular:
                p = weights[pool] / weights[pool].sum()
                chosen = rng.choice(pool, size=n_popular, replace=False, p=p)
                allowed[chosen] = False
                pool = np.flatnonzero(allowed)
            if per_user > n_popular:
                chosen = np.concatenate([chosen, rng.choice(pool, size=per_user - n_popular, replace=False)])
            truth = self._probabilities(self.taste(user, history), chosen)
            draws = {signal: rng.random(len(chosen)) < truth[signal] for signal in SIGNALS}
            for k, position in enumerate(chosen):
                record: dict = {"user": user, "item": self.item_ids[int(position)]}
                record.update({signal: int(draws[signal][k]) for signal in SIGNALS})
                record["truth"] = {signal: float(truth[signal][k]) for signal in SIGNALS}
                out.append(record)
        return out
