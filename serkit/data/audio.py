"""Audio loading: any soundfile-readable file -> float32 mono at the requested rate.

Every failure is an :class:`~serkit.errors.AudioError` naming the file; nothing from
inside soundfile or numpy reaches the user.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from serkit.errors import AudioError

__all__ = [
    "MIN_DURATION",
    "AudioInfo",
    "audio_info",
    "check_waveform",
    "file_sha256",
    "load_audio",
    "resample",
]

#: Shortest accepted audio, in seconds, after loading (shorter files are rejected).
MIN_DURATION = 0.1


class AudioInfo:
    """Header facts of an audio file (read without decoding the samples)."""

    def __init__(self, path: str, sample_rate: int, channels: int, frames: int, subtype: str):
        self.path = path
        self.sample_rate = sample_rate
        self.channels = channels
        self.frames = frames
        self.subtype = subtype

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def audio_info(path: str | os.PathLike[str]) -> AudioInfo:
    """Read the header of ``path``; :class:`AudioError` if it is not audio."""
    import soundfile as sf

    p = str(path)
    if not os.path.isfile(p):
        raise AudioError(f"{p}: no such audio file")
    try:
        info = sf.info(p)
    except Exception as err:  # soundfile raises RuntimeError/LibsndfileError/TypeError
        raise AudioError(f"{p}: not a readable audio file ({_short(err)})") from err
    return AudioInfo(
        p, int(info.samplerate), int(info.channels), int(info.frames), str(info.subtype)
    )


def resample(wav: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample a mono float32 signal with soxr (high quality)."""
    if orig_sr == target_sr:
        return wav
    import soxr

    return soxr.resample(wav, orig_sr, target_sr, quality="HQ").astype(np.float32, copy=False)


def load_audio(
    path: str | os.PathLike[str],
    sample_rate: int | None = None,
    *,
    min_duration: float = MIN_DURATION,
) -> np.ndarray:
    """Load ``path`` as float32 mono, resampled to ``sample_rate`` (native rate if None).

    Multi-channel audio is averaged to mono. Raises :class:`AudioError` naming the file
    when it is missing, not audio, empty, shorter than ``min_duration`` seconds,
    contains NaN/inf, or is digital silence.

    Returns:
        float32 array ``(n_samples,)``.
    """
    import soundfile as sf

    p = str(path)
    if not os.path.isfile(p):
        raise AudioError(f"{p}: no such audio file")
    if os.path.getsize(p) == 0:
        raise AudioError(f"{p}: empty file (0 bytes)")
    try:
        data, sr = sf.read(p, dtype="float32", always_2d=True)
    except Exception as err:
        raise AudioError(f"{p}: not a readable audio file ({_short(err)})") from err
    if data.shape[0] == 0:
        raise AudioError(f"{p}: audio has zero samples")
    wav = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    check_waveform(wav, sr, p, min_duration)
    if sample_rate is not None and sr != sample_rate:
        wav = resample(np.ascontiguousarray(wav), sr, sample_rate)
    return np.ascontiguousarray(wav, dtype=np.float32)


def check_waveform(wav: np.ndarray, sample_rate: int, name: str, min_duration: float = MIN_DURATION) -> None:
    """Reject non-finite, too short or all-zero audio with an :class:`AudioError` naming ``name``.

    Args:
        wav: float mono samples ``(n_samples,)`` at ``sample_rate``.
    """
    if not np.all(np.isfinite(wav)):
        raise AudioError(f"{name}: audio contains NaN or infinite samples")
    duration = wav.shape[0] / sample_rate
    if duration < min_duration:
        raise AudioError(f"{name}: audio is {duration:.3f} s long; the minimum is {min_duration} s")
    if not np.any(wav):
        raise AudioError(f"{name}: audio is all zeros (digital silence)")


def _short(err: Exception) -> str:
    text = str(err).strip().splitlines()
    msg = text[-1] if text else type(err).__name__
    return msg if len(msg) < 200 else msg[:197] + "..."


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes (the audio part of feature cache keys)."""
    import hashlib

    h = hashlib.sha256()
    try:
        with open(Path(path), "rb") as f:
            while block := f.read(chunk):
                h.update(block)
    except OSError as err:
        raise AudioError(f"{path}: cannot read ({err.strerror})") from err
    return h.hexdigest()
