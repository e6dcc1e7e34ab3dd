"""Optimizers: parameter groups -> a ``torch.optim.Optimizer``."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from serkit.interfaces.base import Component

if TYPE_CHECKING:
    import torch

__all__ = ["Optimizer"]


class Optimizer(Component):
    """Factory of a torch optimizer over parameter groups.

    Each group is a dict with ``params`` and optionally ``lr_scale`` (a multiplier of the
    recipe's learning rate, used e.g. to fine-tune a pretrained extractor slowly).
    """

    kind: ClassVar[str] = "optimizer"

    @abstractmethod
    def build(self, param_groups: Iterable[dict[str, Any]]) -> torch.optim.Optimizer:
        """Create the optimizer."""
