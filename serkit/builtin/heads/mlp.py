"""Head ``mlp``: a feed-forward classification tower."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import Field, field_validator, model_validator

from serkit.errors import ModelError
from serkit.interfaces.base import ComponentParams
from serkit.interfaces.head import Head
from serkit.nn.activations import ACTIVATIONS, check_activation, layer_plan

if TYPE_CHECKING:
    from torch import nn

__all__ = ["MlpHead"]


class MlpHead(Head):
    """Feed-forward tower: (Linear -> activation -> dropout) per hidden layer, then Linear.

    ``hidden`` and ``activations`` pair up one to one, or a single width is repeated once
    per activation: ``hidden: [256], activations: [mish, gelu]`` is two 256-unit layers,
    the first with Mish, the second with GELU (the paper's English tower). See
    :class:`serkit.nn.MLP`.
    """

    name: ClassVar[str] = "mlp"

    class Params(ComponentParams):
        hidden: tuple[int, ...] = Field(
            (256,),
            description="Hidden-layer widths; a single width is repeated once per activation.",
        )
        activations: tuple[str, ...] = Field(
            ("relu",),
            description="Activation of each hidden layer, in order; one of "
            + ", ".join(ACTIVATIONS)
            + ".",
        )
        dropout: float = Field(
            0.1, ge=0.0, lt=1.0, description="Dropout after each hidden activation."
        )

        @field_validator("hidden")
        @classmethod
        def _positive_widths(cls, value: tuple[int, ...]) -> tuple[int, ...]:
            bad = [w for w in value if w < 1]
            if bad:
                raise ValueError(f"hidden widths must be positive; got {list(value)}")
            return value

        @field_validator("activations")
        @classmethod
        def _known_activations(cls, value: tuple[str, ...]) -> tuple[str, ...]:
            for name in value:
                try:
                    check_activation(name)
                except ModelError as err:
                    raise ValueError(str(err)) from None
            return value

        @model_validator(mode="after")
        def _layers_fit(self) -> MlpHead.Params:
            try:
                layer_plan(self.hidden, self.activations)
            except ModelError as err:
                raise ValueError(str(err)) from None
            return self

    params: Params

    def build(self, in_dim: int, n_classes: int) -> nn.Module:
        """A :class:`serkit.nn.MLP` from ``in_dim`` to ``n_classes`` logits."""
        from serkit.nn.mlp import MLP

        p = self.params
        return MLP(in_dim, n_classes, hidden=p.hidden, activations=p.activations, dropout=p.dropout)
