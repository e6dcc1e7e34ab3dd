"""Masked mean (and standard deviation) pooling over time."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from serkit.errors import ModelError
from serkit.nn.masking import check_lengths, lengths_to_mask, masked_mean, masked_std

__all__ = ["MeanPool"]


class MeanPool(nn.Module):
    """Average of the valid frames, optionally followed by their standard deviation.

    ``forward(x, lengths)``: ``x: (B, L, in_dim)``, ``lengths: (B,)`` ->
    ``(B, in_dim)``, or ``(B, 2 * in_dim)`` = ``[mean, std]`` when ``stats`` is true. The
    std is the population one (``ddof=0``), so a one-frame sequence has std 0 (up to the
    ``sqrt(1e-12)`` floor that keeps gradients finite). No parameters.

    Args:
        in_dim: feature dimension ``d``.
        stats: also return the standard deviation.
    """

    def __init__(self, in_dim: int, stats: bool = False) -> None:
        super().__init__()
        if isinstance(in_dim, bool) or not isinstance(in_dim, int) or in_dim < 1:
            raise ModelError(f"mean_pool: in_dim must be a positive int; got {in_dim!r}")
        self.in_dim = in_dim
        self.stats = bool(stats)
        self.out_dim: int = 2 * in_dim if self.stats else in_dim

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        check_lengths(x, lengths, "mean_pool", self.in_dim)
        mask = lengths_to_mask(lengths.to(x.device), x.shape[1])
        mean = masked_mean(x, mask)
        if not self.stats:
            return mean
        return torch.cat([mean, masked_std(x, mask, mean)], dim=1)

    def extra_repr(self) -> str:
        return f"in_dim={self.in_dim}, stats={self.stats}"
