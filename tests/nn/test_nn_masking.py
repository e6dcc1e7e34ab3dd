from __future__ import annotations

import math

import pytest
import torch

from serkit.errors import ModelError
from serkit.nn.masking import (
    check_lengths,
    lengths_to_mask,
    masked_mean,
    masked_softmax,
    masked_std,
    zero_padding,
)


def test_lengths_to_mask_hand_example() -> None:
    mask = lengths_to_mask(torch.tensor([1, 3, 2]))
    assert mask.tolist() == [
        [True, False, False],
        [True, True, True],
        [True, True, False],
    ]
    assert lengths_to_mask(torch.tensor([2]), max_len=4).tolist() == [[True, True, False, False]]


def test_zero_padding_removes_nan_and_inf() -> None:
    x = torch.tensor([[[1.0], [float("nan")], [float("inf")]]])
    out = zero_padding(x, lengths_to_mask(torch.tensor([1]), 3))
    assert out.flatten().tolist() == [1.0, 0.0, 0.0]


def test_masked_mean_and_std_hand_computed() -> None:
    # row 0: valid [1, 3] -> mean 2, population std 1; row 1: valid [2, 4, 9] -> mean 5,
    # std sqrt(((2-5)^2 + (4-5)^2 + (9-5)^2) / 3) = sqrt(26 / 3)
    x = torch.tensor([[[1.0], [3.0], [float("nan")]], [[2.0], [4.0], [9.0]]])
    mask = lengths_to_mask(torch.tensor([2, 3]), 3)
    assert masked_mean(x, mask).flatten().tolist() == pytest.approx([2.0, 5.0])
    assert masked_std(x, mask).flatten().tolist() == pytest.approx([1.0, math.sqrt(26 / 3)])


def test_masked_std_of_constant_sequence_has_finite_gradient() -> None:
    x = torch.ones(1, 4, 2, requires_grad=True)
    std = masked_std(x, lengths_to_mask(torch.tensor([4]), 4))
    std.sum().backward()
    assert std.detach().max().item() == pytest.approx(1e-6)
    assert torch.isfinite(x.grad).all()


def test_masked_softmax_gives_zero_weight_to_padding() -> None:
    scores = torch.tensor([[0.0, math.log(3.0), 100.0]])
    weights = masked_softmax(scores, lengths_to_mask(torch.tensor([2]), 3))
    assert weights.tolist()[0] == pytest.approx([0.25, 0.75, 0.0])


@pytest.mark.parametrize(
    ("x", "lengths", "message"),
    [
        (torch.zeros(2, 3), torch.tensor([1, 1]), "net: x must be (B, L, D); got shape (2, 3)"),
        (
            torch.zeros(2, 3, 4),
            torch.tensor([1, 1]),
            "net: x has feature dimension 4; expected in_dim=5",
        ),
        (
            torch.zeros(2, 3, 5),
            torch.tensor([1, 1, 1]),
            "net: lengths must be (B,) = (2,); got shape (3,)",
        ),
        (
            torch.zeros(2, 3, 5),
            torch.tensor([1.0, 2.0]),
            "net: lengths must be an integer tensor; got torch.float32",
        ),
        (
            torch.zeros(2, 3, 5),
            torch.tensor([0, 2]),
            "net: every length must be in [1, L=3]; got min 0, max 2",
        ),
        (
            torch.zeros(2, 3, 5),
            torch.tensor([1, 4]),
            "net: every length must be in [1, L=3]; got min 1, max 4",
        ),
    ],
)
def test_check_lengths_messages(x: torch.Tensor, lengths: torch.Tensor, message: str) -> None:
    with pytest.raises(ModelError) as info:
        check_lengths(x, lengths, "net", in_dim=5)
    assert str(info.value) == message
