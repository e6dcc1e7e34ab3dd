"""Recipe -> data: the domains' utterances, their features, labels and heads, and the splits of every run.

:func:`prepare` is the first half of ``serkit run`` (:mod:`serkit.engine.run`): it extracts
(or finds in the cache) every stream of every domain, drops what a stream could not give
features for, settles each domain's labels and head, computes the speaker-normalisation
statistics and plans the runs ``(repeat, fold)`` with each domain's split. It writes
nothing into the run folder; the run does (bad files, splits, speaker statistics).
``serkit extract`` reuses :func:`load_domains`, :func:`store_root` and
:func:`extraction_options`; ``serkit data audit`` reuses :func:`load_domains` and
:func:`plan_splits`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serkit.data.splits import (
    Split,
    few_shot,
    holdout_split,
    labels_by_speaker,
    predefined_splits,
    random_split,
    speaker_folds,
    speaker_split,
)
from serkit.data.utterance import Utterance
from serkit.engine.data import StreamInfo
from serkit.errors import DatasetError, SerkitError
from serkit.paths import cache_dir
from serkit.plugins import get_plugin_manager

__all__ = [
    "DomainData",
    "Features",
    "Prepared",
    "extract_distributed",
    "extract_streams",
    "extraction_options",
    "label_coverage",
    "load_domains",
    "plan_splits",
    "prepare",
    "select_domains",
    "speaker_norms",
    "store_root",
]

#: Protocols whose test-only domains have no training or validation data.
CROSS_PROTOCOLS = ("cross_corpus", "cross_lingual")


@dataclass
class DomainData:
    """A domain's utterances (after dropping bad audio) and label list."""

    utterances: list[Utterance]
    labels: list[str]
    keys: dict[str, list[str]]  # stream id -> store key per utterance

    @property
    def targets(self) -> list[int]:
        index = {lab: i for i, lab in enumerate(self.labels)}
        return [index[u.label] for u in self.utterances]


@dataclass
class Features:
    """What :func:`extract_streams` extracted.

    Attributes:
        streams: one :class:`StreamInfo` per recipe stream, in recipe order.
        extractors: stream id -> extractor.
        stores: stream id -> open feature store.
        keys: domain -> stream id -> utterance id -> store key.
        bad: path -> ``{"domain", "id", "error"}`` of audio no stream could use.
        extraction: stream (or augmented copy) -> counts (:func:`serkit.features.driver.empty_counts`).
        copies: the augmented training copies (:class:`serkit.engine.copies.Copies`).
    """

    streams: list[StreamInfo] = field(default_factory=list)
    extractors: dict[str, Any] = field(default_factory=dict)
    stores: dict[str, Any] = field(default_factory=dict)
    keys: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    bad: dict[str, dict[str, str]] = field(default_factory=dict)
    extraction: dict[str, dict[str, Any]] = field(default_factory=dict)
    copies: Any = None


@dataclass
class Prepared:
    """Everything a run trains on: :func:`prepare`'s result.

    Attributes:
        features: the streams, extractors, stores and extraction counts.
        domains: domain -> its usable utterances, head labels and store keys.
        own_labels: domain -> the labels of its own utterances (its head may have more).
        head_of: domain -> head id.
        norms: domain -> stream -> speaker -> ``(mean, std)`` (``data.speaker_norm``), else empty.
        plan: the runs ``(repeat, fold)`` in order.
        splits: domain -> run id (``r<repeat>-f<fold>``) -> :class:`Split`.
    """

    features: Features
    domains: dict[str, DomainData]
    own_labels: dict[str, list[str]]
    head_of: dict[str, str]
    norms: dict[str, dict[str, dict[str, Any]]]
    plan: list[tuple[int, int]]
    splits: dict[str, dict[str, Split]]

    @property
    def labels(self) -> dict[str, list[str]]:
        """Domain -> its head's labels."""
        return {d: dd.labels for d, dd in self.domains.items()}

    def close(self) -> None:
        """Close the feature stores (the streams' and the augmented copies')."""
        for s in self.features.stores.values():
            s.close()
        self.features.copies.close()


