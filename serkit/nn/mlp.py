"""The feed-forward classification tower."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from serkit.errors import ModelError
from serkit.nn.activations import layer_plan, make_activation

__all__ = ["MLP"]


class MLP(nn.Module):
    """``(B, in_dim)`` -> logits ``(B, n_classes)``.

    Each hidden layer is ``Linear -> activation -> Dropout``; a final ``Linear`` gives the
    logits. ``hidden`` and ``activations`` follow :func:`serkit.nn.activations.layer_plan`:
    one activation per width, or a single width repeated once per activation
    (``hidden=[256], activations=[mish, gelu]`` is ``Linear(in, 256) -> Mish -> Dropout ->
    Linear(256, 256) -> GELU -> Dropout -> Linear(256, n_classes)``).

    Args:
        in_dim: input width.
        n_classes: number of logits.
        hidden: hidden-layer widths.
        activations: activation names (see :data:`serkit.nn.activations.ACTIVATIONS`).
        dropout: dropout probability after each hidden activation, in ``[0, 1)``.
    """

    def __init__(
        self,
        in_dim: int,
        n_classes: int,
        hidden: Sequence[int] = (256,),
        activations: Sequence[str] = ("relu",),
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        for field_name, value in (("in_dim", in_dim), ("n_classes", n_classes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ModelError(f"mlp: {field_name} must be a positive int; got {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ModelError(f"mlp: dropout must be in [0, 1); got {dropout!r}")
        try:
            self.plan: list[tuple[int, str]] = layer_plan(hidden, activations)
        except ModelError as err:
            raise ModelError(f"mlp: {err}") from err
        layers: list[nn.Module] = []
        width = in_dim
        for units, activation in self.plan:
            layers += [nn.Linear(width, units), make_activation(activation), nn.Dropout(dropout)]
            width = units
        layers.append(nn.Linear(width, n_classes))
        self.layers = nn.Sequential(*layers)
        self.in_dim = in_dim
        self.out_dim: int = n_classes

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.shape[1] != self.in_dim:
            raise ModelError(f"mlp: input must be (B, {self.in_dim}); got shape {tuple(x.shape)}")
        return self.layers(x)
