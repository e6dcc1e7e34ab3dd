"""Encoder ``mean_pool``: masked mean (and optionally std) over the valid frames."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from serkit.interfaces.base import ComponentParams
from serkit.interfaces.encoder import Encoder

if TYPE_CHECKING:
    from torch import nn

__all__ = ["MeanPoolEncoder"]


class MeanPoolEncoder(Encoder):
    """Average the valid frames; with ``stats: true`` append their standard deviation.

    Maps ``(B, L, d)`` + lengths to ``(B, d)``, or ``(B, 2d)`` with ``stats``; no
    parameters to train. See :class:`serkit.nn.MeanPool`.
    """

    name: ClassVar[str] = "mean_pool"

    class Params(ComponentParams):
        stats: bool = Field(
            False,
            description="Also output the per-dimension standard deviation (ddof=0) of the "
            "valid frames: [mean, std], width 2d.",
        )

    params: Params

    def build(self, in_dim: int) -> nn.Module:
        """A :class:`serkit.nn.MeanPool` for ``in_dim``-dimensional frames."""
        from serkit.nn.pooling import MeanPool

        return MeanPool(in_dim, stats=self.params.stats)