def load_domains(recipe: Any) -> dict[str, list[Utterance]]:
    """Instantiate every domain's dataset; report all missing/broken datasets at once.

    Besides the datasets' own errors, a domain with no utterances, duplicate utterance ids
    (a plugin dataset that does not check) or fewer than 2 labels is refused here, before
    any feature is extracted.
    """
    from serkit.data.utterance import check_unique_ids

    registry = get_plugin_manager().registry
    out: dict[str, list[Utterance]] = {}
    problems: list[str] = []
    for domain, spec in recipe.domains.items():
        ds = registry.create("dataset", spec.dataset)
        try:
            utts = list(ds.utterances())
        except DatasetError as err:
            text = str(err)
            hint = f"\n    how to get it: {ds.how_to_get}" if ds.how_to_get and ds.how_to_get not in text else ""
            hint += f"\n    see {ds.homepage}" if ds.homepage and ds.homepage not in text else ""
            problems.append(f"  domains.{domain} ({ds.name}): {text}{hint}")
            continue
        labels = sorted({u.label for u in utts})
        try:
            check_unique_ids(utts, "the dataset")
        except DatasetError as err:
            problems.append(f"  domains.{domain} ({ds.name}): {err}")
        else:
            if not utts:
                problems.append(f"  domains.{domain} ({ds.name}): the dataset lists no utterances")
            elif len(labels) < 2:
                problems.append(
                    f"  domains.{domain} ({ds.name}): needs at least 2 emotion labels to train a classifier; "
                    f"all {len(utts)} utterances are {labels[0]!r}"
                )
            else:
                out[domain] = utts
    if problems:
        raise DatasetError("cannot load the recipe's datasets:\n" + "\n".join(problems))
    return out


# -- features ------------------------------------------------------------------------


def store_root(recipe: Any) -> Path:
    """The folder of the recipe's feature stores (``store.root``, default ``$SERKIT_CACHE/features``)."""
    return Path(recipe.store.root).expanduser() if recipe.store.root else cache_dir() / "features"


def extraction_options(recipe: Any) -> dict[str, Any]:
    """The recipe's arguments of :func:`serkit.features.driver.extract_features` (batch size, workers, executor)."""
    return {
        "batch_size": recipe.data.extract_batch_size,
        "num_workers": recipe.data.extract_workers,
        "executor": recipe.data.extract_executor,
    }


def extract_distributed(dist: Any, extract: Any, utterances: list[Utterance], *args: Any, **kwargs: Any) -> Any:
    """``extract(utterances, *args, **kwargs)`` for every rank of ``dist``; each rank gets every key.

    With a driver that shards (``extract_features(..., shard=(rank, world))``), every rank
    computes its part (the audio contents whose hash falls in its shard) into its own
    shard file of the store, and the ranks then exchange their results: keys, failures
    and counts of the whole run. Otherwise rank 0 extracts while the others wait, and
    hands its result to them.
    """
    import inspect

    if not dist.enabled:
        return extract(utterances, *args, **kwargs)
    if "shard" not in inspect.signature(extract).parameters:
        res = extract(utterances, *args, **kwargs) if dist.is_main else None
        return dist.broadcast_object(res)  # the other ranks wait here for rank 0's extraction
    parts = dist.all_gather_object(extract(utterances, *args, **kwargs, shard=dist.shard))
    every: dict[str, str] = {}
    for part in parts:
        every.update(part.keys)
    res = parts[0]
    res.keys = {u.id: every[u.id] for u in utterances if u.id in every}  # input order, as unsharded
    res.failed = [f for part in parts for f in part.failed]
    res.computed = sum(part.computed for part in parts)
    res.cached = sum(part.cached for part in parts)
    res.seconds = max(part.seconds for part in parts)
    res.audio_seconds = sum(part.audio_seconds for part in parts)
    return res


def extract_streams(
    recipe: Any, registry: Any, raw: dict[str, list[Utterance]], dist: Any, *, progress: bool, console: Any
) -> Features:
    """Every stream of every domain (and of the augmented training copies), from the cache or computed."""
    from serkit.engine.copies import extract_copies

    # looked up at call time, so that tests can replace the driver's function
    from serkit.features.driver import empty_counts, extract_features
    from serkit.features.store import FeatureStore

    root = store_root(recipe)
    options = extraction_options(recipe)
    out = Features(keys={d: {} for d in raw})
    for sid, spec in recipe.features.items():
        extractor = registry.create("extractor", spec.extractor)
        out.extractors[sid] = extractor
        store = FeatureStore(root, extractor, dtype=recipe.store.dtype)
        out.stores[sid] = store
        out.streams.append(StreamInfo(sid, extractor.output, extractor.dim))
        stats = empty_counts()
        for d, utts in raw.items():
            res = extract_distributed(
                dist,
                extract_features,
                utts,
                extractor,
                store,
                **options,
                on_bad_audio=recipe.data.on_bad_audio,
                verify=True,  # items whose checksum fails are recomputed now, not met in training
                progress=progress,
                description=f"{sid} [{d}]",
            )
            out.keys[d][sid] = res.keys
            for uid, path, msg in res.failed:
                out.bad.setdefault(path, {"domain": d, "id": uid, "error": msg})
            res.add_counts(stats)
        out.extraction[sid] = stats
        console.print(
            f"  features {sid}: {stats['computed']} computed, {stats['cached']} cached, "
            f"{stats['failed']} failed ({stats['seconds']:.1f} s)"
        )
    out.copies = extract_copies(
        list(recipe.data.augment),
        raw,
        out.extractors,
        lambda ext: FeatureStore(root, ext, dtype=recipe.store.dtype),
        lambda utts, ext, store, description: extract_distributed(
            dist, extract_features, utts, ext, store, **options, on_bad_audio="skip", progress=progress,
            description=description,
        ),
        console,
    )
    out.extraction.update(out.copies.extraction)
    return out


