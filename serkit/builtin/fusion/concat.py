"""Fusion ``concat``: the stream vectors side by side (the paper's single-domain model)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar

from serkit.interfaces.base import ComponentParams
from serkit.interfaces.fusion import Fusion

if TYPE_CHECKING:
    from torch import nn

__all__ = ["ConcatFusion"]


class ConcatFusion(Fusion):
    """Concatenate the stream vectors in recipe order; the same representation for every domain.

    The representation has width ``sum(k_i)``; no parameters, no extras. See
    :class:`serkit.nn.ConcatFusionNet`.
    """

    name: ClassVar[str] = "concat"

    class Params(ComponentParams):
        pass

    def build(self, stream_dims: Mapping[str, int], domains: Sequence[str]) -> nn.Module:
        """A :class:`serkit.nn.ConcatFusionNet` over ``stream_dims`` (in their order)."""
        from serkit.nn.fusion import ConcatFusionNet

        return ConcatFusionNet(stream_dims, domains=domains)
