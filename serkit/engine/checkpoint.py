"""Checkpoints without pickle: safetensors weights + a JSON config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from serkit.errors import ModelError
from serkit.io import atomic_write_bytes, atomic_write_json

__all__ = ["CHECKPOINT_FORMAT", "load_weights", "save_checkpoint"]

CHECKPOINT_FORMAT = "serkit-checkpoint-1"


def save_checkpoint(
    path: Path, state_dict: dict[str, torch.Tensor], config: dict[str, Any] | None = None
) -> None:
    """Write ``path`` (.safetensors) atomically, and ``config`` next to it as JSON if given."""
    from safetensors.torch import save

    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    atomic_write_bytes(path, save(tensors, metadata={"format": CHECKPOINT_FORMAT}))
    if config is not None:
        atomic_write_json(path.with_suffix(".json"), {"format": CHECKPOINT_FORMAT, **config})


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors checkpoint written by :func:`save_checkpoint` (never unpickles)."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        data = Path(path).read_bytes()
        return load(data)
    except FileNotFoundError:
        raise ModelError(f"{path}: checkpoint not found") from None
    except (SafetensorError, ValueError, json.JSONDecodeError) as err:
        raise ModelError(f"{path}: not a valid safetensors checkpoint ({err})") from err
