"""``mfcc``: mel-frequency cepstral coefficients (librosa), optionally with deltas and CMVN."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

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
#: Frames per FFT call (bounds the scratch memory to a few MB).
STFT_BLOCK = 1024
#: Power floor and dynamic range (dB) of the log-mel spectrogram (librosa's power_to_db).
AMIN = 1e-10
TOP_DB = 80.0


def _periodic_hann(n: int) -> np.ndarray:
    """Periodic Hann window ``(n,)`` float64: ``0.5 + 0.5 cos(x)`` for ``x`` on ``[-pi, pi)``
    (the values of ``scipy.signal.get_window("hann", n)``)."""
    import numpy as np

    x = np.linspace(-np.pi, np.pi, n + 1, dtype=np.float64)
    w = np.zeros(n + 1, dtype=np.float64)
    w += 0.5 * np.cos(0 * x)
    w += 0.5 * np.cos(1 * x)
    return w[:n]


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear (200/3 Hz per mel) below 1 kHz, logarithmic above."""
    import numpy as np

    mel = hz / (200.0 / 3)
    above = hz >= 1000.0
    mel[above] = 1000.0 / (200.0 / 3) + np.log(hz[above] / 1000.0) / (np.log(6.4) / 27.0)
    return mel


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    import numpy as np

    hz = (200.0 / 3) * mel
    above = mel >= 1000.0 / (200.0 / 3)
    hz[above] = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel[above] - 1000.0 / (200.0 / 3)))
    return hz


