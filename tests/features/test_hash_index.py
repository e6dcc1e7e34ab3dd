"""The stat index of audio hashes: unchanged files are not read again, any change is seen."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from serkit.data.audio import file_sha256
from serkit.data.utterance import Utterance
from serkit.features import FeatureStore, extract_features
from serkit.features import driver as driver_mod
from serkit.features import hash_index as hash_index_mod
from serkit.features.hash_index import INDEX_NAME, FileStat, HashIndex

from .conftest import tone

SETTLE = 0.2  # seconds; the tests shorten RACY_SECONDS to this and wait a little longer


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths the driver reads to hash them, in order."""
    seen: list[str] = []

    def counting(path: str) -> str:
        seen.append(str(path))
        return file_sha256(path)

    monkeypatch.setattr(driver_mod, "file_sha256", counting)
    return seen


@pytest.fixture
def corpus(tmp_path: Path, make_wav, monkeypatch: pytest.MonkeyPatch) -> list[Utterance]:
    monkeypatch.setattr(hash_index_mod, "RACY_SECONDS", SETTLE)
    monkeypatch.delenv("SERKIT_REHASH", raising=False)
    paths = [make_wav(f"w{i}.wav", seconds=0.4, f0=120 + 30 * i, seed=i) for i in range(5)]
    time.sleep(SETTLE + 0.1)  # the files are settled before the first extraction hashes them
    return [Utterance(id=f"u{i}", path=str(p), label="neutral", speaker="s") for i, p in enumerate(paths)]


def _extract(utts, ext, root: Path, **kw):
    store = FeatureStore(root, ext)
    try:
        return extract_features(utts, ext, store, batch_size=2, num_workers=2, progress=False, executor="thread", **kw)
    finally:
        store.close()


def test_second_extraction_reads_no_audio_file_and_finds_the_same_keys(tmp_path, corpus, reads, frame_stats_cls):
    ext = frame_stats_cls()
    first = _extract(corpus, ext, tmp_path / "store")
    assert (first.hashed, first.computed, len(reads)) == (5, 5, 5)
    assert (tmp_path / "store" / INDEX_NAME).is_file()

    reads.clear()
    second = _extract(corpus, ext, tmp_path / "store")
    assert (second.hashed, second.computed, second.cached, reads) == (0, 0, 5, [])
    assert second.keys == first.keys


def test_a_rewritten_file_with_its_old_size_and_mtime_is_hashed_and_computed_again(
    tmp_path, corpus, reads, frame_stats_cls
):
    import soundfile as sf

    ext = frame_stats_cls()
    first = _extract(corpus, ext, tmp_path / "store")
    target = Path(corpus[2].path)
    before = target.stat()
    time.sleep(0.05)
    sf.write(target, tone(0.4, 333.0, seed=9), 16000, subtype="PCM_16")  # same length, new samples
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))  # what an archive extraction does
    after = target.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert after.st_ctime_ns != before.st_ctime_ns  # only the change time tells

    reads.clear()
    second = _extract(corpus, ext, tmp_path / "store")
    assert reads == [str(target)]
    assert (second.hashed, second.computed, second.cached) == (1, 1, 4)
    assert second.keys["u2"] != first.keys["u2"]
    assert {k: v for k, v in second.keys.items() if k != "u2"} == {k: v for k, v in first.keys.items() if k != "u2"}


def test_a_file_replaced_by_a_copy_of_another_is_hashed_again(tmp_path, corpus, reads, frame_stats_cls):
    ext = frame_stats_cls()
    first = _extract(corpus, ext, tmp_path / "store")
    replacement = tmp_path / "copy.wav"
    shutil.copyfile(corpus[0].path, replacement)
    os.replace(replacement, corpus[1].path)  # another inode at the same path

    reads.clear()
    second = _extract(corpus, ext, tmp_path / "store")
    assert reads == [corpus[1].path]
    assert second.keys["u1"] == first.keys["u0"]  # the same audio bytes, the same features


def test_files_changed_just_before_hashing_are_not_trusted_next_time(tmp_path, make_wav, reads, frame_stats_cls,
                                                                      monkeypatch):
    monkeypatch.setattr(hash_index_mod, "RACY_SECONDS", 3600.0)  # every file counts as just written
    paths = [make_wav(f"r{i}.wav", seconds=0.3, f0=150 + 10 * i, seed=i) for i in range(3)]
    utts = [Utterance(id=f"r{i}", path=str(p), label="neutral", speaker="s") for i, p in enumerate(paths)]
    ext = frame_stats_cls()
    _extract(utts, ext, tmp_path / "store")
    reads.clear()
    again = _extract(utts, ext, tmp_path / "store")
    assert (again.hashed, again.computed, again.cached) == (3, 0, 3)
    assert sorted(reads) == sorted(map(str, paths))


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_rehash_reads_every_file(tmp_path, corpus, reads, frame_stats_cls, monkeypatch, how):
    ext = frame_stats_cls()
    _extract(corpus, ext, tmp_path / "store")
    reads.clear()
    if how == "environment":
        monkeypatch.setenv("SERKIT_REHASH", "1")
    again = _extract(corpus, ext, tmp_path / "store", **({"rehash": True} if how == "argument" else {}))
    assert (again.hashed, again.cached, len(reads)) == (5, 5, 5)


