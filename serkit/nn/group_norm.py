"""A per-channel group norm over each item's own valid frames (padding-invariant batches)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["MaskedGroupNorm"]


class MaskedGroupNorm(nn.Module):
    """``nn.GroupNorm`` with one group per channel, computed over each item's valid frames only.

    A group norm over time (as in the first CNN layer of wav2vec2-base, HuBERT-base,
    WavLM-base) normalises each channel over the whole input, so zero padding changes every
    frame of a batched item. With :attr:`valid` set, channel ``c`` of item ``b`` is instead
    normalised with the mean and biased variance of ``x[b, c, :valid[b]]``: exactly what the
    item gives alone (to float rounding). Frames past ``valid[b]`` get the same affine
    transform (callers crop them). Statistics are computed in float32 (half-precision sums
    over ~10^5 frames would overflow).

    ``forward(x)``: ``x (B, C, T)`` -> ``(B, C, T)`` in ``x``'s dtype. With ``valid = None``
    it is the wrapped norm.

    Args:
        norm: the ``nn.GroupNorm`` to wrap (``num_groups == num_channels``); its affine
            parameters and ``eps`` are used.
    """

    def __init__(self, norm: nn.GroupNorm) -> None:
        super().__init__()
        if norm.num_groups != norm.num_channels:
            raise ValueError(
                f"MaskedGroupNorm needs one group per channel; got {norm.num_groups} groups for {norm.num_channels}"
            )
        self.norm = norm
        #: ``(B,)`` long: valid frames per item for the next forward calls, or None.
        self.valid: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        if self.valid is None:
            return self.norm(x)
        xf = x.float()
        t = torch.arange(x.shape[-1], device=x.device)
        mask = (t[None, :] < self.valid[:, None]).to(xf.dtype)[:, None, :]  # (B, 1, T)
        count = self.valid.to(xf.dtype).clamp_min(1)[:, None, None]
        mean = (xf * mask).sum(dim=-1, keepdim=True) / count
        var = ((xf - mean) * mask).square().sum(dim=-1, keepdim=True) / count
        y = (xf - mean) * torch.rsqrt(var + self.norm.eps)
        if self.norm.affine:
            y = y * self.norm.weight.float()[None, :, None] + self.norm.bias.float()[None, :, None]
        return y.to(x.dtype)
