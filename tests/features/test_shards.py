"""Sharded extraction: shard files next to the main store file, read together everywhere."""

from __future__ import annotations

import json
import multiprocessing as mp
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from serkit.cli.cache_cmd import cache
from serkit.data.audio import file_sha256
from serkit.data.utterance import Utterance
from serkit.errors import CacheError, SerkitError
from serkit.features import FeatureStore, extract_features
from serkit.features.admin import delete_store_files, export_store, list_stores, verify_store
from serkit.features.driver import shard_of
from serkit.features.hash_index import INDEX_NAME


def _utts(paths: list[Path]) -> list[Utterance]:
    return [Utterance(id=f"u{i}", path=str(p), label="neutral", speaker="s") for i, p in enumerate(paths)]


@pytest.fixture
def corpus(make_wav) -> list[Utterance]:
    """12 utterances: 11 distinct contents, u11 a copy of u3 under another name."""
    paths = [make_wav(f"w{i}.wav", seconds=0.3 + 0.05 * i, f0=100 + 17 * i, seed=i) for i in range(11)]
    copy = paths[0].parent / "copy_of_w3.wav"
    copy.write_bytes(paths[3].read_bytes())
    return _utts([*paths, copy])


def _arrays(store: FeatureStore, keys: dict[str, str]) -> dict[str, np.ndarray]:
    return {uid: store.get(k) for uid, k in keys.items()}


def test_two_shards_equal_one_unsharded_extraction(tmp_path, corpus, frame_stats_cls):
    ext = frame_stats_cls()
    whole = FeatureStore(tmp_path / "whole", ext)
    ref = extract_features(corpus, ext, whole, batch_size=3, progress=False)
    assert (ref.computed, ref.shard, ref.other_shards) == (11, None, 0)

    root = tmp_path / "sharded"
    store = FeatureStore(root, ext)  # opened before any shard file exists
    parts = [
        extract_features(corpus, ext, FeatureStore(root, ext), batch_size=3, progress=False, shard=(i, 2))
        for i in range(2)
    ]
    # a stable, content-based split: each content in exactly one shard, copies together
    shas = {u.id: file_sha256(u.path) for u in corpus}
    for i, part in enumerate(parts):
        assert part.shard == (i, 2)
        assert set(part.keys) == {uid for uid, h in shas.items() if shard_of(h, 2) == i}
        assert part.other_shards == 11 - part.computed
    assert parts[0].computed + parts[1].computed == 11 and min(p.computed for p in parts) > 0
    assert ("u3" in parts[0].keys) == ("u11" in parts[0].keys)

    # the shards went to their own files; the main file is empty
    files = store.files()
    assert files == [
        store.path,
        root / f"frame_stats-{ext.fingerprint()}.shards" / "shard-00000-of-00002.sqlite",
        root / f"frame_stats-{ext.fingerprint()}.shards" / "shard-00001-of-00002.sqlite",
    ]
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM features").fetchone() == (0,)
    with sqlite3.connect(files[1]) as conn:
        meta = dict(conn.execute("SELECT name, value FROM meta").fetchall())
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # no WAL across machines
    assert (meta["shard"], meta["fingerprint"]) == ("0/2", ext.fingerprint())

    # read together: the same keys and arrays as the unsharded store
    merged = {**parts[0].keys, **parts[1].keys}
    assert merged == ref.keys
    got, want = _arrays(store, merged), _arrays(whole, ref.keys)
    for uid in want:
        np.testing.assert_array_equal(got[uid], want[uid])
    assert len(store) == 11 and store.keys() == whole.keys()
    assert store.missing([*merged.values(), "nope"]) == ["nope"]
    assert all(store.has(k) for k in merged.values())

    # a later unsharded call (what every rank does after the barrier) computes nothing
    again = extract_features(corpus, ext, store, progress=False)
    assert (again.computed, again.cached, again.keys) == (0, 11, ref.keys)


