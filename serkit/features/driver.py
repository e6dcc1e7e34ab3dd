"""The extraction driver: utterances -> features in a :class:`FeatureStore`, resumably.

Pipeline: hash every audio file (threads; unchanged files' hashes come from a stat index,
:mod:`serkit.features.hash_index`) -> store keys -> keep this shard's contents
(``shard=(i, n)``) -> skip what the store already holds -> load the missing audio with a
bounded read-ahead in parallel workers -> compute the features in batches -> validate ->
commit each batch in one transaction, from a writer thread of the calling process (so
computing the next batch overlaps the write). A crash loses at most the batches in
flight; Ctrl-C first commits the batches already computed; the next run resumes.

Two executors run the parallel part:

* ``"thread"``: threads load (and resample) the audio; the extractor runs in the calling
  thread, except ``parallel_safe`` extractors (below), which the threads run too (their
  numpy work releases the GIL). No start-up cost and works everywhere.
* ``"process"``: a pool of worker processes (``spawn`` start method, so safe with torch and
  threads; they import only this module, soundfile/soxr and what the extractor needs).
  What the workers do depends on the extractor:

  - ``parallel_safe = True`` (a class attribute: a pure CPU function of the waveform,
    cheap to pickle, e.g. ``mfcc``): loading *and* :meth:`~Extractor.extract_batch`;
  - methods ``prepare(wav)`` and ``extract_prepared(items)`` (e.g. ``ge2e``): loading and
    ``prepare`` (preprocessing without the model); the model stays in the calling process
    and runs ``extract_prepared`` on batches;
  - otherwise (e.g. torch models without ``prepare``): loading only.

  Workers are created from the extractor's class and params (not by pickling the
  object), reused by later calls, and shut down after :data:`POOL_IDLE_SECONDS` idle or
  by :func:`shutdown_workers`. Starting one costs 1-3 s (imports), so the pool pays off
  from a few hundred files. The pool and what runs in the workers are
  :mod:`serkit.features.workers`; this module is the pipeline.
* ``"auto"`` (the default): ``"process"`` when the workers would have computing to do
  (the extractor is ``parallel_safe`` or has ``prepare``) and at least
  :data:`AUTO_PROCESS_MIN_FILES` files are to be computed or the pool is running already;
  ``"thread"`` otherwise, and always in a daemonic process (which cannot start children).

Both executors give identical features.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import sys
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from serkit.data.audio import file_sha256, load_audio
from serkit.data.utterance import check_unique_ids
from serkit.errors import AudioError, CacheError, SerkitError
from serkit.features.hash_index import FileStat, HashIndex, rehash_forced
from serkit.features.store import is_shard
from serkit.features.workers import (
    POOL_IDLE_SECONDS,
    READ_AHEAD_BYTES,
    Job,
    Loaded,
    Mode,
    acquire_pool,
    pool_broken,
    pool_running,
    process_batches,
    release_pool,
    shutdown_workers,
)

if TYPE_CHECKING:
    from serkit.data.utterance import Utterance
    from serkit.features.store import FeatureStore
    from serkit.interfaces.extractor import Extractor

__all__ = [
    "AUTO_PROCESS_MIN_FILES",
    "POOL_IDLE_SECONDS",
    "ExecutorName",
    "ExtractionResult",
    "empty_counts",
    "extract_features",
    "shard_of",
    "shutdown_workers",
    "validate_output",
]

OnBadAudio = Literal["error", "skip"]
ExecutorName = Literal["auto", "thread", "process"]

#: ``executor="auto"`` starts worker processes from this many files to compute.
AUTO_PROCESS_MIN_FILES = 500


@dataclass
class ExtractionResult:
    """What :func:`extract_features` did.

    Attributes:
        keys: utterance id -> store key, for every utterance (of this shard) whose
            features are stored.
        computed: distinct audio contents whose features were computed in this call.
        cached: distinct audio contents (of this shard) whose features were already stored.
        failed: ``(utterance id, path, error message)`` of skipped utterances.
        seconds: wall-clock time of the whole call.
        audio_seconds: total duration of the audio computed in this call.
        executor: ``"thread"`` or ``"process"``: what computed the features.
        shard: ``(i, n)`` of a sharded call, else None.
        other_shards: distinct audio contents left to the other shards.
        hashed: audio files read to hash them; the hashes of the others came from the
            stat index (:mod:`serkit.features.hash_index`).
        recomputed: stored items that failed their checksum (or shape), deleted and
            computed again (counted in ``computed``).
    """

    keys: dict[str, str] = field(default_factory=dict)
    computed: int = 0
    cached: int = 0
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    seconds: float = 0.0
    audio_seconds: float = 0.0
    executor: str = "thread"
    shard: tuple[int, int] | None = None
    other_shards: int = 0
    hashed: int = 0
    recomputed: int = 0

    @property
    def real_time_factor(self) -> float:
        """Audio seconds computed per wall-clock second (higher is faster)."""
        return self.audio_seconds / self.seconds if self.seconds > 0 else 0.0

    def add_counts(self, counts: dict[str, Any]) -> None:
        """Add this call's counts to a stream's totals (:func:`empty_counts`): computed, cached, failed, seconds."""
        counts["computed"] += self.computed
        counts["cached"] += self.cached
        counts["failed"] += len(self.failed)
        counts["seconds"] += self.seconds
        counts["audio_seconds"] += self.audio_seconds


def empty_counts() -> dict[str, Any]:
    """A stream's extraction totals before any call (``results.json``'s ``extraction.<stream>``)."""
    return {"computed": 0, "cached": 0, "failed": 0, "seconds": 0.0, "audio_seconds": 0.0}


def validate_output(extractor: Extractor, array: Any, path: str) -> np.ndarray:
    """Check one extractor output against its declared kind and dim; return float32.

    Raises:
        CacheError: wrong type, shape or non-finite values (names extractor and file).
    """
    name = extractor.name
    if not isinstance(array, np.ndarray):
        raise CacheError(
            f"extractor '{name}' returned {type(array).__name__} for {path}; expected a numpy array"
        )
    dim = extractor.dim
    if extractor.output == "sequence":
        ok = array.ndim == 2 and array.shape[0] >= 1 and array.shape[1] == dim
        expected = f"(L, {dim}) with L >= 1"
    else:
        ok = array.shape == (dim,)
        expected = f"({dim},)"
    if not ok:
        raise CacheError(
            f"extractor '{name}' returned shape {tuple(array.shape)} for {path}; "
            f"expected {expected}"
        )
    if array.dtype.kind not in "fiu":
        raise CacheError(
            f"extractor '{name}' returned dtype {array.dtype} for {path}; expected float32"
        )
    out = np.asarray(array, dtype=np.float32)
    if not np.all(np.isfinite(out)):
        raise CacheError(f"extractor '{name}' returned NaN or infinite values for {path}")
    return out


def shard_of(audio_sha256: str, n: int) -> int:
    """The shard (of ``n``) an audio content belongs to: its SHA-256 (hex) modulo ``n``.

    It depends only on the audio bytes, so every rank and machine agrees, whatever the
    order, paths or extractor.
    """
    return int(audio_sha256[:16], 16) % n


def _progress(enabled: bool) -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[speed]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
        disable=not (enabled and console.is_terminal),
    )


@contextmanager
def _null_progress() -> Iterator[Any]:
    yield None


def _mode_of(extractor: Extractor) -> Mode:
    """What worker processes can do for this extractor (see the module docstring)."""
    if getattr(type(extractor), "parallel_safe", False) is True:
        return "extract"
    if callable(getattr(extractor, "prepare", None)) and callable(
        getattr(extractor, "extract_prepared", None)
    ):
        return "prepare"
    return "load"


def _check_args(
    batch_size: int, num_workers: int, on_bad_audio: str, executor: str, shard: Any
) -> tuple[int, int] | None:
    if batch_size < 1:
        raise SerkitError(f"extract_features: batch_size must be >= 1, got {batch_size}")
    if num_workers < 0:
        raise SerkitError(f"extract_features: num_workers must be >= 0, got {num_workers}")
    if on_bad_audio not in ("error", "skip"):
        raise SerkitError(
            f"extract_features: on_bad_audio must be 'error' or 'skip', got {on_bad_audio!r}"
        )
    if executor not in ("auto", "thread", "process"):
        raise SerkitError(
            f"extract_features: executor must be 'auto', 'thread' or 'process', got {executor!r}"
        )
    if shard is None:
        return None
    if not is_shard(shard):
        raise SerkitError(f"extract_features: shard must be (i, n) with 0 <= i < n, got {shard!r}")
    return int(shard[0]), int(shard[1])


def extract_features(
    utterances: Sequence[Utterance],
    extractor: Extractor,
    store: FeatureStore,
    *,
    batch_size: int = 16,
    num_workers: int = 2,
    on_bad_audio: OnBadAudio = "error",
    progress: bool = True,
    description: str | None = None,
    executor: ExecutorName = "auto",
    shard: tuple[int, int] | None = None,
    rehash: bool = False,
    verify: bool = False,
) -> ExtractionResult:
    """Compute the features of ``utterances`` that ``store`` does not hold yet.

    Args:
        utterances: unique ids; utterances with identical audio bytes share one item.
        extractor: must have the fingerprint the store was opened with.
        store: where features are read from (all its files) and committed to.
        batch_size: waveforms per extractor call and per commit.
        num_workers: parallel workers (threads or processes, see ``executor``) hashing,
            loading and, with processes, preprocessing or computing; 0: everything in the
            calling thread. With threads, at most ``2 * batch_size`` files are in flight at
            once; with processes, two tasks per worker, each sized to ~:data:`TASK_SECONDS`
            of work (between ``batch_size / num_workers`` and :data:`MAX_TASK_FILES` files).
        on_bad_audio: ``"error"`` re-raises the :class:`AudioError` of an unreadable,
            silent or too short file; ``"skip"`` records it in ``failed`` and goes on.
        progress: show a rich progress bar on stderr (only when it is a terminal).
        description: label of the progress bar (default: the extractor name).
        executor: ``"auto"``, ``"thread"`` or ``"process"`` (see the module docstring).
        shard: ``(i, n)``: only the audio contents of shard ``i`` of ``n``
            (:func:`shard_of` their SHA-256) are extracted, into the store's file of that
            shard, so that ``n`` ranks or machines can extract into one store at once
            (``n == 1``: everything, into the main file). Other shards' utterances are
            left out of ``keys`` and counted in ``other_shards``.
        rehash: read and hash every audio file even when the stat index
            (:mod:`serkit.features.hash_index`) knows it unchanged, and refresh the index
            (also with the environment variable ``SERKIT_REHASH=1``).
        verify: read the stored items of these utterances once and recompute those whose
            bytes fail their checksum (a warning counts them), so that training never meets
            a corrupt item (``serkit run`` does; ~0.6 s per GB from the page cache).

    Returns:
        An :class:`ExtractionResult`.

    Raises:
        AudioError: bad audio with ``on_bad_audio="error"`` (the message names the file).
        CacheError: the extractor returned a wrong shape or non-finite values, or the
            store cannot be written (a read-only store lacking some of the features).
        SerkitError: invalid arguments, a store of another extractor configuration, or
            worker processes that could not start or died.
    """
    start = time.perf_counter()
    shard = _check_args(batch_size, num_workers, on_bad_audio, executor, shard)
    if store.fingerprint != extractor.fingerprint():
        raise SerkitError(
            f"extract_features: store {store.path} holds extractor fingerprint "
            f"{store.fingerprint}, but extractor '{extractor.name}' has "
            f"{extractor.fingerprint()}; open the store with this extractor"
        )
    check_unique_ids(utterances, "extract_features")
    result = ExtractionResult(shard=shard)
    label = description or extractor.name
    if shard is not None and shard[1] > 1:
        label += f" (shard {shard[0]}/{shard[1]})"
    show = progress and sys.stderr is not None and sys.stderr.isatty()
    writer = store if shard is None or shard[1] == 1 else store.for_shard(*shard)

    threads = ThreadPoolExecutor(max_workers=num_workers) if num_workers > 0 else None
    index = HashIndex(store.path.parent)
    try:
        with _progress(show) if show else _null_progress() as bar:
            hashes, sizes = _hash_files(utterances, index, rehash or rehash_forced(), threads, bar, label, result)
            jobs = _group(utterances, hashes, sizes, store, on_bad_audio, result, shard)
            todo = _missing(jobs, store, verify, result)
            task = (
                bar.add_task(f"{label} ({result.cached} cached)", total=len(todo), speed="", start=True)
                if bar is not None
                else None
            )
            work = _Work(extractor, writer, on_bad_audio, result, bar, task)
            _compute(work, todo, executor, threads, batch_size, num_workers)
    finally:
        index.close()
        if threads is not None:
            threads.shutdown(wait=True, cancel_futures=True)
        if writer is not store:
            writer.close()
    # keep the order of the input
    result.keys = {u.id: result.keys[u.id] for u in utterances if u.id in result.keys}
    result.seconds = time.perf_counter() - start
    return result


def _missing(jobs: dict[str, Job], store: FeatureStore, verify: bool, result: ExtractionResult) -> list[Job]:
    """The jobs whose features the store lacks (resume: what is stored, in any file of the store, and sound is
    skipped and counted as cached)."""
    todo_keys = set(store.missing(jobs))
    if verify:
        _recompute_corrupt(store, [k for k in jobs if k not in todo_keys], todo_keys, result)
    if todo_keys and store.read_only:
        raise CacheError(
            f"{store.path}: {len(todo_keys)} of {len(jobs)} audio file(s) have no features in this store, "
            f"and it is read-only (this process cannot write {store.root}); point SERKIT_CACHE (or the "
            "recipe's store.root) at a writable folder to extract them"
        )
    todo = [j for k, j in jobs.items() if k in todo_keys]
    for k, j in jobs.items():
        if k not in todo_keys:
            result.cached += 1
            for uid in j.ids:
                result.keys[uid] = k
    return todo


@dataclass
class _Work:
    """Where computed features go: the extractor, the store (or shard) written, and the call's result."""

    extractor: Extractor
    writer: FeatureStore
    on_bad_audio: OnBadAudio
    result: ExtractionResult
    bar: Any
    task: Any


