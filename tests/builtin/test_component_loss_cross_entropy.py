from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError

from serkit.builtin.losses.cross_entropy import CrossEntropyLoss


def test_builds_a_loss_with_the_common_signature() -> None:
    loss = CrossEntropyLoss().build(embedding_dim=8, n_classes=2)
    value = loss(torch.tensor([[0.0, math.log(3.0)]]), torch.tensor([1]), torch.randn(1, 8))
    assert value.item() == pytest.approx(-math.log(0.75), rel=1e-6)
    assert list(loss.parameters()) == []


def test_label_smoothing_is_passed_through() -> None:
    loss = CrossEntropyLoss(label_smoothing=0.5).build(embedding_dim=4, n_classes=2)
    # uniform logits: loss is log 2 whatever the smoothing
    assert loss(torch.zeros(3, 2), torch.tensor([0, 1, 1])).item() == pytest.approx(math.log(2))
    # confident right answer: target (0.75, 0.25)
    logits = torch.tensor([[3.0, 0.0]])
    log_p = torch.log_softmax(logits, 1)[0]
    expected = -(0.75 * log_p[0] + 0.25 * log_p[1]).item()
    assert loss(logits, torch.tensor([0])).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(("value", "message"), [(1.0, "less than 1"), (-0.1, "greater than or")])
def test_params_validation(value: float, message: str) -> None:
    with pytest.raises(ValidationError, match="label_smoothing") as info:
        CrossEntropyLoss.Params(label_smoothing=value)
    assert message in str(info.value)
