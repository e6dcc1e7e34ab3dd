"""FeatureStore: keys, round trips, integrity, atomicity, processes, WAL readers."""

from __future__ import annotations

import multiprocessing as mp
import pickle
import shutil
import sqlite3
import time

import numpy as np
import pytest

from serkit.data.audio import file_sha256
from serkit.errors import CacheError
from serkit.features import FeatureStore


def _arr(seed: int, shape: tuple[int, ...] = (7, 3)) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_file_layout_meta_and_wal(tmp_path, frame_stats_cls):
    ext = frame_stats_cls(frame=200)
    with FeatureStore(tmp_path / "f", ext) as store:
        assert store.path == tmp_path / "f" / f"frame_stats-{ext.fingerprint()}.sqlite"
        meta = store.meta()
        assert meta["extractor"] == "frame_stats"
        assert meta["version"] == "1"
        assert meta["dim"] == "3"
        assert meta["output"] == "sequence"
        assert meta["fingerprint"] == ext.fingerprint()
        assert '"frame": 200' in meta["params"]
        assert float(meta["created"]) <= time.time()
        assert len(store) == 0
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_key_depends_on_audio_bytes_and_params(tmp_path, make_wav, frame_stats_cls):
    a = make_wav("a.wav", f0=150)
    sha_a = file_sha256(a)
    s1 = FeatureStore(tmp_path / "f", frame_stats_cls(frame=400))
    s2 = FeatureStore(tmp_path / "f", frame_stats_cls(frame=200))
    assert s1.path != s2.path  # other params -> other fingerprint -> other database
    assert s1.key_for(sha_a) != s2.key_for(sha_a)
    assert len(s1.key_for(sha_a)) == 64
    assert s1.key_for(sha_a) == FeatureStore(tmp_path / "f", frame_stats_cls()).key_for(sha_a)
    make_wav("a.wav", f0=151)  # same name, other content
    assert s1.key_for(file_sha256(a)) != s1.key_for(sha_a)


def test_round_trip_float32_is_exact_and_fresh(tmp_path, frame_stats_cls):
    store = FeatureStore(tmp_path, frame_stats_cls())
    seq, vec = _arr(0), _arr(1, (3,))
    store.put_many([("k1", seq), ("k2", vec)])
    got = store.get("k1")
    assert got.dtype == np.float32 and got.shape == (7, 3)
    np.testing.assert_array_equal(got, seq)
    got[:] = 0  # the caller owns the returned array
    np.testing.assert_array_equal(store.get("k1"), seq)
    np.testing.assert_array_equal(store.get("k2"), vec)
    assert store.has("k1") and "k2" in store and not store.has("nope")
    assert len(store) == 2 and store.keys() == ["k1", "k2"]


def test_float16_storage(tmp_path, frame_stats_cls):
    store = FeatureStore(tmp_path, frame_stats_cls(), dtype="float16")
    x = _arr(2, (50, 3)) * 10
    store.put("k", x)
    got = store.get("k")
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, x, rtol=1e-3, atol=1e-3)
    conn = sqlite3.connect(store.path)
    dtype, nbytes = conn.execute("SELECT dtype, length(data) FROM features").fetchone()
    conn.close()
    assert (dtype, nbytes) == ("float16", 50 * 3 * 2)
    with pytest.raises(CacheError, match=r"item big contains NaN or infinite values.*float32"):
        store.put("big", np.full((2, 3), 1e6, dtype=np.float32))


def test_get_missing_key(tmp_path, frame_stats_cls):
    store = FeatureStore(tmp_path, frame_stats_cls())
    with pytest.raises(CacheError, match=r"no features stored for key abc"):
        store.get("abc")


def test_checksum_mismatch_is_detected(tmp_path, frame_stats_cls):
    store = FeatureStore(tmp_path, frame_stats_cls())
    store.put_many([("good", _arr(0)), ("bad", _arr(1))])
    conn = sqlite3.connect(store.path)
    (blob,) = conn.execute("SELECT data FROM features WHERE key='bad'").fetchone()
    flipped = bytearray(blob)
    flipped[5] ^= 0xFF
    conn.execute("UPDATE features SET data=? WHERE key='bad'", (bytes(flipped),))
    conn.commit()
    conn.close()
    with pytest.raises(CacheError, match=r"features for key bad are corrupt \(checksum mismatch\)"):
        store.get("bad")
    np.testing.assert_array_equal(store.get("good"), _arr(0))
    assert store.delete(["bad", "absent"]) == 1
    assert store.missing(["good", "bad"]) == ["bad"]


