"""Latency metrics of apps.simulmt.latency (SimulEval 1.1.4 text scorers, in source words)."""

import pytest

from apps.simulmt.latency import (
    average_lagging,
    average_proportion,
    corpus_latency,
    delays_from_actions,
    differentiable_average_lagging,
    latency_scores,
    length_adaptive_average_lagging,
    wait_k_delays,
)

EXAMPLE = [1, 1, 2, 3, 5, 7, 7, 9]
WAIT_3 = [3, 4, 5, 6, 7, 8, 9, 9]


def test_worked_example_reference_equal_to_hypothesis():
    assert average_lagging(EXAMPLE, 9, 8) == pytest.approx(0.4375)
    assert average_proportion(EXAMPLE, 9, 8) == pytest.approx(0.48611, abs=5e-6)
    assert differentiable_average_lagging(EXAMPLE, 9) == pytest.approx(1.140625)
    assert average_lagging(EXAMPLE, 9) == pytest.approx(0.4375)
    assert length_adaptive_average_lagging(EXAMPLE, 9, 8) == pytest.approx(0.4375)


def test_worked_example_longer_reference():
    assert average_lagging(EXAMPLE, 9, 10) == pytest.approx(1.225)
    assert length_adaptive_average_lagging(EXAMPLE, 9, 10) == pytest.approx(1.225)


def test_worked_example_shorter_reference_laal_uses_hypothesis_length():
    assert average_lagging(EXAMPLE, 9, 6) == pytest.approx(-0.875)
    assert length_adaptive_average_lagging(EXAMPLE, 9, 6) == pytest.approx(0.4375)


def test_ap_uses_reference_length_when_given():
    assert average_proportion(EXAMPLE, 9, 10) == pytest.approx(35 / 90)
    assert average_proportion(EXAMPLE, 9, None) == pytest.approx(35 / 72)


def test_dal_ignores_reference_length():
    assert latency_scores(EXAMPLE, 9, 10)["DAL"] == latency_scores(EXAMPLE, 9, 6)["DAL"]


def test_wait_3_worked_example():
    assert wait_k_delays(3, 9, 8) == WAIT_3
    assert average_lagging(WAIT_3, 9, 10) == pytest.approx(3.3)
    assert differentiable_average_lagging(WAIT_3, 9) == pytest.approx(3.0)


def test_wait_1_on_equal_lengths():
    # D = [1, 2, 3, 4], |X| = |Y| = 4, gamma = 1: every AL term is D[t] - t = 1, tau = 4.
    # AP = 10 / 16. DAL: g' = D (each D[i] >= g'_{i-1} + 1), terms g'_i - i = 1.
    delays = wait_k_delays(1, 4, 4)
    assert delays == [1, 2, 3, 4]
    assert latency_scores(delays, 4, 4) == pytest.approx(
        {"AL": 1.0, "LAAL": 1.0, "AP": 0.625, "DAL": 1.0}
    )


def test_full_sentence_policy_lags_by_the_whole_source():
    # D = [5, 5, 5], |X| = 5, |Y| = 3: D[0] >= |X| so tau = 1 and AL = LAAL = 5. AP = 15 / 15.
    # DAL: 1/gamma = 5/3, g' = [5, 20/3, 25/3], terms 5, 20/3 - 5/3, 25/3 - 10/3, all 5.
    assert latency_scores([5, 5, 5], 5, 3) == pytest.approx(
        {"AL": 5.0, "LAAL": 5.0, "AP": 1.0, "DAL": 5.0}
    )
    assert latency_scores([5, 5, 5], 5, 7)["AL"] == 5.0


def test_hypothesis_ending_before_the_source_is_read():
    # D = [1, 2], |X| = 4, no reference: gamma = 2/4, 1/gamma = 2, no D[t] reaches |X| so tau = 2.
    # AL = (1 + (2 - 2)) / 2 = 0.5. AP = 3 / 8. DAL: g' = [1, max(2, 1 + 2)] = [1, 3], terms 1, 1.
    assert latency_scores([1, 2], 4) == pytest.approx(
        {"AL": 0.5, "LAAL": 0.5, "AP": 0.375, "DAL": 1.0}
    )


def test_over_generation_is_not_rewarded_by_laal():
    # D = [2, 2, 3, 3, 3, 3], |X| = |Y| = 3. AL: gamma = 1, terms 2, 1, 1 (tau = 3) -> 4/3.
    # LAAL: gamma = 6/3, 1/gamma = 0.5, terms 2, 1.5, 2 -> 11/6. AP = 16 / 9.
    # DAL: 1/gamma = 0.5, g' = [2, 2.5, 3, 3.5, 4, 4.5], each g'_i - i/2 = 2.
    assert latency_scores([2, 2, 3, 3, 3, 3], 3, 3) == pytest.approx(
        {"AL": 4 / 3, "LAAL": 11 / 6, "AP": 16 / 9, "DAL": 2.0}
    )


def test_wait_k_delays():
    assert wait_k_delays(2, 5, 6) == [2, 3, 4, 5, 5, 5]
    assert wait_k_delays(7, 5, 3) == [5, 5, 5]
    assert wait_k_delays(1, 3, 0) == []
    for bad in [(0, 5, 3), (2, 0, 3), (2, 5, -1)]:
        with pytest.raises(ValueError):
            wait_k_delays(*bad)


def test_delays_from_actions():
    assert delays_from_actions(["R", "R", "W", "R", "W", "W", "R", "R", "W"]) == [2, 3, 3, 5]
    assert delays_from_actions("RRRWRWRWRWWW") == [3, 4, 5, 6, 6, 6]
    assert delays_from_actions("RRR") == []
    with pytest.raises(ValueError, match="before any source word"):
        delays_from_actions("WR")
    with pytest.raises(ValueError, match="expected 'R' or 'W'"):
        delays_from_actions(["R", "X"])


def test_empty_delays_count_as_maximally_late():
    expected = {"AL": 7.0, "LAAL": 7.0, "AP": 1.0, "DAL": 7.0}
    assert latency_scores([], 7) == expected
    assert latency_scores([], 7, 5) == expected


@pytest.mark.parametrize(
    ("delays", "source_len", "reference_len", "message"),
    [
        ([1, 2], 0, None, "source_len must be >= 1"),
        ([1, 2], 3, 0, "reference_len must be >= 1"),
        ([1, 5, 3], 5, None, "non-decreasing: 3 after 5"),
        ([0, 1], 3, None, "1..source_len"),
        ([1, 4], 3, None, "1..source_len"),
    ],
)
def test_malformed_inputs_raise(delays, source_len, reference_len, message):
    for metric in (average_lagging, length_adaptive_average_lagging, average_proportion):
        with pytest.raises(ValueError, match=message):
            metric(delays, source_len, reference_len)
    if reference_len is None:
        with pytest.raises(ValueError, match=message):
            differentiable_average_lagging(delays, source_len)


def test_corpus_latency_is_the_mean_over_sentences():
    rows = [([1, 2, 3, 4], 4, 4), ([5, 5, 5], 5, None), ([], 2, 3)]
    # AL: (1 + 5 + 2) / 3; AP: (0.625 + 1 + 1) / 3; DAL as AL.
    assert corpus_latency(rows) == pytest.approx(
        {"AL": 8 / 3, "LAAL": 8 / 3, "AP": 2.625 / 3, "DAL": 8 / 3}
    )
    with pytest.raises(ValueError):
        corpus_latency([])
