"""The linear reference every run is measured against.

A researcher's first try on a small corpus is a linear classifier on utterance statistics.
Every ``serkit run`` fits one on the same streams and the exact same splits as its model,
so that a model that does not beat it cannot go unnoticed:

- features: every stream of the recipe, as the model's loaders serve them (speaker
  normalisation included when the recipe asks for it); a sequence stream ``(T, d)`` is
  pooled into its mean and (population) standard deviation over frames, ``(2d,)``; a
  vector stream is used as it is; the streams are concatenated;
- standardised with the training split's mean and standard deviation;
- ``logreg``: scikit-learn's ``LogisticRegression`` (lbfgs, class-balanced); ``svm``:
  ``LinearSVC`` (class-balanced);
- the regularisation ``C`` is chosen on the validation split (best UA; ties go to the
  smaller ``C``, the simpler model), never on the test split; the classifier is the one
  fitted on the training split with that ``C``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from serkit.metrics.functional import classification_metrics, unweighted_accuracy

__all__ = [
    "C_GRID",
    "REFERENCE_KINDS",
    "below_reference",
    "fit_reference",
    "pool_item",
    "reference_metrics",
    "summarise_reference",
]

REFERENCE_KINDS: tuple[str, ...] = ("logreg", "svm", "none")
#: Regularisation strengths tried on the validation split.
C_GRID: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0)


def pool_item(features: dict[str, np.ndarray], streams: Sequence[str]) -> np.ndarray:
    """One utterance's reference input: ``(D,)`` float64.

    ``features``: stream -> ``(T, d)`` sequence (pooled to ``[mean, std]`` over ``T``)
    or ``(d,)`` vector; concatenated in ``streams`` order.
    """
    parts: list[np.ndarray] = []
    for s in streams:
        x = np.asarray(features[s], dtype=np.float64)
        parts += [x.mean(axis=0), x.std(axis=0)] if x.ndim == 2 else [x.reshape(-1)]
    return np.concatenate(parts)


def _classifier(kind: str, c: float, seed: int) -> Any:
    if kind == "logreg":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=c, class_weight="balanced", max_iter=5000, random_state=seed)
    if kind == "svm":
        from sklearn.svm import LinearSVC

        return LinearSVC(C=c, class_weight="balanced", max_iter=20000, random_state=seed)
    raise ValueError(f"reference kind must be one of {list(REFERENCE_KINDS[:2])}; got {kind!r}")


def fit_reference(
    kind: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    seed: int = 0,
    grid: Sequence[float] = C_GRID,
) -> tuple[Any, Any, float]:
    """Standardise on ``x_train (N, D)`` and pick ``C`` by validation UA.

    Returns:
        ``(scaler, classifier, C)``: the fitted ``StandardScaler``, the classifier fitted
        on the standardised training split with the chosen ``C``, and that ``C``.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x_train)
    xt, xv = scaler.transform(x_train), scaler.transform(x_val)
    best: tuple[float, Any, float] | None = None
    for c in grid:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf = _classifier(kind, c, seed).fit(xt, y_train)
        score = unweighted_accuracy(y_val, clf.predict(xv))
        if best is None or score > best[0]:
            best = (score, clf, c)
    assert best is not None
    return scaler, best[1], best[2]


def reference_metrics(
    kind: str,
    x: dict[str, np.ndarray],
    y: dict[str, np.ndarray],
    n_classes: int,
    *,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit on ``x["train"]``, choose ``C`` on ``x["val"]``, report on ``x["test"]``.

    ``x``: split -> ``(N, D)`` pooled inputs (:func:`pool_item`); ``y``: split -> ``(N,)``
    class ids. Returns the test metrics of :func:`classification_metrics` plus ``n``,
    ``C`` and ``kind``.
    """
    scaler, clf, c = fit_reference(kind, x["train"], y["train"], x["val"], y["val"], seed=seed)
    pred = clf.predict(scaler.transform(x["test"]))
    out = classification_metrics(y["test"], pred, n_classes)
    out.update(n=len(y["test"]), C=c, kind=kind)
    return out


def summarise_reference(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``results.json``'s ``reference``: per domain, mean ± std over the runs that have one.

    Returns domain -> ``{"kind", "ua", "wa", "macro_f1"}`` (each metric as
    :func:`serkit.metrics.aggregate.mean_std`) plus ``"C"``, the chosen ``C`` per run.
    """
    from serkit.metrics.aggregate import mean_std

    out: dict[str, Any] = {}
    domains = {d for r in runs for d in (r.get("reference") or {})}
    for d in sorted(domains):
        per_run = [r["reference"][d] for r in runs if d in (r.get("reference") or {})]
        out[d] = {"kind": per_run[0]["kind"], "n_runs": len(per_run), "C": [m["C"] for m in per_run]}
        for key in ("ua", "wa", "macro_f1"):
            out[d][key] = mean_std([m[key] for m in per_run])
    return out


def below_reference(domains: dict[str, Any], reference: dict[str, Any]) -> list[str]:
    """One plain sentence per domain whose model test UA is below its reference's."""
    lines = []
    for d, ref in reference.items():
        model = domains.get(d)
        if model is not None and model["ua"]["mean"] < ref["ua"]["mean"]:
            lines.append(
                f"domain {d}: the model's test UA {model['ua']['mean']:.4f} is below the linear reference's "
                f"{ref['ua']['mean']:.4f} ({ref['kind']} on the same streams and splits)"
            )
    return lines
