"""Fitting the model's feature standardisation (``data.standardize``) on a training split."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch

__all__ = ["fit_standardize"]


def fit_standardize(
    model: Any,
    keys: Mapping[str, Mapping[str, Sequence[str]]],
    train: Mapping[str, Sequence[int]],
    stores: Mapping[str, Any],
    keep: Iterable[str] = (),
) -> dict[str, list[str]]:
    """Set ``model.norms`` from the training utterances' features.

    Args:
        model: a :class:`~serkit.engine.model.SerModel` whose ``norms`` are keyed ``"*"``
            (statistics pooled over every domain) or by domain id.
        keys: domain -> stream id -> store key per utterance.
        train: domain -> indices of its training utterances in this run.
        stores: stream id -> feature store.
        keep: norm keys left as they are (e.g. loaded from ``init_from``).

    Returns:
        norm key -> the domains whose training data fitted it.
    """
    from serkit.engine.data import speaker_stats

    keep = set(keep)
    fitted: dict[str, list[str]] = {}
    for key, per_stream in model.norms.items():
        if key in keep:
            continue
        domains = [d for d in train if (key == "*" or d == key) and len(train[d])]
        if not domains:
            continue
        for sid, norm in per_stream.items():
            ks = [keys[d][sid][i] for d in domains for i in train[d]]
            mean, std = speaker_stats(ks, ["*"] * len(ks), stores[sid])["*"]
            norm.set_stats(torch.from_numpy(mean), torch.from_numpy(std))
        fitted[key] = domains
    return fitted
