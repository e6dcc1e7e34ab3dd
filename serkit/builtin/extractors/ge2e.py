"""``ge2e``: the GE2E speaker-verification d-vector of the ``resemblyzer`` package.

resemblyzer ships a 3-layer LSTM speaker encoder (40 mel bands, 256-d output) trained
with the generalised end-to-end loss, weights inside the wheel. An utterance is cut into
1.6 s partial windows (``rate`` per second); each window's embedding is L2-normalised,
their mean is L2-normalised again. This module reproduces resemblyzer's
``VoiceEncoder.embed_utterance`` but stacks the windows of a whole batch of utterances
into one LSTM forward pass, which is several times faster than one call per file.

The work is split in two for the extraction driver: :meth:`Ge2e.prepare` (volume
normalisation, silence trimming, mel windows: no model, runs in worker processes) and
:meth:`Ge2e.extract_prepared` (the LSTM, in the process holding the model).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer, model_validator

from serkit.errors import AudioError, ModelError
from serkit.interfaces.base import ComponentParams
from serkit.interfaces.extractor import Extractor

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np

__all__ = ["Ge2e"]

#: resemblyzer's sample rate, embedding size and partial window length (frames of 10 ms).
GE2E_SAMPLE_RATE = 16000
GE2E_DIM = 256
#: Frames per partial window and mel channels (resemblyzer's hparams).
WINDOW_FRAMES = 160
MEL_CHANNELS = 40
#: If VAD trimming leaves fewer samples than this (0.5 s), the untrimmed audio is used.
MIN_TRIMMED_SAMPLES = GE2E_SAMPLE_RATE // 2
#: Most partial windows in one forward pass (bounds memory for very long files).
MAX_PARTIALS_PER_PASS = 1024

_WEBRTCVAD_FIX = (
    "the 'webrtcvad' module needed by resemblyzer imports pkg_resources, which "
    "setuptools>=81 no longer provides; install the drop-in build without that import: "
    "pip install --force-reinstall --no-deps webrtcvad-wheels"
)

#: How to get the GE2E weights: the resemblyzer wheel without its dependencies (serkit
#: provides them; its 'webrtcvad' sdist would need a C compiler).
RESEMBLYZER_INSTALL = "pip install --no-deps resemblyzer==0.1.4"


def _import_resemblyzer() -> Any:
    """Import resemblyzer, turning known installation problems into a ModelError."""
    try:
        with warnings.catch_warnings():
            # resemblyzer imports scipy.ndimage.morphology, deprecated in SciPy 1.x
            warnings.simplefilter("ignore", DeprecationWarning)
            import resemblyzer
    except ImportError as err:
        if err.name == "pkg_resources" or "pkg_resources" in str(err):
            raise ModelError(
                f"extractor 'ge2e': cannot import resemblyzer: {_WEBRTCVAD_FIX}"
            ) from err
        if err.name == "resemblyzer":
            raise ModelError(
                "extractor 'ge2e': its pretrained weights ship in the resemblyzer wheel, which is not installed; "
                f"install it without its dependencies (serkit provides them): {RESEMBLYZER_INSTALL}"
            ) from err
        raise ModelError(
            f"extractor 'ge2e': cannot import resemblyzer ({err}); reinstall it with: {RESEMBLYZER_INSTALL}"
        ) from err
    return resemblyzer


class Ge2e(Extractor):
    """GE2E speaker d-vector (resemblyzer's pretrained encoder): ``(256,)`` float32, unit norm.

    With ``output: partials`` the features are instead the d-vectors of the partial
    windows, ``(P, 256)`` float32 with unit-norm rows (P grows with the duration:
    ``rate`` windows per second), a sequence for a sequence encoder.

    Preprocessing as resemblyzer's ``preprocess_wav`` on 16 kHz audio: the volume is
    raised to -30 dBFS (never lowered), then, with ``trim_silence``, silences longer
    than ~0.2 s are cut using WebRTC VAD; if trimming leaves under 0.5 s, the untrimmed
    (volume-normalised) waveform is used instead.
    """

    name: ClassVar[str] = "ge2e"
    version: ClassVar[str] = "1"
    runtime_params: ClassVar[frozenset[str]] = frozenset({"device"})

    class Params(ComponentParams):
        device: str = Field(
            "cpu", description="Torch device of the encoder, e.g. 'cpu' or 'cuda:0'."
        )
        rate: float = Field(
            1.3,
            ge=0.625,
            le=100.0,
            description="Partial 1.6 s windows per second of audio (resemblyzer's default 1.3; "
            ">= 0.625 so that windows cover the utterance).",
        )
        min_coverage: float = Field(
            0.75,
            gt=0,
            le=1,
            description="Keep the last, zero-padded window when at least this fraction of it "
            "is audio.",
        )
        trim_silence: bool = Field(
            True, description="Cut long silences with WebRTC VAD (resemblyzer's preprocess_wav)."
        )
        finetune: bool = Field(
            False,
            description="Fine-tune the encoder with the model (the paper's setting). The store "
            "then caches each utterance's mel windows (P, 160*40) instead of its d-vector, and "
            "the stream needs no encoder: the GE2E network is its encoder.",
        )
        lr_scale: float = Field(
            0.01,
            gt=0,
            description="Learning-rate multiplier of the encoder when fine-tuned (the paper: 0.01).",
        )
        output: Literal["embedding", "partials"] = Field(
            "embedding",
            description="'embedding': one (256,) d-vector per utterance; 'partials': the "
            "(P, 256) d-vectors of its partial windows, a sequence (needs an encoder).",
        )

        @model_validator(mode="after")
        def _check(self) -> Ge2e.Params:
            if self.finetune and self.output == "partials":
                raise ValueError(
                    "output 'partials' caches the encoder's outputs, but finetune: true caches its "
                    "inputs (mel windows); choose one of them"
                )
            return self

        @model_serializer(mode="wrap")
        def _omit_default_output(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
            # ``output`` came after the first stores were written: its default is left out
            # of dumps, so that the fingerprint (a hash of the dump) and those stores stay valid
            data = handler(self)
            if isinstance(data, dict) and data.get("output") == "embedding":
                del data["output"]
            return data

    params: Params

    def __init__(self, params: ComponentParams | None = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self._encoder: Any = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_encoder"] = None  # reloaded on demand in the receiving process
        return state

    @property
    def output(self) -> Literal["vector", "sequence"]:
        return "sequence" if self.params.finetune or self.params.output == "partials" else "vector"

    @property
    def trainable(self) -> bool:
        """True when the encoder is fine-tuned: features are its inputs, not its outputs."""
        return bool(self.params.finetune)

    @property
    def lr_scale(self) -> float:
        return float(self.params.lr_scale)

    @property
    def sample_rate(self) -> int:
        return GE2E_SAMPLE_RATE

    @property
    def dim(self) -> int:
        return WINDOW_FRAMES * MEL_CHANNELS if self.params.finetune else GE2E_DIM

    def build_trainable(self) -> Any:
        """The pretrained encoder as a :class:`serkit.nn.ge2e_encoder.Ge2eEncoderNet`.

        Its input is what :meth:`extract_batch` caches with ``finetune: true``:
        ``(B, P, 160 * 40)`` mel windows with ``lengths (B,)``; output ``(B, 256)``.
        """
        from serkit.nn.ge2e_encoder import Ge2eEncoderNet

        encoder = self.load_encoder()
        return Ge2eEncoderNet(encoder.lstm, encoder.linear, WINDOW_FRAMES, MEL_CHANNELS)

    def load_encoder(self) -> Any:
        """The pretrained ``resemblyzer.VoiceEncoder`` (a torch module), loaded once."""
        if self._encoder is None:
            import torch

            resemblyzer = _import_resemblyzer()
            try:
                device = torch.device(self.params.device)
            except (RuntimeError, ValueError) as err:
                raise ModelError(
                    f"extractor 'ge2e': device {self.params.device!r} is not a torch device ({err})"
                ) from err
            try:
                encoder = resemblyzer.VoiceEncoder(device=device, verbose=False)
            except Exception as err:
                raise ModelError(
                    f"extractor 'ge2e': cannot load resemblyzer's pretrained encoder on "
                    f"{self.params.device!r} ({err})"
                ) from err
            encoder.eval()
            self._encoder = encoder
        return self._encoder

    def preprocess(self, wav: np.ndarray) -> np.ndarray:
        """Volume normalisation and (optional) silence trimming, as resemblyzer does.

        Args:
            wav: float32 ``(n_samples,)`` at 16 kHz.

        Returns:
            float32 ``(n,)``, the waveform given to the encoder.
        """
        import numpy as np

        resemblyzer = _import_resemblyzer()
        from resemblyzer.hparams import audio_norm_target_dBFS

        y = np.asarray(wav, dtype=np.float32)
        if y.ndim != 1 or y.size == 0:
            raise AudioError(f"ge2e expects a non-empty 1-D waveform, got shape {y.shape}")
        if not np.any(y):
            raise AudioError("ge2e: the waveform is all zeros (digital silence)")
        y = resemblyzer.normalize_volume(y, audio_norm_target_dBFS, increase_only=True)
        y = np.asarray(y, dtype=np.float32)
        if self.params.trim_silence:
            trimmed = resemblyzer.trim_long_silences(y)
            if trimmed.shape[0] >= MIN_TRIMMED_SAMPLES:
                y = trimmed
        return np.ascontiguousarray(y, dtype=np.float32)

    def _partials(self, wav: np.ndarray) -> np.ndarray:
        """The partial mel windows of one preprocessed waveform: ``(P, 160, 40)``."""
        import numpy as np

        resemblyzer = _import_resemblyzer()
        from resemblyzer.audio import wav_to_mel_spectrogram

        # a static method: the model is not needed (prepare() runs in worker processes)
        wav_slices, mel_slices = resemblyzer.VoiceEncoder.compute_partial_slices(
            len(wav), self.params.rate, self.params.min_coverage
        )
        stop = wav_slices[-1].stop
        if stop >= len(wav):
            wav = np.pad(wav, (0, stop - len(wav)), "constant")
        mel = wav_to_mel_spectrogram(wav)  # (frames, 40)
        return np.stack([mel[s] for s in mel_slices]).astype(np.float32, copy=False)

    def extract(self, wav: np.ndarray) -> np.ndarray:
        """Features of one waveform: float32 ``(256,)`` with unit L2 norm (see :meth:`extract_batch`)."""
        return self.extract_batch([wav])[0]

    def prepare(self, wav: np.ndarray) -> np.ndarray:
        """Everything before the model: :meth:`preprocess`, then the partial mel windows.

        Needs no model (the extraction driver runs it in worker processes).

        Args:
            wav: float32 ``(n_samples,)`` at 16 kHz.

        Returns:
            float32 ``(P, 160, 40)`` mel windows.
        """
        return self._partials(self.preprocess(wav))

    def extract_prepared(self, windows: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Features from :meth:`prepare` outputs, all windows in one forward pass.

        Args:
            windows: float32 ``(P_i, 160, 40)`` per utterance.

        Returns:
            per utterance, by ``output``/``finetune``: the ``(256,)`` unit-norm d-vector
            (the L2-normalised mean of its window embeddings); ``partials``: the window
            embeddings ``(P_i, 256)``; ``finetune``: the flattened windows ``(P_i, 160 * 40)``.
        """
        import numpy as np

        if not windows:
            return []
        if self.params.finetune:
            return [w.reshape(w.shape[0], -1).astype(np.float32, copy=False) for w in windows]
        counts = [w.shape[0] for w in windows]
        stacked = np.concatenate(windows, axis=0)  # (sum P_i, 160, 40)
        partial = self.embed_windows(stacked)  # (sum P_i, 256), unit rows
        out = []
        start = 0
        for n in counts:
            rows = partial[start : start + n]
            start += n
            if self.params.output == "partials":
                out.append(np.ascontiguousarray(rows, dtype=np.float32))
                continue
            raw = rows.mean(axis=0)
            norm = float(np.linalg.norm(raw))
            if not norm > 0:
                raise AudioError("ge2e: the encoder gives a zero embedding for this audio")
            out.append((raw / norm).astype(np.float32))
        return out

    def extract_batch(self, wavs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Features of several waveforms: :meth:`prepare` each, then :meth:`extract_prepared`.

        Args:
            wavs: float32 ``(n_samples,)`` arrays at 16 kHz.

        Returns:
            one float32 ``(256,)`` unit-norm array per waveform; with ``output: partials``
            the ``(P, 256)`` window d-vectors; with ``finetune`` the flattened mel windows
            ``(P, 160 * 40)``.
        """
        return self.extract_prepared([self.prepare(w) for w in wavs])

    def embed_windows(self, mels: np.ndarray) -> np.ndarray:
        """L2-normalised embeddings of mel windows.

        Args:
            mels: float32 ``(P, 160, 40)`` mel spectrogram windows.

        Returns:
            float32 ``(P, 256)``; a window the encoder maps to zero stays zero.
        """
        import numpy as np
        import torch

        encoder = self.load_encoder()
        chunks = []
        with torch.inference_mode():
            for i in range(0, mels.shape[0], MAX_PARTIALS_PER_PASS):
                x = torch.from_numpy(np.ascontiguousarray(mels[i : i + MAX_PARTIALS_PER_PASS]))
                x = x.to(encoder.device)
                _, (hidden, _) = encoder.lstm(x)  # hidden: (layers, P, 256)
                raw = encoder.relu(encoder.linear(hidden[-1]))  # (P, 256)
                norm = torch.linalg.vector_norm(raw, dim=1, keepdim=True)
                chunks.append((raw / norm.clamp_min(1e-12)).cpu().numpy())
        return np.concatenate(chunks, axis=0).astype(np.float32, copy=False)
