"""An extractor applied to augmented copies of the audio; its features get their own store."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from serkit.data.wave_augment import NoiseSpec, SpeedSpec, apply_augment, augment_fingerprint, augment_tag
from serkit.interfaces.extractor import Extractor

if TYPE_CHECKING:
    import numpy as np

__all__ = ["AugmentedExtractor"]


class AugmentedExtractor(Extractor):
    """``base`` on ``apply_augment(wav, spec)``: the features of one augmented copy of each file.

    Its name (``<base>+<tag>``, e.g. ``mfcc+speed0.9``) and fingerprint (the base's and
    the augmentation's) differ from the base's, so the copies live in a store of their own
    and a change of either never reuses stale features. Worker processes only load the
    audio for it (``parallel_safe`` is False): the augmentation and the base extractor
    run in the calling process.

    Args:
        base: the stream's extractor.
        spec: the waveform augmentation.
    """

    def __init__(self, base: Extractor, spec: SpeedSpec | NoiseSpec) -> None:
        super().__init__(base.params)
        self.base = base
        self.spec = spec
        self.tag = augment_tag(spec)
        self.name = f"{base.name}+{self.tag}"  # type: ignore[misc]  # an instance name: never registered

    @property
    def output(self) -> Any:
        return self.base.output

    @property
    def sample_rate(self) -> int:
        return self.base.sample_rate

    @property
    def dim(self) -> int:
        return self.base.dim

    @property
    def n_layers(self) -> int:
        return self.base.n_layers

    def extract(self, wav: np.ndarray) -> np.ndarray:
        return self.base.extract(apply_augment(wav, self.sample_rate, self.spec))

    def extract_batch(self, wavs: Sequence[np.ndarray]) -> list[np.ndarray]:
        return self.base.extract_batch([apply_augment(w, self.sample_rate, self.spec) for w in wavs])

    def fingerprint(self) -> str:
        both = f"{self.base.fingerprint()}+{augment_fingerprint(self.spec)}"
        return hashlib.sha256(both.encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"AugmentedExtractor({self.base!r}, {self.spec!r})"