def _slaney_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Triangular mel filters with Slaney's area normalisation: float32 ``(n_mels, n_fft // 2 + 1)``.

    Filter ``i`` rises from mel point ``i`` to ``i + 1`` and falls to ``i + 2``, on
    ``n_mels + 2`` points equally spaced in mels from ``fmin`` to ``fmax``; each is scaled
    by ``2 / (width in Hz)`` (the values of ``librosa.filters.mel``).
    """
    import numpy as np

    bins = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    edges = np.linspace(_hz_to_mel(np.array([float(fmin)]))[0], _hz_to_mel(np.array([float(fmax)]))[0], n_mels + 2)
    points = _mel_to_hz(edges)
    widths = np.diff(points)
    ramps = np.subtract.outer(points, bins)
    weights = np.zeros((n_mels, bins.shape[0]), dtype=np.float32)
    for i in range(n_mels):
        weights[i] = np.maximum(0, np.minimum(-ramps[i] / widths[i], ramps[i + 2] / widths[i + 1]))
    weights *= (2.0 / (points[2 : n_mels + 2] - points[:n_mels]))[:, np.newaxis]
    return weights


class Mfcc(Extractor):
    """MFCC frames (librosa): ``(frames, n_mfcc * (1 + deltas))`` float32.

    The window is ``win_ms`` long (``round(sample_rate * win_ms / 1000)`` samples, Hann),
    zero-padded to an FFT size of the next power of two, shifted by ``hop_ms``; frames
    are centred (librosa's default), so a waveform of ``n`` samples gives
    ``1 + n // hop`` frames. Deltas use librosa's Savitzky-Golay delta over 9 frames.

    The numbers are librosa's ``feature.mfcc`` (power spectrogram, Slaney mel filterbank,
    ``power_to_db`` with ``top_db=80``, orthonormal DCT-II) up to float32 rounding (the
    tests compare at ``rtol=1e-5, atol=1e-4``), computed here with numpy and ``scipy.fft``:
    the window and the filterbank are built once per extractor instead of once per file,
    and the FFT runs in single precision (librosa: double), so a call is ~3x faster than
    ``librosa.feature.mfcc`` on short utterances; and a worker process computing MFCCs
    does not import librosa (~2 s) unless deltas are asked.
    """

    name: ClassVar[str] = "mfcc"
    #: "2": single-precision FFT (version 1 transformed in float64, as librosa does; the
    #: numbers differ by float32 rounding, so the two versions have separate stores).
    version: ClassVar[str] = "2"
    #: A pure CPU function of the waveform, cheap to pickle: the extraction driver may run
    #: it in worker processes (``executor="process"``).
    parallel_safe: ClassVar[bool] = True

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

    def __init__(self, params: ComponentParams | None = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self._basis: tuple[np.ndarray, np.ndarray] | None = None  # (window, mel filterbank)

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

    def _window_and_filterbank(self) -> tuple[np.ndarray, np.ndarray]:
        """The Hann window zero-padded to ``(n_fft,)`` and the mel filterbank ``(n_mels, n_fft // 2 + 1)``."""
        if self._basis is None:
            import numpy as np

            p = self.params
            window = _periodic_hann(self.win_length).astype(np.float32)
            left = (self.n_fft - self.win_length) // 2
            window = np.pad(window, (left, self.n_fft - self.win_length - left))
            top = p.sample_rate / 2 if p.fmax is None else p.fmax
            mel = _slaney_filterbank(p.sample_rate, self.n_fft, p.n_mels, p.fmin, top)
            self._basis = (window, mel)
        return self._basis

    def _power_spectrogram(self, y: np.ndarray) -> np.ndarray:
        """``|STFT|^2`` of centred, zero-padded frames: float32 ``(n_fft // 2 + 1, frames)``.

        Frames are transformed :data:`STFT_BLOCK` at a time and only the edges are padded,
        so the memory beyond the result is a few MB whatever the duration (an hour at
        16 kHz and a 10 ms hop: a 370 MB result).
        """
        import numpy as np
        import scipy.fft

        window, _ = self._window_and_filterbank()
        n, n_fft, hop = y.shape[0], self.n_fft, self.hop_length
        half = n_fft // 2
        n_frames = 1 + n // hop  # frame t covers y[t * hop - half : t * hop - half + n_fft]
        out = np.empty((n_frames, n_fft // 2 + 1), dtype=np.float32)
        for a in range(0, n_frames, STFT_BLOCK):
            b = min(a + STFT_BLOCK, n_frames)
            lo, hi = a * hop - half, (b - 1) * hop - half + n_fft
            seg = y[max(lo, 0) : min(hi, n)]
            if lo < 0 or hi > n:
                seg = np.pad(seg, (max(0, -lo), max(0, hi - n)))
            frames = np.lib.stride_tricks.sliding_window_view(seg, n_fft)[::hop]  # (b - a, n_fft)
            spec = scipy.fft.rfft(window * frames, axis=-1)  # complex64: single-precision FFT
            np.add(spec.real**2, spec.imag**2, out=out[a:b])
        return out.T

    def extract(self, wav: np.ndarray) -> np.ndarray:
        """MFCCs of one waveform.

        Args:
            wav: float32 ``(n_samples,)`` at :attr:`sample_rate`.

        Returns:
            float32 ``(1 + n_samples // hop_length, dim)``.
        """
        import numpy as np
        import scipy.fft

        p = self.params
        y = np.ascontiguousarray(wav, dtype=np.float32)
        _, mel_basis = self._window_and_filterbank()
        spec = self._power_spectrogram(y)  # (bins, T)
        mel = mel_basis @ spec  # (n_mels, T)
        log_mel = 10.0 * np.log10(np.maximum(AMIN, mel))  # librosa.power_to_db(ref=1.0)
        log_mel = np.maximum(log_mel, log_mel.max() - TOP_DB)
        m = scipy.fft.dct(log_mel, axis=-2, type=2, norm="ortho")[: p.n_mfcc]  # (n_mfcc, T)
        parts = [m]
        if p.deltas:
            import librosa

            mode = "interp" if m.shape[1] >= DELTA_WIDTH else "nearest"
            for order in range(1, p.deltas + 1):
                parts.append(librosa.feature.delta(m, width=DELTA_WIDTH, order=order, mode=mode))
        feats = np.concatenate(parts, axis=0).T  # (T, dim)
        if p.cmvn:
            mean = feats.mean(axis=0, keepdims=True)
            std = np.maximum(feats.std(axis=0, keepdims=True), CMVN_STD_FLOOR)
            feats = (feats - mean) / std
        return np.ascontiguousarray(feats, dtype=np.float32)