def test_put_many_is_all_or_nothing(tmp_path, frame_stats_cls):
    store = FeatureStore(tmp_path, frame_stats_cls())
    # a failure inside SQLite, after two rows of the same call were written
    conn = sqlite3.connect(store.path)
    conn.execute(
        "CREATE TRIGGER boom BEFORE INSERT ON features WHEN NEW.key = 'k3' "
        "BEGIN SELECT RAISE(ABORT, 'refused by test'); END"
    )
    conn.commit()
    conn.close()
    items = [("k1", _arr(1)), ("k2", _arr(2)), ("k3", _arr(3))]
    with pytest.raises(CacheError, match=r"writing 3 item\(s\) failed \(refused by test\)"):
        store.put_many(items)
    assert len(store) == 0
    # an invalid array is rejected before anything is written
    with pytest.raises(CacheError, match=r"item k5 contains NaN"):
        store.put_many([("k4", _arr(4)), ("k5", np.array([np.nan, 1.0]))])
    assert len(store) == 0
    store.put_many(items[:2])
    assert store.keys() == ["k1", "k2"]


def test_missing_is_chunked_ordered_and_unique(tmp_path, frame_stats_cls):
    store = FeatureStore(tmp_path, frame_stats_cls())
    keys = [f"k{i:04d}" for i in range(1300)]
    small = np.zeros(1, dtype=np.float32)
    store.put_many([(k, small) for k in keys[::2]])
    asked = list(reversed(keys)) + keys[:10]
    assert store.missing(asked) == list(reversed(keys[1::2]))
    assert store.missing([]) == []


def test_corrupt_database_file(tmp_path, frame_stats_cls):
    ext = frame_stats_cls()
    path = tmp_path / f"frame_stats-{ext.fingerprint()}.sqlite"
    path.write_bytes(b"this is not a sqlite database" * 100)
    with pytest.raises(CacheError, match=rf"{path}: not a readable feature store"):
        FeatureStore(tmp_path, ext)


def test_file_of_another_configuration(tmp_path, frame_stats_cls):
    a, b = frame_stats_cls(frame=100), frame_stats_cls(frame=300)
    FeatureStore(tmp_path, a).close()
    shutil.copy(
        tmp_path / f"frame_stats-{a.fingerprint()}.sqlite",
        tmp_path / f"frame_stats-{b.fingerprint()}.sqlite",
    )
    with pytest.raises(CacheError, match=r"meta fingerprint is .* does not belong"):
        FeatureStore(tmp_path, b)


def test_close_reopens_and_pickles(tmp_path, frame_stats_cls):
    store = FeatureStore(tmp_path, frame_stats_cls())
    store.put("a", _arr(0))
    store.close()
    np.testing.assert_array_equal(store.get("a"), _arr(0))  # re-opened lazily
    clone = pickle.loads(pickle.dumps(store))
    np.testing.assert_array_equal(clone.get("a"), _arr(0))
    clone.close()
    store.close()


def _child(store: FeatureStore, queue: mp.Queue) -> None:
    try:
        x = store.get("parent")
        store.put("child", x * 2)
        queue.put(("ok", float(x.sum())))
    except Exception as err:  # pragma: no cover - reported to the parent
        queue.put(("error", repr(err)))


def test_usable_from_forked_processes(tmp_path, frame_stats_cls):
    store = FeatureStore(tmp_path, frame_stats_cls())
    store.put("parent", _arr(0))
    assert store.has("parent")  # the parent's connection is open before the fork
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_child, args=(store, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert results[0] == ("ok", pytest.approx(float(_arr(0).sum())))
    assert results[1][0] == "ok"
    np.testing.assert_allclose(store.get("child"), _arr(0) * 2)  # parent still works
    store.put("after", _arr(1))
    assert len(store) == 3


def test_readers_do_not_wait_for_a_writer(tmp_path, frame_stats_cls):
    store = FeatureStore(tmp_path, frame_stats_cls())
    store.put("old", _arr(0))
    writer = sqlite3.connect(store.path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute(
        "INSERT INTO features VALUES ('new', '[1]', 'float32', x'00000000', '00000000', 0)"
    )
    t0 = time.perf_counter()
    np.testing.assert_array_equal(store.get("old"), _arr(0))
    assert not store.has("new")  # uncommitted rows are invisible
    assert time.perf_counter() - t0 < 2.0
    writer.execute("COMMIT")
    writer.close()
    assert store.has("new")
