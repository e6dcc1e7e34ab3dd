"""``serkit data info``: what a corpus on disk holds, and what is wrong with it.

:func:`open_dataset` instantiates a registered dataset from command-line values (relaxing
``strict`` so that misnamed files are collected instead of raising) and
:func:`corpus_info` lists it, reads every audio header (soundfile, in a thread pool) and
optionally decodes every file, returning a :class:`CorpusInfo`. Printing is the CLI's job
(:mod:`serkit.cli.data_cmd`).
"""

from __future__ import annotations

import os
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from serkit.data.labels import CANONICAL_LABELS
from serkit.errors import AudioError, RecipeError
from serkit.interfaces.dataset import Dataset
from serkit.registry import Registry

__all__ = [
    "CorpusInfo",
    "DurationStats",
    "ProgressCallback",
    "SpeakerStats",
    "corpus_info",
    "open_dataset",
    "relative_to_root",
]

#: ``progress(stage, done, total)``: called once with ``done=0`` when a stage starts and
#: after every file; stages are ``"headers"`` and ``"decode"``.
ProgressCallback = Callable[[str, int, int], None]

_R = TypeVar("_R")


@dataclass(frozen=True)
class DurationStats:
    """Durations in seconds of the files whose header could be read."""

    total: float
    mean: float
    min: float
    max: float


@dataclass(frozen=True)
class SpeakerStats:
    """Utterances per speaker: the counts and their summary."""

    count: int
    per_speaker: dict[str, int]
    min: int
    median: float
    mean: float
    max: int


