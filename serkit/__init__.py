"""serkit: multilingual speech emotion recognition for low-resource languages.

Public API (importing ``serkit`` is cheap; torch is imported by the functions that train)::

    from serkit import hookimpl, Registry, ComponentParams, load_recipe, run

The component interfaces (``Dataset``, ``Extractor``, ``Encoder``, ``Fusion`` and its
``FusionOutput``, ``Head``, ``Loss``, ``Optimizer``, ``TrainCallback``) and ``Metric`` are
what a plugin is written against; :mod:`serkit.testing` has their contract tests.
"""

from __future__ import annotations

from typing import Any

from serkit.errors import (
    AudioError,
    CacheError,
    DatasetError,
    ModelError,
    PluginError,
    RecipeError,
    SerkitError,
)
from serkit.hookspecs import hookimpl
from serkit.interfaces import (
    Component,
    ComponentParams,
    Dataset,
    Encoder,
    Extractor,
    Fusion,
    FusionOutput,
    Head,
    Loss,
    Optimizer,
    TrainCallback,
    TrainLoop,
)
from serkit.interfaces.metric import Metric
from serkit.registry import Registry
from serkit.version import __version__

__all__ = [
    "AudioError",
    "CacheError",
    "Component",
    "ComponentParams",
    "Dataset",
    "DatasetError",
    "Encoder",
    "Extractor",
    "Fusion",
    "FusionOutput",
    "Head",
    "Loss",
    "Metric",
    "ModelError",
    "Optimizer",
    "PluginError",
    "RecipeError",
    "Registry",
    "SerkitError",
    "TrainCallback",
    "TrainLoop",
    "__version__",
    "get_registry",
    "hookimpl",
    "load_model",
    "load_recipe",
    "run",
]



def get_registry() -> Registry:
    """The process-wide registry, with built-ins and installed plugins loaded."""
    from serkit.plugins import get_registry as _get

    return _get()


def load_recipe(path: str, overrides: list[str] | tuple[str, ...] = ()) -> Any:
    """Load and validate a recipe file; returns the Recipe model instance."""
    from serkit.config.recipe import load_recipe as _load

    return _load(path, overrides)[0]


def load_model(run_dir: str, checkpoint: str | None = None, device: str = "auto") -> Any:
    """Load a trained run folder for prediction (see :func:`serkit.inference.load_model`)."""
    from serkit.inference import load_model as _load

    return _load(run_dir, checkpoint=checkpoint, device=device)


def run(recipe: Any, out: str | None = None, progress: bool = True) -> str:
    """Run a recipe (a path or a loaded Recipe); returns the run folder path."""
    from pathlib import Path

    from serkit.engine.run import run_recipe

    source = "<recipe>"
    if isinstance(recipe, (str, Path)):
        source = str(recipe)
        recipe = load_recipe(str(recipe))
    return str(run_recipe(recipe, out=Path(out) if out else None, source=source, progress=progress))
