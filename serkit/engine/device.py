"""Device selection and seeding."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from serkit.errors import SerkitError

__all__ = ["resolve_device", "seed_everything"]


def resolve_device(spec: str) -> torch.device:
    """``auto`` -> cuda if available, else mps if available, else cpu; others as given."""
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise SerkitError(
            f"device: {spec!r} requested but CUDA is not available here; use device: auto or cpu"
        )
    return torch.device(spec)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) for a reproducible run."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
