"""MaskedGroupNorm: a per-channel group norm over each item's own valid frames."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from serkit.nn.group_norm import MaskedGroupNorm


def _norm(channels: int = 6) -> nn.GroupNorm:
    torch.manual_seed(0)
    norm = nn.GroupNorm(channels, channels, affine=True)
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    return norm


def test_without_lengths_it_is_the_wrapped_norm():
    norm = _norm()
    x = torch.randn(3, 6, 40)
    torch.testing.assert_close(MaskedGroupNorm(norm)(x), norm(x))
    full = MaskedGroupNorm(norm)
    full.valid = torch.tensor([40, 40, 40])
    torch.testing.assert_close(full(x), norm(x), atol=1e-5, rtol=1e-5)


def test_padded_items_equal_the_items_alone():
    norm = _norm()
    masked = MaskedGroupNorm(norm)
    lengths = [40, 7, 23, 2]
    items = [torch.randn(1, 6, n) * (i + 1) + i for i, n in enumerate(lengths)]
    x = torch.full((len(lengths), 6, 40), 1e3)  # padding far from the data: any leak would show
    for i, item in enumerate(items):
        x[i, :, : lengths[i]] = item[0]
    masked.valid = torch.tensor(lengths)
    out = masked(x)
    for i, item in enumerate(items):
        torch.testing.assert_close(out[i : i + 1, :, : lengths[i]], norm(item), atol=1e-4, rtol=1e-4)


def test_half_precision_statistics_in_float32():
    norm = _norm()
    masked = MaskedGroupNorm(norm)
    x = torch.randn(2, 6, 5000) * 300  # squares overflow float16
    masked.valid = torch.tensor([5000, 3000])
    out = masked(x.half())
    assert out.dtype == torch.float16 and torch.isfinite(out).all()
    torch.testing.assert_close(out[0].float(), norm(x[:1])[0], atol=2e-2, rtol=1e-2)


def test_needs_one_group_per_channel():
    with pytest.raises(ValueError, match="one group per channel; got 2 groups for 6"):
        MaskedGroupNorm(nn.GroupNorm(2, 6))