def _compute(
    work: _Work,
    todo: list[Job],
    executor: str,
    threads: ThreadPoolExecutor | None,
    batch_size: int,
    num_workers: int,
) -> None:
    """Compute ``todo`` with worker processes (:mod:`serkit.features.workers`) or threads, and commit it."""
    extractor, result = work.extractor, work.result
    mode = _mode_of(extractor)
    use_processes = _use_processes(executor, mode, num_workers, len(todo))
    result.executor = "process" if use_processes else "thread"
    if use_processes:
        pool = acquire_pool(num_workers)
        batches = process_batches(todo, extractor, mode, pool, batch_size, num_workers)
        ok = False
        try:
            _consume(batches, extractor, mode, work.writer, work.on_bad_audio, result, work.bar, work.task)
            ok = True
        finally:
            batches.close()  # cancels what is still queued (on an error or Ctrl-C)
            release_pool(pool, discard=not ok and pool_broken(pool))
    else:
        # threads compute too for parallel-safe extractors (numpy releases the GIL)
        mode = "extract" if mode == "extract" and threads is not None else "load"
        thread_batches = _thread_batches(todo, threads, extractor, mode, batch_size)
        _consume(thread_batches, extractor, mode, work.writer, work.on_bad_audio, result, work.bar, work.task)


