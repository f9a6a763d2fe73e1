"""Percentile bootstrap intervals of a mean, over items, over clusters of items, or per stratum."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

import numpy as np


def _groups(keys: Sequence[Hashable]) -> list[list[int]]:
    """Indices of equal keys, groups in order of first appearance."""
    where: dict[Hashable, list[int]] = {}
    for i, k in enumerate(keys):
        where.setdefault(k, []).append(i)
    return list(where.values())


def _cluster_draws(x: np.ndarray, clusters: Sequence[Hashable] | None, rng: np.random.Generator,
                   resamples: int) -> np.ndarray:
    """Bootstrap replicates of the mean of x: items resampled one by one, or whole clusters together."""
    if clusters is None:
        return x[rng.integers(0, x.size, size=(resamples, x.size))].mean(axis=1)
    groups = _groups(clusters)
    sums = np.array([x[g].sum() for g in groups])
    counts = np.array([len(g) for g in groups], dtype=float)
    pick = rng.integers(0, len(groups), size=(resamples, len(groups)))
    return sums[pick].sum(axis=1) / counts[pick].sum(axis=1)


def point_estimate(values: Sequence[float], strata: Sequence[Hashable] | None = None) -> float:
    """Return the mean of values, or with strata the mean of the per-stratum means (a macro average); NaN when empty."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return math.nan
    if strata is None:
        return float(x.mean())
    return float(np.mean([x[g].mean() for g in _groups(strata)]))


def bootstrap_interval(values: Sequence[float], *, clusters: Sequence[Hashable] | None = None,
                       strata: Sequence[Hashable] | None = None, resamples: int = 2000, level: float = 0.95,
                       seed: int = 0) -> tuple[float, float]:
    """Return the percentile bootstrap interval of point_estimate(values, strata) (NaNs when there are no values).

    Items are resampled with replacement, or whole clusters (e.g. all images of one prompt) when
    `clusters` gives each item's cluster; with `strata`, each stratum is resampled on its own and
    the replicate is the mean of the stratum means. One generator seeded with `seed` per call, so
    an interval depends only on its own values.
    """
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return math.nan, math.nan
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    if strata is None:
        draws = _cluster_draws(x, clusters, rng, resamples)
    else:
        per_stratum = [_cluster_draws(x[g], None if clusters is None else [clusters[i] for i in g], rng, resamples)
                       for g in _groups(strata)]
        draws = np.mean(per_stratum, axis=0)
    tail = (1 - level) / 2 * 100
    return float(np.percentile(draws, tail)), float(np.percentile(draws, 100 - tail))
