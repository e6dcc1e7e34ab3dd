"""train.precision: autocast dtypes, the fp16 scaler, and learning in bf16 on the CPU."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from serkit.engine.precision import Precision


@pytest.mark.parametrize(("name", "dtype"), [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_autocast_dtype(name: str, dtype: torch.dtype) -> None:
    amp = Precision(name, torch.device("cpu"))
    lin = nn.Linear(4, 2)
    with amp.autocast():
        out = lin(torch.randn(3, 4))
    assert out.dtype == dtype
    assert amp.state_dict() is None


@pytest.mark.parametrize("name", ["fp32", "bf16", "fp16"])
def test_each_precision_learns_a_linear_task(name: str) -> None:
    torch.manual_seed(0)
    x = torch.randn(256, 8)
    y = (x[:, 0] > 0).long()
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
    amp = Precision(name, torch.device("cpu"))
    for _ in range(100):
        with amp.autocast():
            loss = nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        amp.step(loss, opt, list(net.parameters()), grad_clip=1.0)
    accuracy = (net(x).argmax(1) == y).float().mean()
    assert accuracy > 0.9


def test_fp16_keeps_its_scaler_state_for_resume() -> None:
    amp = Precision("fp16", torch.device("cpu"))
    state = amp.state_dict()
    assert state is not None and state["scale"] == 65536.0
    again = Precision("fp16", torch.device("cpu"))
    again.load_state_dict({**state, "scale": 1024.0})
    assert again.state_dict()["scale"] == 1024.0


def test_unknown_precision() -> None:
    with pytest.raises(ValueError, match=r"precision must be one of \['fp32', 'bf16', 'fp16'\]; got 'fp8'"):
        Precision("fp8", torch.device("cpu"))
