"""serkit's built-in components, registered through the same hook as any plugin.

This module is serkit's own entry point in the ``serkit.plugins`` group (name
``builtin``). Each component lives in its own module under :mod:`serkit.builtin`;
importing them is cheap (no torch, no librosa) because networks and models are only
built when a run needs them.

The built-in experiment loggers (:data:`BUILTIN_LOGGERS`: TensorBoard, MLflow) are driven
by this plugin's run-callback hooks, exactly as a third-party plugin would add W&B.
"""

from __future__ import annotations

import importlib
import inspect
import warnings
from typing import Any

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
    "serkit.builtin.extractors.whisper",
    "serkit.builtin.encoders.cnn_bilstm_attn",
    "serkit.builtin.encoders.mean_pool",
    "serkit.builtin.encoders.weighted_layers",
    "serkit.builtin.encoders.stats_pool",
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

#: The built-in experiment loggers, as ``module:Class``. Each class has
#: ``create(run_dir, recipe) -> logger | None`` (None when the recipe's ``logging`` section
#: leaves it off) and the methods ``on_epoch_end(repeat, fold, epoch, metrics)``,
#: ``on_run_end(results)`` and ``close()``.
BUILTIN_LOGGERS: tuple[str, ...] = (
    "serkit.builtin.loggers.tensorboard:TensorBoardLogger",
    "serkit.builtin.loggers.mlflow:MlflowLogger",
)

#: run folder -> the loggers of the run in progress there.
_ACTIVE: dict[str, list[Any]] = {}


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


def _logger_class(spec: str) -> Any:
    module_name, _, cls_name = spec.partition(":")
    return getattr(importlib.import_module(module_name), cls_name)


def _call_loggers(run_dir: str, method: str, **kwargs: Any) -> None:
    """Call ``method`` on the run's loggers; a failing logger is dropped with a warning (training goes on)."""
    kept = []
    for logger in _ACTIVE.get(run_dir, []):
        try:
            getattr(logger, method)(**kwargs)
        except Exception as err:  # a tracking server going away must not stop training
            warnings.warn(
                f"{logger.name} logging stopped for {run_dir}: {type(err).__name__}: {err}", UserWarning, stacklevel=2
            )
            try:
                logger.close()
            except Exception:  # already broken; the warning above says so
                pass
            continue
        kept.append(logger)
    _ACTIVE[run_dir] = kept


@hookimpl
def serkit_on_run_start(run_dir: str, recipe: dict[str, Any]) -> None:
    """Start the loggers that the recipe's ``logging`` section enables (rank 0 only).

    Raises:
        SerkitError: a logger set to ``true`` cannot run (package missing, tracking server refusing).
    """
    from serkit.builtin.loggers.common import is_main_process

    for stale in _ACTIVE.pop(run_dir, []):  # an earlier run in the same folder that never finished
        stale.close()
    if not is_main_process():
        return
    loggers: list[Any] = []
    try:
        for spec in BUILTIN_LOGGERS:
            logger = _logger_class(spec).create(run_dir, recipe)
            if logger is not None:
                loggers.append(logger)
    except BaseException:
        for logger in loggers:
            logger.close()
        raise
    _ACTIVE[run_dir] = loggers


@hookimpl
def serkit_on_epoch_end(run_dir: str, repeat: int, fold: int, epoch: int, metrics: dict[str, float]) -> None:
    """Pass the epoch's metrics to the run's loggers."""
    _call_loggers(run_dir, "on_epoch_end", repeat=repeat, fold=fold, epoch=epoch, metrics=metrics)


@hookimpl
def serkit_on_run_end(run_dir: str, results: dict[str, Any]) -> None:
    """Final test metrics to the run's loggers, which then close."""
    _call_loggers(run_dir, "on_run_end", results=results)
    _ACTIVE.pop(run_dir, None)
