"""Cache reuse: extract_features twice on the same corpus and store; the second call only reads hashes.

The first call computes every item; the second finds them all in the store (keys are
content hashes) and computes nothing; unchanged files are not even read (their hashes
come from the stat index). A third call with ``rehash=True`` reads and hashes every file,
as every second call did before the index. Prints both wall times and their ratio, for each
executor (the second call starts no worker: there is nothing to compute).
Goal: second call >= 20x faster than the first.

    OMP_NUM_THREADS=1 python benchmarks/cache_reuse.py --files 48 --extractor mfcc
    python benchmarks/cache_reuse.py --files 400 --extractor ge2e
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
    parser.add_argument("--files", "--utterances", dest="files", type=int, default=200,
                        help="Corpus size in files (default 200).")
    parser.add_argument("--extractor", default="mfcc", choices=["mfcc", "ge2e"])
    parser.add_argument("--executors", default="thread,process", help="Comma-separated: thread, process.")
    parser.add_argument("--corpus", type=Path, default=None,
                        help="Folder of the synthetic corpus (default: a temporary folder).")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    executors = [e.strip() for e in args.executors.split(",") if e.strip()]
    if not set(executors) <= {"thread", "process"}:
        sys.exit(f"--executors: use thread and/or process, got {args.executors!r}")

    from serkit.features import FeatureStore, extract_features
    from serkit.features.driver import shutdown_workers

    print(f"cpus={os.cpu_count()} OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    extractor = make_extractor(args.extractor)
    warm_up(extractor)
    rows = []
    with tempfile.TemporaryDirectory(prefix="serkit-bench-") as tmp:
        utts = make_corpus(args.corpus or Path(tmp) / "corpus", args.files, args.seed)
        for executor in executors:
            kwargs = {"batch_size": args.batch_size, "num_workers": args.workers, "executor": executor,
                      "progress": False}
            # warm-up: the worker processes start here (one file each), not in the timed call
            warm = utts[: max(2, args.workers)]
            extract_features(warm, extractor, FeatureStore(Path(tmp) / f"warm-{executor}", extractor), **kwargs)
            store = FeatureStore(Path(tmp) / f"features-{executor}", extractor)
            for call in ("first", "second", "rehash"):
                start = time.perf_counter()
                res = extract_features(utts, extractor, store, rehash=call == "rehash", **kwargs)
                rows.append((executor, call, res, time.perf_counter() - start))
            store.close()
            size = sum(p.stat().st_size for p in store.path.parent.glob(store.path.name + "*"))
            shutdown_workers()
    n_distinct = len({u.path for u in utts})
    for executor, call, res, _ in rows:
        if res.computed != (n_distinct if call == "first" else 0):
            sys.exit(f"unexpected: {executor} {call} call computed {res.computed}")
    print(f"corpus: {len(utts)} files; extractor {args.extractor}; store {size / 2**20:.1f} MiB\n")
    print(f"{'executor':<9} {'call':<8} {'computed':>8} {'cached':>7} {'hashed':>7} {'seconds':>8} {'files/s':>9}")
    for executor, call, res, t in rows:
        print(f"{executor:<9} {call:<8} {res.computed:8d} {res.cached:7d} {res.hashed:7d} {t:8.3f} "
              f"{len(utts) / t:9.1f}")
    print()
    for executor in executors:
        first, second, rehash = (t for e, _, _, t in rows if e == executor)
        ratio = first / second if second > 0 else float("inf")
        verdict = "ok" if ratio >= 20 else "BELOW GOAL"
        print(f"{executor}: reuse speed-up {ratio:.1f}x (goal >= 20x: {verdict}); "
              f"with --rehash (every file read and hashed) {first / rehash:.1f}x")
    print("\nA file changed less than 2 s before it is hashed is hashed again next time (hash_index.RACY_SECONDS):"
          "\nrun twice on a freshly generated corpus (--corpus DIR) to see the steady state.")


if __name__ == "__main__":
    main()
