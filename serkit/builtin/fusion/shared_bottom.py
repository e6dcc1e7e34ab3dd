"""Fusion ``shared_bottom``: the sum of the projected streams (the paper's SB)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar

from pydantic import Field, field_validator

from serkit.errors import ModelError
from serkit.interfaces.base import ComponentParams
from serkit.interfaces.fusion import Fusion
from serkit.nn.activations import ACTIVATIONS, check_activation

if TYPE_CHECKING:
    from torch import nn

__all__ = ["SharedBottomFusion"]


class SharedBottomFusion(Fusion):
    """Shared bottom: each stream projected to ``width`` by its own Linear, then summed.

    The representation ``(B, width)`` is the same for every domain (the domains differ by
    their heads); no extras. See :class:`serkit.nn.moe.SharedBottomNet`.
    """

    name: ClassVar[str] = "shared_bottom"

    class Params(ComponentParams):
        width: int = Field(256, gt=0, description="Width of each stream's projection and of the representation.")
        activation: str = Field(
            "none",
            description="Activation after each stream's projection: none, or one of " + ", ".join(ACTIVATIONS) + ".",
        )
        dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout on each projected stream.")

        @field_validator("activation")
        @classmethod
        def _known_activation(cls, value: str) -> str:
            if value == "none":
                return value
            try:
                check_activation(value)
            except ModelError as err:
                raise ValueError(f"activation must be 'none' or a known activation: {err}") from None
            return value

    params: Params

    def build(self, stream_dims: Mapping[str, int], domains: Sequence[str]) -> nn.Module:
        """A :class:`serkit.nn.moe.SharedBottomNet` over ``stream_dims`` (in their order)."""
        from serkit.nn.moe import SharedBottomNet

        p = self.params
        return SharedBottomNet(stream_dims, domains=domains, width=p.width, activation=p.activation, dropout=p.dropout)
