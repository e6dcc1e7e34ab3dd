"""Helpers shared by the built-in loggers: settings, flattened hyper-parameters, rank."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
from collections.abc import Mapping
from typing import Any

from serkit.errors import SerkitError

__all__ = [
    "LOGGING_DEFAULTS",
    "final_metrics",
    "flatten_params",
    "installed",
    "is_main_process",
    "logging_settings",
    "missing_extra",
    "run_id",
]

#: The ``logging`` section of a recipe, as the defaults of :class:`serkit.config.recipe.LoggingSpec`.
LOGGING_DEFAULTS: dict[str, Any] = {
    "tensorboard": "auto",
    "mlflow": "auto",
    "mlflow_experiment": None,
    "mlflow_tracking_uri": None,
}

#: Test metrics (per run and domain) that the loggers record.
TEST_METRICS = ("ua", "wa", "macro_f1", "loss")

_KEY_BAD = re.compile(r"[^A-Za-z0-9_\-./ ]")


def logging_settings(recipe: Mapping[str, Any]) -> dict[str, Any]:
    """The recipe's ``logging`` section with every default filled in."""
    return {**LOGGING_DEFAULTS, **dict(recipe.get("logging") or {})}


def installed(module: str) -> bool:
    """Whether ``module`` can be imported (checked without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing_extra(field: str, package: str, extra: str) -> SerkitError:
    """The error for ``logging.<field>: true`` when ``package`` is not installed."""
    return SerkitError(
        f"recipe logging.{field}: true, but the {package} package is not installed; "
        f"pip install 'serkit[{extra}]' (or set logging.{field}: auto)"
    )


def is_main_process() -> bool:
    """False on the non-zero ranks of a distributed (torchrun) run: only rank 0 logs."""
    return os.environ.get("RANK", "0") in ("", "0")


def run_id(repeat: int, fold: int) -> str:
    """The run id of a (repeat, fold) run, as in ``runs/<id>.json``: ``r<repeat>-f<fold>``."""
    return f"r{repeat}-f{fold}"


def flatten_params(recipe: Mapping[str, Any], prefix: str = "") -> dict[str, str | int | float | bool]:
    """A nested recipe mapping as ``{"dotted.key": scalar}`` (lists and None as JSON text).

    Key characters outside ``[A-Za-z0-9_-./ ]`` become ``_`` (MLflow's rule for keys).
    """
    out: dict[str, str | int | float | bool] = {}
    for key, value in recipe.items():
        name = _KEY_BAD.sub("_", f"{prefix}{key}")
        if isinstance(value, Mapping):
            out.update(flatten_params(value, f"{name}."))
        elif isinstance(value, bool) or isinstance(value, (int, float, str)):
            out[name] = value
        else:
            out[name] = json.dumps(value, ensure_ascii=False)
    return out


def final_metrics(run: Mapping[str, Any]) -> dict[str, float]:
    """``{"test_ua/<domain>": value, ...}`` of one entry of ``results["runs"]`` (finite values only)."""
    out: dict[str, float] = {}
    for domain, metrics in (run.get("test") or {}).items():
        for name in TEST_METRICS:
            value = metrics.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                out[f"test_{name}/{domain}"] = float(value)
    return out
