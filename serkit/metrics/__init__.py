"""Metrics: WA, UA, macro-F1 and confusion counts, and their mean and std over runs."""

from __future__ import annotations

from serkit.metrics.aggregate import mean_std, summarise_runs
from serkit.metrics.functional import (
    MetricError,
    classification_metrics,
    confusion,
    macro_f1,
    per_class_recall,
    unweighted_accuracy,
    weighted_accuracy,
)

__all__ = [
    "MetricError",
    "classification_metrics",
    "confusion",
    "macro_f1",
    "mean_std",
    "per_class_recall",
    "summarise_runs",
    "unweighted_accuracy",
    "weighted_accuracy",
]
