"""The evaluation driver: an app's scoring function over named models x seeds -> one results table.

    table = evaluate_models({"sft": sft_dir, "dpo": dpo_dir}, score, METRICS, settings=cfg.eval,
                            out_dir=run_dir / "eval", caption="...", headline="sun")

`score(name, model, seed)` returns one row (a dict) per evaluated item (a task, a sample, an
image) with the fields the metrics read; it is where the app generates, checks and writes its
samples, and where it skips work a previous call already saved. Rows pool over seeds; each metric
is a mean over its rows with a percentile bootstrap interval (shared.evaluation.stats), and also
reported per seed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from shared.evaluation.metrics import Metric, estimate
from shared.evaluation.table import ModelResult, ResultsTable

Score = Callable[[str, Any, int], Sequence[Mapping[str, Any]]]


def model_result(rows_by_seed: Mapping[int, Sequence[Mapping[str, Any]]], metrics: Sequence[Metric], *,
                 resamples: int = 2000, level: float = 0.95, info: Mapping[str, Any] | None = None) -> ModelResult:
    """Return one model's estimates over the pooled seeds (rows in seed order) and its value per seed."""
    pooled = [r for seed in rows_by_seed for r in rows_by_seed[seed]]
    estimates = {m.name: estimate(m, pooled, resamples=resamples, level=level) for m in metrics}
    per_seed = {seed: {m.name: m.point(rows) for m in metrics if m.rows(rows)} for seed, rows in rows_by_seed.items()}
    return ModelResult(estimates, per_seed, dict(info or {}))


def evaluate_models(models: Mapping[str, Any], score: Score, metrics: Sequence[Metric], *, seeds: Sequence[int],
                    out_dir: str | Path | None, caption: str = "", headline: str | None = None, resamples: int = 2000,
                    level: float = 0.95, info: Mapping[str, Mapping[str, Any]] | None = None,
                    settings: Mapping[str, Any] | None = None, quiet: bool = False) -> ResultsTable:
    """Score every model with every seed, build the results table, write it to out_dir (unless None) and print it."""
    if not models:
        raise ValueError("no model to evaluate")
    if not seeds:
        raise ValueError("no evaluation seed")
    results = {}
    for name, model in models.items():
        by_seed = {}
        for seed in seeds:
            by_seed[seed] = list(score(name, model, seed))
            if headline and not quiet:
                value = next(m for m in metrics if m.name == headline).point(by_seed[seed])
                print(f"{name} seed {seed}: {headline} {value:.3f} ({len(by_seed[seed])} rows)", flush=True)
        results[name] = model_result(by_seed, metrics, resamples=resamples, level=level,
                                     info=(info or {}).get(name, {"model": str(model)}))
    table = ResultsTable(list(metrics), results, list(seeds), caption, headline,
                         {"resamples": resamples, "level": level, **dict(settings or {})})
    if out_dir is not None:
        table.write(out_dir)
    if not quiet:
        print(table.markdown(), flush=True)
    return table