# -- labels and heads ------------------------------------------------------------------


def select_domains(
    recipe: Any, raw: dict[str, list[Utterance]], features: Features, console: Any
) -> tuple[dict[str, DomainData], dict[str, list[str]], dict[str, str]]:
    """Each domain's usable utterances (every stream has features), labels and head.

    Returns:
        ``(domains, own_labels, head_of)``.

    Raises:
        DatasetError: a domain keeps fewer than 2 labels, or (cross-corpus, ``labels:
            intersection``) the domains share fewer than 2.
    """
    from serkit.engine.model import head_plan

    keys, streams, copies = features.keys, features.streams, features.copies
    own_labels: dict[str, list[str]] = {}
    good_utts: dict[str, list[Utterance]] = {}
    for d, utts in raw.items():
        good_utts[d] = [u for u in utts if all(u.id in keys[d][s.name] for s in streams) and copies.complete(d, u.id)]
        own_labels[d] = sorted({u.label for u in good_utts[d]})
        if len(own_labels[d]) < 2:
            raise DatasetError(
                f"domains.{d}: needs at least 2 emotion labels to train a classifier; found {own_labels[d]}"
            )
    proto = recipe.protocol
    if proto.type in CROSS_PROTOCOLS and proto.labels == "intersection":
        shared_labels = set.intersection(*(set(v) for v in own_labels.values()))
        if len(shared_labels) < 2:
            raise DatasetError(
                f"protocol {proto.type}: the domains share {len(shared_labels)} label(s) "
                f"({sorted(shared_labels)}); need at least 2"
            )
        for d in good_utts:
            dropped = sum(u.label not in shared_labels for u in good_utts[d])
            good_utts[d] = [u for u in good_utts[d] if u.label in shared_labels]
            own_labels[d] = sorted(shared_labels)
            if dropped:
                console.print(f"  domain {d}: {dropped} utterances of labels outside {sorted(shared_labels)} left out")
    head_of, head_labels = head_plan(recipe, own_labels)
    domains: dict[str, DomainData] = {}
    for d, good in good_utts.items():
        domains[d] = DomainData(
            good, head_labels[head_of[d]], {s.name: [keys[d][s.name][u.id] for u in good] for s in streams}
        )
    shared = {h: [d for d in head_of if head_of[d] == h] for h in head_labels}
    for h, ds in shared.items():
        if len(ds) > 1:
            console.print(f"  head {h!r} is shared by {', '.join(ds)} ({len(head_labels[h])} labels)")
    return domains, own_labels, head_of


def label_coverage(pairs: list[tuple[str, str]]) -> float:
    """Mean over speakers of the fraction of the domain's labels each speaker has: ``(speaker, label)`` pairs -> [0, 1].

    1.0 for an acted corpus where every speaker performs every emotion; low for corpora of
    spontaneous speech whose speakers show one or two emotions (per-speaker
    standardisation then removes emotion along with the speaker).
    """
    return _coverage(labels_by_speaker(pairs))


def _coverage(by_speaker: Mapping[str, set[str]]) -> float:
    """:func:`label_coverage` of speaker -> labels (the labels are those any speaker has)."""
    if not by_speaker:
        return 0.0
    labels = set().union(*by_speaker.values())
    return sum(len(v) for v in by_speaker.values()) / (len(labels) * len(by_speaker))


