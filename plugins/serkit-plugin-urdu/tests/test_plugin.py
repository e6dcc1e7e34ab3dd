"""The plugin as serkit sees it: hooks, entry point, recipes, light imports."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from serkit.data.labels import canonical_label
from serkit.plugins import load_plugins

import serkit_plugin_urdu.plugin as urdu_plugin
from serkit_plugin_urdu.dataset import UrduDataset


def _installed() -> bool:
    try:
        metadata.distribution("serkit-plugin-urdu")
    except metadata.PackageNotFoundError:
        return False
    return True


def test_hooks_register_the_dataset_and_label_aliases() -> None:
    manager = load_plugins(autoload=False, extra=[("urdu_test", urdu_plugin)])
    assert manager.errors == []
    entry = manager.registry.entry("dataset", "urdu")
    assert entry.cls is UrduDataset and entry.plugin == "urdu_test"
    aliases: dict[str, str] = {}
    for extra in manager.hook.serkit_label_aliases():
        aliases.update(extra)
    assert aliases["ghussa"] == "angry" and aliases["خوشی"] == "happy" and aliases["udaas"] == "sad"
    # the aliases only add labels; they never map onto something non-canonical
    assert set(urdu_plugin.URDU_LABEL_ALIASES.values()) == {"angry", "happy", "sad"}
    assert canonical_label("Ghussa", urdu_plugin.URDU_LABEL_ALIASES) == "angry"


@pytest.mark.skipif(
    not _installed(),
    reason="serkit-plugin-urdu is not pip-installed (pip install -e plugins/serkit-plugin-urdu)",
)
def test_entry_point_registers_urdu_from_its_distribution() -> None:
    manager = load_plugins()
    assert not [e for e in manager.errors if "urdu" in str(e)], manager.errors
    entry = manager.registry.entry("dataset", "urdu")
    assert (entry.plugin, entry.distribution) == ("urdu", "serkit-plugin-urdu")
    assert entry.cls.__module__ == "serkit_plugin_urdu.dataset"


def test_recipe_with_speaker_protocol_validates(tmp_path: Path) -> None:
    from serkit.config.recipe import load_recipe

    recipe = tmp_path / "urdu.yaml"
    recipe.write_text(
        "name: urdu_mfcc\n"
        "protocol: {type: speaker, k: 5}\n"
        "domains:\n"
        "  ur: {dataset: {type: urdu, root: /data/URDU-Dataset}}\n"
        "features:\n"
        "  mfcc: {extractor: {type: mfcc, n_mfcc: 40}, encoder: {type: mean_pool}}\n"
    )
    manager = load_plugins(autoload=False, extra=[("urdu", urdu_plugin)])
    rec, _ = load_recipe(recipe, registry=manager.registry)
    assert rec.domains["ur"].dataset.type == "urdu"
    assert rec.domains["ur"].dataset.strict is True
    bad = tmp_path / "bad.yaml"
    bad.write_text(recipe.read_text().replace("root: /data/URDU-Dataset", "rot: /data"))
    from serkit.errors import RecipeError

    with pytest.raises(RecipeError) as info:
        load_recipe(bad, registry=manager.registry)
    assert "domains.ur.dataset.rot (line 4): unknown field 'rot'; did you mean 'root'? (fields: root, strict)" in str(
        info.value
    )


def test_importing_the_plugin_is_light() -> None:
    code = (
        "import sys, serkit_plugin_urdu.plugin\n"
        "print(sorted(m for m in ('torch', 'librosa', 'numpy', 'soundfile', 'sklearn') if m in sys.modules))"
    )
    src = str(Path(urdu_plugin.__file__).parents[1])
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": src}
    )
    assert proc.stdout.strip() == "[]"
