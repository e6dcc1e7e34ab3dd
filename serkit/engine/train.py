"""One training run: epochs over interleaved domain batches, val-based selection, test."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from serkit.engine.data import iterate_epoch
from serkit.engine.model import SerModel
from serkit.metrics.functional import classification_metrics

__all__ = ["RunOutcome", "evaluate", "train_run"]


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


@torch.no_grad()
def evaluate(
    model: SerModel,
    loader: DataLoader,
    main_loss: nn.Module,
    device: torch.device,
    n_classes: int,
    collect: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Metrics of ``model`` on one domain's loader.

    When ``collect`` is a dict, the fused representations ``x (N, D)`` and targets
    ``y (N,)`` are stored in it (for t-SNE plots).

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
) -> RunOutcome:
    """Train ``model`` and return its test metrics at the best validation epoch."""
    start = time.perf_counter()
    model.to(device)
    main_losses.to(device)
    if aux_losses is not None:
        aux_losses.to(device)
    n_classes = {d: len(model.labels[d]) for d in model.labels}
    best_score = -math.inf
    best_epoch = 0
    best_state: dict[str, torch.Tensor] | None = None
    best_val: dict[str, dict[str, Any]] = {}
    history: list[dict[str, float]] = []
    stale = 0
    for epoch in range(1, epochs + 1):
        model.train()
        for dl in train_loaders.values():
            set_epoch = getattr(dl.batch_sampler, "set_epoch", None)
            if set_epoch is not None:
                set_epoch(epoch)
        losses: list[float] = []
        for batch in iterate_epoch(train_loaders, seed * 100_003 + epoch):
            batch = batch.to(device)
            logits, fused = model(batch)
            loss = main_losses[batch.domain](logits, batch.targets, fused.representation)
            if aux_losses is not None and aux_weights.get(batch.domain, 0.0) > 0:
                aux = aux_losses[batch.domain](logits, batch.targets, fused.representation)
                loss = loss + aux_weights[batch.domain] * aux
            penalty = fused.extras.get("penalty")
            if penalty is not None:
                loss = loss + penalty
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip is not None:
                params = [p for g in optimizer.param_groups for p in g["params"]]
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
            optimizer.step()
            losses.append(float(loss.detach()))
        val = {
            d: evaluate(model, dl, main_losses[d], device, n_classes[d])
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
        score = _selection_score(val, select_by)
        if best_state is None or score > best_score:
            best_score, best_epoch, best_val = score, epoch, val
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
            stale = 0
        else:
            stale += 1
            if patience is not None and stale >= patience:
                break
    assert best_state is not None
    model.load_state_dict(best_state)
    embeddings: dict[str, dict[str, np.ndarray]] = {d: {} for d in test_loaders}
    test = {
        d: evaluate(model, dl, main_losses[d], device, n_classes[d], embeddings[d])
        for d, dl in test_loaders.items()
    }
    summary = getattr(model.fusion, "summary", None)
    fusion_summary = summary() if callable(summary) else {}
    return RunOutcome(
        best_epoch, history, best_val, test, best_state, time.perf_counter() - start, fusion_summary, embeddings
    )
