"""The ``byol`` extractor: BYOL-A / BYOL-S audio embeddings from a user-supplied checkpoint.

No BYOL weights are on any package registry; users download a checkpoint (e.g. BYOL-A's
``AudioNTT2020-BYOLA-64x96d2048.pth`` from https://github.com/nttcslab/byol-a, or a BYOL-S
AudioNTT2020 checkpoint) and point ``checkpoint`` at it. ``checkpoint: null`` builds the
encoder with random weights (seeded): the features then carry no learnt information and
are only good for tests, which is why it warns.

Pipeline for one waveform at 16 kHz: log-mel (1024-sample Hann window, 10 ms hop, 64 HTK
mel bands 60-7800 Hz) -> normalisation ``(x - mean) / std`` (the utterance's own scalar
statistics, or a training set's ones as in BYOL-A) -> AudioNTT2020 encoder -> frame
embeddings every 80 ms ``(T // 8, d)`` -> max + mean over time ``(d,)``.

Importing this module imports neither torch nor librosa.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, model_validator
from serkit.errors import AudioError, ModelError
from serkit.interfaces.base import ComponentParams
from serkit.interfaces.extractor import Extractor
from serkit.io import cached_file_sha256

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np

__all__ = ["Byol", "load_state_dict"]

#: BYOL-A's front end (its config.yaml): 16 kHz, 1024-point STFT and window, 10 ms hop, 60-7800 Hz.
SAMPLE_RATE = 16000
N_FFT = 1024
WIN_LENGTH = 1024
HOP_LENGTH = 160
F_MIN = 60.0
F_MAX = 7800.0
#: The encoder halves the time axis three times: this many log-mel frames give one embedding frame.
DOWNSAMPLE = 8
#: Shortest waveform: 8 log-mel frames (1 + n // 160 >= 8), i.e. 70 ms.
MIN_SAMPLES = (DOWNSAMPLE - 1) * HOP_LENGTH
#: Floor of the utterance standard deviation in ``norm: utterance`` (a constant signal).
STD_FLOOR = 1e-5
#: Most padded log-mel frames (batch size x longest) in one encoder pass.
MAX_BATCH_FRAMES = 48000
#: Checkpoint keys shown in error messages.
SHOW_KEYS = 5

def _listing(keys: Sequence[str]) -> str:
    shown = ", ".join(keys[:SHOW_KEYS])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > SHOW_KEYS else "")


def load_state_dict(path: Path, key_prefix: str = "") -> dict[str, Any]:
    """Tensors of a ``.pth``/``.pt``/``.ckpt`` (``torch.load(weights_only=True)``) or ``.safetensors`` file.

    A dict that holds the state dict under ``state_dict`` or ``model`` is unwrapped. Keys
    starting with ``module.`` (DataParallel) lose that prefix; with ``key_prefix``, only
    the keys starting with it are kept, without it.

    Raises:
        ModelError: the file is missing, unreadable or holds no tensors.
    """
    import torch

    where = f"extractor 'byol': checkpoint {path}"
    if not path.is_file():
        raise ModelError(
            f"{where} does not exist (field 'checkpoint'); download a BYOL-A/BYOL-S AudioNTT2020 "
            "checkpoint (e.g. AudioNTT2020-BYOLA-64x96d2048.pth from https://github.com/nttcslab/byol-a) "
            "or set checkpoint: null for random weights (tests only)"
        )
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj: Any = load_file(str(path), device="cpu")
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ModelError(f"{where} cannot be read ({type(err).__name__}: {err})") from err
    for wrapper in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
    if not isinstance(obj, dict) or not obj or not all(torch.is_tensor(v) for v in obj.values()):
        raise ModelError(f"{where} does not hold a state dict of tensors (got {type(obj).__name__})")
    state = {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in obj.items()}
    if key_prefix:
        kept = {k[len(key_prefix) :]: v for k, v in state.items() if k.startswith(key_prefix)}
        if not kept:
            raise ModelError(
                f"{where}: no key starts with key_prefix {key_prefix!r} (field 'key_prefix'); "
                f"keys: {_listing(sorted(state))}"
            )
        state = kept
    return state


class Byol(Extractor):
    """BYOL-A / BYOL-S AudioNTT2020 embeddings: ``(d,)`` (max + mean over time) or frames ``(T // 8, d)``.

    ``d`` is 512, 1024 or 2048 (as the published checkpoints); one embedding frame covers
    80 ms. With ``finetune: true`` the store caches the normalised log-mels ``(T, n_mels)``
    instead and the encoder trains with the emotion model at ``lr * lr_scale``.
    """

    name: ClassVar[str] = "byol"
    version: ClassVar[str] = "1"
    runtime_params: ClassVar[frozenset[str]] = frozenset({"device"})

    class Params(ComponentParams):
        checkpoint: str | None = Field(
            description="State dict of an AudioNTT2020 encoder (.pth/.pt via torch.load(weights_only=True), "
            "or .safetensors); null: random weights (seeded), meaningless features, for tests only."
        )
        d: Literal[512, 1024, 2048] = Field(
            2048, description="Embedding size of the encoder (must match the checkpoint)."
        )
        n_mels: int = Field(64, ge=8, le=256, multiple_of=8, description="Mel bands of the front end (BYOL-A: 64).")
        output: Literal["vector", "sequence"] = Field(
            "vector",
            description="'vector': max + mean over time (d,), BYOL-A's embedding; 'sequence': the frame "
            "embeddings (T // 8, d), one per 80 ms.",
        )
        norm: Literal["utterance", "dataset"] = Field(
            "utterance",
            description="Log-mel normalisation (x - mean) / std with 'utterance': this utterance's own scalar "
            "mean and std; 'dataset': norm_mean and norm_std of a training set (BYOL-A's setting).",
        )
        norm_mean: float | None = Field(
            None, description="Scalar mean of the log-mels of a training set (norm: dataset)."
        )
        norm_std: float | None = Field(
            None, gt=0, description="Scalar standard deviation of the log-mels of a training set (norm: dataset)."
        )
        key_prefix: str = Field(
            "",
            description="Use only the checkpoint keys that start with this prefix, without it (e.g. 'encoder.' "
            "or 'online_net.backbone.' in a training checkpoint); 'module.' is always removed.",
        )
        seed: int = Field(0, description="Seed of the random weights when checkpoint is null.")
        device: str = Field("cpu", description="Torch device of the encoder, e.g. 'cpu' or 'cuda:0'.")
        finetune: bool = Field(
            False,
            description="Fine-tune the encoder with the emotion model: the store caches the normalised "
            "log-mels (T, n_mels) and the encoder becomes the stream's network (output must be 'vector').",
        )
        lr_scale: float = Field(0.01, gt=0, description="Learning-rate multiplier of the encoder when fine-tuned.")

        @model_validator(mode="after")
        def _check(self) -> Byol.Params:
            if self.norm == "dataset" and (self.norm_mean is None or self.norm_std is None):
                raise ValueError("norm: dataset needs norm_mean and norm_std (see Byol.log_mel_stats)")
            if self.norm == "utterance" and (self.norm_mean is not None or self.norm_std is not None):
                raise ValueError("norm_mean and norm_std are only used with norm: dataset")
            if self.finetune and self.output != "vector":
                raise ValueError("finetune: true needs output: vector (the fine-tuned encoder pools over time)")
            return self

    params: Params

    def __init__(self, params: ComponentParams | None = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self._encoder: Any = None
        self._frontend: Any = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_encoder"] = None  # reloaded on demand in the receiving process
        state["_frontend"] = None
        return state

    # -- declared shape ---------------------------------------------------------------------
    @property
    def output(self) -> Literal["vector", "sequence"]:
        return "sequence" if self.params.finetune else self.params.output

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def dim(self) -> int:
        return self.params.n_mels if self.params.finetune else self.params.d

    @property
    def trainable(self) -> bool:
        """True when the encoder is fine-tuned: features are its inputs, not its outputs."""
        return bool(self.params.finetune)

    @property
    def lr_scale(self) -> float:
        return float(self.params.lr_scale)

    @staticmethod
    def num_frames(n_samples: int) -> int:
        """Embedding frames of a waveform of ``n_samples`` (``(1 + n // 160) // 8``)."""
        return (1 + n_samples // HOP_LENGTH) // DOWNSAMPLE

    def fingerprint(self) -> str:
        """Hash of name, version, params and the checkpoint file's contents."""
        base = super().fingerprint()
        if self.params.checkpoint is None:
            return base
        path = Path(self.params.checkpoint).expanduser()
        content = cached_file_sha256(path) if path.is_file() else "missing"
        payload = json.dumps({"params": base, "checkpoint": content}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    # -- model ------------------------------------------------------------------------------
    def _device(self) -> Any:
        import torch

        try:
            return torch.device(self.params.device)
        except (RuntimeError, ValueError) as err:
            raise ModelError(
                f"extractor 'byol': device {self.params.device!r} is not a torch device (field 'device'; {err})"
            ) from err

    def load_encoder(self) -> Any:
        """The :class:`~serkit_plugin_byol.network.AudioNTT2020` encoder in eval mode, loaded once.

        Raises:
            ModelError: missing or unreadable checkpoint, or keys/shapes that do not fit
                the encoder (the message lists the first few and says what to change).
        """
        if self._encoder is not None:
            return self._encoder
        import torch

        from serkit_plugin_byol.network import AudioNTT2020

        p = self.params
        device = self._device()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(p.seed)
            encoder = AudioNTT2020(n_mels=p.n_mels, d=p.d)
        if p.checkpoint is None:
            warnings.warn(
                f"extractor 'byol': checkpoint is null, so the encoder has random weights (seed {p.seed}); "
                "its features are meaningless for emotion recognition (use this only for tests)",
                UserWarning,
                stacklevel=2,
            )
        else:
            path = Path(p.checkpoint).expanduser()
            self._load_weights(encoder, load_state_dict(path, p.key_prefix), path)
        encoder.eval()
        try:
            encoder = encoder.to(device)
        except (RuntimeError, AssertionError) as err:
            raise ModelError(
                f"extractor 'byol': cannot move the encoder to {p.device} (field 'device'; {err})"
            ) from err
        self._encoder = encoder
        return encoder

    def _load_weights(self, encoder: Any, state: dict[str, Any], path: Path) -> None:
        expected = encoder.state_dict()
        missing = [k for k in expected if k not in state]
        unexpected = [k for k in state if k not in expected]
        shape = f"n_mels {self.params.n_mels}, d {self.params.d}"
        where = f"extractor 'byol': checkpoint {path} does not fit AudioNTT2020 ({shape})"
        if missing or unexpected:
            parts = []
            if missing:
                parts.append(f"missing keys: {_listing(missing)}")
            if unexpected:
                parts.append(f"unexpected keys: {_listing(unexpected)}")
            raise ModelError(
                f"{where}: {'; '.join(parts)} (field 'key_prefix' selects a sub-network of a training checkpoint)"
            )
        wrong = [
            f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})"
            for k, v in expected.items()
            if tuple(state[k].shape) != tuple(v.shape)
        ]
        if wrong:
            hint = ""
            fc = state.get("fc.3.weight")
            first = state.get("fc.0.weight")
            if fc is not None and first is not None and fc.dim() == 2 and first.dim() == 2:
                d = int(fc.shape[0])
                mels = int(first.shape[1]) // 64 * DOWNSAMPLE
                hint = f"; the checkpoint is for d {d}, n_mels {mels}: set fields 'd' and 'n_mels'"
            raise ModelError(f"{where}: shapes differ: {_listing(wrong)}{hint}")
        encoder.load_state_dict(state, strict=True)

    def load_frontend(self) -> Any:
        """The :class:`~serkit_plugin_byol.network.LogMelFrontEnd` (on the CPU), built once."""
        if self._frontend is None:
            import librosa
            import torch

            from serkit_plugin_byol.network import LogMelFrontEnd

            fb = librosa.filters.mel(
                sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=self.params.n_mels, fmin=F_MIN, fmax=F_MAX, htk=True, norm=None
            )
            self._frontend = LogMelFrontEnd(torch.from_numpy(fb), N_FFT, WIN_LENGTH, HOP_LENGTH)
        return self._frontend

    def build_trainable(self) -> Any:
        """The loaded encoder as a :class:`~serkit_plugin_byol.network.ByolEncoderNet`.

        Its input is what :meth:`extract_batch` caches with ``finetune: true``: normalised
        log-mels ``(B, T, n_mels)`` with ``lengths (B,)``; output ``(B, d)``.
        """
        from serkit_plugin_byol.network import ByolEncoderNet

        return ByolEncoderNet(self.load_encoder())

    # -- features ---------------------------------------------------------------------------
    def log_mel(self, wav: np.ndarray) -> np.ndarray:
        """Log-mel spectrogram of one waveform, before normalisation: float32 ``(1 + n // 160, n_mels)``.

        Raises:
            AudioError: not 1-D, non-finite, or shorter than 70 ms (1120 samples).
        """
        import numpy as np
        import torch

        y = np.asarray(wav, dtype=np.float32)
        if y.ndim != 1:
            raise AudioError(f"byol expects a 1-D waveform, got shape {y.shape}")
        if y.shape[0] < MIN_SAMPLES:
            raise AudioError(
                f"byol: the waveform has {y.shape[0]} samples; the encoder needs at least {MIN_SAMPLES} "
                f"({1000 * MIN_SAMPLES / SAMPLE_RATE:g} ms at {SAMPLE_RATE} Hz)"
            )
        if not np.all(np.isfinite(y)):
            raise AudioError("byol: the waveform has NaN or infinite samples")
        with torch.inference_mode():
            lms = self.load_frontend()(torch.from_numpy(np.ascontiguousarray(y)))
        return lms.numpy().astype(np.float32, copy=False)

    def normalise(self, lms: np.ndarray) -> np.ndarray:
        """``(lms - mean) / std`` with the utterance's own or the dataset's scalar statistics."""
        import numpy as np

        p = self.params
        if p.norm == "dataset":
            assert p.norm_mean is not None and p.norm_std is not None
            mean, std = float(p.norm_mean), float(p.norm_std)
        else:
            x = lms.astype(np.float64)
            mean, std = float(x.mean()), max(float(x.std()), STD_FLOOR)
        return ((lms - np.float32(mean)) / np.float32(std)).astype(np.float32)

    def log_mel_stats(self, wavs: Sequence[np.ndarray]) -> tuple[float, float]:
        """Scalar mean and std of the log-mels of ``wavs`` (16 kHz), for ``norm: dataset``.

        BYOL-A normalises with such statistics of its (pre)training set.
        """
        import numpy as np

        if not wavs:
            raise AudioError("byol: log_mel_stats needs at least one waveform")
        total, total_sq, count = 0.0, 0.0, 0
        for w in wavs:
            x = self.log_mel(w).astype(np.float64)
            total += float(x.sum())
            total_sq += float(np.square(x).sum())
            count += x.size
        mean = total / count
        return mean, float(np.sqrt(max(total_sq / count - mean * mean, 0.0)))

    def prepare(self, wav: np.ndarray) -> np.ndarray:
        """Everything before the encoder: the normalised log-mel ``(1 + n // 160, n_mels)``.

        Needs no weights (the extraction driver runs it in worker processes).
        """
        return self.normalise(self.log_mel(wav))

    def extract(self, wav: np.ndarray) -> np.ndarray:
        """Features of one waveform (see :meth:`extract_batch`)."""
        return self.extract_batch([wav])[0]

    def extract_batch(self, wavs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """BYOL features of several 16 kHz waveforms: :meth:`prepare` each, then :meth:`extract_prepared`.

        Args:
            wavs: float32 ``(n_samples,)`` arrays, each at least 1120 samples.

        Returns:
            per waveform float32 ``(d,)`` (``output: vector``), ``(num_frames(n), d)``
            (``output: sequence``) or, with ``finetune``, the normalised log-mels
            ``(1 + n // 160, n_mels)``.
        """
        return self.extract_prepared([self.prepare(w) for w in wavs])

    def extract_prepared(self, mels: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The encoder on :meth:`prepare` outputs, batched.

        Args:
            mels: float32 normalised log-mels ``(T_i, n_mels)``.

        Returns:
            as :meth:`extract_batch` (the log-mels themselves with ``finetune``). Items are
            padded and masked, so each equals (to float rounding) what it gives alone.
        """
        import numpy as np
        import torch

        from serkit_plugin_byol.network import pool_max_mean

        if not mels:
            return []
        if self.params.finetune:
            return [np.ascontiguousarray(m, dtype=np.float32) for m in mels]
        encoder = self.load_encoder()
        device = next(encoder.parameters()).device
        out: list[np.ndarray | None] = [None] * len(mels)
        order = sorted(range(len(mels)), key=lambda i: -mels[i].shape[0])
        groups: list[list[int]] = []
        for i in order:
            if groups and (len(groups[-1]) + 1) * mels[groups[-1][0]].shape[0] <= MAX_BATCH_FRAMES:
                groups[-1].append(i)
            else:
                groups.append([i])
        for group in groups:
            longest = mels[group[0]].shape[0]
            x = np.zeros((len(group), longest, self.params.n_mels), dtype=np.float32)
            for row, i in enumerate(group):
                x[row, : mels[i].shape[0]] = mels[i]
            lengths = torch.tensor([mels[i].shape[0] for i in group], dtype=torch.long, device=device)
            with torch.inference_mode():
                frames, valid = encoder.frames(torch.from_numpy(x).to(device), lengths)
                if self.params.output == "vector":
                    result = pool_max_mean(frames, valid).float().cpu().numpy()
                else:
                    result = frames.float().cpu().numpy()
            for row, i in enumerate(group):
                if self.params.output == "vector":
                    out[i] = np.ascontiguousarray(result[row])
                else:
                    out[i] = np.ascontiguousarray(result[row, : int(valid[row])])
        done = [o for o in out if o is not None]
        assert len(done) == len(mels), "every waveform belongs to exactly one group"
        return done
