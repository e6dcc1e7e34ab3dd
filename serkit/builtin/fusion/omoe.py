"""Fusion ``omoe``: one softmax gate, shared by all domains, weighs the projected streams."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from serkit.builtin.fusion.shared_bottom import SharedBottomFusion
from serkit.interfaces.fusion import Fusion

if TYPE_CHECKING:
    from torch import nn

__all__ = ["OMoEFusion"]


class OMoEFusion(Fusion):
    """One-gate mixture of experts: ``sum_j g_j(x) f_j`` with ``g(x) = softmax(W x + b)``.

    ``x`` is the selector stream's vector (the paper's GE2E embedding); the same gate
    serves every domain. Extras: ``gates`` ``(B, M)``. See :class:`serkit.nn.moe.OMoENet`.
    """

    name: ClassVar[str] = "omoe"

    class Params(SharedBottomFusion.Params):
        selector: str = Field("ge2e", min_length=1, description="Stream id whose vector is the input of the gate(s).")
        selector_as_expert: bool = Field(
            True, description="Whether the selector stream is also one of the mixed streams (experts)."
        )
        gate_bias: bool = Field(
            True, description="Whether the gate has a bias: softmax(W x + b); the paper writes softmax(W x)."
        )
        private_projections: bool = Field(
            False,
            description="Give each domain its own projection of every stream, added to the shared one and "
            "starting at zero: a language keeps apart what its own data pull away from the shared projection "
            "(weight decay pulls it back).",
        )

    params: Params

    def build(self, stream_dims: Mapping[str, int], domains: Sequence[str]) -> nn.Module:
        """A :class:`serkit.nn.moe.OMoENet`; a selector that is not a stream is a ModelError."""
        from serkit.nn.moe import OMoENet

        p = self.params
        return OMoENet(
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
