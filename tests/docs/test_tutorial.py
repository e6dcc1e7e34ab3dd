"""docs/writing-a-dataset-plugin.md, executed: its shell blocks run verbatim in a temp folder.

The ```bash blocks of the tutorial are concatenated into one script and run with bash, in
order, with three stand-ins on PATH so that nothing touches the real environment:
``serkit`` (this serkit, with the ``plugin`` command group), ``pip install -e DIR`` (a
``--no-deps --target`` install into a private site folder on PYTHONPATH) and ``pytest``.
```yaml title="FILE" blocks are written to FILE first. A block preceded by a
``<!-- tutorial-test: skip ... -->`` comment is not run (the full training run). The
corpus is a fake tree of tones in the scaffold's naming scheme, given to the recipe through
the environment variable the tutorial's recipe reads.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from serkit.testing.contracts import write_fake_corpus

DOC = Path(__file__).resolve().parents[2] / "docs" / "writing-a-dataset-plugin.md"
SKIP_MARK = "<!-- tutorial-test: skip"

_FENCE = re.compile(r"^```(?P<lang>\w+)?(?:\s+title=\"(?P<title>[^\"]+)\")?\s*$")

SERKIT_SHIM = """\
import sys

from serkit.cli.main import main

main(sys.argv[1:])
"""

PIP_SHIM = """\
#!/bin/sh
# the tutorial's `pip install -e DIR`, into a private folder instead of the environment
[ "$1" = install ] || { echo "tutorial test: unexpected pip call: pip $*" >&2; exit 97; }
shift
[ "$1" = -e ] && shift
exec "$TUTORIAL_PY" -m pip install --quiet --no-deps --no-build-isolation --target "$TUTORIAL_SITE" "$@"
"""


def parse_blocks(text: str) -> list[tuple[str, str | None, str, bool]]:
    """``(lang, title, body, skipped)`` for every fenced block of ``text``."""
    blocks = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None or lines[i].strip() == "```":
            i += 1
            continue
        previous = next((ln.strip() for ln in reversed(lines[:i]) if ln.strip()), "")
        end = lines.index("```", i + 1)
        blocks.append(
            (m["lang"] or "", m["title"], "\n".join(lines[i + 1 : end]) + "\n", previous.startswith(SKIP_MARK))
        )
        i = end + 1
    return blocks


def test_parse_blocks_finds_titles_and_skip_marks() -> None:
    text = (
        "a\n```bash\necho 1\n```\n<!-- tutorial-test: skip (slow) -->\n```bash\nexit 1\n```\n"
        '```yaml title="r.yaml"\nx: 1\n```\n'
    )
    assert parse_blocks(text) == [
        ("bash", None, "echo 1\n", False),
        ("bash", None, "exit 1\n", True),
        ("yaml", "r.yaml", "x: 1\n", False),
    ]


def test_the_urdu_parse_example_in_the_tutorial_works() -> None:
    from pathlib import PurePosixPath
    from typing import NamedTuple

    class Parsed(NamedTuple):  # as in the generated dataset.py
        id: str
        label: str
        speaker: str

    (snippet,) = [b for lang, _, b, _ in parse_blocks(DOC.read_text(encoding="utf-8")) if "def parse" in b]
    namespace: dict[str, object] = {"re": re, "PurePosixPath": PurePosixPath, "Parsed": Parsed}
    exec(snippet, namespace)
    parse: Any = namespace["parse"]
    assert parse(PurePosixPath("Angry/SM1_F10_A010.wav")) == Parsed("SM1_F10_A010", "angry", "SM1")
    assert parse(PurePosixPath("Sad/SF10_F1_S01.wav")) == Parsed("SF10_F1_S01", "sad", "SF10")
    for bad, reason in [
        ("Happy/SM1_F12_A012.wav", "the folder says happy but the letter 'A' says angry"),
        ("Sad/notes.wav", "name does not match S<M|F><id>_F<nn>_<A|H|N|S><nnn>.wav"),
        ("Calm/SM1_F1_N001.wav", "unknown emotion folder 'Calm' (known: angry, happy, neutral, sad)"),
    ]:
        with pytest.raises(ValueError) as info:
            parse(PurePosixPath(bad))
        assert str(info.value) == reason


def _fake_corpus(root: Path) -> None:
    """5 speakers x 4 emotions in the scaffold's default layout <emotion>/<speaker>_<take>.wav."""
    files = [
        f"{emo}/spk{s:02d}_{i:03d}.wav"
        for i, emo in enumerate(("angry", "happy", "neutral", "sad"))
        for s in range(1, 6)
    ]
    write_fake_corpus(root, files, seconds=0.4)