@dataclass
class CorpusInfo:
    """Summary of a listed corpus (see :func:`corpus_info`).

    Attributes:
        dataset: registered dataset name.
        params: the dataset's parameters as used (JSON-compatible).
        strict_relaxed: ``strict`` was set to false by :func:`open_dataset`, so misnamed
            files are listed in ``naming_problems`` instead of failing the listing.
        utterances: number of utterances listed.
        speakers: utterances per speaker.
        emotions: utterances per label, sorted by label.
        languages: utterances per language.
        readable: files whose header could be read and that are long enough to use.
        duration: duration statistics of the readable files (``None`` if there are none).
        sample_rates: readable files per sample rate (Hz).
        channels: readable files per channel count.
        unreadable: :class:`~serkit.errors.AudioError` messages of the files whose header
            could not be read.
        too_short: files whose header gives less than
            :data:`~serkit.data.audio.MIN_DURATION` seconds (a truncated file, a click): a
            run refuses them (or leaves them out with ``data.on_bad_audio: skip``).
        decoded: every readable file was decoded (``--decode``).
        decode_problems: AudioError messages of decoding (silent, NaN, too short...);
            empty when not ``decoded``.
        naming_problems: the dataset's ``problems`` (files skipped because they break the
            naming scheme, missing parts), when it has such a list.
        unknown_labels: labels outside serkit's canonical vocabulary, with their counts.
        excluded: files that follow the naming scheme but were dropped by the parameters.
    """

    dataset: str
    params: dict[str, Any]
    strict_relaxed: bool
    utterances: int
    speakers: SpeakerStats
    emotions: dict[str, int]
    languages: dict[str, int]
    readable: int
    duration: DurationStats | None
    sample_rates: dict[int, int]
    channels: dict[int, int]
    unreadable: list[str] = field(default_factory=list)
    too_short: list[str] = field(default_factory=list)
    decoded: bool = False
    decode_problems: list[str] = field(default_factory=list)
    naming_problems: list[str] = field(default_factory=list)
    unknown_labels: dict[str, int] = field(default_factory=dict)
    excluded: int = 0

    @property
    def problem_count(self) -> int:
        """Number of problems of every kind (excluded files are not problems)."""
        return (
            len(self.unreadable) + len(self.too_short) + len(self.decode_problems) + len(self.naming_problems)
            + len(self.unknown_labels)
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form (what ``serkit data info --json`` prints)."""
        d = self.duration
        s = self.speakers
        return {
            "dataset": self.dataset,
            "params": self.params,
            "strict_relaxed": self.strict_relaxed,
            "utterances": self.utterances,
            "speakers": {
                "count": s.count,
                "min": s.min,
                "median": s.median,
                "mean": s.mean,
                "max": s.max,
                "per_speaker": dict(s.per_speaker),
            },
            "emotions": dict(self.emotions),
            "languages": dict(self.languages),
            "audio": {
                "readable": self.readable,
                "duration": None if d is None else {"total": d.total, "mean": d.mean, "min": d.min, "max": d.max},
                "sample_rates": {str(k): v for k, v in self.sample_rates.items()},
                "channels": {str(k): v for k, v in self.channels.items()},
                "decoded": self.decoded,
            },
            "problems": {
                "count": self.problem_count,
                "unreadable": list(self.unreadable),
                "too_short": list(self.too_short),
                "decode": list(self.decode_problems),
                "naming": list(self.naming_problems),
                "unknown_labels": dict(self.unknown_labels),
            },
            "excluded": self.excluded,
        }


# ------------------------------------------------------------------ building the dataset
def open_dataset(
    name: str,
    root: str | None = None,
    overrides: Iterable[str] = (),
    registry: Registry | None = None,
) -> tuple[Dataset, bool]:
    """Instantiate the registered dataset ``name`` from command-line values.

    Args:
        name: registered dataset name (``type:`` in recipes).
        root: value of the ``root`` parameter (``--root``); ``None`` leaves it unset.
        overrides: ``key=value`` strings (``--set``), values parsed as YAML; dotted keys
            reach nested values (``label_map.wut=angry``).
        registry: where to look ``name`` up; default: the process-wide registry.

    Returns:
        The dataset, and whether ``strict`` was relaxed: when the dataset's parameters have
        a ``strict`` field that no override sets, it is set to false so that misnamed
        files end up in the dataset's ``problems`` instead of raising.

    Raises:
        RecipeError: ``name`` is not a registered dataset (the message lists them), a
            ``--set`` is malformed, ``--root`` is given to a dataset without a ``root``
            parameter, or the parameters are invalid (each field and why).
    """
    from serkit.config.loader import LineMap, apply_overrides

    if registry is None:
        from serkit.plugins import get_registry

        registry = get_registry()
    cls = registry.get("dataset", name)
    fields = cls.Params.model_fields
    values: dict[str, Any] = {}
    if root is not None:
        if "root" not in fields:
            raise RecipeError(
                f"dataset {name!r} has no 'root' parameter; its parameters: {', '.join(fields)} "
                f"(set them with --set KEY=VALUE)"
            )
        values["root"] = root
    overrides = list(overrides)
    for item in overrides:
        if "=" not in item or not item.split("=", 1)[0].strip():
            raise RecipeError(f"--set {item!r}: expected KEY=VALUE, e.g. --set strict=true or --set path=corpus.csv")
    values = apply_overrides(values, overrides, LineMap())
    relaxed = False
    if "strict" in fields and "strict" not in values:
        values["strict"] = False
        relaxed = True
    return cls(_validate_params(cls, name, values)), relaxed


def _validate_params(cls: type[Dataset], name: str, values: dict[str, Any]) -> Any:
    from pydantic import ValidationError

    try:
        return cls.Params.model_validate(values)
    except ValidationError as err:
        lines = []
        for e in err.errors(include_url=False):
            where = ".".join(str(p) for p in e.get("loc", ())) or "<params>"
            etype = e.get("type", "")
            if etype == "missing":
                hint = "--root PATH" if where == "root" else f"--set {where}=VALUE"
                text = f"required parameter is missing (give it with {hint})"
            elif etype == "extra_forbidden":
                text = f"unknown parameter; {name} parameters: {', '.join(cls.Params.model_fields)}"
            else:
                text = str(e.get("msg", "invalid")).removeprefix("Value error, ")
                text += f" (got {e.get('input')!r})"
            lines.append(f"  {where}: {text}")
        raise RecipeError(f"dataset {name!r}: {len(lines)} invalid parameter(s):\n" + "\n".join(lines)) from None


# ------------------------------------------------------------------ the summary
def corpus_info(
    dataset: Dataset,
    *,
    decode: bool = False,
    strict_relaxed: bool = False,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
) -> CorpusInfo:
    """List ``dataset`` and summarise it.

    Audio headers are read with :func:`~serkit.data.audio.audio_info` (no decoding) in a
    thread pool; with ``decode`` every readable file is also loaded with
    :func:`~serkit.data.audio.load_audio` at its native rate, which reports empty, silent,
    NaN/inf and too-short files.

    Args:
        dataset: the dataset to list.
        decode: also decode every readable file.
        strict_relaxed: recorded in the result (see :func:`open_dataset`).
        workers: threads for reading files; default ``min(8, 2 * cpu count)``.
        progress: see :data:`ProgressCallback`.

    Raises:
        SerkitError: the dataset cannot be listed (missing root, strict naming error, ...).
    """
    from serkit.data.audio import MIN_DURATION, audio_info, load_audio

    utts = dataset.utterances()
    paths = [u.path for u in utts]
    workers = workers or min(8, 2 * (os.cpu_count() or 1))

    headers = _run_pool(audio_info, paths, workers, "headers", progress)
    infos = [h for h in headers if not isinstance(h, AudioError)]
    unreadable = [str(h) for h in headers if isinstance(h, AudioError)]
    too_short = [
        f"{i.path}: audio is {i.duration:.3f} s long; the minimum is {MIN_DURATION:g} s (a run refuses it)"
        for i in infos
        if i.duration < MIN_DURATION
    ]
    infos = [i for i in infos if i.duration >= MIN_DURATION]

    decode_problems: list[str] = []
    if decode:
        results = _run_pool(load_audio, [i.path for i in infos], workers, "decode", progress)
        decode_problems = [str(r) for r in results if isinstance(r, AudioError)]

    durations = [i.duration for i in infos]
    duration = (
        DurationStats(
            total=float(sum(durations)),
            mean=float(sum(durations) / len(durations)),
            min=float(min(durations)),
            max=float(max(durations)),
        )
        if durations
        else None
    )
    emotions = Counter(u.label for u in utts)
    return CorpusInfo(
        dataset=dataset.name,
        params=dataset.params.model_dump(mode="json"),
        strict_relaxed=strict_relaxed,
        utterances=len(utts),
        speakers=_speaker_stats(Counter(u.speaker for u in utts)),
        emotions=dict(sorted(emotions.items())),
        languages=dict(sorted(Counter(u.language for u in utts).items())),
        readable=len(infos),
        duration=duration,
        sample_rates=dict(sorted(Counter(i.sample_rate for i in infos).items())),
        channels=dict(sorted(Counter(i.channels for i in infos).items())),
        unreadable=unreadable,
        too_short=too_short,
        decoded=decode,
        decode_problems=decode_problems,
        naming_problems=list(getattr(dataset, "problems", None) or []),
        unknown_labels={k: v for k, v in sorted(emotions.items()) if k not in CANONICAL_LABELS},
        excluded=len(getattr(dataset, "excluded", None) or []),
    )


def _speaker_stats(counts: Counter[str]) -> SpeakerStats:
    per = dict(sorted(counts.items()))
    values = list(per.values())
    if not values:
        return SpeakerStats(0, {}, 0, 0.0, 0.0, 0)
    return SpeakerStats(
        count=len(values),
        per_speaker=per,
        min=min(values),
        median=float(statistics.median(values)),
        mean=float(statistics.fmean(values)),
        max=max(values),
    )


def _run_pool(
    fn: Callable[[str], _R],
    paths: Sequence[str],
    workers: int,
    stage: str,
    progress: ProgressCallback | None,
) -> list[_R | AudioError]:
    """``fn`` on every path in a thread pool, in order; an AudioError becomes the result."""
    total = len(paths)
    out: list[_R | AudioError | None] = [None] * total
    if progress is not None:
        progress(stage, 0, total)
    if total == 0:
        return []

    def call(p: str) -> _R | AudioError:
        try:
            return fn(p)
        except AudioError as err:
            return err

    with ThreadPoolExecutor(max_workers=max(1, min(workers, total))) as pool:
        futures = {pool.submit(call, p): i for i, p in enumerate(paths)}
        for done, fut in enumerate(as_completed(futures), 1):
            out[futures[fut]] = fut.result()
            if progress is not None:
                progress(stage, done, total)
    return out  # type: ignore[return-value]


def relative_to_root(message: str, root: str | Path | None) -> str:
    """``message`` with the absolute ``root`` prefix of its path removed, for display."""
    if not root:
        return message
    prefix = str(Path(root).expanduser().resolve()) + os.sep
    return message.replace(prefix, "")
