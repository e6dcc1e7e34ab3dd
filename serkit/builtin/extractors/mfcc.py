"""``mfcc``: mel-frequency cepstral coefficients (librosa), optionally with deltas and CMVN."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, model_validator

from serkit.interfaces.base import ComponentParams
from serkit.interfaces.extractor import Extractor

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Mfcc"]

#: Frames used by librosa's delta filter (its default); shorter inputs use edge padding.
DELTA_WIDTH = 9
#: Floor of the per-coefficient standard deviation in CMVN (avoids dividing by ~0).
CMVN_STD_FLOOR = 1e-5


class Mfcc(Extractor):
    """MFCC frames (librosa): ``(frames, n_mfcc * (1 + deltas))`` float32.

    The window is ``win_ms`` long (``round(sample_rate * win_ms / 1000)`` samples, Hann),
    zero-padded to an FFT size of the next power of two, shifted by ``hop_ms``; frames
    are centred (librosa's default), so a waveform of ``n`` samples gives
    ``1 + n // hop`` frames. Deltas use librosa's Savitzky-Golay delta over 9 frames.
    """

    name: ClassVar[str] = "mfcc"
    version: ClassVar[str] = "1"

    class Params(ComponentParams):
        sample_rate: int = Field(16000, gt=0, description="Sample rate (Hz) audio is resampled to.")
        n_mfcc: int = Field(40, gt=0, description="Number of cepstral coefficients.")
        n_mels: int = Field(64, gt=0, description="Number of mel bands (must be >= n_mfcc).")
        win_ms: float = Field(25.0, gt=0, description="Analysis window length in milliseconds.")
        hop_ms: float = Field(10.0, gt=0, description="Frame shift in milliseconds.")
        deltas: Literal[0, 1, 2] = Field(
            0, description="0: static only; 1: append deltas; 2: append deltas and delta-deltas."
        )
        fmin: float = Field(0.0, ge=0, description="Lowest mel band edge in Hz.")
        fmax: float | None = Field(
            None, gt=0, description="Highest mel band edge in Hz (default: sample_rate / 2)."
        )
        cmvn: bool = Field(
            False, description="Per-utterance mean and variance normalisation of every column."
        )

        @model_validator(mode="after")
        def _check(self) -> Mfcc.Params:
            nyquist = self.sample_rate / 2
            top = nyquist if self.fmax is None else self.fmax
            if self.fmax is not None and self.fmax > nyquist:
                raise ValueError(f"fmax ({self.fmax}) must be <= sample_rate / 2 ({nyquist})")
            if top <= self.fmin:
                raise ValueError(f"fmax ({top}) must be greater than fmin ({self.fmin})")
            if self.n_mfcc > self.n_mels:
                raise ValueError(f"n_mfcc ({self.n_mfcc}) must be <= n_mels ({self.n_mels})")
            win = round(self.sample_rate * self.win_ms / 1000)
            hop = round(self.sample_rate * self.hop_ms / 1000)
            if win < 2 or hop < 1:
                raise ValueError(
                    f"win_ms ({self.win_ms}) and hop_ms ({self.hop_ms}) give {win} and {hop} "
                    f"samples at {self.sample_rate} Hz; need at least 2 and 1"
                )
            return self

    params: Params

    @property
    def output(self) -> Literal["sequence"]:
        return "sequence"

    @property
    def sample_rate(self) -> int:
        return self.params.sample_rate

    @property
    def dim(self) -> int:
        return self.params.n_mfcc * (1 + self.params.deltas)

    @property
    def win_length(self) -> int:
        """Window length in samples."""
        return round(self.params.sample_rate * self.params.win_ms / 1000)

    @property
    def hop_length(self) -> int:
        """Frame shift in samples."""
        return round(self.params.sample_rate * self.params.hop_ms / 1000)

    @property
    def n_fft(self) -> int:
        """FFT size: the next power of two >= the window length."""
        return 1 << (self.win_length - 1).bit_length()

    def extract(self, wav: np.ndarray) -> np.ndarray:
        """MFCCs of one waveform.

        Args:
            wav: float32 ``(n_samples,)`` at :attr:`sample_rate`.

        Returns:
            float32 ``(1 + n_samples // hop_length, dim)``.
        """
        import librosa
        import numpy as np

        p = self.params
        y = np.ascontiguousarray(wav, dtype=np.float32)
        m = librosa.feature.mfcc(
            y=y,
            sr=p.sample_rate,
            n_mfcc=p.n_mfcc,
            n_fft=self.n_fft,
            win_length=self.win_length,
            hop_length=self.hop_length,
            window="hann",
            center=True,
            n_mels=p.n_mels,
            fmin=p.fmin,
            fmax=p.fmax,
        )  # (n_mfcc, T)
        parts = [m]
        if p.deltas:
            mode = "interp" if m.shape[1] >= DELTA_WIDTH else "nearest"
            for order in range(1, p.deltas + 1):
                parts.append(librosa.feature.delta(m, width=DELTA_WIDTH, order=order, mode=mode))
        feats = np.concatenate(parts, axis=0).T  # (T, dim)
        if p.cmvn:
            mean = feats.mean(axis=0, keepdims=True)
            std = np.maximum(feats.std(axis=0, keepdims=True), CMVN_STD_FLOOR)
            feats = (feats - mean) / std
        return np.ascontiguousarray(feats, dtype=np.float32)
