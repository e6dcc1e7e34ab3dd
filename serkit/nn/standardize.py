"""Feature standardisation with statistics stored in the model (buffers)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["Standardize"]


class Standardize(nn.Module):
    """``(x - mean) / std`` over the last axis, for ``(B, d)`` vectors or ``(B, T, d)`` frames.

    The statistics are buffers: they are saved in checkpoints and exported with the model,
    so prediction applies exactly what training used. They start as mean 0, std 1 (the
    identity) and are set with :meth:`set_stats` from the training split.

    With ``clip``, standardised values are clamped to ``[-clip, clip]``: a dimension that
    barely varies in training (e.g. a d-vector unit that is almost always 0) cannot then
    turn a new speaker's small deviation into a value of thousands.

    Args:
        dim: feature width ``d``.
        clip: bound of the standardised values; ``None``: no clamping.
    """

    def __init__(self, dim: int, clip: float | None = None) -> None:
        super().__init__()
        self.clip = clip
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    @torch.no_grad()
    def set_stats(self, mean: Tensor, std: Tensor, eps: float = 1e-5) -> None:
        """Store ``mean (d,)`` and ``std (d,)`` (floored at ``eps``)."""
        self.mean.copy_(torch.as_tensor(mean, dtype=self.mean.dtype))
        self.std.copy_(torch.as_tensor(std, dtype=self.std.dtype).clamp_min(eps))

    def forward(self, x: Tensor) -> Tensor:
        z = (x - self.mean) / self.std
        return z if self.clip is None else z.clamp(-self.clip, self.clip)

    def extra_repr(self) -> str:
        return f"dim={self.mean.numel()}" + (f", clip={self.clip}" if self.clip is not None else "")
