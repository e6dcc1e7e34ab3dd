"""The ``allosaurus`` extractor: frame-level phone posteriors or BLSTM states of the Allosaurus recogniser.

Allosaurus (Li et al., ICASSP 2020) is a universal phone recogniser: MFCCs ("mfcc_hires",
stacked over 3 frames and subsampled by 3, so one frame per 30 ms) -> a bidirectional LSTM
-> a linear layer over a universal IPA phone inventory (blank first, for CTC). This
extractor loads a downloaded model folder through allosaurus' own readers (``read_pm``,
``read_am``, ``read_lm`` and its ``Recognizer`` class, the parts ``read_recognizer``
assembles) and returns per frame either

- ``output: posteriors``: the softmax of the phone layer, ``(T, phones)``, over the whole
  inventory (``lang: ipa``) or renormalised over one language's phones (``lang: eng``);
- ``output: hidden``: the last BLSTM layer's states ``(T, 2 * hidden_size)``.

The ``allosaurus`` wheel ships no model and downloads one on first use, which fails
offline; this extractor never downloads. Without a model folder it stops with a
:class:`~serkit.errors.ModelError` that names the folder and gives the download command.

Importing this module imports neither allosaurus nor torch.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
from argparse import Namespace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field
from serkit.errors import AudioError, ModelError
from serkit.interfaces.base import ComponentParams
from serkit.interfaces.extractor import Extractor
from serkit.io import cached_file_sha256

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np

__all__ = ["MODEL_FILES", "Allosaurus", "default_model_dir", "download_command"]

#: Files of an allosaurus model folder (as its releases unpack), all read by the extractor.
MODEL_FILES: tuple[str, ...] = (
    "am_config.json",
    "pm_config.json",
    "lm_config.json",
    "model.pt",
    "phone.txt",
    "inventory/index.json",
)
#: Files whose contents enter the fingerprint.
FINGERPRINT_FILES: tuple[str, ...] = ("am_config.json", "pm_config.json", "model.pt", "phone.txt")
#: Waveforms are scaled from [-1, 1] floats to the 16-bit integer range allosaurus reads from WAV files.
INT16_SCALE = 32768.0
#: Most padded feature frames (batch size x longest) in one BLSTM pass.
MAX_BATCH_FRAMES = 20000
#: Release URL pattern used by ``allosaurus.bin.download_model``.
RELEASE_URL = "https://github.com/xinjli/allosaurus/releases/download/v1.0/{name}.tar.gz"

_INSTALL_HINT = "pip install allosaurus (or pip install serkit-plugin-allosaurus, which depends on it)"

def _allosaurus_package_dir() -> Path | None:
    """Folder of the installed ``allosaurus`` package, found without importing it."""
    spec = importlib.util.find_spec("allosaurus")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def default_model_dir(model: str) -> Path | None:
    """Where ``python -m allosaurus.bin.download_model -m <model>`` unpacks a model (None: no allosaurus)."""
    package = _allosaurus_package_dir()
    return None if package is None else package / "pretrained" / model


def download_command(model: str) -> str:
    """The shell command that downloads an allosaurus model into the package's ``pretrained/`` folder."""
    return f"python -m allosaurus.bin.download_model -m {model}"


def _allosaurus_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("allosaurus")
    except metadata.PackageNotFoundError:
        return "not installed"


