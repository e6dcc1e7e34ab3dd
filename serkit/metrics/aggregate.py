"""Summaries of a metric over repeated runs (different seeds or folds)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from serkit.metrics.functional import MetricError

__all__ = ["mean_std", "summarise_runs"]


def mean_std(values: Sequence[float]) -> dict[str, Any]:
    """Mean and standard deviation of one metric over runs.

    ``std`` is the *sample* standard deviation (``ddof=1``, the spread one would expect
    between runs) when there are at least two values, and ``0.0`` for a single run.

    Returns:
        ``{"mean": float, "std": float, "values": list[float]}`` (values in input order).

    Raises:
        MetricError: no values, or a value that is not a finite number.
    """
    vals = [float(v) for v in values]
    if not vals:
        raise MetricError("mean_std needs at least one value; got none")
    bad = [v for v in vals if not math.isfinite(v)]
    if bad:
        raise MetricError(f"mean_std needs finite values; got {bad[0]!r}")
    n = len(vals)
    mean = math.fsum(vals) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in vals) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "std": std, "values": vals}


def summarise_runs(runs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """:func:`mean_std` of every numeric (non-bool) key that all ``runs`` share.

    E.g. ``summarise_runs([{"ua": .8, "wa": .9}, {"ua": .7, "wa": .85}])`` ->
    ``{"ua": {...}, "wa": {...}}``; keys in the first run's order. Non-numeric entries
    (such as ``confusion``) are skipped.
    """
    if not runs:
        raise MetricError("summarise_runs needs at least one run; got none")

    def numeric(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    keys = [k for k, v in runs[0].items() if numeric(v)]
    keys = [k for k in keys if all(k in r and numeric(r[k]) for r in runs)]
    return {k: mean_std([r[k] for r in runs]) for k in keys}
