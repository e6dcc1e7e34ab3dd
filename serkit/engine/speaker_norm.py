"""A run's ``data.speaker_norm`` statistics: written by training, read by :func:`serkit.load_model`.

Training standardises every stream per speaker (:func:`speaker_stats`);
the statistics it used go into the run folder (``checkpoints/speaker_norm.safetensors``
and ``.json``, :data:`serkit.engine.run_folder.SPEAKER_NORM_FILES`, no pickle), so that a
loaded model standardises new audio of known speakers exactly as in training.
:class:`StatsAccumulator` computes the same statistics one utterance at a time (for
speakers that training never saw).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from serkit.engine.run_folder import SPEAKER_NORM_FILES, read_json
from serkit.errors import ModelError

__all__ = [
    "SPEAKER_NORM_EPS",
    "SPEAKER_NORM_FILES",
    "Norms",
    "SpeakerNorm",
    "Stats",
    "StatsAccumulator",
    "load_speaker_norm",
    "save_speaker_norm",
    "speaker_stats",
]

#: The std floor of the statistics (:func:`speaker_stats`'s default).
SPEAKER_NORM_EPS = 1e-5


Stats = tuple[np.ndarray, np.ndarray]  # (mean (d,), std (d,))
Norms = dict[int, dict[str, Stats]]  # input index -> stream id -> stats


class StatsAccumulator:
    """Per-speaker mean and std of feature arrays, added one utterance at a time.

    Float64 sums over utterances, or over every frame of sequences; :func:`speaker_stats`
    is this over a store, so the same features added in the same order give bit-identical
    statistics.
    """

    def __init__(self) -> None:
        self.sums: dict[str, Any] = {}
        self.squares: dict[str, Any] = {}
        self.counts: dict[str, int] = {}

    def add(self, speaker: str, features: np.ndarray) -> None:
        """Add one utterance's features, ``(d,)`` or ``(L, d)``."""
        x = features.astype(np.float64)
        x2 = x.reshape(-1, x.shape[-1])
        self.sums[speaker] = self.sums.get(speaker, 0.0) + x2.sum(axis=0)
        self.squares[speaker] = self.squares.get(speaker, 0.0) + (x2**2).sum(axis=0)
        self.counts[speaker] = self.counts.get(speaker, 0) + x2.shape[0]

    def result(self, eps: float = SPEAKER_NORM_EPS) -> dict[str, Stats]:
        """speaker -> ``(mean (d,), std (d,))`` as float32, ``std >= eps``."""
        out: dict[str, Stats] = {}
        for spk, n in self.counts.items():
            mean = self.sums[spk] / n
            var = np.maximum(self.squares[spk] / n - mean**2, 0.0)
            out[spk] = (mean.astype(np.float32), np.maximum(np.sqrt(var), eps).astype(np.float32))
        return out


def speaker_stats(
    keys: Sequence[str], speakers: Sequence[str], store: Any, eps: float = SPEAKER_NORM_EPS
) -> dict[str, Stats]:
    """Per-speaker mean and std of one stream of a feature store (over utterances, or over all frames).

    Args:
        keys: store key per utterance.
        speakers: speaker per utterance.

    Returns:
        speaker -> ``(mean (d,), std (d,))`` with ``std >= eps``.
    """
    acc = StatsAccumulator()
    for key, spk in zip(keys, speakers, strict=True):
        acc.add(spk, store.get(key))
    return acc.result(eps)


@dataclass(frozen=True)
class SpeakerNorm:
    """A run's ``data.speaker_norm`` statistics (``checkpoints/speaker_norm.*``).

    Attributes:
        eps: the std floor used in training.
        speakers: domain -> speaker ids (the rows of ``mean`` / ``std``).
        mean: domain -> stream -> ``(S, d)`` per-speaker means over all of the speaker's
            utterances in the domain, exactly as used in training.
        std: the matching standard deviations ``(S, d)``.
        global_mean: domain -> stream -> ``(d,)`` over all of the domain's utterances.
        global_std: the matching ``(d,)``.
        known: run id -> domain -> the speakers with training or validation utterances in
            that (repeat, fold) run.
    """

    eps: float
    speakers: dict[str, list[str]]
    mean: dict[str, dict[str, np.ndarray]]
    std: dict[str, dict[str, np.ndarray]]
    global_mean: dict[str, dict[str, np.ndarray]]
    global_std: dict[str, dict[str, np.ndarray]]
    known: dict[str, dict[str, list[str]]]

    def stored(self, domain: str, speaker: str, run_id: str) -> dict[str, Stats] | None:
        """Stream -> stats of a speaker known to run ``run_id`` (else None)."""
        if speaker not in self.known.get(run_id, {}).get(domain, ()):
            return None
        row = self.speakers[domain].index(speaker)
        return {sid: (m[row], self.std[domain][sid][row]) for sid, m in self.mean[domain].items()}

    def global_stats(self, domain: str) -> dict[str, Stats]:
        """Stream -> the domain's overall ``(mean, std)``."""
        return {sid: (m, self.global_std[domain][sid]) for sid, m in self.global_mean[domain].items()}


