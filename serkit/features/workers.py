"""The extraction driver's worker processes: a shared pool, what the workers do, and the batches they return.

:func:`serkit.features.driver.extract_features` with ``executor="process"`` hands the
files to compute to :func:`process_batches`, which sends runs of consecutive files to a
pool of ``spawn``-started worker processes (:func:`acquire_pool`; one pool per process,
shared by later calls, shut down after :data:`POOL_IDLE_SECONDS` unused or by
:func:`shutdown_workers`) and yields their results in input order. A worker rebuilds the
extractor from its class and params (:func:`worker_spec`), then loads each file and,
depending on the extractor's :data:`Mode`, prepares it, computes its features, or hands
back the waveform. A dead worker is noticed within :data:`WATCH_SECONDS` (the executor
itself may wait forever), and the broken pool is dropped.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Generator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from serkit.data.audio import load_audio
from serkit.errors import AudioError, CacheError, SerkitError

if TYPE_CHECKING:
    from serkit.interfaces.extractor import Extractor

__all__ = [
    "MAX_TASK_FILES",
    "POOL_IDLE_SECONDS",
    "READ_AHEAD_BYTES",
    "TASK_SECONDS",
    "WATCH_SECONDS",
    "BrokenProcessPool",
    "Job",
    "Loaded",
    "Mode",
    "acquire_pool",
    "pool_broken",
    "pool_running",
    "process_batches",
    "release_pool",
    "shutdown_workers",
    "worker_spec",
]

#: What the worker processes do for an extractor: ``"extract"`` (load and compute,
#: ``parallel_safe`` extractors), ``"prepare"`` (load and ``prepare``) or ``"load"``.
Mode = Literal["extract", "prepare", "load"]

#: Seconds an unused worker pool is kept (its processes hold the extractor's libraries).
POOL_IDLE_SECONDS = 60.0
#: Seconds of work a task sent to a worker process grows to (see :func:`process_batches`).
TASK_SECONDS = 0.04
#: Most files in one task sent to a worker process.
MAX_TASK_FILES = 64
#: Seconds between checks that the worker processes are alive while waiting for one.
WATCH_SECONDS = 1.0
#: Most bytes of audio files being loaded ahead at once (at least one file): 32 one-hour
#: recordings would otherwise be decoded together (~7 GB of float32 at 16 kHz).
READ_AHEAD_BYTES = 256 * 2**20


@dataclass
class Job:
    """One audio content to compute: its store key, a file with it, and the utterances that share it."""

    key: str
    path: str
    ids: list[str]
    size: int = 0  # bytes of the audio file (bounds the read-ahead)


@dataclass
class Loaded:
    """One job after the parallel stage: ``payload`` is the waveform, the ``prepare``
    output or the features (by mode), or ``error`` says why the file is bad."""

    job: Job
    samples: int = 0
    payload: Any = None
    error: AudioError | None = None


# ----------------------------------------------------------------------------- in the workers
def worker_spec(extractor: Extractor) -> tuple[type, dict[str, Any]]:
    """How a worker rebuilds the extractor: its class and params (recipes make params
    classes on the fly, which cannot be pickled by reference)."""
    return type(extractor), extractor.params.model_dump(mode="python", exclude={"type"})


_WORKER_EXTRACTORS: OrderedDict[str, Any] = OrderedDict()


def _worker_extractor(spec: tuple[type, dict[str, Any]]) -> Any:
    """The extractor of ``spec`` in a worker, built once (it may cache filterbanks etc.)."""
    cls, params = spec
    token = f"{cls.__module__}.{cls.__qualname__}:{sorted(params.items())!r}"
    ext = _WORKER_EXTRACTORS.get(token)
    if ext is None:
        try:
            ext = cls(cls.Params(**params))
        except Exception as err:
            raise SerkitError(
                f"extraction worker: cannot rebuild extractor '{cls.name}' from its class "
                f"{cls.__module__}.{cls.__qualname__} and params ({err}); use executor 'thread'"
            ) from err
        _WORKER_EXTRACTORS[token] = ext
        while len(_WORKER_EXTRACTORS) > 4:
            _WORKER_EXTRACTORS.popitem(last=False)
    return ext


def _worker_init() -> None:
    """In each worker: one math thread (the workers are the parallelism), no SIGINT
    (Ctrl-C is handled by the calling process, which then stops the pool)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        pass


def _timed_work(
    spec: tuple[type, dict[str, Any]] | None, mode: Mode, sample_rate: int, paths: list[str]
) -> tuple[float, list[tuple[int, Any, str | None]]]:
    """:func:`_work` and the seconds it took in the worker (sizes the next tasks)."""
    start = time.perf_counter()
    out = _work(spec, mode, sample_rate, paths)
    return time.perf_counter() - start, out


