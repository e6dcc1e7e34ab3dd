"""The CLI's fast paths must not import heavy libraries."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "librosa", "resemblyzer", "transformers", "sklearn")


def _modules_after(args: list[str]) -> set[str]:
    code = (
        "import sys\n"
        "from serkit.cli.main import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('\\n'.join(sorted(sys.modules)), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(proc.stderr.split())


def test_help_and_plugins_and_schema_do_not_import_heavy_libraries() -> None:
    for args in (["--help"], ["plugins"], ["schema"]):
        loaded = _modules_after(args)
        assert not [m for m in HEAVY if m in loaded], args


def test_every_builtin_command_is_wired() -> None:
    from serkit.cli.main import cli

    expected = {
        "run",
        "validate",
        "schema",
        "plugins",
        "sweep",
        "compare",
        "export",
        "data",
        "plugin",
        "predict",
        "cache",
        "report",
        "extract",
        "adapt",
        "learning-curve",
    }
    assert expected <= set(cli.commands)


def test_version() -> None:
    proc = subprocess.run([sys.executable, "-m", "serkit", "--version"], capture_output=True, text=True, check=True)
    assert proc.stdout.startswith("serkit, version ")
