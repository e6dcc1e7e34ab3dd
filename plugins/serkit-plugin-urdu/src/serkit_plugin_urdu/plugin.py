"""The plugin module named by the entry point: serkit calls these hooks at start-up.

Keep this module light (no torch, no librosa): it is imported by every ``serkit``
command, including ``serkit --help``.
"""

from __future__ import annotations

from serkit import Registry, hookimpl

from serkit_plugin_urdu.dataset import UrduDataset

#: Urdu emotion words (romanised and in Urdu script) -> canonical labels, so that
#: manifests labelled in Urdu map onto serkit's vocabulary.
URDU_LABEL_ALIASES: dict[str, str] = {
    "ghussa": "angry",
    "gussa": "angry",
    "غصہ": "angry",
    "khushi": "happy",
    "khush": "happy",
    "خوشی": "happy",
    "udaas": "sad",
    "udas": "sad",
    "اداس": "sad",
}


@hookimpl
def serkit_register_components(registry: Registry) -> None:
    """Register the ``urdu`` dataset."""
    registry.register(UrduDataset)


@hookimpl
def serkit_label_aliases() -> dict[str, str]:
    """Urdu emotion words -> canonical labels."""
    return dict(URDU_LABEL_ALIASES)
