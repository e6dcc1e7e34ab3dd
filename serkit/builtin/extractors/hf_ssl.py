"""``hf_ssl``: hidden states of a self-supervised speech model loaded through transformers.

Covers the wav2vec 2.0 family: wav2vec2 (and MMS/XLS-R, which share its model type),
HuBERT, WavLM, data2vec-audio, UniSpeech(-SAT) and wav2vec2-conformer. The model is a hub
id (``facebook/wav2vec2-base``) or a local folder written by ``save_pretrained``.
``transformers`` is an optional dependency (``pip install 'serkit[hf]'``); it is imported
only when the model, its config or its feature-extractor config is needed.

Hidden states: ``hidden_states[0]`` is the input of the first transformer layer (the CNN
features after the feature projection and the convolutional positional embedding, as
transformers returns it) and ``hidden_states[i]`` the output of transformer layer ``i``;
a model with ``num_hidden_layers = N`` has ``N + 1`` of them. The frame rate is the sample
rate over the product of the CNN strides (50 Hz for the usual 16 kHz checkpoints).

Batching and padding invariance (a padded batch must give, for every item, the numbers
the item gives alone):

- wav2vec2, HuBERT, WavLM and UniSpeech(-SAT) checkpoints whose CNN uses layer norm
  (``feat_extract_norm == "layer"``, e.g. wav2vec2-large-lv60, XLS-R, HuBERT-large) are
  run as zero-padded batches with an attention mask; transformers then zeroes the padded
  frames before the positional convolution and masks them in attention.
- group-norm checkpoints (``feat_extract_norm == "group"``, e.g. wav2vec2-base,
  HuBERT-base, WavLM-base) normalise every CNN channel over the whole (padded) input, so
  padding changes every frame whether or not a mask is passed; data2vec-audio and the
  conformer leak padded frames through their stacked positional / depthwise
  convolutions. These are never padded: only waveforms (or chunks) of exactly equal
  length share a forward pass, the others run one by one.

Either way, frames beyond an item's own length (from ``_get_feat_extract_output_lengths``)
are cropped.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, field_validator

from serkit.errors import AudioError, ModelError
from serkit.interfaces.base import ComponentParams
from serkit.interfaces.extractor import Extractor
from serkit.io import cached_file_sha256

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np

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
#: Model types that give padding-invariant results with zero padding + an attention mask,
#: provided their CNN uses layer norm (``feat_extract_norm == "layer"``).
MASK_SAFE_MODEL_TYPES: frozenset[str] = frozenset({"wav2vec2", "hubert", "wavlm", "unispeech", "unispeech-sat"})
#: Sample rate and input normalisation used when a checkpoint has no preprocessor_config.json.
DEFAULT_SAMPLE_RATE = 16000
DEFAULT_NORMALIZE = False
#: Variance floor of the zero-mean/unit-variance input normalisation (as transformers').
NORM_EPS = 1e-7
#: Files of a local checkpoint folder whose contents enter the fingerprint.
CHECKPOINT_FILE_SUFFIXES: tuple[str, ...] = (".safetensors", ".bin", ".index.json")
CHECKPOINT_FILE_NAMES: tuple[str, ...] = ("config.json", "preprocessor_config.json")

_INSTALL_HINT = "pip install 'serkit[hf]'"
_TRUE = {"1", "ON", "YES", "TRUE"}

def _import_transformers() -> Any:
    """Import transformers or explain how to install it."""
    try:
        import transformers
    except ImportError as err:
        raise ModelError(
            f"extractor 'hf_ssl' needs the optional dependency transformers ({err}); install it with: {_INSTALL_HINT}"
        ) from err
    return transformers


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _looks_like_path(model: str) -> bool:
    """True for strings that can only be file-system paths, never hub ids."""
    return (
        model.startswith(("/", ".", "~", "\\"))
        or model.count("/") > 1
        or "\\" in model
        or (len(model) > 1 and model[1] == ":")
    )


class HfSsl(Extractor):
    """Hidden states of a wav2vec 2.0 / HuBERT / WavLM / data2vec model: ``(L, dim)`` float32.

    ``L`` is the number of CNN frames (~50 per second); ``dim`` is the hidden size, or
    ``(num_hidden_layers + 1) * hidden_size`` with ``layer: weighted``, which stores all
    hidden states side by side so that a learnable weighted sum of the layers (as in
    s3prl / SUPERB) can be trained later: :meth:`split_layers` turns a stored
    ``(..., n_layers * hidden)`` array back into ``(..., n_layers, hidden)``.

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
    runtime_params: ClassVar[frozenset[str]] = frozenset({"device", "local_files_only"})

    class Params(ComponentParams):
        model: str = Field(
            ...,
            min_length=1,
            description="Hugging Face hub id (e.g. 'facebook/wav2vec2-base', "
            "'microsoft/wavlm-base-plus') or a local folder written by save_pretrained "
            "(config.json, weights, optionally preprocessor_config.json).",
        )
        layer: int | list[int] | Literal["weighted"] = Field(
            -1,
            description="Hidden state to output: 0 = input of the first transformer layer "
            "(transformers' hidden_states[0]), i = output of layer i, negative counts from "
            "the end (-1 = last). A list outputs the average of those hidden states. "
            "'weighted' stores all hidden states concatenated per frame, "
            "dim = (num_hidden_layers + 1) * hidden_size, for a learnable weighted sum.",
        )
        revision: str | None = Field(
            None,
            min_length=1,
            description="Hub branch, tag or commit of the checkpoint (pin a commit for "
            "reproducible caches); ignored for local folders.",
        )
        device: str = Field(
            "auto",
            min_length=1,
            description="Torch device of the model: 'auto' (cuda if available, else cpu), 'cpu', 'cuda', 'cuda:1', ...",
        )
        dtype: Literal["float32", "float16", "bfloat16"] = Field(
            "float32",
            description="Model precision; float16/bfloat16 only on GPU (on cpu, float32 is "
            "used with a warning). Features are stored as float32.",
        )
        max_chunk_seconds: float = Field(
            30.0,
            ge=0.1,
            description="Longer waveforms are cut into near-equal chunks of at most this "
            "length, run separately, and their frames concatenated (bounds memory and "
            "attention cost).",
        )
        normalize: bool | None = Field(
            None,
            description="Zero-mean/unit-variance normalisation of each waveform; None follows "
            "the checkpoint's feature extractor (do_normalize; False when it has none).",
        )
        local_files_only: bool | None = Field(
            None,
            description="Never download, use the local Hugging Face cache only; None means True when HF_HUB_OFFLINE=1.",
        )

        @field_validator("layer", mode="before")
        @classmethod
        def _no_bool(cls, v: Any) -> Any:
            if isinstance(v, bool) or (isinstance(v, list) and any(isinstance(x, bool) for x in v)):
                raise ValueError("layer must be an int, a list of ints or 'weighted', not a bool")
            return v

        @field_validator("layer")
        @classmethod
        def _check_layer_list(cls, v: Any) -> Any:
            if isinstance(v, list):
                if not v:
                    raise ValueError("layer: the list of layers to average is empty")
                if len(set(v)) != len(v):
                    raise ValueError(f"layer: the list {v} repeats a layer")
            return v

    params: Params

    def __init__(self, params: ComponentParams | None = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self._config: Any = None
        self._sampling_rate: int | None = None
        self._do_normalize: bool | None = None
        self._model: Any = None
        self._device: str | None = None
        self._torch_dtype: str | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_model"] = None  # reloaded on demand in the receiving process
        return state

    # -- where the checkpoint is ----------------------------------------------------------
    @property
    def local_folder(self) -> Path | None:
        """The checkpoint folder when ``model`` is a local path, else ``None`` (a hub id).

        Raises:
            ModelError: ``model`` is clearly a path (absolute, ``./``, ``~``, several
                ``/``) but no such folder exists, or it is a file.
        """
        model = self.params.model
        path = Path(model).expanduser()
        if path.is_dir():
            return path
        if path.exists():
            raise ModelError(
                f"extractor 'hf_ssl': model {model!r} is a file; expected a folder written by "
                "save_pretrained (config.json, model.safetensors) or a hub id"
            )
        if _looks_like_path(model):
            raise ModelError(
                f"extractor 'hf_ssl': model folder {path.resolve()} does not exist (field "
                "'model'); pass a folder written by save_pretrained (config.json, "
                "model.safetensors, preprocessor_config.json) or a hub id such as "
                "'facebook/wav2vec2-base'"
            )
        return None

    def _local_files_only(self) -> bool:
        if self.params.local_files_only is not None:
            return self.params.local_files_only
        return any(
            os.environ.get(var, "").strip().upper() in _TRUE for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
        )

    def _source(self) -> tuple[str, dict[str, Any]]:
        """``(name_or_path, from_pretrained keyword arguments)``."""
        folder = self.local_folder
        if folder is not None:
            if not (folder / "config.json").is_file():
                raise ModelError(
                    f"extractor 'hf_ssl': model folder {folder.resolve()} has no config.json "
                    "(field 'model'); expected a folder written by save_pretrained "
                    "(config.json, model.safetensors, optionally preprocessor_config.json)"
                )
            return str(folder), {"local_files_only": True}
        return self.params.model, {
            "revision": self.params.revision,
            "local_files_only": self._local_files_only(),
        }

    def _unavailable(self, what: str, err: BaseException) -> ModelError:
        """The error for a checkpoint (or part of it) that cannot be found or read."""
        folder = self.local_folder
        if folder is not None:
            return ModelError(
                f"extractor 'hf_ssl': cannot load the {what} from model folder "
                f"{folder.resolve()} (field 'model'); expected files written by "
                f"save_pretrained (config.json, model.safetensors): {err}"
            )
        from huggingface_hub import constants

        model = self.params.model
        rev = self.params.revision
        at = f" (revision {rev!r})" if rev else ""
        rev_opt = f" --revision {rev}" if rev else ""
        rev_arg = f", revision='{rev}'" if rev else ""
        if self._local_files_only():
            why = "local_files_only is set" if self.params.local_files_only else "downloads are off (HF_HUB_OFFLINE=1)"
        else:
            why = "the download failed"
        return ModelError(
            f"extractor 'hf_ssl': model {model!r}{at}: cannot load the {what}; it is not in "
            f"the Hugging Face cache {constants.HF_HUB_CACHE} and {why}. On a machine with "
            f"internet run `hf download {model}{rev_opt}` (older huggingface_hub: "
            f'`huggingface-cli download {model}{rev_opt}`) or python -c "from transformers '
            f"import AutoModel; AutoModel.from_pretrained('{model}'{rev_arg})\", then copy "
            f"that cache folder here (or point HF_HUB_CACHE at a copy), or set 'model' to a "
            f"local folder (there is no folder {Path(model).expanduser().resolve()}). "
            f"({type(err).__name__}: {err})"
        )

    # -- config (no weights) --------------------------------------------------------------
    def _load_config(self) -> Any:
        """The checkpoint's config and feature-extractor settings, loaded once."""
        if self._config is not None:
            return self._config
        transformers = _import_transformers()
        source, kwargs = self._source()
        try:
            config = transformers.AutoConfig.from_pretrained(source, **kwargs)
        except (OSError, ValueError) as err:
            raise self._unavailable("config", err) from err
        model_type = getattr(config, "model_type", None)
        if model_type not in SUPPORTED_MODEL_TYPES or not hasattr(config, "conv_stride"):
            raise ModelError(
                f"extractor 'hf_ssl': model {self.params.model!r} has model_type "
                f"{model_type!r}; supported: {', '.join(SUPPORTED_MODEL_TYPES)}"
            )
        sampling_rate, do_normalize = self._load_feature_extractor(transformers, source, kwargs)
        n_states = int(config.num_hidden_layers) + 1
        layer = self.params.layer
        for i in layer if isinstance(layer, list) else ([] if layer == "weighted" else [layer]):
            if not -n_states <= i < n_states:
                raise ModelError(
                    f"extractor 'hf_ssl': layer {i} is out of range for model "
                    f"{self.params.model!r}, which has {n_states} hidden states (field "
                    f"'layer': 0 .. {n_states - 1}, or -{n_states} .. -1 from the end)"
                )
        self._sampling_rate = sampling_rate
        self._do_normalize = do_normalize
        self._config = config
        max_samples, field = self.max_chunk_samples, self.receptive_field
        if max_samples < field:
            self._config = None
            raise ModelError(
                f"extractor 'hf_ssl': max_chunk_seconds={self.params.max_chunk_seconds} gives "
                f"{max_samples} samples per chunk at {sampling_rate} Hz, fewer than the receptive "
                f"field of model {self.params.model!r} ({field} samples); raise it"
            )
        return config

    def _load_feature_extractor(self, transformers: Any, source: str, kwargs: dict[str, Any]) -> tuple[int, bool]:
        """``(sampling_rate, do_normalize)`` from the checkpoint's feature extractor."""
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
                stacklevel=3,
            )
            return DEFAULT_SAMPLE_RATE, DEFAULT_NORMALIZE
        rate = int(getattr(fe, "sampling_rate", None) or DEFAULT_SAMPLE_RATE)
        return rate, bool(getattr(fe, "do_normalize", DEFAULT_NORMALIZE))

    @property
    def output(self) -> Literal["sequence"]:
        return "sequence"

    @property
    def sample_rate(self) -> int:
        """The checkpoint's sampling rate (preprocessor_config.json; default 16 kHz)."""
        self._load_config()
        assert self._sampling_rate is not None
        return self._sampling_rate

    @property
    def hidden_size(self) -> int:
        """Width of one hidden state (``config.hidden_size``)."""
        return int(self._load_config().hidden_size)

    @property
    def num_hidden_states(self) -> int:
        """Hidden states the model returns: ``num_hidden_layers + 1``."""
        return int(self._load_config().num_hidden_layers) + 1

    @property
    def n_layers(self) -> int:
        """Hidden states stored side by side per frame: all of them with ``weighted``, else 1."""
        return self.num_hidden_states if self.params.layer == "weighted" else 1

    @property
    def dim(self) -> int:
        """``n_layers * hidden_size``, from the config alone (no weights are loaded)."""
        return self.n_layers * self.hidden_size

    @property
    def layer_indices(self) -> list[int]:
        """The selected hidden states as non-negative indices (all of them with ``weighted``)."""
        n = self.num_hidden_states
        layer = self.params.layer
        if layer == "weighted":
            return list(range(n))
        return [i % n for i in (layer if isinstance(layer, list) else [layer])]

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

    @property
    def max_chunk_samples(self) -> int:
        """Chunk length limit: ``max_chunk_seconds`` rounded down to a multiple of :attr:`stride`."""
        limit = math.floor(self.params.max_chunk_seconds * self.sample_rate)
        return limit // self.stride * self.stride

    def split_layers(self, x: Any) -> Any:
        """Undo the side-by-side layout of ``layer: weighted`` features.

        Args:
            x: numpy array or torch tensor ``(..., n_layers * hidden_size)``, e.g. a stored
                ``(L, dim)`` sequence or a padded batch ``(B, L, dim)``.

        Returns:
            The same data as ``(..., n_layers, hidden_size)`` (a view), where
            ``[..., j, :]`` is hidden state ``j`` (0 = transformer input, ``n_layers - 1`` =
            last layer). A learnable weighted sum is then
            ``(softmax(w)[:, None] * split).sum(-2)``.

        Raises:
            ModelError: the last axis is not ``n_layers * hidden_size``.
        """
        n, h = self.n_layers, self.hidden_size
        shape = tuple(x.shape)
        if not shape or shape[-1] != n * h:
            raise ModelError(
                f"extractor 'hf_ssl': split_layers expects (..., {n * h}) = (..., n_layers "
                f"{n} * hidden {h}); got shape {shape}"
            )
        return x.reshape(*shape[:-1], n, h)

    def num_frames(self, n_samples: int) -> int:
        """Frames :meth:`extract` gives for ``n_samples`` input samples (chunking included)."""
        config = self._load_config()
        total = 0
        for start, stop in self.chunk_bounds(n_samples):
            length = stop - start
            for k, s in zip(config.conv_kernel, config.conv_stride, strict=True):
                length = (length - int(k)) // int(s) + 1
            total += length
        return total

    def chunk_bounds(self, n_samples: int) -> list[tuple[int, int]]:
        """``(start, stop)`` sample ranges the waveform is cut into.

        One range when ``n_samples <= max_chunk_samples``; else ``c = ceil(n / max)``
        chunks, all but the last of ``ceil(n / c)`` samples rounded up to a multiple of
        :attr:`stride` (never above the maximum), the last taking the rest. A rest shorter
        than the receptive field (only possible with hundreds of chunks) joins the chunk
        before it.
        """
        max_len = self.max_chunk_samples
        if n_samples <= max_len:
            return [(0, n_samples)]
        count = _ceil_div(n_samples, max_len)
        size = _ceil_div(_ceil_div(n_samples, count), self.stride) * self.stride
        bounds = [(i * size, min((i + 1) * size, n_samples)) for i in range(count)]
        bounds = [(a, b) for a, b in bounds if b > a]
        if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < self.receptive_field:
            bounds[-2:] = [(bounds[-2][0], n_samples)]
        return bounds

    # -- fingerprint ----------------------------------------------------------------------
    def checkpoint_files(self) -> list[Path]:
        """Files of a local checkpoint folder hashed into :meth:`fingerprint` (empty for hub ids).

        ``config.json``, ``preprocessor_config.json`` and the weights (``*.safetensors``,
        ``*.bin``, their ``*.index.json``) at the top of the folder.
        """
        folder = self.local_folder
        if folder is None:
            return []
        return sorted(
            p
            for p in folder.iterdir()
            if p.is_file() and (p.name in CHECKPOINT_FILE_NAMES or p.name.endswith(CHECKPOINT_FILE_SUFFIXES))
        )

    def fingerprint(self) -> str:
        """Hash of name, version, params and, for a local folder, the checkpoint's file contents.

        A folder whose config or weights change gets a new fingerprint, so stale features
        are never reused. File hashes are memoised per process on (path, size, mtimes,
        inode). A hub id is identified by ``model`` and ``revision`` only.
        """
        base = super().fingerprint()
        files = self.checkpoint_files()
        if not files:
            return base
        hashes = [[p.name, cached_file_sha256(p)] for p in files]
        payload = json.dumps({"params": base, "files": hashes}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    # -- model ----------------------------------------------------------------------------
    def load_model(self) -> Any:
        """The pretrained torch model (``AutoModel``) in eval mode on its device, loaded once."""
        if self._model is not None:
            return self._model
        import torch

        self._load_config()
        transformers = _import_transformers()
        device = self.params.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            torch_device = torch.device(device)
        except (RuntimeError, ValueError) as err:
            raise ModelError(
                f"extractor 'hf_ssl': device {self.params.device!r} is not a torch device (field 'device'; {err})"
            ) from err
        dtype = self.params.dtype
        if dtype != "float32" and torch_device.type == "cpu":
            warnings.warn(
                f"extractor 'hf_ssl': dtype {dtype} needs a GPU; running {self.params.model!r} in float32 on cpu",
                UserWarning,
                stacklevel=2,
            )
            dtype = "float32"
        source, kwargs = self._source()
        hf_logging = transformers.utils.logging
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            model = transformers.AutoModel.from_pretrained(source, **kwargs)
        except (OSError, ValueError) as err:
            raise self._unavailable("weights", err) from err
        except Exception as err:  # e.g. a truncated or corrupt weights file
            raise ModelError(
                f"extractor 'hf_ssl': cannot load the weights of model {self.params.model!r} "
                f"(field 'model'; {type(err).__name__}: {err})"
            ) from err
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        try:
            model = model.to(device=torch_device, dtype=getattr(torch, dtype))
        except (RuntimeError, AssertionError) as err:
            raise ModelError(
                f"extractor 'hf_ssl': cannot move model {self.params.model!r} to "
                f"{device} / {dtype} (fields 'device', 'dtype'; {err})"
            ) from err
        model.eval()
        self._model = model
        self._device = str(torch_device)
        self._torch_dtype = dtype
        return model

    @property
    def batches_with_mask(self) -> bool:
        """True when waveforms of different lengths share a zero-padded, masked forward pass."""
        config = self._load_config()
        return config.model_type in MASK_SAFE_MODEL_TYPES and getattr(config, "feat_extract_norm", "group") == "layer"

    # -- extraction -----------------------------------------------------------------------
    def extract(self, wav: np.ndarray) -> np.ndarray:
        """Features of one waveform: float32 ``(num_frames(n_samples), dim)``."""
        return self.extract_batch([wav])[0]

    def extract_batch(self, wavs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Features of several waveforms.

        Args:
            wavs: float32 ``(n_samples,)`` arrays at :attr:`sample_rate`.

        Returns:
            one float32 ``(L_i, dim)`` array per waveform, ``L_i = num_frames(n_i)``,
            equal (to float rounding) to what each waveform gives alone.

        Raises:
            AudioError: a waveform is not 1-D, has NaN/inf values or is shorter than the
                receptive field (:attr:`receptive_field` samples, 25 ms at 16 kHz).
        """
        import numpy as np

        if not wavs:
            return []
        self._load_config()
        pieces: list[tuple[int, np.ndarray]] = []
        for i, wav in enumerate(wavs):
            y = self.prepare(wav)
            pieces.extend((i, y[a:b]) for a, b in self.chunk_bounds(y.shape[0]))
        budget = len(wavs) * self.max_chunk_samples
        feats = self._forward([p for _, p in pieces], budget)
        parts: list[list[np.ndarray]] = [[] for _ in wavs]
        for (i, _), f in zip(pieces, feats, strict=True):
            parts[i].append(f)
        return [np.ascontiguousarray(np.concatenate(p, axis=0) if len(p) > 1 else p[0], np.float32) for p in parts]

    def prepare(self, wav: np.ndarray) -> np.ndarray:
        """Check one waveform and normalise it when :attr:`normalize` is on.

        Returns:
            float32 ``(n_samples,)``: ``(x - mean) / sqrt(var + 1e-7)`` or ``x`` itself.
        """
        import numpy as np

        y = np.asarray(wav, dtype=np.float32)
        if y.ndim != 1:
            raise AudioError(f"hf_ssl expects a 1-D waveform, got shape {y.shape}")
        if y.shape[0] < self.receptive_field:
            raise AudioError(
                f"hf_ssl: the waveform has {y.shape[0]} samples, fewer than the receptive "
                f"field of model {self.params.model!r} ({self.receptive_field} samples = "
                f"{1000 * self.receptive_field / self.sample_rate:g} ms at "
                f"{self.sample_rate} Hz)"
            )
        if not np.all(np.isfinite(y)):
            raise AudioError("hf_ssl: the waveform has NaN or infinite samples")
        if self.normalize:
            y64 = y.astype(np.float64)
            y = ((y64 - y64.mean()) / np.sqrt(y64.var() + NORM_EPS)).astype(np.float32)
        return np.ascontiguousarray(y)

    def _groups(self, lengths: list[int], budget: int) -> list[list[int]]:
        """Indices of pieces sharing one forward pass, longest first.

        With masks, any lengths mix; without, only equal lengths. A group's padded size
        ``count * longest`` stays within ``budget`` samples (a single piece always fits).
        """
        order = sorted(range(len(lengths)), key=lambda j: -lengths[j])
        mixed = self.batches_with_mask
        groups: list[list[int]] = []
        for j in order:
            g = groups[-1] if groups else None
            if g is not None and (mixed or lengths[g[0]] == lengths[j]) and (len(g) + 1) * lengths[g[0]] <= budget:
                g.append(j)
            else:
                groups.append([j])
        return groups

    def _forward(self, pieces: list[np.ndarray], budget: int) -> list[np.ndarray]:
        """Run the model on prepared pieces; ``(frames_j, dim)`` float32 per piece."""
        import numpy as np
        import torch

        model = self.load_model()
        lengths = [int(p.shape[0]) for p in pieces]
        out: list[np.ndarray | None] = [None] * len(pieces)
        selected = self.layer_indices
        weighted = self.params.layer == "weighted"
        dtype = getattr(torch, self._torch_dtype or "float32")
        for group in self._groups(lengths, budget):
            longest = lengths[group[0]]
            x = np.zeros((len(group), longest), dtype=np.float32)
            mask = np.zeros((len(group), longest), dtype=np.int64)
            for row, j in enumerate(group):
                x[row, : lengths[j]] = pieces[j]
                mask[row, : lengths[j]] = 1
            inputs = torch.from_numpy(x).to(device=self._device, dtype=dtype)
            kwargs: dict[str, Any] = {"output_hidden_states": True, "return_dict": True}
            if self.batches_with_mask:
                kwargs["attention_mask"] = torch.from_numpy(mask).to(self._device)
            with torch.inference_mode(), warnings.catch_warnings():
                # WavLM passes a boolean key_padding_mask next to a float position bias
                warnings.filterwarnings("ignore", message=".*key_padding_mask.*")
                hidden = model(inputs, **kwargs).hidden_states  # (n_layers,) x (B, T, H)
                if weighted:
                    feats = torch.cat([h.float() for h in hidden], dim=-1)  # (B, T, n*H)
                elif len(selected) == 1:
                    feats = hidden[selected[0]].float()  # (B, T, H)
                else:
                    feats = torch.stack([hidden[i].float() for i in selected]).mean(dim=0)
                frames = self._output_lengths(model, [lengths[j] for j in group])
                feats_np = feats.cpu().numpy()
            for row, j in enumerate(group):
                out[j] = feats_np[row, : frames[row]]
        done = [o for o in out if o is not None]
        assert len(done) == len(pieces), "every piece belongs to exactly one group"
        return done

    @staticmethod
    def _output_lengths(model: Any, lengths: list[int]) -> list[int]:
        """Frames of each input length, by the model's own CNN length formula."""
        import inspect

        import torch

        fn = model._get_feat_extract_output_lengths
        t = torch.tensor(lengths, dtype=torch.long)
        if "add_adapter" in inspect.signature(fn).parameters:
            # hidden_states never pass through the optional adapter
            t = fn(t, add_adapter=False)
        else:
            t = fn(t)
        return [int(v) for v in t.tolist()]
