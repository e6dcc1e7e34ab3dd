"""The issue-14 / issue-13 benchmark scripts run at toy sizes on CPU (what CI can exercise; numbers are not checked)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _run(script: str, *args: str, tmp_path: Path) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "SERKIT_CACHE": str(tmp_path / "cache")}
    out = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_extraction_gpu_runs_tiny_on_cpu(tmp_path):
    pytest.importorskip("transformers")
    out = _run("extraction_gpu.py", "--tiny", "--files", "4", "--device", "cpu", "--workdir", str(tmp_path / "w"),
               tmp_path=tmp_path)
    assert "float16, bfloat16 need CUDA; measuring float32 only on cpu" in out
    rows = [line.split() for line in out.splitlines() if line.startswith(("wav2vec2 ", "wavlm "))]
    assert [(r[0], r[1]) for r in rows] == [("wav2vec2", "plain"), ("wav2vec2", "serkit"), ("wavlm", "plain"),
                                            ("wavlm", "serkit")]
    serkit_rows = [r for r in rows if r[1] == "serkit"]
    assert all(float(r[-1]) < 1e-4 for r in serkit_rows)  # serkit's features equal the plain loop's


def test_train_layers_memory_runs_small(tmp_path):
    out = _run("train_layers_memory.py", "--utterances", "400", "--layers", "5", "--width", "16", "--epochs", "1",
               tmp_path=tmp_path)
    assert "store on disk" in out and "peak RSS (training process)" in out
    assert "goal: peak RSS < 4096 MiB: ok; store < 10 GB: ok (at 400 utterances)" in out
