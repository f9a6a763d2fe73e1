"""Latency of simultaneous text-to-text translation, in source words.

A reimplementation of the text latency scorers of SimulEval 1.1.4
(`simuleval/evaluator/scorers/latency_scorer.py`), checked against that code on random inputs.

Notation: the delays D[0..|D|-1] give, for each target word written, how many source words had
been read when it was written (non-decreasing, each in 1..|X|). |X| is the source length and |Y|
the reference length; without a reference (`reference_len=None`) |Y| = |D|, as SimulEval does
when no reference is given or with `--no-use-ref-len`.

- AL (Ma et al. 2019, STACL): gamma = |Y| / |X|, tau = 1 + the first index t with D[t] >= |X|
  (|D| if none), AL = (1/tau) * sum_{t<tau} (D[t] - t / gamma).
- LAAL (Papi et al. 2022): AL with gamma = max(|D|, |Y|) / |X|, so over-long hypotheses are not
  rewarded.
- AP (Cho & Esipova 2016): AP = sum(D) / (|X| * |Y|).
- DAL (Cherry & Foster 2019): ignores the reference, gamma = |D| / |X|; g'_0 = D[0],
  g'_i = max(D[i], g'_{i-1} + 1/gamma); DAL = (1/|D|) * sum_i (g'_i - i / gamma).

SimulEval also returns D[0] for AL and LAAL when D[0] > |X|; delays are validated here, so that
case cannot occur. SimulEval cannot score a sentence with no target word (`compute` fails an
assertion, the corpus scorer skips the sentence); here such a sentence counts as maximally late:
AL = LAAL = DAL = |X| and AP = 1.0. The corpus score is the mean of the sentence scores.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from statistics import fmean

METRICS = ("AL", "LAAL", "AP", "DAL")


def _check(delays: Sequence[float], source_len: int, reference_len: int | None = None) -> None:
    if source_len < 1:
        raise ValueError(f"source_len must be >= 1, got {source_len}")
    if reference_len is not None and reference_len < 1:
        raise ValueError(f"reference_len must be >= 1 when given, got {reference_len}")
    previous = None
    for d in delays:
        if not 1 <= d <= source_len:
            raise ValueError(f"delays must lie in 1..source_len={source_len}: got {d}")
        if previous is not None and d < previous:
            raise ValueError(f"delays must be non-decreasing: {d} after {previous}")
        previous = d


def _lagging(delays: Sequence[float], source_len: int, gamma: float) -> float:
    total = 0.0
    tau = 0
    for t, d in enumerate(delays):
        total += d - t / gamma
        tau = t + 1
        if d >= source_len:
            break
    return total / tau


def average_lagging(
    delays: Sequence[float], source_len: int, reference_len: int | None = None
) -> float:
    """Average Lagging (Ma et al. 2019; SimulEval's ALScorer).

    gamma = |Y| / |X|, tau = 1 + first t with D[t] >= |X| (|D| if none);
    AL = (1/tau) * sum_{t<tau} (D[t] - t / gamma), |Y| = reference_len, or |D| when None.
    Empty delays (nothing written): returns source_len (maximally late; SimulEval fails here).
    """
    _check(delays, source_len, reference_len)
    if not delays:
        return float(source_len)
    target_len = len(delays) if reference_len is None else reference_len
    return _lagging(delays, source_len, target_len / source_len)


def length_adaptive_average_lagging(
    delays: Sequence[float], source_len: int, reference_len: int | None = None
) -> float:
    """Length-Adaptive Average Lagging (Papi et al. 2022; SimulEval's LAALScorer).

    AL with gamma = max(|D|, |Y|) / |X|, |Y| = reference_len, or |D| when None (then LAAL = AL).
    Empty delays: returns source_len (maximally late; SimulEval fails here).
    """
    _check(delays, source_len, reference_len)
    if not delays:
        return float(source_len)
    target_len = len(delays) if reference_len is None else reference_len
    return _lagging(delays, source_len, max(len(delays), target_len) / source_len)


def average_proportion(
    delays: Sequence[float], source_len: int, reference_len: int | None = None
) -> float:
    """Average Proportion (Cho & Esipova 2016; SimulEval's APScorer).

    AP = sum(D) / (|X| * |Y|), |Y| = reference_len (as SimulEval by default), or |D| when None.
    With a reference shorter than the hypothesis AP can exceed 1.
    Empty delays: returns 1.0 (maximally late; SimulEval fails here).
    """
    _check(delays, source_len, reference_len)
    if not delays:
        return 1.0
    target_len = len(delays) if reference_len is None else reference_len
    return sum(delays) / (source_len * target_len)


def differentiable_average_lagging(delays: Sequence[float], source_len: int) -> float:
    """Differentiable Average Lagging (Cherry & Foster 2019; SimulEval's DALScorer).

    Uses the hypothesis length, never the reference: gamma = |D| / |X|, g'_0 = D[0],
    g'_i = max(D[i], g'_{i-1} + 1/gamma), DAL = (1/|D|) * sum_i (g'_i - i / gamma).
    Empty delays: returns source_len (maximally late; SimulEval fails here).
    """
    _check(delays, source_len)
    if not delays:
        return float(source_len)
    step = source_len / len(delays)
    total = 0.0
    g_prime = 0.0
    for i, d in enumerate(delays):
        g_prime = d if i == 0 else max(d, g_prime + step)
        total += g_prime - i * step
    return total / len(delays)


def latency_scores(
    delays: Sequence[float], source_len: int, reference_len: int | None = None
) -> dict[str, float]:
    """AL, LAAL, AP and DAL of one sentence, keyed by those names."""
    return {
        "AL": average_lagging(delays, source_len, reference_len),
        "LAAL": length_adaptive_average_lagging(delays, source_len, reference_len),
        "AP": average_proportion(delays, source_len, reference_len),
        "DAL": differentiable_average_lagging(delays, source_len),
    }


def corpus_latency(
    rows: Iterable[tuple[Sequence[float], int, int | None]],
) -> dict[str, float]:
    """Mean over sentences of each metric; rows are (delays, source_len, reference_len).

    Sentences with empty delays count with their maximally-late values (SimulEval skips them).
    """
    scores = [latency_scores(*row) for row in rows]
    if not scores:
        raise ValueError("corpus_latency needs at least one sentence")
    return {name: fmean(s[name] for s in scores) for name in METRICS}


def wait_k_delays(k: int, source_len: int, target_len: int) -> list[int]:
    """Delays of wait-k writing target_len words: D[i] = min(k + i, source_len).

    Wait-k writes when (read - written) >= k or the whole source has been read.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if source_len < 1:
        raise ValueError(f"source_len must be >= 1, got {source_len}")
    if target_len < 0:
        raise ValueError(f"target_len must be >= 0, got {target_len}")
    return [min(k + i, source_len) for i in range(target_len)]


def delays_from_actions(actions: Sequence[str]) -> list[int]:
    """Delays from a sequence of "R" (read one source word) and "W" (write one target word).

    D[i] = number of "R" before the i-th "W". A "W" before any "R" is rejected, since delays
    start at 1.
    """
    delays: list[int] = []
    read = 0
    for position, action in enumerate(actions):
        if action == "R":
            read += 1
        elif action == "W":
            if read == 0:
                raise ValueError(f"action {position}: write before any source word was read")
            delays.append(read)
        else:
            raise ValueError(f"action {position}: expected 'R' or 'W', got {action!r}")
    return delays
