"""Encoder ``stats_pool``: mean and std over the valid frames (optionally of their deltas)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from serkit.interfaces.base import ComponentParams
from serkit.interfaces.encoder import Encoder

if TYPE_CHECKING:
    from torch import nn

__all__ = ["StatsPoolEncoder"]


class StatsPoolEncoder(Encoder):
    """Utterance statistics of a sequence stream: ``[mean, std]`` over the valid frames.

    Maps ``(B, L, d)`` + lengths to ``(B, 2d (1 + deltas))``, what a linear model on pooled
    features sees; an MLP head on top is the strong small-corpus model. No parameters. See
    :class:`serkit.nn.stats_pool.StatsPool`.
    """

    name: ClassVar[str] = "stats_pool"

    class Params(ComponentParams):
        deltas: int = Field(
            0,
            ge=0,
            le=2,
            description="Also pool the first (1) or first and second (2) differences of the frames over time.",
        )

    params: Params

    def build(self, in_dim: int) -> nn.Module:
        """A :class:`serkit.nn.stats_pool.StatsPool` for ``in_dim``-dimensional frames."""
        from serkit.nn.stats_pool import StatsPool

        return StatsPool(in_dim, deltas=self.params.deltas)