def speaker_norms(
    recipe: Any, domains: dict[str, DomainData], stores: dict[str, Any], own_labels: dict[str, list[str]], console: Any
) -> dict[str, dict[str, dict[str, Any]]]:
    """Per-domain, per-stream, per-speaker statistics for speaker normalisation."""
    from serkit.engine.speaker_norm import speaker_stats

    out: dict[str, dict[str, dict[str, Any]]] = {}
    for d, dd in domains.items():
        speakers = [u.speaker for u in dd.utterances]
        by_spk = labels_by_speaker((u.speaker, u.label) for u in dd.utterances)
        n_labels = len(own_labels[d])
        if getattr(recipe.data, "speaker_norm", True) == "auto":  # a corpus-design check (like the warning)
            if _coverage(by_spk) < recipe.data.speaker_norm_auto_coverage:
                continue
        elif low := sorted(
            s for s, labs in by_spk.items() if len(labs) / n_labels < recipe.data.speaker_norm_min_coverage
        ):
            msg = (
                f"speaker_norm on domain {d!r}: {len(low)} of {len(by_spk)} speakers cover less than "
                f"{recipe.data.speaker_norm_min_coverage:.0%} of its {n_labels} labels ({', '.join(low[:8])}"
                f"{', ...' if len(low) > 8 else ''}); per-speaker standardisation then removes emotion "
                "information along with speaker identity"
            )
            warnings.warn(msg, UserWarning, stacklevel=2)
            console.print(f"  [yellow]warning:[/] {msg}")
        out[d] = {sid: speaker_stats(dd.keys[sid], speakers, store) for sid, store in stores.items()}
    return out


# -- splits ----------------------------------------------------------------------------


def _fold_lists(recipe: Any, domains: dict[str, DomainData], labels_of: dict[str, list[str]]) -> dict[str, list[Any]]:
    """Domain -> its folds, for the protocols that make folds (speaker, predefined); else empty."""
    proto = recipe.protocol
    per_fold: dict[str, list[Any]] = {}
    for d, dd in domains.items():
        try:
            if proto.type == "speaker":
                per_fold[d] = speaker_folds([u.speaker for u in dd.utterances], proto.k, seed=recipe.seed)
            elif proto.type == "predefined":
                per_fold[d] = predefined_splits(
                    labels_of[d], [u.meta for u in dd.utterances], column=proto.column, val=proto.val, seed=recipe.seed
                )
        except DatasetError as err:
            raise DatasetError(f"domains.{d}: {err}") from None
    return per_fold


def _run_plan(recipe: Any, per_fold: dict[str, list[Any]]) -> list[tuple[int, int]]:
    """The runs ``(repeat, fold)`` in order (``protocol.folds`` picks folds of the speaker protocol)."""
    proto = recipe.protocol
    n_folds = max((len(v) for v in per_fold.values()), default=1)
    folds = list(range(n_folds))
    if proto.type == "speaker" and proto.folds is not None:
        bad = [f for f in proto.folds if not 0 <= f < n_folds]
        if bad:
            raise SerkitError(f"protocol.folds: {bad} out of range; there are {n_folds} folds (0..{n_folds - 1})")
        folds = list(proto.folds)
    return [(r, f) for r in range(recipe.repeats) for f in folds]


def _split_of(
    recipe: Any, d: str, dd: DomainData, labels: list[str], folds: list[Any], run: tuple[int, int], test_only: bool
) -> Split:
    """Domain ``d``'s split in run ``(repeat, fold)`` (few-shot subsets included)."""
    proto = recipe.protocol
    r, f = run
    seed = recipe.seed + 1000 * r + f
    if proto.type == "random":
        s = random_split(labels, test=proto.test, val=proto.val, seed=recipe.seed + r)
    elif proto.type == "speaker":
        if proto.reshuffle and r > 0:  # repeated k-fold: each repeat has its own partition
            folds = speaker_folds([u.speaker for u in dd.utterances], proto.k, seed=recipe.seed + r)
        test_spk = folds[f % len(folds)]
        s = speaker_split(
            labels, [u.speaker for u in dd.utterances], test_spk, val_speakers=proto.val_speakers, seed=seed
        )
    elif proto.type == "predefined":
        s = folds[f % len(folds)][1]
        if r > 0:  # repeats re-draw the validation part only
            metas = [u.meta for u in dd.utterances]
            again = predefined_splits(labels, metas, column=proto.column, val=proto.val, seed=seed)
            s = again[f % len(again)][1]
    elif test_only:
        s = Split((), (), tuple(range(len(dd.utterances))))
    else:
        s = holdout_split(labels, val=proto.val, seed=seed)
    shots = recipe.domains[d].shots
    if shots is not None and not test_only:
        s = Split(
            few_shot(s.train, labels, shots, seed=seed),
            few_shot(s.val, labels, shots, seed=seed + 7919),
            s.test,
        )
    return s


