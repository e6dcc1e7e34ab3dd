"""Cross-entropy on logits, with the loss-module signature serkit uses."""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from serkit.errors import ModelError

__all__ = ["CrossEntropy"]


class CrossEntropy(nn.Module):
    """Mean cross-entropy of logits ``(B, C)`` against integer targets ``(B,)``.

    ``forward(logits, targets, embedding=None)`` returns a scalar; ``embedding`` (the fused
    representation ``(B, D)``) is accepted for the common loss signature and unused.

    Args:
        n_classes: ``C``; logits of another width are an error.
        label_smoothing: in ``[0, 1)``; the target distribution puts
            ``1 - s + s / C`` on the true class and ``s / C`` on the others.
    """

    def __init__(self, n_classes: int, label_smoothing: float = 0.0) -> None:
        super().__init__()
        if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 1:
            raise ModelError(f"cross_entropy: n_classes must be a positive int; got {n_classes!r}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ModelError(
                f"cross_entropy: label_smoothing must be in [0, 1); got {label_smoothing!r}"
            )
        self.n_classes = n_classes
        self.label_smoothing = float(label_smoothing)

    def forward(self, logits: Tensor, targets: Tensor, embedding: Tensor | None = None) -> Tensor:
        if logits.dim() != 2 or logits.shape[1] != self.n_classes:
            raise ModelError(
                f"cross_entropy: logits must be (B, {self.n_classes}); "
                f"got shape {tuple(logits.shape)}"
            )
        if targets.shape != logits.shape[:1]:
            raise ModelError(
                f"cross_entropy: targets must be (B,) = ({logits.shape[0]},); "
                f"got shape {tuple(targets.shape)}"
            )
        return F.cross_entropy(logits, targets.long(), label_smoothing=self.label_smoothing)

    def extra_repr(self) -> str:
        return f"n_classes={self.n_classes}, label_smoothing={self.label_smoothing}"
