"""WeightedLayers: softmax weights over stacked layers, per domain if asked."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from serkit.errors import ModelError
from serkit.nn.layer_weights import SHARED, WeightedLayers
from serkit.nn.pooling import MeanPool

LAYERS, WIDTH = 4, 6


def _frames(batch: int = 3, length: int = 9, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, length, LAYERS * WIDTH, generator=torch.Generator().manual_seed(seed))


def test_weights_are_a_softmax_and_start_uniform():
    net = WeightedLayers(LAYERS * WIDTH, LAYERS)
    w = net.weights()
    assert w.shape == (LAYERS,) and torch.allclose(w.sum(), torch.tensor(1.0))
    torch.testing.assert_close(w, torch.full((LAYERS,), 1 / LAYERS))
    with torch.no_grad():
        net.logits[SHARED].copy_(torch.tensor([3.0, -1.0, 0.5, 2.0]))
    w = net.weights()
    assert torch.allclose(w.sum(), torch.tensor(1.0)) and bool((w > 0).all())
    per = WeightedLayers(LAYERS * WIDTH, LAYERS, domains=["xa", "xb"])
    assert per.takes_domain and list(per.logits) == ["xa", "xb"]
    for d in ("xa", "xb"):
        assert torch.allclose(per.weights(d).sum(), torch.tensor(1.0))


def test_uniform_start_equals_the_layer_mean():
    pooled = torch.randn(5, LAYERS * WIDTH)
    net = WeightedLayers(LAYERS * WIDTH, LAYERS)
    torch.testing.assert_close(net(pooled), pooled.reshape(5, LAYERS, WIDTH).mean(dim=1))
    assert net.out_dim == WIDTH
    frames, lengths = _frames(), torch.tensor([9, 4, 1])
    seq = WeightedLayers(LAYERS * WIDTH, LAYERS, encoder=MeanPool(WIDTH))
    expected = MeanPool(WIDTH)(frames.reshape(3, 9, LAYERS, WIDTH).mean(dim=2), lengths)
    torch.testing.assert_close(seq(frames, lengths), expected)


def test_padding_invariance():
    """Padded frames (here NaN) never change a row's output: padded batch == items alone."""
    torch.manual_seed(0)
    net = WeightedLayers(LAYERS * WIDTH, LAYERS, domains=["xa"], encoder=MeanPool(WIDTH, stats=True))
    with torch.no_grad():
        net.logits["xa"].normal_()
    lengths = torch.tensor([9, 4, 2])
    x = _frames()
    for i, n in enumerate(lengths.tolist()):
        x[i, n:] = float("nan")
    out = net(x, lengths, domain="xa")
    assert torch.isfinite(out).all()
    for i, n in enumerate(lengths.tolist()):
        alone = net(x[i : i + 1, :n], lengths[i : i + 1], domain="xa")
        torch.testing.assert_close(out[i : i + 1], alone)


def test_pooled_input_equals_pooling_the_weighted_frames():
    """The weighted sum is linear: weights on per-layer means == mean of the weighted frames (same weights)."""
    torch.manual_seed(1)
    frames, lengths = _frames(batch=2, length=7), torch.tensor([7, 5])
    seq = WeightedLayers(LAYERS * WIDTH, LAYERS, encoder=MeanPool(WIDTH))
    pooled = WeightedLayers(LAYERS * WIDTH, LAYERS)
    with torch.no_grad():
        seq.logits[SHARED].normal_()
        pooled.logits[SHARED].copy_(seq.logits[SHARED])
    means = torch.stack([frames[i, : int(n)].mean(dim=0) for i, n in enumerate(lengths)])  # (B, LAYERS * WIDTH)
    torch.testing.assert_close(pooled(means), seq(frames, lengths))


def _layer_task(n: int, informative: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled 4-layer features where only layer ``informative`` carries the (binary) label."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, LAYERS, WIDTH, generator=g) * 1.5
    x[:, informative, 0] += 2.0 * (2 * y - 1).float()
    return x.reshape(n, LAYERS * WIDTH), y


def _train(net: WeightedLayers, data: dict[str | None, tuple[torch.Tensor, torch.Tensor]], steps: int = 300) -> None:
    torch.manual_seed(0)
    heads = nn.ModuleDict({str(d): nn.Linear(WIDTH, 2) for d in data})
    opt = torch.optim.Adam([*net.parameters(), *heads.parameters()], lr=0.05)
    for _ in range(steps):
        opt.zero_grad()
        loss = sum(
            nn.functional.cross_entropy(heads[str(d)](net(x, domain=d)), y) for d, (x, y) in data.items()
        )
        loss.backward()
        opt.step()


def test_weights_move_to_the_layer_that_carries_the_label():
    net = WeightedLayers(LAYERS * WIDTH, LAYERS)
    _train(net, {None: _layer_task(256, informative=2, seed=0)})
    w = net.weights().detach()
    assert int(w.argmax()) == 2 and float(w[2]) > 0.5, w


def test_per_domain_weights_find_each_domains_layer():
    net = WeightedLayers(LAYERS * WIDTH, LAYERS, domains=["xa", "xb"])
    _train(net, {"xa": _layer_task(256, informative=1, seed=1), "xb": _layer_task(256, informative=3, seed=2)})
    wa, wb = net.weights("xa").detach(), net.weights("xb").detach()
    assert int(wa.argmax()) == 1 and float(wa[1]) > 0.5, wa
    assert int(wb.argmax()) == 3 and float(wb[3]) > 0.5, wb
    summary = net.summary()["layer_weights"]
    assert set(summary) == {"xa", "xb"} and len(summary["xa"]) == LAYERS
    assert abs(sum(summary["xb"]) - 1.0) < 1e-5


def test_errors():
    with pytest.raises(ModelError, match="in_dim 25 is not a multiple of layers=4"):
        WeightedLayers(25, 4)
    with pytest.raises(ModelError, match="layers must be a positive int"):
        WeightedLayers(24, 0)
    per = WeightedLayers(24, 4, domains=["xa", "xb"])
    with pytest.raises(ModelError, match="need a known domain; got 'zz'; domains: xa, xb"):
        per(torch.randn(2, 24), domain="zz")
    with pytest.raises(ModelError, match="last dimension 12; expected in_dim=24"):
        WeightedLayers(24, 4)(torch.randn(2, 12))
    with pytest.raises(ModelError, match="must be pooled vectors"):
        WeightedLayers(24, 4)(torch.randn(2, 5, 24), torch.tensor([5, 5]))
    with pytest.raises(ModelError, match=r"needs frame-level input .* without lengths"):
        WeightedLayers(24, 4, encoder=MeanPool(6))(torch.randn(2, 5, 24))
