from __future__ import annotations

import pytest
import torch
from torch import nn

from serkit.errors import ModelError
from serkit.nn import ACTIVATIONS, MLP, layer_plan, make_activation


def structure(net: MLP) -> list[str]:
    out = []
    for m in net.layers:
        if isinstance(m, nn.Linear):
            out.append(f"Linear({m.in_features},{m.out_features})")
        else:
            out.append(type(m).__name__)
    return out


def test_one_activation_per_layer() -> None:
    net = MLP(10, 4, hidden=[8, 6], activations=["tanh", "relu"], dropout=0.2)
    assert structure(net) == [
        "Linear(10,8)",
        "Tanh",
        "Dropout",
        "Linear(8,6)",
        "ReLU",
        "Dropout",
        "Linear(6,4)",
    ]
    assert all(m.p == 0.2 for m in net.layers if isinstance(m, nn.Dropout))
    assert net.out_dim == 4


def test_single_width_is_repeated_once_per_activation() -> None:
    # the paper's English tower: "256 units with Mish and GELU"
    net = MLP(12, 4, hidden=[256], activations=["mish", "gelu"])
    assert structure(net) == [
        "Linear(12,256)",
        "Mish",
        "Dropout",
        "Linear(256,256)",
        "GELU",
        "Dropout",
        "Linear(256,4)",
    ]
    assert net.plan == [(256, "mish"), (256, "gelu")]


def test_no_hidden_layer_is_a_linear_classifier() -> None:
    net = MLP(5, 3, hidden=[], activations=[])
    assert structure(net) == ["Linear(5,3)"]


def test_forward_shape_and_eval_is_deterministic() -> None:
    net = MLP(6, 3, hidden=[16], activations=["silu"], dropout=0.5).eval()
    x = torch.randn(7, 6)
    assert net(x).shape == (7, 3)
    torch.testing.assert_close(net(x), net(x))


def test_layer_plan_mismatch_message() -> None:
    with pytest.raises(ModelError) as info:
        layer_plan([8, 4], ["relu"])
    assert str(info.value) == (
        "activations must name one activation per hidden layer, or hidden must hold a single "
        "width that is repeated once per activation; got hidden=[8, 4] and activations=['relu']"
    )
    with pytest.raises(ModelError, match=r"^mlp: activations must name one activation"):
        MLP(3, 2, hidden=[4], activations=[])


def test_every_activation_name_builds_the_right_module() -> None:
    x = torch.linspace(-2, 2, 9)
    expected = {
        "elu": torch.nn.functional.elu(x),
        "gelu": torch.nn.functional.gelu(x),
        "identity": x,
        "leaky_relu": torch.nn.functional.leaky_relu(x),
        "mish": x * torch.tanh(torch.nn.functional.softplus(x)),
        "relu": x.clamp_min(0),
        "sigmoid": 1 / (1 + torch.exp(-x)),
        "silu": x / (1 + torch.exp(-x)),
        "tanh": torch.tanh(x),
    }
    assert set(ACTIVATIONS) == set(expected)
    for name, want in expected.items():
        torch.testing.assert_close(make_activation(name)(x), want, msg=name)


def test_unknown_activation_lists_the_available_ones() -> None:
    with pytest.raises(ModelError) as info:
        make_activation("gelux")
    assert str(info.value) == (
        "unknown activation 'gelux'; available: elu, gelu, identity, leaky_relu, mish, relu, "
        "sigmoid, silu, tanh; did you mean 'gelu'?"
    )


def test_constructor_errors() -> None:
    with pytest.raises(ModelError, match=r"^mlp: n_classes must be a positive int; got 0$"):
        MLP(3, 0)
    with pytest.raises(ModelError, match=r"^mlp: dropout must be in \[0, 1\); got -0.1$"):
        MLP(3, 2, dropout=-0.1)
    with pytest.raises(ModelError, match=r"^mlp: input must be \(B, 3\); got shape \(2, 4\)$"):
        MLP(3, 2)(torch.zeros(2, 4))
