"""Plugin loading through real entry points of fake distributions on sys.path."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from serkit.plugins import load_plugins

GOOD = '''
from typing import ClassVar
from pydantic import Field
import serkit

class Tiny(serkit.Dataset):
    """Tiny demo dataset."""
    name: ClassVar[str] = "tiny_demo"

    class Params(serkit.ComponentParams):
        root: str = Field("x", description="root")

    def utterances(self):
        return []

@serkit.hookimpl
def serkit_register_components(registry):
    registry.register(Tiny)

@serkit.hookimpl
def serkit_label_aliases():
    return {"ghussa": "angry"}
'''

BROKEN = "raise RuntimeError('boom at import')\n"

DUPLICATE = '''
from typing import ClassVar
import serkit
from serkit.builtin.datasets.manifest import ManifestDataset

class Clash(ManifestDataset):
    """Takes a built-in name."""
    name: ClassVar[str] = "manifest"

class Fine(ManifestDataset):
    """Still registered."""
    name: ClassVar[str] = "fine_one"

@serkit.hookimpl
def serkit_register_components(registry):
    registry.register(Clash)
    registry.register(Fine)
'''

UNKNOWN_HOOK = """
import serkit

@serkit.hookimpl
def serkit_register_everything(registry):
    pass
"""


def install_fake(tmp: Path, dist: str, module: str, source: str, ep_name: str) -> None:
    """Create an importable module plus a dist-info advertising it in serkit.plugins."""
    (tmp / f"{module}.py").write_text(textwrap.dedent(source))
    info = tmp / f"{dist.replace('-', '_')}-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text(f"[serkit.plugins]\n{ep_name} = {module}\n")


@pytest.fixture
def fake_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    return site


def test_builtins_load_and_register_through_entry_point() -> None:
    manager = load_plugins(autoload=True)
    assert manager.errors == []
    builtin = [p for p in manager.plugins if p.name == "builtin"]
    assert builtin and builtin[0].distribution == "serkit"
    reg = manager.registry
    for kind, name in [
        ("dataset", "synthetic"),
        ("extractor", "mfcc"),
        ("extractor", "ge2e"),
        ("encoder", "cnn_bilstm_attn"),
        ("fusion", "concat"),
        ("head", "mlp"),
        ("loss", "cross_entropy"),
        ("optimizer", "adamw"),
    ]:
        assert reg.entry(kind, name).distribution == "serkit"


def test_third_party_plugin_is_discovered(fake_site: Path) -> None:
    install_fake(fake_site, "serkit-plugin-demo", "demo_plugin_mod", GOOD, "demo")
    manager = load_plugins(autoload=True)
    assert manager.errors == []
    entry = manager.registry.entry("dataset", "tiny_demo")
    assert (entry.plugin, entry.distribution) == ("demo", "serkit-plugin-demo")
    aliases = {}
    for extra in manager.hook.serkit_label_aliases():
        aliases.update(extra)
    assert aliases["ghussa"] == "angry"


def test_disable_autoload_and_block(fake_site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_fake(
        fake_site,
        "serkit-plugin-demo",
        "demo_plugin_mod2",
        GOOD.replace("tiny_demo", "tiny_two"),
        "demo2",
    )
    assert ("dataset", "tiny_two") in load_plugins(autoload=True).registry
    assert ("dataset", "tiny_two") not in load_plugins(autoload=True, blocked=["demo2"]).registry
    assert ("dataset", "tiny_two") not in load_plugins(autoload=True, blocked=["serkit-plugin-demo"]).registry
    monkeypatch.setenv("SERKIT_DISABLE_PLUGIN_AUTOLOAD", "1")
    manager = load_plugins()
    assert ("dataset", "tiny_two") not in manager.registry
    assert ("dataset", "manifest") in manager.registry  # built-ins still load


def test_broken_plugin_reports_distribution_and_rest_works(fake_site: Path) -> None:
    install_fake(fake_site, "serkit-plugin-broken", "broken_plugin_mod", BROKEN, "broken")
    install_fake(
        fake_site,
        "serkit-plugin-demo",
        "demo_plugin_mod3",
        GOOD.replace("tiny_demo", "tiny_three"),
        "demo3",
    )
    manager = load_plugins(autoload=True)
    messages = [str(e) for e in manager.errors]
    assert messages == [
        "plugin 'broken' (distribution serkit-plugin-broken 0.3) failed to import: "
        "RuntimeError: boom at import"
    ]
    assert ("dataset", "tiny_three") in manager.registry
    assert ("dataset", "manifest") in manager.registry


def test_plugin_that_exits_at_import_is_reported(fake_site: Path) -> None:
    install_fake(fake_site, "serkit-plugin-quits", "quits_plugin_mod", "import sys\nsys.exit(3)\n", "quits")
    manager = load_plugins(autoload=True)
    assert [str(e) for e in manager.errors] == [
        "plugin 'quits' (distribution serkit-plugin-quits 0.3) failed to import: SystemExit: 3"
    ]
    assert ("dataset", "manifest") in manager.registry


def test_duplicate_name_is_reported_and_other_components_register(fake_site: Path) -> None:
    install_fake(fake_site, "serkit-plugin-dup", "dup_plugin_mod", DUPLICATE, "dup")
    manager = load_plugins(autoload=True)
    assert [str(e) for e in manager.errors] == [
        "plugin 'dup' (distribution serkit-plugin-dup): dataset 'manifest' is already registered "
        "by plugin 'builtin' (distribution serkit)"
    ]
    assert manager.registry.entry("dataset", "manifest").distribution == "serkit"
    assert manager.registry.entry("dataset", "fine_one").distribution == "serkit-plugin-dup"


def test_unknown_hook_is_reported(fake_site: Path) -> None:
    install_fake(fake_site, "serkit-plugin-odd", "odd_plugin_mod", UNKNOWN_HOOK, "odd")
    manager = load_plugins(autoload=True)
    assert len(manager.errors) == 1
    msg = str(manager.errors[0])
    assert msg.startswith(
        "plugin 'odd' (distribution serkit-plugin-odd 0.3) implements unknown hook(s) "
        "serkit_register_everything; known hooks: "
    )
    assert "serkit_register_components" in msg
    assert "odd" not in [p.name for p in manager.plugins]


def test_cli_plugins_lists_third_party_with_distribution(fake_site: Path) -> None:
    install_fake(
        fake_site,
        "serkit-plugin-demo",
        "demo_plugin_mod4",
        GOOD.replace("tiny_demo", "tiny_cli"),
        "democli",
    )
    env_path = f"{fake_site}"
    out = subprocess.run(
        [sys.executable, "-c", "from serkit.cli.main import main; main()", "plugins", "--json"],
        capture_output=True,
        text=True,
        env={**_env(), "PYTHONPATH": env_path},
        check=True,
    ).stdout
    import json

    rows = json.loads(out)["components"]
    row = next(r for r in rows if r["name"] == "tiny_cli")
    assert row["kind"] == "dataset" and row["distribution"] == "serkit-plugin-demo"
    out2 = subprocess.run(
        [
            sys.executable,
            "-c",
            "from serkit.cli.main import main; main()",
            "--no-plugin",
            "democli",
            "plugins",
            "--json",
        ],
        capture_output=True,
        text=True,
        env={**_env(), "PYTHONPATH": env_path},
        check=True,
    ).stdout
    assert "tiny_cli" not in out2


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SERKIT_DISABLE_PLUGIN_AUTOLOAD")}


def test_plugins_load_when_the_importlib_metadata_backport_is_on_meta_path() -> None:
    """mlflow (and others) import importlib_metadata, whose finder then makes entry_points()
    return the backport's EntryPoint class, and plugins must still load."""
    import subprocess
    import sys

    pytest.importorskip("importlib_metadata")
    code = (
        "import importlib_metadata, sys\n"
        "from importlib import metadata\n"
        "eps = [ep for ep in importlib_metadata.entry_points(group='serkit.plugins')]\n"
        "assert eps and not isinstance(eps[0], metadata.EntryPoint)\n"
        "import serkit.plugins as p\n"
        "p._entry_points = lambda: eps\n"
        "m = p.load_plugins(autoload=True)\n"
        "print(('extractor', 'mfcc') in m.registry, [str(e) for e in m.errors])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.startswith("True []"), out.stdout + out.stderr
