"""The ``opensmile`` extractor: openSMILE's standard acoustic feature sets through the ``opensmile`` package.

openSMILE computes frame-level low-level descriptors (LLDs: pitch, loudness, jitter,
shimmer, formants, MFCCs, spectral shape, ...) and statistics of them over the whole
utterance (functionals). The ``opensmile`` Python package runs the SMILExtract library
in-process on a numpy signal, fully offline (the configurations ship inside its wheel).

- ``level: functionals`` gives one vector per utterance, e.g. 88 values for eGeMAPSv02 or
  6373 for ComParE_2016 (``output: vector``);
- ``level: lld`` gives the LLD frames ``(T, D)`` (``output: sequence``), ``T`` about one
  frame per 10 ms; ``lld_deltas`` the first-order deltas of the LLDs, for the sets that
  define them.

Importing this module does not import ``opensmile`` (nor numpy/pandas): it happens in
:meth:`OpenSmile.load_smile`.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import warnings
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator
from serkit.errors import AudioError, ModelError
from serkit.interfaces.base import ComponentParams
from serkit.interfaces.extractor import Extractor

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np

__all__ = ["FEATURE_SETS", "LEVELS", "OpenSmile"]

Level = Literal["functionals", "lld", "lld_deltas"]

#: Supported feature sets -> {level: dimension}. Dimensions are those of opensmile 2.5/2.6
#: (checked against ``Smile.feature_names`` in the tests). The sets opensmile deprecates
#: (GeMAPS, GeMAPSv01a, eGeMAPS, eGeMAPSv01a, eGeMAPSv01b) are left out on purpose.
FEATURE_SETS: dict[str, dict[str, int]] = {
    "eGeMAPSv02": {"functionals": 88, "lld": 25},
    "GeMAPSv01b": {"functionals": 62, "lld": 18},
    "ComParE_2016": {"functionals": 6373, "lld": 65, "lld_deltas": 65},
    "emobase": {"functionals": 988, "lld": 26, "lld_deltas": 26},
    "IS09": {"functionals": 384, "lld": 16, "lld_deltas": 16},
    "IS10": {"functionals": 1582, "lld": 38, "lld_deltas": 38},
    "IS11": {"functionals": 4368, "lld": 59, "lld_deltas": 59},
    "IS12": {"functionals": 6125, "lld": 64, "lld_deltas": 64},
    "IS13": {"functionals": 6373, "lld": 65, "lld_deltas": 65},
}

#: serkit level -> name of the ``opensmile.FeatureLevel`` member.
LEVELS: dict[str, str] = {
    "functionals": "Functionals",
    "lld": "LowLevelDescriptors",
    "lld_deltas": "LowLevelDescriptors_Deltas",
}

_INSTALL_HINT = "pip install opensmile (or pip install serkit-plugin-opensmile, which depends on it)"


def _import_opensmile() -> Any:
    """Import the ``opensmile`` package or explain how to install it."""
    try:
        import opensmile
    except ImportError as err:
        raise ModelError(
            f"extractor 'opensmile': cannot import the opensmile package ({err}); {_INSTALL_HINT}"
        ) from err
    return opensmile


def _opensmile_version() -> str:
    """Installed version of the ``opensmile`` distribution (read from its metadata, no import)."""
    from importlib import metadata

    try:
        return metadata.version("opensmile")
    except metadata.PackageNotFoundError:
        return "not installed"


class OpenSmile(Extractor):
    """openSMILE feature sets (eGeMAPS, ComParE 2016, ...): functionals ``(d,)`` or LLD frames ``(T, d)``.

    Functionals of eGeMAPSv02 are 88-d and of ComParE_2016 6373-d; their LLDs are 25-d and
    65-d frames every 10 ms. The numbers are exactly those of
    ``opensmile.Smile(feature_set, feature_level).process_signal(wav, sample_rate)``; a
    waveform too short for the set's analysis windows (openSMILE fills it with NaN) is an
    :class:`~serkit.errors.AudioError`.
    """

    name: ClassVar[str] = "opensmile"
    version: ClassVar[str] = "1"
    #: A CPU function of the waveform, cheap to pickle (the SMILE object is rebuilt on
    #: demand): the extraction driver may run it in worker processes.
    parallel_safe: ClassVar[bool] = True

    class Params(ComponentParams):
        feature_set: str = Field(
            "eGeMAPSv02",
            description="openSMILE feature set: " + ", ".join(FEATURE_SETS) + ".",
        )
        level: Level = Field(
            "functionals",
            description="'functionals': one vector per utterance; 'lld': low-level descriptor frames (T, d); "
            "'lld_deltas': their deltas (ComParE_2016, emobase and IS09-IS13 only).",
        )
        sample_rate: int = Field(
            16000, ge=8000, le=96000, description="Sample rate (Hz) audio is resampled to before openSMILE."
        )

        @field_validator("feature_set")
        @classmethod
        def _known_set(cls, value: str) -> str:
            if value in FEATURE_SETS:
                return value
            lower = {k.lower(): k for k in FEATURE_SETS}
            close = difflib.get_close_matches(value.lower(), list(lower), n=1, cutoff=0.6)
            guess = lower.get(value.lower()) or (lower[close[0]] if close else None)
            hint = f"did you mean {guess!r}? " if guess else ""
            raise ValueError(f"unknown openSMILE feature set {value!r}; {hint}available: {', '.join(FEATURE_SETS)}")

        @model_validator(mode="after")
        def _known_level(self) -> OpenSmile.Params:
            levels = FEATURE_SETS[self.feature_set]
            if self.level not in levels:
                raise ValueError(
                    f"feature set {self.feature_set} has no level {self.level!r}; levels: {', '.join(levels)}"
                )
            return self

    params: Params

    def __init__(self, params: ComponentParams | None = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self._smile: Any = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_smile"] = None  # the SMILE object is rebuilt on demand in the receiving process
        return state

    @property
    def output(self) -> Literal["vector", "sequence"]:
        return "vector" if self.params.level == "functionals" else "sequence"

    @property
    def sample_rate(self) -> int:
        return self.params.sample_rate

    @property
    def dim(self) -> int:
        return FEATURE_SETS[self.params.feature_set][self.params.level]

    @property
    def feature_names(self) -> list[str]:
        """Names of the ``dim`` columns, in order (e.g. ``F0semitoneFrom27.5Hz_sma3nz_amean``)."""
        return list(self.load_smile().feature_names)

    def fingerprint(self) -> str:
        """Hash of name, version, params and the installed ``opensmile`` version.

        Another opensmile release may compute other numbers, so its features get a new store.
        """
        payload = json.dumps({"base": super().fingerprint(), "opensmile": _opensmile_version()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def load_smile(self) -> Any:
        """The ``opensmile.Smile`` object of this feature set and level, built once."""
        if self._smile is None:
            opensmile = _import_opensmile()
            p = self.params
            try:
                feature_set = opensmile.FeatureSet[p.feature_set]
                feature_level = opensmile.FeatureLevel[LEVELS[p.level]]
            except KeyError as err:
                raise ModelError(
                    f"extractor 'opensmile': the installed opensmile {_opensmile_version()} has no "
                    f"{p.feature_set} / {LEVELS[p.level]} (field 'feature_set'); pip install -U opensmile"
                ) from err
            try:
                smile = opensmile.Smile(feature_set=feature_set, feature_level=feature_level)
            except Exception as err:
                raise ModelError(
                    f"extractor 'opensmile': cannot build openSMILE {p.feature_set} / {p.level} "
                    f"({type(err).__name__}: {err})"
                ) from err
            n = len(smile.feature_names)
            if n != self.dim:
                raise ModelError(
                    f"extractor 'opensmile': opensmile {_opensmile_version()} gives {n} {p.level} of "
                    f"{p.feature_set}, serkit-plugin-opensmile expects {self.dim}; please report this"
                )
            self._smile = smile
        return self._smile

    def extract(self, wav: np.ndarray) -> np.ndarray:
        """openSMILE features of one waveform.

        Args:
            wav: float32 ``(n_samples,)`` at :attr:`sample_rate`.

        Returns:
            float32 ``(dim,)`` for functionals, ``(T, dim)`` for LLDs (``T`` about
            ``n_samples / (sample_rate / 100)`` minus the analysis window).

        Raises:
            AudioError: the waveform is not 1-D, is empty, has NaN/inf samples, or is
                too short for the feature set (openSMILE returns NaN for it).
        """
        import numpy as np

        y = np.asarray(wav, dtype=np.float32)
        if y.ndim != 1 or y.size == 0:
            raise AudioError(f"opensmile expects a non-empty 1-D waveform, got shape {y.shape}")
        if not np.all(np.isfinite(y)):
            raise AudioError("opensmile: the waveform has NaN or infinite samples")
        smile = self.load_smile()
        with warnings.catch_warnings():
            # opensmile warns "Segment too short, filling with NaN."; the NaN check below reports it
            warnings.filterwarnings("ignore", message="Segment too short")
            frame = smile.process_signal(np.ascontiguousarray(y), self.sample_rate)
        values = frame.to_numpy(dtype=np.float32)
        if values.ndim != 2 or values.shape[1] != self.dim:
            raise ModelError(
                f"extractor 'opensmile': openSMILE returned shape {values.shape}; expected (T, {self.dim})"
            )
        if values.shape[0] == 0 or not np.all(np.isfinite(values)):
            ms = 1000 * y.size / self.sample_rate
            raise AudioError(
                f"opensmile: the waveform ({y.size} samples = {ms:g} ms at {self.sample_rate} Hz) is too "
                f"short for {self.params.feature_set} {self.params.level} (openSMILE gives NaN)"
            )
        if self.output == "vector":
            return np.ascontiguousarray(values[0])
        return np.ascontiguousarray(values)

    def extract_batch(self, wavs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """openSMILE runs one signal at a time; the SMILE object is shared by the batch."""
        return [self.extract(w) for w in wavs]
