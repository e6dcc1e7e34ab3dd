"""The encoder and the head learn a tiny sequence-classification task together."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from serkit.nn import MLP, CnnBiLstmAttn, MeanPool


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny networks run fastest, and steadiest on a busy machine, on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_task(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Class = sign of feature 0's mean over the valid frames; padding is large noise."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(3, 16, (n,), generator=g)
    x = torch.randn(n, 16, 3, generator=g)
    y = torch.randint(0, 2, (n,), generator=g)
    shift = (y.float() * 2 - 1) * 0.7
    x[:, :, 0] += shift[:, None]
    for i in range(n):
        x[i, lengths[i] :] = torch.randn(16 - int(lengths[i]), 3, generator=g) * 50
    return x, lengths, y


def train(encoder: torch.nn.Module, steps: int) -> float:
    torch.manual_seed(0)
    head = MLP(encoder.out_dim, 2, hidden=[16], activations=["mish", "gelu"], dropout=0.0)
    params = list(encoder.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=1e-2)
    x, lengths, y = make_task(128, seed=0)
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(head(encoder(x, lengths)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    encoder.eval()
    head.eval()
    with torch.no_grad():
        return (head(encoder(x, lengths)).argmax(1) == y).float().mean().item()


def test_cnn_bilstm_attn_and_mlp_learn() -> None:
    torch.manual_seed(0)
    enc = CnnBiLstmAttn(3, channels=8, kernel_sizes=(3,), lstm_hidden=12, attention_dim=12)
    assert train(enc, steps=60) > 0.9


def test_mean_pool_and_mlp_learn() -> None:
    assert train(MeanPool(3, stats=True), steps=60) > 0.9
