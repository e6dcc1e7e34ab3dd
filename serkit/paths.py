"""Where serkit keeps generated data: ``$SERKIT_CACHE``, else ``~/.cache/serkit``."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir() -> Path:
    """The cache root (feature stores under ``features/``, synthetic corpora under ``synthetic/``)."""
    env = os.environ.get("SERKIT_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "serkit"
