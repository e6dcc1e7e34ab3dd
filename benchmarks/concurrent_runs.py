"""Runs that share a machine: one ``serkit run`` alone, then N identical runs at once.

Each run is a separate ``serkit run`` process (the CLI a user starts) of a small recipe
(synthetic corpus, MFCC sequences through ``cnn_bilstm_attn``, one random split). A first
run fills the feature cache and is not timed. Prints every run's wall time relative to
the lone run (goal on 2 cores with N = 2: each <= 2.5x) and the torch thread count each
run chose (``environment.json``, key ``threads``).

    python benchmarks/concurrent_runs.py                 # N = 2, serkit picks threads
    python benchmarks/concurrent_runs.py --runs 3
    OMP_NUM_THREADS=2 python benchmarks/concurrent_runs.py   # what the user asked for
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RECIPE = """
name: concurrent
seed: 0
device: cpu
protocol: {{type: random, test: 0.2, val: 0.2}}
domains:
  xa: {{dataset: {{type: synthetic, root: {root}, languages: [xa], speakers: 8, per_class: 10, seed: 0}}}}
features:
  mfcc:
    extractor: {{type: mfcc, n_mfcc: 40, hop_ms: 10}}
    encoder: {{type: cnn_bilstm_attn, channels: 32, kernel_sizes: [3], lstm_hidden: 64, lstm_layers: 2,
              attention_dim: 64}}
fusion: {{type: concat}}
heads:
  default: {{type: mlp, hidden: [128], activations: [relu]}}
loss: {{main: {{type: cross_entropy}}}}
optimizer: {{type: adamw, lr: 1.0e-3}}
train: {{epochs: {epochs}, batch_size: 32}}
"""


def _serkit() -> list[str]:
    exe = shutil.which("serkit", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "serkit"]


def _start(recipe: Path, out: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    cmd = [*_serkit(), "run", str(recipe), "--out", str(out), "--quiet"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait(proc: subprocess.Popen[bytes]) -> None:
    _, err = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"serkit run failed ({proc.returncode}):\n{err.decode(errors='replace')[-2000:]}")


def _threads(out: Path) -> str:
    t = json.loads((out / "environment.json").read_text()).get("threads")
    return "?" if t is None else f"{t['threads']}, from {t['source']}, {t['runs_on_host']} run(s) on the host"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2, help="runs started at once")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="serkit-concurrent-"))
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, SERKIT_CACHE=os.environ.get("SERKIT_CACHE", str(work / "cache")))
    recipe = work / "recipe.yaml"
    recipe.write_text(RECIPE.format(root=work / "corpus", epochs=args.epochs))
    print(
        f"{os.cpu_count()} CPUs, affinity {len(os.sched_getaffinity(0))}, OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS', '(unset)')}; work {work}"
    )
    _wait(_start(recipe, work / "warm", env))  # fills the feature cache
    t0 = time.perf_counter()
    _wait(_start(recipe, work / "alone", env))
    alone = time.perf_counter() - t0
    print(f"  alone: {alone:.2f} s (threads {_threads(work / 'alone')})")
    t0 = time.perf_counter()
    procs = [(_start(recipe, work / f"together{i}", env), i) for i in range(args.runs)]
    for proc, i in procs:
        _wait(proc)
        took = time.perf_counter() - t0
        print(
            f"  run {i + 1} of {args.runs} at once: {took:.2f} s = {took / alone:.2f}x the lone run "
            f"(threads {_threads(work / f'together{i}')})"
        )


if __name__ == "__main__":
    main()
