"""Metrics over per-item rows: which rows a metric reads, its value and its bootstrap interval."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.evaluation.stats import bootstrap_interval, point_estimate


@dataclass(frozen=True)
class Metric:
    """A mean over the rows that carry it, with a bootstrap interval.

    Attributes:
        name: the metric's name in results files (and the row field it reads, unless `field` is set).
        label: the column heading in table.md (default: name).
        field: the row field holding each row's value (a number or bool; rows without it, or with None, are skipped).
        where: (field, value): only rows whose field equals value (e.g. ("category", "counting")).
        cluster: row field whose equal values are resampled together (e.g. a prompt's several images).
        stratify: row field; the metric is the mean of the per-stratum means (each stratum resampled on its own).
    """

    name: str
    label: str = ""
    field: str = ""
    where: tuple[str, Any] | None = None
    cluster: str | None = None
    stratify: str | None = None

    @property
    def heading(self) -> str:
        return self.label or self.name

    def rows(self, rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """Return the rows this metric is computed over."""
        key = self.field or self.name
        out = [r for r in rows if r.get(key) is not None]
        if self.where is not None:
            out = [r for r in out if r.get(self.where[0]) == self.where[1]]
        return out

    def values(self, rows: Sequence[Mapping[str, Any]]) -> list[float]:
        key = self.field or self.name
        return [float(r[key]) for r in rows]

    def point(self, rows: Sequence[Mapping[str, Any]]) -> float:
        """Return the metric's value over rows (only those it reads; NaN when there are none)."""
        picked = self.rows(rows)
        return point_estimate(self.values(picked), [r[self.stratify] for r in picked] if self.stratify else None)


@dataclass(frozen=True)
class Estimate:
    """A metric's value with its interval and the number of rows behind it."""

    value: float
    low: float
    high: float
    n: int

    def cell(self, digits: int = 3, interval_digits: int = 2) -> str:
        """Return `value [low, high]` for a table ('-' without rows)."""
        if self.n == 0 or math.isnan(self.value):
            return "-"
        return f"{self.value:.{digits}f} [{self.low:.{interval_digits}f}, {self.high:.{interval_digits}f}]"


def estimate(metric: Metric, rows: Sequence[Mapping[str, Any]], *, resamples: int = 2000, level: float = 0.95,
             seed: int = 0) -> Estimate:
    """Return the metric over rows with its percentile bootstrap interval."""
    picked = metric.rows(rows)
    values = metric.values(picked)
    clusters = [r[metric.cluster] for r in picked] if metric.cluster else None
    strata = [r[metric.stratify] for r in picked] if metric.stratify else None
    low, high = bootstrap_interval(values, clusters=clusters, strata=strata, resamples=resamples, level=level, seed=seed)
    return Estimate(point_estimate(values, strata), low, high, len(picked))


def summarize(rows: Sequence[Mapping[str, Any]], metrics: Sequence[Metric], *, resamples: int = 2000,
              level: float = 0.95, seed: int = 0) -> dict[str, float]:
    """Return {name, name_low, name_high} for every metric that has rows (a flat dict, e.g. a round's metrics)."""
    out: dict[str, float] = {}
    for m in metrics:
        e = estimate(m, rows, resamples=resamples, level=level, seed=seed)
        if e.n:
            out.update({m.name: e.value, f"{m.name}_low": e.low, f"{m.name}_high": e.high})
    return out
