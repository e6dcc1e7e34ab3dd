"""The recipes that ship with serkit: ``serkit run quickstart`` works from any folder.

In a wheel they are package data (``serkit/recipes/*.yaml``, copied from the repository's
``recipes/`` folder at build time); in a source checkout (an editable install) they are
read from ``recipes/`` itself. ``serkit recipes`` lists them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from serkit.errors import RecipeError

__all__ = ["BundledRecipe", "bundled_recipes", "recipes_dir", "resolve_recipe"]


@dataclass(frozen=True)
class BundledRecipe:
    """One bundled recipe file: its name (file name without ``.yaml``), path, kind and summary."""

    name: str
    path: Path
    kind: str  # "recipe" | "sweep"
    summary: str


def recipes_dir() -> Path | None:
    """The folder of the bundled recipes: ``serkit/recipes`` in a wheel, else the checkout's ``recipes/``."""
    package = Path(__file__).resolve().parent
    for folder in (package / "recipes", package.parent / "recipes"):
        if folder.is_dir() and any(folder.glob("*.yaml")):
            return folder
    return None


def _summary(text: str) -> str:
    """The ``description:`` of a recipe, else its first comment line."""
    comment = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("description:"):
            return stripped.removeprefix("description:").strip().strip("'\"")
        if not comment and stripped.startswith("#") and stripped.lstrip("#").strip():
            comment = stripped.lstrip("#").strip()
    return comment


def bundled_recipes() -> list[BundledRecipe]:
    """Every bundled recipe and sweep, sorted by name (empty if none are installed)."""
    folder = recipes_dir()
    if folder is None:
        return []
    out = []
    for path in sorted(folder.glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        kind = "sweep" if any(line.startswith("variants:") for line in text.splitlines()) else "recipe"
        out.append(BundledRecipe(path.stem, path, kind, _summary(text)))
    return out


def resolve_recipe(arg: str | Path) -> Path:
    """The recipe file ``arg`` names: a path that exists, else a bundled recipe's name.

    ``quickstart`` and ``quickstart.yaml`` name the bundled ``quickstart.yaml``; so does a
    ``recipes/quickstart.yaml`` that does not exist here (outside the repository).

    Raises:
        RecipeError: neither a file nor a bundled recipe (the bundled ones are listed).
    """
    path = Path(arg)
    if path.is_file():
        return path
    if path.exists():
        raise RecipeError(f"{path}: not a recipe file (a YAML file or a bundled recipe name)")
    name = path.name.removesuffix(".yaml").removesuffix(".yml")
    if len(path.parts) == 1 or path.parent.name == "recipes":
        for recipe in bundled_recipes():
            if recipe.name == name:
                return recipe.path
    known = ", ".join(r.name for r in bundled_recipes()) or "none installed"
    raise RecipeError(f"{path}: no such recipe file, nor a bundled recipe of that name (bundled: {known})")
