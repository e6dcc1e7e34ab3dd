"""Activation functions by name, and how an MLP's ``hidden``/``activations`` become layers.

Importing this module does not import torch (recipe validation uses :func:`layer_plan`
and :func:`check_activation`); :func:`make_activation` imports it when called.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from serkit.errors import ModelError

if TYPE_CHECKING:
    from torch import nn

__all__ = ["ACTIVATIONS", "check_activation", "layer_plan", "make_activation"]

# name -> attribute of torch.nn
_TORCH_CLASSES: dict[str, str] = {
    "elu": "ELU",
    "gelu": "GELU",
    "identity": "Identity",
    "leaky_relu": "LeakyReLU",
    "mish": "Mish",
    "relu": "ReLU",
    "sigmoid": "Sigmoid",
    "silu": "SiLU",
    "tanh": "Tanh",
}

#: Every activation name :func:`make_activation` accepts, sorted.
ACTIVATIONS: tuple[str, ...] = tuple(sorted(_TORCH_CLASSES))


def check_activation(name: str) -> str:
    """Return ``name`` if it is a known activation.

    Raises:
        ModelError: unknown name; the message lists the available ones and the closest.
    """
    if name in _TORCH_CLASSES:
        return name
    from serkit.registry import closest

    msg = f"unknown activation {name!r}; available: {', '.join(ACTIVATIONS)}"
    near = closest(str(name).lower(), list(ACTIVATIONS))
    if near:
        msg += f"; did you mean {near!r}?"
    raise ModelError(msg)


def make_activation(name: str) -> nn.Module:
    """A fresh activation module, e.g. ``make_activation("mish")`` -> ``nn.Mish()``.

    Raises:
        ModelError: unknown name.
    """
    from torch import nn

    return getattr(nn, _TORCH_CLASSES[check_activation(name)])()


def layer_plan(hidden: Sequence[int], activations: Sequence[str]) -> list[tuple[int, str]]:
    """The hidden layers of an MLP as ``(width, activation)`` pairs, in order.

    Two forms are accepted:

    - one activation per hidden layer: ``hidden=[512, 256]``, ``activations=[relu, tanh]``
      -> ``[(512, relu), (256, tanh)]``;
    - a single width repeated once per activation (the paper's towers, "256 units with
      Mish and GELU"): ``hidden=[256]``, ``activations=[mish, gelu]`` ->
      ``[(256, mish), (256, gelu)]``, i.e. two 256-unit layers.

    ``hidden=[]`` with ``activations=[]`` means no hidden layer (a linear classifier).

    Raises:
        ModelError: a width is not a positive integer, an activation is unknown, or the
            two lists do not fit either form.
    """
    hidden = list(hidden)
    activations = list(activations)
    for width in hidden:
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ModelError(f"hidden widths must be positive integers; got {width!r}")
    for name in activations:
        check_activation(name)
    if len(hidden) == len(activations):
        return list(zip(hidden, activations, strict=True))
    if len(hidden) == 1 and activations:
        return [(hidden[0], name) for name in activations]
    raise ModelError(
        "activations must name one activation per hidden layer, or hidden must hold a "
        f"single width that is repeated once per activation; got hidden={hidden} and "
        f"activations={activations}"
    )
