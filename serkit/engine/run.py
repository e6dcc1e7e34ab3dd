"""``serkit run``: datasets -> features -> splits -> repeats x folds of training -> run folder.

This module orchestrates a run; the two halves of the work are apart:
:func:`serkit.engine.prepare.prepare` (recipe -> domains, features, labels, splits) and
:func:`serkit.engine.fit.fit_run` (one ``(repeat, fold)`` run). Here: claiming the run
folder, the session's device, threads and console, writing what the run folder holds
besides the runs (recipe, environment, splits, split audit, speaker statistics, model
description, results, report, plots) and the run hooks.
"""

from __future__ import annotations

import csv
import io
import json
import platform
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from serkit.data.splits import Split
from serkit.engine.precheck import check_protocol
from serkit.engine.prepare import DomainData, Features, Prepared, load_domains, prepare
from serkit.engine.session import Session
from serkit.errors import SerkitError
from serkit.io import atomic_write_json, atomic_write_text
from serkit.paths import cache_dir
from serkit.plugins import get_plugin_manager
from serkit.version import __version__

if TYPE_CHECKING:
    from serkit.engine.run_folder import RunFolder

__all__ = ["default_run_dir", "run_recipe"]


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


def _write_splits(run_dir: Path, domain_id: str, domain: DomainData, splits: dict[str, Split]) -> None:
    """Write ``splits/<domain>.csv``; a resumed run must find the splits it started with.

    Raises:
        SerkitError: the file exists (``--resume``) and differs: the corpus or serkit's
            split rules changed since the run started, so finished and new runs would
            not be comparable.
    """
    roles = {name: s.role_of() for name, s in splits.items()}
    rows = [["id", "speaker", "label", *splits]]
    for i, u in enumerate(domain.utterances):
        rows.append([u.id, u.speaker, u.label, *(roles[n].get(i, "") for n in splits)])
    path = run_dir / "splits" / f"{domain_id}.csv"
    change = _split_changes(list(csv.reader(io.StringIO(path.read_text()))), rows) if path.is_file() else None
    if change:
        raise SerkitError(
            f"--resume {run_dir}: the splits of domain '{domain_id}' differ from those this run started with "
            f"({path}): {change}. The corpus or serkit's split rules "
            "changed since; finished and new runs would not be comparable. Run into another --out (or start "
            "over here with --overwrite)"
        )
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    atomic_write_text(path, buf.getvalue())


def _split_changes(before: list[list[str]], after: list[list[str]]) -> str | None:
    """What differs between two ``splits/<domain>.csv`` tables (rows of cells), in a few words;
    None if nothing."""
    if before == after:
        return None
    if [r[:3] for r in before] != [r[:3] for r in after]:
        return "the utterances differ"
    if before[0] != after[0]:
        return "the runs differ"
    runs = [name for j, name in enumerate(after[0][3:], start=3) if [r[j] for r in before] != [r[j] for r in after]]
    return f"the roles of utterances differ in run(s) {', '.join(runs)}"


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


def _start(
    recipe: Any, *, out: Path | None, source: str, progress: bool, resume: bool, dist: Any, active: Any,
    overwrite: bool, folder: RunFolder,
) -> Session:
    """Load the datasets, claim the run folder and write its recipe and environment; the run hook ``start``."""
    from serkit.engine.device import resolve_device
    from serkit.engine.distributed import init_distributed, run_device
    from serkit.engine.init_from import init_source_for
    from serkit.engine.threads import choose_threads

    # joined once per process and left joined (e.g. for the next variant of a sweep); the CLI leaves it
    dist = init_distributed(recipe.device) if dist is None else dist
    main = dist.is_main  # only rank 0 writes the run folder, prints and calls the run hooks
    console = _console() if main else _quiet_console()
    manager = get_plugin_manager()
    device = run_device(dist, resolve_device(recipe.device))
    threads = choose_threads(recipe.threads, active)
    threads.apply()
    init = init_source_for(recipe, manager.registry, source)
    if init is not None:
        recipe = init[1]
    with dist.main_first():  # rank 0 first: a generated corpus is written once
        raw = load_domains(recipe)  # a missing corpus stops the run before anything is written
    check_protocol(recipe, raw)  # folds that cannot be made stop it before feature extraction
    run_dir = dist.broadcast_object(Path(out) if out is not None else default_run_dir(recipe.name))
    resolved = recipe.model_dump(mode="json")
    # refuses a folder holding another run (or, resuming, another recipe)
    folder.claim(dist, run_dir, resolved, resume=resume, overwrite=overwrite)
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "recipe.yaml", yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True))
        atomic_write_json(
            run_dir / "environment.json", _environment(str(device)) | _dist_info(dist) | {"threads": threads.as_dict()}
        )
        console.print(f"[bold]serkit run[/] {recipe.name} -> {run_dir}  (device {device}{_dist_note(dist)})")
        manager.hook.serkit_on_run_start(run_dir=str(run_dir), recipe=resolved)
    for d, utts in raw.items():
        console.print(f"  domain {d}: {len(utts)} utterances, {len({u.speaker for u in utts})} speakers")
    init_source = init[0] if init is not None else None
    return Session(
        recipe, source, run_dir, resolved, dist, console, manager, device, threads, init_source, raw,
        progress and main, resume,
    )


