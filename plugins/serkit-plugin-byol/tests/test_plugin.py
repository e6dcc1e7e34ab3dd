"""The plugin as serkit sees it: hook, entry point, recipe, light import."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from serkit.plugins import load_plugins

import serkit_plugin_byol.plugin as byol_plugin
from serkit_plugin_byol.extractor import Byol


def _installed() -> bool:
    try:
        metadata.distribution("serkit-plugin-byol")
    except metadata.PackageNotFoundError:
        return False
    return True


def test_hook_registers_the_extractor() -> None:
    manager = load_plugins(autoload=False, extra=[("byol_test", byol_plugin)])
    assert manager.errors == []
    entry = manager.registry.entry("extractor", "byol")
    assert entry.cls is Byol and entry.plugin == "byol_test"


@pytest.mark.skipif(
    not _installed(), reason="serkit-plugin-byol is not pip-installed (pip install -e plugins/serkit-plugin-byol)"
)
def test_entry_point_registers_byol_from_its_distribution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SERKIT_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    manager = load_plugins()
    assert not [e for e in manager.errors if "byol" in str(e)], manager.errors
    entry = manager.registry.entry("extractor", "byol")
    assert (entry.plugin, entry.distribution) == ("byol", "serkit-plugin-byol")


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
    code = (
        "import sys, serkit_plugin_byol.plugin\n"
        "print(sorted(m for m in ('numpy', 'torch', 'librosa', 'safetensors') if m in sys.modules))"
    )
    src = str(Path(byol_plugin.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": src}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert proc.stdout.strip() == "[]"
