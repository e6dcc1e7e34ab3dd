"""Training callbacks: a schedule (warm-up, freezing, curriculum) as a component, not an edit of the loop.

A recipe lists them under ``train.callbacks`` (``[{type: <name>, ...}]``); every
``(repeat, fold)`` run gets fresh instances, and the training loop
(:func:`serkit.engine.train.train_run`) calls them at fixed points, in the recipe's order:

- :meth:`TrainCallback.on_train_start` once, after a resumed run's state is restored and
  before the first epoch it trains;
- :meth:`TrainCallback.on_epoch_start` before every epoch's first batch;
- :meth:`TrainCallback.on_step_start` before every batch's forward pass (e.g. to set the
  learning rate of a warm-up);
- :meth:`TrainCallback.on_epoch_end` after every epoch's validation, with the epoch's
  metrics (the row of ``history``), before the checkpoint selection.

Each gets the :class:`TrainLoop`: the model, the optimizer and where the loop is. A
callback that keeps state across epochs returns it from :meth:`TrainCallback.state_dict`
(plain data and tensors): it is saved with the epoch's training state and handed back by
:meth:`TrainCallback.load_state_dict` when ``serkit run --resume`` continues the run, so a
resumed run gives the same result as an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from serkit.interfaces.base import Component

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["TrainCallback", "TrainLoop"]


@dataclass
class TrainLoop:
    """What a :class:`TrainCallback` sees of the training loop.

    Attributes:
        model: the model being trained (:class:`serkit.engine.model.SerModel`; its
            ``encoders``, ``fusion`` and ``heads`` are ``nn.ModuleDict`` / modules).
        optimizer: its optimizer; ``param_groups[i]["lr"]`` may be changed (each group
            starts at the recipe's lr times its ``lr_scale``).
        epochs: the epochs the run trains at most.
        epoch: the current epoch (1-based; 0 before the first).
        step: optimizer steps taken so far in the run (over every epoch, resumed ones too).
        device: the device the model is on.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    epochs: int
    epoch: int = 0
    step: int = 0
    device: Any = None


class TrainCallback(Component):
    """A hook into the training loop; override the methods the schedule needs (all do nothing by default)."""

    kind: ClassVar[str] = "callback"

    def on_train_start(self, loop: TrainLoop) -> None:
        """Before the first epoch this process trains (after a resumed state is loaded)."""

    def on_epoch_start(self, loop: TrainLoop, epoch: int) -> None:
        """Before epoch ``epoch``'s first batch (the model is in training mode)."""

    def on_step_start(self, loop: TrainLoop, step: int) -> None:
        """Before the forward pass of optimizer step ``step`` (1-based, counted over the run)."""

    def on_epoch_end(self, loop: TrainLoop, epoch: int, metrics: dict[str, float]) -> None:
        """After epoch ``epoch``'s validation; ``metrics`` is its row of the run's history."""

    def state_dict(self) -> dict[str, Any]:
        """What the callback must remember across a resume (plain data and tensors); default nothing."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take back :meth:`state_dict`'s value when a run resumes."""
