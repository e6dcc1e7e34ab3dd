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
from collections.abc import Callable, Mapping
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
    fusion's penalty (``extras["penalty"]``, e.g. the L0 term). Wrapping this module in
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
        penalty = fused.extras.get("penalty")
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
) -> dict[str, Any]:
    """Metrics of ``model`` on one domain's loader.

    When ``collect`` is a dict, the fused representations ``x (N, D)`` and targets
    ``y (N,)`` are stored in it (for t-SNE plots).

    With several ranks (``dist``), each rank's loader serves its part of the set; the
    ranks' predictions, loss sums and gate sums are gathered and every rank returns the
    metrics of the whole set (representations in utterance order).

    Returns ua, wa, macro_f1, confusion, loss, n and, when the fusion reports gate weights
    (``extras["gates"]``, ``(B, M)``), their mean over the utterances as ``gates``.
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
        gates = fused.extras.get("gates")
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
    if gate_sum is not None:
        out["gates"] = [round(float(x), 6) for x in gate_sum / count]
    return out


def _selection_score(val: Mapping[str, Mapping[str, Any]], select_by: str) -> float:
    key = select_by.removeprefix("val_")
    values = [float(m[key]) for m in val.values() if m.get("n")]
    score = float(np.mean(values)) if values else float("nan")
    return -score if key == "loss" else score


def _check_schedule(dist: DistContext, train_loaders: Mapping[str, DataLoader]) -> None:
    """Every rank must take the same number of steps per domain, or DDP deadlocks."""
    counts = {d: len(dl) for d, dl in train_loaders.items()}
    every = dist.all_gather_object(counts)
    if any(c != every[0] for c in every):
        per_rank = "; ".join(f"rank {r}: {c}" for r, c in enumerate(every))
        raise SerkitError(f"distributed training: the ranks disagree on the batches per domain ({per_rank})")


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
) -> RunOutcome:
    """Train ``model`` and return its test metrics at the best validation epoch.

    Args:
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
    """
    start = time.perf_counter()
    model.to(device)
    main_losses.to(device)
    if aux_losses is not None:
        aux_losses.to(device)
    n_classes = {d: len(model.labels[d]) for d in model.labels}
    amp = Precision(precision, device)
    best_score = -math.inf
    best_epoch = 0
    best_state: dict[str, torch.Tensor] | None = None
    best_val: dict[str, dict[str, Any]] = {}
    history: list[dict[str, float]] = []
    stale = 0
    first_epoch, stopped, seconds_before = 1, False, 0.0
    if dist.enabled and dist.rank > 0:  # own dropout masks per rank; rank 0 keeps the single-process stream
        torch.manual_seed(seed * 1_000_003 + dist.rank)
    state = _load_state(state_file, dist) if resume and state_file is not None else None
    if state is not None:
        model.load_state_dict(state["model"])
        main_losses.load_state_dict(state["main_losses"])
        if aux_losses is not None and state["aux_losses"] is not None:
            aux_losses.load_state_dict(state["aux_losses"])
        optimizer.load_state_dict(state["optimizer"])
        if average is not None and state.get("average") is not None:
            average.load_state_dict(state["average"])
        amp.load_state_dict(state.get("scaler"))
        for d, gen_state in state["loaders"].items():
            gen = getattr(train_loaders.get(d), "generator", None)
            if gen is not None:
                gen.set_state(gen_state)
        rngs = state["rng"]
        if len(rngs) != dist.world_size and dist.is_main:
            warnings.warn(
                f"{state_file}: saved by {len(rngs)} process(es), resumed by {dist.world_size}; the random "
                "streams differ from an uninterrupted run from here on",
                UserWarning,
                stacklevel=2,
            )
        set_rng_state(rngs[dist.rank % len(rngs)])
        best_score, best_epoch, best_val = float(state["best_score"]), int(state["best_epoch"]), state["best_val"]
        best_state, history, stale = state["best_state"], state["history"], int(state["stale"])
        first_epoch, stopped, seconds_before = int(state["epoch"]) + 1, bool(state["stopped"]), state["seconds"]
    objective: nn.Module = TrainObjective(model, main_losses, aux_losses, aux_weights, mixup)
    if dist.enabled:
        _check_schedule(dist, train_loaders)
        objective = nn.parallel.DistributedDataParallel(
            objective,
            device_ids=[dist.local_rank] if dist.backend == "nccl" else None,
            find_unused_parameters=True,  # one domain per batch: the other heads get no gradient
        )
    for epoch in range(first_epoch, epochs + 1):
        if stopped:
            break
        objective.train()
        for dl in train_loaders.values():
            set_epoch = getattr(dl.batch_sampler, "set_epoch", None)
            if set_epoch is not None:
                set_epoch(epoch)
        params = [p for g in optimizer.param_groups for p in g["params"]]
        step_losses: list[torch.Tensor] = []  # on the device: one host sync per epoch, not per step
        for batch in iterate_epoch(train_loaders, seed * 100_003 + epoch):
            batch = batch.to(device, non_blocking=True)
            with amp.autocast():
                loss = objective(batch)
            optimizer.zero_grad(set_to_none=True)
            amp.step(loss, optimizer, params, grad_clip)
            if average is not None:
                average.after_step(model)
            step_losses.append(loss.detach())
        losses: list[float] = torch.stack(step_losses).float().tolist() if step_losses else []
        if dist.enabled:  # each batch's loss over the whole (split) batch
            losses = [v / dist.world_size for v in dist.sum_floats(losses)]
        if average is not None:
            average.after_epoch(model, epoch)
        judged = average.model_to_evaluate(model) if average is not None else model
        val = {
            d: evaluate(judged, dl, main_losses[d], device, n_classes[d], dist=dist)
            for d, dl in val_loaders.items()
        }
        row: dict[str, float] = {
            "epoch": epoch,
            "train_loss": float(np.mean(losses)) if losses else float("nan"),
        }
        for d, m in val.items():
            row[f"val_ua/{d}"] = float(m["ua"])
            row[f"val_wa/{d}"] = float(m["wa"])
            row[f"val_loss/{d}"] = float(m["loss"])
        history.append(row)
        if on_epoch_end is not None:
            on_epoch_end(epoch, row)
        score = float(epoch) if select_by == "last" else _selection_score(val, select_by)  # last: the final epoch
        if best_state is None or score > best_score:
            best_score, best_epoch, best_val = score, epoch, val
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in judged.state_dict().items()})
            stale = 0
        else:
            stale += 1
            stopped = patience is not None and stale >= patience
        if state_file is not None:
            rngs = dist.all_gather_object(rng_state())
            if dist.is_main:
                save_train_state(
                    state_file,
                    {
                        "epoch": epoch,
                        "stopped": stopped,
                        "model": model.state_dict(),
                        "main_losses": main_losses.state_dict(),
                        "aux_losses": None if aux_losses is None else aux_losses.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "average": None if average is None else average.state_dict(),
                        "scaler": amp.state_dict(),
                        "loaders": {
                            d: dl.generator.get_state()
                            for d, dl in train_loaders.items()
                            if getattr(dl, "generator", None) is not None
                        },
                        "rng": rngs,
                        "best_state": best_state,
                        "best_score": best_score,
                        "best_epoch": best_epoch,
                        "best_val": best_val,
                        "history": history,
                        "stale": stale,
                        "seconds": seconds_before + time.perf_counter() - start,
                        "world_size": dist.world_size,
                    },
                    tag=f"e{epoch:04d}",
                )
    assert best_state is not None
    model.load_state_dict(best_state)
    embeddings: dict[str, dict[str, np.ndarray]] = {d: {} for d in test_loaders}
    test = {
        d: evaluate(model, dl, main_losses[d], device, n_classes[d], embeddings[d], dist=dist)
        for d, dl in test_loaders.items()
    }
    summary = getattr(model.fusion, "summary", None)
    fusion_summary = summary() if callable(summary) else {}
    encoder_summaries = {
        sid: enc.summary() for sid, enc in model.encoders.items() if callable(getattr(enc, "summary", None))
    }
    return RunOutcome(
        best_epoch,
        history,
        best_val,
        test,
        best_state,
        seconds_before + time.perf_counter() - start,
        fusion_summary,
        embeddings,
        first_epoch - 1,
        encoders=encoder_summaries,
    )


def _load_state(state_file: Path, dist: DistContext) -> dict[str, Any] | None:
    """Rank 0 reads the training state and hands it to the other ranks."""
    state: dict[str, Any] | None = None
    if dist.is_main and state_file.is_file():
        try:
            state = load_train_state(state_file)
        except ModelError as err:
            warnings.warn(f"{err}; this run starts again from epoch 1", UserWarning, stacklevel=3)
    return dist.broadcast_object(state)
