"""Fusion ``gated_nas``: per-domain gates over a per-domain NAS layer with hard concrete
connections (the paper's proposed model)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from serkit.builtin.fusion.omoe import OMoEFusion
from serkit.interfaces.fusion import Fusion

if TYPE_CHECKING:
    from torch import nn

__all__ = ["GatedNASFusion"]


class GatedNASFusion(Fusion):
    """Gated NAS: ``sum_i g_k(x)_i u_i`` with ``u_i = sum_j xi^k_ij W^k_ij f_j`` per domain ``k``.

    ``xi^k_ij`` in ``[0, 1]`` are hard concrete connection gates with learnable
    ``log kappa``: sampled once per batch in training, deterministic at evaluation.
    Extras: ``gates`` ``(B, M)``, ``xi`` ``(M, M)`` and, with ``l0_weight > 0``, the L0
    ``penalty``. ``summary()`` gives the deterministic ``xi`` per domain. See
    :class:`serkit.nn.moe.GatedNASNet`.
    """

    name: ClassVar[str] = "gated_nas"

    class Params(OMoEFusion.Params):
        beta: float = Field(0.9, gt=0.0, allow_inf_nan=False, description="Hard concrete temperature (> 0).")
        gamma: float = Field(
            -0.1, lt=0.0, allow_inf_nan=False, description="Lower end of the hard concrete stretch (< 0)."
        )
        zeta: float = Field(
            2.0,
            gt=1.0,
            allow_inf_nan=False,
            description="Upper end of the hard concrete stretch (> 1); the paper calls it delta.",
        )
        l0_weight: float = Field(
            0.0,
            ge=0.0,
            allow_inf_nan=False,
            description="Weight of the L0 penalty sum_ij P(xi_ij != 0) added to the loss; 0 disables it.",
        )
        init_log_kappa: float = Field(
            2.0,
            allow_inf_nan=False,
            description="Initial log kappa of every connection; 2.0 starts them open (deterministic "
            "gate 1, about 87 % of samples exactly 1).",
        )

    params: Params

    def build(self, stream_dims: Mapping[str, int], domains: Sequence[str]) -> nn.Module:
        """A :class:`serkit.nn.moe.GatedNASNet` with one gate and NAS layer per domain."""
        from serkit.nn.moe import GatedNASNet

        p = self.params
        return GatedNASNet(
            stream_dims,
            selector=p.selector,
            domains=domains,
            width=p.width,
            activation=p.activation,
            dropout=p.dropout,
            selector_as_expert=p.selector_as_expert,
            gate_bias=p.gate_bias,
            private_projections=p.private_projections,
            beta=p.beta,
            gamma=p.gamma,
            zeta=p.zeta,
            l0_weight=p.l0_weight,
            init_log_kappa=p.init_log_kappa,
        )
