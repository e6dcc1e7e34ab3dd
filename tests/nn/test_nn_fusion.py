from __future__ import annotations

import pytest
import torch

import serkit.nn
from serkit.errors import ModelError
from serkit.nn import ConcatFusionNet, FusionOutput


def test_concatenates_in_stream_dims_order() -> None:
    net = ConcatFusionNet({"b": 2, "a": 1, "c": 3}, domains=["en", "de"])
    streams = {  # given in another order than stream_dims
        "a": torch.tensor([[10.0], [20.0]]),
        "c": torch.tensor([[7.0, 8.0, 9.0], [7.5, 8.5, 9.5]]),
        "b": torch.tensor([[1.0, 2.0], [3.0, 4.0]]),
    }
    out = net(streams, "de")
    assert isinstance(out, FusionOutput)
    assert net.out_dim == 6
    assert out.representation.tolist() == [
        [1.0, 2.0, 10.0, 7.0, 8.0, 9.0],
        [3.0, 4.0, 20.0, 7.5, 8.5, 9.5],
    ]
    assert out.extras == {}
    assert list(net.parameters()) == []


def test_gradient_flows_back_to_each_stream() -> None:
    net = ConcatFusionNet({"x": 2, "y": 1})
    x = torch.randn(3, 2, requires_grad=True)
    y = torch.randn(3, 1, requires_grad=True)
    (net({"x": x, "y": y}, "any").representation * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert x.grad.tolist() == [[1.0, 2.0]] * 3
    assert y.grad.tolist() == [[3.0]] * 3


def test_fusion_output_extras_are_not_shared() -> None:
    a, b = FusionOutput(torch.zeros(1, 1)), FusionOutput(torch.zeros(1, 1))
    a.extras["gate"] = torch.ones(1)
    assert b.extras == {}
    assert serkit.nn.FusionOutput is FusionOutput


@pytest.mark.parametrize(
    ("streams", "domain", "message"),
    [
        ({"a": torch.zeros(2, 1)}, "en", "concat fusion: missing stream(s) 'b'; expected 'a', 'b'"),
        (
            {"a": torch.zeros(2, 1), "b": torch.zeros(2, 2), "z": torch.zeros(2, 1)},
            "en",
            "concat fusion: unexpected stream(s) 'z'; expected 'a', 'b'",
        ),
        (
            {"a": torch.zeros(2, 1), "b": torch.zeros(2, 3)},
            "en",
            "concat fusion: stream 'b' must be (B, 2); got shape (2, 3)",
        ),
        (
            {"a": torch.zeros(2, 1), "b": torch.zeros(2, 2, 1)},
            "en",
            "concat fusion: stream 'b' must be (B, 2); got shape (2, 2, 1)",
        ),
        (
            {"a": torch.zeros(2, 1), "b": torch.zeros(3, 2)},
            "en",
            "concat fusion: stream 'b' has batch size 3; the first stream has 2",
        ),
        (
            {"a": torch.zeros(2, 1), "b": torch.zeros(2, 2)},
            "fr",
            "concat fusion: unknown domain 'fr'; known: en, de",
        ),
    ],
)
def test_errors(streams: dict[str, torch.Tensor], domain: str, message: str) -> None:
    net = ConcatFusionNet({"a": 1, "b": 2}, domains=("en", "de"))
    with pytest.raises(ModelError) as info:
        net(streams, domain)
    assert str(info.value) == message


def test_constructor_errors() -> None:
    with pytest.raises(ModelError, match="stream_dims is empty"):
        ConcatFusionNet({})
    with pytest.raises(ModelError, match=r"stream 'a' has width 0; expected a positive int"):
        ConcatFusionNet({"a": 0})
