"""Cache reuse: extract_features twice on the same corpus and store; the second call only reads hashes.

The first call computes every item; the second finds them all in the store (keys are
content hashes) and computes nothing. Prints both wall times and their ratio.
Goal: second call >= 20x faster than the first.

    OMP_NUM_THREADS=1 python benchmarks/cache_reuse.py --utterances 48 --extractor mfcc
    python benchmarks/cache_reuse.py --extractor ge2e
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
    return generate_corpus(root, speakers=speakers, per_class=per_class, seed=seed)[:n]


def make_extractor(name: str) -> Any:
    if name == "mfcc":
        from serkit.builtin.extractors.mfcc import Mfcc

        return Mfcc()
    if name == "ge2e":
        from serkit.builtin.extractors.ge2e import Ge2e

        return Ge2e()
    sys.exit(f"unknown extractor {name!r}; use mfcc or ge2e")


def warm_up(extractor: Any) -> None:
    """One call on a 1 s tone: imports and model loading are not part of either timing."""
    import numpy as np

    t = np.arange(16000) / 16000
    extractor.extract_batch([(0.1 * np.sin(2 * np.pi * 180 * t)).astype(np.float32)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--utterances", type=int, default=200, help="Corpus size (default 200).")
    parser.add_argument("--extractor", default="mfcc", choices=["mfcc", "ge2e"])
    parser.add_argument("--corpus", type=Path, default=None,
                        help="Folder of the synthetic corpus (default: a temporary folder).")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from serkit.features import FeatureStore, extract_features

    print(f"cpus={os.cpu_count()} OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    extractor = make_extractor(args.extractor)
    warm_up(extractor)
    with tempfile.TemporaryDirectory(prefix="serkit-bench-") as tmp:
        utts = make_corpus(args.corpus or Path(tmp) / "corpus", args.utterances, args.seed)
        store = FeatureStore(Path(tmp) / "features", extractor)
        times = []
        results = []
        for _ in range(2):
            start = time.perf_counter()
            res = extract_features(
                utts, extractor, store, batch_size=args.batch_size, num_workers=args.workers, progress=False
            )
            times.append(time.perf_counter() - start)
            results.append(res)
        store.close()
        size = sum(p.stat().st_size for p in store.path.parent.glob(store.path.name + "*"))
    first, second = results
    if first.computed != len({u.path for u in utts}) or second.computed != 0:
        sys.exit(f"unexpected: first call computed {first.computed}, second computed {second.computed}")
    print(f"corpus: {len(utts)} files; extractor {args.extractor}; store {size / 2**20:.1f} MiB\n")
    print(f"{'call':<8} {'computed':>8} {'cached':>7} {'seconds':>8} {'files/s':>9}")
    for label, res, t in (("first", first, times[0]), ("second", second, times[1])):
        print(f"{label:<8} {res.computed:8d} {res.cached:7d} {t:8.3f} {len(utts) / t:9.1f}")
    ratio = times[0] / times[1] if times[1] > 0 else float("inf")
    verdict = "ok" if ratio >= 20 else "BELOW GOAL"
    print(f"\nreuse speed-up: {ratio:.1f}x (goal >= 20x: {verdict})")


if __name__ == "__main__":
    main()
