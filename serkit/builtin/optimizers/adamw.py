"""Optimizer ``adamw``: AdamW (decoupled weight decay), the paper's optimizer."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, field_validator

from serkit.errors import ModelError
from serkit.interfaces.base import ComponentParams
from serkit.interfaces.optimizer import Optimizer

if TYPE_CHECKING:
    import torch

__all__ = ["AdamWOptimizer"]


class AdamWOptimizer(Optimizer):
    """AdamW with a per-group learning rate ``lr * lr_scale``.

    Each parameter group is a dict with ``params`` and optionally ``lr_scale`` (default 1;
    kept in the group for schedulers) and any other AdamW group option (e.g.
    ``weight_decay: 0`` for biases). A group must not set ``lr`` itself.
    """

    name: ClassVar[str] = "adamw"

    class Params(ComponentParams):
        lr: float = Field(1e-3, gt=0.0, description="Base learning rate.")
        betas: tuple[float, float] = Field(
            (0.9, 0.999),
            description="Decay rates of the first and second moment estimates, each in [0, 1).",
        )
        eps: float = Field(1e-8, gt=0.0, description="Term added to the denominator.")
        weight_decay: float = Field(
            1e-5, ge=0.0, description="Decoupled weight decay (multiplied by the group's lr)."
        )

        @field_validator("betas")
        @classmethod
        def _betas_in_range(cls, value: tuple[float, float]) -> tuple[float, float]:
            if not all(0.0 <= b < 1.0 for b in value):
                raise ValueError(f"betas must each be in [0, 1); got {list(value)}")
            return value

    params: Params

    def build(self, param_groups: Iterable[dict[str, Any]]) -> torch.optim.Optimizer:
        """``torch.optim.AdamW`` over the groups, group ``i`` at ``lr * lr_scale_i``.

        Raises:
            ModelError: a group is not a dict with ``params``, sets ``lr``, has a
                non-positive ``lr_scale``, or there is no parameter at all.
        """
        import torch

        p = self.params
        groups: list[dict[str, Any]] = []
        for i, group in enumerate(param_groups):
            if not isinstance(group, dict) or "params" not in group:
                raise ModelError(
                    f"optimizer adamw: parameter group {i} must be a dict with 'params'; "
                    f"got {type(group).__name__}"
                )
            if "lr" in group:
                raise ModelError(
                    f"optimizer adamw: parameter group {i} sets 'lr'; use 'lr_scale' (a "
                    "multiplier of the optimizer's lr) instead"
                )
            scale = group.get("lr_scale", 1.0)
            if (
                isinstance(scale, bool)
                or not isinstance(scale, (int, float))
                or not math.isfinite(scale)
                or scale <= 0
            ):
                raise ModelError(
                    f"optimizer adamw: parameter group {i} has lr_scale {scale!r}; expected a "
                    "positive number"
                )
            params = list(group["params"])
            groups.append({**group, "params": params, "lr_scale": float(scale), "lr": p.lr * scale})
        if not any(g["params"] for g in groups):
            raise ModelError("optimizer adamw: no parameters to optimise (every group is empty)")
        return torch.optim.AdamW(
            groups, lr=p.lr, betas=p.betas, eps=p.eps, weight_decay=p.weight_decay
        )
