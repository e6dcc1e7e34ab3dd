"""Mixed precision for training: fp32, bf16 or fp16 autocast (fp16 with a gradient scaler)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch

__all__ = ["PRECISIONS", "Precision"]

PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class Precision:
    """Runs the forward pass under ``torch.autocast`` and the optimiser step through a scaler.

    ``fp32``: plain float32. ``bf16``: autocast to bfloat16 (same exponent range as
    float32: no scaling needed; fast on recent GPUs and CPUs). ``fp16``: autocast to
    float16 with a :class:`torch.amp.GradScaler`, which scales the loss so that small
    gradients do not underflow and skips steps whose gradients overflowed.

    Args:
        name: ``"fp32"``, ``"bf16"`` or ``"fp16"``.
        device: the training device.
    """

    def __init__(self, name: str, device: torch.device) -> None:
        if name not in PRECISIONS:
            raise ValueError(f"precision must be one of {list(PRECISIONS)}; got {name!r}")
        self.name = name
        self.device_type = device.type
        self.dtype = _DTYPES.get(name)
        self.scaler = torch.amp.GradScaler(device.type) if name == "fp16" else None

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """The context of a forward pass (and its loss)."""
        if self.dtype is None:
            yield
            return
        with torch.autocast(device_type=self.device_type, dtype=self.dtype):
            yield

    def step(self, loss: torch.Tensor, optimizer: Any, params: Sequence[torch.Tensor], grad_clip: float | None) -> None:
        """``backward``, optional gradient clipping (on unscaled gradients), optimiser step."""
        if self.scaler is None:
            loss.backward()
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
            optimizer.step()
            return
        self.scaler.scale(loss).backward()
        if grad_clip is not None:
            self.scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self) -> dict[str, Any] | None:
        return None if self.scaler is None else self.scaler.state_dict()

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)
