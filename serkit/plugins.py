"""The plugin manager: built-ins, then the entry-point group ``serkit.plugins``.

Loading never stops at a broken plugin: its failure becomes a
:class:`~serkit.errors.PluginError` in :attr:`PluginManager.errors` (shown as a warning by
the CLI) and every other plugin still loads.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any, TypeVar

import pluggy

from serkit import hookspecs
from serkit.errors import PluginError
from serkit.registry import Registry
from serkit.version import __version__

__all__ = [
    "ENTRY_POINT_GROUP",
    "LoadedPlugin",
    "PluginManager",
    "get_plugin_manager",
    "get_registry",
    "reset_plugins",
]

ENTRY_POINT_GROUP = "serkit.plugins"
BUILTIN_NAME = "builtin"
BUILTIN_MODULE = "serkit.builtin.plugin"
_HOOK_NAMES = frozenset(n for n in dir(hookspecs) if n.startswith("serkit_"))

T = TypeVar("T")


@dataclass
class LoadedPlugin:
    """A plugin that loaded, with its origin."""

    name: str
    distribution: str
    version: str
    module: str


@dataclass
class PluginManager:
    """Wraps a :class:`pluggy.PluginManager` with serkit's loading rules.

    Whatever is derived from the loaded plugins (the recipe model built from the registry,
    the label aliases of the ``serkit_label_aliases`` hook) is kept in :meth:`cached`, so it
    lives and goes with this manager: :func:`reset_plugins` needs no list of caches to clear.
    """

    pm: pluggy.PluginManager
    registry: Registry
    plugins: list[LoadedPlugin] = field(default_factory=list)
    errors: list[PluginError] = field(default_factory=list)
    derived: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def hook(self) -> pluggy.HookRelay:
        return self.pm.hook

    def cached(self, key: str, build: Callable[[PluginManager], T]) -> T:
        """``build(self)``, computed once per manager and ``key``."""
        if key not in self.derived:
            self.derived[key] = build(self)
        return self.derived[key]  # type: ignore[no-any-return]


def _is_entry_point(obj: object) -> bool:
    """An entry point of importlib.metadata, or of the importlib_metadata backport (which some
    libraries, e.g. mlflow, install on sys.meta_path: entry_points() then returns its class)."""
    if isinstance(obj, metadata.EntryPoint):
        return True
    return not isinstance(obj, ModuleType) and all(hasattr(obj, a) for a in ("load", "group", "value", "name"))


def _dist_of(ep: metadata.EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "<unknown>", ""
    return dist.metadata["Name"], dist.version


def _unknown_hooks(module: ModuleType, pm: pluggy.PluginManager) -> list[str]:
    bad = []
    for attr in dir(module):
        if pm.parse_hookimpl_opts(module, attr) is not None and attr not in _HOOK_NAMES:
            bad.append(attr)
    return bad


def _entry_points() -> list[metadata.EntryPoint]:
    eps = list(metadata.entry_points(group=ENTRY_POINT_GROUP))
    # one entry per name; the builtin one first, the rest by name
    uniq: dict[str, metadata.EntryPoint] = {}
    for ep in eps:
        uniq.setdefault(ep.name, ep)
    return sorted(uniq.values(), key=lambda e: (e.name != BUILTIN_NAME, e.name))


def load_plugins(
    blocked: Iterable[str] = (),
    autoload: bool | None = None,
    extra: Iterable[tuple[str, ModuleType | object]] = (),
) -> PluginManager:
    """Create a plugin manager and a filled registry.

    Args:
        blocked: entry-point or distribution names to skip (``--no-plugin``).
        autoload: load third-party entry points; default: unless
            ``SERKIT_DISABLE_PLUGIN_AUTOLOAD`` is set to a non-empty value.
        extra: ``(name, module_or_object)`` plugins to register directly (tests).
    """
    blocked = set(blocked)
    if autoload is None:
        autoload = not os.environ.get("SERKIT_DISABLE_PLUGIN_AUTOLOAD")
    pm = pluggy.PluginManager("serkit")
    pm.add_hookspecs(hookspecs)
    manager = PluginManager(pm=pm, registry=Registry())

    candidates: list[tuple[str, str, str, object]] = []  # name, dist, version, loader
    builtin_seen = False
    for ep in _entry_points():
        dist, version = _dist_of(ep)
        if ep.name == BUILTIN_NAME and dist == "serkit":
            builtin_seen = True
        elif not autoload:
            continue
        if ep.name in blocked or dist in blocked:
            continue
        candidates.append((ep.name, dist, version, ep))
    if not builtin_seen and BUILTIN_NAME not in blocked:
        # running from a source tree that was never pip-installed
        candidates.insert(0, (BUILTIN_NAME, "serkit", __version__, BUILTIN_MODULE))
    for name, obj in extra:
        candidates.append((name, f"<{name}>", "", obj))

    for name, dist, version, loader in candidates:
        where = f"plugin '{name}' (distribution {dist}{' ' + version if version else ''})"
        try:
            if isinstance(loader, str):
                module = importlib.import_module(loader)
            elif _is_entry_point(loader):
                module = loader.load()
            else:
                module = loader
        except (Exception, SystemExit) as err:  # a broken plugin must not break serkit
            manager.errors.append(
                PluginError(f"{where} failed to import: {type(err).__name__}: {err}")
            )
            continue
        bad = _unknown_hooks(module, pm) if isinstance(module, ModuleType) else []
        if bad:
            manager.errors.append(
                PluginError(
                    f"{where} implements unknown hook(s) {', '.join(bad)}; "
                    f"known hooks: {', '.join(sorted(_HOOK_NAMES))}"
                )
            )
            continue
        try:
            pm.register(module, name=name)
        except Exception as err:
            manager.errors.append(PluginError(f"{where} could not be registered: {err}"))
            continue
        manager.plugins.append(
            LoadedPlugin(name, dist, version, getattr(module, "__name__", repr(module)))
        )
        _register_components(manager, module, name, dist, where)
    return manager


def _register_components(
    manager: PluginManager, module: object, name: str, dist: str, where: str
) -> None:
    registry = manager.registry
    for impl in manager.pm.hook.serkit_register_components.get_hookimpls():
        if impl.plugin is not module:
            continue
        registry._set_source(name, dist)
        try:
            impl.function(registry=_CollectingRegistry(registry, manager.errors))
        except PluginError as err:
            manager.errors.append(err)
        except Exception as err:
            manager.errors.append(
                PluginError(
                    f"{where}: serkit_register_components failed: {type(err).__name__}: {err}"
                )
            )
        finally:
            registry._set_source("<direct>", "<direct>")


class _CollectingRegistry:
    """Registry proxy that records a failed registration and goes on with the next."""

    def __init__(self, registry: Registry, errors: list[PluginError]) -> None:
        self._registry = registry
        self._errors = errors

    def register(self, cls):  # type: ignore[no-untyped-def]
        try:
            return self._registry.register(cls)
        except PluginError as err:
            self._errors.append(err)
            return cls

    def __getattr__(self, item: str):  # type: ignore[no-untyped-def]
        return getattr(self._registry, item)


_MANAGER: PluginManager | None = None
_BLOCKED: tuple[str, ...] = ()


def configure_plugins(blocked: Iterable[str] = ()) -> None:
    """Set the plugins to skip for this process (``--no-plugin``); reloads lazily."""
    global _BLOCKED
    _BLOCKED = tuple(blocked)
    reset_plugins()


def get_plugin_manager() -> PluginManager:
    """The process-wide plugin manager, loaded on first use."""
    global _MANAGER
    if _MANAGER is None:
        _MANAGER = load_plugins(blocked=_BLOCKED)
    return _MANAGER


def get_registry() -> Registry:
    """The process-wide registry (plugins loaded on first use)."""
    return get_plugin_manager().registry


def reset_plugins(manager: PluginManager | None = None) -> None:
    """Drop (or replace) the process-wide plugin manager; the next use reloads.

    What was derived from the old manager (:meth:`PluginManager.cached`) goes with it.
    """
    global _MANAGER
    _MANAGER = manager
