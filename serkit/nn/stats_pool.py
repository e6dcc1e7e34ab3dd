"""Statistics pooling: mean and standard deviation over the valid frames, optionally of deltas."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from serkit.errors import ModelError
from serkit.nn.masking import check_lengths, lengths_to_mask, masked_mean, masked_std

__all__ = ["StatsPool", "frame_deltas"]


def frame_deltas(x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
    """First differences along time within each sequence's valid frames.

    ``x: (B, L, D)``, ``lengths: (B,)`` -> ``(x[:, 1:] - x[:, :-1], lengths - 1)``, with
    the new lengths clamped at 1 (a one-frame sequence gets one delta of 0). Differences
    that involve a padded frame are set to 0 and lie beyond the new lengths.
    """
    if x.shape[1] < 2:
        return torch.zeros_like(x), torch.ones_like(lengths)
    diff = x[:, 1:] - x[:, :-1]  # (B, L - 1, D)
    valid = lengths_to_mask(lengths - 1, diff.shape[1])  # empty for one-frame rows: their delta is 0
    return diff.masked_fill(~valid.unsqueeze(-1), 0.0), (lengths - 1).clamp_min(1)


class StatsPool(nn.Module):
    """Utterance statistics of a frame sequence, as a linear model on pooled features sees them.

    ``forward(x, lengths)``: ``x: (B, L, in_dim)``, ``lengths: (B,)`` -> ``(B, out_dim)``:
    ``[mean, std]`` of the valid frames (population std), then the same of their first
    differences when ``deltas >= 1`` and of their second differences when ``deltas == 2``;
    ``out_dim = 2 * in_dim * (1 + deltas)``. No parameters; padding never matters (padded
    frames are masked, and NaN or inf there is replaced before any arithmetic).

    Args:
        in_dim: feature dimension ``d``.
        deltas: 0, 1 or 2 orders of differences whose statistics are appended.
    """

    def __init__(self, in_dim: int, deltas: int = 0) -> None:
        super().__init__()
        if isinstance(in_dim, bool) or not isinstance(in_dim, int) or in_dim < 1:
            raise ModelError(f"stats_pool: in_dim must be a positive int; got {in_dim!r}")
        if deltas not in (0, 1, 2):
            raise ModelError(f"stats_pool: deltas must be 0, 1 or 2; got {deltas!r}")
        self.in_dim = in_dim
        self.deltas = deltas
        self.out_dim: int = 2 * in_dim * (1 + deltas)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        check_lengths(x, lengths, "stats_pool", self.in_dim)
        lengths = lengths.to(x.device)
        x = x.masked_fill(~lengths_to_mask(lengths, x.shape[1]).unsqueeze(-1), 0.0)
        parts: list[Tensor] = []
        for order in range(self.deltas + 1):
            if order:
                x, lengths = frame_deltas(x, lengths)
            mask = lengths_to_mask(lengths, x.shape[1])
            mean = masked_mean(x, mask)
            parts += [mean, masked_std(x, mask, mean)]
        return torch.cat(parts, dim=1)

    def extra_repr(self) -> str:
        return f"in_dim={self.in_dim}, deltas={self.deltas}, out_dim={self.out_dim}"
