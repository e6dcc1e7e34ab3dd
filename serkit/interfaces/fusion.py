"""Fusion: M stream vectors + the batch's domain -> one representation per sample."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar

from serkit.interfaces.base import Component

if TYPE_CHECKING:
    from torch import nn

__all__ = ["Fusion"]


class Fusion(Component):
    """Factory of the network that merges the feature streams.

    :meth:`build` returns an ``nn.Module`` with ``out_dim: int`` whose
    ``forward(streams, domain)`` takes ``streams: dict[str, Tensor (B, k_i)]`` (one entry
    per stream id, in recipe order) and ``domain: str`` (every sample of a batch comes
    from one domain) and returns a :class:`serkit.nn.FusionOutput` holding the
    representation ``(B, out_dim)`` and extras (gate weights, penalties) for the loss and
    the report.
    """

    kind: ClassVar[str] = "fusion"

    @abstractmethod
    def build(self, stream_dims: Mapping[str, int], domains: Sequence[str]) -> nn.Module:
        """Create the fusion network for streams of the given dims and these domain ids."""
