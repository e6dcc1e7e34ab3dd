from __future__ import annotations

import math

import pytest
import torch

from serkit.errors import ModelError
from serkit.nn import CrossEntropy


def test_hand_computed_value() -> None:
    logits = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    targets = torch.tensor([2, 0])
    z = math.exp(1) + math.exp(2) + math.exp(3)
    expected = (-(3 - math.log(z)) + math.log(3)) / 2
    loss = CrossEntropy(3)(logits, targets, torch.zeros(2, 5))
    assert loss.shape == ()
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_label_smoothing_hand_computed() -> None:
    # one sample, C = 2, s = 0.2: target distribution (0.9, 0.1)
    logits = torch.tensor([[2.0, 0.0]])
    log_p = torch.log_softmax(logits, dim=1)[0].tolist()
    expected = -(0.9 * log_p[0] + 0.1 * log_p[1])
    loss = CrossEntropy(2, label_smoothing=0.2)(logits, torch.tensor([0]))
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_errors() -> None:
    with pytest.raises(ModelError, match=r"^cross_entropy: logits must be \(B, 3\); got shape"):
        CrossEntropy(3)(torch.zeros(2, 4), torch.tensor([0, 1]))
    with pytest.raises(ModelError, match=r"^cross_entropy: targets must be \(B,\) = \(2,\); got"):
        CrossEntropy(3)(torch.zeros(2, 3), torch.tensor([0, 1, 2]))
    with pytest.raises(ModelError, match=r"label_smoothing must be in \[0, 1\); got 1.0"):
        CrossEntropy(3, label_smoothing=1.0)
