"""Files from elsewhere: checkpoints that are pickles, and plugins that break or collide.

Archive traversal and download checksums are tested in tests/data/test_download.py; a
plugin failing at import and a plugin taking a built-in name in tests/test_plugins.py.
"""

from __future__ import annotations

import pickle
import textwrap
from pathlib import Path

import pytest
import torch

from serkit.engine.checkpoint import load_weights, save_checkpoint
from serkit.errors import ModelError
from serkit.plugins import load_plugins

PICKLE_REFUSED = (
    "this is a pickle (torch.save) file, not safetensors; serkit never unpickles checkpoints "
    "(convert it with safetensors.torch.save_file in a trusted environment)"
)


class _Trap:
    """Unpickling this writes a marker file: proof that a loader ran pickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.write_text, (self.marker, "unpickled!"))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_a_pickle_checkpoint_is_refused_and_never_unpickled(tmp_path: Path, protocol: int) -> None:
    marker = tmp_path / "marker.txt"
    ckpt = tmp_path / "r0-f0.safetensors"
    ckpt.write_bytes(pickle.dumps({"weight": _Trap(marker)}, protocol=protocol))
    with pytest.raises(ModelError) as info:
        load_weights(ckpt)
    assert str(info.value) == f"{ckpt}: {PICKLE_REFUSED}"
    assert not marker.exists()


def test_a_torch_save_checkpoint_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    ckpt = tmp_path / "model.safetensors"
    torch.save({"w": torch.zeros(3), "trap": _Trap(marker)}, ckpt)
    with pytest.raises(ModelError) as info:
        load_weights(ckpt)
    assert str(info.value) == f"{ckpt}: {PICKLE_REFUSED}"
    assert not marker.exists()


def test_other_broken_checkpoints(tmp_path: Path) -> None:
    good = tmp_path / "good.safetensors"
    save_checkpoint(good, {"w": torch.arange(6.0).reshape(2, 3)})
    assert torch.equal(load_weights(good)["w"], torch.arange(6.0).reshape(2, 3))
    for name, data in [("empty", b""), ("short", good.read_bytes()[:20]), ("text", b"hello world, not tensors")]:
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(data)
        with pytest.raises(ModelError) as info:
            load_weights(path)
        assert str(info.value).startswith(f"{path}: not a valid safetensors checkpoint (")
    folder = tmp_path / "dir.safetensors"
    folder.mkdir()
    with pytest.raises(ModelError) as info:
        load_weights(folder)
    assert str(info.value) == f"{folder}: cannot read checkpoint (Is a directory)"
    with pytest.raises(ModelError) as info:
        load_weights(tmp_path / "missing.safetensors")
    assert str(info.value) == f"{tmp_path / 'missing.safetensors'}: checkpoint not found"


# ----------------------------------------------------------------------------- plugins
def install_fake(site: Path, dist: str, module: str, source: str, ep_name: str) -> None:
    """An importable module plus a dist-info advertising it in the serkit.plugins group."""
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[serkit.plugins]\n{ep_name} = {module}\n")


CORPUS = '''
from typing import ClassVar
import serkit
from serkit.builtin.datasets.manifest import ManifestDataset

class Corpus(ManifestDataset):
    """A corpus named like another plugin's."""
    name: ClassVar[str] = "swahili_corpus"

@serkit.hookimpl
def serkit_register_components(registry):
    registry.register(Corpus)
'''

RAISES_IN_HOOK = '''
import serkit

@serkit.hookimpl
def serkit_register_components(registry):
    raise ValueError("half-registered")
'''


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    return folder


def test_two_plugins_registering_the_same_name(site: Path) -> None:
    """Entry points load by name: 'alpha' wins, 'beta' is reported naming both, and serkit goes on."""
    install_fake(site, "serkit-plugin-beta", "hostile_beta_mod", CORPUS, "beta")
    install_fake(site, "serkit-plugin-alpha", "hostile_alpha_mod", CORPUS, "alpha")
    manager = load_plugins(autoload=True)
    assert [str(e) for e in manager.errors] == [
        "plugin 'beta' (distribution serkit-plugin-beta): dataset 'swahili_corpus' is already registered by "
        "plugin 'alpha' (distribution serkit-plugin-alpha)"
    ]
    assert manager.registry.entry("dataset", "swahili_corpus").distribution == "serkit-plugin-alpha"
    assert ("dataset", "manifest") in manager.registry


def test_a_plugin_whose_registration_hook_raises(site: Path) -> None:
    install_fake(site, "serkit-plugin-raises", "hostile_raises_mod", RAISES_IN_HOOK, "raises")
    manager = load_plugins(autoload=True)
    assert [str(e) for e in manager.errors] == [
        "plugin 'raises' (distribution serkit-plugin-raises 1.0): serkit_register_components failed: "
        "ValueError: half-registered"
    ]
    assert ("extractor", "mfcc") in manager.registry
