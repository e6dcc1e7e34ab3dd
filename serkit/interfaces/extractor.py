"""Feature extractors: waveform -> a sequence ``(L, d)`` or a vector ``(d,)``."""

from __future__ import annotations

import hashlib
import json
from abc import abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar, Literal

from serkit.interfaces.base import Component

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

__all__ = ["Extractor"]

OutputKind = Literal["sequence", "vector"]


class Extractor(Component):
    """Turns 1-D float32 mono audio at ``sample_rate`` into features.

    Subclasses implement :meth:`extract` (one waveform) and may override
    :meth:`extract_batch` when batching is faster. ``version`` is part of the cache
    key: bump it whenever the same params would give different numbers.

    Two optional ways to let the extraction driver's worker processes
    (``data.extract_executor: process``) do more than load audio:

    * ``parallel_safe = True``: :meth:`extract_batch` is a pure CPU function of the
      waveforms, cheap to rebuild in a worker from the class and its params (e.g.
      ``mfcc``); the workers then compute the features themselves.
    * methods ``prepare(wav) -> Any`` and ``extract_prepared(items) -> list[np.ndarray]``
      (e.g. ``ge2e``): the workers run ``prepare`` (preprocessing without the model, its
      result picklable) and the calling process runs the model on batches of prepared
      items; ``extract_prepared([prepare(w)])[0]`` must equal ``extract(w)``.

    Fine-tuning (e.g. ``ge2e`` with ``finetune: true``): a :attr:`trainable` extractor
    caches the *inputs* of its network instead of features, and :meth:`build_trainable`
    gives the network, which takes the encoder's place in the model and trains at
    ``lr * lr_scale``.

    :class:`serkit.testing.extractor_contract.ExtractorContract` checks an extractor
    against these rules.
    """

    kind: ClassVar[str] = "extractor"
    version: ClassVar[str] = "1"
    #: Params that do not change the numbers (devices, download switches); left out of
    #: the cache key so that machines with different hardware share a feature store.
    runtime_params: ClassVar[frozenset[str]] = frozenset()
    #: A pure CPU function of the waveform that worker processes may compute (see above).
    parallel_safe: ClassVar[bool] = False

    @property
    @abstractmethod
    def output(self) -> OutputKind:
        """``"sequence"`` for frame-level ``(L, d)`` features, ``"vector"`` for ``(d,)``."""

    @property
    @abstractmethod
    def sample_rate(self) -> int:
        """Sample rate (Hz) the extractor expects; audio is resampled to it."""

    @property
    @abstractmethod
    def dim(self) -> int:
        """Feature dimension ``d``."""

    @property
    def n_layers(self) -> int:
        """Layers stored side by side in each feature (``dim = n_layers * width``); 1 for most extractors.

        Extractors that store several layers of a model (``hf_ssl`` / ``whisper`` with
        ``layer: weighted``) say how many, so that layer-aware encoders
        (``weighted_layers``) can split the features.
        """
        return 1

    @property
    def trainable(self) -> bool:
        """Whether the extractor is fine-tuned: its cached features are the inputs of :meth:`build_trainable`'s
        network, which the model trains in place of an encoder (default False)."""
        return False

    @property
    def lr_scale(self) -> float:
        """Multiplier of the recipe's learning rate for the network of a :attr:`trainable` extractor."""
        return 1.0

    def build_trainable(self) -> nn.Module:
        """The network of a :attr:`trainable` extractor: the cached inputs ``(B, L, dim)`` + lengths -> ``(B,
        out_dim)``, with an integer ``out_dim`` (the contract of an encoder's network)."""
        raise NotImplementedError(f"extractor '{self.name}' is not trainable")

    @abstractmethod
    def extract(self, wav: np.ndarray) -> np.ndarray:
        """Features of one waveform.

        Args:
            wav: float32 array ``(n_samples,)`` at :attr:`sample_rate`.

        Returns:
            float32 ``(L, d)`` when :attr:`output` is ``"sequence"``, else ``(d,)``.
        """

    def extract_batch(self, wavs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Features of several waveforms; override to batch on the model side."""
        return [self.extract(w) for w in wavs]

    def fingerprint(self) -> str:
        """Hash of name, version and params: one feature store per fingerprint."""
        payload = json.dumps(
            {
                "name": self.name,
                "version": self.version,
                "params": self.params.model_dump(mode="json", exclude={"type", *self.runtime_params}),
            },
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]