def test_shard_is_stable_whatever_the_order_and_paths(tmp_path, corpus, frame_stats_cls):
    ext = frame_stats_cls()
    a = extract_features(corpus, ext, FeatureStore(tmp_path / "a", ext), progress=False, shard=(1, 3))
    shuffled = list(reversed(corpus))
    b = extract_features(shuffled, ext, FeatureStore(tmp_path / "b", ext), progress=False, shard=(1, 3))
    assert a.keys == {u.id: b.keys[u.id] for u in corpus if u.id in b.keys}
    assert shard_of("f" * 64, 3) == int("f" * 16, 16) % 3
    # n == 1 is everything, written to the main file
    one = FeatureStore(tmp_path / "one", ext)
    res = extract_features(corpus, ext, one, progress=False, shard=(0, 1))
    assert res.computed == 11 and one.files() == [one.path]


def test_shard_argument_is_checked(tmp_path, corpus, frame_stats_cls):
    ext = frame_stats_cls()
    store = FeatureStore(tmp_path, ext)
    for bad in [(2, 2), (-1, 2), (0, 0), (1,), "0/2", (0.0, 2), (True, 2)]:
        with pytest.raises(SerkitError, match=r"extract_features: shard must be \(i, n\) with 0 <= i < n, got "):
            extract_features(corpus, ext, store, progress=False, shard=bad)  # type: ignore[arg-type]
    with pytest.raises(CacheError, match=r"FeatureStore shard: expected \(i, n\) with 0 <= i < n, got \(3, 2\)"):
        FeatureStore(tmp_path, ext, shard=(3, 2))


def test_store_writes_to_its_shard_and_reads_every_file(tmp_path, frame_stats_cls):
    ext = frame_stats_cls()
    main = FeatureStore(tmp_path, ext)
    main.put("m", np.ones((2, 3), np.float32))
    s1 = FeatureStore(tmp_path, ext, shard=(1, 3))
    s1.put_many([("a", np.full((1, 3), 1.0, np.float32)), ("both", np.full((1, 3), 5.0, np.float32))])
    assert s1.write_path == main.shard_dir / "shard-00001-of-00003.sqlite" and s1.shard == (1, 3)
    s0 = main.for_shard(0, 3)
    s0.put("both", np.full((1, 3), 5.0, np.float32))  # the same content extracted twice
    assert main.for_shard(0, 1).write_path == main.path
    # main was opened before the shard files: it finds them when a key is missing
    np.testing.assert_array_equal(main.get("a"), np.full((1, 3), 1.0, np.float32))
    assert "both" in main and len(main) == 3 and main.keys() == ["a", "both", "m"]
    assert main.delete(["both", "a", "absent"]) == 2
    assert s0.keys() == s1.keys() == ["m"]
    # no temporary file is left by the creation of a shard file
    assert sorted(p.name for p in main.shard_dir.iterdir()) == [
        "shard-00000-of-00003.sqlite",
        "shard-00001-of-00003.sqlite",
    ]
    for s in (main, s0, s1):
        s.close()


def test_a_foreign_shard_file_is_refused(tmp_path, frame_stats_cls):
    a, b = frame_stats_cls(frame=100), frame_stats_cls(frame=300)
    FeatureStore(tmp_path, b, shard=(0, 2)).close()
    store_a = FeatureStore(tmp_path, a)
    other = tmp_path / f"frame_stats-{b.fingerprint()}.shards" / "shard-00000-of-00002.sqlite"
    store_a.shard_dir.mkdir()
    (store_a.shard_dir / "shard-00001-of-00002.sqlite").write_bytes(other.read_bytes())
    with pytest.raises(CacheError, match=r"shard-00001-of-00002.sqlite: meta fingerprint is .* does not belong"):
        store_a.missing(["k"])


def _child(ext, root: Path, utts: list[Utterance], shard: tuple[int, int], queue: mp.Queue) -> None:
    try:
        res = extract_features(utts, ext, FeatureStore(root, ext), batch_size=2, num_workers=1,
                               progress=False, shard=shard)
        queue.put(("ok", res.keys))
    except Exception as err:  # pragma: no cover - reported to the parent
        queue.put(("error", repr(err)))


