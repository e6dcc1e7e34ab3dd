"""Weight averaging for small corpora: an exponential moving average (EMA) or SWA of the weights.

On a few hundred utterances the validation score jumps from epoch to epoch, and the
epoch it picks is partly luck. An average of the weights along the trajectory is a
smoother model (Izmailov et al. 2018, "Averaging Weights Leads to Wider Optima"). Both
modes keep a copy of the model in :class:`torch.optim.swa_utils.AveragedModel`; the
averaged copy is the one evaluated on validation, selected and saved.
"""

from __future__ import annotations

from typing import Any

from torch import nn

__all__ = ["WeightAverage"]


class WeightAverage:
    """The averaged copy of ``model``.

    Args:
        model: the model being trained.
        mode: ``"ema"`` (updated after every optimiser step with ``decay``) or ``"swa"``
            (an equal-weight average of the weights at the end of every epoch from
            ``start_epoch`` on).
        decay: EMA decay ``d``: ``avg <- d * avg + (1 - d) * weights``.
        start_epoch: first epoch (1-based) whose weights enter the SWA average.
    """

    def __init__(self, model: nn.Module, mode: str, decay: float = 0.99, start_epoch: int = 1) -> None:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        if mode not in ("ema", "swa"):
            raise ValueError(f"weight averaging mode must be 'ema' or 'swa'; got {mode!r}")
        self.mode = mode
        self.start_epoch = start_epoch
        fn = get_ema_multi_avg_fn(decay) if mode == "ema" else None
        self.averaged = AveragedModel(model, multi_avg_fn=fn, use_buffers=True)

    def after_step(self, model: nn.Module) -> None:
        """Fold the weights after an optimiser step into the EMA."""
        if self.mode == "ema":
            self.averaged.update_parameters(model)

    def after_epoch(self, model: nn.Module, epoch: int) -> None:
        """Fold the weights at the end of ``epoch`` into the SWA average (from ``start_epoch`` on)."""
        if self.mode == "swa" and epoch >= self.start_epoch:
            self.averaged.update_parameters(model)

    def model_to_evaluate(self, model: nn.Module) -> nn.Module:
        """The averaged model once it holds weights, else ``model`` itself."""
        return self.averaged.module if int(self.averaged.n_averaged) > 0 else model

    def state_dict(self) -> dict[str, Any]:
        return self.averaged.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.averaged.load_state_dict(state)