@pytest.mark.slow
def test_tutorial_runs_start_to_finish(tmp_path: Path) -> None:
    blocks = parse_blocks(DOC.read_text(encoding="utf-8"))
    bash = [body for lang, _, body, skipped in blocks if lang == "bash" and not skipped]
    files = {title: body for lang, title, body, skipped in blocks if title and not skipped}
    assert any("serkit plugin new" in b for b in bash) and any("serkit run" in b for b in bash)
    assert len(files) == 1, files

    work = tmp_path / "work"
    work.mkdir()
    for title, body in files.items():
        (work / title).write_text(body)
    (recipe_name,) = files
    env_vars = re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*):-", files[recipe_name])
    assert env_vars, "the tutorial's recipe should take its corpus root from the environment"
    corpus = tmp_path / "corpus"
    _fake_corpus(corpus)

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "serkit_shim.py").write_text(SERKIT_SHIM)
    shims = {
        "serkit": f'#!/bin/sh\nexec "$TUTORIAL_PY" "{bin_dir / "serkit_shim.py"}" "$@"\n',
        "pip": PIP_SHIM,
        "pytest": '#!/bin/sh\nexec "$TUTORIAL_PY" -m pytest -p no:cacheprovider "$@"\n',
    }
    for name, text in shims.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    site = tmp_path / "site"
    # the tutorial is about plugin discovery: undo the suite's SERKIT_DISABLE_PLUGIN_AUTOLOAD
    env = {
        **{k: v for k, v in os.environ.items() if k != "SERKIT_DISABLE_PLUGIN_AUTOLOAD"},
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(site),
        "TUTORIAL_PY": sys.executable,
        "TUTORIAL_SITE": str(site),
        "COLUMNS": "200",
        env_vars[0]: str(corpus),
    }
    script = "set -euxo pipefail\n" + "\n".join(bash)
    proc = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    log = f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    assert proc.returncode == 0, log

    # every step did what the tutorial says it does
    plugin_dir = work / "serkit-plugin-my_language"
    assert (plugin_dir / "src" / "serkit_plugin_my_language" / "dataset.py").is_file(), log
    assert re.search(r"12 passed, 1 skipped", proc.stdout), log  # contract tests before install
    assert f"{recipe_name}: ok" in proc.stdout, log
    assert "serkit-plugin-my_language" in proc.stdout, log  # the `serkit plugins` table
    reports = list((work / "runs").glob("*/report.md"))
    assert len(reports) == 1, log
    report = reports[0].read_text()
    assert "speaker-independent" in report and "| sw |" in report, report
    results = json.loads((reports[0].parent / "results.json").read_text())
    assert results["protocol"] == "speaker" and results["domains"]["sw"]["labels"] == [
        "angry",
        "happy",
        "neutral",
        "sad",
    ]

    # the installed plugin, as `serkit plugins --json` sees it
    listed = subprocess.run(
        [sys.executable, "-m", "serkit", "plugins", "--json"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    rows = json.loads(listed.stdout)["components"]
    assert {
        "kind": "dataset",
        "name": "my_language",
        "plugin": "my_language",
        "distribution": "serkit-plugin-my_language",
    }.items() <= next(r for r in rows if r["name"] == "my_language").items()

    # after installation the generated tests also pass the entry-point test
    again = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(plugin_dir / "tests")],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert "13 passed" in again.stdout, again.stdout + again.stderr

    # the validation error quoted in the tutorial is the one serkit prints
    quoted = re.search(r"`(domains\.sw\.dataset\.rot \(line \d+\): [^`]+)`", DOC.read_text(encoding="utf-8"))
    assert quoted is not None
    broken = work / "broken.yaml"
    broken.write_text((work / recipe_name).read_text().replace(" root:", " rot:"))
    bad = subprocess.run(
        [sys.executable, str(bin_dir / "serkit_shim.py"), "validate", str(broken)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1 and quoted[1] in bad.stderr, bad.stderr
