"""The hard concrete distribution against its analytic properties."""

from __future__ import annotations

import math

import pytest
import torch

from serkit.errors import ModelError
from serkit.nn.hard_concrete import (
    HardConcrete,
    check_hard_concrete,
    hard_concrete_deterministic,
    hard_concrete_prob_nonzero,
    hard_concrete_sample,
)


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def logit(t: float) -> float:
    return math.log(t / (1.0 - t))


def cdf_s(t: float, log_kappa: float, beta: float) -> float:
    """P(s < t) for s = sigmoid((L + log kappa) / beta), L standard logistic."""
    return sigmoid(beta * logit(t) - log_kappa)


def analytic(log_kappa: float, beta: float, gamma: float, zeta: float) -> tuple[float, float, float]:
    """(P(xi = 0), P(xi = 1), E[xi]); the mean is the integral of P(xi > x) over [0, 1]."""
    p0 = cdf_s(-gamma / (zeta - gamma), log_kappa, beta)
    p1 = 1.0 - cdf_s((1.0 - gamma) / (zeta - gamma), log_kappa, beta)
    n = 20_000
    xs = [(i + 0.5) / n for i in range(n)]  # midpoint rule
    mean = sum(1.0 - cdf_s((x - gamma) / (zeta - gamma), log_kappa, beta) for x in xs) / n
    return p0, p1, mean


CASES = [
    (0.0, 0.9, -0.1, 2.0),
    (-1.0, 0.9, -0.1, 2.0),
    (1.0, 0.9, -0.1, 2.0),
    (0.3, 2.0 / 3.0, -0.2, 1.2),
]


@pytest.mark.parametrize(("log_kappa", "beta", "gamma", "zeta"), CASES)
def test_monte_carlo_matches_the_analytic_distribution(
    log_kappa: float, beta: float, gamma: float, zeta: float
) -> None:
    generator = torch.Generator().manual_seed(0)
    xi = hard_concrete_sample(torch.full((200_000,), log_kappa), beta, gamma, zeta, generator=generator)
    p0, p1, mean = analytic(log_kappa, beta, gamma, zeta)
    assert 0.02 < p0 and 0.02 < p1  # every case has mass at both ends
    assert float((xi == 0).float().mean()) == pytest.approx(p0, abs=0.01)
    assert float((xi == 1).float().mean()) == pytest.approx(p1, abs=0.01)
    assert float(xi.mean()) == pytest.approx(mean, abs=0.01)
    assert float(xi.min()) == 0.0 and float(xi.max()) == 1.0


def test_p_nonzero_closed_form_agrees_with_the_cdf_and_a_hand_value() -> None:
    log_kappa = torch.tensor([-2.0, 0.0, 2.0])
    got = hard_concrete_prob_nonzero(log_kappa, 0.9, -0.1, 2.0)
    expected = [1.0 - analytic(float(lk), 0.9, -0.1, 2.0)[0] for lk in log_kappa]
    assert got.tolist() == pytest.approx(expected, abs=1e-6)
    # by hand: sigmoid(0 - 0.9 * log(0.1 / 2)) = sigmoid(2.69616) = 0.93680
    assert float(got[1]) == pytest.approx(0.93680, abs=1e-5)


def test_deterministic_gate_is_the_clamped_stretched_sigmoid() -> None:
    log_kappa = torch.tensor([-3.0, -1.0, 0.0, 0.09, 2.0])
    got = hard_concrete_deterministic(log_kappa, -0.1, 2.0)
    # sigmoid(-3) * 2.1 - 0.1 = -0.00004 -> 0; sigmoid(0) * 2.1 - 0.1 = 0.95; 2.0 -> 1.749 -> 1
    expected = [min(1.0, max(0.0, sigmoid(float(lk)) * 2.1 - 0.1)) for lk in log_kappa]
    assert got.tolist() == pytest.approx(expected, abs=1e-6)
    assert got[0] == 0.0 and got[2] == pytest.approx(0.95) and got[4] == 1.0


