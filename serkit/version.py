"""serkit's version, from the installed distribution's metadata (``0+unknown`` in a tree never installed).

A module of its own so that every part of serkit can name its version without importing
the package's public facade (:mod:`serkit`), which imports them lazily in turn.
"""

from __future__ import annotations

__all__ = ["__version__"]

try:
    from importlib.metadata import version as _version

    __version__: str = _version("serkit")
except Exception:  # pragma: no cover - running from an uninstalled tree
    __version__ = "0+unknown"
