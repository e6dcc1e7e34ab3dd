"""The extraction driver: utterances -> features in a :class:`FeatureStore`, resumably.

Pipeline: hash every audio file (threads) -> store keys -> skip what the store already
holds -> load the missing audio with a bounded read-ahead (threads) -> run the extractor
on batches in the calling process -> validate -> commit each batch in one transaction.
A crash or Ctrl-C loses at most the batch being computed; the next run resumes.
"""

from __future__ import annotations

import sys
import time
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

if TYPE_CHECKING:
    from serkit.data.utterance import Utterance
    from serkit.features.store import FeatureStore
    from serkit.interfaces.extractor import Extractor

__all__ = ["ExtractionResult", "extract_features", "validate_output"]

OnBadAudio = Literal["error", "skip"]


@dataclass
class ExtractionResult:
    """What :func:`extract_features` did.

    Attributes:
        keys: utterance id -> store key, for every utterance whose features are stored.
        computed: distinct audio contents whose features were computed in this call.
        cached: distinct audio contents whose features were already stored.
        failed: ``(utterance id, path, error message)`` of skipped utterances.
        seconds: wall-clock time of the whole call.
        audio_seconds: total duration of the audio computed in this call.
    """

    keys: dict[str, str] = field(default_factory=dict)
    computed: int = 0
    cached: int = 0
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    seconds: float = 0.0
    audio_seconds: float = 0.0

    @property
    def real_time_factor(self) -> float:
        """Audio seconds computed per wall-clock second (higher is faster)."""
        return self.audio_seconds / self.seconds if self.seconds > 0 else 0.0


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


@dataclass
class _Job:
    key: str
    path: str
    ids: list[str]


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
) -> ExtractionResult:
    """Compute the features of ``utterances`` that ``store`` does not hold yet.

    Args:
        utterances: unique ids; utterances with identical audio bytes share one item.
        extractor: must have the fingerprint the store was opened with.
        store: where features are read from and committed to.
        batch_size: waveforms per :meth:`Extractor.extract_batch` call and per commit.
        num_workers: threads hashing and loading audio (0: in the calling thread).
            At most ``2 * batch_size`` waveforms are held in memory at once.
        on_bad_audio: ``"error"`` re-raises the :class:`AudioError` of an unreadable,
            silent or too short file; ``"skip"`` records it in ``failed`` and goes on.
        progress: show a rich progress bar on stderr (only when it is a terminal).
        description: label of the progress bar (default: the extractor name).

    Returns:
        An :class:`ExtractionResult`.

    Raises:
        AudioError: bad audio with ``on_bad_audio="error"`` (the message names the file).
        CacheError: the extractor returned a wrong shape or non-finite values, or the
            store cannot be written.
        SerkitError: invalid arguments, or a store of another extractor configuration.
    """
    start = time.perf_counter()
    if batch_size < 1:
        raise SerkitError(f"extract_features: batch_size must be >= 1, got {batch_size}")
    if num_workers < 0:
        raise SerkitError(f"extract_features: num_workers must be >= 0, got {num_workers}")
    if on_bad_audio not in ("error", "skip"):
        raise SerkitError(
            f"extract_features: on_bad_audio must be 'error' or 'skip', got {on_bad_audio!r}"
        )
    if store.fingerprint != extractor.fingerprint():
        raise SerkitError(
            f"extract_features: store {store.path} holds extractor fingerprint "
            f"{store.fingerprint}, but extractor '{extractor.name}' has "
            f"{extractor.fingerprint()}; open the store with this extractor"
        )
    check_unique_ids(utterances, "extract_features")
    result = ExtractionResult()
    label = description or extractor.name
    show = progress and sys.stderr is not None and sys.stderr.isatty()

    executor = ThreadPoolExecutor(max_workers=num_workers) if num_workers > 0 else None
    try:
        with _progress(show) if show else _null_progress() as bar:
            # 1. hash the audio files (each distinct path once)
            paths = list(dict.fromkeys(u.path for u in utterances))
            hashes: dict[str, str | AudioError] = {}
            hash_task = (
                bar.add_task(f"{label}: hashing", total=len(paths), speed="")
                if bar is not None
                else None
            )

            def hash_one(p: str) -> str | AudioError:
                try:
                    return file_sha256(p)
                except AudioError as err:
                    return err

            results = executor.map(hash_one, paths) if executor else map(hash_one, paths)
            for p, h in zip(paths, results, strict=True):
                hashes[p] = h
                if bar is not None:
                    bar.advance(hash_task)
            if bar is not None:
                bar.remove_task(hash_task)

            # 2. keys; group utterances by key
            jobs: dict[str, _Job] = {}
            for u in utterances:
                h = hashes[u.path]
                if isinstance(h, AudioError):
                    if on_bad_audio == "error":
                        raise h
                    result.failed.append((u.id, u.path, str(h)))
                    continue
                key = store.key_for(h)
                job = jobs.get(key)
                if job is None:
                    jobs[key] = _Job(key, u.path, [u.id])
                else:
                    job.ids.append(u.id)

            # 3. resume: skip what is stored
            todo_keys = set(store.missing(jobs))
            todo = [j for k, j in jobs.items() if k in todo_keys]
            for k, j in jobs.items():
                if k not in todo_keys:
                    result.cached += 1
                    for uid in j.ids:
                        result.keys[uid] = k

            # 4. load (read-ahead) -> extract in batches -> validate -> commit
            task = (
                bar.add_task(
                    f"{label} ({result.cached} cached)", total=len(todo), speed="", start=True
                )
                if bar is not None
                else None
            )
            t_compute = time.perf_counter()
            audio_done = 0.0
            files_done = 0
            for batch in _batches(todo, executor, extractor.sample_rate, batch_size):
                good: list[tuple[_Job, np.ndarray]] = []
                for job, wav in batch:
                    if isinstance(wav, AudioError):
                        if on_bad_audio == "error":
                            raise wav
                        _fail(result, job, str(wav))
                    else:
                        good.append((job, wav))
                outputs = _extract(extractor, good, on_bad_audio, result)
                items = [(job.key, feats) for (job, _), feats in outputs]
                store.put_many(items)
                for (job, wav), _ in outputs:
                    for uid in job.ids:
                        result.keys[uid] = job.key
                    result.computed += 1
                    secs = wav.shape[0] / extractor.sample_rate
                    result.audio_seconds += secs
                    audio_done += secs
                files_done += len(batch)
                if bar is not None:
                    elapsed = max(time.perf_counter() - t_compute, 1e-9)
                    speed = f"{files_done / elapsed:.1f} files/s, RTF x{audio_done / elapsed:.1f}"
                    bar.update(task, advance=len(batch), speed=speed)
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
    # keep the order of the input
    result.keys = {u.id: result.keys[u.id] for u in utterances if u.id in result.keys}
    result.seconds = time.perf_counter() - start
    return result