def test_sample_is_differentiable_in_log_kappa_and_matches_finite_differences() -> None:
    log_kappa = torch.tensor([-0.5, 0.0, 0.4, 1.0], dtype=torch.float64, requires_grad=True)
    weights = torch.tensor([1.0, -2.0, 3.0, 0.5], dtype=torch.float64)
    xi = hard_concrete_sample(log_kappa, generator=torch.Generator().manual_seed(3))
    (xi * weights).sum().backward()
    assert log_kappa.grad is not None and log_kappa.grad.abs().sum() > 0
    h = 1e-6
    for i in range(4):
        shifted = log_kappa.detach().clone()
        shifted[i] += h
        up = hard_concrete_sample(shifted, generator=torch.Generator().manual_seed(3))
        numeric = float(((up - xi.detach()) * weights).sum() / h)
        assert float(log_kappa.grad[i]) == pytest.approx(numeric, rel=1e-3, abs=1e-6)


def test_uniform_noise_at_zero_or_one_gives_finite_gates(monkeypatch: pytest.MonkeyPatch) -> None:
    real_rand = torch.rand

    def extreme(shape: tuple[int, ...], **kwargs: object) -> torch.Tensor:
        out = real_rand(shape, **kwargs)
        flat = out.view(-1)
        flat[0::2], flat[1::2] = 0.0, 1.0
        return out

    monkeypatch.setattr(torch, "rand", extreme)
    log_kappa = torch.zeros(4, requires_grad=True)
    xi = hard_concrete_sample(log_kappa)
    assert xi.tolist() == [0.0, 1.0, 0.0, 1.0]
    xi.sum().backward()
    assert torch.isfinite(log_kappa.grad).all()


def test_module_samples_in_training_and_is_deterministic_in_eval() -> None:
    torch.manual_seed(0)
    gates = HardConcrete((3, 4, 4), init_log_kappa=0.0)
    assert gates.log_kappa.shape == (3, 4, 4) and gates.log_kappa.requires_grad
    first, second = gates(), gates()
    assert first.shape == (3, 4, 4) and not torch.equal(first, second)
    assert ((first >= 0) & (first <= 1)).all()
    gates.eval()
    assert torch.equal(gates(), gates())
    assert torch.allclose(gates(), torch.full((3, 4, 4), 0.95))
    assert torch.allclose(gates.prob_nonzero(), torch.full((3, 4, 4), 0.936800), atol=1e-6)


def test_default_init_starts_the_gates_mostly_open() -> None:
    gates = HardConcrete((100_000,))
    assert torch.equal(gates.deterministic(), torch.ones(100_000))
    torch.manual_seed(0)
    sample = gates()
    p0, p1, _ = analytic(2.0, 0.9, -0.1, 2.0)
    assert float((sample == 1).float().mean()) == pytest.approx(p1, abs=0.01) and p1 > 0.85
    assert float((sample == 0).float().mean()) < 0.02 and p0 < 0.01


def test_penalty_gradient_lowers_log_kappa() -> None:
    gates = HardConcrete((2,), init_log_kappa=0.0)
    gates.prob_nonzero().sum().backward()
    p = sigmoid(0.0 - 0.9 * math.log(0.1 / 2.0))
    assert gates.log_kappa.grad.tolist() == pytest.approx([p * (1 - p)] * 2, abs=1e-6)


@pytest.mark.parametrize(
    ("beta", "gamma", "zeta", "message"),
    [
        (0.0, -0.1, 2.0, "hard concrete: beta must be finite and > 0; got 0.0"),
        (0.9, 0.0, 2.0, "hard concrete: gamma must be finite and < 0; got 0.0"),
        (0.9, -0.1, 1.0, "hard concrete: zeta must be finite and > 1; got 1.0"),
        (0.9, -0.1, 0.5, "hard concrete: zeta must be finite and > 1; got 0.5"),
        (0.9, -0.1, math.inf, "hard concrete: zeta must be finite and > 1; got inf"),
        (0.9, -0.1, "2", "hard concrete: zeta must be a number > 1; got '2'"),
    ],
)
def test_impossible_constants_are_rejected(beta: float, gamma: float, zeta: float, message: str) -> None:
    with pytest.raises(ModelError) as info:
        check_hard_concrete(beta, gamma, zeta)
    assert str(info.value) == message
    with pytest.raises(ModelError):
        HardConcrete((2,), beta=beta, gamma=gamma, zeta=zeta)


def test_module_rejects_a_bad_shape_or_init() -> None:
    with pytest.raises(ModelError, match=r"hard concrete: shape must hold positive ints; got \(2, 0\)"):
        HardConcrete((2, 0))
    with pytest.raises(ModelError, match="hard concrete: init_log_kappa must be finite; got nan"):
        HardConcrete((2,), init_log_kappa=math.nan)
