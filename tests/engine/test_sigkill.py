"""A real ``serkit run`` killed with SIGKILL mid-extraction or mid-training, then ``--resume``d,
ends with the same results as an uninterrupted run (same seeds, CPU, deterministic)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from serkit.testing.cli import run_cli

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")

# Two domains, two repeats; dropout on, so a resumed run must restore the random state too.
RECIPE = """\
name: sigkill
seed: 0
repeats: 2
protocol: {type: speaker, k: 3, folds: [0]}
domains:
  xa: {dataset: {type: synthetic, languages: [xa], speakers: 6, per_class: 4, seed: 1}}
  xb: {dataset: {type: synthetic, languages: [xb], speakers: 6, per_class: 4, emotions: [angry, fear, sad], seed: 2}}
features:
  mfcc: {extractor: {type: mfcc, n_mfcc: 20, hop_ms: 20}, encoder: {type: mean_pool, stats: true}}
heads:
  default: {type: mlp, hidden: [32], activations: [relu], dropout: 0.2}
train: {epochs: 8, batch_size: 16}
data: {extract_workers: 0, extract_batch_size: 4, speaker_norm: true}
"""
N_AUDIO = 6 * 4 * 4 + 6 * 4 * 3  # distinct recordings of xa and xb


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, session_cache: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """The recipe and the results of its uninterrupted run (which also fills a warm store)."""
    from serkit.plugins import reset_plugins

    root = tmp_path_factory.mktemp("sigkill")
    recipe = root / "r.yaml"
    recipe.write_text(RECIPE)
    with pytest.MonkeyPatch.context() as mp:  # module scope: the per-test isolation is not active yet
        mp.setenv("SERKIT_CACHE", str(session_cache))
        mp.setenv("SERKIT_DISABLE_PLUGIN_AUTOLOAD", "1")
        reset_plugins()
        out = root / "reference"
        assert run_cli(["run", str(recipe), "--out", str(out), "--quiet", "--set", f"store.root={root / 'warm'}"]) == 0
        reset_plugins()
    yield recipe, json.loads((out / "results.json").read_text())


def comparable(results: dict[str, Any]) -> dict[str, Any]:
    """What must not change: per-domain metrics and every run's record except its wall time."""
    return {
        "domains": results["domains"],
        "runs": [{k: v for k, v in r.items() if k != "seconds"} for r in results["runs"]],
    }


def start(recipe: Path, out: Path, store: Path, log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "serkit", "run", str(recipe), "--out", str(out), "--quiet", "--set",
           f"store.root={store}"]
    with log.open("wb") as f:
        return subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=dict(os.environ))


def kill_when(proc: subprocess.Popen[bytes], ready: Callable[[], bool], log: Path, timeout: float = 120.0) -> None:
    """Poll ``ready`` every 10 ms; SIGKILL the run as soon as it holds."""
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            if proc.poll() is not None:
                pytest.fail(f"serkit run ended (exit {proc.returncode}) before the kill point:\n{log.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"the kill point was not reached within {timeout:.0f} s:\n{log.read_text()}")
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None and time.monotonic() > deadline:
            proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def stored_rows(store: Path) -> int:
    """Committed feature rows in the mfcc store under ``store`` (0 before it exists)."""
    files = list(store.glob("mfcc-*.sqlite"))
    if not files:
        return 0
    try:
        with closing(sqlite3.connect(files[0], timeout=5)) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM features").fetchone()[0])
    except sqlite3.Error:  # being created
        return 0


def test_sigkill_mid_training_then_resume_equals_an_uninterrupted_run(
    reference: tuple[Path, dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe, expected = reference
    out = tmp_path / "run"
    log = tmp_path / "log.txt"
    # the second run (repeat 1) has finished an epoch: the first run is done, the second under way
    proc = start(recipe, out, recipe.parent / "warm", log)
    kill_when(proc, lambda: (out / "checkpoints" / "r1-f0.last.json").is_file(), log)
    assert (out / "runs" / "r0-f0.json").is_file() and not (out / "runs" / "r1-f0.json").exists()
    assert not (out / "results.json").exists()
    capsys.readouterr()
    assert run_cli(["run", "--resume", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "run 1/2 (r0-f0): finished before, kept" in err
    assert "(resumed after epoch " in err
    assert comparable(json.loads((out / "results.json").read_text())) == comparable(expected)
    assert not list((out / "checkpoints").glob("*.last.*"))  # finished runs keep no epoch state


def test_sigkill_mid_extraction_then_resume_equals_an_uninterrupted_run(
    reference: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    recipe, expected = reference
    out, store, log = tmp_path / "run", tmp_path / "cold", tmp_path / "log.txt"
    proc = start(recipe, out, store, log)
    kill_when(proc, lambda: stored_rows(store) > 0, log)
    done = stored_rows(store)
    assert 0 < done < N_AUDIO, done  # killed in the middle of the extraction
    assert run_cli(["run", "--resume", str(out), "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["extraction"]["mfcc"]["cached"] == done  # what was committed before the kill is reused
    assert results["extraction"]["mfcc"]["computed"] == N_AUDIO - done
    assert comparable(results) == comparable(expected)
