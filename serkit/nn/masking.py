"""Padding masks for batches of variable-length sequences.

A batch of sequences is a float tensor ``x: (B, L, D)`` padded to the longest row, plus
``lengths: (B,)`` (integer, valid frames per row). Frames at ``t >= lengths[b]`` are
padding: they may hold anything (even NaN) and must not influence any result, so these
helpers *replace* them (``masked_fill``) rather than multiply them by zero.
"""

from __future__ import annotations

import torch
from torch import Tensor

from serkit.errors import ModelError

__all__ = [
    "check_lengths",
    "lengths_to_mask",
    "masked_mean",
    "masked_softmax",
    "masked_std",
    "zero_padding",
]


def check_lengths(x: Tensor, lengths: Tensor, where: str, in_dim: int | None = None) -> None:
    """Check a padded batch and its lengths before a network uses them.

    Args:
        x: ``(B, L, D)`` float.
        lengths: ``(B,)`` integer, each in ``[1, L]``.
        where: the network's name, used in error messages.
        in_dim: expected ``D``, if the network has a fixed input width.

    Raises:
        ModelError: a shape, dtype or length is not what the network expects.
    """
    if x.dim() != 3:
        raise ModelError(f"{where}: x must be (B, L, D); got shape {tuple(x.shape)}")
    batch, max_len, dim = x.shape
    if in_dim is not None and dim != in_dim:
        raise ModelError(f"{where}: x has feature dimension {dim}; expected in_dim={in_dim}")
    if lengths.shape != (batch,):
        raise ModelError(
            f"{where}: lengths must be (B,) = ({batch},); got shape {tuple(lengths.shape)}"
        )
    if lengths.dtype.is_floating_point or lengths.dtype.is_complex or lengths.dtype == torch.bool:
        raise ModelError(f"{where}: lengths must be an integer tensor; got {lengths.dtype}")
    if batch and (int(lengths.min()) < 1 or int(lengths.max()) > max_len):
        raise ModelError(
            f"{where}: every length must be in [1, L={max_len}]; got min {int(lengths.min())}, "
            f"max {int(lengths.max())}"
        )


def lengths_to_mask(lengths: Tensor, max_len: int | None = None) -> Tensor:
    """Boolean mask ``(B, max_len)``, True at valid frames (``t < lengths[b]``).

    ``max_len`` defaults to ``lengths.max()``.
    """
    if max_len is None:
        max_len = int(lengths.max()) if lengths.numel() else 0
    steps = torch.arange(max_len, device=lengths.device)
    return steps.unsqueeze(0) < lengths.unsqueeze(1)


def zero_padding(x: Tensor, mask: Tensor) -> Tensor:
    """``x: (B, L, D)`` with every padded frame (``mask: (B, L)`` False) set to 0.

    Uses ``masked_fill``, so NaN or inf in padding is removed too.
    """
    return x.masked_fill(~mask.unsqueeze(-1), 0.0)


def masked_softmax(scores: Tensor, mask: Tensor, dim: int = -1) -> Tensor:
    """Softmax of ``scores`` over ``dim`` where padded positions get exactly 0 weight.

    ``scores`` and ``mask`` have the same shape (e.g. ``(B, L)``); every row needs at least
    one valid position.
    """
    return scores.masked_fill(~mask, float("-inf")).softmax(dim=dim)


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean over the valid frames: ``x: (B, L, D)``, ``mask: (B, L)`` -> ``(B, D)``."""
    count = mask.sum(dim=1, keepdim=True).clamp_min(1).to(x.dtype)  # (B, 1)
    return zero_padding(x, mask).sum(dim=1) / count


def masked_std(x: Tensor, mask: Tensor, mean: Tensor | None = None, eps: float = 1e-12) -> Tensor:
    """Population standard deviation (``ddof=0``) over the valid frames, ``(B, D)``.

    The variance is clamped at ``eps`` before the square root so that the gradient stays
    finite for constant sequences (their std comes out as ``sqrt(eps)`` instead of 0).
    """
    if mean is None:
        mean = masked_mean(x, mask)
    centred = zero_padding(x - mean.unsqueeze(1), mask)
    count = mask.sum(dim=1, keepdim=True).clamp_min(1).to(x.dtype)
    var = centred.pow(2).sum(dim=1) / count
    return var.clamp_min(eps).sqrt()
