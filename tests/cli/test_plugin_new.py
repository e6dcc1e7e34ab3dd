"""``serkit plugin new``: names, files, no overwrite, and a generated package that passes its tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from serkit.cli.main import main
from serkit.cli.plugin_cmd import plugin
from serkit.errors import SerkitError
from serkit.scaffold import FILES, _isort_order, new_plugin, plugin_names, validate_language, validate_name

BIN = Path(sys.executable).parent

EXPECTED_FILES = [
    ".gitignore",
    "README.md",
    "pyproject.toml",
    "src/serkit_plugin_my_language/__init__.py",
    "src/serkit_plugin_my_language/dataset.py",
    "src/serkit_plugin_my_language/plugin.py",
    "src/serkit_plugin_my_language/py.typed",
    "tests/test_dataset.py",
]


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_names_derived_from_the_plugin_name() -> None:
    names = plugin_names("my_language", "sw")
    assert (names.name, names.package, names.dist, names.class_name, names.title, names.language) == (
        "my_language",
        "serkit_plugin_my_language",
        "serkit-plugin-my_language",
        "MyLanguageDataset",
        "My Language",
        "sw",
    )
    assert plugin_names("pashto2").class_name == "Pashto2Dataset"


@pytest.mark.parametrize("bad", ["My-Lang", "my-lang", "1lang", "my__lang", "lang_", "_lang", "class", "x" * 33, ""])
def test_invalid_names_are_refused_with_the_rule(bad: str) -> None:
    with pytest.raises(SerkitError) as info:
        validate_name(bad)
    assert str(info.value) == (
        f"plugin name {bad!r} is not valid: use snake_case (lower-case letters a-z, digits 0-9 and single "
        "underscores between words, starting with a letter, at most 32 characters, not a Python keyword), "
        "e.g. 'swahili' or 'my_language'"
    )


@pytest.mark.parametrize("good", ["sw", "swa", "pt-BR", "zh-Hant", "und"])
def test_language_codes(good: str) -> None:
    assert validate_language(good) == good


def test_bad_language_code() -> None:
    with pytest.raises(SerkitError) as info:
        validate_language("Swahili")
    assert str(info.value) == (
        "--language 'Swahili' is not a language code: use an ISO 639-1 or 639-3 code in lower case with "
        "optional subtags, e.g. 'sw', 'swa', 'pt-BR' ('und' if undetermined)"
    )


def test_isort_order_matches_ruff() -> None:
    assert _isort_order(["parse", "ZuluDataset", "Parsed", "LABELS", "AmharicDataset", "FILE_RE"]) == [
        "FILE_RE",
        "LABELS",
        "AmharicDataset",
        "Parsed",
        "ZuluDataset",
        "parse",
    ]


def test_new_plugin_writes_every_file_with_every_placeholder_filled(tmp_path: Path) -> None:
    target = new_plugin("my_language", tmp_path / "plugins", language="sw")
    assert target == tmp_path / "plugins" / "serkit-plugin-my_language"
    assert _files(target) == EXPECTED_FILES
    assert len(FILES) == len(EXPECTED_FILES)
    for rel in EXPECTED_FILES:
        text = (target / rel).read_text()
        assert not re.search(r"\$\{?[a-z_]+", text), rel  # no unfilled $placeholder
    pyproject = (target / "pyproject.toml").read_text()
    assert 'name = "serkit-plugin-my_language"' in pyproject
    assert '[project.entry-points."serkit.plugins"]\nmy_language = "serkit_plugin_my_language.plugin"' in pyproject
    dataset = (target / "src/serkit_plugin_my_language/dataset.py").read_text()
    assert 'name: ClassVar[str] = "my_language"' in dataset
    assert 'language: ClassVar[str] = "sw"' in dataset
    assert "class MyLanguageDataset(Dataset):" in dataset
    assert r'FILE_RE = re.compile(r"^(?P<speaker>[A-Za-z0-9]+)_(?P<take>[A-Za-z0-9]+)$")' in dataset


def test_existing_folder_is_never_overwritten(tmp_path: Path) -> None:
    existing = tmp_path / "serkit-plugin-swahili"
    existing.mkdir()
    (existing / "mine.txt").write_text("keep me")
    with pytest.raises(SerkitError) as info:
        new_plugin("swahili", tmp_path)
    assert str(info.value) == (
        f"{existing} already exists; refusing to overwrite it (remove it or pick another --dest)"
    )
    assert _files(existing) == ["mine.txt"]


def test_a_registered_dataset_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SerkitError) as info:
        new_plugin("folder", tmp_path)
    message = str(info.value)
    head = "a dataset named 'folder' is already registered (distribution serkit); choose another plugin name"
    assert message.startswith(head + " (registered datasets: ")
    listed = message[len(head) + len(" (registered datasets: ") : -1].split(", ")
    assert "folder" in listed and "manifest" in listed and listed == sorted(listed)
    assert list(tmp_path.iterdir()) == []


def test_cli_command_creates_the_plugin_and_prints_next_steps(tmp_path: Path) -> None:
    result = CliRunner().invoke(plugin, ["new", "swahili", "--dest", str(tmp_path), "--language", "sw"])
    assert result.exit_code == 0, result.output
    target = tmp_path / "serkit-plugin-swahili"
    assert result.output.startswith(f"created {target}/ (8 files)\nnext steps:\n")
    assert f"  3. pytest {target}/tests\n" in result.output
    assert f"  4. pip install -e {target}\n" in result.output
    assert "serkit plugins    (lists dataset swahili from serkit-plugin-swahili)" in result.output
    assert 'language: ClassVar[str] = "sw"' in (target / "src/serkit_plugin_swahili/dataset.py").read_text()


def test_errors_through_the_main_cli_are_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        main(["plugin", "new", "Swahili"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: plugin name 'Swahili' is not valid: use snake_case")
    assert list(tmp_path.iterdir()) == []


def test_generated_package_is_ruff_clean_and_passes_its_own_tests(tmp_path: Path) -> None:
    target = new_plugin("amharic", tmp_path, language="am")
    ruff = subprocess.run([str(BIN / "ruff"), "check", "."], cwd=target, capture_output=True, text=True)
    assert ruff.returncode == 0, ruff.stdout + ruff.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error::pytest.PytestWarning"],
        cwd=target,
        env={**os.environ, "COLUMNS": "300"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    # 8 contract rules + 4 dataset tests; the entry-point test needs `pip install` (tests/docs covers it)
    assert "12 passed, 1 skipped, 3 warnings" in out, out
    assert re.search(r"SKIPPED \[1\] tests/test_dataset.py:\d+: serkit-plugin-amharic is not pip-installed", out), out
    # the three warnings are the TODO metadata the author still has to fill in
    assert out.count("ContractWarning: AmharicDataset.") == 3, out
