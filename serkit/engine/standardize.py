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
            spk_norms = speaker_norms or {}
            if any(spk_norms.get(d) for d in domains):
                mean, std = _normalised_stats(sid, domains, keys, train, stores[sid], spk_norms, speakers or {})
            else:
                ks = [keys[d][sid][i] for d in domains for i in train[d]]
                mean, std = speaker_stats(ks, ["*"] * len(ks), stores[sid])["*"]
            norm.set_stats(torch.from_numpy(mean), torch.from_numpy(std))
        fitted[key] = domains
    return fitted


def _normalised_stats(
    sid: str,
    domains: Sequence[str],
    keys: Mapping[str, Mapping[str, Sequence[str]]],
    train: Mapping[str, Sequence[int]],
    store: Any,
    speaker_norms: Mapping[str, Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]]],
    speakers: Mapping[str, Sequence[str]],
    eps: float = 1e-5,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std ``(d,)`` float32 of one stream's training features as the model sees them.

    Features of domains with speaker statistics are standardised per speaker first (as the
    loaders do); sequences count every frame.
    """
    total, total_sq, count = 0.0, 0.0, 0
    for d in domains:
        per_speaker = (speaker_norms.get(d) or {}).get(sid)
        for i in train[d]:
            x = store.get(keys[d][sid][i]).astype(np.float64)
            if per_speaker is not None:
                mean, std = per_speaker[speakers[d][i]]
                x = (x - mean) / std
            x = x.reshape(-1, x.shape[-1])
            total = total + x.sum(axis=0)
            total_sq = total_sq + (x**2).sum(axis=0)
            count += x.shape[0]
    mean = total / max(count, 1)
    std = np.sqrt(np.maximum(total_sq / max(count, 1) - mean**2, 0.0))
    return mean.astype(np.float32), np.maximum(std, eps).astype(np.float32)
