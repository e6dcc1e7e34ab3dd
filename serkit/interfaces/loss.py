"""Losses: the main objective (on logits) and auxiliary ones (on the representation)."""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, ClassVar

from serkit.interfaces.base import Component

if TYPE_CHECKING:
    from torch import nn

__all__ = ["Loss"]


class Loss(Component):
    """Factory of a loss module.

    The module's ``forward(logits, targets, embedding)`` takes logits ``(B, C)``, integer
    targets ``(B,)`` and the fused representation ``(B, D)`` and returns a scalar tensor.
    A loss may have learnable parameters (they are optimised with the model).
    """

    kind: ClassVar[str] = "loss"

    @abstractmethod
    def build(self, embedding_dim: int, n_classes: int) -> nn.Module:
        """Create the loss module."""
