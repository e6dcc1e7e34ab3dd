from __future__ import annotations

import numpy as np
import pytest
import torch

from serkit.errors import ModelError
from serkit.nn import MeanPool


def test_mean_matches_numpy_per_row_and_ignores_padding() -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 6, 5)
    lengths = torch.tensor([6, 2, 4])
    garbage = x.clone()
    garbage[1, 2:] = float("nan")
    garbage[2, 4:] = 1e6
    out = MeanPool(5)(garbage, lengths)
    assert out.shape == (3, 5)
    for i, n in enumerate(lengths.tolist()):
        np.testing.assert_allclose(out[i].numpy(), x[i, :n].numpy().mean(0), rtol=1e-5, atol=1e-6)


def test_stats_appends_population_std() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 7, 3)
    lengths = torch.tensor([7, 3])
    pool = MeanPool(3, stats=True)
    out = pool(x, lengths)
    assert pool.out_dim == 6 and out.shape == (2, 6)
    for i, n in enumerate(lengths.tolist()):
        row = x[i, :n].numpy()
        np.testing.assert_allclose(out[i, :3].numpy(), row.mean(0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(out[i, 3:].numpy(), row.std(0, ddof=0), rtol=1e-5, atol=1e-6)


def test_no_parameters_and_gradient_only_on_valid_frames() -> None:
    pool = MeanPool(2, stats=True)
    assert list(pool.parameters()) == []
    x = torch.randn(1, 4, 2, requires_grad=True)
    pool(x, torch.tensor([3])).sum().backward()
    assert x.grad[0, 3].abs().max().item() == 0.0
    # d mean / d x_t = 1 / n for each valid frame; the std part sums to 0 over frames
    torch.testing.assert_close(x.grad[0, :3].sum(0), torch.ones(2))


def test_errors() -> None:
    with pytest.raises(ModelError, match=r"^mean_pool: in_dim must be a positive int; got 0$"):
        MeanPool(0)
    with pytest.raises(ModelError, match=r"^mean_pool: x has feature dimension 4; expected in_dim"):
        MeanPool(3)(torch.zeros(1, 2, 4), torch.tensor([2]))
