from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from serkit.builtin.optimizers.adamw import AdamWOptimizer
from serkit.errors import ModelError


def test_defaults_are_the_papers() -> None:
    p = AdamWOptimizer().params
    assert (p.lr, p.betas, p.eps, p.weight_decay) == (1e-3, (0.9, 0.999), 1e-8, 1e-5)


def test_lr_scale_sets_each_groups_lr_and_is_kept() -> None:
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(3))
    opt = AdamWOptimizer(lr=0.1).build(
        [{"params": [a]}, {"params": [b], "lr_scale": 0.01, "name": "ge2e"}]
    )
    assert isinstance(opt, torch.optim.AdamW)
    g0, g1 = opt.param_groups
    assert g0["lr"] == pytest.approx(0.1) and g0["lr_scale"] == 1.0
    assert g1["lr"] == pytest.approx(0.001) and g1["lr_scale"] == 0.01
    assert g1["name"] == "ge2e"
    assert g1["betas"] == (0.9, 0.999) and g1["weight_decay"] == 1e-5


def test_first_step_matches_a_hand_computation() -> None:
    # first AdamW step: p <- p * (1 - lr * wd) - lr * m_hat / (sqrt(v_hat) + eps),
    # with m_hat = g and v_hat = g^2 after bias correction, so the update is lr * sign(g)
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = AdamWOptimizer(lr=0.1, weight_decay=0.01).build([{"params": [p], "lr_scale": 0.5}])
    p.grad = torch.tensor([0.5, -4.0])
    opt.step()
    lr = 0.05
    expected = [1.0 * (1 - lr * 0.01) - lr, -2.0 * (1 - lr * 0.01) + lr]
    assert p.detach().tolist() == pytest.approx(expected, rel=1e-6)


def test_group_errors() -> None:
    p = torch.nn.Parameter(torch.zeros(1))
    opt = AdamWOptimizer()
    with pytest.raises(ModelError, match=r"group 0 must be a dict with 'params'; got Parameter"):
        opt.build([p])  # type: ignore[list-item]
    with pytest.raises(ModelError, match=r"parameter group 1 sets 'lr'; use 'lr_scale'"):
        opt.build([{"params": [p]}, {"params": [], "lr": 0.1}])
    with pytest.raises(ModelError, match=r"parameter group 0 has lr_scale 0; expected a positive"):
        opt.build([{"params": [p], "lr_scale": 0}])
    with pytest.raises(ModelError, match=r"no parameters to optimise"):
        opt.build([{"params": []}])
    with pytest.raises(ModelError, match=r"no parameters to optimise"):
        opt.build([])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": 0.0}, "Input should be greater than 0"),
        ({"eps": -1.0}, "Input should be greater than 0"),
        ({"weight_decay": -1e-5}, "Input should be greater than or equal to 0"),
        ({"betas": [0.9, 1.0]}, "betas must each be in [0, 1); got [0.9, 1.0]"),
        ({"betas": [0.9]}, "betas"),
    ],
)
def test_params_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        AdamWOptimizer.Params(**kwargs)
    assert message in str(info.value)


def test_yaml_style_betas_list_is_accepted() -> None:
    assert AdamWOptimizer.Params(betas=[0.8, 0.99]).betas == (0.8, 0.99)
