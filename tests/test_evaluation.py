"""The evaluation driver and results table: intervals against hand computations, metric selection, written files."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from shared.evaluation import Metric, bootstrap_interval, estimate, evaluate_models, point_estimate, summarize


def test_item_bootstrap_is_the_percentile_interval_of_resampled_means():
    values = [1.0] * 30 + [0.0] * 70
    rng = np.random.default_rng(0)
    means = np.asarray(values)[rng.integers(0, 100, size=(2000, 100))].mean(axis=1)
    assert bootstrap_interval(values) == (np.percentile(means, 2.5), np.percentile(means, 97.5))
    low, high = bootstrap_interval(values, level=0.5)
    assert bootstrap_interval(values)[0] < low < 0.3 < high < bootstrap_interval(values)[1]


def test_cluster_bootstrap_moves_a_clusters_items_together():
    # Two clusters of four identical items: a replicate's mean is 0, 0.5 or 1, never 0.25.
    values, clusters = [1.0] * 4 + [0.0] * 4, ["a"] * 4 + ["b"] * 4
    rng = np.random.default_rng(3)
    pick = rng.integers(0, 2, size=(500, 2))
    expected = np.array([4.0, 0.0])[pick].sum(axis=1) / 8
    got = bootstrap_interval(values, clusters=clusters, resamples=500, seed=3, level=0.9)
    assert got == (np.percentile(expected, 5), np.percentile(expected, 95))
    assert bootstrap_interval(values, resamples=500, seed=3, level=0.9)[0] > got[0]  # items alone: narrower


def test_stratified_estimate_is_the_macro_average():
    values, strata = [1, 1, 1, 0, 0, 1], ["x", "x", "x", "y", "y", "y"]
    assert point_estimate(values, strata) == pytest.approx((1.0 + 1 / 3) / 2)
    assert point_estimate(values) == pytest.approx(4 / 6)
    low, high = bootstrap_interval(values, strata=strata)
    assert low <= (1.0 + 1 / 3) / 2 <= high and low >= 0.5  # stratum x is always 1: the mean never drops below 0.5
    assert math.isnan(point_estimate([])) and all(map(math.isnan, bootstrap_interval([])))
    with pytest.raises(ValueError, match="level"):
        bootstrap_interval([1.0], level=1.5)


def test_metric_reads_only_its_rows():
    rows = [{"category": "a", "passed": True, "p": 0}, {"category": "a", "passed": False, "p": 0},
            {"category": "b", "passed": True, "p": 1}, {"sg": 1.0}, {"category": "b", "passed": None, "p": 2}]
    a = estimate(Metric("a", field="passed", where=("category", "a"), cluster="p"), rows)
    assert (a.value, a.n) == (0.5, 2) and a.low == a.high == 0.5  # one cluster holds both rows
    overall = estimate(Metric("overall", field="passed", cluster="p", stratify="category"), rows)
    assert overall.value == pytest.approx(0.75) and overall.n == 3  # None is skipped
    flat = summarize(rows, [Metric("sg"), Metric("missing")])
    assert flat == {"sg": 1.0, "sg_low": 1.0, "sg_high": 1.0}


def test_driver_pools_seeds_reports_each_and_writes_one_table(tmp_path, capsys):
    calls = []

    def score(name, model, seed):
        calls.append((name, seed))
        rate = {"base": 0.25, "tuned": 0.75}[name]
        return [{"ok": float(i < rate * 8 + seed), "suite": "s"} for i in range(8)]

    metrics = [Metric("ok", "accuracy"), Metric("never", "unused")]
    table = evaluate_models({"base": "m0", "tuned": "m1"}, score, metrics, seeds=[0, 1], out_dir=tmp_path,
                            caption="Toy table.", headline="ok", resamples=200)
    assert calls == [("base", 0), ("base", 1), ("tuned", 0), ("tuned", 1)]
    base = table.models["base"]
    assert base.per_seed == {0: {"ok": 0.25}, 1: {"ok": 0.375}}
    assert base.estimates["ok"].value == pytest.approx(0.3125) and base.estimates["ok"].n == 16
    assert base.estimates["never"].n == 0
    md = (tmp_path / "table.md").read_text()
    assert md.startswith("Toy table.\n") and "| model | accuracy | accuracy per seed |" in md and "unused" not in md
    assert "| base | 0.312 [" in md and "| 0.250, 0.375 |" in md
    assert md in capsys.readouterr().out  # what was printed is what docs paste
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["models"]["tuned"]["metrics"]["ok"]["value"] == pytest.approx(0.8125)
    assert data["models"]["base"]["info"] == {"model": "m0"} and data["settings"]["resamples"] == 200
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert len(rows) == 4 and rows[0]["model"] == "base" and rows[0]["seed_1"] == "0.375" and rows[1]["value"] == ""
    assert (tmp_path / "metric_ok.png").read_bytes()[:4] == b"\x89PNG" and not (tmp_path / "metric_never.png").exists()
    with pytest.raises(ValueError, match="no model"):
        evaluate_models({}, score, metrics, seeds=[0], out_dir=None)
