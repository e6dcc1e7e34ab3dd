"""The plugin module named by the entry point: registers the ``opensmile`` extractor.

Light on purpose (no opensmile, numpy or pandas import): serkit imports it at start-up.
"""

from __future__ import annotations

from serkit import Registry, hookimpl

from serkit_plugin_opensmile.extractor import OpenSmile


@hookimpl
def serkit_register_components(registry: Registry) -> None:
    """Register the ``opensmile`` extractor."""
    registry.register(OpenSmile)
