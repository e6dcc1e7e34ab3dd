"""File helpers: atomic writes (a reader never sees a half-written file) and memoised file hashes."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from serkit.errors import StorageError

__all__ = ["atomic_write_bytes", "atomic_write_json", "atomic_write_text", "cached_file_sha256"]

#: sha256 of files hashed by :func:`cached_file_sha256`, keyed by
#: ``(resolved path, size, mtime_ns, ctime_ns, inode)``.
_FILE_HASHES: dict[tuple[str, int, int, int, int], str] = {}
_FILE_HASHES_LOCK = threading.Lock()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a temp file in the same folder, fsync, then rename over ``path``.

    Raises:
        StorageError: the file could not be written (no space left, quota, read-only file
            system, permissions); ``path`` is then unchanged and no temp file is left.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise StorageError(err.errno, err.strerror or str(err), str(path)) from err
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(err, OSError) and not isinstance(err, StorageError):
            raise StorageError(err.errno, err.strerror or str(err), str(path)) from err
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """UTF-8 text version of :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    """Pretty-printed JSON version of :func:`atomic_write_bytes`."""
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def cached_file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read once per process while the file is unchanged.

    Meant for model and checkpoint files whose contents enter an extractor's fingerprint:
    the hash is memoised on the file's stat values ``(resolved path, size, mtime_ns,
    ctime_ns, inode)``, so a file rewritten or replaced in place gets new values and is
    hashed again, while asking twice for an unchanged file reads it once.

    Raises:
        OSError: the file does not exist or cannot be read.
    """
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    with _FILE_HASHES_LOCK:
        digest = _FILE_HASHES.get(key)
    if digest is None:
        h = hashlib.sha256()
        with p.open("rb") as f:
            while block := f.read(chunk):
                h.update(block)
        digest = h.hexdigest()
        with _FILE_HASHES_LOCK:
            _FILE_HASHES[key] = digest
    return digest