def _work(
    spec: tuple[type, dict[str, Any]] | None, mode: Mode, sample_rate: int, paths: list[str]
) -> list[tuple[int, Any, str | None]]:
    """In a worker: load, then prepare or extract, each file; ``(samples, payload, error)``."""
    ext = _worker_extractor(spec) if spec is not None else None
    out: list[tuple[int, Any, str | None]] = []
    wavs: list[tuple[int, np.ndarray]] = []  # (index in out, waveform) for mode "extract"
    for path in paths:
        try:
            wav = load_audio(path, sample_rate)
        except AudioError as err:
            out.append((0, None, str(err)))
            continue
        if mode == "prepare":
            try:
                out.append((int(wav.shape[0]), ext.prepare(wav), None))
            except AudioError as err:
                out.append((0, None, f"{path}: {err}"))
            continue
        if mode == "extract":
            wavs.append((len(out), wav))
            out.append((int(wav.shape[0]), None, None))
            continue
        out.append((int(wav.shape[0]), wav, None))
    if wavs:
        try:
            feats = list(ext.extract_batch([w for _, w in wavs]))
        except AudioError:
            feats = None  # find the file the extractor rejects
        if feats is not None and len(feats) != len(wavs):
            raise CacheError(
                f"extractor '{ext.name}' returned {len(feats)} outputs for a batch of "
                f"{len(wavs)} waveforms (first file {paths[wavs[0][0]]})"
            )
        if feats is not None:
            for (i, _), f in zip(wavs, feats, strict=True):
                out[i] = (out[i][0], f, None)
        else:
            for i, w in wavs:
                try:
                    out[i] = (out[i][0], ext.extract(w), None)
                except AudioError as err:
                    out[i] = (0, None, f"{paths[i]}: {err}")
    return out


