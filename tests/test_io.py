"""serkit.io: the stat-memoised file hash that extractors put model files into fingerprints with."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

import serkit.io
from serkit.io import cached_file_sha256


def test_cached_file_sha256_hashes_once_until_the_file_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(b"weights v1" * 300_000)  # 3 MB: several read blocks
    first = cached_file_sha256(path)
    assert first == hashlib.sha256(path.read_bytes()).hexdigest()

    def no_hashing(*args: object) -> None:
        raise AssertionError("the file was hashed again")

    monkeypatch.setattr(serkit.io.hashlib, "sha256", no_hashing)
    # the same file, by str or by a relative path, comes from the memo
    assert cached_file_sha256(str(path)) == first
    monkeypatch.chdir(tmp_path)
    assert cached_file_sha256("model.pt") == first
    monkeypatch.undo()

    # a rewrite of the same size with another mtime is hashed again
    path.write_bytes(b"weights v2" * 300_000)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    second = cached_file_sha256(path)
    assert second == hashlib.sha256(b"weights v2" * 300_000).hexdigest() != first
    # another file with the first contents has its own entry, and the same digest
    copy = tmp_path / "copy.pt"
    copy.write_bytes(b"weights v1" * 300_000)
    assert cached_file_sha256(copy) == first


def test_cached_file_sha256_of_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        cached_file_sha256(tmp_path / "nope.pt")
