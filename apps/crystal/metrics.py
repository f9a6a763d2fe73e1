"""Rates over a set of scored samples, with 95% bootstrap intervals over samples.

Stable: E_hull <= 0 eV/atom against the local CHGNet hull; metastable: E_hull <= 0.08 eV/atom (PLaID++'s
threshold). S.U.N.: stable, unique and novel (and valid). Rates are over all samples, so a text that
does not parse counts as a failure in every rate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

METASTABLE = 0.08


def _flags(scores: Mapping[str, float]) -> dict[str, bool]:
    e = scores.get("e_hull", math.inf)
    valid = scores.get("valid_crystal", 0.0) >= 0.5
    unique, novel = scores.get("unique", 0.0) >= 0.5, scores.get("novel", 0.0) >= 0.5
    return {
        "parsed": scores.get("parsed", 0.0) >= 0.5,
        "struct_valid": scores.get("struct_valid", 0.0) >= 0.5,
        "comp_valid": scores.get("comp_valid", 0.0) >= 0.5,
        "valid": valid,
        "stable": valid and e <= 0.0,
        "metastable": valid and e <= METASTABLE,
        "unique": valid and unique,
        "novel": valid and novel,
        "sun": valid and e <= 0.0 and unique and novel,
        "msun": valid and e <= METASTABLE and unique and novel,
    }


def bootstrap(values: np.ndarray, draws: int = 2000, seed: int = 0) -> tuple[float, float]:
    if len(values) == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(draws, len(values)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def summarize(samples: Sequence[Mapping[str, float]], conditional: Sequence[Mapping[str, float]] = ()) -> dict[str, float]:
    """Return each rate with _low/_high bounds; `conditional` samples give the space-group match rate."""
    out: dict[str, float] = {"samples": float(len(samples))}
    flags = [_flags(s) for s in samples]
    for name in ("parsed", "struct_valid", "comp_valid", "valid", "stable", "metastable", "unique", "novel", "sun", "msun"):
        values = np.array([f[name] for f in flags], dtype=float)
        out[name] = float(values.mean()) if len(values) else math.nan
        out[f"{name}_low"], out[f"{name}_high"] = bootstrap(values)
    hulls = [s["e_hull"] for s in samples if "e_hull" in s]
    out["median_e_hull"] = float(np.median(hulls)) if hulls else math.nan
    if conditional:
        values = np.array([s.get("sg_match", 0.0) >= 0.5 for s in conditional], dtype=float)
        out["sg_samples"] = float(len(values))
        out["sg_match"] = float(values.mean())
        out["sg_match_low"], out["sg_match_high"] = bootstrap(values)
    return out
