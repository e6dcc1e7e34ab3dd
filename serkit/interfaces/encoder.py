"""Encoders: a padded feature sequence ``(B, L, d)`` + lengths -> one vector ``(B, k)``."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from serkit.interfaces.base import Component

if TYPE_CHECKING:
    from torch import nn

__all__ = ["Encoder", "StreamContext"]


@dataclass(frozen=True)
class StreamContext:
    """What :meth:`Encoder.build_stream` may know beyond the input width.

    Attributes:
        output: the stream's kind: ``"sequence"`` (inputs ``(B, L, d)`` + lengths) or
            ``"vector"`` (inputs ``(B, d)``, lengths ``None``; only for encoders with
            ``accepts_vectors``).
        layers: layers stored side by side in each feature (the extractor's ``n_layers``,
            e.g. every hidden state of an SSL model with ``layer: weighted``); 1 for most
            extractors.
        domains: the model's domain ids (for per-domain parameters).
        registry: the component registry (to build nested components), or None.
    """

    output: str = "sequence"
    layers: int = 1
    domains: tuple[str, ...] = ()
    registry: Any = None


class Encoder(Component):
    """Factory of a sequence-summarising network.

    :meth:`build` returns an ``nn.Module`` with an integer attribute ``out_dim`` whose
    ``forward(x, lengths)`` maps ``x: (B, L, in_dim)`` float and ``lengths: (B,)`` long
    (valid frames per row; frames past a row's length are padding and must not change
    its output) to ``(B, out_dim)``.

    Optional, for encoders that need more than the input width (e.g. ``weighted_layers``):

    - ``accepts_vectors = True``: the encoder may also sit on a vector stream (one
      ``(d,)`` per utterance); its network then gets ``forward(x (B, d), None)``.
    - :meth:`build_stream` gets a :class:`StreamContext` (layer count, domains, registry);
      by default it calls :meth:`build`.
    - :meth:`check_stream` lists problems of using the encoder on a stream, reported by
      recipe validation before anything runs.
    - a network attribute ``takes_domain = True`` makes the model call
      ``forward(x, lengths, domain=<domain id>)``; a network method ``summary() -> dict``
      (JSON-serialisable) is recorded per run in ``results.json`` (e.g. learned layer
      weights).
    """

    kind: ClassVar[str] = "encoder"
    #: Whether the encoder also takes vector streams (``(B, d)`` inputs, lengths None).
    accepts_vectors: ClassVar[bool] = False

    @abstractmethod
    def build(self, in_dim: int) -> nn.Module:
        """Create the network for inputs of dimension ``in_dim``."""

    def build_stream(self, in_dim: int, context: StreamContext) -> nn.Module:
        """Create the network for one stream of a model; default :meth:`build` (the context unused)."""
        return self.build(in_dim)

    def check_stream(self, extractor: Any, registry: Any) -> list[str]:
        """Problems (one message each) of using this encoder on ``extractor``'s stream; default none."""
        return []
