"""Fixtures of the robustness tests: a one-hour file written cheaply, and peak-memory probes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

#: Sample rate of the long test files (8 kHz keeps an hour at 57.6 MB of PCM_16).
LONG_SR = 8000

_PROBE = """
import json
def _status_mib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
def _start():
    try:  # reset the peak-RSS mark (Linux >= 4.0); without it a rise is only an upper bound
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return _status_mib("VmRSS")
_out = []
{setup}
{steps}
print("@@PROBE@@" + json.dumps(_out))
"""
_STEP = """
_before = _start()
{step}
_out.append([result, _status_mib("VmHWM") - _before])
"""


def write_noise(path: Path, seconds: int, sr: int = LONG_SR, amp: float = 0.01, seed: int = 0) -> Path:
    """Low-amplitude noise of ``seconds`` s written one minute at a time (never held whole)."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    with sf.SoundFile(path, "w", samplerate=sr, channels=1, subtype="PCM_16") as f:
        left = seconds * sr
        while left > 0:
            n = min(left, 60 * sr)
            f.write((amp * rng.standard_normal(n)).astype(np.float32))
            left -= n
    return path


@pytest.fixture(scope="session")
def make_noise() -> Callable[..., Path]:
    """:func:`write_noise` for test modules: ``make_noise(path, seconds, sr=8000, amp=0.01, seed=0)``."""
    return write_noise


@pytest.fixture(scope="module")
def hour_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One hour of 8 kHz PCM_16 noise (57.6 MB on disk)."""
    return write_noise(tmp_path_factory.mktemp("long") / "hour.wav", 3600)


@pytest.fixture(scope="session")
def peak_memory() -> Callable[..., list[tuple[Any, float]]]:
    """``peak_memory(setup, *steps) -> [(result, MiB), ...]``: run the steps in a fresh interpreter.

    ``setup`` (imports, data preparation) runs first; each step must assign a JSON-able
    ``result``. Its MiB is how far the process's peak RSS (``VmHWM``, reset before each
    step) rose above its RSS at the start of the step. (``ru_maxrss`` would not do: Linux
    carries the parent's peak over into a child at ``exec``.)
    """

    if not Path("/proc/self/status").is_file():
        pytest.skip("peak memory is read from /proc/self/status (Linux)")

    def run(setup: str, *steps: str, timeout: float = 300) -> list[tuple[Any, float]]:
        body = "".join(_STEP.format(step=textwrap.dedent(step)) for step in steps)
        code = _PROBE.format(setup=textwrap.dedent(setup), steps=body)
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
        assert proc.returncode == 0, proc.stderr[-3000:]
        line = next(x for x in proc.stdout.splitlines() if x.startswith("@@PROBE@@"))
        return [(result, rise) for result, rise in json.loads(line.removeprefix("@@PROBE@@"))]

    return run
