"""Heads: the per-domain classification tower, ``(B, D) -> (B, C)`` logits."""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, ClassVar

from serkit.interfaces.base import Component

if TYPE_CHECKING:
    from torch import nn

__all__ = ["Head"]


class Head(Component):
    """Factory of a classification tower mapping ``(B, in_dim)`` to logits ``(B, n_classes)``."""

    kind: ClassVar[str] = "head"

    @abstractmethod
    def build(self, in_dim: int, n_classes: int) -> nn.Module:
        """Create the tower."""
