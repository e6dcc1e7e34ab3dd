"""The plugin module named by the entry point: registers the ``allosaurus`` extractor.

Light on purpose (no allosaurus, torch or numpy import): serkit imports it at start-up.
"""

from __future__ import annotations

from serkit import Registry, hookimpl

from serkit_plugin_allosaurus.extractor import Allosaurus


@hookimpl
def serkit_register_components(registry: Registry) -> None:
    """Register the ``allosaurus`` extractor."""
    registry.register(Allosaurus)
