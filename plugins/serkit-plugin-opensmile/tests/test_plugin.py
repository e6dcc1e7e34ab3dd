"""The plugin as serkit sees it: hook, entry point, recipe, light import."""

from __future__ import annotations

from pathlib import Path

import pytest
from serkit.plugins import load_plugins
from serkit.testing.plugins import assert_entry_point, assert_hook_registers, assert_light_import

import serkit_plugin_opensmile.plugin as smile_plugin
from serkit_plugin_opensmile.extractor import OpenSmile


def test_hook_registers_the_extractor() -> None:
    assert_hook_registers(smile_plugin, "extractor", "opensmile", OpenSmile)


def test_entry_point_registers_opensmile_from_its_distribution() -> None:
    assert_entry_point("serkit-plugin-opensmile", "extractor", "opensmile")


def test_recipe_validates_and_reports_unknown_sets(tmp_path: Path) -> None:
    from serkit.config.recipe import load_recipe
    from serkit.errors import RecipeError

    recipe = tmp_path / "smile.yaml"
    recipe.write_text(
        "name: egemaps\n"
        "domains:\n"
        "  de: {dataset: {type: manifest, path: /data/m.csv}}\n"
        "features:\n"
        "  egemaps: {extractor: {type: opensmile, feature_set: eGeMAPSv02}}\n"
        "  lld: {extractor: {type: opensmile, feature_set: ComParE_2016, level: lld}, encoder: {type: mean_pool}}\n"
    )
    manager = load_plugins(autoload=False, extra=[("opensmile", smile_plugin)])
    rec, _ = load_recipe(recipe, registry=manager.registry)
    assert rec.features["egemaps"].extractor.feature_set == "eGeMAPSv02"
    assert rec.features["lld"].extractor.level == "lld"
    bad = tmp_path / "bad.yaml"
    bad.write_text(recipe.read_text().replace("feature_set: eGeMAPSv02", "feature_set: eGeMAPS"))
    with pytest.raises(RecipeError) as info:
        load_recipe(bad, registry=manager.registry)
    assert "unknown openSMILE feature set 'eGeMAPS'; did you mean 'eGeMAPSv02'? available: " in str(info.value)


def test_importing_the_plugin_is_light() -> None:
    assert_light_import(
        "serkit_plugin_opensmile.plugin",
        forbidden=("opensmile", "numpy", "pandas", "torch", "librosa"),
        src=Path(smile_plugin.__file__).parents[1],
    )