def test_shards_written_by_concurrent_processes(tmp_path, corpus, frame_stats_cls):
    ext = frame_stats_cls()
    root = tmp_path / "shared"
    FeatureStore(root, ext).close()
    ctx = mp.get_context("fork")  # the test extractor class is not importable by a spawned child
    queue = ctx.Queue()
    procs = [ctx.Process(target=_child, args=(ext, root, corpus, (i, 3), queue)) for i in range(3)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert all(status == "ok" for status, _ in results), results
    merged = {k: v for _, keys in results for k, v in keys.items()}
    ref = extract_features(corpus, ext, FeatureStore(tmp_path / "ref", ext), progress=False)
    assert merged == ref.keys
    store = FeatureStore(root, ext)
    assert len(store) == 11 and len(store.files()) == 4


# ------------------------------------------------------------------ admin and CLI over shards
@pytest.fixture
def sharded(tmp_path, corpus, frame_stats_cls) -> FeatureStore:
    ext = frame_stats_cls()
    root = tmp_path / "features"
    store = FeatureStore(root, ext)
    for i in range(2):
        extract_features(corpus, ext, store, progress=False, shard=(i, 2))
    store.put("main-only", np.ones((1, 3), np.float32))  # an item of an unsharded run
    return store


def test_admin_lists_verifies_exports_and_prunes_every_shard(sharded, tmp_path):
    root = sharded.root
    (info,) = list_stores(root).stores  # the .shards folder is part of the store, not a problem
    assert list_stores(root).problems == []
    assert info.items == 12 and len(info.shards) == 2 and info.files == tuple(sharded.files())
    assert info.size_bytes > sum(p.stat().st_size for p in info.shards)
    report = verify_store(info)
    assert (report.checked, report.corrupt, report.ok) == (12, [], True)

    # a corrupt item in a shard file is found and repaired there
    shard_file = info.shards[1]
    with sqlite3.connect(shard_file) as conn:
        key, data = conn.execute("SELECT key, data FROM features LIMIT 1").fetchone()
        conn.execute("UPDATE features SET data = ? WHERE key = ?", (bytes([data[0] ^ 0xFF]) + data[1:], key))
    report = verify_store(info.path)
    assert [(c.key, c.file) for c in report.corrupt] == [(key, shard_file)]
    assert verify_store(info.path, repair=True).repaired == 1
    assert sharded.missing([key]) == [key] and len(sharded) == 11

    out = tmp_path / "all.npz"
    assert export_store(root, info.fingerprint, "npz", out).items == 11
    with np.load(out) as z:
        assert sorted(z.files) == sharded.keys()
        for k in z.files:
            np.testing.assert_array_equal(z[k], sharded.get(k))

    sharded.close()
    assert delete_store_files(info.path) > 0
    assert [p.name for p in root.iterdir() if p.name != INDEX_NAME] == []  # the hash index is shared by all stores


def test_orphan_shard_folder_is_reported(sharded):
    sharded.close()
    for suffix in ("", "-wal", "-shm"):
        sharded.path.with_name(sharded.path.name + suffix).unlink(missing_ok=True)
    listing = list_stores(sharded.root)
    assert listing.stores == []
    (problem,) = listing.problems
    assert problem.path == sharded.shard_dir
    assert problem.message.startswith(f"shard files without their store file {sharded.path.name} (ignored)")


def test_cache_cli_counts_every_shard(sharded):
    root = str(sharded.root)
    runner = CliRunner()
    res = runner.invoke(cache, ["ls", "--root", root, "--json"])
    assert res.exit_code == 0, res.output
    (entry,) = json.loads(res.output)["stores"]
    assert entry["items"] == 12 and [Path(p).name for p in entry["shards"]] == [
        "shard-00000-of-00002.sqlite",
        "shard-00001-of-00002.sqlite",
    ]
    res = runner.invoke(cache, ["ls", "--root", root])
    assert "12 item(s) in 3 files (2 shards)" in res.output
    res = runner.invoke(cache, ["verify", "--root", root])
    assert res.exit_code == 0, res.output
    assert f"{sharded.path} + 2 shard file(s): 12 item(s) checked, all sound" in res.output
    res = runner.invoke(cache, ["prune", "--root", root, "--store", sharded.fingerprint, "--yes"])
    assert res.exit_code == 0 and [p.name for p in Path(root).iterdir() if p.name != INDEX_NAME] == []
