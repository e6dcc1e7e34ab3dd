"""A plugin written only against serkit's public interfaces: an encoder, a fusion, a head, a training
callback and a metric, none of them built in.

``tests/testing/test_network_contract.py`` checks the three networks with
:mod:`serkit.testing.network_contract` and trains them in a recipe (with the callback and
selecting by the metric). It imports nothing of serkit but the public API: ``serkit`` itself,
:mod:`serkit.interfaces.fusion` for the names of the declared extras.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pydantic import Field

from serkit import (
    ComponentParams,
    Encoder,
    Fusion,
    FusionOutput,
    Head,
    Metric,
    TrainCallback,
    TrainLoop,
    hookimpl,
)
from serkit.interfaces.fusion import GATES

#: Every learning rate the warm-up set, as ``(step, lr of the first group)`` (for the test).
WARMUP_LRS: list[tuple[int, float]] = []


class MaxPoolEncoder(Encoder):
    """Masked max over the frames, then a linear projection and tanh."""

    name: ClassVar[str] = "example_max_pool"

    class Params(ComponentParams):
        width: int = Field(8, ge=1, description="Output width.")

    def build(self, in_dim: int) -> Any:
        import torch
        from torch import nn

        width = self.params.width

        class Net(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.proj = nn.Linear(in_dim, width)
                self.out_dim = width

            def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
                frames = torch.arange(x.shape[1], device=x.device)[None, :]
                padded = frames >= lengths.to(x.device)[:, None]
                pooled = x.masked_fill(padded[..., None], float("-inf")).amax(dim=1)
                return torch.tanh(self.proj(pooled))

        return Net()


class SoftmaxSumFusion(Fusion):
    """Every stream projected to one width, summed with learned softmax weights per domain (reported as gates)."""

    name: ClassVar[str] = "example_softmax_sum"

    class Params(ComponentParams):
        width: int = Field(8, ge=1, description="Width of the projections and of the representation.")

    def build(self, stream_dims: Mapping[str, int], domains: Sequence[str]) -> Any:
        import torch
        from torch import nn

        width, order, index = self.params.width, list(stream_dims), {d: i for i, d in enumerate(domains)}

        class Net(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.proj = nn.ModuleDict({sid: nn.Linear(dim, width) for sid, dim in stream_dims.items()})
                self.logits = nn.Parameter(torch.zeros(len(index), len(order)))  # stacked over the domains
                self.out_dim = width

            def forward(self, streams: Mapping[str, torch.Tensor], domain: str) -> FusionOutput:
                projected = torch.stack([self.proj[sid](streams[sid]) for sid in order], dim=1)  # (B, M, width)
                weights = torch.softmax(self.logits[index[domain]], dim=0)  # (M,)
                gates = weights.expand(projected.shape[0], -1)
                return FusionOutput((gates[..., None] * projected).sum(dim=1), {GATES: gates})

            def summary(self) -> dict[str, Any]:
                return {"streams": order}

        return Net()


class LinearHead(Head):
    """One linear layer (a linear probe of the fused representation)."""

    name: ClassVar[str] = "example_linear"

    class Params(ComponentParams):
        bias: bool = Field(True, description="Whether the layer has a bias.")

    def build(self, in_dim: int, n_classes: int) -> Any:
        from torch import nn

        return nn.Linear(in_dim, n_classes, bias=self.params.bias)


class WarmUp(TrainCallback):
    """Linear learning-rate warm-up over the first optimizer steps; encoders frozen for the first epochs."""

    name: ClassVar[str] = "example_warmup"

    class Params(ComponentParams):
        steps: int = Field(10, ge=1, description="Optimizer steps until the full learning rate.")
        freeze_encoder_epochs: int = Field(0, ge=0, description="Epochs whose encoders do not train.")

    def __init__(self, params: ComponentParams | None = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self.base: list[float] = []

    def on_train_start(self, loop: TrainLoop) -> None:
        if not self.base:  # a resumed run got them back from load_state_dict
            self.base = [float(g["lr"]) for g in loop.optimizer.param_groups]

    def on_epoch_start(self, loop: TrainLoop, epoch: int) -> None:
        frozen = epoch <= self.params.freeze_encoder_epochs
        for p in loop.model.encoders.parameters():
            p.requires_grad_(not frozen)

    def on_step_start(self, loop: TrainLoop, step: int) -> None:
        scale = min(1.0, step / self.params.steps)
        for group, base in zip(loop.optimizer.param_groups, self.base, strict=True):
            group["lr"] = base * scale
        WARMUP_LRS.append((step, float(loop.optimizer.param_groups[0]["lr"])))

    def state_dict(self) -> dict[str, Any]:
        return {"base": list(self.base)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.base = [float(x) for x in state["base"]]


def balanced_error(y_true: Any, y_pred: Any, n_classes: int) -> float:
    """1 - the mean per-class recall over the classes present (lower is better)."""
    import numpy as np

    recalls = [float(np.mean(y_pred[y_true == c] == c)) for c in range(n_classes) if np.any(y_true == c)]
    return 1.0 - float(np.mean(recalls))


@hookimpl
def serkit_register_components(registry: Any) -> None:
    for cls in (MaxPoolEncoder, SoftmaxSumFusion, LinearHead, WarmUp):
        registry.register(cls)
    registry.register_metric(Metric("balanced_error", False, "1 - UA", compute=balanced_error))
