"""One ``(repeat, fold)`` run of ``serkit run``: model, losses, optimizer and loaders -> training -> checkpoint.

:func:`fit_run` is the second half of a run (:mod:`serkit.engine.run` calls it once per
planned run, on the data of :func:`serkit.engine.prepare.prepare`): it builds the model
from the recipe (starting from ``init_from`` when given), trains it with
:func:`serkit.engine.train.train_run`, saves the selected weights
(``checkpoints/<run id>.safetensors``), fits the linear reference on the same split, and
returns the run's record (``runs/<run id>.json``, written here too so that ``--resume``
keeps it). Like :mod:`serkit.engine.run`, it imports torch only when called.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serkit.engine.prepare import Prepared
from serkit.engine.session import Session
from serkit.errors import SerkitError
from serkit.io import atomic_write_json

__all__ = [
    "TRAIN_OPTIONS",
    "FitContext",
    "PooledInputs",
    "fit_run",
    "param_groups",
    "reference_of_run",
    "weight_average",
]


class PooledInputs:
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


@dataclass
class FitContext:
    """What every run of a ``serkit run`` shares.

    Attributes:
        session: the run's :class:`~serkit.engine.session.Session` (recipe, run folder,
            device, console, hooks...).
        data: the prepared data (:func:`serkit.engine.prepare.prepare`).
        model_labels: domain -> head labels of the model (the initial run's domains first).
        model_head_of: domain -> head id of the model.
        memory: the features kept in memory across runs (:class:`~serkit.engine.data.FeatureMemory`).
        pooled: the linear reference's inputs.
        n_runs: the number of planned runs (for the progress lines).
    """

    session: Session
    data: Prepared
    model_labels: dict[str, list[str]]
    model_head_of: dict[str, str]
    memory: Any
    pooled: PooledInputs
    n_runs: int


def reference_of_run(
    kind: str, domains: Any, splits: Any, run_id: str, pooled: PooledInputs, seed: int
) -> dict[str, Any]:
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


def weight_average(model: Any, train: Any) -> Any:
    """The recipe's weight averaging (``train.average``) of ``model``, or None."""
    if train.average == "none":
        return None
    from serkit.engine.averaging import WeightAverage

    start = max(1, int(train.swa_start * train.epochs) + 1)
    return WeightAverage(model, train.average, decay=train.ema_decay, start_epoch=start)


def save_embeddings(path: Path, embeddings: dict[str, dict[str, Any]], labels: dict[str, list[str]]) -> None:
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


def param_groups(model: Any, extractors: dict[str, Any], losses: list[Any]) -> list[dict[str, Any]]:
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


# -- one run -----------------------------------------------------------------------------


def run_identity(recipe_seed: int, r: int, f: int) -> tuple[str, int]:
    """``(run id, seed)`` of repeat ``r``, fold ``f``: ``("r1-f2", recipe_seed + 1)``.

    The seed names the repeat (its shuffles, the reference's); the model's initialisation
    also mixes in the fold (``seed * 1000 + f``).
    """
    return f"r{r}-f{f}", recipe_seed + r


def _build_model(ctx: FitContext, run_id: str) -> tuple[Any, Any, dict[str, Any]]:
    """The run's fresh model (started from ``init_from`` and standardised): ``(model, freeze guard, init info)``."""
    from serkit.engine.init_from import start_from
    from serkit.engine.model import build_model
    from serkit.engine.standardize import fit_standardize

    session, data, init = ctx.session, ctx.data, ctx.session.init
    features, registry = data.features, session.manager.registry
    model = build_model(
        session.recipe, registry, features.streams, ctx.model_labels, ctx.model_head_of, features.extractors
    )
    guard = None
    init_info: dict[str, Any] = {}
    if init is not None:
        guard, init_info = start_from(session.recipe, init, model, list(ctx.model_labels))
    if len(model.norms):  # data.standardize: statistics of this run's training split
        inherited = {k.split(".")[1] for k in init.weights if k.startswith("norms.")} if init else set()
        fit_standardize(
            model,
            {d: dd.keys for d, dd in data.domains.items()},
            {d: data.splits[d][run_id].train for d in data.domains},
            features.stores,
            keep=inherited,
            speaker_norms=data.norms,
            speakers={d: [u.speaker for u in dd.utterances] for d, dd in data.domains.items()},
        )
    return model, guard, init_info


def _build_losses(ctx: FitContext, model: Any) -> tuple[Any, Any, dict[str, float]]:
    """``(main losses, aux losses or None, aux weight per domain)``: one loss module per domain."""
    import torch

    recipe, registry, labels = ctx.session.recipe, ctx.session.manager.registry, ctx.data.labels
    width = int(model.fusion.out_dim)

    def per_domain(spec: Any) -> Any:
        return torch.nn.ModuleDict(
            {d: registry.create("loss", spec).build(width, len(labels[d])) for d in ctx.data.domains}
        )

    main_losses = per_domain(recipe.loss.main)
    aux_losses = None
    aux_weights: dict[str, float] = {}
    if recipe.loss.aux is not None:
        aux_losses = per_domain(recipe.loss.aux)
        default_w = float(getattr(recipe.loss.aux, "weight", 1.0))
        for d, spec in recipe.domains.items():
            aux_weights[d] = float(spec.aux_weight) if spec.aux_weight is not None else default_w
    return main_losses, aux_losses, aux_weights


def _loaders(ctx: FitContext, run_id: str, which: str, seed: int, world: int | None = None) -> dict[str, Any]:
    """Domain -> loader of its ``which`` set (train / val / test) in this run, for the domains that have one.

    ``world`` (default: the run's processes) splits every batch between the ranks; 1 gives
    every rank the whole set (the zero-shot baseline).
    """
    from serkit.engine.data import FeatureDataset, make_loader

    data, tr, dist = ctx.data, ctx.session.recipe.train, ctx.session.dist
    world = dist.world_size if world is None else world
    out: dict[str, Any] = {}
    for d, dd in data.domains.items():
        idx = getattr(data.splits[d][run_id], which)
        if not idx:
            continue
        speakers = [u.speaker for u in dd.utterances]
        aug = data.features.copies.for_dataset(d, [u.id for u in dd.utterances]) if which == "train" else []
        stores, norms = data.features.stores, data.norms.get(d)
        ds = FeatureDataset(dd.keys, stores, dd.targets, idx, speakers, norms, ctx.memory, aug)
        balanced = tr.samples_per_class if (tr.sampler == "balanced" and which == "train") else None
        out[d] = make_loader(
            ds,
            d,
            batch_size=tr.batch_size,
            shuffle=which == "train",
            seed=seed,
            num_workers=tr.num_workers,
            balanced_per_class=balanced,
            rank=dist.rank if world > 1 else 0,
            world_size=world,  # this rank's share of every batch / of the evaluation sets
        )
    return out


def _epoch_reporter(session: Session, r: int, f: int, label: str) -> Any:
    """``on_epoch_end(epoch, row)``: the progress line, the thread budget, the ``serkit_on_epoch_end`` hook."""
    epochs = session.recipe.train.epochs

    def on_epoch(epoch: int, row: dict[str, float]) -> None:
        if session.progress:
            vals = " ".join(f"{k.split('/')[1]}={v:.3f}" for k, v in row.items() if k.startswith("val_ua/"))
            session.console.print(f"  {label} epoch {epoch}/{epochs}: loss {row['train_loss']:.3f}  val UA {vals}")
        session.threads.refresh()  # runs that started or finished on this host since
        if session.main:
            hook = session.manager.hook
            hook.serkit_on_epoch_end(run_dir=str(session.run_dir), repeat=r, fold=f, epoch=epoch, metrics=row)

    return on_epoch


#: ``train_run``'s settings that come from the recipe's ``train`` section as they are.
TRAIN_OPTIONS = ("epochs", "select_by", "grad_clip", "patience", "mixup", "precision")


def _train(ctx: FitContext, run_no: int, r: int, f: int) -> tuple[Any, dict[str, Any], str]:
    """Build and train run ``(r, f)``: ``(train_run's outcome, init info, progress label)``."""
    from serkit.engine.device import seed_everything
    from serkit.engine.init_from import zero_shot_baseline

    # looked up at call time, so that tests can replace the training loop
    from serkit.engine.train import train_run

    session, data = ctx.session, ctx.data
    recipe, tr, dist = session.recipe, session.recipe.train, session.dist
    run_id, seed = run_identity(recipe.seed, r, f)
    seed_everything(seed * 1000 + f)
    session.threads.refresh()
    model, guard, init_info = _build_model(ctx, run_id)
    main_losses, aux_losses, aux_weights = _build_losses(ctx, model)
    optimizer = session.manager.registry.create("optimizer", recipe.optimizer).build(
        param_groups(model, data.features.extractors, [main_losses, aux_losses])
    )
    if guard is not None:
        guard.attach(optimizer)
    train_l, val_l, test_l = (_loaders(ctx, run_id, which, seed) for which in ("train", "val", "test"))
    label = f"run {run_no + 1}/{ctx.n_runs} (repeat {r}, fold {f})"
    if session.init is not None:
        whole_val = _loaders(ctx, run_id, "val", seed, 1) if dist.enabled else val_l
        whole_test = _loaders(ctx, run_id, "test", seed, 1) if dist.enabled else test_l
        init_info["zero_shot"] = zero_shot_baseline(
            model, session.init, data.domains, whole_val, whole_test, ctx.model_labels, session.device
        )
    outcome = train_run(
        model, main_losses, aux_losses, aux_weights, optimizer, train_l, val_l, test_l,
        **{name: getattr(tr, name) for name in TRAIN_OPTIONS},
        device=session.device,
        seed=seed,
        on_epoch_end=_epoch_reporter(session, r, f, label),  # the hook runs even with --quiet (loggers)
        dist=dist,
        state_file=session.run_dir / "checkpoints" / f"{run_id}.last.json",  # per-epoch resume state
        resume=session.resume,
        average=weight_average(model, tr),
        metrics=session.manager.registry.metrics(),
        callbacks=[session.manager.registry.create("callback", spec) for spec in tr.callbacks],  # fresh ones per run
    )
    if guard is not None:
        init_info["frozen"] = guard.verify(outcome.state_dict)
        if not init_info["frozen"]["identical"]:
            raise SerkitError(f"freeze: frozen weights changed during training: {init_info['frozen']['changed']}")
    return outcome, init_info, label


def fit_run(ctx: FitContext, run_no: int, r: int, f: int) -> dict[str, Any]:
    """Train and evaluate run ``(repeat r, fold f)``; rank 0 saves its checkpoint and ``runs/<id>.json``.

    Returns:
        The run's record (``results.json``'s ``runs[i]``).
    """
    from serkit.engine.checkpoint import delete_train_state, save_checkpoint
    from serkit.engine.run_folder import run_checkpoint, run_record

    session, data = ctx.session, ctx.data
    (run_id, seed), run_dir = run_identity(session.recipe.seed, r, f), session.run_dir
    outcome, init_info, label = _train(ctx, run_no, r, f)
    if session.main:
        save_checkpoint(run_checkpoint(run_dir, run_id), outcome.state_dict)
    if run_no == 0 and session.main:  # the fused test representations of the first run, for the t-SNE plot
        save_embeddings(run_dir / "embeddings" / f"{run_id}.npz", outcome.embeddings, data.labels)
    reference: dict[str, Any] = {}
    if session.main:
        reference = reference_of_run(session.recipe.reference, data.domains, data.splits, run_id, ctx.pooled, seed)
    record = _record(run_id, r, f, seed, outcome, reference, init_info)
    tests = " ".join(
        f"{d}: UA {m['ua']:.3f} WA {m['wa']:.3f}"
        + (f" (reference UA {reference[d]['ua']:.3f})" if d in reference else "")
        for d, m in outcome.test.items()
    )
    resumed = f" (resumed after epoch {outcome.resumed_from})" if outcome.resumed_from else ""
    session.console.print(f"  {label}: best epoch {outcome.best_epoch}{resumed}, test {tests}")
    if session.main:
        atomic_write_json(run_record(run_dir, run_id), record)  # lets --resume keep this run
        delete_train_state(run_dir / "checkpoints" / f"{run_id}.last.json")  # the finished run needs no epoch state
    return record


def _record(
    run_id: str, r: int, f: int, seed: int, outcome: Any, reference: dict[str, Any], init_info: dict[str, Any]
) -> dict[str, Any]:
    """A finished run's record: ``runs/<run id>.json`` and ``results.json``'s ``runs[i]``."""
    return {
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
