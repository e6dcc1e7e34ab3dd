"""stats_pool: the statistics a linear model sees, exact under padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from serkit.errors import ModelError
from serkit.nn import StatsPool


def _by_hand(seq: np.ndarray, deltas: int) -> np.ndarray:
    parts = [seq.mean(0), seq.std(0)]
    for _ in range(deltas):
        seq = np.diff(seq, axis=0) if len(seq) > 1 else np.zeros_like(seq)
        parts += [seq.mean(0), seq.std(0)]
    return np.concatenate(parts)


@pytest.mark.parametrize("deltas", [0, 1, 2])
def test_a_padded_batch_equals_each_item_alone_and_numpy(deltas: int) -> None:
    pool = StatsPool(3, deltas=deltas)
    gen = torch.Generator().manual_seed(0)
    seqs = [torch.randn(n, 3, generator=gen, dtype=torch.float64) for n in (6, 1, 4, 2)]
    batch = torch.full((4, 6, 3), float("nan"), dtype=torch.float64)
    for i, s in enumerate(seqs):
        batch[i, : len(s)] = s
    lengths = torch.tensor([len(s) for s in seqs])
    out = pool(batch, lengths)
    assert out.shape == (4, pool.out_dim) == (4, 6 * (1 + deltas))
    for i, s in enumerate(seqs):
        alone = pool(s[None], torch.tensor([len(s)]))
        torch.testing.assert_close(out[i], alone[0], rtol=0, atol=1e-12)
        np.testing.assert_allclose(out[i].numpy(), _by_hand(s.numpy(), deltas), atol=1e-6)  # std floor: sqrt(1e-12)


def test_gradients_are_finite_for_constant_sequences() -> None:
    x = torch.ones(2, 5, 3, requires_grad=True)
    StatsPool(3, deltas=2)(x, torch.tensor([5, 3])).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_errors() -> None:
    with pytest.raises(ModelError, match="deltas must be 0, 1 or 2; got 3"):
        StatsPool(3, deltas=3)
    with pytest.raises(ModelError, match="stats_pool: x has feature dimension 4; expected in_dim=3"):
        StatsPool(3)(torch.zeros(1, 2, 4), torch.tensor([2]))


def test_registered_as_an_encoder() -> None:
    from serkit.plugins import get_registry

    enc = get_registry().create("encoder", {"type": "stats_pool", "deltas": 1})
    net = enc.build(5)
    assert isinstance(net, StatsPool) and net.out_dim == 20