def process_batches(
    jobs: list[Job],
    extractor: Extractor,
    mode: Mode,
    pool: ProcessPoolExecutor,
    batch_size: int,
    num_workers: int,
) -> Generator[list[Loaded], None, None]:
    """Yield batches of worker results in order, with up to two tasks per worker in flight.

    A task is a run of consecutive files. It starts at ``batch_size / num_workers`` files
    and grows, from the time the finished tasks took in the workers, towards
    :data:`TASK_SECONDS` of work (at most :data:`MAX_TASK_FILES` files, and its share of
    :data:`READ_AHEAD_BYTES` of audio files, one file at least): with cheap
    extractors (MFCC: ~1 ms a file) the fixed cost of a task, a few ms of inter-process
    messaging, would otherwise dominate, while slow ones keep small tasks and few files
    in flight.
    """
    spec = worker_spec(extractor) if mode != "load" else None
    base = max(1, min(-(-batch_size // num_workers), -(-len(jobs) // num_workers)))  # every worker busy
    task_files = base  # grows with resize()
    max_pending = 2 * num_workers
    # (files, their bytes, the worker's (seconds, results))
    pending: deque[tuple[list[Job], int, Future[tuple[float, list[tuple[int, Any, str | None]]]]]] = deque()
    next_job, in_flight = 0, 0  # the first job not sent yet; bytes of audio files sent and not received
    rate = extractor.sample_rate
    share = READ_AHEAD_BYTES // max_pending  # bytes of audio files per task (one file at least)

    def fill() -> None:
        nonlocal next_job, in_flight
        while len(pending) < max_pending and next_job < len(jobs):
            a = next_job
            left = len(jobs) - a
            # the last files are spread over the workers rather than left to one task
            n = min(left, task_files, max(base, -(-left // num_workers)))
            m, nbytes = 0, 0
            while m < n and (m == 0 or nbytes + jobs[a + m].size <= share):
                nbytes += jobs[a + m].size
                m += 1
            if pending and in_flight + nbytes > READ_AHEAD_BYTES:
                return
            part = jobs[a : a + m]
            next_job, in_flight = a + m, in_flight + nbytes
            pending.append((part, nbytes, pool.submit(_timed_work, spec, mode, rate, [j.path for j in part])))

    def resize(seconds: float, files: int) -> None:
        nonlocal task_files
        per_file = seconds / max(files, 1)
        want = int(TASK_SECONDS / per_file) if per_file > 0 else MAX_TASK_FILES
        task_files = max(base, min(MAX_TASK_FILES, want))

    ready: list[Loaded] = []
    try:
        while True:
            try:
                fill()
                if not pending:
                    break
                part, nbytes, fut = pending.popleft()
                in_flight -= nbytes
                seconds, got = _result(fut, pool)
                resize(seconds, len(part))
            except BrokenProcessPool as err:
                raise SerkitError(
                    "extract_features: an extraction worker process died or could not start "
                    f"({err}). If extract_features runs from a script, call it under "
                    "`if __name__ == \"__main__\":` (worker processes import the main module); "
                    "if memory is short, use fewer workers; or use executor 'thread' "
                    "(recipe: data.extract_executor: thread). Finished batches are kept."
                ) from err
            for job, (samples, payload, error) in zip(part, got, strict=True):
                ready.append(Loaded(job, samples, payload, AudioError(error) if error else None))
            while len(ready) >= batch_size:
                yield ready[:batch_size]
                ready = ready[batch_size:]
        if ready:
            yield ready
    finally:
        for _, _, fut in pending:
            fut.cancel()


# ----------------------------------------------------------------------------- the pool
_POOL_LOCK = threading.Lock()
_POOL: ProcessPoolExecutor | None = None
_POOL_WORKERS = 0
_POOL_PID = 0
_POOL_USERS = 0
_POOL_TIMER: threading.Timer | None = None


def pool_broken(pool: ProcessPoolExecutor) -> bool:
    """The executor knows it is broken, or one of its workers has died."""
    return bool(getattr(pool, "_broken", False)) or _dead_worker(pool)


def _dead_worker(pool: ProcessPoolExecutor) -> bool:
    """Whether a worker process of ``pool`` has exited (they only exit at shutdown)."""
    procs = getattr(pool, "_processes", None) or {}
    return any(p.exitcode is not None for p in list(procs.values()))


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    """Stop the workers of a broken pool at once.

    A worker killed while sending its result leaves half a message in the pipe the
    workers share; the executor's manager thread then waits for the rest as long as any
    process holds the pipe's write end open: the other workers and this process.
    Killing the survivors and closing this process's end lets the read fail, so the
    manager thread (and the interpreter's exit, which joins it) does not hang.
    """
    procs = list((getattr(pool, "_processes", None) or {}).values())
    for proc in procs:
        if proc.exitcode is None:
            proc.kill()
    for proc in procs:
        proc.join(timeout=5)
    # the calling process holds the pipe's write end too: closing it ends the half message
    queue = getattr(pool, "_result_queue", None)
    writer = getattr(queue, "_writer", None)
    if writer is not None and all(p.exitcode is not None for p in procs):
        try:
            writer.close()
        except OSError:
            pass


def _result(fut: Future[Any], pool: ProcessPoolExecutor) -> Any:
    """``fut.result()``, but a dead worker is noticed within :data:`WATCH_SECONDS` even
    when the executor itself never notices (see :func:`_kill_workers`)."""
    while True:
        try:
            return fut.result(timeout=WATCH_SECONDS)
        except FutureTimeout:  # the builtin TimeoutError from Python 3.11, another class before
            if _dead_worker(pool):
                raise BrokenProcessPool("a worker process exited while the pool was in use") from None


def pool_running(num_workers: int) -> bool:
    with _POOL_LOCK:
        return (
            _POOL is not None
            and _POOL_PID == os.getpid()
            and _POOL_WORKERS == num_workers
            and not pool_broken(_POOL)
        )


def _new_pool(num_workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        max_workers=num_workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_worker_init,
    )


def acquire_pool(num_workers: int) -> ProcessPoolExecutor:
    """The shared pool of ``num_workers`` processes (a private one when the shared pool
    is busy with another size)."""
    global _POOL, _POOL_WORKERS, _POOL_PID, _POOL_USERS, _POOL_TIMER
    with _POOL_LOCK:
        if _POOL_TIMER is not None:
            _POOL_TIMER.cancel()
            _POOL_TIMER = None
        if _POOL is not None and _POOL_PID != os.getpid():
            _POOL, _POOL_USERS = None, 0  # inherited through fork: not ours to use or stop
        usable = _POOL is not None and _POOL_WORKERS == num_workers and not pool_broken(_POOL)
        if not usable and _POOL is not None and _POOL_USERS > 0:
            return _new_pool(num_workers)  # private; shut down when released
        if not usable:
            if _POOL is not None:
                _POOL.shutdown(wait=False, cancel_futures=True)
            _POOL = _new_pool(num_workers)
            _POOL_WORKERS, _POOL_PID, _POOL_USERS = num_workers, os.getpid(), 0
        _POOL_USERS += 1
        return _POOL


def release_pool(pool: ProcessPoolExecutor, discard: bool = False) -> None:
    global _POOL, _POOL_USERS, _POOL_TIMER
    with _POOL_LOCK:
        if pool is not _POOL:
            if discard:
                _kill_workers(pool)
            pool.shutdown(wait=False, cancel_futures=True)
            return
        _POOL_USERS = max(0, _POOL_USERS - 1)
        if discard:
            _kill_workers(pool)
            pool.shutdown(wait=False, cancel_futures=True)
            _POOL, _POOL_USERS = None, 0
        elif _POOL_USERS == 0:
            _POOL_TIMER = threading.Timer(POOL_IDLE_SECONDS, _shutdown_if_idle, args=(pool,))
            _POOL_TIMER.daemon = True
            _POOL_TIMER.start()


def _shutdown_if_idle(pool: ProcessPoolExecutor) -> None:
    global _POOL, _POOL_TIMER
    with _POOL_LOCK:
        if pool is not _POOL or _POOL_USERS > 0:
            return
        _POOL, _POOL_TIMER = None, None
    pool.shutdown(wait=True)


def shutdown_workers() -> None:
    """Stop the extraction worker processes now (they are otherwise stopped after
    :data:`POOL_IDLE_SECONDS` unused, or at exit). A later extraction starts new ones."""
    global _POOL, _POOL_USERS, _POOL_TIMER
    with _POOL_LOCK:
        if _POOL_TIMER is not None:
            _POOL_TIMER.cancel()
            _POOL_TIMER = None
        pool = _POOL if _POOL_PID == os.getpid() else None
        _POOL, _POOL_USERS = None, 0
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)