def _recompute_corrupt(store: FeatureStore, stored: list[str], todo: set[str], result: ExtractionResult) -> None:
    """Move the corrupt items of ``stored`` to ``todo`` (deleting them from the store)."""
    bad = store.corrupt(stored)
    if not bad:
        return
    if store.read_only:
        raise CacheError(
            f"{store.path}: {len(bad)} stored item(s) are corrupt (checksum mismatch) and the store is read-only, "
            "so they cannot be recomputed; ask its owner to run 'serkit cache verify --repair' on it, or point "
            "SERKIT_CACHE (or the recipe's store.root) at a writable folder"
        )
    store.delete(bad)
    todo.update(bad)
    result.recomputed = len(bad)
    warnings.warn(
        f"{store.path}: {len(bad)} stored item(s) were corrupt (checksum mismatch); they are computed again",
        UserWarning,
        stacklevel=3,
    )


def _hash_files(
    utterances: Sequence[Utterance],
    index: HashIndex,
    rehash: bool,
    threads: ThreadPoolExecutor | None,
    bar: Any,
    label: str,
    result: ExtractionResult,
) -> tuple[dict[str, str | AudioError], dict[str, int]]:
    """SHA-256 of each distinct path (or why it cannot be read): from the stat index when
    the file is unchanged, else read (in threads) and then recorded in the index; and the
    size in bytes of each file that could be stat'ed."""
    paths = list(dict.fromkeys(u.path for u in utterances))
    absolute = {p: os.path.abspath(p) for p in paths}
    stats = {p: FileStat.of(p) for p in paths}
    known: dict[str, str] = {}
    if not rehash:
        known = index.lookup({absolute[p]: st for p, st in stats.items() if st is not None})
    hashes: dict[str, str | AudioError] = {p: known[absolute[p]] for p in paths if absolute[p] in known}
    todo = [p for p in paths if p not in hashes]
    result.hashed = len(todo)
    hash_task = bar.add_task(f"{label}: hashing", total=len(todo), speed="") if bar is not None and todo else None

    def hash_one(p: str) -> str | AudioError:
        try:
            return file_sha256(p)
        except AudioError as err:
            return err

    started = time.time_ns()
    results = threads.map(hash_one, todo) if threads else map(hash_one, todo)
    for p, h in zip(todo, results, strict=True):
        hashes[p] = h
        if hash_task is not None:
            bar.advance(hash_task)
    if hash_task is not None:
        bar.remove_task(hash_task)
    fresh = [(absolute[p], st, h) for p in todo if (st := stats[p]) is not None and isinstance(h := hashes[p], str)]
    index.record(fresh, started)
    return hashes, {p: st.size for p, st in stats.items() if st is not None}


