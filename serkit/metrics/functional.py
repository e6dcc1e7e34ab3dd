"""Classification metrics on integer class ids, as plain functions (numpy only).

The paper's two headline numbers:

- **WA** (weighted accuracy) = overall accuracy, i.e. per-class recalls weighted by their
  support;
- **UA** (unweighted accuracy) = the mean of per-class recalls over the classes present in
  ``y_true`` (a class with no test sample has no recall and is left out).

Inputs are 1-D sequences of class ids ``0 .. n_classes - 1`` (lists, numpy arrays or CPU
tensors). Bad input raises :class:`MetricError` saying what was expected and what came.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from serkit.errors import SerkitError

__all__ = [
    "MetricError",
    "classification_metrics",
    "confusion",
    "macro_f1",
    "per_class_recall",
    "unweighted_accuracy",
    "weighted_accuracy",
]

ArrayLike = Sequence[int] | np.ndarray | Any


class MetricError(SerkitError, ValueError):
    """Arguments of a metric function are malformed (shape, dtype, range, empty)."""


def _as_ids(values: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise MetricError(f"{name} must be 1-D class ids; got shape {arr.shape}")
    if arr.size == 0:
        raise MetricError(f"{name} is empty; metrics need at least one sample")
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf":
        raise MetricError(f"{name} must hold integer class ids; got dtype {arr.dtype}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise MetricError(f"{name} must hold integer class ids; got non-integer values")
    arr = arr.astype(np.int64)
    if arr.min() < 0:
        raise MetricError(f"{name} has negative class id {int(arr.min())}")
    return arr


def _pair(
    y_true: ArrayLike, y_pred: ArrayLike, n_classes: int | None
) -> tuple[np.ndarray, np.ndarray, int]:
    t = _as_ids(y_true, "y_true")
    p = _as_ids(y_pred, "y_pred")
    if t.shape != p.shape:
        raise MetricError(f"y_true and y_pred must have the same length; got {t.size} and {p.size}")
    top = int(max(t.max(), p.max()))
    if n_classes is None:
        n_classes = top + 1
    elif isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)):
        raise MetricError(f"n_classes must be a positive int; got {n_classes!r}")
    elif n_classes < 1:
        raise MetricError(f"n_classes must be a positive int; got {n_classes!r}")
    elif top >= n_classes:
        raise MetricError(f"class id {top} is out of range for n_classes={n_classes}")
    return t, p, int(n_classes)


def confusion(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int | None = None) -> np.ndarray:
    """Confusion counts ``(C, C)`` int64: row = true class, column = predicted class.

    ``n_classes`` defaults to ``max(y_true, y_pred) + 1``.
    """
    t, p, c = _pair(y_true, y_pred, n_classes)
    return np.bincount(t * c + p, minlength=c * c).reshape(c, c).astype(np.int64)


def weighted_accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """WA: the fraction of samples whose prediction is right."""
    t, p, _ = _pair(y_true, y_pred, None)
    return float(np.mean(t == p))


def per_class_recall(
    y_true: ArrayLike, y_pred: ArrayLike, n_classes: int | None = None
) -> np.ndarray:
    """Recall of each class ``(C,)`` float; NaN for a class absent from ``y_true``."""
    cm = confusion(y_true, y_pred, n_classes)
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / support, np.nan)


def unweighted_accuracy(
    y_true: ArrayLike, y_pred: ArrayLike, n_classes: int | None = None
) -> float:
    """UA: the mean recall over the classes that occur in ``y_true``.

    A class that never occurs in ``y_true`` is left out (its recall is undefined), even if
    it is predicted; such wrong predictions still lower the recall of the true classes.
    """
    recall = per_class_recall(y_true, y_pred, n_classes)
    return float(np.nanmean(recall))


def macro_f1(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int | None = None) -> float:
    """The mean F1 over the classes that occur in ``y_true`` or ``y_pred``.

    Per class, ``F1 = 2 tp / (2 tp + fp + fn)``; a class that is predicted but never true
    gets F1 = 0. Classes absent from both are left out. This matches scikit-learn's
    ``f1_score(average="macro", zero_division=0)`` with its default labels.
    """
    cm = confusion(y_true, y_pred, n_classes)
    tp = np.diag(cm).astype(np.float64)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    denom = 2 * tp + fp + fn
    seen = denom > 0
    return float(np.mean(2 * tp[seen] / denom[seen]))


def classification_metrics(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> dict[str, Any]:
    """Every metric of one evaluation, JSON-ready.

    Returns:
        ``{"ua": float, "wa": float, "macro_f1": float, "n": int,
        "confusion": list[list[int]] (C x C, rows = true class)}``.
    """
    cm = confusion(y_true, y_pred, n_classes)
    return {
        "ua": unweighted_accuracy(y_true, y_pred, n_classes),
        "wa": weighted_accuracy(y_true, y_pred),
        "macro_f1": macro_f1(y_true, y_pred, n_classes),
        "n": int(cm.sum()),
        "confusion": cm.tolist(),
    }
