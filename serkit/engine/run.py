"""``serkit run``: datasets -> features -> splits -> repeats x folds of training -> run folder."""

from __future__ import annotations

import csv
import io
import json
import platform
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from serkit.data.splits import (
    Split,
    few_shot,
    holdout_split,
    predefined_splits,
    random_split,
    speaker_folds,
    speaker_split,
)
from serkit.data.utterance import Utterance
from serkit.engine.precheck import check_protocol
from serkit.errors import DatasetError, SerkitError
from serkit.io import atomic_write_json, atomic_write_text
from serkit.paths import cache_dir
from serkit.plugins import get_plugin_manager
from serkit.version import __version__

__all__ = ["default_run_dir", "label_coverage", "run_recipe"]


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


def default_run_dir(name: str, base: Path = Path("runs")) -> Path:
    """``runs/<name>-<YYYYmmdd-HHMMSS>`` (suffixed if it exists)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = base / f"{name}-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = base / f"{name}-{stamp}-{n}"
    return path


def _console():  # type: ignore[no-untyped-def]
    from rich.console import Console

    return Console(stderr=True)


def _quiet_console():  # type: ignore[no-untyped-def]
    """The console of ranks other than 0 in a distributed run: prints nothing."""
    from rich.console import Console

    return Console(stderr=True, quiet=True)


def _dist_info(dist: Any) -> dict[str, Any]:
    return {"world_size": dist.world_size, "backend": dist.backend} if dist.enabled else {}


def _dist_note(dist: Any) -> str:
    return f", {dist.world_size} processes ({dist.backend})" if dist.enabled else ""


def _extract_distributed(dist: Any, extract: Any, utterances: list[Utterance], *args: Any, **kwargs: Any) -> Any:
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


def _environment(device: str) -> dict[str, Any]:
    import torch

    manager = get_plugin_manager()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "device": device,
        "argv": sys.argv,
        "plugins": [
            {
                "name": p.name,
                "distribution": p.distribution,
                "version": p.version,
                "module": p.module,
            }
            for p in manager.plugins
        ],
        "plugin_errors": [str(e) for e in manager.errors],
    }


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
    per_fold: dict[str, list[Any]] = {}
    if proto.type == "speaker":
        for d, dd in domains.items():
            try:
                per_fold[d] = speaker_folds([u.speaker for u in dd.utterances], proto.k, seed=recipe.seed)
            except DatasetError as err:
                raise DatasetError(f"domains.{d}: {err}") from None
    elif proto.type == "predefined":
        for d, dd in domains.items():
            try:
                per_fold[d] = predefined_splits(
                    labels_of[d],
                    [u.meta for u in dd.utterances],
                    column=proto.column,
                    val=proto.val,
                    seed=recipe.seed,
                )
            except DatasetError as err:
                raise DatasetError(f"domains.{d}: {err}") from None
    n_folds = max((len(v) for v in per_fold.values()), default=1)
    folds = list(range(n_folds))
    if proto.type == "speaker" and proto.folds is not None:
        bad = [f for f in proto.folds if not 0 <= f < n_folds]
        if bad:
            raise SerkitError(f"protocol.folds: {bad} out of range; there are {n_folds} folds (0..{n_folds - 1})")
        folds = list(proto.folds)
    plan = [(r, f) for r in range(recipe.repeats) for f in folds]
    test_only = set(proto.test) if proto.type in ("cross_corpus", "cross_lingual") else set()
    splits: dict[str, dict[str, Split]] = {d: {} for d in domains}
    for d, dd in domains.items():
        for r, f in plan:
            seed = recipe.seed + 1000 * r + f
            if proto.type == "random":
                s = random_split(labels_of[d], test=proto.test, val=proto.val, seed=recipe.seed + r)
            elif proto.type == "speaker":
                test_spk = per_fold[d][f % len(per_fold[d])]
                s = speaker_split(
                    labels_of[d],
                    [u.speaker for u in dd.utterances],
                    test_spk,
                    val_speakers=proto.val_speakers,
                    seed=seed,
                )
            elif proto.type == "predefined":
                s = per_fold[d][f % len(per_fold[d])][1]
                if r > 0:  # repeats re-draw the validation part only
                    again = predefined_splits(
                        labels_of[d],
                        [u.meta for u in dd.utterances],
                        column=proto.column,
                        val=proto.val,
                        seed=seed,
                    )
                    s = again[f % len(again)][1]
            elif d in test_only:
                s = Split((), (), tuple(range(len(dd.utterances))))
            else:
                s = holdout_split(labels_of[d], val=proto.val, seed=seed)
            shots = recipe.domains[d].shots
            if shots is not None and d not in test_only:
                s = Split(
                    few_shot(s.train, labels_of[d], shots, seed=seed),
                    few_shot(s.val, labels_of[d], shots, seed=seed + 7919),
                    s.test,
                )
            if d not in test_only:
                train_labels = {dd.utterances[i].label for i in s.train}
                missing = [lab for lab in own_labels[d] if lab not in train_labels]
                if missing:
                    raise DatasetError(
                        f"domains.{d}: repeat {r} fold {f} has no training utterances of {missing}; "
                        "use fewer folds or drop the label"
                    )
                if not s.val:
                    raise DatasetError(f"domains.{d}: repeat {r} fold {f} has an empty val set")
                val_labels = {dd.utterances[i].label for i in s.val}
                blind = [lab for lab in own_labels[d] if lab not in val_labels]
                if blind:
                    warnings.warn(
                        f"domains.{d}: repeat {r} fold {f}: the validation set has no utterances of {blind}, "
                        "so model selection cannot see them (speakers who show few emotions; try other "
                        "protocol.val_speakers or fewer folds)",
                        UserWarning,
                        stacklevel=2,
                    )
            if not s.test and not test_only:
                raise DatasetError(f"domains.{d}: repeat {r} fold {f} has an empty test set")
            splits[d][f"r{r}-f{f}"] = s
    return plan, splits


def _write_splits(run_dir: Path, domain_id: str, domain: DomainData, splits: dict[str, Split]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["id", "speaker", "label", *splits])
    roles = {name: s.role_of() for name, s in splits.items()}
    for i, u in enumerate(domain.utterances):
        w.writerow([u.id, u.speaker, u.label, *(roles[n].get(i, "") for n in splits)])
    atomic_write_text(run_dir / "splits" / f"{domain_id}.csv", buf.getvalue())


def run_recipe(
    recipe: Any,
    *,
    out: Path | None = None,
    source: str = "<recipe>",
    progress: bool = True,
    resume: bool = False,
    dist: Any = None,
    overwrite: bool = False,
) -> Path:
    """Run a validated recipe end to end; returns the run folder (see :func:`_run_recipe`).

    While it runs, the process is registered among the serkit runs of this host, which
    share its CPUs (:mod:`serkit.engine.threads`). A non-empty ``out`` is refused unless
    ``resume`` (same recipe) or ``overwrite`` (see :mod:`serkit.engine.run_folder`).
    """
    from serkit.engine.run_folder import RunFolder
    from serkit.engine.threads import ActiveRuns

    with ActiveRuns(cache_dir() / "active-runs") as active, RunFolder() as folder:
        return _run_recipe(
            recipe, out=out, source=source, progress=progress, resume=resume, dist=dist, active=active,
            overwrite=overwrite, folder=folder,
        )


def _run_recipe(
    recipe: Any,
    *,
    out: Path | None,
    source: str,
    progress: bool,
    resume: bool,
    dist: Any,
    active: Any,
    overwrite: bool = False,
    folder: Any = None,
) -> Path:
    """Run a validated recipe end to end; returns the run folder.

    With ``resume``, runs (repeat x fold) that finished in ``out`` before (their
    ``runs/<id>.json`` exists) are kept as they are, the run in progress continues from
    its last finished epoch (``checkpoints/<id>.last.json``), and cached features are
    reused anyway.

    ``dist`` (a :class:`serkit.engine.distributed.DistContext`) makes this process one
    rank of a distributed run; by default it is read from torchrun's environment (a
    single process outside torchrun). Every rank trains; rank 0 alone writes the folder.
    """
    import torch

    from serkit.engine.checkpoint import delete_train_state, save_checkpoint
    from serkit.engine.copies import extract_copies
    from serkit.engine.data import FeatureDataset, FeatureMemory, StreamInfo, make_loader
    from serkit.engine.device import resolve_device, seed_everything
    from serkit.engine.distributed import init_distributed, run_device
    from serkit.engine.init_from import init_source_for, init_summary, start_from, zero_shot_baseline
    from serkit.engine.model import build_model, head_plan
    from serkit.engine.reference import below_reference, summarise_reference
    from serkit.engine.standardize import fit_standardize
    from serkit.engine.threads import choose_threads
    from serkit.engine.train import train_run
    from serkit.features.driver import extract_features
    from serkit.features.store import FeatureStore
    from serkit.report.html import write_html
    from serkit.report.plots import write_plots
    from serkit.report.results import build_results, write_report

    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    # joined once per process and left joined (e.g. for the next variant of a sweep); the CLI leaves it
    dist = init_distributed(recipe.device) if dist is None else dist
    main = dist.is_main  # only rank 0 writes the run folder, prints and calls the run hooks
    progress = progress and main
    console = _console() if main else _quiet_console()
    manager = get_plugin_manager()
    registry = manager.registry
    hook = manager.hook
    device = run_device(dist, resolve_device(recipe.device))
    threads = choose_threads(recipe.threads, active)
    threads.apply()
    init = init_source_for(recipe, registry, source)
    if init is not None:
        recipe = init[1]
    with dist.main_first():  # rank 0 first: a generated corpus is written once
        raw = load_domains(recipe)  # a missing corpus stops the run before anything is written
    check_protocol(recipe, raw)  # folds that cannot be made stop it before feature extraction
    run_dir = dist.broadcast_object(Path(out) if out is not None else default_run_dir(recipe.name))
    resolved = recipe.model_dump(mode="json")
    if folder is not None:  # refuses a folder holding another run (or, resuming, another recipe)
        folder.claim(dist, run_dir, resolved, resume=resume, overwrite=overwrite)
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "recipe.yaml", yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True))
        atomic_write_json(
            run_dir / "environment.json", _environment(str(device)) | _dist_info(dist) | {"threads": threads.as_dict()}
        )
        console.print(f"[bold]serkit run[/] {recipe.name} -> {run_dir}  (device {device}{_dist_note(dist)})")
        hook.serkit_on_run_start(run_dir=str(run_dir), recipe=resolved)

    # 1. datasets (loaded above, before anything is written)
    for d, utts in raw.items():
        console.print(f"  domain {d}: {len(utts)} utterances, {len({u.speaker for u in utts})} speakers")

    # 2. features
    store_root = Path(recipe.store.root).expanduser() if recipe.store.root else cache_dir() / "features"
    streams: list[StreamInfo] = []
    extractors: dict[str, Any] = {}
    stores: dict[str, FeatureStore] = {}
    keys: dict[str, dict[str, dict[str, str]]] = {d: {} for d in raw}
    bad: dict[str, dict[str, str]] = {}
    extraction: dict[str, dict[str, Any]] = {}
    for sid, spec in recipe.features.items():
        extractor = registry.create("extractor", spec.extractor)
        extractors[sid] = extractor
        store = FeatureStore(store_root, extractor, dtype=recipe.store.dtype)
        stores[sid] = store
        streams.append(StreamInfo(sid, extractor.output, extractor.dim))
        stats = {"computed": 0, "cached": 0, "failed": 0, "seconds": 0.0, "audio_seconds": 0.0}
        for d, utts in raw.items():
            res = _extract_distributed(
                dist,
                extract_features,
                utts,
                extractor,
                store,
                batch_size=recipe.data.extract_batch_size,
                num_workers=recipe.data.extract_workers,
                executor=recipe.data.extract_executor,
                on_bad_audio=recipe.data.on_bad_audio,
                verify=True,  # items whose checksum fails are recomputed now, not met in training
                progress=progress,
                description=f"{sid} [{d}]",
            )
            keys[d][sid] = res.keys
            for uid, path, msg in res.failed:
                bad.setdefault(path, {"domain": d, "id": uid, "error": msg})
            stats["computed"] += res.computed
            stats["cached"] += res.cached
            stats["failed"] += len(res.failed)
            stats["seconds"] += res.seconds
            stats["audio_seconds"] += res.audio_seconds
        extraction[sid] = stats
        console.print(
            f"  features {sid}: {stats['computed']} computed, {stats['cached']} cached, "
            f"{stats['failed']} failed ({stats['seconds']:.1f} s)"
        )
    copies = extract_copies(
        list(recipe.data.augment),
        raw,
        extractors,
        lambda ext: FeatureStore(store_root, ext, dtype=recipe.store.dtype),
        lambda utts, ext, store, description: _extract_distributed(
            dist, extract_features, utts, ext, store, batch_size=recipe.data.extract_batch_size,
            num_workers=recipe.data.extract_workers, executor=recipe.data.extract_executor, on_bad_audio="skip",
            progress=progress, description=description,
        ),
        console,
    )
    extraction.update(copies.extraction)
    if folder is not None:
        folder.record_extraction(extraction)
    if bad and main:
        atomic_write_json(run_dir / "bad_files.json", [{"path": p, **v} for p, v in sorted(bad.items())])
        console.print(f"  [yellow]skipped {len(bad)} bad audio file(s); listed in {run_dir / 'bad_files.json'}[/]")

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
    if proto.type in ("cross_corpus", "cross_lingual") and proto.labels == "intersection":
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
    norms = _speaker_norms(recipe, domains, stores, own_labels, console) if recipe.data.speaker_norm else {}
    if recipe.data.speaker_norm == "auto" and main:
        on = ", ".join(norms) or "none"
        console.print(f"  speaker_norm auto: on for {on} (speakers covering most labels), off for the others")

    # 3. splits
    plan, splits = plan_splits(recipe, domains, own_labels)
    for d, dd in domains.items():
        if splits[d] and main:
            _write_splits(run_dir, d, dd, splits[d])
    if main:  # the split audit and the provenance of results.json
        from rich.markup import escape

        from serkit.engine.audit import run_checks

        audit, prov = run_checks(recipe, {d: dd.utterances for d, dd in domains.items()}, splits, head_of, resolved)
        for line in audit["findings"]:
            console.print(f"  [yellow]split audit:[/] {escape(line)}")
    if norms and main:  # load_model needs them to predict
        from serkit.engine.speaker_norm import save_speaker_norm

        save_speaker_norm(run_dir, norms, domains, stores, splits)

    # 4. training
    outcomes: list[dict[str, Any]] = []
    labels = {d: dd.labels for d, dd in domains.items()}
    model_labels, model_head_of = dict(labels), dict(head_of)
    if init is not None:  # the initial run's domains come first, in its order (fusion rows)
        src = init[0]
        model_labels = {d: labels.get(d, src.labels[d]) for d in src.domains} | labels
        model_head_of = {d: head_of.get(d, src.head_of[d]) for d in src.domains} | head_of
        new_domains = [d for d in domains if d not in src.labels]
        console.print(
            f"  init_from {src.run_dir} (checkpoint {src.checkpoint}): domains {', '.join(src.domains)} "
            f"kept; new: {', '.join(new_domains) or 'none'}; frozen: {', '.join(recipe.freeze) or 'nothing'}"
        )
    model_config = {
        "recipe": resolved,
        "streams": [s.__dict__ for s in streams],
        "labels": model_labels,
        "head_of": model_head_of,
        "serkit_version": __version__,
    }
    if init is not None:
        model_config["init_from"] = {"run": str(init[0].run_dir), "checkpoint": init[0].checkpoint}
    tr = recipe.train
    memory = FeatureMemory(int(recipe.data.feature_memory_gib * 2**30))  # every fold reads the store once
    pooled = _PooledInputs(domains, stores, norms, memory, [s.name for s in streams])  # the linear reference's
    for run_no, (r, f) in enumerate(plan):
        run_id = f"r{r}-f{f}"
        seed = recipe.seed + r
        done_file = run_dir / "runs" / f"{run_id}.json"
        state_file = run_dir / "checkpoints" / f"{run_id}.last.json"  # per-epoch resume state
        kept = None
        if resume and main and done_file.is_file() and (run_dir / "checkpoints" / f"{run_id}.safetensors").is_file():
            kept = json.loads(done_file.read_text(encoding="utf-8"))
        kept = dist.broadcast_object(kept)  # rank 0 decides: only its file system need hold the folder
        if kept is not None:
            if main and "reference" not in kept and recipe.reference != "none":  # a run finished before 0.2
                kept["reference"] = _reference(recipe.reference, domains, splits, run_id, pooled, seed)
            outcomes.append(kept)
            console.print(f"  run {run_no + 1}/{len(plan)} ({run_id}): finished before, kept")
            continue
        seed_everything(seed * 1000 + f)
        threads.refresh()
        model = build_model(recipe, registry, streams, model_labels, model_head_of, extractors)
        guard = None
        init_info: dict[str, Any] = {}
        if init is not None:
            guard, init_info = start_from(recipe, init[0], model, list(model_labels))
        if len(model.norms):  # data.standardize: statistics of this run's training split
            inherited = {k.split(".")[1] for k in init[0].weights if k.startswith("norms.")} if init else set()
            fit_standardize(
                model,
                {d: dd.keys for d, dd in domains.items()},
                {d: splits[d][run_id].train for d in domains},
                stores,
                keep=inherited,
            )
        main_losses = torch.nn.ModuleDict(
            {
                d: registry.create("loss", recipe.loss.main).build(int(model.fusion.out_dim), len(labels[d]))
                for d in domains
            }
        )
        aux_losses = None
        aux_weights: dict[str, float] = {}
        if recipe.loss.aux is not None:
            aux_losses = torch.nn.ModuleDict(
                {
                    d: registry.create("loss", recipe.loss.aux).build(int(model.fusion.out_dim), len(labels[d]))
                    for d in domains
                }
            )
            default_w = float(getattr(recipe.loss.aux, "weight", 1.0))
            for d, spec in recipe.domains.items():
                aux_weights[d] = float(spec.aux_weight) if spec.aux_weight is not None else default_w
        optimizer = registry.create("optimizer", recipe.optimizer).build(
            _param_groups(model, extractors, [main_losses, aux_losses])
        )
        if guard is not None:
            guard.attach(optimizer)

        def loader(
            d: str, which: str, shuffle: bool, world: int = dist.world_size, _seed: int = seed, _run: str = run_id
        ) -> Any:
            dd = domains[d]
            idx = getattr(splits[d][_run], which)
            speakers = [u.speaker for u in dd.utterances]
            aug = copies.for_dataset(d, [u.id for u in dd.utterances]) if which == "train" else []
            ds = FeatureDataset(dd.keys, stores, dd.targets, idx, speakers, norms.get(d), memory, aug)
            balanced = tr.samples_per_class if (tr.sampler == "balanced" and which == "train") else None
            return make_loader(
                ds,
                d,
                batch_size=tr.batch_size,
                shuffle=shuffle,
                seed=_seed,
                num_workers=tr.num_workers,
                balanced_per_class=balanced,
                rank=dist.rank if world > 1 else 0,
                world_size=world,  # this rank's share of every batch / of the evaluation sets
            )

        train_l = {d: loader(d, "train", True) for d in domains if splits[d][run_id].train}
        val_l = {d: loader(d, "val", False) for d in domains if splits[d][run_id].val}
        test_l = {d: loader(d, "test", False) for d in domains if splits[d][run_id].test}
        label = f"run {run_no + 1}/{len(plan)} (repeat {r}, fold {f})"
        if init is not None:
            whole_val = {d: loader(d, "val", False, 1) for d in val_l} if dist.enabled else val_l
            whole_test = {d: loader(d, "test", False, 1) for d in test_l} if dist.enabled else test_l
            init_info["zero_shot"] = zero_shot_baseline(
                model, init[0], domains, whole_val, whole_test, model_labels, device
            )

        def on_epoch(epoch: int, row: dict[str, float], _r: int = r, _f: int = f, _label: str = label) -> None:
            if progress:
                vals = " ".join(f"{k.split('/')[1]}={v:.3f}" for k, v in row.items() if k.startswith("val_ua/"))
                console.print(f"  {_label} epoch {epoch}/{tr.epochs}: loss {row['train_loss']:.3f}  val UA {vals}")
            threads.refresh()  # runs that started or finished on this host since
            if main:
                hook.serkit_on_epoch_end(run_dir=str(run_dir), repeat=_r, fold=_f, epoch=epoch, metrics=row)

        outcome = train_run(
            model,
            main_losses,
            aux_losses,
            aux_weights,
            optimizer,
            train_l,
            val_l,
            test_l,
            epochs=tr.epochs,
            select_by=tr.select_by,
            grad_clip=tr.grad_clip,
            patience=tr.patience,
            device=device,
            seed=seed,
            on_epoch_end=on_epoch,  # the hook runs even with --quiet (loggers)
            dist=dist,
            state_file=state_file,
            resume=resume,
            mixup=tr.mixup,
            average=_weight_average(model, tr),
            precision=tr.precision,
        )
        if guard is not None:
            init_info["frozen"] = guard.verify(outcome.state_dict)
            if not init_info["frozen"]["identical"]:
                raise SerkitError(f"freeze: frozen weights changed during training: {init_info['frozen']['changed']}")
        if main:
            save_checkpoint(run_dir / "checkpoints" / f"{run_id}.safetensors", outcome.state_dict)
        if run_no == 0 and main:  # the fused test representations of the first run, for the t-SNE plot
            _save_embeddings(run_dir / "embeddings" / f"{run_id}.npz", outcome.embeddings, labels)
        reference = _reference(recipe.reference, domains, splits, run_id, pooled, seed) if main else {}
        tests = " ".join(
            f"{d}: UA {m['ua']:.3f} WA {m['wa']:.3f}"
            + (f" (reference UA {reference[d]['ua']:.3f})" if d in reference else "")
            for d, m in outcome.test.items()
        )
        resumed = f" (resumed after epoch {outcome.resumed_from})" if outcome.resumed_from else ""
        console.print(f"  {label}: best epoch {outcome.best_epoch}{resumed}, test {tests}")
        outcomes.append(
            {
                "id": run_id,
                "repeat": r,
                "fold": f,
                "seed": seed,
                "best_epoch": outcome.best_epoch,
                "seconds": round(outcome.seconds, 3),
                "val": outcome.val,
                "test": outcome.test,
                "fusion": outcome.fusion,
                **({"encoders": outcome.encoders} if outcome.encoders else {}),
                "history": outcome.history,
                **({"reference": reference} if reference else {}),
                **({"init": init_info} if init_info else {}),
            }
        )
        if main:
            atomic_write_json(done_file, outcomes[-1])  # lets --resume keep this run
            delete_train_state(state_file)  # the finished run needs no epoch state
    if not main:  # rank 0 writes the results; the other ranks wait for it, then leave
        for s in stores.values():
            s.close()
        copies.close()
        dist.barrier()
        return run_dir
    atomic_write_json(run_dir / "checkpoints" / "model.json", model_config)

    results = build_results(
        recipe=recipe,
        source=source,
        domains={
            d: {
                "labels": dd.labels,
                "own_labels": own_labels[d],
                "head": head_of[d],
                "n_utterances": len(dd.utterances),
                "n_speakers": len({u.speaker for u in dd.utterances}),
            }
            for d, dd in domains.items()
            if any(sp.test for sp in splits[d].values())
        },
        runs=outcomes,
        extraction=folder.total_extraction(extraction) if folder is not None else extraction,  # all sessions
        n_bad_files=len(bad),
        started=started.isoformat(timespec="seconds"),
        wall_seconds=(folder.total_seconds if folder is not None else float)(time.perf_counter() - t0),
        device=str(device),
    )
    if init is not None:
        results["init_from"] = init_summary(recipe, init[0], outcomes)
    if recipe.reference != "none":
        results["reference"] = summarise_reference(outcomes)
    results["audit"], results["provenance"] = audit, prov
    atomic_write_json(run_dir / "results.json", results)
    write_report(run_dir, results)
    write_html(run_dir, results, write_plots(run_dir, results))
    hook.serkit_on_run_end(run_dir=str(run_dir), results=results)
    for s in stores.values():
        s.close()
    copies.close()
    for d, m in results["domains"].items():
        console.print(
            f"[bold]{d}[/]: UA {m['ua']['mean']:.4f} ± {m['ua']['std']:.4f}   "
            f"WA {m['wa']['mean']:.4f} ± {m['wa']['std']:.4f}   ({results['protocol']}, {len(outcomes)} run(s))"
        )
    for d, ref in results.get("reference", {}).items():
        ua = ref["ua"]
        console.print(f"[bold]{d}[/] linear reference ({ref['kind']}): UA {ua['mean']:.4f} ± {ua['std']:.4f}")
    for line in below_reference(results["domains"], results.get("reference", {})):
        warnings.warn(line, UserWarning, stacklevel=2)  # the CLI prints it as "warning: ..."
    console.print(
        f"results: {run_dir / 'results.json'}   report: {run_dir / 'report.md'} (and report.html, plots/)"
    )
    dist.barrier()
    return run_dir


class _PooledInputs:
    """The linear reference's inputs per domain ``(N, D)`` and targets ``(N,)``, pooled once per run.

    Read through the same :class:`FeatureDataset` as the model's loaders (speaker
    normalisation included), so the reference sees the same streams.
    """

    def __init__(self, domains: Any, stores: Any, norms: Any, memory: Any, streams: list[str]) -> None:
        self.domains, self.stores, self.norms, self.memory, self.streams = domains, stores, norms, memory, streams
        self.cache: dict[str, tuple[Any, Any]] = {}

    def __call__(self, domain: str) -> tuple[Any, Any]:
        if domain not in self.cache:
            import numpy as np

            from serkit.engine.data import FeatureDataset
            from serkit.engine.reference import pool_item

            dd = self.domains[domain]
            n = len(dd.utterances)
            speakers = [u.speaker for u in dd.utterances]
            norms = self.norms.get(domain)
            ds = FeatureDataset(dd.keys, self.stores, dd.targets, range(n), speakers, norms, self.memory)
            x = np.stack([pool_item(ds[i][0], self.streams) for i in range(n)])
            self.cache[domain] = (x, np.asarray(dd.targets))
        return self.cache[domain]


def _reference(kind: str, domains: Any, splits: Any, run_id: str, pooled: _PooledInputs, seed: int) -> dict[str, Any]:
    """The linear reference's test metrics of one run, per domain with train, val and test utterances."""
    from serkit.engine.reference import reference_metrics

    out: dict[str, Any] = {}
    if kind == "none":
        return out
    for d, dd in domains.items():
        split = splits[d][run_id]
        if not (split.train and split.val and split.test):
            continue
        x, y = pooled(d)
        parts = {k: list(getattr(split, k)) for k in ("train", "val", "test")}
        out[d] = reference_metrics(
            kind, {k: x[v] for k, v in parts.items()}, {k: y[v] for k, v in parts.items()}, len(dd.labels), seed=seed
        )
    return out