def _fail(result: ExtractionResult, job: _Job, message: str) -> None:
    for uid in job.ids:
        result.failed.append((uid, job.path, message))


def _batches(
    jobs: list[_Job],
    executor: ThreadPoolExecutor | None,
    sample_rate: int,
    batch_size: int,
) -> Iterator[list[tuple[_Job, np.ndarray | AudioError]]]:
    """Yield batches of loaded waveforms, reading up to one batch ahead."""

    def load(job: _Job) -> np.ndarray | AudioError:
        try:
            return load_audio(job.path, sample_rate)
        except AudioError as err:
            return err

    if executor is None:
        for i in range(0, len(jobs), batch_size):
            yield [(j, load(j)) for j in jobs[i : i + batch_size]]
        return

    pending: deque[tuple[_Job, Future[np.ndarray | AudioError]]] = deque()
    it = iter(jobs)

    def fill() -> None:
        while len(pending) < 2 * batch_size:
            job = next(it, None)
            if job is None:
                return
            pending.append((job, executor.submit(load, job)))

    fill()
    while pending:
        batch = []
        while pending and len(batch) < batch_size:
            job, fut = pending.popleft()
            batch.append((job, fut.result()))
        fill()  # the next batch loads while this one is extracted
        yield batch


def _extract(
    extractor: Extractor,
    good: list[tuple[_Job, np.ndarray]],
    on_bad_audio: OnBadAudio,
    result: ExtractionResult,
) -> list[tuple[tuple[_Job, np.ndarray], np.ndarray]]:
    """Run the extractor on a batch and validate; returns ((job, wav), features) pairs."""
    if not good:
        return []
    wavs = [w for _, w in good]
    try:
        outs: list[Any] | None = list(extractor.extract_batch(wavs))
    except AudioError:
        outs = None  # find out which file the extractor rejects, one by one
    if outs is not None:
        if len(outs) != len(good):
            raise CacheError(
                f"extractor '{extractor.name}' returned {len(outs)} outputs for a batch of "
                f"{len(good)} waveforms (first file {good[0][0].path})"
            )
        return [
            (g, validate_output(extractor, o, g[0].path)) for g, o in zip(good, outs, strict=True)
        ]

    done: list[tuple[tuple[_Job, np.ndarray], np.ndarray]] = []
    one: Callable[[np.ndarray], Any] = extractor.extract
    for job, wav in good:
        try:
            out = one(wav)
        except AudioError as err:
            named = AudioError(f"{job.path}: {err}")
            if on_bad_audio == "error":
                raise named from err
            _fail(result, job, str(named))
            continue
        done.append(((job, wav), validate_output(extractor, out, job.path)))
    return done
