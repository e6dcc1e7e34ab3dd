"""Augmentation of cached feature sequences during training (SpecAugment-style masking)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from serkit.errors import ModelError

__all__ = ["SequenceMasking"]


class SequenceMasking(nn.Module):
    """Random time and feature masks on ``(B, L, D)`` frames, in training mode only.

    Each item gets ``time_masks`` spans of ``U{0..floor(time_width * length)}`` consecutive
    valid frames and ``freq_masks`` spans of ``U{0..freq_width}`` consecutive feature
    dimensions, set to ``value`` (0: the training mean once features are standardised).
    Draws come from torch's global generator, so a seeded run masks the same frames every
    time. In eval mode (validation, test, predict) the input is returned unchanged.

    Args:
        time_masks: spans masked along time per item.
        time_width: the longest time span, as a fraction of the item's length, in ``[0, 1]``.
        freq_masks: spans masked along the feature axis per item.
        freq_width: the longest feature span, in dimensions.
        value: what masked entries become.
    """

    def __init__(
        self,
        time_masks: int = 2,
        time_width: float = 0.05,
        freq_masks: int = 2,
        freq_width: int = 4,
        value: float = 0.0,
    ) -> None:
        super().__init__()
        if time_masks < 0 or freq_masks < 0 or freq_width < 0 or not 0.0 <= time_width <= 1.0:
            raise ModelError(
                "sequence masking: time_masks, freq_masks and freq_width must be >= 0 and time_width in [0, 1]; got "
                f"{time_masks}, {freq_masks}, {freq_width}, {time_width}"
            )
        self.time_masks, self.time_width = int(time_masks), float(time_width)
        self.freq_masks, self.freq_width = int(freq_masks), int(freq_width)
        self.value = float(value)

    @staticmethod
    def _spans(n: int, limit: Tensor, max_width: Tensor, size: int, device: torch.device) -> Tensor:
        """``(B, size)`` bool: ``n`` random spans per row, each within ``[0, limit)``, width <= max_width."""
        rows = limit.shape[0]
        steps = torch.arange(size, device=device).unsqueeze(0)  # (1, size)
        mask = torch.zeros(rows, size, dtype=torch.bool, device=device)
        for _ in range(n):
            width = (torch.rand(rows, device=device) * (max_width + 1).float()).floor().long()  # U{0..max}
            start = (torch.rand(rows, device=device) * (limit - width + 1).clamp_min(1).float()).floor().long()
            mask |= (steps >= start.unsqueeze(1)) & (steps < (start + width).unsqueeze(1))
        return mask

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """``x: (B, L, D)``, ``lengths: (B,)`` -> masked ``(B, L, D)`` (a new tensor)."""
        if not self.training or (self.time_masks == 0 and self.freq_masks == 0):
            return x
        batch, length, dim = x.shape
        lengths = lengths.to(x.device).long()
        masked = x
        if self.time_masks:
            widest = (lengths.float() * self.time_width).floor().long()
            span = self._spans(self.time_masks, lengths, widest, length, x.device)  # (B, L)
            masked = masked.masked_fill(span.unsqueeze(-1), self.value)
        if self.freq_masks:
            limit = torch.full((batch,), dim, device=x.device)
            span = self._spans(self.freq_masks, limit, torch.full_like(limit, self.freq_width), dim, x.device)
            masked = masked.masked_fill(span.unsqueeze(1), self.value)  # (B, 1, D)
        return masked

    def extra_repr(self) -> str:
        return (
            f"time_masks={self.time_masks}, time_width={self.time_width}, freq_masks={self.freq_masks}, "
            f"freq_width={self.freq_width}"
        )