def _prepare(session: Session, folder: RunFolder) -> tuple[Prepared, Any, Any]:
    """The run's data (:func:`~serkit.engine.prepare.prepare`), and what rank 0 writes of it.

    Returns:
        ``(data, audit, provenance)`` (the last two None on ranks other than 0).
    """
    run_dir, console, main = session.run_dir, session.console, session.main

    def extracted(features: Features) -> None:
        folder.record_extraction(features.extraction)
        if features.bad and main:
            bad = features.bad
            atomic_write_json(run_dir / "bad_files.json", [{"path": p, **v} for p, v in sorted(bad.items())])
            console.print(f"  [yellow]skipped {len(bad)} bad audio file(s); listed in {run_dir / 'bad_files.json'}[/]")

    data = prepare(
        session.recipe, session.raw, session.manager.registry, session.dist, progress=session.progress,
        console=console, main=main, on_extracted=extracted,
    )
    for d, dd in data.domains.items():
        if data.splits[d] and main:
            _write_splits(run_dir, d, dd, data.splits[d])
    audit = prov = None
    if main:  # the split audit and the provenance of results.json
        from rich.markup import escape

        from serkit.engine.audit import run_checks

        audit, prov = run_checks(
            session.recipe, {d: dd.utterances for d, dd in data.domains.items()}, data.splits, data.head_of,
            session.resolved,
        )
        for line in audit["findings"]:
            console.print(f"  [yellow]split audit:[/] {escape(line)}")
    if data.norms and main:  # load_model needs them to predict
        from serkit.engine.speaker_norm import save_speaker_norm

        save_speaker_norm(run_dir, data.norms, data.domains, data.features.stores, data.splits)
    return data, audit, prov


def _model_plan(session: Session, data: Prepared) -> tuple[dict[str, list[str]], dict[str, str], dict[str, Any]]:
    """``(labels, head_of, model.json)`` of the model: with ``init_from``, the initial run's domains first."""
    labels, head_of = data.labels, data.head_of
    model_labels, model_head_of = dict(labels), dict(head_of)
    src = session.init
    if src is not None:  # the initial run's domains come first, in its order (fusion rows)
        model_labels = {d: labels.get(d, src.labels[d]) for d in src.domains} | labels
        model_head_of = {d: head_of.get(d, src.head_of[d]) for d in src.domains} | head_of
        new_domains = [d for d in data.domains if d not in src.labels]
        session.console.print(
            f"  init_from {src.run_dir} (checkpoint {src.checkpoint}): domains {', '.join(src.domains)} "
            f"kept; new: {', '.join(new_domains) or 'none'}; frozen: {', '.join(session.recipe.freeze) or 'nothing'}"
        )
    model_config = {
        "recipe": session.resolved,
        "streams": [s.__dict__ for s in data.features.streams],
        "labels": model_labels,
        "head_of": model_head_of,
        "serkit_version": __version__,
    }
    if src is not None:
        model_config["init_from"] = {"run": str(src.run_dir), "checkpoint": src.checkpoint}
    return model_labels, model_head_of, model_config


def _fit_all(
    session: Session, data: Prepared, model_labels: dict[str, list[str]], model_head_of: dict[str, str]
) -> list[dict[str, Any]]:
    """Every planned run: kept when ``--resume`` finds it finished, else trained (:func:`serkit.engine.fit.fit_run`)."""
    from serkit.engine.data import FeatureMemory
    from serkit.engine.fit import FitContext, PooledInputs, fit_run, reference_of_run, run_identity
    from serkit.engine.run_folder import run_checkpoint, run_record

    recipe, dist, run_dir, main = session.recipe, session.dist, session.run_dir, session.main
    memory = FeatureMemory(int(recipe.data.feature_memory_gib * 2**30))  # every fold reads the store once
    streams = [s.name for s in data.features.streams]
    pooled = PooledInputs(data.domains, data.features.stores, data.norms, memory, streams)  # the linear reference's
    ctx = FitContext(session, data, model_labels, model_head_of, memory, pooled, len(data.plan))
    outcomes: list[dict[str, Any]] = []
    for run_no, (r, f) in enumerate(data.plan):
        run_id, seed = run_identity(recipe.seed, r, f)
        done_file = run_record(run_dir, run_id)
        kept = None
        finished = done_file.is_file() and run_checkpoint(run_dir, run_id).is_file()
        if session.resume and main and finished:
            kept = json.loads(done_file.read_text(encoding="utf-8"))
        kept = dist.broadcast_object(kept)  # rank 0 decides: only its file system need hold the folder
        if kept is None:
            outcomes.append(fit_run(ctx, run_no, r, f))
            continue
        if main and "reference" not in kept and recipe.reference != "none":  # a run finished before 0.2
            kept["reference"] = reference_of_run(recipe.reference, data.domains, data.splits, run_id, pooled, seed)
        outcomes.append(kept)
        session.console.print(f"  run {run_no + 1}/{len(data.plan)} ({run_id}): finished before, kept")
    return outcomes


