"""Extraction throughput: the per-file loop a user would write vs serkit's extract_features.

For MFCC and GE2E on a synthetic corpus of N files, times

(a) the plain loop: ``soundfile.read`` + ``librosa.feature.mfcc`` per file, and
    resemblyzer's ``preprocess_wav`` + ``VoiceEncoder.embed_utterance`` per file;
(b) :func:`serkit.features.extract_features` into a fresh feature store with each
    executor: ``thread`` (threads load audio, and compute MFCCs), ``process`` (worker
    processes load and preprocess audio, and compute MFCCs; GE2E's LSTM stays in the main
    process). ``process`` is timed twice: ``cold`` includes starting the workers (imports,
    1-3 s each), ``warm`` reuses them (as every call after the first in a process does);

and prints files/s, the real-time factor (audio seconds per wall second) and the
speed-up over (a), each the median of ``--repeats`` timings (3; the individual timings
are printed: on a shared VM they vary by 10-20 %). Goal: >= 2x. Both sides get one warm-up call first (model loading and
first-call costs are not timed; the cold row is the exception). The torch thread count
matters for GE2E: it is printed and can be set with ``--torch-threads``.

    OMP_NUM_THREADS=1 python benchmarks/extraction_throughput.py --files 48
    python benchmarks/extraction_throughput.py --files 400          # the lead's full size
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def make_corpus(root: Path, n: int, seed: int) -> list[Any]:
    """``n`` utterances of the synthetic corpus (generated once under ``root``, then reused)."""
    from serkit.data.synthetic import DEFAULT_EMOTIONS, generate_corpus

    speakers = 6
    per_class = max(1, math.ceil(n / (speakers * len(DEFAULT_EMOTIONS))))
    utts = generate_corpus(root, speakers=speakers, per_class=per_class, seed=seed)
    return utts[:n]


def audio_seconds(utts: list[Any]) -> float:
    import soundfile as sf

    return sum(sf.info(u.path).duration for u in utts)


def plain_mfcc(paths: list[str]) -> None:
    """What a user writes: read each file, librosa MFCC (serkit's mfcc defaults)."""
    import librosa
    import soundfile as sf

    for p in paths:
        y, sr = sf.read(p, dtype="float32", always_2d=False)
        if y.ndim > 1:
            y = y.mean(axis=1)
        if sr != 16000:
            y = librosa.resample(y, orig_sr=sr, target_sr=16000)
        librosa.feature.mfcc(
            y=y, sr=16000, n_mfcc=40, n_fft=512, win_length=400, hop_length=160, n_mels=64
        )


def plain_ge2e(paths: list[str], encoder: Any) -> None:
    """What a user writes with resemblyzer: preprocess_wav then embed_utterance per file."""
    from resemblyzer import preprocess_wav

    for p in paths:
        encoder.embed_utterance(preprocess_wav(Path(p)))


def timed(fn: Any, *args: Any) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def median_of(repeats: int, fn: Any, *args: Any) -> float:
    """The median of ``repeats`` timings ``fn(*args)`` (each printed)."""
    import statistics

    times = [fn(*args) for _ in range(repeats)]
    if repeats > 1:
        print(f"  timings: {', '.join(f'{t:.3f}' for t in times)} s")
    return statistics.median(times)


def serkit_extract(utts: list[Any], extractor: Any, executor: str, batch_size: int, workers: int) -> float:
    """Wall time of extract_features into a fresh store (deleted afterwards)."""
    from serkit.features import FeatureStore, extract_features

    with tempfile.TemporaryDirectory(prefix="serkit-bench-") as tmp:
        store = FeatureStore(Path(tmp), extractor)
        start = time.perf_counter()
        result = extract_features(
            utts, extractor, store, batch_size=batch_size, num_workers=workers, executor=executor,
            progress=False,
        )
        seconds = time.perf_counter() - start
        store.close()
    if result.computed != len({u.path for u in utts}) or result.failed or result.executor != executor:
        sys.exit(f"extract_features computed {result.computed}, failed {len(result.failed)} ({result.executor})")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", "--utterances", dest="files", type=int, default=200,
                        help="Corpus size in files (default 200).")
    parser.add_argument("--corpus", type=Path, default=None,
                        help="Folder of the synthetic corpus (default: a temporary folder).")
    parser.add_argument("--extractors", default="mfcc,ge2e", help="Comma-separated: mfcc, ge2e.")
    parser.add_argument("--executors", default="thread,process", help="Comma-separated: thread, process.")
    parser.add_argument("--batch-size", type=int, default=16, help="extract_features batch size.")
    parser.add_argument("--workers", type=int, default=2, help="extract_features workers (threads or processes).")
    parser.add_argument("--torch-threads", type=int, default=None, help="torch.set_num_threads.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3,
                        help="Timings per row (the cold row: once); the table shows the median (default 3).")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats: expected >= 1")
    executors = [e.strip() for e in args.executors.split(",") if e.strip()]
    if not set(executors) <= {"thread", "process"}:
        sys.exit(f"--executors: use thread and/or process, got {args.executors!r}")

    import torch

    from serkit.features.driver import shutdown_workers

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    print(f"cpus={os.cpu_count()} torch threads={torch.get_num_threads()} "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')} workers={args.workers}")

    with tempfile.TemporaryDirectory(prefix="serkit-corpus-") as tmp:
        root = args.corpus or Path(tmp)
        t0 = time.perf_counter()
        utts = make_corpus(root, args.files, args.seed)
        total = audio_seconds(utts)
        print(f"corpus: {len(utts)} files, {total:.1f} s of audio ({time.perf_counter() - t0:.1f} s to prepare)")
        paths = [u.path for u in utts]
        rows: list[tuple[str, str, float, float | None]] = []
        for name in [e.strip() for e in args.extractors.split(",") if e.strip()]:
            if name == "mfcc":
                from serkit.builtin.extractors.mfcc import Mfcc

                extractor: Any = Mfcc()
                plain_mfcc(paths[:1])  # warm-up
                plain = median_of(args.repeats, timed, plain_mfcc, paths)
            elif name == "ge2e":
                from serkit.builtin.extractors.ge2e import Ge2e

                extractor = Ge2e()
                encoder = extractor.load_encoder()  # the same pretrained VoiceEncoder
                plain_ge2e(paths[:1], encoder)  # warm-up
                plain = median_of(args.repeats, timed, plain_ge2e, paths, encoder)
            else:
                sys.exit(f"unknown extractor {name!r}; use mfcc and/or ge2e")
            rows.append((name, "plain loop", plain, None))
            extractor.extract_batch([_warm_wav()])  # warm-up (first-call costs)
            for executor in executors:
                if executor == "process":
                    shutdown_workers()
                    cold = serkit_extract(utts, extractor, "process", args.batch_size, args.workers)
                    warm = median_of(
                        args.repeats, serkit_extract, utts, extractor, "process", args.batch_size, args.workers
                    )
                    rows += [(name, "process (cold)", cold, plain), (name, "process (warm)", warm, plain)]
                else:
                    serkit_extract(utts[:2], extractor, "thread", args.batch_size, args.workers)  # warm-up
                    ours = median_of(
                        args.repeats, serkit_extract, utts, extractor, "thread", args.batch_size, args.workers
                    )
                    rows.append((name, "thread", ours, plain))
            shutdown_workers()

    n = len(utts)
    print()
    print(f"{'extractor':<10} {'method':<16} {'seconds':>8} {'files/s':>8} {'RTF':>7} {'speed-up':>8}")
    last = None
    for name, method, secs, plain_secs in rows:
        speed = f"{plain_secs / secs:7.2f}x" if plain_secs else ""
        print(f"{name if name != last else '':<10} {method:<16} {secs:8.2f} {n / secs:8.1f} {total / secs:6.1f}x "
              f"{speed:>8}")
        last = name
    print("\ngoal: extract_features >= 2x the plain loop (RTF = audio seconds per wall second);")
    print("cold = including the start of the worker processes (once per Python process)")


def _warm_wav() -> Any:
    import numpy as np

    t = np.arange(16000) / 16000
    return (0.1 * np.sin(2 * np.pi * 180 * t)).astype(np.float32)


if __name__ == "__main__":
    main()
