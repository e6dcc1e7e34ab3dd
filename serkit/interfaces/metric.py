"""Metrics: what the engine evaluates and can select a checkpoint by (name, direction, how to compute).

A :class:`Metric` says whether higher is better and, for metrics beyond the built-in ones,
how to compute it from one domain's predictions. The registry holds them
(:meth:`serkit.registry.Registry.register_metric`; the built-ins, :data:`BUILTIN_METRICS`,
are always there), and the recipe's ``train.select_by`` accepts ``val_<metric>`` for each
of them, or ``last`` (the final epoch). The training loop evaluates every registered metric
on the validation sets and keeps the epoch whose mean over domains is best
(:func:`selection_score`).

A plugin adds one in its ``serkit_register_components`` hook::

    def balanced_error(y_true, y_pred, n_classes):
        return 1.0 - unweighted_accuracy(y_true, y_pred, n_classes)

    registry.register_metric(Metric("ber", higher_is_better=False,
                                    description="balanced error rate", compute=balanced_error))

and recipes may then say ``train: {select_by: val_ber}``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BUILTIN_METRICS",
    "LAST",
    "Metric",
    "selection_choices",
    "selection_metric",
    "selection_score",
]

#: ``train.select_by``'s value for "the final epoch", whatever the validation metrics say.
LAST = "last"


@dataclass(frozen=True)
class Metric:
    """A metric of one domain's predictions.

    Attributes:
        name: snake_case; ``train.select_by: val_<name>`` selects by it.
        higher_is_better: the direction of "best" (loss: False).
        description: one line for the recipe reference.
        compute: ``compute(y_true (N,), y_pred (N,), n_classes) -> float`` for a metric the
            evaluation does not already produce; None for the built-ins (ua, wa,
            macro_f1 and loss come out of :func:`serkit.engine.train.evaluate` itself).
    """

    name: str
    higher_is_better: bool
    description: str
    compute: Callable[[Any, Any, int], float] | None = None


#: The metrics every evaluation computes, in the order ``select_by`` lists them.
BUILTIN_METRICS: tuple[Metric, ...] = (
    Metric("ua", True, "unweighted accuracy (mean per-class recall)"),
    Metric("wa", True, "weighted accuracy (overall accuracy)"),
    Metric("macro_f1", True, "macro-averaged F1"),
    Metric("loss", False, "the main loss"),
)


def selection_choices(metrics: Mapping[str, Metric]) -> tuple[str, ...]:
    """``train.select_by``'s values: ``val_<name>`` per metric, then ``last``."""
    return (*(f"val_{name}" for name in metrics), LAST)


def selection_metric(select_by: str, metrics: Mapping[str, Metric]) -> Metric | None:
    """The metric ``select_by`` names (None for ``last``).

    Raises:
        KeyError: ``select_by`` names no registered metric.
    """
    if select_by == LAST:
        return None
    name = select_by.removeprefix("val_")
    if name not in metrics:
        raise KeyError(f"select_by {select_by!r}: no metric {name!r}; choices: {', '.join(selection_choices(metrics))}")
    return metrics[name]


def selection_score(val: Mapping[str, Mapping[str, Any]], metric: Metric) -> float:
    """The mean of ``metric`` over the domains with validation data, signed so that higher is better (NaN: none)."""
    import numpy as np

    values = [float(m[metric.name]) for m in val.values() if m.get("n")]
    score = float(np.mean(values)) if values else math.nan
    return score if metric.higher_is_better else -score
