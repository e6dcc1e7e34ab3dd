"""What the extractors reading a transformers speech encoder's hidden states share (``hf_ssl``, ``whisper``).

:class:`HfHiddenStates` holds everything that does not depend on the model family: where
the checkpoint is (hub id or local folder) and the errors when it cannot be found, the
fingerprint over the checkpoint's files, device and precision, the ``layer`` selection,
cutting long waveforms into chunks on the model's frame grid, keeping only the layers the
selection needs, and the ``pool`` storage modes. A subclass says how its config, its
preprocessing and its model are loaded and how one batch of waveform pieces runs
(:meth:`HfHiddenStates._forward`).

Storage modes (``pool``):

- ``none``: frame-level features ``(L, dim)``; with ``layer: weighted`` every hidden state
  side by side per frame (``dim = n_layers * hidden``).
- ``mean`` / ``mean_std``: per-layer utterance statistics over the frames, one vector per
  utterance: ``(n_layers * hidden,)`` or ``(n_layers * 2 * hidden,)``, laid out as
  ``(n_layers, hidden)`` / ``(n_layers, [mean, std])`` row by row (:meth:`split_layers`
  undoes it). The extractor's ``output`` is then ``"vector"`` and :attr:`n_layers` tells
  layer-aware encoders (``weighted_layers``) how to split it. Pooling happens on the
  model's device before anything is copied to the host, over all frames of the whole
  utterance (every chunk).

This module defines no component itself (it is not one of the built-in modules).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import warnings
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, field_validator

from serkit.errors import AudioError, ModelError
from serkit.interfaces.base import ComponentParams
from serkit.interfaces.extractor import Extractor
from serkit.io import cached_file_sha256

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = ["POOL_MODES", "HfHiddenStates", "HfParams", "ceil_div", "import_transformers", "looks_like_path"]

#: Files of a local checkpoint folder whose contents enter the fingerprint.
CHECKPOINT_FILE_SUFFIXES: tuple[str, ...] = (".safetensors", ".bin", ".index.json")
CHECKPOINT_FILE_NAMES: tuple[str, ...] = ("config.json", "preprocessor_config.json")
#: The ``pool`` values.
POOL_MODES: tuple[str, ...] = ("none", "mean", "mean_std")

_INSTALL_HINT = "pip install 'serkit[hf]'"
_TRUE = {"1", "ON", "YES", "TRUE"}


def import_transformers(extractor: str) -> Any:
    """Import transformers or explain, naming ``extractor``, how to install it."""
    try:
        import transformers
    except ImportError as err:
        raise ModelError(
            f"extractor '{extractor}' needs the optional dependency transformers ({err}); "
            f"install it with: {_INSTALL_HINT}"
        ) from err
    return transformers


def ceil_div(a: int, b: int) -> int:
    """``ceil(a / b)`` for ints."""
    return -(-a // b)


def looks_like_path(model: str) -> bool:
    """True for strings that can only be file-system paths, never hub ids."""
    return (
        model.startswith(("/", ".", "~", "\\"))
        or model.count("/") > 1
        or "\\" in model
        or (len(model) > 1 and model[1] == ":")
    )


@contextlib.contextmanager
def quiet_transformers(transformers: Any) -> Iterator[None]:
    """No progress bars and no load reports (skipped decoder weights...) from transformers while loading."""
    hf_logging = transformers.utils.logging
    bars = hf_logging.is_progress_bar_enabled()
    level = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


class HfParams(ComponentParams):
    """The params every hidden-state extractor has (subclasses add their own)."""

    model: str = Field(
        ...,
        min_length=1,
        description="Hugging Face hub id or a local folder written by save_pretrained "
        "(config.json, weights, optionally preprocessor_config.json).",
    )
    layer: int | list[int] | Literal["weighted"] = Field(
        -1,
        description="Hidden state to output: 0 = input of the first transformer layer "
        "(transformers' hidden_states[0]), i = output of layer i, negative counts from "
        "the end (-1 = last). A list outputs the average of those hidden states. "
        "'weighted' stores all hidden states side by side, dim = n_layers * hidden_size "
        "(n_layers = transformer layers + 1), for a learnable weighted sum (weighted_layers encoder).",
    )
    pool: Literal["none", "mean", "mean_std"] = Field(
        "none",
        description="'none' stores frame-level features (L, dim). 'mean' stores one vector per "
        "utterance: the mean over the frames of every stored layer, (n_layers, hidden) flattened; "
        "'mean_std' the mean and standard deviation, (n_layers, 2 * hidden) flattened. Pooled "
        "storage is ~L times smaller (a probe with weighted_layers needs nothing else).",
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
        "used with a warning). Features are stored as float32 (or the store's dtype).",
    )
    max_chunk_seconds: float = Field(
        30.0,
        ge=0.1,
        description="Longer waveforms are cut into near-equal chunks of at most this "
        "length, run separately, and their frames concatenated (bounds memory and "
        "attention cost).",
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


class HfHiddenStates(Extractor):
    """Base of extractors that output hidden states of a transformers speech encoder.

    Output: ``(L, dim)`` float32 per waveform with ``pool: none`` (``L`` frames on the
    model's grid, :attr:`stride` samples each), else ``(dim,)`` (see the module
    docstring). ``dim = n_layers * hidden_size`` (``* 2`` with ``mean_std``).

    Subclasses implement :meth:`_check_config`, :meth:`_load_preprocessing`,
    :meth:`_states_of`, :attr:`hidden_size`, :attr:`stride`, :attr:`receptive_field`,
    :meth:`_load_weights`, :meth:`_forward` and :meth:`num_frames`, and may override
    :meth:`prepare` and :attr:`_final_norm_on_last_state`.
    """

    runtime_params: ClassVar[frozenset[str]] = frozenset({"device", "local_files_only"})

    params: Any  # a HfParams subclass

    def __init__(self, params: ComponentParams | None = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self._config: Any = None
        self._sampling_rate: int | None = None
        self._model: Any = None
        self._device: str | None = None
        self._torch_dtype: str | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_model"] = None  # reloaded on demand in the receiving process
        return state

    def _err(self, message: str) -> ModelError:
        return ModelError(f"extractor '{self.name}': {message}")

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
            raise self._err(
                f"model {model!r} is a file; expected a folder written by save_pretrained "
                "(config.json, model.safetensors) or a hub id"
            )
        if looks_like_path(model):
            raise self._err(
                f"model folder {path.resolve()} does not exist (field 'model'); pass a folder "
                "written by save_pretrained (config.json, model.safetensors, "
                f"preprocessor_config.json) or a hub id such as {self._example_hub_id()!r}"
            )
        return None

    def _example_hub_id(self) -> str:
        return "facebook/wav2vec2-base"

    def _local_files_only(self) -> bool:
        if self.params.local_files_only is not None:
            return bool(self.params.local_files_only)
        return any(
            os.environ.get(var, "").strip().upper() in _TRUE for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
        )

    def _source(self) -> tuple[str, dict[str, Any]]:
        """``(name_or_path, from_pretrained keyword arguments)``."""
        folder = self.local_folder
        if folder is not None:
            if not (folder / "config.json").is_file():
                raise self._err(
                    f"model folder {folder.resolve()} has no config.json (field 'model'); expected a "
                    "folder written by save_pretrained (config.json, model.safetensors, optionally "
                    "preprocessor_config.json)"
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
            return self._err(
                f"cannot load the {what} from model folder {folder.resolve()} (field 'model'); "
                f"expected files written by save_pretrained (config.json, model.safetensors): {err}"
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
        return self._err(
            f"model {model!r}{at}: cannot load the {what}; it is not in "
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
        """The checkpoint's config and preprocessing settings, loaded once."""
        if self._config is not None:
            return self._config
        transformers = import_transformers(self.name)
        source, kwargs = self._source()
        try:
            config = transformers.AutoConfig.from_pretrained(source, **kwargs)
        except (OSError, ValueError) as err:
            raise self._unavailable("config", err) from err
        self._check_config(config)
        sampling_rate = self._load_preprocessing(transformers, source, kwargs, config)
        n_states = self._states_of(config)
        layer = self.params.layer
        for i in layer if isinstance(layer, list) else ([] if layer == "weighted" else [layer]):
            if not -n_states <= i < n_states:
                raise self._err(
                    f"layer {i} is out of range for model {self.params.model!r}, which has "
                    f"{n_states} hidden states (field 'layer': 0 .. {n_states - 1}, or "
                    f"-{n_states} .. -1 from the end)"
                )
        self._sampling_rate = sampling_rate
        self._config = config
        max_samples, field = self.max_chunk_samples, self.receptive_field
        if max_samples < field:
            self._config = None
            raise self._err(
                f"max_chunk_seconds={self.params.max_chunk_seconds} gives {max_samples} samples "
                f"per chunk at {sampling_rate} Hz, fewer than the receptive field of model "
                f"{self.params.model!r} ({field} samples); raise it"
            )
        return config

    @abstractmethod
    def _check_config(self, config: Any) -> None:
        """Raise :class:`ModelError` when ``config`` is not a model family this extractor runs."""

    @abstractmethod
    def _load_preprocessing(self, transformers: Any, source: str, kwargs: dict[str, Any], config: Any) -> int:
        """Load what the checkpoint says about its input (feature extractor); return its sample rate."""

    @abstractmethod
    def _states_of(self, config: Any) -> int:
        """Hidden states the model returns (transformer layers + 1)."""

    # -- shapes ---------------------------------------------------------------------------
    @property
    def output(self) -> Literal["sequence", "vector"]:
        """``"sequence"`` with ``pool: none``, else ``"vector"`` (one per utterance)."""
        return "sequence" if self.params.pool == "none" else "vector"

    @property
    def sample_rate(self) -> int:
        """The checkpoint's sampling rate (its feature extractor's; default 16 kHz)."""
        self._load_config()
        assert self._sampling_rate is not None
        return self._sampling_rate

    @property
    @abstractmethod
    def hidden_size(self) -> int:
        """Width of one hidden state."""

    @property
    def num_hidden_states(self) -> int:
        """Hidden states the model returns: transformer layers + 1."""
        return self._states_of(self._load_config())

    @property
    def n_layers(self) -> int:
        """Hidden states stored side by side (per frame, or per utterance when pooled).

        All of them with ``weighted``, else 1.
        """
        return self.num_hidden_states if self.params.layer == "weighted" else 1

    @property
    def layer_width(self) -> int:
        """Width of one stored layer: ``hidden_size``, or ``2 * hidden_size`` with ``pool: mean_std``."""
        return self.hidden_size * (2 if self.params.pool == "mean_std" else 1)

    @property
    def dim(self) -> int:
        """``n_layers * layer_width``, from the config alone (no weights are loaded)."""
        return self.n_layers * self.layer_width

    @property
    def layer_indices(self) -> list[int]:
        """The selected hidden states as non-negative indices (all of them with ``weighted``)."""
        n = self.num_hidden_states
        layer = self.params.layer
        if layer == "weighted":
            return list(range(n))
        return [i % n for i in (layer if isinstance(layer, list) else [layer])]

    @property
    @abstractmethod
    def stride(self) -> int:
        """Samples per output frame."""

    @property
    @abstractmethod
    def receptive_field(self) -> int:
        """Fewest input samples that give one frame."""

    @property
    def max_chunk_samples(self) -> int:
        """Chunk length limit: ``max_chunk_seconds`` rounded down to a multiple of :attr:`stride`."""
        limit = math.floor(self.params.max_chunk_seconds * self.sample_rate)
        return limit // self.stride * self.stride

    @abstractmethod
    def num_frames(self, n_samples: int) -> int:
        """Frames (``pool: none``) :meth:`extract` gives for ``n_samples`` input samples (chunking included)."""

    def split_layers(self, x: Any) -> Any:
        """Undo the side-by-side layout of ``layer: weighted`` (or pooled) features.

        Args:
            x: numpy array or torch tensor ``(..., n_layers * layer_width)``, e.g. a stored
                ``(L, dim)`` sequence, a pooled ``(dim,)`` vector or a padded batch ``(B, L, dim)``.

        Returns:
            The same data as ``(..., n_layers, layer_width)`` (a view), where ``[..., j, :]``
            is hidden state ``j`` (0 = transformer input, ``n_layers - 1`` = last layer);
            with ``pool: mean_std`` each row is ``[mean (hidden), std (hidden)]``.

        Raises:
            ModelError: the last axis is not ``n_layers * layer_width``.
        """
        n, h = self.n_layers, self.layer_width
        shape = tuple(x.shape)
        if not shape or shape[-1] != n * h:
            raise self._err(
                f"split_layers expects (..., {n * h}) = (..., n_layers {n} * width {h}); got shape {shape}"
            )
        return x.reshape(*shape[:-1], n, h)

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
        count = ceil_div(n_samples, max_len)
        size = ceil_div(ceil_div(n_samples, count), self.stride) * self.stride
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
        inode). A hub id is identified by ``model`` and ``revision`` only. ``pool: none``
        (frame-level storage) is left out of the params hash, so stores written before
        ``pool`` existed keep their key; any other ``pool`` gives its own store.
        """
        params = self.params.model_dump(mode="json", exclude={"type", *self.runtime_params})
        if params.get("pool") == "none":
            del params["pool"]
        base = hashlib.sha256(
            json.dumps({"name": self.name, "version": self.version, "params": params}, sort_keys=True).encode()
        ).hexdigest()[:16]
        files = self.checkpoint_files()
        if not files:
            return base
        hashes = [[p.name, cached_file_sha256(p)] for p in files]
        payload = json.dumps({"params": base, "files": hashes}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    # -- model ----------------------------------------------------------------------------
    def load_model(self) -> Any:
        """The pretrained encoder in eval mode on its device, loaded once.

        Transformer layers above the highest selected hidden state are dropped after
        loading (:meth:`_keep_layers`): they would only cost time.
        """
        if self._model is not None:
            return self._model
        import torch

        self._load_config()
        transformers = import_transformers(self.name)
        device = self.params.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            torch_device = torch.device(device)
        except (RuntimeError, ValueError) as err:
            raise self._err(
                f"device {self.params.device!r} is not a torch device (field 'device'; {err})"
            ) from err
        dtype = self.params.dtype
        if dtype != "float32" and torch_device.type == "cpu":
            warnings.warn(
                f"extractor '{self.name}': dtype {dtype} needs a GPU; running {self.params.model!r} in float32 on cpu",
                UserWarning,
                stacklevel=2,
            )
            dtype = "float32"
        source, kwargs = self._source()
        try:
            with quiet_transformers(transformers):
                model = self._load_weights(transformers, source, kwargs)
        except (OSError, ValueError) as err:
            raise self._unavailable("weights", err) from err
        except Exception as err:  # e.g. a truncated or corrupt weights file
            raise self._err(
                f"cannot load the weights of model {self.params.model!r} (field 'model'; {type(err).__name__}: {err})"
            ) from err
        self._keep_layers(model)
        try:
            model = model.to(device=torch_device, dtype=getattr(torch, dtype))
        except (RuntimeError, AssertionError) as err:
            raise self._err(
                f"cannot move model {self.params.model!r} to {device} / {dtype} (fields 'device', 'dtype'; {err})"
            ) from err
        model.eval()
        self._model = model
        self._device = str(torch_device)
        self._torch_dtype = dtype
        return model

    @abstractmethod
    def _load_weights(self, transformers: Any, source: str, kwargs: dict[str, Any]) -> Any:
        """The encoder module with its pretrained weights (on cpu, float32)."""

    def _layer_holder(self, model: Any) -> Any:
        """The module whose ``layers`` attribute is the model's ``nn.ModuleList`` of transformer layers."""
        return getattr(model, "encoder", None)

    @property
    def _final_norm_on_last_state(self) -> bool:
        """True when the model's last hidden state has a final layer norm that inner states lack."""
        return False

    def _keep_layers(self, model: Any) -> int:
        """Drop the transformer layers no selected hidden state needs; return how many are kept.

        ``hidden_states[i]`` is the input of layer ``i + 1``; it needs layers ``1 .. i``,
        plus layer ``i + 1`` when the model normalises its last state (then a model cut
        after layer ``i`` would return a normalised ``hidden_states[i]``); at least one
        layer stays (transformers records hidden states from its layers). The hidden
        states kept are exactly those of the whole model (tested).
        """
        from torch import nn

        holder = self._layer_holder(model)
        layers = getattr(holder, "layers", None)
        if not isinstance(layers, nn.ModuleList):
            return -1
        n = len(layers)
        top = max(self.layer_indices)
        keep = n if top >= n else max(1, min(n, top + (1 if self._final_norm_on_last_state else 0)))
        if keep < n:
            holder.layers = nn.ModuleList(list(layers)[:keep])
        return keep

    # -- extraction -----------------------------------------------------------------------
    def extract(self, wav: np.ndarray) -> np.ndarray:
        """Features of one waveform: float32 ``(num_frames(n_samples), dim)``, or ``(dim,)`` when pooled."""
        return self.extract_batch([wav])[0]

    def extract_batch(self, wavs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Features of several waveforms.

        Args:
            wavs: float32 ``(n_samples,)`` arrays at :attr:`sample_rate`.

        Returns:
            one float32 array per waveform: ``(L_i, dim)`` with ``L_i = num_frames(n_i)``,
            or ``(dim,)`` when pooled; equal (to float rounding) to what each waveform
            gives alone. Results stay on the model's device until one copy to the host
            at the end (no host sync per file).

        Raises:
            AudioError: a waveform is not 1-D, has NaN/inf values or is shorter than the
                receptive field.
        """
        import torch

        if not wavs:
            return []
        self._load_config()
        pieces: list[np.ndarray] = []
        owner: list[int] = []
        for i, wav in enumerate(wavs):
            y = self.prepare(wav)
            for a, b in self.chunk_bounds(y.shape[0]):
                pieces.append(y[a:b])
                owner.append(i)
        states = self._forward(pieces, len(wavs) * self.max_chunk_samples)
        parts: list[list[torch.Tensor]] = [[] for _ in wavs]
        for i, s in zip(owner, states, strict=True):
            parts[i].append(s)
        with torch.inference_mode():
            outs = [self._combine(torch.cat(p, dim=0) if len(p) > 1 else p[0]) for p in parts]
        return _to_host(outs)

    def _combine(self, states: torch.Tensor) -> torch.Tensor:
        """One waveform's selected states ``(L, n_selected, H)`` float32 -> ``(L, dim)`` or pooled ``(dim,)``."""
        import torch

        layer = self.params.layer
        x = states if layer == "weighted" or states.shape[1] == 1 else states.mean(dim=1, keepdim=True)
        pool = self.params.pool
        if pool == "none":
            return x.reshape(x.shape[0], -1)
        mean = x.mean(dim=0)  # (n, H)
        if pool == "mean":
            return mean.reshape(-1)
        std = (x - mean).square().mean(dim=0).sqrt()  # population std, as mean_pool's
        return torch.cat([mean, std], dim=-1).reshape(-1)  # (n, 2H) row by row

    def prepare(self, wav: np.ndarray) -> np.ndarray:
        """Check one waveform; returns it as contiguous float32 ``(n_samples,)``.

        Raises:
            AudioError: not 1-D, shorter than :attr:`receptive_field`, or NaN/inf values.
        """
        import numpy as np

        y = np.asarray(wav, dtype=np.float32)
        if y.ndim != 1:
            raise AudioError(f"{self.name} expects a 1-D waveform, got shape {y.shape}")
        if y.shape[0] < self.receptive_field:
            raise AudioError(
                f"{self.name}: the waveform has {y.shape[0]} samples, fewer than the receptive "
                f"field of model {self.params.model!r} ({self.receptive_field} samples = "
                f"{1000 * self.receptive_field / self.sample_rate:g} ms at "
                f"{self.sample_rate} Hz)"
            )
        if not np.all(np.isfinite(y)):
            raise AudioError(f"{self.name}: the waveform has NaN or infinite samples")
        return np.ascontiguousarray(y)

    @abstractmethod
    def _forward(self, pieces: list[np.ndarray], budget: int) -> list[torch.Tensor]:
        """Run the model on prepared pieces.

        Args:
            pieces: float32 ``(n_j,)`` waveform pieces (whole waveforms or chunks).
            budget: most padded samples one forward pass may hold.

        Returns:
            per piece, the selected hidden states ``(frames_j, len(layer_indices), H)`` as
            float32 tensors on the model's device (views are fine), in piece order.
        """

    @contextlib.contextmanager
    def _autotune(self) -> Iterator[None]:
        """cuDNN autotuning on CUDA while the model runs (padded lengths come from a small set)."""
        import torch

        if not str(self._device).startswith("cuda"):
            yield
            return
        before = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = True
        try:
            yield
        finally:
            torch.backends.cudnn.benchmark = before


def _to_host(outs: list[torch.Tensor]) -> list[np.ndarray]:
    """Device tensors -> float32 numpy arrays with one device-to-host copy."""
    import numpy as np
    import torch

    shapes = [tuple(o.shape) for o in outs]
    flat = torch.cat([o.reshape(-1) for o in outs]).float().cpu().numpy()
    result: list[np.ndarray] = []
    start = 0
    for shape in shapes:
        size = math.prod(shape)
        result.append(np.ascontiguousarray(flat[start : start + size].reshape(shape), np.float32))
        start += size
    return result
