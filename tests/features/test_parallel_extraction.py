"""extract_features with worker processes: same features as threads, bad audio, the pool."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from serkit.builtin.extractors.mfcc import Mfcc
from serkit.data.utterance import Utterance
from serkit.errors import AudioError, SerkitError
from serkit.features import FeatureStore, driver, extract_features, workers


def _utts(paths: list[Path]) -> list[Utterance]:
    return [Utterance(id=f"u{i}", path=str(p), label="neutral", speaker="s") for i, p in enumerate(paths)]


@pytest.fixture(scope="module", autouse=True)
def _stop_workers():
    yield
    driver.shutdown_workers()


@pytest.fixture
def wavs(make_wav) -> list[Path]:
    return [make_wav(f"w{i}.wav", seconds=0.4 + 0.07 * i, f0=90 + 23 * i, seed=i) for i in range(9)]


def _stored(store: FeatureStore, keys: dict[str, str]) -> dict[str, np.ndarray]:
    return {uid: store.get(k) for uid, k in keys.items()}


def test_auto_chooses_by_size_and_pool(tmp_path, wavs, frame_stats_cls, monkeypatch):
    ext = Mfcc()
    utts = _utts(wavs)
    driver.shutdown_workers()  # (the first test of the module: normally nothing to stop)
    res = extract_features(utts, ext, FeatureStore(tmp_path / "a", ext), progress=False)
    assert res.executor == "thread"  # 9 files: starting processes would cost more than it saves
    monkeypatch.setattr(driver, "AUTO_PROCESS_MIN_FILES", 5)
    res = extract_features(utts, ext, FeatureStore(tmp_path / "b", ext), progress=False)
    assert res.executor == "process"
    monkeypatch.setattr(driver, "AUTO_PROCESS_MIN_FILES", 10_000)
    res = extract_features(utts[:2], ext, FeatureStore(tmp_path / "c", ext), progress=False)
    assert res.executor == "process"  # the workers are running already: use them
    # nothing to offload (a model without prepare()), no workers, or nothing to compute: threads
    fs = frame_stats_cls()
    assert extract_features(utts, fs, FeatureStore(tmp_path / "d", fs), progress=False).executor == "thread"
    assert extract_features(utts, ext, FeatureStore(tmp_path / "e", ext), num_workers=0,
                            progress=False).executor == "thread"
    with pytest.raises(SerkitError, match=r"executor must be 'auto', 'thread' or 'process', got 'gpu'"):
        extract_features(utts, ext, FeatureStore(tmp_path / "f", ext), executor="gpu", progress=False)  # type: ignore[arg-type]


def test_processes_compute_what_threads_compute(tmp_path, wavs):
    ext = Mfcc(n_mfcc=13, n_mels=26, cmvn=True)  # (deltas would make the workers import librosa)
    utts = _utts(wavs)
    by = {}
    for executor in ("thread", "process"):
        store = FeatureStore(tmp_path / executor, ext)
        res = extract_features(utts, ext, store, batch_size=4, num_workers=2, executor=executor, progress=False)
        assert (res.executor, res.computed, res.failed) == (executor, 9, [])
        by[executor] = (res, _stored(store, res.keys))
    (t_res, t_arr), (p_res, p_arr) = by["thread"], by["process"]
    assert t_res.keys == p_res.keys and t_res.audio_seconds == pytest.approx(p_res.audio_seconds)
    for uid in t_arr:
        assert p_arr[uid].shape == (1 + round(16000 * (0.4 + 0.07 * int(uid[1:]))) // 160, 13)
        np.testing.assert_array_equal(p_arr[uid], t_arr[uid])  # bit-identical


def test_extractors_with_unpicklable_params_classes(tmp_path, wavs):
    """Recipes give extractors a params class made on the fly (with ``type``), which cannot
    be pickled by reference: the workers rebuild the extractor from its class and params."""
    from typing import Literal

    from pydantic import create_model

    recipe_params = create_model("RecipeMfcc", __base__=Mfcc.Params, type=(Literal["mfcc"], "mfcc"))
    ext = Mfcc(recipe_params(n_mfcc=20))
    assert workers.worker_spec(ext)[0] is Mfcc and "type" not in workers.worker_spec(ext)[1]
    utts = _utts(wavs[:3])
    res = extract_features(utts, ext, FeatureStore(tmp_path, ext), executor="process", progress=False)
    plain = Mfcc(n_mfcc=20)
    assert plain.fingerprint() == ext.fingerprint()
    for u in utts:
        from serkit.data.audio import load_audio

        np.testing.assert_array_equal(FeatureStore(tmp_path, ext).get(res.keys[u.id]),
                                      plain.extract(load_audio(u.path, 16000)))


def test_bad_audio_through_worker_processes(tmp_path, wavs):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF not really a wav file" * 20)
    silent = tmp_path / "silent.wav"
    import soundfile as sf

    sf.write(silent, np.zeros(8000, np.float32), 16000)
    utts = _utts([wavs[0], bad, wavs[1], silent])
    ext = Mfcc()
    store = FeatureStore(tmp_path / "s", ext)
    res = extract_features(utts, ext, store, batch_size=2, executor="process", on_bad_audio="skip", progress=False)
    assert res.computed == 2 and list(res.keys) == ["u0", "u2"]
    failed = {uid: msg for uid, _, msg in res.failed}
    assert set(failed) == {"u1", "u3"}
    assert failed["u1"].startswith(f"{bad}: not a readable audio file")
    assert failed["u3"] == f"{silent}: audio is all zeros (digital silence)"
    store2 = FeatureStore(tmp_path / "s2", ext)
    with pytest.raises(AudioError, match=r"broken.wav: not a readable audio file"):
        extract_features(utts, ext, store2, batch_size=2, executor="process", progress=False)


def test_models_stay_in_the_calling_process(tmp_path, wavs, frame_stats_cls):
    """An extractor that is not parallel-safe (a test class the workers could not even
    import) runs in the calling process; the workers only load the audio."""

    class Recording(frame_stats_cls):
        def extract_batch(self, wavs):
            self.seen = [*getattr(self, "seen", []), os.getpid()]
            return super().extract_batch(wavs)

    ext = Recording()
    utts = _utts(wavs)
    res = extract_features(utts, ext, FeatureStore(tmp_path / "p", ext), batch_size=4, executor="process",
                           progress=False)
    assert res.executor == "process" and res.computed == 9
    assert set(ext.seen) == {os.getpid()} and len(ext.seen) == 3
    ref_store = FeatureStore(tmp_path / "t", ext)
    ref = extract_features(utts, ext, ref_store, executor="thread", progress=False)
    got = _stored(FeatureStore(tmp_path / "p", ext), res.keys)
    for uid, arr in _stored(ref_store, ref.keys).items():
        np.testing.assert_array_equal(got[uid], arr)


def test_daemonic_processes_cannot_start_workers(tmp_path, wavs, monkeypatch):
    import multiprocessing

    ext = Mfcc()
    monkeypatch.setitem(multiprocessing.current_process()._config, "daemon", True)
    assert multiprocessing.current_process().daemon
    monkeypatch.setattr(driver, "AUTO_PROCESS_MIN_FILES", 1)
    res = extract_features(_utts(wavs[:2]), ext, FeatureStore(tmp_path / "a", ext), progress=False)
    assert res.executor == "thread"
    with pytest.raises(SerkitError, match=r"cannot start worker processes from a daemonic process"):
        extract_features(_utts(wavs[:2]), ext, FeatureStore(tmp_path / "b", ext), executor="process",
                         progress=False)


def test_a_dying_worker_is_reported_and_the_next_call_recovers(tmp_path, make_wav, frame_stats_cls):
    killed: list[int] = []

    class Killing(frame_stats_cls):  # kills a worker while the extraction uses the pool
        def extract_batch(self, wavs):
            if not killed:
                pid = next(iter(workers._POOL._processes))
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                time.sleep(0.3)  # the pool notices
            return super().extract_batch(wavs)

    utts = _utts([make_wav(f"w{i}.wav", seconds=0.3, f0=100 + 9 * i, seed=i) for i in range(40)])
    ext = Killing()
    store = FeatureStore(tmp_path / "s", ext)
    with pytest.raises(SerkitError, match=r"an extraction worker process died or could not start .*"
                                          r"executor 'thread' .* Finished batches are kept"):
        extract_features(utts, ext, store, batch_size=4, executor="process", progress=False)
    assert killed and workers._POOL is None  # the broken pool is dropped
    kept = len(store)
    res = extract_features(utts, ext, store, batch_size=4, executor="process", progress=False)
    assert res.executor == "process" and (res.cached, res.computed) == (kept, 40 - kept)  # a fresh pool


def test_worker_tasks_grow_to_the_target_duration_and_results_stay_in_order(tmp_path, monkeypatch):
    """Cheap files are sent to the workers in larger tasks (sized from the workers' timings)."""
    from concurrent.futures import Future

    paths = [f"f{i}.wav" for i in range(100)]
    jobs = [workers.Job(f"k{i}", p, [f"u{i}"]) for i, p in enumerate(paths)]

    class InlinePool:  # runs each task at once, recording its size
        sizes: ClassVar[list[int]] = []

        def submit(self, fn, spec, mode, rate, task_paths):
            InlinePool.sizes.append(len(task_paths))
            fut: Future = Future()
            fut.set_result(fn(spec, mode, rate, task_paths))
            return fut

    def fake_work(spec, mode, rate, task_paths):  # 2 ms of "work" per file
        return 0.002 * len(task_paths), [(16000, path, None) for path in task_paths]

    monkeypatch.setattr(workers, "_timed_work", fake_work)
    monkeypatch.setattr(workers, "TASK_SECONDS", 0.04)
    monkeypatch.setattr(workers, "MAX_TASK_FILES", 64)
    batches = list(workers.process_batches(jobs, Mfcc(), "load", InlinePool(), batch_size=8, num_workers=2))
    assert [len(b) for b in batches] == [8] * 12 + [4]
    assert [it.payload for b in batches for it in b] == paths  # in input order
    # starts at batch_size / workers = 4 files, then 0.04 s / 2 ms = 20 files a task; the end is spread
    # then the last 24 files are spread over both workers
    assert InlinePool.sizes == [4, 4, 4, 4, 20, 20, 20, 12, 6, 4, 2]


def test_read_ahead_is_bounded_by_the_bytes_of_the_audio_files(monkeypatch):
    """Large files are loaded a few at a time (32 one-hour files at once would need ~7 GB)."""
    from concurrent.futures import Future

    jobs = [workers.Job(f"k{i}", f"f{i}.wav", [f"u{i}"], size=100) for i in range(12)]
    monkeypatch.setattr(driver, "READ_AHEAD_BYTES", 250)  # room for two files
    monkeypatch.setattr(driver, "load_audio", lambda path, rate: np.zeros(rate // 10, dtype=np.float32))

    class CountingFuture(Future):
        outstanding = 0
        most = 0

        def result(self, timeout=None):
            if not getattr(self, "_taken", False):
                self._taken = True
                CountingFuture.outstanding -= 1
            return super().result(timeout)

    class InlineThreads:
        def submit(self, fn, job):
            fut = CountingFuture()
            fut.set_result(fn(job))
            CountingFuture.outstanding += 1
            CountingFuture.most = max(CountingFuture.most, CountingFuture.outstanding)
            return fut

    batches = list(driver._thread_batches(jobs, InlineThreads(), Mfcc(), "load", batch_size=4))
    assert [it.job.key for b in batches for it in b] == [j.key for j in jobs]
    assert CountingFuture.most == 2 and max(len(b) for b in batches) == 2

    class InlinePool:
        sizes: ClassVar[list[int]] = []

        def submit(self, fn, spec, mode, rate, task_paths):
            InlinePool.sizes.append(len(task_paths))
            fut: Future = Future()
            fut.set_result((0.001, [(1600, p, None) for p in task_paths]))
            return fut

    monkeypatch.setattr(workers, "READ_AHEAD_BYTES", 800)  # 2 workers x 2 tasks: 200 bytes, two files a task
    out = list(workers.process_batches(jobs, Mfcc(), "load", InlinePool(), batch_size=16, num_workers=2))
    assert [it.job.key for b in out for it in b] == [j.key for j in jobs]
    assert InlinePool.sizes == [2] * 6


HALF_MESSAGE_WORKER = '''
import gc
import os
import struct
from multiprocessing.queues import SimpleQueue


def die_mid_send(_):
    """Write the start of a result message to the pipe the workers share, then die."""
    (queue,) = [o for o in gc.get_objects() if isinstance(o, SimpleQueue) and o._writer.writable]
    fd = queue._writer.fileno()
    os.write(fd, struct.pack("!i", 1 << 20) + b"only the first bytes")
    os._exit(1)


def ok(x):
    return x
'''


def test_a_worker_dying_mid_send_is_noticed_and_the_pool_is_stopped(tmp_path, monkeypatch):
    """CPython's executor waits forever for the rest of a half-sent result while another
    worker holds the pipe open; the driver's watchdog notices the dead worker instead."""
    (tmp_path / "half_message_worker.py").write_text(HALF_MESSAGE_WORKER)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.syspath_prepend(str(tmp_path))
    import half_message_worker

    monkeypatch.setattr(workers, "WATCH_SECONDS", 0.2)
    pool = workers._new_pool(2)
    try:
        assert pool.submit(half_message_worker.ok, 3).result(timeout=60) == 3  # both workers up
        fut = pool.submit(half_message_worker.die_mid_send, 0)
        start = time.perf_counter()
        with pytest.raises(workers.BrokenProcessPool, match="a worker process exited while the pool was in use"):
            workers._result(fut, pool)
        assert time.perf_counter() - start < 30
        assert workers.pool_broken(pool)
    finally:
        manager = pool._executor_manager_thread  # shutdown() forgets it
        workers.release_pool(pool, discard=True)  # a private pool: its workers are killed
    assert manager is not None
    manager.join(timeout=30)
    assert not manager.is_alive()  # nothing left to hang the interpreter's exit
