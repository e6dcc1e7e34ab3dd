"""Feature stores shared read-only, damaged store files and corrupt items (issue 17).

Tests run as root, for whom ``chmod`` does not make a folder unwritable: read-only is
simulated by making ``os.access`` say so (what serkit asks), and, where the machine
allows it, checked for real on a read-only bind mount in a private mount namespace.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from serkit.cli.cache_cmd import cache
from serkit.data.utterance import Utterance
from serkit.errors import CacheError
from serkit.features.driver import extract_features
from serkit.features.store import FeatureStore


def _utterances(make_wav, n: int) -> list[Utterance]:  # type: ignore[no-untyped-def]
    return [
        Utterance(id=f"u{i}", path=str(make_wav(f"a/u{i}.wav", seconds=0.5, f0=100 + 20 * i, seed=i)), label="x",
                  speaker="s", language="xx")
        for i in range(n)
    ]


def _read_only(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    """``os.access(..., W_OK)`` is False for ``root`` and everything in it."""
    real = os.access

    def access(path, mode, *args, **kwargs):  # type: ignore[no-untyped-def]
        if mode & os.W_OK and Path(path).resolve().is_relative_to(root.resolve()):
            return False
        return real(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)


def test_a_read_only_store_is_read_and_says_why_it_cannot_store(
    tmp_path: Path, make_wav, frame_stats_cls, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    root = tmp_path / "features"
    utts = _utterances(make_wav, 4)
    ext = frame_stats_cls()
    with FeatureStore(root, ext) as store:
        first = extract_features(utts[:3], ext, store, num_workers=0, progress=False)
        expected = {u: store.get(k) for u, k in first.keys.items()}
    _read_only(monkeypatch, root)
    store = FeatureStore(root, ext)
    assert store.read_only
    again = extract_features(utts[:3], ext, store, num_workers=0, progress=False)
    assert (again.computed, again.cached) == (0, 3)
    for u, k in again.keys.items():
        np.testing.assert_array_equal(store.get(k), expected[u])
    with pytest.raises(CacheError) as err:
        extract_features(utts, ext, store, num_workers=0, progress=False)
    assert str(err.value) == (
        f"{store.path}: 1 of 4 audio file(s) have no features in this store, and it is read-only (this process "
        f"cannot write {root}); point SERKIT_CACHE (or the recipe's store.root) at a writable folder to extract them"
    )
    with pytest.raises(CacheError, match=r"the feature store is read-only \(this process cannot write .*\); "
                       r"cannot store 1 new item\(s\)"):
        store.put("k", np.zeros(3, np.float32))
    # the admin commands read it too
    res = CliRunner().invoke(cache, ["ls", "--root", str(root)])
    assert res.exit_code == 0 and "3 item(s)" in res.output and "1 store(s)" in res.output, res.output
    res = CliRunner().invoke(cache, ["verify", "--root", str(root)])
    assert res.exit_code == 0 and res.output == f"{store.path}: 3 item(s) checked, all sound\n"
    # no store of this extractor in a read-only folder: said so, not "corrupt"
    other = frame_stats_cls(frame=200)
    with pytest.raises(CacheError, match=r"no such feature store, and its folder .* is read-only"):
        FeatureStore(root, other)


UNSHARE = shutil.which("unshare")


def _ro_mount_works(folder: Path) -> bool:
    if UNSHARE is None or os.geteuid() != 0:
        return False
    probe = f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder} && ! touch {folder}/x"
    return subprocess.run([UNSHARE, "-m", "sh", "-c", probe], capture_output=True).returncode == 0


def test_a_store_on_a_real_read_only_mount(tmp_path: Path, make_wav, frame_stats_cls) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "features"
    utts = _utterances(make_wav, 3)
    with FeatureStore(root, frame_stats_cls()) as store:
        extract_features(utts, frame_stats_cls(), store, num_workers=0, progress=False)
    if not _ro_mount_works(root):
        pytest.skip("no private read-only bind mount here (needs root and unshare)")
    script = (
        "import sys; from pathlib import Path; from click.testing import CliRunner; "
        "from serkit.cli.cache_cmd import cache; "
        "from serkit.features.store import FeatureStore; sys.path.insert(0, sys.argv[2]); "
        "from conftest import FrameStats; root = Path(sys.argv[1]); s = FeatureStore(root, FrameStats()); "
        "print('read_only', s.read_only, len(s.keys()), s.get(s.keys()[0]).shape); "
        "r = CliRunner().invoke(cache, ['verify', '--root', str(root)]); print(r.exit_code, r.output.strip())"
    )
    cmd = (
        f"mount --bind {root} {root} && mount -o remount,bind,ro {root} && "
        f"{sys.executable} -c \"{script}\" {root} {Path(__file__).parent}"
    )
    done = subprocess.run([UNSHARE, "-m", "sh", "-c", cmd], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("read_only True 3 (")
    assert lines[1] == f"0 {root}/frame_stats-{frame_stats_cls().fingerprint()}.sqlite: 3 item(s) checked, all sound"


def _damage(path: Path, page: int) -> None:
    with open(path, "r+b") as f:
        f.seek(page * 4096)
        f.write(bytes(range(256)) * 32)  # 8 KiB of garbage


def test_a_damaged_store_file_has_one_recovery_command_that_works(
    tmp_path: Path, make_wav, frame_stats_cls  # type: ignore[no-untyped-def]
) -> None:
    root = tmp_path / "features"
    utts = _utterances(make_wav, 3)
    ext = frame_stats_cls()
    with FeatureStore(root, ext) as store:
        store.put_many([(f"k{i:03d}", np.full((100, 3), i, np.float32)) for i in range(100)])
        path = store.path
    name = path.stem
    hint = (
        f"the store file is damaged; 'serkit cache verify --root {root} --store {name} --repair' keeps its "
        f"readable items (the next run recomputes the rest), 'serkit cache prune --root {root} --store {name} "
        "--yes' deletes the store"
    )
    _damage(path, 10)
    runner = CliRunner()
    res = runner.invoke(cache, ["verify", "--root", str(root)])
    assert res.exit_code == 1
    assert res.output == f"{path}: not a readable feature store (database disk image is malformed); {hint}\n"
    # the command named works: it keeps what it can read
    res = runner.invoke(cache, ["verify", "--root", str(root), "--store", name, "--repair"])
    assert res.exit_code == 0, res.output
    kept = int(res.output.split("rebuilt: ")[1].split()[0])
    assert 90 <= kept < 100  # 8 KiB of garbage cost a few pages' items
    assert res.output == (
        f"{path}: damaged file rebuilt: {kept} readable item(s) kept, {100 - kept} unreadable item(s) dropped; "
        "the next run recomputes whatever is missing\n"
    )
    res = runner.invoke(cache, ["verify", "--root", str(root)])
    assert res.exit_code == 0 and res.output == f"{path}: {kept} item(s) checked, all sound\n"
    with FeatureStore(root, ext) as store:
        assert len(store) == kept
        for key in store.keys():
            np.testing.assert_array_equal(store.get(key), np.full((100, 3), int(key[1:]), np.float32))
        extract_features(utts, ext, store, num_workers=0, progress=False)
    # a run that meets a damaged file says the same, and after the repair recomputes what was lost
    _damage(path, 2)
    with pytest.raises(CacheError) as err:
        with FeatureStore(root, ext) as store:
            extract_features(utts, ext, store, num_workers=0, progress=False, verify=True)
    assert str(err.value).endswith(f"(database disk image is malformed); {hint}")
    assert runner.invoke(cache, ["verify", "--root", str(root), "--store", name, "--repair"]).exit_code == 0
    with FeatureStore(root, ext) as store:
        done = extract_features(utts, ext, store, num_workers=0, progress=False)
        assert done.computed + done.cached == 3 and done.computed >= 1
        assert store.missing(done.keys.values()) == []
    # the other command named works too
    _damage(path, 1)
    res = runner.invoke(cache, ["prune", "--root", str(root), "--store", name, "--yes"])
    assert res.exit_code == 0, res.output
    assert not path.exists()


def test_a_corrupt_item_is_recomputed_by_the_next_extraction(
    tmp_path: Path, make_wav, frame_stats_cls  # type: ignore[no-untyped-def]
) -> None:
    root = tmp_path / "features"
    utts = _utterances(make_wav, 3)
    ext = frame_stats_cls()
    with FeatureStore(root, ext) as store:
        first = extract_features(utts, ext, store, num_workers=0, progress=False)
        key = first.keys["u1"]
        good = store.get(key)
        with sqlite3.connect(store.path) as conn:
            (blob,) = conn.execute("SELECT data FROM features WHERE key = ?", (key,)).fetchone()
            flipped = bytearray(blob)
            flipped[5] ^= 0xFF
            conn.execute("UPDATE features SET data = ? WHERE key = ?", (bytes(flipped), key))
        with pytest.raises(CacheError, match="checksum mismatch"):
            store.get(key)
        with pytest.warns(UserWarning, match=r"1 stored item\(s\) were corrupt \(checksum mismatch\); they are "
                          r"computed again"):
            again = extract_features(utts, ext, store, num_workers=0, progress=False, verify=True)
        assert (again.computed, again.cached, again.recomputed) == (1, 2, 1)
        np.testing.assert_array_equal(store.get(key), good)
