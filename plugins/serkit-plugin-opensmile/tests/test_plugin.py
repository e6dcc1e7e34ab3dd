"""The plugin as serkit sees it: hook, entry point, recipe, light import."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from serkit.plugins import load_plugins

import serkit_plugin_opensmile.plugin as smile_plugin
from serkit_plugin_opensmile.extractor import OpenSmile


def _installed() -> bool:
    try:
        metadata.distribution("serkit-plugin-opensmile")
    except metadata.PackageNotFoundError:
        return False
    return True


def test_hook_registers_the_extractor() -> None:
    manager = load_plugins(autoload=False, extra=[("opensmile_test", smile_plugin)])
    assert manager.errors == []
    entry = manager.registry.entry("extractor", "opensmile")
    assert entry.cls is OpenSmile and entry.plugin == "opensmile_test"


@pytest.mark.skipif(
    not _installed(),
    reason="serkit-plugin-opensmile is not pip-installed (pip install -e plugins/serkit-plugin-opensmile)",
)
def test_entry_point_registers_opensmile_from_its_distribution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SERKIT_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    manager = load_plugins()
    assert not [e for e in manager.errors if "opensmile" in str(e)], manager.errors
    entry = manager.registry.entry("extractor", "opensmile")
    assert (entry.plugin, entry.distribution) == ("opensmile", "serkit-plugin-opensmile")


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
    code = (
        "import sys, serkit_plugin_opensmile.plugin\n"
        "print(sorted(m for m in ('opensmile', 'numpy', 'pandas', 'torch', 'librosa') if m in sys.modules))"
    )
    src = str(Path(smile_plugin.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": src}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert proc.stdout.strip() == "[]"