def _finish(
    session: Session, data: Prepared, outcomes: list[dict[str, Any]], audit: Any, prov: Any, folder: RunFolder,
    started: datetime, t0: float,
) -> dict[str, Any]:
    """``results.json``, ``report.md``, ``report.html`` and the plots; the run hook ``end``. Rank 0 only."""
    from serkit.engine.init_from import init_summary
    from serkit.engine.reference import summarise_reference
    from serkit.report.html import write_html
    from serkit.report.plots import write_plots
    from serkit.report.results import build_results, write_report

    recipe, run_dir = session.recipe, session.run_dir
    extraction = data.features.extraction
    results = build_results(
        recipe=recipe,
        source=session.source,
        domains={
            d: {
                "labels": dd.labels,
                "own_labels": data.own_labels[d],
                "head": data.head_of[d],
                "n_utterances": len(dd.utterances),
                "n_speakers": len({u.speaker for u in dd.utterances}),
            }
            for d, dd in data.domains.items()
            if any(sp.test for sp in data.splits[d].values())
        },
        runs=outcomes,
        extraction=folder.total_extraction(extraction),  # all sessions
        n_bad_files=len(data.features.bad),
        started=started.isoformat(timespec="seconds"),
        wall_seconds=folder.total_seconds(time.perf_counter() - t0),
        device=str(session.device),
    )
    if session.init is not None:
        results["init_from"] = init_summary(recipe, session.init, outcomes)
    if recipe.reference != "none":
        results["reference"] = summarise_reference(outcomes)
    results["audit"], results["provenance"] = audit, prov
    atomic_write_json(run_dir / "results.json", results)
    write_report(run_dir, results)
    write_html(run_dir, results, write_plots(run_dir, results))
    session.manager.hook.serkit_on_run_end(run_dir=str(run_dir), results=results)
    return results


def _summary(session: Session, results: dict[str, Any], n_runs: int) -> None:
    """The closing lines: UA / WA per domain, the linear reference, warnings below it, where the results are."""
    from serkit.engine.reference import below_reference

    console, run_dir = session.console, session.run_dir
    for d, m in results["domains"].items():
        console.print(
            f"[bold]{d}[/]: UA {m['ua']['mean']:.4f} ± {m['ua']['std']:.4f}   "
            f"WA {m['wa']['mean']:.4f} ± {m['wa']['std']:.4f}   ({results['protocol']}, {n_runs} run(s))"
        )
    for d, ref in results.get("reference", {}).items():
        ua = ref["ua"]
        console.print(f"[bold]{d}[/] linear reference ({ref['kind']}): UA {ua['mean']:.4f} ± {ua['std']:.4f}")
    for line in below_reference(results["domains"], results.get("reference", {})):
        warnings.warn(line, UserWarning, stacklevel=3)  # the CLI prints it as "warning: ..."
    console.print(
        f"results: {run_dir / 'results.json'}   report: {run_dir / 'report.md'} (and report.html, plots/)"
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
    overwrite: bool,
    folder: RunFolder,
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
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    session = _start(
        recipe, out=out, source=source, progress=progress, resume=resume, dist=dist, active=active,
        overwrite=overwrite, folder=folder,
    )
    data, audit, prov = _prepare(session, folder)
    model_labels, model_head_of, model_config = _model_plan(session, data)
    outcomes = _fit_all(session, data, model_labels, model_head_of)
    if not session.main:  # rank 0 writes the results; the other ranks wait for it, then leave
        data.close()
        session.dist.barrier()
        return session.run_dir
    atomic_write_json(session.run_dir / "checkpoints" / "model.json", model_config)
    results = _finish(session, data, outcomes, audit, prov, folder, started, t0)
    data.close()
    _summary(session, results, len(outcomes))
    session.dist.barrier()
    return session.run_dir