class Allosaurus(Extractor):
    """Allosaurus universal phone recogniser: phone posteriors ``(T, phones)`` or BLSTM states ``(T, 2H)``.

    One frame per 30 ms (the model's MFCC shift times its 3-frame stacking). The sample
    rate is the model's (``pm_config.json``; audio is resampled to it). Dimensions and
    rate come from the model folder's configs, so an absent model is reported as soon as
    they are asked for.
    """

    name: ClassVar[str] = "allosaurus"
    version: ClassVar[str] = "1"
    runtime_params: ClassVar[frozenset[str]] = frozenset({"device"})

    class Params(ComponentParams):
        model_dir: str | None = Field(
            None,
            description="Folder of one allosaurus model (am_config.json, pm_config.json, lm_config.json, "
            "model.pt, phone.txt, inventory/); default: <allosaurus package>/pretrained/<model>, where "
            "'python -m allosaurus.bin.download_model -m <model>' unpacks it.",
        )
        model: str = Field(
            "uni2005",
            min_length=1,
            description="Model name: the folder under allosaurus' pretrained/ when model_dir is not set, and "
            "the name in the download command.",
        )
        output: Literal["posteriors", "hidden"] = Field(
            "posteriors",
            description="'posteriors': per-frame softmax over the phone inventory; 'hidden': the last BLSTM "
            "layer's states (2 * hidden_size).",
        )
        lang: str = Field(
            "ipa",
            min_length=1,
            description="'ipa': posteriors over the whole universal inventory; an ISO 639-3 code (e.g. 'eng') "
            "or Glottocode: renormalised over that language's phones (blank first). Ignored for 'hidden'.",
        )
        device: str = Field("cpu", description="Torch device of the acoustic model, e.g. 'cpu' or 'cuda:0'.")

    params: Params

    def __init__(self, params: ComponentParams | None = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self._recognizer: Any = None
        self._pm: Any = None
        self._columns: list[int] | None = None
        self._units: list[str] | None = None
        self._configs: dict[str, dict[str, Any]] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_recognizer"] = None  # reloaded on demand in the receiving process
        state["_pm"] = None
        return state

    # -- the model folder -------------------------------------------------------------------
    @property
    def model_path(self) -> Path:
        """The model folder: ``model_dir``, or allosaurus' ``pretrained/<model>``.

        Raises:
            ModelError: ``model_dir`` is unset and allosaurus is not installed.
        """
        if self.params.model_dir is not None:
            return Path(self.params.model_dir).expanduser()
        folder = default_model_dir(self.params.model)
        if folder is None:
            raise ModelError(f"extractor 'allosaurus': the allosaurus package is not installed; {_INSTALL_HINT}")
        return folder

    def check_model_dir(self) -> Path:
        """The model folder, after checking that it holds every file of :data:`MODEL_FILES`.

        Raises:
            ModelError: the folder or some of its files are missing; the message names the
                folder, gives the download command and, when ``model_dir`` points at a folder
                of models, the model folders inside it.
        """
        folder = self.model_path
        missing = [f for f in MODEL_FILES if not (folder / f).is_file()]
        if not missing:
            return folder
        name = self.params.model if self.params.model_dir is None else folder.name
        field = "model" if self.params.model_dir is None else "model_dir"
        if not folder.is_dir():
            what = f"model folder {folder} does not exist (field '{field}')"
        else:
            what = f"model folder {folder} (field '{field}') lacks {', '.join(missing)}"
            inside = sorted(d.name for d in folder.iterdir() if (d / "am_config.json").is_file())
            if inside:
                what += f"; it holds the model folder(s) {', '.join(inside)}: set model_dir to {folder / inside[0]}"
        default = default_model_dir(name)
        where = f" (it unpacks into {default})" if default is not None else ""
        raise ModelError(
            f"extractor 'allosaurus': {what}. The allosaurus wheel ships no model and serkit never downloads "
            f"one. On a machine with internet access run: {download_command(name)}{where}, "
            f"or fetch {RELEASE_URL.format(name=name)} and unpack it so that model_dir holds "
            f"{', '.join(MODEL_FILES)}"
        )

    def _config(self, name: str) -> dict[str, Any]:
        if name in self._configs:
            return self._configs[name]
        path = self.check_model_dir() / name
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ModelError(f"extractor 'allosaurus': cannot read {path} ({err})") from err
        if not isinstance(config, dict):
            raise ModelError(f"extractor 'allosaurus': {path} must hold a JSON object")
        self._configs[name] = config
        return config

    def _config_value(self, name: str, key: str) -> Any:
        config = self._config(name)
        if key not in config:
            raise ModelError(f"extractor 'allosaurus': {self.model_path / name} has no {key!r}")
        return config[key]

    # -- declared shape ---------------------------------------------------------------------
    @property
    def output(self) -> Literal["sequence"]:
        return "sequence"

    @property
    def sample_rate(self) -> int:
        """The model's sample rate (``pm_config.json``: ``sample_rate``)."""
        return int(self._config_value("pm_config.json", "sample_rate"))

    @property
    def dim(self) -> int:
        """``2 * hidden_size`` (hidden), ``phone_size`` (posteriors, ipa) or the language's unit count."""
        if self.params.output == "hidden":
            return 2 * int(self._config_value("am_config.json", "hidden_size"))
        if self.params.lang == "ipa":
            return int(self._config_value("am_config.json", "phone_size"))
        return len(self._language_columns())

    @property
    def units(self) -> list[str]:
        """Phone of each posterior column (``<blk>`` first); ``output: posteriors`` only."""
        if self.params.output != "posteriors":
            raise ModelError("extractor 'allosaurus': units are the columns of output: posteriors")
        self._language_columns()
        assert self._units is not None
        return list(self._units)

    def frame_geometry(self) -> tuple[int, int, int]:
        """``(window, shift, stack)``: MFCC window and shift in samples, and frames stacked per output frame."""
        pm = self._config("pm_config.json")
        sr = int(pm["sample_rate"])
        window = _round_half_up(float(pm["window_size"]) * sr)
        shift = _round_half_up(float(pm["window_shift"]) * sr)
        return window, shift, int(pm.get("feature_window", 1))

    @property
    def min_samples(self) -> int:
        """Shortest waveform: one MFCC window, or two with per-utterance CMVN (one frame has no variance)."""
        window, shift, _ = self.frame_geometry()
        return window + shift if self._config("pm_config.json").get("cmvn") == "speaker" else window

    def num_frames(self, n_samples: int) -> int:
        """Output frames of a waveform of ``n_samples``: ``ceil(mfcc_frames / stack)``."""
        window, shift, stack = self.frame_geometry()
        mfcc_frames = 1 if n_samples <= window else 1 + (n_samples - window) // shift
        return math.ceil(mfcc_frames / stack) if stack > 1 else mfcc_frames

    def fingerprint(self) -> str:
        """Hash of name, version, params, the model files' contents and the allosaurus version."""
        base = super().fingerprint()
        folder = self.model_path
        files = {
            f: (cached_file_sha256(folder / f) if (folder / f).is_file() else "missing") for f in FINGERPRINT_FILES
        }
        payload = json.dumps({"params": base, "files": files, "allosaurus": _allosaurus_version()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    # -- model ------------------------------------------------------------------------------
    def load_recognizer(self) -> Any:
        """The ``allosaurus.app.Recognizer`` of the model folder, built once, never downloading.

        Built as ``read_recognizer`` does (``read_pm``, ``read_am``, ``read_lm``) minus its
        download step; its ``recognize(wav_file)`` still works for transcription.
        """
        if self._recognizer is not None:
            return self._recognizer
        folder = self.check_model_dir()
        try:
            import torch
            from allosaurus.am.factory import read_am
            from allosaurus.app import Recognizer
            from allosaurus.lm.factory import read_lm
        except ImportError as err:
            raise ModelError(f"extractor 'allosaurus': cannot import allosaurus ({err}); {_INSTALL_HINT}") from err
        try:
            device = torch.device(self.params.device)
        except (RuntimeError, ValueError) as err:
            raise ModelError(
                f"extractor 'allosaurus': device {self.params.device!r} is not a torch device (field 'device'; {err})"
            ) from err
        config = self._inference_config(folder)
        if device.type == "cuda":  # Recognizer.recognize moves its tensors to this GPU
            config.device_id = 0 if device.index is None else int(device.index)
        pm = self.load_pm()
        try:
            am = read_am(folder, config)
            lm = read_lm(folder, config)
        except Exception as err:
            raise ModelError(
                f"extractor 'allosaurus': cannot load the model in {folder} ({type(err).__name__}: {err})"
            ) from err
        am.eval()
        try:
            am.to(device)
        except (RuntimeError, AssertionError) as err:
            raise ModelError(
                f"extractor 'allosaurus': cannot move the model to {device} (field 'device'; {err})"
            ) from err
        self._recognizer = Recognizer(pm, am, lm, config)
        return self._recognizer

    @staticmethod
    def _inference_config(folder: Path) -> Namespace:
        """The inference config ``read_recognizer`` makes for a model name (CPU, whole inventory)."""
        return Namespace(model=folder.name, device_id=-1, lang="ipa", approximate=False, prior=None)

    def load_pm(self) -> Any:
        """The model's feature extractor (allosaurus' ``pm``: MFCC, CMVN, stacking), built once.

        Needs no weights: the extraction driver's worker processes run :meth:`prepare` with it.
        """
        if self._pm is None:
            folder = self.check_model_dir()
            try:
                from allosaurus.pm.factory import read_pm
            except ImportError as err:
                raise ModelError(f"extractor 'allosaurus': cannot import allosaurus ({err}); {_INSTALL_HINT}") from err
            try:
                self._pm = read_pm(folder, self._inference_config(folder))
            except Exception as err:
                raise ModelError(
                    f"extractor 'allosaurus': cannot read {folder / 'pm_config.json'} ({type(err).__name__}: {err})"
                ) from err
        return self._pm

    def _language_columns(self) -> list[int]:
        """Indices of the posterior columns in the universal inventory (all of them for ``ipa``)."""
        if self._columns is not None:
            return self._columns
        from allosaurus.lm.inventory import Inventory

        folder = self.check_model_dir()
        inventory = self._recognizer.lm.inventory if self._recognizer is not None else Inventory(folder)
        lang = self.params.lang
        if lang == "ipa":
            columns = list(range(len(inventory.unit.id_to_unit)))
            units = [inventory.unit.id_to_unit[i] for i in columns]
        else:
            if not inventory.is_available(lang.lower()):
                known = sorted(set(inventory.lang_ids))
                shown = ", ".join(known[:10]) + (f", ... ({len(known)} in all)" if len(known) > 10 else "")
                raise ModelError(
                    f"extractor 'allosaurus': model {folder} has no inventory for lang {lang!r} (field 'lang'; "
                    f"ISO 639-3 codes or Glottocodes, or 'ipa' for all phones); languages: {shown}"
                )
            mask = inventory.get_mask(lang.lower(), approximation=False)
            pairs = sorted(mask.unit_map.items(), key=lambda kv: kv[1])  # (universal index, language index)
            columns = [int(u) for u, _ in pairs]
            units = [mask.target_unit.id_to_unit[t] for _, t in pairs]
        self._columns, self._units = columns, units
        return columns

    # -- features ---------------------------------------------------------------------------
    def mfcc(self, wav: np.ndarray) -> np.ndarray:
        """The model's input features of one waveform: float32 ``(num_frames(n), feat_size)``.

        Computed by the model's own ``pm`` (MFCC, per-utterance CMVN, 3-frame stacking) on
        the waveform scaled to the 16-bit range, as allosaurus reads WAV files.

        Raises:
            AudioError: not 1-D, non-finite, shorter than :attr:`min_samples`, or
                constant (its CMVN would divide by zero).
        """
        import numpy as np
        from allosaurus.audio import Audio

        y = np.asarray(wav, dtype=np.float32)
        if y.ndim != 1:
            raise AudioError(f"allosaurus expects a 1-D waveform, got shape {y.shape}")
        least = self.min_samples
        if y.shape[0] < least:
            raise AudioError(
                f"allosaurus: the waveform has {y.shape[0]} samples; the model needs at least {least} "
                f"({1000 * least / self.sample_rate:g} ms at {self.sample_rate} Hz)"
            )
        if not np.all(np.isfinite(y)):
            raise AudioError("allosaurus: the waveform has NaN or infinite samples")
        scaled = np.ascontiguousarray(y * np.float32(INT16_SCALE))
        with np.errstate(divide="ignore", invalid="ignore"):
            feat = self.load_pm().compute(Audio(scaled, self.sample_rate))
        feat = np.asarray(feat, dtype=np.float32)
        if not np.all(np.isfinite(feat)):
            raise AudioError("allosaurus: the MFCCs of this waveform are not finite (is it constant or silent?)")
        return feat

    def prepare(self, wav: np.ndarray) -> np.ndarray:
        """Everything before the network: :meth:`mfcc` (no weights; worker processes run it)."""
        return self.mfcc(wav)

    def extract(self, wav: np.ndarray) -> np.ndarray:
        """Features of one waveform (see :meth:`extract_batch`)."""
        return self.extract_batch([wav])[0]

    def extract_batch(self, wavs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Posteriors or BLSTM states of several waveforms: :meth:`prepare` each, then :meth:`extract_prepared`.

        Args:
            wavs: float32 ``(n_samples,)`` arrays at :attr:`sample_rate`.

        Returns:
            one float32 ``(num_frames(n_i), dim)`` array per waveform; posterior rows sum to 1.
        """
        return self.extract_prepared([self.prepare(w) for w in wavs])

    def extract_prepared(self, feats: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The network on :meth:`prepare` outputs, run on padded, packed batches.

        Args:
            feats: float32 ``(T_i, feat_size)`` model inputs.

        Returns:
            one float32 ``(T_i, dim)`` array per input. Packing makes each item's numbers
            independent of the batch (to float rounding).
        """
        import numpy as np
        import torch

        if not feats:
            return []
        recognizer = self.load_recognizer()
        am = recognizer.am
        device = next(am.parameters()).device
        posteriors = self.params.output == "posteriors"
        # the softmax runs over the language's columns only (all of them for lang: ipa)
        columns = self._language_columns() if posteriors and self.params.lang != "ipa" else None
        order = sorted(range(len(feats)), key=lambda i: -feats[i].shape[0])
        groups: list[list[int]] = []
        for i in order:
            if groups and (len(groups[-1]) + 1) * feats[groups[-1][0]].shape[0] <= MAX_BATCH_FRAMES:
                groups[-1].append(i)
            else:
                groups.append([i])
        out: list[np.ndarray | None] = [None] * len(feats)
        for group in groups:  # lengths are sorted longest first, as pack_padded_sequence needs
            longest = feats[group[0]].shape[0]
            x = np.zeros((len(group), longest, feats[group[0]].shape[1]), dtype=np.float32)
            for row, i in enumerate(group):
                x[row, : feats[i].shape[0]] = feats[i]
            lengths = torch.tensor([feats[i].shape[0] for i in group], dtype=torch.long)
            with torch.inference_mode():
                hidden, _ = am(torch.from_numpy(x).to(device), lengths, return_lstm=True)  # (T, B, 2H)
                hidden = hidden.to(device).transpose(0, 1)  # (B, T, 2H)
                if not posteriors:
                    result = hidden
                else:
                    logits = am.phone_layer(hidden)  # (B, T, phone_size)
                    if columns is not None:
                        logits = logits[..., columns]
                    result = torch.softmax(logits, dim=-1)
                result_np = result.float().cpu().numpy()
            for row, i in enumerate(group):
                out[i] = np.ascontiguousarray(result_np[row, : feats[i].shape[0]])
        done = [o for o in out if o is not None]
        assert len(done) == len(feats), "every waveform belongs to exactly one group"
        return done


def _round_half_up(x: float) -> int:
    """Rounding as allosaurus' ``round_half_up`` (0.5 goes up)."""
    return math.floor(x + 0.5)