def save_speaker_norm(
    run_dir: Path,
    norms: Mapping[str, Mapping[str, Mapping[str, Stats]]],
    domains: Mapping[str, Any],
    stores: Mapping[str, Any],
    splits: Mapping[str, Mapping[str, Any]],
) -> list[Path]:
    """Write a run's speaker-normalisation statistics for :func:`load_model` (no pickle).

    Args:
        run_dir: the run folder; writes ``checkpoints/speaker_norm.safetensors`` (arrays
            ``<domain>/<stream>/{mean,std}`` ``(S, d)`` and ``.../global_{mean,std}`` ``(d,)``)
            and ``checkpoints/speaker_norm.json`` (speaker order, utterance counts, and per run
            id the speakers with training or validation utterances).
        norms: domain -> stream -> speaker -> ``(mean, std)``, as used in training.
        domains: domain -> :class:`serkit.engine.prepare.DomainData` (utterances, store keys).
        stores: stream id -> open feature store.
        splits: domain -> run id -> :class:`serkit.data.splits.Split`.
    """
    from safetensors.numpy import save

    from serkit.io import atomic_write_bytes, atomic_write_json

    tensors: dict[str, np.ndarray] = {}
    info: dict[str, Any] = {"format": "serkit-speaker-norm-1", "eps": SPEAKER_NORM_EPS, "domains": {}, "known": {}}
    for d, per_stream in norms.items():
        dd = domains[d]
        counts = Counter(u.speaker for u in dd.utterances)
        speakers = sorted(counts)
        info["domains"][d] = {"speakers": speakers, "n_utterances": [counts[s] for s in speakers]}
        for sid, by_speaker in per_stream.items():
            tensors[f"{d}/{sid}/mean"] = np.stack([by_speaker[s][0] for s in speakers])
            tensors[f"{d}/{sid}/std"] = np.stack([by_speaker[s][1] for s in speakers])
            ((g_mean, g_std),) = speaker_stats(dd.keys[sid], ["*"] * len(dd.utterances), stores[sid]).values()
            tensors[f"{d}/{sid}/global_mean"], tensors[f"{d}/{sid}/global_std"] = g_mean, g_std
        for rid, split in (splits.get(d) or {}).items():
            seen = sorted({dd.utterances[i].speaker for i in (*split.train, *split.val)})
            info["known"].setdefault(rid, {})[d] = seen
    ckpt = Path(run_dir) / "checkpoints"
    atomic_write_bytes(ckpt / SPEAKER_NORM_FILES[0], save({k: np.ascontiguousarray(v) for k, v in tensors.items()}))
    atomic_write_json(ckpt / SPEAKER_NORM_FILES[1], info)
    return [ckpt / name for name in SPEAKER_NORM_FILES]


def load_speaker_norm(ckpt_dir: str | os.PathLike[str]) -> SpeakerNorm:
    """Read ``speaker_norm.safetensors`` / ``.json`` of a run's ``checkpoints/`` folder.

    Raises:
        ModelError: a file is missing (runs of serkit before 0.1 did not store them) or
            malformed.
    """
    ckpt_dir = Path(ckpt_dir)
    arrays_path, info_path = (ckpt_dir / name for name in SPEAKER_NORM_FILES)
    if not arrays_path.is_file() or not info_path.is_file():
        raise ModelError(
            f"{ckpt_dir}: the run was trained with data.speaker_norm but its statistics "
            f"({', '.join(SPEAKER_NORM_FILES)}) are missing; rerun it with this serkit version to store them"
        )
    info = read_json(info_path, "speaker normalisation statistics")
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        arrays = load_file(str(arrays_path))
    except (SafetensorError, OSError, ValueError) as err:
        raise ModelError(f"{arrays_path}: not a valid safetensors file ({err})") from None
    try:
        speakers = {d: list(v["speakers"]) for d, v in info["domains"].items()}
        parts: dict[str, dict[str, dict[str, np.ndarray]]] = {}
        for key, value in arrays.items():
            d, sid, what = key.split("/")
            parts.setdefault(what, {}).setdefault(d, {})[sid] = value
        for d, names in speakers.items():
            for sid, m in parts["mean"][d].items():
                if m.shape[0] != len(names) or parts["std"][d][sid].shape != m.shape:
                    raise ValueError(f"{d}/{sid}: {m.shape[0]} rows for {len(names)} speakers")
        return SpeakerNorm(
            eps=float(info["eps"]),
            speakers=speakers,
            mean=parts["mean"],
            std=parts["std"],
            global_mean=parts["global_mean"],
            global_std=parts["global_std"],
            known={rid: {d: list(v) for d, v in per.items()} for rid, per in info["known"].items()},
        )
    except (KeyError, ValueError, TypeError, AttributeError) as err:
        what = f"{type(err).__name__}: {err}"
        raise ModelError(f"{ckpt_dir}: malformed speaker normalisation statistics ({what})") from None
