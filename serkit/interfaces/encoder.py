"""Encoders: a padded feature sequence ``(B, L, d)`` + lengths -> one vector ``(B, k)``."""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, ClassVar

from serkit.interfaces.base import Component

if TYPE_CHECKING:
    from torch import nn

__all__ = ["Encoder"]


class Encoder(Component):
    """Factory of a sequence-summarising network.

    :meth:`build` returns an ``nn.Module`` with an integer attribute ``out_dim`` whose
    ``forward(x, lengths)`` maps ``x: (B, L, in_dim)`` float and ``lengths: (B,)`` long
    (valid frames per row; frames past a row's length are padding and must not change
    its output) to ``(B, out_dim)``.
    """

    kind: ClassVar[str] = "encoder"

    @abstractmethod
    def build(self, in_dim: int) -> nn.Module:
        """Create the network for inputs of dimension ``in_dim``."""