def _check_split(d: str, dd: DomainData, s: Split, own: list[str], run: tuple[int, int], test_only: bool) -> None:
    """Refuse a training domain's split without training data of a label or without validation data.

    A validation set without some label is a warning (model selection cannot see it).
    """
    r, f = run
    if not test_only:
        train_labels = {dd.utterances[i].label for i in s.train}
        missing = [lab for lab in own if lab not in train_labels]
        if missing:
            raise DatasetError(
                f"domains.{d}: repeat {r} fold {f} has no training utterances of {missing}; "
                "use fewer folds or drop the label"
            )
        if not s.val:
            raise DatasetError(f"domains.{d}: repeat {r} fold {f} has an empty val set")
        val_labels = {dd.utterances[i].label for i in s.val}
        blind = [lab for lab in own if lab not in val_labels]
        if blind:
            warnings.warn(
                f"domains.{d}: repeat {r} fold {f}: the validation set has no utterances of {blind}, "
                "so model selection cannot see them (validation speakers are drawn to show every label "
                "that two or more training speakers show; a label only one training speaker shows stays "
                "in training; try other protocol.val_speakers or fewer folds)",
                UserWarning,
                stacklevel=3,  # plan_splits' caller, as before the split into helpers
            )


def plan_splits(
    recipe: Any, domains: dict[str, DomainData], own_labels: dict[str, list[str]]
) -> tuple[list[tuple[int, int]], dict[str, dict[str, Split]]]:
    """The runs ``(repeat, fold)`` of the recipe's protocol and each domain's split per run.

    Returns:
        ``(plan, splits)``: the runs in order, and domain -> run id (``r<repeat>-f<fold>``)
        -> :class:`Split`. Under a cross-corpus protocol, test-only domains have empty
        train/val sets and training domains an empty test set.

    Raises:
        DatasetError: a split leaves a label without training data or a set empty.
    """
    proto = recipe.protocol
    labels_of = {d: [u.label for u in dd.utterances] for d, dd in domains.items()}
    per_fold = _fold_lists(recipe, domains, labels_of)
    plan = _run_plan(recipe, per_fold)
    test_only = set(proto.test) if proto.type in CROSS_PROTOCOLS else set()
    splits: dict[str, dict[str, Split]] = {d: {} for d in domains}
    for d, dd in domains.items():
        for run in plan:
            s = _split_of(recipe, d, dd, labels_of[d], per_fold.get(d, []), run, d in test_only)
            _check_split(d, dd, s, own_labels[d], run, d in test_only)
            if not s.test and not test_only:
                raise DatasetError(f"domains.{d}: repeat {run[0]} fold {run[1]} has an empty test set")
            splits[d][f"r{run[0]}-f{run[1]}"] = s
    return plan, splits


# -- everything ------------------------------------------------------------------------


def prepare(
    recipe: Any,
    raw: dict[str, list[Utterance]],
    registry: Any,
    dist: Any,
    *,
    progress: bool,
    console: Any,
    main: bool = True,
    on_extracted: Callable[[Features], None] | None = None,
) -> Prepared:
    """Recipe and its loaded datasets (:func:`load_domains`) -> the data of every run.

    Args:
        dist: the run's :class:`~serkit.engine.distributed.DistContext` (extraction is
            sharded over its ranks).
        main: whether this process is rank 0 (it alone prints the speaker_norm choice).
        on_extracted: called with the extracted :class:`Features` before anything else
            (the run records the extraction counts and the bad files there, so that they
            are written even when a later check stops the run).
    """
    features = extract_streams(recipe, registry, raw, dist, progress=progress, console=console)
    if on_extracted is not None:
        on_extracted(features)
    domains, own_labels, head_of = select_domains(recipe, raw, features, console)
    norms = speaker_norms(recipe, domains, features.stores, own_labels, console) if recipe.data.speaker_norm else {}
    if recipe.data.speaker_norm == "auto" and main:
        on = ", ".join(norms) or "none"
        console.print(f"  speaker_norm auto: on for {on} (speakers covering most labels), off for the others")
    plan, splits = plan_splits(recipe, domains, own_labels)
    return Prepared(features, domains, own_labels, head_of, norms, plan, splits)
