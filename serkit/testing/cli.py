"""Run the ``serkit`` command line in-process from tests."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["run_cli", "run_recipe_isolated"]


def run_cli(args: Sequence[str]) -> int:
    """Run ``serkit ARGS`` in this process and return its exit code (0 on success)."""
    from serkit.cli.main import main

    try:
        main(list(args))
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def run_recipe_isolated(recipe: str, folder: Path, cache: Path, then: Sequence[Sequence[str]] = ()) -> Path:
    """``serkit run`` a recipe text into ``folder / "run"``, then the commands of ``then``.

    The recipe is written to ``folder / "r.yaml"``. While it runs, ``SERKIT_CACHE`` is
    ``cache`` and plugin autoloading is off, with fresh plugin state before and after;
    the environment is restored afterwards (for module-scoped fixtures, which cannot use
    pytest's function-scoped ``monkeypatch``).

    Returns:
        the run folder.

    Raises:
        AssertionError: a command exited with a non-zero code.
    """
    from serkit.plugins import reset_plugins

    path = folder / "r.yaml"
    path.write_text(recipe)
    run_dir = folder / "run"
    env = {"SERKIT_CACHE": str(cache), "SERKIT_DISABLE_PLUGIN_AUTOLOAD": "1"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    reset_plugins()
    try:
        for args in [["run", str(path), "--out", str(run_dir), "--quiet"], *map(list, then)]:
            code = run_cli(args)
            if code != 0:
                raise AssertionError(f"serkit {' '.join(args)} exited with code {code}")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        reset_plugins()
    return run_dir