def _weight_average(model: Any, train: Any) -> Any:
    """The recipe's weight averaging (``train.average``) of ``model``, or None."""
    if train.average == "none":
        return None
    from serkit.engine.averaging import WeightAverage

    start = max(1, int(train.swa_start * train.epochs) + 1)
    return WeightAverage(model, train.average, decay=train.ema_decay, start_epoch=start)


def _save_embeddings(path: Path, embeddings: dict[str, dict[str, Any]], labels: dict[str, list[str]]) -> None:
    """``<domain>.x`` (N, D) and ``<domain>.y`` (N,) arrays plus label names, as one .npz."""
    import numpy as np

    from serkit.io import atomic_write_bytes

    arrays: dict[str, Any] = {}
    for d, e in embeddings.items():
        if "x" in e:
            arrays[f"{d}.x"] = e["x"].astype(np.float32)
            arrays[f"{d}.y"] = e["y"].astype(np.int64)
            arrays[f"{d}.labels"] = np.array(labels[d])
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def _param_groups(model: Any, extractors: dict[str, Any], losses: list[Any]) -> list[dict[str, Any]]:
    """One group at the recipe's lr, plus one per fine-tuned extractor at ``lr * lr_scale``."""
    special: list[dict[str, Any]] = []
    taken: set[int] = set()
    for sid, ext in extractors.items():
        if getattr(ext, "trainable", False) and sid in model.encoders:
            ps = list(model.encoders[sid].parameters())
            taken |= {id(p) for p in ps}
            special.append({"params": ps, "lr_scale": float(ext.lr_scale), "name": f"extractor:{sid}"})
    rest = [p for p in model.parameters() if id(p) not in taken]
    for loss in losses:
        if loss is not None:
            rest += list(loss.parameters())
    groups = [{"params": rest, "lr_scale": 1.0, "name": "model"}, *special]
    for g in groups:  # frozen (init_from + freeze) parameters stay out of the optimizer
        g["params"] = [p for p in g["params"] if p.requires_grad]
    return [g for g in groups if g["params"]]


