"""Fusion ``mmoe``: one softmax gate per domain weighs the projected streams."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar

from serkit.builtin.fusion.omoe import OMoEFusion
from serkit.interfaces.fusion import Fusion

if TYPE_CHECKING:
    from torch import nn

__all__ = ["MMoEFusion"]


class MMoEFusion(Fusion):
    """Multi-gate mixture of experts: ``sum_j g_k(x)_j f_j``, one gate ``g_k`` per domain ``k``.

    ``g_k(x) = softmax(W_k x + b_k)`` on the selector stream's vector. Extras: ``gates``
    ``(B, M)`` of the batch's domain. See :class:`serkit.nn.moe.MMoENet`.
    """

    name: ClassVar[str] = "mmoe"

    class Params(OMoEFusion.Params):
        pass

    params: Params

    def build(self, stream_dims: Mapping[str, int], domains: Sequence[str]) -> nn.Module:
        """A :class:`serkit.nn.moe.MMoENet` with one gate per domain of ``domains``."""
        from serkit.nn.moe import MMoENet

        p = self.params
        return MMoENet(
            stream_dims,
            selector=p.selector,
            domains=domains,
            width=p.width,
            activation=p.activation,
            dropout=p.dropout,
            selector_as_expert=p.selector_as_expert,
            gate_bias=p.gate_bias,
            private_projections=p.private_projections,
        )
