"""Waveform augmentation for small corpora: speed perturbation and additive noise at a set SNR.

Each augmentation turns one waveform into one new, deterministic copy: the same audio
always gives the same copy (the noise is seeded from the samples themselves), so the
copies' features are computed once and cached like any other feature
(:class:`serkit.features.augmented.AugmentedExtractor` puts the augmentation into the
store's key).

- ``speed``: Kaldi-style speed perturbation. The signal is resampled by ``1 / factor``
  and played at the original rate: ``factor`` 1.1 is 10 % faster (and higher), 0.9 10 %
  slower (Ko et al. 2015, "Audio augmentation for speech recognition").
- ``noise``: white or pink Gaussian noise added at ``snr_db`` decibels below the
  signal's power.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:  # numpy is imported where audio is augmented, not when recipes are read
    import numpy as np

__all__ = ["NoiseSpec", "SpeedSpec", "WaveAugmentSpec", "apply_augment", "augment_tag"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SpeedSpec(_Spec):
    """Speed perturbation: ``factor`` > 1 is faster (shorter, higher), < 1 slower."""

    type: Literal["speed"] = "speed"
    factor: float = Field(gt=0.5, lt=2.0, description="Speed factor, e.g. 0.9 or 1.1.")


class NoiseSpec(_Spec):
    """Additive Gaussian noise at a signal-to-noise ratio."""

    type: Literal["noise"] = "noise"
    snr_db: float = Field(ge=-10, le=60, description="Signal-to-noise ratio in dB.")
    color: Literal["white", "pink"] = Field("white", description="Noise spectrum: white (flat) or pink (1/f).")
    seed: int = Field(0, description="Added to each waveform's own seed; another seed gives other noise.")


WaveAugmentSpec = Annotated[SpeedSpec | NoiseSpec, Field(discriminator="type")]


def augment_tag(spec: SpeedSpec | NoiseSpec) -> str:
    """A short readable name for ``spec`` (in store names and reports), e.g. ``speed0.9``."""
    if isinstance(spec, SpeedSpec):
        return f"speed{spec.factor:g}"
    return f"noise{spec.snr_db:g}dB{'' if spec.color == 'white' else '-' + spec.color}" + (
        f"-s{spec.seed}" if spec.seed else ""
    )


def augment_fingerprint(spec: SpeedSpec | NoiseSpec) -> str:
    """Hash of the augmentation's settings (part of the augmented features' cache key)."""
    return hashlib.sha256(json.dumps(spec.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16]


def _pink(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance pink (1/f power) noise of ``n`` samples, shaped in the frequency domain."""
    import numpy as np

    spectrum = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    freqs = np.arange(n // 2 + 1, dtype=np.float64)
    freqs[0] = 1.0
    noise = np.fft.irfft(spectrum / np.sqrt(freqs), n)
    return noise / (noise.std() + 1e-12)


def apply_augment(wav: np.ndarray, sample_rate: int, spec: SpeedSpec | NoiseSpec) -> np.ndarray:
    """The augmented copy of ``wav (n,)`` float32 at ``sample_rate`` -> float32 ``(m,)``.

    Deterministic: the noise generator is seeded with a CRC-32 of the samples (plus
    ``spec.seed``), so a file gives the same copy in every run and every process.
    """
    import numpy as np

    wav = np.asarray(wav, dtype=np.float32)
    if isinstance(spec, SpeedSpec):
        import soxr

        out = soxr.resample(wav, sample_rate * spec.factor, sample_rate, quality="HQ")
        return np.asarray(out, dtype=np.float32)
    rng = np.random.default_rng([zlib.crc32(wav.tobytes()), spec.seed])
    noise = rng.standard_normal(len(wav)) if spec.color == "white" else _pink(len(wav), rng)
    power = float(np.mean(wav.astype(np.float64) ** 2))
    scale = np.sqrt(power / 10 ** (spec.snr_db / 10)) if power > 0 else 0.0
    return (wav + scale * noise).astype(np.float32)
