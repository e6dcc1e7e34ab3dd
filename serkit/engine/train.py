"""One training run: epochs over interleaved domain batches, val-based selection, test.

Distributed (``dist`` with several ranks): the model and the losses are wrapped together
in one DistributedDataParallel module (so the losses' own parameters are synchronised
too, and per-domain heads that a batch does not use are handled by
``find_unused_parameters``); each rank trains on its share of every batch (see
:mod:`serkit.engine.data`). Validation and test sets are split between the ranks and
their predictions gathered, so every rank computes the same metrics and takes the same
model-selection and early-stopping decisions.

Resumable: with ``state_file``, a training state (model, losses, optimizer, RNG states of
every rank, loader generators, best-so-far weights and score, history, stale counter) is
written after every epoch by rank 0 (:func:`serkit.engine.checkpoint.save_train_state`);
``resume=True`` continues from it and gives the same result as an uninterrupted run.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from serkit.engine.averaging import WeightAverage
from serkit.engine.checkpoint import load_train_state, rng_state, save_train_state, set_rng_state
from serkit.engine.data import Batch, iterate_epoch
from serkit.engine.distributed import SINGLE, DistContext
from serkit.engine.model import SerModel
from serkit.engine.precision import Precision
from serkit.errors import ModelError, SerkitError
from serkit.interfaces.callback import TrainCallback, TrainLoop
from serkit.interfaces.metric import BUILTIN_METRICS, Metric, selection_metric, selection_score
from serkit.metrics.functional import classification_metrics

__all__ = ["RunOutcome", "TrainObjective", "evaluate", "train_run"]


@dataclass
class RunOutcome:
    """What one (repeat, fold) run produced."""

    best_epoch: int
    history: list[dict[str, float]]
    val: dict[str, dict[str, Any]]
    test: dict[str, dict[str, Any]]
    state_dict: dict[str, torch.Tensor] = field(repr=False)
    seconds: float = 0.0
    fusion: dict[str, Any] = field(default_factory=dict)
    embeddings: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)
    resumed_from: int = 0  # the last finished epoch this run continued from (0: a fresh start)
    encoders: dict[str, Any] = field(default_factory=dict)  # stream id -> the encoder network's summary()


class TrainObjective(nn.Module):
    """The training loss of one batch, as one module over the model and the losses.

    ``forward(batch) -> scalar``: main loss ``+ aux_weight * aux loss`` of the batch's
    domain, times :attr:`Batch.weight` (the rank's share of a split batch), ``+`` the
    fusion's penalty (:attr:`~serkit.interfaces.fusion.FusionOutput.penalty`, e.g. the L0 term). Wrapping this module in
    DistributedDataParallel synchronises the gradients of the losses' parameters (e.g. the
    contrastive loss's scale and bias) along with the model's.
    """

    def __init__(
        self,
        model: SerModel,
        main_losses: nn.ModuleDict,
        aux_losses: nn.ModuleDict | None,
        aux_weights: Mapping[str, float],
        mixup: float = 0.0,
    ) -> None:
        super().__init__()
        self.model = model
        self.main_losses = main_losses
        self.aux_losses = aux_losses
        self.aux_weights = dict(aux_weights)
        self.mixup = float(mixup)

    def forward(self, batch: Batch) -> torch.Tensor:
        if self.training and self.mixup > 0:
            return self._mixed(batch)
        logits, fused = self.model(batch)
        loss = self._losses(batch.domain, logits, batch.targets, fused.representation)
        return self._finish(batch, loss, fused)

    def _losses(self, domain: str, logits: torch.Tensor, targets: torch.Tensor, rep: torch.Tensor) -> torch.Tensor:
        loss = self.main_losses[domain](logits, targets, rep)
        if self.aux_losses is not None and self.aux_weights.get(domain, 0.0) > 0:
            loss = loss + self.aux_weights[domain] * self.aux_losses[domain](logits, targets, rep)
        return loss

    def _mixed(self, batch: Batch) -> torch.Tensor:
        """Mixup on the stream vectors: ``lam * v + (1 - lam) * v[perm]``, losses mixed alike.

        ``lam ~ Beta(mixup, mixup)`` and ``perm`` come from torch's global (CPU) generator,
        so a seeded run mixes the same pairs every time.
        """
        alpha = torch.tensor(self.mixup)
        lam = float(torch.distributions.Beta(alpha, alpha).sample())
        perm = torch.randperm(len(batch.targets)).to(batch.targets.device)
        vectors = self.model.encode(batch.streams, batch.domain)
        mixed = {k: lam * v + (1.0 - lam) * v[perm] for k, v in vectors.items()}
        logits, fused = self.model.classify(mixed, batch.domain)
        rep = fused.representation
        loss = lam * self._losses(batch.domain, logits, batch.targets, rep) + (1.0 - lam) * self._losses(
            batch.domain, logits, batch.targets[perm], rep
        )
        return self._finish(batch, loss, fused)

    @staticmethod
    def _finish(batch: Batch, loss: torch.Tensor, fused: Any) -> torch.Tensor:
        if batch.weight != 1.0:
            loss = loss * batch.weight
        penalty = fused.penalty
        if penalty is not None:
            loss = loss + penalty
        return loss


@torch.no_grad()
def evaluate(
    model: SerModel,
    loader: DataLoader,
    main_loss: nn.Module,
    device: torch.device,
    n_classes: int,
    collect: dict[str, np.ndarray] | None = None,
    dist: DistContext = SINGLE,
    metrics: Mapping[str, Metric] | None = None,
) -> dict[str, Any]:
    """Metrics of ``model`` on one domain's loader.

    When ``collect`` is a dict, the fused representations ``x (N, D)`` and targets
    ``y (N,)`` are stored in it (for t-SNE plots).

    With several ranks (``dist``), each rank's loader serves its part of the set; the
    ranks' predictions, loss sums and gate sums are gathered and every rank returns the
    metrics of the whole set (representations in utterance order).

    Returns ua, wa, macro_f1, confusion, loss, n, every metric of ``metrics`` that has a
    ``compute`` function (plugins' metrics) and, when the fusion reports gate weights
    (:attr:`~serkit.interfaces.fusion.FusionOutput.gates`, ``(B, M)``), their mean over the
    utterances as ``gates``.
    """
    model.eval()
    y_true: list[np.ndarray] = []
    y_pred: list[np.ndarray] = []
    total, count = 0.0, 0
    gate_sum: torch.Tensor | None = None
    reps: list[np.ndarray] = []
    for batch in loader:
        batch = batch.to(device)
        logits, fused = model(batch)
        loss = main_loss(logits, batch.targets, fused.representation)
        total += float(loss) * len(batch.targets)
        count += len(batch.targets)
        y_true.append(batch.targets.cpu().numpy())
        y_pred.append(logits.argmax(dim=1).cpu().numpy())
        if collect is not None:
            reps.append(fused.representation.detach().float().cpu().numpy())
        gates = fused.gates
        if gates is not None:
            g = gates.detach().float().sum(dim=0).cpu()
            gate_sum = g if gate_sum is None else gate_sum + g
    if dist.enabled:
        parts = dist.all_gather_object(
            (y_true, y_pred, reps, total, count, None if gate_sum is None else gate_sum.numpy())
        )
        # rank r served the set's items r, r + W, r + 2W, ...: interleave them back
        slot = np.concatenate(
            [r + dist.world_size * np.arange(p[4]) for r, p in enumerate(parts)] + [np.zeros(0, dtype=np.int64)]
        )
        order = np.argsort(slot, kind="stable")
        y_true = [np.concatenate([a for p in parts for a in p[0]])[order]] if len(slot) else []
        y_pred = [np.concatenate([a for p in parts for a in p[1]])[order]] if len(slot) else []
        reps = [np.concatenate([a for p in parts for a in p[2]])[order]] if any(p[2] for p in parts) else []
        total = float(sum(p[3] for p in parts))
        count = int(sum(p[4] for p in parts))
        gates_of = [p[5] for p in parts if p[5] is not None]
        gate_sum = torch.from_numpy(np.sum(gates_of, axis=0)) if gates_of else None
    if count == 0:
        return {
            "ua": float("nan"),
            "wa": float("nan"),
            "macro_f1": float("nan"),
            "loss": float("nan"),
            "n": 0,
        }
    yt, yp = np.concatenate(y_true), np.concatenate(y_pred)
    if collect is not None:
        collect["x"] = np.concatenate(reps)
        collect["y"] = yt
    out = classification_metrics(yt, yp, n_classes)
    out["loss"] = total / count
    out["n"] = count
    for name, metric in (metrics or {}).items():
        if metric.compute is not None and name not in out:
            out[name] = float(metric.compute(yt, yp, n_classes))
    if gate_sum is not None:
        out["gates"] = [round(float(x), 6) for x in gate_sum / count]
    return out


def _check_schedule(dist: DistContext, train_loaders: Mapping[str, DataLoader]) -> None:
    """Every rank must take the same number of steps per domain, or DDP deadlocks."""
    counts = {d: len(dl) for d, dl in train_loaders.items()}
    every = dist.all_gather_object(counts)
    if any(c != every[0] for c in every):
        per_rank = "; ".join(f"rank {r}: {c}" for r, c in enumerate(every))
        raise SerkitError(f"distributed training: the ranks disagree on the batches per domain ({per_rank})")


@dataclass
class _Best:
    """Where the run is: the selected epoch so far, the history, the early-stopping counter."""

    score: float = -math.inf
    epoch: int = 0
    state: dict[str, torch.Tensor] | None = None
    val: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    stale: int = 0
    first_epoch: int = 1
    stopped: bool = False
    seconds_before: float = 0.0


class _Loop:
    """One run's training loop (:func:`train_run`): restore, epochs, selection, state, test."""

    def __init__(
        self,
        model: SerModel,
        main_losses: nn.ModuleDict,
        aux_losses: nn.ModuleDict | None,
        optimizer: torch.optim.Optimizer,
        loaders: tuple[Mapping[str, DataLoader], Mapping[str, DataLoader], Mapping[str, DataLoader]],
        *,
        device: torch.device,
        seed: int,
        dist: DistContext,
        average: WeightAverage | None,
        precision: str,
        metrics: Mapping[str, Metric],
        callbacks: Sequence[TrainCallback],
        epochs: int,
    ) -> None:
        self.model, self.main_losses, self.aux_losses, self.optimizer = model, main_losses, aux_losses, optimizer
        self.train_loaders, self.val_loaders, self.test_loaders = loaders
        self.device, self.seed, self.dist, self.average = device, seed, dist, average
        self.metrics, self.callbacks = metrics, list(callbacks)
        self.n_classes = {d: len(model.labels[d]) for d in model.labels}
        self.amp = Precision(precision, device)
        self.best = _Best()
        self.view = TrainLoop(model, optimizer, epochs, device=device)

    def restore(self, state: dict[str, Any], state_file: Path) -> None:
        """Continue from a saved training state (:func:`serkit.engine.checkpoint.load_train_state`)."""
        dist = self.dist
        self.model.load_state_dict(state["model"])
        self.main_losses.load_state_dict(state["main_losses"])
        if self.aux_losses is not None and state["aux_losses"] is not None:
            self.aux_losses.load_state_dict(state["aux_losses"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.average is not None and state.get("average") is not None:
            self.average.load_state_dict(state["average"])
        self.amp.load_state_dict(state.get("scaler"))
        for d, gen_state in state["loaders"].items():
            gen = getattr(self.train_loaders.get(d), "generator", None)
            if gen is not None:
                gen.set_state(gen_state)
        rngs = state["rng"]
        if len(rngs) != dist.world_size and dist.is_main:
            warnings.warn(
                f"{state_file}: saved by {len(rngs)} process(es), resumed by {dist.world_size}; the random "
                "streams differ from an uninterrupted run from here on",
                UserWarning,
                stacklevel=3,  # train_run's caller
            )
        set_rng_state(rngs[dist.rank % len(rngs)])
        b = self.best
        b.score, b.epoch, b.val = float(state["best_score"]), int(state["best_epoch"]), state["best_val"]
        b.state, b.history, b.stale = state["best_state"], state["history"], int(state["stale"])
        b.first_epoch, b.stopped, b.seconds_before = int(state["epoch"]) + 1, bool(state["stopped"]), state["seconds"]
        self.view.epoch, self.view.step = int(state["epoch"]), int(state.get("step", 0))
        for cb, cb_state in zip(self.callbacks, state.get("callbacks") or [], strict=False):
            cb.load_state_dict(cb_state)

    def objective(self, aux_weights: Mapping[str, float], mixup: float, train_loaders: Any) -> nn.Module:
        """The loss module of a batch, wrapped in DistributedDataParallel when the run is distributed."""
        objective: nn.Module = TrainObjective(self.model, self.main_losses, self.aux_losses, aux_weights, mixup)
        if self.dist.enabled:
            _check_schedule(self.dist, train_loaders)
            objective = nn.parallel.DistributedDataParallel(
                objective,
                device_ids=[self.dist.local_rank] if self.dist.backend == "nccl" else None,
                find_unused_parameters=True,  # one domain per batch: the other heads get no gradient
            )
        return objective

    def train_epoch(self, objective: nn.Module, epoch: int, grad_clip: float | None) -> list[float]:
        """One epoch of optimizer steps; the batches' losses (over the whole, possibly split, batches)."""
        objective.train()
        for dl in self.train_loaders.values():
            set_epoch = getattr(dl.batch_sampler, "set_epoch", None)
            if set_epoch is not None:
                set_epoch(epoch)
        self.view.epoch = epoch
        for cb in self.callbacks:
            cb.on_epoch_start(self.view, epoch)
        optimizer, amp, average = self.optimizer, self.amp, self.average
        params = [p for g in optimizer.param_groups for p in g["params"]]
        step_losses: list[torch.Tensor] = []  # on the device: one host sync per epoch, not per step
        for batch in iterate_epoch(self.train_loaders, self.seed * 100_003 + epoch):
            batch = batch.to(self.device, non_blocking=True)
            self.view.step += 1
            for cb in self.callbacks:
                cb.on_step_start(self.view, self.view.step)
            with amp.autocast():
                loss = objective(batch)
            optimizer.zero_grad(set_to_none=True)
            amp.step(loss, optimizer, params, grad_clip)
            if average is not None:
                average.after_step(self.model)
            step_losses.append(loss.detach())
        losses: list[float] = torch.stack(step_losses).float().tolist() if step_losses else []
        if self.dist.enabled:  # each batch's loss over the whole (split) batch
            losses = [v / self.dist.world_size for v in self.dist.sum_floats(losses)]
        return losses

    def validate(
        self, epoch: int, losses: list[float]
    ) -> tuple[nn.Module, dict[str, dict[str, Any]], dict[str, float]]:
        """``(model judged, validation metrics per domain, history row)`` of a finished epoch."""
        if self.average is not None:
            self.average.after_epoch(self.model, epoch)
        judged = self.average.model_to_evaluate(self.model) if self.average is not None else self.model
        val = {
            d: evaluate(
                judged, dl, self.main_losses[d], self.device, self.n_classes[d], dist=self.dist, metrics=self.metrics
            )
            for d, dl in self.val_loaders.items()
        }
        row: dict[str, float] = {
            "epoch": epoch,
            "train_loss": float(np.mean(losses)) if losses else float("nan"),
        }
        for d, m in val.items():
            row[f"val_ua/{d}"] = float(m["ua"])
            row[f"val_wa/{d}"] = float(m["wa"])
            row[f"val_loss/{d}"] = float(m["loss"])
        return judged, val, row

    def select(
        self, epoch: int, judged: nn.Module, val: dict[str, dict[str, Any]], select_by: str, patience: int | None
    ) -> None:
        """Keep this epoch if it is the best so far by ``select_by`` (``last``: always); count stale epochs."""
        metric = selection_metric(select_by, self.metrics)
        score = float(epoch) if metric is None else selection_score(val, metric)  # last: the final epoch
        b = self.best
        if b.state is None or score > b.score:
            b.score, b.epoch, b.val = score, epoch, val
            b.state = copy.deepcopy({k: v.detach().cpu() for k, v in judged.state_dict().items()})
            b.stale = 0
        else:
            b.stale += 1
            b.stopped = patience is not None and b.stale >= patience

    def save_state(self, state_file: Path, epoch: int, start: float) -> None:
        """Rank 0 writes the resumable state of the finished epoch (every rank's RNG states gathered first)."""
        rngs = self.dist.all_gather_object(rng_state())
        if not self.dist.is_main:
            return
        b = self.best
        state = {
            "epoch": epoch,
            "stopped": b.stopped,
            "model": self.model.state_dict(),
            "main_losses": self.main_losses.state_dict(),
            "aux_losses": None if self.aux_losses is None else self.aux_losses.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "average": None if self.average is None else self.average.state_dict(),
            "scaler": self.amp.state_dict(),
            "loaders": {
                d: dl.generator.get_state()
                for d, dl in self.train_loaders.items()
                if getattr(dl, "generator", None) is not None
            },
            "rng": rngs,
            "best_state": b.state,
            "best_score": b.score,
            "best_epoch": b.epoch,
            "best_val": b.val,
            "history": b.history,
            "stale": b.stale,
            "seconds": b.seconds_before + time.perf_counter() - start,
            "world_size": self.dist.world_size,
        }
        if self.callbacks:  # their state, and the step count they see
            state["callbacks"] = [cb.state_dict() for cb in self.callbacks]
            state["step"] = self.view.step
        save_train_state(state_file, state, tag=f"e{epoch:04d}")

    def outcome(self, start: float) -> RunOutcome:
        """Load the selected weights, evaluate the test sets, and gather the run's results."""
        b = self.best
        assert b.state is not None
        model = self.model
        model.load_state_dict(b.state)
        embeddings: dict[str, dict[str, np.ndarray]] = {d: {} for d in self.test_loaders}
        test = {
            d: evaluate(
                model, dl, self.main_losses[d], self.device, self.n_classes[d], embeddings[d], dist=self.dist,
                metrics=self.metrics,
            )
            for d, dl in self.test_loaders.items()
        }
        summary = getattr(model.fusion, "summary", None)
        fusion_summary = summary() if callable(summary) else {}
        encoder_summaries = {
            sid: enc.summary() for sid, enc in model.encoders.items() if callable(getattr(enc, "summary", None))
        }
        return RunOutcome(
            b.epoch,
            b.history,
            b.val,
            test,
            b.state,
            b.seconds_before + time.perf_counter() - start,
            fusion_summary,
            embeddings,
            b.first_epoch - 1,
            encoders=encoder_summaries,
        )


def train_run(
    model: SerModel,
    main_losses: nn.ModuleDict,
    aux_losses: nn.ModuleDict | None,
    aux_weights: Mapping[str, float],
    optimizer: torch.optim.Optimizer,
    train_loaders: Mapping[str, DataLoader],
    val_loaders: Mapping[str, DataLoader],
    test_loaders: Mapping[str, DataLoader],
    *,
    epochs: int,
    select_by: str,
    grad_clip: float | None,
    patience: int | None,
    device: torch.device,
    seed: int,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    dist: DistContext = SINGLE,
    state_file: Path | None = None,
    resume: bool = False,
    mixup: float = 0.0,
    average: WeightAverage | None = None,
    precision: str = "fp32",
    metrics: Mapping[str, Metric] | None = None,
    callbacks: Sequence[TrainCallback] = (),
) -> RunOutcome:
    """Train ``model`` and return its test metrics at the best validation epoch.

    Args:
        select_by: ``val_<metric>`` (the mean over domains of a metric of ``metrics``;
            higher or lower is better as the metric says) or ``last`` (the final epoch).
        dist: this process's place in a distributed run; the loaders must serve this
            rank's share (``make_loader(..., rank=, world_size=)``).
        state_file: where rank 0 writes the resumable training state after every epoch
            (``checkpoints/<run id>.last.json``); ``None``: no state is kept.
        resume: continue from ``state_file`` if it holds a valid state (an unreadable or
            corrupt state is reported with a warning and the run starts afresh).
        mixup: alpha of mixup on the stream vectors (:class:`TrainObjective`); 0: off.
        average: weight averaging (EMA / SWA); the averaged model is evaluated, selected
            and returned.
        precision: ``fp32``, ``bf16`` or ``fp16`` training (:class:`serkit.engine.precision.Precision`);
            evaluation runs in float32.
        metrics: the metrics evaluated and selectable (default: the built-in ones,
            :data:`serkit.interfaces.metric.BUILTIN_METRICS`; a run passes the registry's).
        callbacks: training callbacks (:class:`serkit.interfaces.callback.TrainCallback`),
            called in this order; their state is part of the resumable training state.
    """
    start = time.perf_counter()
    model.to(device)
    main_losses.to(device)
    if aux_losses is not None:
        aux_losses.to(device)
    metrics = {m.name: m for m in BUILTIN_METRICS} if metrics is None else dict(metrics)
    loop = _Loop(
        model, main_losses, aux_losses, optimizer, (train_loaders, val_loaders, test_loaders), device=device,
        seed=seed, dist=dist, average=average, precision=precision, metrics=metrics, callbacks=callbacks,
        epochs=epochs,
    )
    if dist.enabled and dist.rank > 0:  # own dropout masks per rank; rank 0 keeps the single-process stream
        torch.manual_seed(seed * 1_000_003 + dist.rank)
    state = _load_state(state_file, dist) if resume and state_file is not None else None
    if state is not None and state_file is not None:
        loop.restore(state, state_file)
    objective = loop.objective(aux_weights, mixup, train_loaders)
    for cb in loop.callbacks:
        cb.on_train_start(loop.view)
    for epoch in range(loop.best.first_epoch, epochs + 1):
        if loop.best.stopped:
            break
        losses = loop.train_epoch(objective, epoch, grad_clip)
        judged, val, row = loop.validate(epoch, losses)
        loop.best.history.append(row)
        if on_epoch_end is not None:
            on_epoch_end(epoch, row)
        for cb in loop.callbacks:
            cb.on_epoch_end(loop.view, epoch, row)
        loop.select(epoch, judged, val, select_by, patience)
        if state_file is not None:
            loop.save_state(state_file, epoch, start)
    return loop.outcome(start)


def _load_state(state_file: Path, dist: DistContext) -> dict[str, Any] | None:
    """Rank 0 reads the training state and hands it to the other ranks."""
    state: dict[str, Any] | None = None
    if dist.is_main and state_file.is_file():
        try:
            state = load_train_state(state_file)
        except ModelError as err:
            warnings.warn(f"{err}; this run starts again from epoch 1", UserWarning, stacklevel=3)
    return dist.broadcast_object(state)
