"""The SHA-256 of audio files' contents, through the feature stores' stat index.

Feature extraction hashes every audio file (the hash is part of the store key) and records
the hashes of unchanged files in :class:`serkit.features.hash_index.HashIndex`. The split
audit (identical audio in two sets) and a run's data fingerprint need the same hashes;
:func:`content_hashes` asks the index first, so after an extraction it reads no audio file
at all, and hashes (and records) only the files the index does not know or cannot vouch for.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from serkit.data.audio import file_sha256
from serkit.errors import AudioError
from serkit.features.hash_index import FileStat, HashIndex, rehash_forced

__all__ = ["content_hashes"]


def content_hashes(
    paths: Iterable[str],
    index_folder: str | os.PathLike[str] | None,
    *,
    workers: int = 2,
) -> dict[str, str | None]:
    """Hex SHA-256 of the bytes of each audio file; ``None`` for a file that cannot be read.

    Args:
        paths: audio file paths (duplicates are hashed once).
        index_folder: the feature stores' folder holding the stat index
            (``<store root>/.audio-sha256.sqlite``); ``None``: no index, every file is read.
        workers: threads reading the files the index does not know (0: this thread).

    Returns:
        path (as given) -> its SHA-256, or ``None`` when it cannot be stat'ed or read.
    """
    unique = list(dict.fromkeys(paths))
    absolute = {p: os.path.abspath(p) for p in unique}
    stats = {p: FileStat.of(p) for p in unique}
    index = HashIndex(Path(index_folder)) if index_folder is not None else None
    out: dict[str, str | None] = {}
    try:
        if index is not None and not rehash_forced():
            known = index.lookup({absolute[p]: st for p, st in stats.items() if st is not None})
            out = {p: known[absolute[p]] for p in unique if absolute[p] in known}
        todo = [p for p in unique if p not in out and stats[p] is not None]
        out.update(dict.fromkeys((p for p in unique if stats[p] is None), None))
        if not todo:
            return out

        def one(p: str) -> str | None:
            try:
                return file_sha256(p)
            except AudioError:
                return None

        started = time.time_ns()
        if workers > 0 and len(todo) > 1:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                hashed = list(pool.map(one, todo))
        else:
            hashed = [one(p) for p in todo]
        out.update(zip(todo, hashed, strict=True))
        if index is not None:
            fresh = [
                (absolute[p], st, h)
                for p, h in zip(todo, hashed, strict=True)
                if h is not None and (st := stats[p]) is not None
            ]
            index.record(fresh, started)
    finally:
        if index is not None:
            index.close()
    return out
