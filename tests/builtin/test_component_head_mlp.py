from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from serkit.builtin.heads.mlp import MlpHead
from serkit.nn import MLP


def test_paper_towers() -> None:
    en = MlpHead(hidden=[256], activations=["mish", "gelu"], dropout=0.1).build(300, 4)
    de = MlpHead(hidden=[512], activations=["tanh", "relu"]).build(300, 7)
    assert isinstance(en, MLP) and en.plan == [(256, "mish"), (256, "gelu")]
    assert de.plan == [(512, "tanh"), (512, "relu")]
    assert [type(m).__name__ for m in de.layers] == [
        "Linear",
        "Tanh",
        "Dropout",
        "Linear",
        "ReLU",
        "Dropout",
        "Linear",
    ]
    assert de(torch.randn(2, 300)).shape == (2, 7)
    assert all(m.p == 0.1 for m in en.layers if isinstance(m, nn.Dropout))


def test_defaults() -> None:
    p = MlpHead().params
    assert (p.hidden, p.activations, p.dropout) == ((256,), ("relu",), 0.1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"hidden": [256, 128], "activations": ["relu"]},
            "activations must name one activation per hidden layer, or hidden must hold a "
            "single width that is repeated once per activation; got hidden=[256, 128] and "
            "activations=['relu']",
        ),
        (
            {"hidden": [256], "activations": []},
            "got hidden=[256] and activations=[]",
        ),
        (
            {"activations": ["relu", "swish"]},
            "unknown activation 'swish'; available: elu, gelu, identity, leaky_relu, mish, "
            "relu, sigmoid, silu, tanh",
        ),
        ({"hidden": [0]}, "hidden widths must be positive; got [0]"),
        ({"dropout": 1.5}, "Input should be less than 1"),
    ],
)
def test_params_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        MlpHead.Params(**kwargs)
    assert message in str(info.value)