def _group(
    utterances: Sequence[Utterance],
    hashes: dict[str, str | AudioError],
    sizes: dict[str, int],
    store: FeatureStore,
    on_bad_audio: OnBadAudio,
    result: ExtractionResult,
    shard: tuple[int, int] | None,
) -> dict[str, Job]:
    """Keep this shard's audio contents and group utterances by store key."""
    jobs: dict[str, Job] = {}
    others: set[str] = set()
    for u in utterances:
        h = hashes[u.path]
        if shard is not None:
            # an unreadable file belongs to the shard of its path, so one shard reports it
            content = h if isinstance(h, str) else hashlib.sha256(u.path.encode()).hexdigest()
            if shard_of(content, shard[1]) != shard[0]:
                others.add(content)
                continue
        if isinstance(h, AudioError):
            if on_bad_audio == "error":
                raise h
            result.failed.append((u.id, u.path, str(h)))
            continue
        key = store.key_for(h)
        job = jobs.get(key)
        if job is None:
            jobs[key] = Job(key, u.path, [u.id], sizes.get(u.path, 0))
        else:
            job.ids.append(u.id)
    result.other_shards = len(others)
    return jobs


def _use_processes(executor: str, mode: Mode, num_workers: int, n_todo: int) -> bool:
    if executor == "thread" or num_workers == 0 or n_todo == 0:
        return False
    daemon = multiprocessing.current_process().daemon
    if executor == "process":
        if daemon:
            raise SerkitError(
                "extract_features: executor='process' cannot start worker processes from a daemonic "
                "process (e.g. a DataLoader worker); use executor='thread'"
            )
        return True
    if daemon or mode == "load":
        return False
    return n_todo >= AUTO_PROCESS_MIN_FILES or pool_running(num_workers)


