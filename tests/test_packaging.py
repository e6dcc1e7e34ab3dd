"""Installing serkit as a newcomer does (issue 17): bundled recipes, no C compiler, GE2E weights.

The full check (a fresh venv, a CPU torch, ``pip install .`` with ``CC=/bin/false``, then
``serkit run quickstart`` from another folder) takes minutes and the package index: it is
the ``fresh_venv`` test below, run when ``SERKIT_TEST_FRESH_VENV=1``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from serkit.errors import ModelError, RecipeError
from serkit.testing.cli import run_cli

REPO = Path(__file__).resolve().parents[1]


def _source_copy(dest: Path) -> Path:
    """The repository without its venv, git data and build outputs (setuptools builds in place)."""
    import shutil

    skip = shutil.ignore_patterns(".venv", ".git", "runs", "build", "dist", "site", "*.egg-info", "__pycache__",
                                  ".pytest_cache", ".ruff_cache")
    return Path(shutil.copytree(REPO, dest, ignore=skip))


def test_every_recipe_of_the_repository_is_bundled_and_listed(capsys: pytest.CaptureFixture[str]) -> None:
    from serkit.bundled import bundled_recipes

    found = {r.name: r for r in bundled_recipes()}
    assert sorted(found) == sorted(p.stem for p in (REPO / "recipes").glob("*.yaml"))
    assert found["quickstart"].kind == "recipe"
    assert found["quickstart"].summary == (
        "Synthetic pseudo-languages xa and xb, 4 emotions, speaker-independent 4-fold CV."
    )
    assert found["synthetic_table3"].kind == "sweep"
    assert run_cli(["recipes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(found)
    assert any(line.startswith("quickstart ") and " recipe  Synthetic pseudo-languages" in line for line in lines)


def test_a_bundled_recipe_runs_by_name_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from serkit.bundled import resolve_recipe

    monkeypatch.chdir(tmp_path)  # no recipes/ here
    quickstart = REPO / "recipes" / "quickstart.yaml"
    assert resolve_recipe("quickstart").resolve() == quickstart
    assert resolve_recipe("quickstart.yaml").resolve() == quickstart
    assert resolve_recipe("recipes/quickstart.yaml").resolve() == quickstart
    (tmp_path / "quickstart.yaml").write_text("name: mine\n")
    assert resolve_recipe("quickstart.yaml") == Path("quickstart.yaml")  # a file here wins
    with pytest.raises(RecipeError) as err:
        resolve_recipe("quikstart")
    assert str(err.value).startswith("quikstart: no such recipe file, nor a bundled recipe of that name (bundled: ")
    assert run_cli(["validate", "quickstart", "synthetic_multidomain"]) == 0
    assert capsys.readouterr().out.count(": ok\n") == 2


def test_the_wheel_holds_the_recipes_and_no_dependency_needs_a_compiler(tmp_path: Path) -> None:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    deps = [d.split(">")[0].split("=")[0].split("<")[0].strip() for d in meta["project"]["dependencies"]]
    assert "resemblyzer" not in deps and "webrtcvad" not in deps  # webrtcvad's sdist needs a C compiler
    assert "webrtcvad-wheels" in deps
    src = _source_copy(tmp_path / "src")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
         str(src)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "CC": "/bin/false"},
    )
    assert done.returncode == 0, done.stderr
    import zipfile

    (wheel,) = tmp_path.glob("serkit-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert sorted(n for n in names if n.startswith("serkit/recipes/")) == sorted(
        f"serkit/recipes/{p.name}" for p in (REPO / "recipes").glob("*.yaml")
    )


def test_ge2e_says_how_to_get_its_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.abc

    from serkit.builtin.extractors.ge2e import Ge2e

    for name in list(sys.modules):
        if name == "resemblyzer" or name.startswith("resemblyzer."):
            monkeypatch.delitem(sys.modules, name)

    class NoResemblyzer(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path, target=None):  # type: ignore[no-untyped-def]
            if fullname == "resemblyzer":
                raise ModuleNotFoundError("No module named 'resemblyzer'", name="resemblyzer")
            return None

    monkeypatch.setattr(sys, "meta_path", [NoResemblyzer(), *sys.meta_path])
    with pytest.raises(ModelError) as err:
        Ge2e().load_encoder()
    assert str(err.value) == (
        "extractor 'ge2e': its pretrained weights ship in the resemblyzer wheel, which is not installed; install it "
        "without its dependencies (serkit provides them): pip install --no-deps resemblyzer==0.1.4"
    )


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("SERKIT_TEST_FRESH_VENV") != "1", reason="set SERKIT_TEST_FRESH_VENV=1 (minutes)")
def test_fresh_venv_pip_install_without_a_compiler_runs_the_quickstart(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    env = {**os.environ, "CC": "/bin/false", "CXX": "/bin/false"}
    subprocess.run([*pip, "torch==2.13.0"], check=True, env=env, timeout=1800)
    subprocess.run([*pip, str(_source_copy(tmp_path / "src"))], check=True, env=env, timeout=1800)
    subprocess.run([*pip, "--no-deps", "resemblyzer==0.1.4"], check=True, env=env, timeout=600)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    serkit = str(venv / "bin" / "serkit")
    listed = subprocess.run([serkit, "recipes"], cwd=elsewhere, capture_output=True, text=True, check=True)
    assert "quickstart" in listed.stdout
    run_env = {**os.environ, "SERKIT_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    args = [serkit, "run", "quickstart", "--out", "qs", "--quiet", "--set", "train.epochs=1"]
    args += ["--set", "protocol.folds=[0]"]
    done = subprocess.run(args, cwd=elsewhere, env=run_env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (elsewhere / "qs" / "results.json").is_file()
