"""What several ``serkit`` commands share (kept apart from :mod:`serkit.cli.main`, which imports the commands)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

__all__ = ["load_recipe_arg", "plugin_warnings"]


def plugin_warnings() -> None:
    """Print every plugin that failed to load as one ``warning: ...`` line on stderr."""
    from serkit.plugins import get_plugin_manager

    for err in get_plugin_manager().errors:
        click.secho(f"warning: {err}", fg="yellow", err=True)


def load_recipe_arg(
    recipe: str | Path, overrides: Iterable[str] = (), unset: Iterable[str] = ()
) -> tuple[Any, Path]:
    """The validated recipe a command's RECIPE argument names (a YAML file, or the name of a
    bundled recipe: ``serkit recipes``) with ``--set``/``--unset`` applied, and its file.

    Raises:
        RecipeError: no such file or bundled recipe, or every problem of the recipe.
    """
    from serkit.bundled import resolve_recipe
    from serkit.config.recipe import load_recipe

    path = resolve_recipe(recipe)
    rec, _ = load_recipe(path, overrides, unset=unset)
    return rec, path
