"""Fitting the model's feature standardisation (``data.standardize``) on a training split."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["fit_standardize"]


def fit_standardize(
    model: Any,
    keys: Mapping[str, Mapping[str, Sequence[str]]],
    train: Mapping[str, Sequence[int]],
    stores: Mapping[str, Any],
    keep: Iterable[str] = (),
    speaker_norms: Mapping[str, Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]]] | None = None,
    speakers: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, list[str]]:
    """Set ``model.norms`` from the training utterances' features.

    Args:
        model: a :class:`~serkit.engine.model.SerModel` whose ``norms`` are keyed ``"*"``
            (statistics pooled over every domain) or by domain id.
        keys: domain -> stream id -> store key per utterance.
        train: domain -> indices of its training utterances in this run.
        stores: stream id -> feature store.
        keep: norm keys left as they are (e.g. loaded from ``init_from``).
        speaker_norms: domain -> stream -> speaker -> ``(mean, std)`` of ``data.speaker_norm``:
            the model sees those domains' features standardised per speaker, so its statistics
            are those of the per-speaker standardised training features.
        speakers: domain -> speaker per utterance (needed with ``speaker_norms``).

    Returns:
        norm key -> the domains whose training data fitted it.
    """
    keep = set(keep)
    fitted: dict[str, list[str]] = {}
    for key, per_stream in model.norms.items():
        if key in keep:
            continue
        domains = [d for d in train if (key == "*" or d == key) and len(train[d])]
        if not domains:
            continue
        for sid, norm in per_stream.items():
            mean, std = _fed_stats(sid, domains, keys, train, stores[sid], speaker_norms or {}, speakers or {})
            norm.set_stats(torch.from_numpy(mean), torch.from_numpy(std))
        fitted[key] = domains
    return fitted


def _fed_stats(
    sid: str,
    domains: Sequence[str],
    keys: Mapping[str, Mapping[str, Sequence[str]]],
    train: Mapping[str, Sequence[int]],
    store: Any,
    speaker_norms: Mapping[str, Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]]],
    speakers: Mapping[str, Sequence[str]],
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std ``(d,)`` float32 of one stream's training features as the model is fed them.

    Features of domains with speaker statistics are standardised per speaker first (as the
    loaders do); sequences count every frame.
    """
    from serkit.engine.speaker_norm import StatsAccumulator

    acc = StatsAccumulator()
    for d in domains:
        per_speaker = (speaker_norms.get(d) or {}).get(sid)
        for i in train[d]:
            x = store.get(keys[d][sid][i]).astype(np.float64)
            if per_speaker is not None:
                mean, std = per_speaker[speakers[d][i]]
                x = (x - mean) / std
            acc.add("*", x)
    return acc.result()["*"]
