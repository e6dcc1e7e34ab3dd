"""The plugin as serkit sees it: hook, entry point, recipe, light import."""

from __future__ import annotations

from pathlib import Path

import pytest
from serkit.plugins import load_plugins
from serkit.testing.plugins import assert_entry_point, assert_hook_registers, assert_light_import

import serkit_plugin_byol.plugin as byol_plugin
from serkit_plugin_byol.extractor import Byol


def test_hook_registers_the_extractor() -> None:
    assert_hook_registers(byol_plugin, "extractor", "byol", Byol)


def test_entry_point_registers_byol_from_its_distribution() -> None:
    assert_entry_point("serkit-plugin-byol", "extractor", "byol")


def test_recipe_validates(tmp_path: Path) -> None:
    from serkit.config.recipe import load_recipe
    from serkit.errors import RecipeError

    recipe = tmp_path / "byol.yaml"
    recipe.write_text(
        "name: byol\n"
        "domains:\n"
        "  de: {dataset: {type: manifest, path: /data/m.csv}}\n"
        "features:\n"
        "  byol: {extractor: {type: byol, checkpoint: /w/AudioNTT2020-BYOLA-64x96d2048.pth, d: 2048}}\n"
    )
    manager = load_plugins(autoload=False, extra=[("byol", byol_plugin)])
    rec, _ = load_recipe(recipe, registry=manager.registry)
    assert rec.features["byol"].extractor.d == 2048
    bad = tmp_path / "bad.yaml"
    bad.write_text(recipe.read_text().replace("d: 2048", "d: 768"))
    with pytest.raises(RecipeError, match=r"features\.byol\.extractor\.d"):
        load_recipe(bad, registry=manager.registry)


def test_importing_the_plugin_is_light() -> None:
    assert_light_import(
        "serkit_plugin_byol.plugin",
        forbidden=("numpy", "torch", "librosa", "safetensors"),
        src=Path(byol_plugin.__file__).parents[1],
    )
