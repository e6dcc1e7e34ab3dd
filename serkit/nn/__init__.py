"""Plain torch networks behind serkit's built-in components.

Every network here is an ``nn.Module`` taking plain keyword arguments, so it can be used
without the registry or a recipe. Importing :mod:`serkit.nn` itself is light: the names
below are loaded from their submodules (which import torch) on first access.

- :class:`CnnBiLstmAttn`: the paper's sequence encoder, ``(B, L, d) -> (B, attention_dim)``
- :class:`MeanPool`: masked mean (optionally mean and std) pooling, ``(B, L, d) -> (B, d)``
- :class:`StatsPool`: mean and std of the frames and of their deltas, ``(B, L, d) -> (B, 2d(1 + deltas))``
- :class:`ConcatFusionNet` and :class:`FusionOutput`: stream concatenation
- :class:`MLP`: the classification tower, ``(B, in_dim) -> (B, n_classes)``
- :class:`CrossEntropy`: the main loss on logits
- :mod:`serkit.nn.masking`: padding-mask helpers; :mod:`serkit.nn.activations`: the
  activation table
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from serkit.nn.activations import ACTIVATIONS, layer_plan, make_activation
    from serkit.nn.cnn_bilstm_attn import CnnBiLstmAttn
    from serkit.nn.cross_entropy import CrossEntropy
    from serkit.nn.fusion import ConcatFusionNet, FusionOutput
    from serkit.nn.masking import (
        check_lengths,
        lengths_to_mask,
        masked_mean,
        masked_softmax,
        masked_std,
        zero_padding,
    )
    from serkit.nn.mlp import MLP
    from serkit.nn.pooling import MeanPool
    from serkit.nn.stats_pool import StatsPool

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "CnnBiLstmAttn",
    "ConcatFusionNet",
    "CrossEntropy",
    "FusionOutput",
    "MeanPool",
    "StatsPool",
    "check_lengths",
    "layer_plan",
    "lengths_to_mask",
    "make_activation",
    "masked_mean",
    "masked_softmax",
    "masked_std",
    "zero_padding",
]

_WHERE: dict[str, str] = {
    "ACTIVATIONS": "activations",
    "layer_plan": "activations",
    "make_activation": "activations",
    "CnnBiLstmAttn": "cnn_bilstm_attn",
    "CrossEntropy": "cross_entropy",
    "ConcatFusionNet": "fusion",
    "FusionOutput": "fusion",
    "check_lengths": "masking",
    "lengths_to_mask": "masking",
    "masked_mean": "masking",
    "masked_softmax": "masking",
    "masked_std": "masking",
    "zero_padding": "masking",
    "MLP": "mlp",
    "MeanPool": "pooling",
    "StatsPool": "stats_pool",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'serkit.nn' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"serkit.nn.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
