"""The hard concrete distribution (Louizos et al., 2018): learnable gates in ``[0, 1]``.

A hard concrete variable ``xi`` with location ``log kappa``, temperature ``beta`` and
stretch interval ``(gamma, zeta)`` (``gamma < 0``, ``zeta > 1``) is drawn as::

    u ~ U(0, 1)
    s = sigmoid((log u - log(1 - u) + log kappa) / beta)
    s_bar = s * (zeta - gamma) + gamma
    xi = min(1, max(0, s_bar))

so ``xi`` is exactly 0 or exactly 1 with non-zero probability and continuous in between,
and the sample is differentiable in ``log kappa`` (the reparameterisation trick). The
paper writes ``/ beta`` outside the sigmoid; the form above is the correct one.

At evaluation the gate is deterministic: ``min(1, max(0, sigmoid(log kappa) *
(zeta - gamma) + gamma))``. The expected L0 norm of a gate, used as a sparsity penalty,
is ``P(xi != 0) = sigmoid(log kappa - beta * log(-gamma / zeta))``.

Functions work elementwise on a ``log_kappa`` tensor of any shape; :class:`HardConcrete`
holds a learnable ``log_kappa`` and switches between sampling (training) and the
deterministic value (evaluation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from serkit.errors import ModelError

__all__ = [
    "HardConcrete",
    "check_hard_concrete",
    "hard_concrete_deterministic",
    "hard_concrete_prob_nonzero",
    "hard_concrete_sample",
]

#: ``u`` is clamped to ``[EPS, 1 - EPS]`` so that ``log u`` and ``log(1 - u)`` stay finite.
EPS: float = 1e-6


def check_hard_concrete(beta: float, gamma: float, zeta: float, where: str = "hard concrete") -> None:
    """Check the distribution's constants.

    Raises:
        ModelError: ``beta <= 0``, ``gamma >= 0`` or ``zeta <= 1`` (also non-finite values);
            the message names the constant, the expectation and the value.
    """
    for name, value, ok, expected in (
        ("beta", beta, lambda v: v > 0, "> 0"),
        ("gamma", gamma, lambda v: v < 0, "< 0"),
        ("zeta", zeta, lambda v: v > 1, "> 1"),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ModelError(f"{where}: {name} must be a number {expected}; got {value!r}")
        if not math.isfinite(value) or not ok(value):
            raise ModelError(f"{where}: {name} must be finite and {expected}; got {value!r}")


def hard_concrete_sample(
    log_kappa: Tensor,
    beta: float = 0.9,
    gamma: float = -0.1,
    zeta: float = 2.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """One reparameterised sample per element of ``log_kappa``; same shape, values in [0, 1].

    Gradients flow to ``log_kappa`` wherever the sample is strictly between 0 and 1.

    Args:
        log_kappa: location parameters, any shape.
        beta: temperature, ``> 0``.
        gamma: lower end of the stretch interval, ``< 0``.
        zeta: upper end of the stretch interval, ``> 1``.
        generator: optional random generator for ``u``.
    """
    check_hard_concrete(beta, gamma, zeta)
    u = torch.rand(log_kappa.shape, generator=generator, device=log_kappa.device, dtype=log_kappa.dtype).clamp(
        EPS, 1.0 - EPS
    )
    s = torch.sigmoid((torch.log(u) - torch.log1p(-u) + log_kappa) / beta)
    return torch.clamp(s * (zeta - gamma) + gamma, 0.0, 1.0)


def hard_concrete_deterministic(log_kappa: Tensor, gamma: float = -0.1, zeta: float = 2.0) -> Tensor:
    """The evaluation-time gate ``min(1, max(0, sigmoid(log kappa) * (zeta - gamma) + gamma))``."""
    check_hard_concrete(1.0, gamma, zeta)
    return torch.clamp(torch.sigmoid(log_kappa) * (zeta - gamma) + gamma, 0.0, 1.0)


def hard_concrete_prob_nonzero(log_kappa: Tensor, beta: float = 0.9, gamma: float = -0.1, zeta: float = 2.0) -> Tensor:
    """``P(xi != 0) = sigmoid(log kappa - beta * log(-gamma / zeta))``, elementwise.

    Its sum over gates is the expected L0 norm, differentiable in ``log_kappa``.
    """
    check_hard_concrete(beta, gamma, zeta)
    return torch.sigmoid(log_kappa - beta * math.log(-gamma / zeta))


class HardConcrete(nn.Module):
    """A tensor of learnable hard concrete gates.

    ``forward()`` -> gates of shape ``shape``: in training mode a fresh reparameterised
    sample, one per gate and per call (call it once per batch for one connectivity per
    batch); in evaluation mode the deterministic value (equal across calls).

    Args:
        shape: shape of the gate tensor, e.g. ``(K, M, M)``.
        beta: temperature, ``> 0`` (the paper's 0.9).
        gamma: lower stretch end, ``< 0`` (-0.1).
        zeta: upper stretch end, ``> 1`` (2.0; the paper's delta).
        init_log_kappa: initial value of every ``log kappa``. The default 2.0 starts the
            gates mostly open: with the default constants the deterministic gate is 1,
            a sample is exactly 1 with probability about 0.87 and exactly 0 with
            probability about 0.01.
    """

    def __init__(
        self,
        shape: Sequence[int],
        beta: float = 0.9,
        gamma: float = -0.1,
        zeta: float = 2.0,
        init_log_kappa: float = 2.0,
    ) -> None:
        super().__init__()
        check_hard_concrete(beta, gamma, zeta)
        shape = tuple(shape)
        if any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in shape):
            raise ModelError(f"hard concrete: shape must hold positive ints; got {shape!r}")
        if not math.isfinite(init_log_kappa):
            raise ModelError(f"hard concrete: init_log_kappa must be finite; got {init_log_kappa!r}")
        self.beta = float(beta)
        self.gamma = float(gamma)
        self.zeta = float(zeta)
        self.log_kappa = nn.Parameter(torch.full(shape, float(init_log_kappa)))

    def forward(self) -> Tensor:
        if self.training:
            return hard_concrete_sample(self.log_kappa, self.beta, self.gamma, self.zeta)
        return self.deterministic()

    def deterministic(self) -> Tensor:
        """The evaluation-time gates, whatever the mode."""
        return hard_concrete_deterministic(self.log_kappa, self.gamma, self.zeta)

    def prob_nonzero(self) -> Tensor:
        """``P(xi != 0)`` per gate, same shape as ``log_kappa``."""
        return hard_concrete_prob_nonzero(self.log_kappa, self.beta, self.gamma, self.zeta)

    def extra_repr(self) -> str:
        return f"shape={tuple(self.log_kappa.shape)}, beta={self.beta}, gamma={self.gamma}, zeta={self.zeta}"