def label_coverage(pairs: list[tuple[str, str]]) -> float:
    """Mean over speakers of the fraction of the domain's labels each speaker has: ``(speaker, label)`` pairs -> [0, 1].

    1.0 for an acted corpus where every speaker performs every emotion; low for corpora of
    spontaneous speech whose speakers show one or two emotions (per-speaker
    standardisation then removes emotion along with the speaker).
    """
    labels = {lab for _, lab in pairs}
    by_speaker: dict[str, set[str]] = {}
    for spk, lab in pairs:
        by_speaker.setdefault(spk, set()).add(lab)
    if not by_speaker:
        return 0.0
    return sum(len(v) for v in by_speaker.values()) / (len(labels) * len(by_speaker))


def _speaker_norms(
    recipe: Any, domains: dict[str, DomainData], stores: dict[str, Any], own_labels: dict[str, list[str]], console: Any
) -> dict[str, dict[str, dict[str, Any]]]:
    """Per-domain, per-stream, per-speaker statistics for speaker normalisation."""
    from serkit.engine.data import speaker_stats

    out: dict[str, dict[str, dict[str, Any]]] = {}
    for d, dd in domains.items():
        speakers = [u.speaker for u in dd.utterances]
        by_spk: dict[str, set[str]] = {}
        for u in dd.utterances:
            by_spk.setdefault(u.speaker, set()).add(u.label)
        n_labels = len(own_labels[d])
        low = sorted(s for s, labs in by_spk.items() if len(labs) / n_labels < recipe.data.speaker_norm_min_coverage)
        if getattr(recipe.data, "speaker_norm", True) == "auto":  # a corpus-design check (like the warning)
            if label_coverage([(u.speaker, u.label) for u in dd.utterances]) < recipe.data.speaker_norm_auto_coverage:
                continue
        elif low:
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
