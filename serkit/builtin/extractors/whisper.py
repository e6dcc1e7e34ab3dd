"""``whisper``: hidden states of Whisper's encoder (transformers), cropped to the real audio.

Any Whisper checkpoint (``openai/whisper-large-v3``, ``openai/whisper-base``,
distil-whisper, fine-tuned ones) as a hub id or a local folder written by
``save_pretrained``; only the encoder's weights are loaded (the decoder's are skipped).
``transformers`` is an optional dependency (``pip install 'serkit[hf]'``). What does not
depend on the model family (checkpoint location, fingerprint, ``layer``, ``pool``,
chunking, dropping unneeded layers) is shared with ``hf_ssl`` in
:mod:`serkit.builtin.extractors.hf_base`.

How Whisper sees audio: the checkpoint's feature extractor turns a waveform into a log-mel
spectrogram padded to 30 s (3000 frames of 10 ms; the normalisation uses the padded
spectrogram's maximum, as in Whisper itself), and the encoder (two convolutions, the
second with stride 2, then the transformer) always runs on those 30 s and returns 1500
frames (50 per second, :attr:`Whisper.stride` = 320 samples at 16 kHz). The padding is
part of the model: every frame attends to it, so serkit does not remove it; it **crops**
the output to the frames of the real audio, ``ceil(n / 320)`` for ``n`` samples (a frame
is kept when its centre lies within the audio). Cropped frames are exactly the first
frames of the encoder's 30-s output. Audio longer than ``max_chunk_seconds`` (at most 30)
is cut into near-equal chunks on the 320-sample grid, each run as its own 30-s input, and
their frames concatenated. Since every input has the same shape, pieces of any lengths
batch freely without changing any number.

Hidden states: ``hidden_states[0]`` is the input of the first encoder layer (convolutions
plus positional embedding), ``hidden_states[i]`` the output of layer ``i``, the last one
after the encoder's final layer norm (as transformers returns them); ``encoder_layers + 1``
in all (33 for large-v3, 7 for base).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from serkit.builtin.extractors.hf_base import HfHiddenStates, HfParams, ceil_div

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = ["Whisper"]

#: The encoder's second convolution has stride 2: one output frame per two mel frames.
CONV_STRIDE = 2


class Whisper(HfHiddenStates):
    """Whisper encoder hidden states cropped to the real audio: ``(L, dim)`` float32, ``L = ceil(n / 320)``.

    ``dim`` is ``d_model`` (1280 for large-v3), or ``(encoder_layers + 1) * d_model`` with
    ``layer: weighted``; ``pool: mean | mean_std`` stores per-layer utterance statistics
    instead (one vector per utterance). See the module docstring for padding, cropping and
    chunking.

    ``version`` is part of the cache key; bump it when the same params and checkpoint
    would give different numbers (cropping or chunking rule, layer layout).
    """

    name: ClassVar[str] = "whisper"
    version: ClassVar[str] = "1"

    class Params(HfParams):
        max_chunk_seconds: float = Field(
            30.0,
            ge=0.1,
            le=30.0,
            description="Longer waveforms are cut into near-equal chunks of at most this length "
            "(Whisper's input window is 30 s), each padded to 30 s as Whisper requires, and "
            "their cropped frames concatenated.",
        )

    params: Params

    def __init__(self, params: Any = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self._fe: Any = None

    def _example_hub_id(self) -> str:
        return "openai/whisper-large-v3"

    # -- config ---------------------------------------------------------------------------
    def _check_config(self, config: Any) -> None:
        model_type = getattr(config, "model_type", None)
        if model_type != "whisper":
            raise self._err(
                f"model {self.params.model!r} has model_type {model_type!r}; supported: whisper "
                "(wav2vec2, HuBERT, WavLM, data2vec: extractor 'hf_ssl')"
            )

    def _load_preprocessing(self, transformers: Any, source: str, kwargs: dict[str, Any], config: Any) -> int:
        """The checkpoint's WhisperFeatureExtractor (a default one for its mel bins when it has none)."""
        folder = self.local_folder
        fe = None
        if folder is None or (folder / "preprocessor_config.json").is_file():
            try:
                fe = transformers.WhisperFeatureExtractor.from_pretrained(source, **kwargs)
            except (OSError, ValueError):
                fe = None
        if fe is None:
            fe = transformers.WhisperFeatureExtractor(feature_size=int(config.num_mel_bins))
            warnings.warn(
                f"extractor 'whisper': model {self.params.model!r} has no feature extractor config "
                f"(preprocessor_config.json); using Whisper's defaults ({fe.sampling_rate} Hz, "
                f"{fe.feature_size} mel bins, 30-s windows)",
                UserWarning,
                stacklevel=4,
            )
        if int(fe.feature_size) != int(config.num_mel_bins):
            raise self._err(
                f"model {self.params.model!r}: its feature extractor makes {fe.feature_size} mel bins "
                f"but the encoder expects num_mel_bins={config.num_mel_bins} (preprocessor_config.json)"
            )
        expected = int(config.max_source_positions) * CONV_STRIDE
        if int(fe.nb_max_frames) != expected:
            raise self._err(
                f"model {self.params.model!r}: its feature extractor makes {fe.nb_max_frames} mel frames "
                f"per window but the encoder expects {expected} (max_source_positions "
                f"{config.max_source_positions} x {CONV_STRIDE})"
            )
        self._fe = fe
        return int(fe.sampling_rate)

    def _states_of(self, config: Any) -> int:
        return int(config.encoder_layers) + 1

    @property
    def hidden_size(self) -> int:
        """Width of one hidden state (``config.d_model``)."""
        return int(self._load_config().d_model)

    @property
    def feature_extractor(self) -> Any:
        """The checkpoint's ``WhisperFeatureExtractor``."""
        self._load_config()
        return self._fe

    @property
    def stride(self) -> int:
        """Samples per output frame: the mel hop times the encoder's stride 2 (320 at 16 kHz)."""
        return int(self.feature_extractor.hop_length) * CONV_STRIDE

    @property
    def receptive_field(self) -> int:
        """Fewest samples accepted: one STFT window (``n_fft``, 400 = 25 ms at 16 kHz)."""
        return int(self.feature_extractor.n_fft)

    @property
    def window_frames(self) -> int:
        """Output frames of one 30-s input window (1500)."""
        return int(self._load_config().max_source_positions)

    @property
    def max_chunk_samples(self) -> int:
        """``max_chunk_seconds`` on the frame grid, never above the 30-s window."""
        window = int(self.feature_extractor.n_samples) // self.stride * self.stride
        return min(super().max_chunk_samples, window)

    def num_frames(self, n_samples: int) -> int:
        """Frames :meth:`extract` gives for ``n_samples`` samples: ``ceil(len / stride)`` per chunk."""
        return sum(self._frames_of(stop - start) for start, stop in self.chunk_bounds(n_samples))

    def _frames_of(self, n_samples: int) -> int:
        return min(ceil_div(n_samples, self.stride), self.window_frames)

    @property
    def _final_norm_on_last_state(self) -> bool:
        return True

    # -- model ----------------------------------------------------------------------------
    def _load_weights(self, transformers: Any, source: str, kwargs: dict[str, Any]) -> Any:
        # the audio-classification class holds the encoder alone: decoder weights are skipped
        return transformers.WhisperForAudioClassification.from_pretrained(source, **kwargs).encoder

    def _layer_holder(self, model: Any) -> Any:
        return model  # the WhisperEncoder itself

    # -- extraction -----------------------------------------------------------------------
    def _forward(self, pieces: list[np.ndarray], budget: int) -> list[torch.Tensor]:
        """Run the encoder on 30-s windows of the pieces: ``(frames_j, n_selected, H)`` float32 on the device."""
        import torch

        model = self.load_model()
        fe = self.feature_extractor
        per_pass = max(1, budget // self.max_chunk_samples)
        dtype = getattr(torch, self._torch_dtype or "float32")
        device = str(self._device)
        selected = self.layer_indices
        out: list[torch.Tensor] = []
        for start in range(0, len(pieces), per_pass):
            group = pieces[start : start + per_pass]
            mel = fe(
                group, sampling_rate=fe.sampling_rate, return_tensors="pt", device=device, return_attention_mask=False
            )["input_features"]  # (B, n_mels, 3000), each piece padded to 30 s
            inputs = mel.to(device=device, dtype=dtype, non_blocking=True)
            with torch.inference_mode(), self._autotune():
                hidden = model(inputs, output_hidden_states=True).hidden_states  # (n_kept + 1,) x (B, 1500, H)
                feats = torch.stack([hidden[i] for i in selected], dim=2).float()  # (B, 1500, n_sel, H)
            out.extend(feats[row, : self._frames_of(int(p.shape[0]))] for row, p in enumerate(group))
        return out