# ----------------------------------------------------------------------------- committing
#: Batches that may wait for the store writer thread (what a crash can lose beyond the
#: batch being written).
WRITE_QUEUE_DEPTH = 2


class _StoreWriter:
    """Commits batches to the store from a background thread, in order.

    The calling thread hands over a batch and goes on computing the next while SQLite
    writes (and, every few MB, syncs the file to disk). At most
    :data:`WRITE_QUEUE_DEPTH` batches wait. :meth:`close` commits what is queued, even
    after an error or Ctrl-C in the calling thread (finished work is kept), then re-raises
    a failed write; a write error also stops the next :meth:`put`.
    """

    def __init__(self, store: FeatureStore) -> None:
        import queue

        self._store = store
        self._queue: queue.Queue[list[tuple[str, np.ndarray]] | None] = queue.Queue(maxsize=WRITE_QUEUE_DEPTH)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="serkit-store-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            items = self._queue.get()
            if items is None:
                return
            if self._error is None:
                try:
                    self._store.put_many(items)
                except BaseException as err:  # re-raised in the calling thread
                    self._error = err

    def _raise(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    def put(self, items: list[tuple[str, np.ndarray]]) -> None:
        """Queue one transaction (blocks while the queue is full)."""
        self._raise()
        if items:
            self._queue.put(items)

    def close(self) -> None:
        """Commit what is queued, stop the thread, raise a write error."""
        self._queue.put(None)
        self._thread.join()
        self._raise()


# ----------------------------------------------------------------------------- consuming
def _consume(
    batches: Iterator[list[Loaded]],
    extractor: Extractor,
    mode: Mode,
    writer: FeatureStore,
    on_bad_audio: OnBadAudio,
    result: ExtractionResult,
    bar: Any,
    task: Any,
) -> None:
    """Compute what the workers did not, validate, commit each batch in one transaction
    (in a writer thread, while the next batch is computed)."""
    store_writer = _StoreWriter(writer)
    try:
        _consume_into(batches, extractor, mode, store_writer, on_bad_audio, result, bar, task)
    except BaseException:
        try:
            store_writer.close()  # keep the finished batches
        except Exception as write_err:  # the original error matters more; both are shown
            warnings.warn(f"extract_features: committing the last batches also failed: {write_err}", stacklevel=2)
        raise
    store_writer.close()


def _consume_into(
    batches: Iterator[list[Loaded]],
    extractor: Extractor,
    mode: Mode,
    store_writer: _StoreWriter,
    on_bad_audio: OnBadAudio,
    result: ExtractionResult,
    bar: Any,
    task: Any,
) -> None:
    t_compute = time.perf_counter()
    audio_done = 0.0
    files_done = 0
    rate = extractor.sample_rate
    prepared: Callable[[list[Any]], Sequence[Any]] = getattr(extractor, "extract_prepared", None)  # type: ignore[assignment]

    def one_prepared(x: Any) -> Any:
        return prepared([x])[0]

    for batch in batches:
        good: list[Loaded] = []
        for item in batch:
            if item.error is not None:
                if on_bad_audio == "error":
                    raise item.error
                _fail(result, item.job, str(item.error))
            else:
                good.append(item)
        if mode == "extract":
            outputs = [(it, validate_output(extractor, it.payload, it.job.path)) for it in good]
        elif mode == "prepare":
            outputs = _run_model(extractor, prepared, one_prepared, good, on_bad_audio, result)
        else:
            outputs = _run_model(
                extractor, extractor.extract_batch, extractor.extract, good, on_bad_audio, result
            )
        store_writer.put([(it.job.key, feats) for it, feats in outputs])
        for it, _ in outputs:
            for uid in it.job.ids:
                result.keys[uid] = it.job.key
            result.computed += 1
            secs = it.samples / rate
            result.audio_seconds += secs
            audio_done += secs
        files_done += len(batch)
        if bar is not None:
            elapsed = max(time.perf_counter() - t_compute, 1e-9)
            speed = f"{files_done / elapsed:.1f} files/s, RTF x{audio_done / elapsed:.1f}"
            bar.update(task, advance=len(batch), speed=speed)


def _fail(result: ExtractionResult, job: Job, message: str) -> None:
    for uid in job.ids:
        result.failed.append((uid, job.path, message))


def _run_model(
    extractor: Extractor,
    batch_fn: Callable[[list[Any]], Sequence[Any]],
    one_fn: Callable[[Any], Any],
    good: list[Loaded],
    on_bad_audio: OnBadAudio,
    result: ExtractionResult,
) -> list[tuple[Loaded, np.ndarray]]:
    """Run the extractor on a batch and validate; returns (item, features) pairs."""
    if not good:
        return []
    try:
        outs: list[Any] | None = list(batch_fn([it.payload for it in good]))
    except AudioError:
        outs = None  # find out which file the extractor rejects, one by one
    if outs is not None:
        if len(outs) != len(good):
            raise CacheError(
                f"extractor '{extractor.name}' returned {len(outs)} outputs for a batch of "
                f"{len(good)} waveforms (first file {good[0].job.path})"
            )
        return [(it, validate_output(extractor, o, it.job.path)) for it, o in zip(good, outs, strict=True)]

    done: list[tuple[Loaded, np.ndarray]] = []
    for it in good:
        try:
            out = one_fn(it.payload)
        except AudioError as err:
            named = AudioError(f"{it.job.path}: {err}")
            if on_bad_audio == "error":
                raise named from err
            _fail(result, it.job, str(named))
            continue
        done.append((it, validate_output(extractor, out, it.job.path)))
    return done


# ----------------------------------------------------------------------------- threads
def _thread_batches(
    jobs: list[Job],
    executor: ThreadPoolExecutor | None,
    extractor: Extractor,
    mode: Mode,
    batch_size: int,
) -> Iterator[list[Loaded]]:
    """Yield batches of loaded waveforms (mode ``"load"``) or features (``"extract"``),
    working up to one batch ahead (fewer files when they are large: :data:`READ_AHEAD_BYTES`)."""
    sample_rate = extractor.sample_rate

    def load(job: Job) -> Loaded:
        try:
            wav = load_audio(job.path, sample_rate)
        except AudioError as err:
            return Loaded(job, error=err)
        if mode == "extract":
            try:
                return Loaded(job, int(wav.shape[0]), extractor.extract(wav))
            except AudioError as err:
                return Loaded(job, error=AudioError(f"{job.path}: {err}"))
        return Loaded(job, int(wav.shape[0]), wav)

    if executor is None:
        for i in range(0, len(jobs), batch_size):
            yield [load(j) for j in jobs[i : i + batch_size]]
        return

    pending: deque[tuple[Job, Future[Loaded]]] = deque()
    next_job, in_flight = 0, 0  # the first job not submitted; bytes of the audio files loading

    def fill() -> None:
        nonlocal next_job, in_flight
        # up to 2 batches ahead, and at most READ_AHEAD_BYTES of audio files (one file at least)
        while len(pending) < 2 * batch_size and next_job < len(jobs):
            job = jobs[next_job]
            if pending and in_flight + job.size > READ_AHEAD_BYTES:
                return
            next_job, in_flight = next_job + 1, in_flight + job.size
            pending.append((job, executor.submit(load, job)))

    fill()
    while pending:
        batch = []
        while pending and len(batch) < batch_size:
            job, fut = pending.popleft()
            in_flight -= job.size
            batch.append(fut.result())
        fill()  # the next batch loads while this one is extracted
        yield batch
