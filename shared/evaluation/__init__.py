"""Evaluation over models x seeds with bootstrap intervals, and the one results table every app writes."""

from shared.evaluation.driver import evaluate_models, model_result
from shared.evaluation.metrics import Estimate, Metric, estimate, summarize
from shared.evaluation.stats import bootstrap_interval, point_estimate
from shared.evaluation.table import ModelResult, ResultsTable

__all__ = [
    "Estimate",
    "Metric",
    "ModelResult",
    "ResultsTable",
    "bootstrap_interval",
    "estimate",
    "evaluate_models",
    "model_result",
    "point_estimate",
    "summarize",
]
