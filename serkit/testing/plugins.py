"""Checks every plugin's own tests repeat: its hook registers the component, its installed entry
point does, and importing it stays light. Plus the one-math-thread setup of a plugin's conftest.

In a plugin's ``tests/test_plugin.py``::

    import serkit_plugin_foo.plugin as foo_plugin
    from serkit.testing.plugins import assert_entry_point, assert_hook_registers, assert_light_import
    from serkit_plugin_foo.extractor import Foo

    def test_hook_registers_the_extractor() -> None:
        assert_hook_registers(foo_plugin, "extractor", "foo", Foo)

    def test_entry_point_registers_foo_from_its_distribution() -> None:
        assert_entry_point("serkit-plugin-foo", "extractor", "foo")   # skipped when not pip-installed

    def test_importing_the_plugin_is_light() -> None:
        assert_light_import("serkit_plugin_foo.plugin", forbidden=("torch", "numpy"))

and in its ``tests/conftest.py`` (``serkit_isolated`` comes from serkit's pytest plugin)::

    import pytest
    from serkit.testing.plugins import one_math_thread

    one_math_thread()

    @pytest.fixture(autouse=True)
    def _isolated(serkit_isolated): ...
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from serkit.plugins import PluginManager
    from serkit.registry import RegistryEntry

__all__ = [
    "HEAVY_MODULES",
    "MATH_THREAD_VARIABLES",
    "assert_entry_point",
    "assert_hook_registers",
    "assert_light_import",
    "one_math_thread",
]

#: Modules a plugin module must not import at import time (serkit imports every plugin at start-up).
HEAVY_MODULES: tuple[str, ...] = ("numpy", "torch", "torchaudio", "librosa", "transformers", "pandas", "scipy")
#: Environment variables that set the thread count of the math libraries.
MATH_THREAD_VARIABLES: tuple[str, ...] = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def one_math_thread() -> None:
    """Default the math libraries to one thread (tests of tiny models are faster so, and do not
    spin-wait on shared cores). Call it at the top of ``conftest.py``, before numpy or torch
    load; variables already set are kept."""
    for var in MATH_THREAD_VARIABLES:
        os.environ.setdefault(var, "1")


def assert_hook_registers(
    plugin_module: ModuleType | object,
    kind: str,
    name: str,
    cls: type,
    *,
    plugin_name: str = "plugin_under_test",
) -> PluginManager:
    """Load ``plugin_module`` (without autoloading other plugins) and check that its
    ``serkit_register_components`` hook registers ``cls`` as component ``kind``/``name``.

    Returns:
        The plugin manager, for further checks of other hooks.
    """
    from serkit.errors import RecipeError
    from serkit.plugins import load_plugins

    manager = load_plugins(autoload=False, extra=[(plugin_name, plugin_module)])
    if manager.errors:
        raise AssertionError(f"loading the plugin gave errors: {[str(e) for e in manager.errors]}")
    try:
        entry = manager.registry.entry(kind, name)
    except RecipeError as err:
        raise AssertionError(f"the plugin's hook does not register {kind} {name!r}: {err}") from None
    if entry.cls is not cls:
        raise AssertionError(
            f"{kind} {name!r} is registered as {entry.cls.__module__}.{entry.cls.__qualname__}; "
            f"expected {cls.__module__}.{cls.__qualname__}"
        )
    if entry.plugin != plugin_name:
        raise AssertionError(f"{kind} {name!r} comes from plugin {entry.plugin!r}; expected {plugin_name!r}")
    return manager


def _installed(distribution: str) -> bool:
    from importlib import metadata

    try:
        metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True


def assert_entry_point(distribution: str, kind: str, name: str, *, entry_point: str | None = None) -> RegistryEntry:
    """Load the installed plugins (autoload on, whatever ``SERKIT_DISABLE_PLUGIN_AUTOLOAD`` says) and
    check that ``kind``/``name`` comes from the entry point ``entry_point`` (default: ``name``) of
    ``distribution``, which loads without errors.

    Skips the test (``pytest.skip``) when ``distribution`` is not installed.

    Returns:
        The registry entry of the component.
    """
    import pytest

    from serkit.errors import RecipeError
    from serkit.plugins import load_plugins

    ep_name = name if entry_point is None else entry_point
    if not _installed(distribution):
        pytest.skip(f"{distribution} is not pip-installed (pip install -e <its folder>); its entry point is untested")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("SERKIT_DISABLE_PLUGIN_AUTOLOAD", raising=False)
        manager = load_plugins()
    own = [str(e) for e in manager.errors if any(w in str(e) for w in (f"'{ep_name}'", f"'{name}'", distribution))]
    if own:
        raise AssertionError(f"entry point {ep_name!r} of {distribution} gave errors: {own}")
    try:
        entry = manager.registry.entry(kind, name)
    except RecipeError as err:
        raise AssertionError(f"no installed plugin registers {kind} {name!r}: {err}") from None
    if (entry.plugin, entry.distribution) != (ep_name, distribution):
        raise AssertionError(
            f"{kind} {name!r} comes from plugin {entry.plugin!r} of {entry.distribution}; "
            f"expected entry point {ep_name!r} of {distribution}"
        )
    return entry


def assert_light_import(
    module_name: str, forbidden: Iterable[str] = HEAVY_MODULES, src: str | os.PathLike[str] | None = None
) -> None:
    """Import ``module_name`` in a fresh Python process and check that none of ``forbidden`` got imported.

    Args:
        module_name: e.g. ``"serkit_plugin_foo.plugin"`` (the module the entry point names).
        forbidden: top-level module names that must stay unimported.
        src: folder put first on the child's ``PYTHONPATH``; default: the folder this process
            imports the module's top-level package from (so a source checkout is tested, not
            another installed copy).
    """
    forbidden = sorted(set(forbidden))
    if src is None:
        spec = importlib.util.find_spec(module_name.partition(".")[0])
        if spec is not None and spec.submodule_search_locations:
            src = Path(next(iter(spec.submodule_search_locations))).parent
        elif spec is not None and spec.origin:
            src = Path(spec.origin).parent
    code = (
        "import importlib, json, sys\n"
        f"importlib.import_module({module_name!r})\n"
        f"print(json.dumps(sorted(m for m in {forbidden!r} if m in sys.modules)))\n"
    )
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(src), env.get("PYTHONPATH", "")) if p)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"importing {module_name} failed in a fresh process:\n{proc.stderr.strip()}")
    heavy = json.loads(proc.stdout.strip().splitlines()[-1])
    if heavy:
        raise AssertionError(
            f"importing {module_name} imports {', '.join(heavy)}; import heavy libraries inside the methods "
            "that need them (serkit imports every plugin at start-up)"
        )
