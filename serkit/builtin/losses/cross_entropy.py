"""Loss ``cross_entropy``: the main classification objective."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from serkit.interfaces.base import ComponentParams
from serkit.interfaces.loss import Loss

if TYPE_CHECKING:
    from torch import nn

__all__ = ["CrossEntropyLoss"]


class CrossEntropyLoss(Loss):
    """Mean cross-entropy of the logits, optionally with label smoothing.

    The module's ``forward(logits (B, C), targets (B,), embedding (B, D))`` returns a
    scalar; the embedding is not used. See :class:`serkit.nn.CrossEntropy`.
    """

    name: ClassVar[str] = "cross_entropy"

    class Params(ComponentParams):
        label_smoothing: float = Field(
            0.0,
            ge=0.0,
            lt=1.0,
            description="Label smoothing s in [0, 1): the target puts 1 - s + s/C on the true "
            "class and s/C on each other class.",
        )

    params: Params

    def build(self, embedding_dim: int, n_classes: int) -> nn.Module:
        """A :class:`serkit.nn.CrossEntropy` over ``n_classes`` logits."""
        from serkit.nn.cross_entropy import CrossEntropy

        return CrossEntropy(n_classes, label_smoothing=self.params.label_smoothing)
