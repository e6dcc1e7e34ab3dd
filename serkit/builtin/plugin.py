"""serkit's built-in components, registered through the same hook as any plugin.

This module is serkit's own entry point in the ``serkit.plugins`` group (name
``builtin``). Each component lives in its own module under :mod:`serkit.builtin`;
importing them is cheap (no torch, no librosa) because networks and models are only
built when a run needs them.
"""

from __future__ import annotations

import importlib
import inspect

from serkit.errors import PluginError
from serkit.hookspecs import hookimpl
from serkit.interfaces.base import Component
from serkit.registry import Registry

#: Every built-in component module; each defines exactly one component class.
BUILTIN_MODULES: tuple[str, ...] = (
    "serkit.builtin.datasets.manifest",
    "serkit.builtin.datasets.folder",
    "serkit.builtin.datasets.synthetic",
    "serkit.builtin.datasets.emodb",
    "serkit.builtin.datasets.cafe",
    "serkit.builtin.datasets.iemocap",
    "serkit.builtin.datasets.ravdess",
    "serkit.builtin.datasets.cremad",
    "serkit.builtin.datasets.savee",
    "serkit.builtin.datasets.emovo",
    "serkit.builtin.datasets.shemo",
    "serkit.builtin.datasets.aesdd",
    "serkit.builtin.datasets.subesco",
    "serkit.builtin.datasets.tess",
    "serkit.builtin.extractors.mfcc",
    "serkit.builtin.extractors.ge2e",
    "serkit.builtin.extractors.hf_ssl",
    "serkit.builtin.encoders.cnn_bilstm_attn",
    "serkit.builtin.encoders.mean_pool",
    "serkit.builtin.fusion.concat",
    "serkit.builtin.fusion.shared_bottom",
    "serkit.builtin.fusion.omoe",
    "serkit.builtin.fusion.mmoe",
    "serkit.builtin.fusion.gated_nas",
    "serkit.builtin.heads.mlp",
    "serkit.builtin.losses.cross_entropy",
    "serkit.builtin.losses.ge2e_contrastive",
    "serkit.builtin.optimizers.adamw",
)


def _component_of(module_name: str) -> type[Component]:
    module = importlib.import_module(module_name)
    found = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, Component)
        and obj.__module__ == module.__name__
        and not inspect.isabstract(obj)
        and obj.name
    ]
    if len(found) != 1:
        raise RuntimeError(f"{module_name} must define exactly one component, found {len(found)}")
    return found[0]


@hookimpl
def serkit_register_components(registry: Registry) -> None:
    """Register every built-in component."""
    failures = []
    for module_name in BUILTIN_MODULES:
        try:
            cls = _component_of(module_name)
        except Exception as err:  # keep registering the others
            failures.append(f"{module_name}: {type(err).__name__}: {err}")
            continue
        registry.register(cls)
    if failures:
        raise PluginError("built-in components failed to load: " + "; ".join(failures))
