"""The component registry: kind -> {name: component class}.

Plugins add classes through the ``serkit_register_components`` hook. Looking up an
unknown name raises :class:`~serkit.errors.RecipeError` listing the available names
and the closest match.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass

from serkit.errors import PluginError, RecipeError
from serkit.interfaces import KINDS, Component, ComponentParams
from serkit.interfaces.metric import BUILTIN_METRICS, Metric

__all__ = ["Registry", "RegistryEntry", "closest"]

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class RegistryEntry:
    """A registered component and where it came from."""

    cls: type[Component]
    plugin: str
    distribution: str


def closest(name: str, choices: list[str]) -> str | None:
    """The most similar of ``choices`` to ``name``, if any is reasonably close."""
    found = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return found[0] if found else None


class Registry:
    """Holds every component class by kind and name, and the metrics (:mod:`serkit.interfaces.metric`)."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, RegistryEntry]] = {k: {} for k in KINDS}
        self._source: tuple[str, str] = ("<direct>", "<direct>")
        self._metrics: dict[str, tuple[Metric, str]] = {m.name: (m, "serkit") for m in BUILTIN_METRICS}

    # -- registration -------------------------------------------------------------
    def register(self, cls: type[Component]) -> type[Component]:
        """Add a component class; usable as a decorator.

        Raises:
            PluginError: the class has no valid kind/name/Params, or the name is taken.
        """
        plugin, dist = self._source
        kind = getattr(cls, "kind", "")
        name = getattr(cls, "name", "")
        where = f"plugin '{plugin}' (distribution {dist})"
        if kind not in self._entries:
            raise PluginError(
                f"{where}: {cls.__qualname__} has kind {kind!r}; expected one of {', '.join(KINDS)}"
            )
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise PluginError(
                f"{where}: {cls.__qualname__} has name {name!r}; expected snake_case like 'my_dataset'"
            )
        params = getattr(cls, "Params", None)
        if not (isinstance(params, type) and issubclass(params, ComponentParams)):
            raise PluginError(
                f"{where}: {cls.__qualname__}.Params must subclass serkit.ComponentParams"
            )
        if "type" in params.model_fields:
            raise PluginError(
                f"{where}: {cls.__qualname__}.Params declares a 'type' field; it is reserved"
            )
        existing = self._entries[kind].get(name)
        if existing is not None and existing.cls is not cls:
            raise PluginError(
                f"{where}: {kind} '{name}' is already registered by plugin "
                f"'{existing.plugin}' (distribution {existing.distribution})"
            )
        self._entries[kind][name] = RegistryEntry(cls, plugin, dist)
        return cls

    def register_metric(self, metric: Metric) -> Metric:
        """Add a metric that evaluation computes and ``train.select_by`` may name (``val_<name>``).

        Raises:
            PluginError: not a :class:`~serkit.interfaces.metric.Metric` with a snake_case
                name and a ``compute`` function, or the name is taken.
        """
        plugin, dist = self._source
        where = f"plugin '{plugin}' (distribution {dist})"
        if not isinstance(metric, Metric):
            raise PluginError(f"{where}: register_metric takes a serkit.interfaces.metric.Metric; got {metric!r}")
        if not _NAME_RE.match(metric.name):
            raise PluginError(f"{where}: metric name {metric.name!r}; expected snake_case like 'balanced_error'")
        if metric.compute is None:
            raise PluginError(f"{where}: metric {metric.name!r} has no compute function")
        existing = self._metrics.get(metric.name)
        if existing is not None and existing[0] is not metric:
            raise PluginError(f"{where}: metric '{metric.name}' is already registered by plugin '{existing[1]}'")
        self._metrics[metric.name] = (metric, plugin)
        return metric

    def metrics(self) -> dict[str, Metric]:
        """Metric name -> metric: the built-in ones first, then those plugins registered."""
        return {name: m for name, (m, _) in self._metrics.items()}

    def _set_source(self, plugin: str, distribution: str) -> None:
        self._source = (plugin, distribution)

    # -- lookup ---------------------------------------------------------------------
    def kinds(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def names(self, kind: str) -> list[str]:
        """Sorted names registered for ``kind``."""
        return sorted(self._entries[kind])

    def entry(self, kind: str, name: str) -> RegistryEntry:
        try:
            table = self._entries[kind]
        except KeyError:
            raise RecipeError(
                f"unknown component kind {kind!r}; kinds: {', '.join(KINDS)}"
            ) from None
        if name not in table:
            raise RecipeError(self.unknown_message(kind, name))
        return table[name]

    def get(self, kind: str, name: str) -> type[Component]:
        """The class registered as ``name`` for ``kind``."""
        return self.entry(kind, name).cls

    def create(self, kind: str, spec: ComponentParams | dict) -> Component:
        """Instantiate a component from validated params (with ``type``) or a dict."""
        if isinstance(spec, dict):
            spec = dict(spec)
            name = spec.pop("type", None)
            if name is None:
                raise RecipeError(
                    f"{kind} spec has no 'type'; available: {', '.join(self.names(kind))}"
                )
            cls = self.get(kind, name)
            return cls(cls.Params(**spec))
        name = getattr(spec, "type", None)
        cls = self.get(kind, str(name))
        return cls(spec)

    def unknown_message(self, kind: str, name: str) -> str:
        names = self.names(kind)
        msg = f"unknown {kind} type {name!r}; available: {', '.join(names) or '(none)'}"
        near = closest(str(name), names)
        if near:
            msg += f"; did you mean {near!r}?"
        return msg

    def __iter__(self) -> Iterator[tuple[str, str, RegistryEntry]]:
        for kind, table in self._entries.items():
            for name in sorted(table):
                yield kind, name, table[name]

    def __contains__(self, item: tuple[str, str]) -> bool:
        kind, name = item
        return name in self._entries.get(kind, {})
