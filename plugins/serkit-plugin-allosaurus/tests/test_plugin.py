"""The plugin as serkit sees it: hook, entry point, recipe, light import."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from serkit.plugins import load_plugins

import serkit_plugin_allosaurus.plugin as allo_plugin
from serkit_plugin_allosaurus.extractor import Allosaurus


def _installed() -> bool:
    try:
        metadata.distribution("serkit-plugin-allosaurus")
    except metadata.PackageNotFoundError:
        return False
    return True


def test_hook_registers_the_extractor() -> None:
    manager = load_plugins(autoload=False, extra=[("allosaurus_test", allo_plugin)])
    assert manager.errors == []
    entry = manager.registry.entry("extractor", "allosaurus")
    assert entry.cls is Allosaurus and entry.plugin == "allosaurus_test"


@pytest.mark.skipif(
    not _installed(),
    reason="serkit-plugin-allosaurus is not pip-installed (pip install -e plugins/serkit-plugin-allosaurus)",
)
def test_entry_point_registers_allosaurus_from_its_distribution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SERKIT_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    manager = load_plugins()
    assert not [e for e in manager.errors if "allosaurus" in str(e)], manager.errors
    entry = manager.registry.entry("extractor", "allosaurus")
    assert (entry.plugin, entry.distribution) == ("allosaurus", "serkit-plugin-allosaurus")


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
    code = (
        "import sys, serkit_plugin_allosaurus.plugin\n"
        "print(sorted(m for m in ('allosaurus', 'numpy', 'torch', 'panphon', 'scipy') if m in sys.modules))"
    )
    src = str(Path(allo_plugin.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": src}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert proc.stdout.strip() == "[]"