def test_a_corrupt_index_warns_once_and_every_file_is_hashed(tmp_path, corpus, reads, frame_stats_cls):
    ext = frame_stats_cls()
    first = _extract(corpus, ext, tmp_path / "store")
    (tmp_path / "store" / INDEX_NAME).write_bytes(b"this is not a database" * 100)
    reads.clear()
    with pytest.warns(UserWarning, match=r"audio hash index cannot be read .*hashed again on each extraction") as rec:
        second = _extract(corpus, ext, tmp_path / "store")
    assert len([w for w in rec if "hash index" in str(w.message)]) == 1
    assert (second.hashed, second.cached, len(reads)) == (5, 5, 5)
    assert second.keys == first.keys


def test_index_lookup_needs_every_stat_field_to_match(tmp_path, monkeypatch):
    monkeypatch.setattr(hash_index_mod, "RACY_SECONDS", 1.0)
    index = HashIndex(tmp_path)
    st = FileStat(size=10, mtime_ns=1_000_000_000, ctime_ns=2_000_000_000, inode=7, device=3)
    hashed_at = 3_000_000_000  # the file settled 1 s before hashing started: trusted
    assert index.record([("/a.wav", st, "aa"), ("/b.wav", st, "bb")], hashed_at) == 2
    assert index.record([("/c.wav", st, "cc")], hashed_at - 1) == 0  # racy: not written
    assert index.lookup({"/a.wav": st, "/b.wav": st, "/c.wav": st}) == {"/a.wav": "aa", "/b.wav": "bb"}
    for field, value in [("size", 11), ("mtime_ns", 1), ("ctime_ns", 2_000_000_001), ("inode", 8), ("device", 4)]:
        changed = FileStat(**{**st.__dict__, field: value})
        assert index.lookup({"/a.wav": changed}) == {}, field
    index.forget(["/a.wav"])
    assert index.lookup({"/a.wav": st, "/b.wav": st}) == {"/b.wav": "bb"}
    index.close()


def test_no_index_file_is_created_by_a_lookup(tmp_path):
    index = HashIndex(tmp_path / "stores")
    assert index.lookup({"/x.wav": FileStat(1, 1, 1, 1, 1)}) == {}
    assert not (tmp_path / "stores").exists()


def test_features_are_identical_with_and_without_the_index(tmp_path, corpus, frame_stats_cls):
    ext = frame_stats_cls()
    a = _extract(corpus, ext, tmp_path / "one")
    b = _extract(corpus, ext, tmp_path / "one")  # from the index
    c = _extract(corpus, ext, tmp_path / "two", rehash=True)
    assert a.keys == b.keys == c.keys
    one, two = FeatureStore(tmp_path / "one", ext), FeatureStore(tmp_path / "two", ext)
    for key in a.keys.values():
        np.testing.assert_array_equal(one.get(key), two.get(key))
    one.close()
    two.close()


def test_cache_prune_drops_the_index_entries_of_deleted_files(tmp_path, corpus, frame_stats_cls):
    from click.testing import CliRunner

    from serkit.cli.cache_cmd import cache

    ext = frame_stats_cls()
    _extract(corpus, ext, tmp_path / "store")
    Path(corpus[0].path).unlink()
    Path(corpus[3].path).unlink()
    runner = CliRunner()
    res = runner.invoke(cache, ["prune", "--root", str(tmp_path / "store"), "--hash-index", "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "5 entries, would drop 2 of files that no longer exist" in res.output
    res = runner.invoke(cache, ["prune", "--root", str(tmp_path / "store"), "--hash-index"])
    assert "5 entries, dropped 2 of files that no longer exist" in res.output
    res = runner.invoke(cache, ["prune", "--root", str(tmp_path / "store"), "--hash-index"])
    assert "3 entries, dropped 0 of files that no longer exist" in res.output
    res = runner.invoke(cache, ["prune", "--root", str(tmp_path / "store")])
    assert res.exit_code == 2 and "give --older-than DAYS, --store NAME or --hash-index (or several)" in res.output
