"""Cost of the split audit that every run adds: content-hash look-up and the audit itself.

    python benchmarks/split_audit.py                      # 10,000 utterances, 5 repeats x 10 folds
    python benchmarks/split_audit.py --utterances 50000 --folds 5

Writes ``--utterances`` small files into a temporary folder, hashes them once into a stat
index (as an extraction does), then times

* :func:`serkit.features.content.content_hashes` through the index (what a run does after
  extracting: no audio is read);
* :func:`serkit.data.audit.audit_splits` over ``--repeats`` x ``--folds`` runs of fold-column
  splits (every speaker in every fold, one duplicated file): the worst case, everything
  flagged.

Goal: both under a second together for 10,000 utterances.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from serkit.data.audit import audit_splits
from serkit.data.splits import predefined_splits
from serkit.data.utterance import Utterance
from serkit.features.content import content_hashes
from serkit.features.hash_index import RACY_SECONDS

LABELS = ("angry", "happy", "neutral", "sad")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--utterances", type=int, default=10_000)
    parser.add_argument("--speakers", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--folds", type=int, default=10)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="serkit-audit-"))
    try:
        paths = []
        for i in range(args.utterances):
            path = folder / f"{i}.wav"
            path.write_bytes(os.urandom(2048))
            paths.append(str(path))
        shutil.copyfile(paths[0], paths[1])  # one duplicated file
        time.sleep(RACY_SECONDS + 0.5)  # files changed just now are not trusted to the index
        index = folder / "stores"
        t0 = time.perf_counter()
        content_hashes(paths, index)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        by_path = content_hashes(paths, index)
        lookup = time.perf_counter() - t0

        n = args.utterances
        labels = [LABELS[i % len(LABELS)] for i in range(n)]
        utts = [Utterance(f"u{i}", paths[i], labels[i], f"s{i % args.speakers}") for i in range(n)]
        runs = {}
        for r in range(args.repeats):
            meta = [{"fold": str(i % args.folds)} for i in range(n)]
            for name, split in predefined_splits(labels, meta, seed=r):
                runs[f"r{r}-{name}"] = split
        t0 = time.perf_counter()
        audit = audit_splits({"d": utts}, {"d": runs}, content={"d": {u.id: by_path[u.path] for u in utts}})
        audit_s = time.perf_counter() - t0
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"{n} utterances, {len(runs)} runs, {len(audit['findings'])} finding(s)")
    print(f"  content hashes, first (read + index): {first:.3f} s")
    print(f"  content hashes, from the index:       {lookup:.3f} s")
    print(f"  audit_splits:                         {audit_s:.3f} s")
    print(f"  per run (index look-up + audit):      {lookup + audit_s:.3f} s")


if __name__ == "__main__":
    main()
