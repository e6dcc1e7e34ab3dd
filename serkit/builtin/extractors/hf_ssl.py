"""``hf_ssl``: hidden states of a self-supervised speech model loaded through transformers.

Covers the wav2vec 2.0 family: wav2vec2 (and MMS/XLS-R, which share its model type),
HuBERT, WavLM, data2vec-audio, UniSpeech(-SAT) and wav2vec2-conformer. The model is a hub
id (``facebook/wav2vec2-base``) or a local folder written by ``save_pretrained``.
``transformers`` is an optional dependency (``pip install 'serkit[hf]'``); it is imported
only when the model, its config or its feature-extractor config is needed. What does not
depend on the model family (checkpoint location, fingerprint, ``layer``, ``pool``,
chunking) lives in :mod:`serkit.builtin.extractors.hf_base`, shared with ``whisper``.

Hidden states: ``hidden_states[0]`` is the input of the first transformer layer (the CNN
features after the feature projection and the convolutional positional embedding, as
transformers returns it) and ``hidden_states[i]`` the output of transformer layer ``i``;
a model with ``num_hidden_layers = N`` has ``N + 1`` of them. The frame rate is the sample
rate over the product of the CNN strides (50 Hz for the usual 16 kHz checkpoints). Layers
above the highest selected hidden state are never run.

Batching and padding invariance (a padded batch must give, for every item, the numbers
the item gives alone):

- wav2vec2, HuBERT, WavLM and UniSpeech(-SAT) are run as zero-padded batches with an
  attention mask; transformers then zeroes the padded frames before the positional
  convolution and masks them in attention. Their CNN only mixes samples within each
  frame's receptive field, so the valid frames never see the padding, with one exception:
  the group norm of group-norm checkpoints (``feat_extract_norm == "group"``, e.g.
  wav2vec2-base, HuBERT-base, WavLM-base) normalises each channel of the first CNN layer
  over the whole (padded) input. serkit replaces that norm by
  :class:`serkit.nn.group_norm.MaskedGroupNorm`,
  the same normalisation over each item's own valid frames, so group-norm checkpoints
  batch freely too (exact to float rounding; tested against the items alone).
- data2vec-audio and the conformer leak padded frames through their stacked positional /
  depthwise convolutions. They are never padded: only waveforms (or chunks) of exactly
  equal length share a forward pass, the others run one by one.

Padded batches are length buckets: pieces sorted longest first share a pass while the
padding stays within ``max_padding`` of their real samples (by default none on CPU, where
masked attention is slower than one pass per length, and 25 % on CUDA). A pass without
padding gets no mask at all. On CUDA the padded length is rounded up to a whole
second, so that cuDNN autotuning sees few shapes.
Frames beyond an item's own length (from ``_get_feat_extract_output_lengths``) are cropped.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from serkit.builtin.extractors.hf_base import HfHiddenStates, HfParams, ceil_div

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = ["HfSsl"]

#: Model types (``config.model_type``) whose models take raw waveforms through a CNN
#: feature encoder and return one hidden state per transformer layer at the CNN frame rate.
SUPPORTED_MODEL_TYPES: tuple[str, ...] = (
    "wav2vec2",
    "hubert",
    "wavlm",
    "data2vec-audio",
    "unispeech",
    "unispeech-sat",
    "wav2vec2-conformer",
)
#: Model types that give padding-invariant results with zero padding + an attention mask
#: (group-norm checkpoints with a MaskedGroupNorm in their first CNN layer).
MASK_SAFE_MODEL_TYPES: frozenset[str] = frozenset({"wav2vec2", "hubert", "wavlm", "unispeech", "unispeech-sat"})
#: Sample rate and input normalisation used when a checkpoint has no preprocessor_config.json.
DEFAULT_SAMPLE_RATE = 16000
DEFAULT_NORMALIZE = False
#: Variance floor of the zero-mean/unit-variance input normalisation (as transformers').
NORM_EPS = 1e-7
#: Default ``max_padding``. On CPU padded batches only cost (attention with a mask takes
#: torch's slow path; measured with a base-size WavLM, one thread, 10 files of 2-4 s: 4.8 s
#: with no padding (equal lengths only, as fast as a plain per-file loop), 5.3 s with 5 %,
#: 6.6 s with 25 %). On CUDA batching is what makes extraction fast (not measured here).
CPU_MAX_PADDING = 0.0
CUDA_MAX_PADDING = 0.25


class HfSsl(HfHiddenStates):
    """Hidden states of a wav2vec 2.0 / HuBERT / WavLM / data2vec model: ``(L, dim)`` float32.

    ``L`` is the number of CNN frames (~50 per second); ``dim`` is the hidden size, or
    ``(num_hidden_layers + 1) * hidden_size`` with ``layer: weighted``, which stores all
    hidden states side by side so that a learnable weighted sum of the layers (as in
    s3prl / SUPERB) can be trained later: :meth:`split_layers` turns a stored
    ``(..., n_layers * hidden)`` array back into ``(..., n_layers, hidden)``. With
    ``pool: mean | mean_std`` one vector of per-layer statistics per utterance is stored
    instead (see :mod:`serkit.builtin.extractors.hf_base`).

    Input: the waveform is normalised to zero mean and unit variance (with ``normalize``,
    by default as the checkpoint's feature extractor says), then, when longer than
    ``max_chunk_seconds``, cut into ``ceil(n / max)`` near-equal chunks whose lengths are
    multiples of the CNN stride (so frame times stay on the model's grid); the chunks run
    separately and their frames are concatenated. Normalisation uses the whole waveform.

    ``version`` is part of the cache key; bump it whenever the same params and checkpoint
    would give different numbers: a change of the normalisation formula, of the chunking
    rule, of how listed layers are combined or how ``weighted`` lays out the layers, of
    which hidden state an index means, or of the padding/cropping rule. Changes of the
    checkpoint itself need no bump: a local folder's config and weights are hashed into
    :meth:`fingerprint`; hub checkpoints should be pinned with ``revision``.
    """

    name: ClassVar[str] = "hf_ssl"
    version: ClassVar[str] = "1"
    runtime_params: ClassVar[frozenset[str]] = HfHiddenStates.runtime_params | {"max_padding"}

    class Params(HfParams):
        normalize: bool | None = Field(
            None,
            description="Zero-mean/unit-variance normalisation of each waveform; None follows "
            "the checkpoint's feature extractor (do_normalize; False when it has none).",
        )
        max_padding: float | None = Field(
            None,
            ge=0,
            description="Most zero padding a batched forward pass may add, as a fraction of its real "
            "samples (the numbers are the same either way: padding only costs time). None: "
            f"{CPU_MAX_PADDING} on CPU (masked attention is slower there than one pass per length), "
            f"{CUDA_MAX_PADDING} on CUDA.",
        )

    params: Params

    def __init__(self, params: Any = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self._do_normalize: bool | None = None

    # -- config ---------------------------------------------------------------------------
    def _check_config(self, config: Any) -> None:
        model_type = getattr(config, "model_type", None)
        if model_type not in SUPPORTED_MODEL_TYPES or not hasattr(config, "conv_stride"):
            raise self._err(
                f"model {self.params.model!r} has model_type {model_type!r}; supported: "
                f"{', '.join(SUPPORTED_MODEL_TYPES)} (Whisper checkpoints: extractor 'whisper')"
            )

    def _load_preprocessing(self, transformers: Any, source: str, kwargs: dict[str, Any], config: Any) -> int:
        """The sampling rate and ``do_normalize`` of the checkpoint's feature extractor."""
        folder = self.local_folder
        if folder is not None and not (folder / "preprocessor_config.json").is_file():
            fe = None
        else:
            try:
                fe = transformers.AutoFeatureExtractor.from_pretrained(source, **kwargs)
            except (OSError, ValueError):
                fe = None
        if fe is None:
            warnings.warn(
                f"extractor 'hf_ssl': model {self.params.model!r} has no feature extractor "
                f"config (preprocessor_config.json); assuming {DEFAULT_SAMPLE_RATE} Hz and "
                f"do_normalize={DEFAULT_NORMALIZE}",
                UserWarning,
                stacklevel=4,
            )
            self._do_normalize = DEFAULT_NORMALIZE
            return DEFAULT_SAMPLE_RATE
        self._do_normalize = bool(getattr(fe, "do_normalize", DEFAULT_NORMALIZE))
        return int(getattr(fe, "sampling_rate", None) or DEFAULT_SAMPLE_RATE)

    def _states_of(self, config: Any) -> int:
        return int(config.num_hidden_layers) + 1

    @property
    def hidden_size(self) -> int:
        """Width of one hidden state (``config.hidden_size``)."""
        return int(self._load_config().hidden_size)

    @property
    def normalize(self) -> bool:
        """Whether inputs are normalised to zero mean and unit variance."""
        self._load_config()
        if self.params.normalize is not None:
            return self.params.normalize
        assert self._do_normalize is not None
        return self._do_normalize

    @property
    def stride(self) -> int:
        """Samples per output frame: the product of the CNN strides (320 for 16 kHz models)."""
        return math.prod(int(s) for s in self._load_config().conv_stride)

    @property
    def receptive_field(self) -> int:
        """Fewest input samples that give one frame (400 for wav2vec2-base)."""
        config = self._load_config()
        r = 1
        for k, s in reversed(list(zip(config.conv_kernel, config.conv_stride, strict=True))):
            r = (r - 1) * int(s) + int(k)
        return r

    def num_frames(self, n_samples: int) -> int:
        """Frames :meth:`extract` gives for ``n_samples`` input samples (chunking included)."""
        return sum(self._cnn_frames(stop - start) for start, stop in self.chunk_bounds(n_samples))

    def _cnn_frames(self, length: int, layers: int | None = None) -> int:
        """Frames after the first ``layers`` CNN layers (all by default) for ``length`` samples."""
        config = self._load_config()
        pairs = list(zip(config.conv_kernel, config.conv_stride, strict=True))
        for k, s in pairs[: len(pairs) if layers is None else layers]:
            length = (length - int(k)) // int(s) + 1
        return length

    @property
    def _final_norm_on_last_state(self) -> bool:
        config = self._load_config()
        return bool(getattr(config, "do_stable_layer_norm", False)) or config.model_type == "wav2vec2-conformer"

    @property
    def batches_with_mask(self) -> bool:
        """True when waveforms of different lengths share a zero-padded, masked forward pass."""
        return self._load_config().model_type in MASK_SAFE_MODEL_TYPES

    # -- model ----------------------------------------------------------------------------
    def _load_weights(self, transformers: Any, source: str, kwargs: dict[str, Any]) -> Any:
        model = transformers.AutoModel.from_pretrained(source, **kwargs)
        if self.batches_with_mask:
            self._mask_group_norm(model)
        return model

    @staticmethod
    def _mask_group_norm(model: Any) -> None:
        """Replace the first CNN layer's per-channel GroupNorm by a MaskedGroupNorm (same weights)."""
        from torch import nn

        from serkit.nn.group_norm import MaskedGroupNorm

        layers = getattr(getattr(model, "feature_extractor", None), "conv_layers", None)
        first = layers[0] if layers is not None and len(layers) else None
        norm = getattr(first, "layer_norm", None)
        if isinstance(norm, nn.GroupNorm) and norm.num_groups == norm.num_channels:
            first.layer_norm = MaskedGroupNorm(norm)

    def _masked_norm(self, model: Any) -> Any:
        layers = getattr(getattr(model, "feature_extractor", None), "conv_layers", None)
        norm = getattr(layers[0], "layer_norm", None) if layers is not None and len(layers) else None
        return norm if hasattr(norm, "valid") else None

    # -- extraction -----------------------------------------------------------------------
    def prepare(self, wav: np.ndarray) -> np.ndarray:
        """Check one waveform and normalise it when :attr:`normalize` is on.

        Returns:
            float32 ``(n_samples,)``: ``(x - mean) / sqrt(var + 1e-7)`` or ``x`` itself.
        """
        import numpy as np

        y = super().prepare(wav)
        if self.normalize:
            y64 = y.astype(np.float64)
            y = ((y64 - y64.mean()) / np.sqrt(y64.var() + NORM_EPS)).astype(np.float32)
        return np.ascontiguousarray(y)

    @property
    def max_padding(self) -> float:
        """The padding bound of masked batches (``max_padding``, or its device default)."""
        if self.params.max_padding is not None:
            return self.params.max_padding
        return CUDA_MAX_PADDING if str(self._device).startswith("cuda") else CPU_MAX_PADDING

    def _groups(self, lengths: list[int], budget: int) -> list[list[int]]:
        """Indices of pieces sharing one forward pass, longest first (length buckets).

        With masks, lengths mix while the group's padded size ``count * longest`` stays
        within ``(1 + max_padding)`` times its real samples; without, only equal lengths
        share a pass. Either way ``count * longest <= budget`` samples (a single piece
        always fits).
        """
        order = sorted(range(len(lengths)), key=lambda j: -lengths[j])
        slack = 1.0 + self.max_padding if self.batches_with_mask else 1.0
        groups: list[list[int]] = []
        real = 0
        for j in order:
            g = groups[-1] if groups else None
            padded = (len(g) + 1) * lengths[g[0]] if g is not None else 0
            if g is not None and padded <= budget and padded <= slack * (real + lengths[j]):
                g.append(j)
                real += lengths[j]
            else:
                groups.append([j])
                real = lengths[j]
        return groups

    def _padded_length(self, longest: int) -> int:
        """The padded length of a masked batch: on CUDA rounded up to a whole second (few shapes for cuDNN)."""
        if not self.batches_with_mask or not str(self._device).startswith("cuda"):
            return longest
        return ceil_div(longest, self.sample_rate) * self.sample_rate

    def _forward(self, pieces: list[np.ndarray], budget: int) -> list[torch.Tensor]:
        """Run the model on prepared pieces: ``(frames_j, n_selected, H)`` float32 on the device per piece."""
        import numpy as np
        import torch

        model = self.load_model()
        lengths = [int(p.shape[0]) for p in pieces]
        out: list[torch.Tensor | None] = [None] * len(pieces)
        selected = self.layer_indices
        dtype = getattr(torch, self._torch_dtype or "float32")
        masked_norm = self._masked_norm(model)
        for group in self._groups(lengths, budget):
            width = self._padded_length(lengths[group[0]])
            x = np.zeros((len(group), width), dtype=np.float32)
            for row, j in enumerate(group):
                x[row, : lengths[j]] = pieces[j]
            inputs = torch.from_numpy(x).to(device=self._device, dtype=dtype, non_blocking=True)
            kwargs: dict[str, Any] = {"output_hidden_states": True, "return_dict": True}
            padded = any(lengths[j] < width for j in group)  # unpadded passes need no mask (faster attention)
            if padded:
                mask = (np.arange(width) < np.array([lengths[j] for j in group])[:, None]).astype(np.int64)
                kwargs["attention_mask"] = torch.from_numpy(mask).to(self._device, non_blocking=True)
            if padded and masked_norm is not None:
                valid = [self._cnn_frames(lengths[j], layers=1) for j in group]
                masked_norm.valid = torch.tensor(valid, dtype=torch.long).to(self._device, non_blocking=True)
            try:
                with torch.inference_mode(), self._autotune(), warnings.catch_warnings():
                    # WavLM passes a boolean key_padding_mask next to a float position bias
                    warnings.filterwarnings("ignore", message=".*key_padding_mask.*")
                    hidden = model(inputs, **kwargs).hidden_states  # (n_kept + 1,) x (B, T, H)
                    feats = torch.stack([hidden[i] for i in selected], dim=2).float()  # (B, T, n_sel, H)
            finally:
                if masked_norm is not None:
                    masked_norm.valid = None
            frames = [self._cnn_frames(lengths[j]) for j in group]
            for row, j in enumerate(group):
                out[j] = feats[row, : frames[row]]
        done = [o for o in out if o is not None]
        assert len(done) == len(pieces), "every piece belongs to exactly one group"
        return done
