"""Fixtures of the feature tests: tiny synthetic WAV files and a small real extractor."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import pytest
from pydantic import Field

from serkit.interfaces.base import ComponentParams
from serkit.interfaces.extractor import Extractor

SR = 16000


def tone(seconds: float, f0: float, seed: int = 0, sr: int = SR) -> np.ndarray:
    """A harmonic tone with a slow amplitude modulation plus a little noise, float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * sr)) / sr
    y = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
    y = y * (0.6 + 0.4 * np.sin(2 * np.pi * 2.5 * t))
    return (0.1 * y + 0.005 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture
def make_wav(tmp_path: Path) -> Callable[..., Path]:
    """``make_wav(name, seconds=1.0, f0=150.0, seed=0, sr=16000) -> Path`` of a PCM_16 WAV."""
    import soundfile as sf

    def make(
        name: str, seconds: float = 1.0, f0: float = 150.0, seed: int = 0, sr: int = SR
    ) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, tone(seconds, f0, seed, sr), sr, subtype="PCM_16")
        return path

    return make


class FrameStats(Extractor):
    """Per-frame log-energy, mean absolute value and zero-crossing rate: ``(L, 3)``."""

    name: ClassVar[str] = "frame_stats"

    class Params(ComponentParams):
        frame: int = Field(400, gt=0, description="Frame length and shift in samples.")
        kind: Literal["sequence", "vector"] = Field(
            "sequence", description="'vector' averages the frames."
        )

    @property
    def output(self) -> Literal["sequence", "vector"]:
        return self.params.kind  # type: ignore[attr-defined]

    @property
    def sample_rate(self) -> int:
        return SR

    @property
    def dim(self) -> int:
        return 3

    def extract(self, wav: np.ndarray) -> np.ndarray:
        n = self.params.frame  # type: ignore[attr-defined]
        frames = wav[: max(1, len(wav) // n) * n].reshape(-1, n) if len(wav) >= n else wav[None]
        energy = np.log(np.mean(frames**2, axis=1) + 1e-10)
        mav = np.mean(np.abs(frames), axis=1)
        zcr = np.mean(np.abs(np.diff(np.sign(frames), axis=1)) > 0, axis=1)
        out = np.stack([energy, mav, zcr], axis=1).astype(np.float32)
        return out.mean(axis=0) if self.output == "vector" else out


@pytest.fixture
def frame_stats_cls() -> type[FrameStats]:
    """The :class:`FrameStats` extractor class (subclass it to count or break calls)."""
    return FrameStats


@pytest.fixture
def make_tone() -> Callable[..., np.ndarray]:
    """:func:`tone` as a fixture."""
    return tone
