"""The plugin as serkit sees it: hook, entry point, recipe, light import."""

from __future__ import annotations

from pathlib import Path

import pytest
from serkit.plugins import load_plugins
from serkit.testing.plugins import assert_entry_point, assert_hook_registers, assert_light_import

import serkit_plugin_allosaurus.plugin as allo_plugin
from serkit_plugin_allosaurus.extractor import Allosaurus


def test_hook_registers_the_extractor() -> None:
    assert_hook_registers(allo_plugin, "extractor", "allosaurus", Allosaurus)


def test_entry_point_registers_allosaurus_from_its_distribution() -> None:
    assert_entry_point("serkit-plugin-allosaurus", "extractor", "allosaurus")


def test_recipe_validates_without_the_model(tmp_path: Path) -> None:
    from serkit.config.recipe import load_recipe
    from serkit.errors import RecipeError

    recipe = tmp_path / "allo.yaml"
    recipe.write_text(
        "name: phones\n"
        "domains:\n"
        "  de: {dataset: {type: manifest, path: /data/m.csv}}\n"
        "features:\n"
        "  phones:\n"
        "    extractor: {type: allosaurus, model_dir: /models/uni2005, output: posteriors}\n"
        "    encoder: {type: mean_pool}\n"
    )
    manager = load_plugins(autoload=False, extra=[("allosaurus", allo_plugin)])
    rec, _ = load_recipe(recipe, registry=manager.registry)
    assert rec.features["phones"].extractor.model_dir == "/models/uni2005"
    bad = tmp_path / "bad.yaml"
    bad.write_text(recipe.read_text().replace("output: posteriors", "output: logits"))
    with pytest.raises(RecipeError, match=r"features\.phones\.extractor\.output"):
        load_recipe(bad, registry=manager.registry)


def test_importing_the_plugin_is_light() -> None:
    assert_light_import(
        "serkit_plugin_allosaurus.plugin",
        forbidden=("allosaurus", "numpy", "torch", "panphon", "scipy"),
        src=Path(allo_plugin.__file__).parents[1],
    )
