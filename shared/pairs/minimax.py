"""DSTC minimax selection over a code x test pass matrix.

DSTC (paper; no public code): chosen = the code passing the most tests together with the tests it
passes; rejected = the code passing the fewest together with the tests it fails. Which tests go with
each response is an unverified detail of METHODS.md; this is our reading of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from shared.records import Pair, Text


def _as_pass_matrix(pass_matrix: Any, n_codes: int, n_tests: int) -> np.ndarray:
    try:
        arr = np.asarray(pass_matrix)
    except ValueError:
        raise ValueError(f"pass_matrix must be codes x tests = ({n_codes}, {n_tests}), got ragged rows") from None
    if arr.shape != (n_codes, n_tests):
        raise ValueError(f"pass_matrix must be codes x tests = ({n_codes}, {n_tests}), got shape {arr.shape}")
    if arr.dtype.kind not in "biuf" or not np.isin(arr, (0, 1)).all():
        raise ValueError("pass_matrix entries must be booleans or 0/1")
    return arr.astype(bool)


def minimax_pairs(
    codes: Sequence[str], tests: Sequence[str], pass_matrix: Any, *, prompt: Text, joiner: str = "\n\n"
) -> Pair | None:
    """Return the DSTC pair (most-passing code + its passed tests vs fewest-passing code + its failed tests),
    or None when every code passes the same number of tests; ties go to the lowest index."""
    if len(codes) < 2:
        return None
    passed = _as_pass_matrix(pass_matrix, len(codes), len(tests))
    counts = passed.sum(axis=1)
    best, worst = int(np.argmax(counts)), int(np.argmin(counts))
    if counts[best] == counts[worst]:
        return None
    chosen = joiner.join([codes[best], *(t for t, ok in zip(tests, passed[best]) if ok)])
    rejected = joiner.join([codes[worst], *(t for t, ok in zip(tests, passed[worst]) if not ok)])
    return Pair(
        prompt=prompt,
        chosen=chosen,
        rejected=rejected,
        margin=float(counts[best] - counts[worst]),
        metadata={
            "builder": "minimax_pairs",
            "chosen_index": best,
            "rejected_index": worst,
            "chosen_passed": int(counts[best]),
            "rejected_passed": int(counts[worst]),
            "n_tests": len(tests),
        },
    )
