from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from serkit.builtin.encoders.cnn_bilstm_attn import CnnBiLstmAttnEncoder
from serkit.builtin.encoders.mean_pool import MeanPoolEncoder
from serkit.errors import ModelError
from serkit.nn import CnnBiLstmAttn, MeanPool


def test_cnn_bilstm_attn_defaults_are_the_papers_wav2vec_settings() -> None:
    p = CnnBiLstmAttnEncoder().params
    assert (p.channels, p.kernel_sizes, p.lstm_hidden, p.lstm_layers, p.attention_dim) == (
        64,
        (3, 5),
        128,
        1,
        256,
    )
    assert p.dropout == 0.1


def test_cnn_bilstm_attn_builds_the_configured_network() -> None:
    # the paper's MFCC settings
    enc = CnnBiLstmAttnEncoder(
        channels=32, kernel_sizes=[3], lstm_hidden=64, lstm_layers=2, attention_dim=16
    )
    net = enc.build(40)
    assert isinstance(net, CnnBiLstmAttn)
    assert [c.out_channels for c in net.convs] == [32]
    assert net.lstm.hidden_size == 64 and net.lstm.num_layers == 2
    assert net.out_dim == 16
    assert net(torch.randn(2, 9, 40), torch.tensor([9, 4])).shape == (2, 16)


def test_cnn_bilstm_attn_build_rejects_a_bad_in_dim() -> None:
    with pytest.raises(ModelError, match=r"in_dim must be a positive int; got 0"):
        CnnBiLstmAttnEncoder().build(0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kernel_sizes": []}, "kernel_sizes must hold at least one kernel width"),
        (
            {"kernel_sizes": [3, 4]},
            "kernel_sizes must be positive odd integers (same padding keeps the sequence "
            "length); got [3, 4]",
        ),
        ({"kernel_sizes": [-1]}, "kernel_sizes must be positive odd integers"),
        ({"channels": 0}, "Input should be greater than 0"),
        ({"lstm_layers": -2}, "Input should be greater than 0"),
        ({"attention_dim": 0}, "Input should be greater than 0"),
        ({"dropout": 1.0}, "Input should be less than 1"),
        ({"dropout": -0.5}, "Input should be greater than or equal to 0"),
        ({"heads": 4}, "Extra inputs are not permitted"),
    ],
)
def test_cnn_bilstm_attn_params_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        CnnBiLstmAttnEncoder.Params(**kwargs)
    assert message in str(info.value)
    assert next(iter(kwargs)) in str(info.value)


def test_mean_pool_builds() -> None:
    net = MeanPoolEncoder(stats=True).build(5)
    assert isinstance(net, MeanPool) and net.out_dim == 10
    assert MeanPoolEncoder().build(5).out_dim == 5
    x = torch.tensor([[[1.0], [3.0], [100.0]]])
    assert MeanPoolEncoder().build(1)(x, torch.tensor([2])).item() == 2.0
