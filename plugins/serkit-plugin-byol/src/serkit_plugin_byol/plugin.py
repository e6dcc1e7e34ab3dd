"""The plugin module named by the entry point: registers the ``byol`` extractor.

Light on purpose (no torch, librosa or numpy import): serkit imports it at start-up.
"""

from __future__ import annotations

from serkit import Registry, hookimpl

from serkit_plugin_byol.extractor import Byol


@hookimpl
def serkit_register_components(registry: Registry) -> None:
    """Register the ``byol`` extractor."""
    registry.register(Byol)
