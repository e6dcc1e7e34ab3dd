"""The run-level glue of ``init_from``: resolving the initial run for a recipe, loading and
freezing it in each (repeat, fold) model, the zero-shot baseline, and the summary that goes
into ``results.json``. The mechanism itself is in :mod:`serkit.engine.adapt`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from serkit.errors import SerkitError

__all__ = ["init_source_for", "init_summary", "start_from", "zero_shot", "zero_shot_baseline"]


def init_source_for(recipe: Any, registry: Any, source: str) -> tuple[Any, Any] | None:
    """``(InitSource, recipe with the run's heads merged in)`` when the recipe has ``init_from``."""
    from serkit.config.recipe import validate_recipe_data
    from serkit.engine.adapt import check_compatible, load_init_source, merge_heads

    bad = [f"domains.{d}.fusion_from" for d, spec in recipe.domains.items() if spec.fusion_from]
    if recipe.init_from is None:
        if recipe.freeze or bad:
            fields = (["freeze"] if recipe.freeze else []) + bad
            raise SerkitError(f"{source}: {', '.join(fields)} need init_from (a trained run to start from)")
        return None
    init = load_init_source(recipe.init_from.run, recipe.init_from.checkpoint)
    check_compatible(recipe, init)
    for d, spec in recipe.domains.items():
        if spec.fusion_from and spec.fusion_from not in init.labels:
            raise SerkitError(
                f"{source}: domains.{d}.fusion_from: {spec.fusion_from!r} is not a domain of {init.run_dir}; "
                f"its domains: {', '.join(init.domains)}"
            )
        if spec.fusion_from and d in init.labels:
            raise SerkitError(f"{source}: domains.{d}.fusion_from: {d!r} is already a domain of {init.run_dir}")
    merged = merge_heads(recipe.model_dump(mode="json"), init)
    return init, validate_recipe_data(merged, source=source, registry=registry)


def start_from(recipe: Any, init: Any, model: Any, domain_order: list[str]) -> tuple[Any, dict[str, Any]]:
    """Load the initial run into ``model`` and freeze what the recipe names."""
    from serkit.engine.adapt import apply_init, freeze_inherited

    fusion_from = {d: spec.fusion_from for d, spec in recipe.domains.items() if spec.fusion_from}
    report = apply_init(model, init, domain_order, fusion_from)
    guard = freeze_inherited(model, report, recipe.freeze) if recipe.freeze else None
    info: dict[str, Any] = {
        "run": str(init.run_dir),
        "checkpoint": init.checkpoint,
        "loaded": len(report.whole) + len(report.rows),
        "fresh": len(report.fresh),
    }
    return guard, info


def zero_shot_baseline(
    model: Any,
    init: Any,
    domains: Mapping[str, Any],
    val_l: dict[str, Any],
    test_l: dict[str, Any],
    model_labels: dict[str, list[str]],
    device: Any,
) -> dict[str, Any]:
    """The initial model's inherited heads on each new domain (before any training)."""
    out: dict[str, Any] = {}
    sources = {d: model_labels[d] for d in init.domains}
    for d, dd in domains.items():
        if d in init.labels or d not in val_l or d not in test_l:
            continue
        res = zero_shot(model, {"val": val_l[d], "test": test_l[d]}, dd.labels, sources, device)
        if res:
            out[d] = res
    return out


def init_summary(recipe: Any, init: Any, outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    """results.json's ``init_from``: frozen check, zero-shot baseline, the old domains' tests."""
    from serkit.metrics.aggregate import mean_std

    checks = [o["init"]["frozen"] for o in outcomes if "frozen" in o.get("init", {})]
    zero: dict[str, Any] = {}
    for d in {d for o in outcomes for d in o.get("init", {}).get("zero_shot", {})}:
        zs = [o["init"]["zero_shot"][d] for o in outcomes if d in o.get("init", {}).get("zero_shot", {})]
        zero[d] = {
            "sources": sorted({z["source"] for z in zs}),
            "labels": zs[0]["labels"],
            "ua": mean_std([z["test"]["ua"] for z in zs]),
            "wa": mean_std([z["test"]["wa"] for z in zs]),
        }
    old: dict[str, Any] = {}
    try:
        prior = json.loads((init.run_dir / "results.json").read_text(encoding="utf-8"))
        run = next(r for r in prior.get("runs", []) if r.get("id") == init.checkpoint)
        old = {d: {"ua": float(m["ua"]), "wa": float(m["wa"])} for d, m in run.get("test", {}).items()}
    except (OSError, ValueError, StopIteration):
        pass
    parts = set(recipe.freeze)
    return {
        "run": str(init.run_dir),
        "checkpoint": init.checkpoint,
        "freeze": list(recipe.freeze),
        "frozen": {"runs": len(outcomes), "identical": int(np.sum([c["identical"] for c in checks]))}
        if checks
        else {},
        "zero_shot": zero,
        "old_domains": old,
        "old_unchanged": {"encoders", "fusion", "heads"} <= parts,
    }


def _shared(target_labels: Sequence[str], labels: Sequence[str]) -> list[str]:
    """The new domain's labels that an inherited head also has, in the new domain's order."""
    return [lab for lab in target_labels if lab in labels]


@torch.no_grad()
def zero_shot(
    model: nn.Module,
    loaders: Mapping[str, Any],
    target_labels: Sequence[str],
    sources: Mapping[str, Sequence[str]],
    device: torch.device,
) -> dict[str, Any]:
    """Cross-lingual zero-shot: each inherited domain's gate and head on a new domain's data,
    restricted to the labels both share; the source is chosen by validation UA.

    Args:
        loaders: ``"val"`` / ``"test"`` -> loader of the new domain (targets index
            ``target_labels``; the batch's ``domain`` is ignored).
        target_labels: the new domain's head labels.
        sources: inherited domain -> its head labels.

    Returns:
        ``{"source": best domain, "labels": shared labels, "val": metrics, "test": metrics,
        "candidates": {domain: val UA}}``; ``{}`` when no inherited domain shares two labels.
    """
    from serkit.engine.data import Batch
    from serkit.metrics.functional import classification_metrics

    def run(domain: str, labels: Sequence[str], loader: Any) -> dict[str, Any]:
        shared = _shared(target_labels, labels)
        cols = torch.tensor([list(labels).index(lab) for lab in shared], device=device)
        to_shared = {target_labels.index(lab): i for i, lab in enumerate(shared)}
        y_true: list[np.ndarray] = []
        y_pred: list[np.ndarray] = []
        for batch in loader:
            keep = [i for i, t in enumerate(batch.targets.tolist()) if t in to_shared]
            if not keep:
                continue
            batch = batch.to(device)
            logits, _ = model(Batch(batch.streams, batch.targets, domain, batch.indices))
            sel = torch.tensor(keep, device=device)
            pred = logits[sel][:, cols].argmax(dim=1).cpu().numpy()
            y_pred.append(pred)
            y_true.append(np.array([to_shared[batch.targets[i].item()] for i in keep]))
        if not y_true:
            return {"ua": float("nan"), "wa": float("nan"), "n": 0}
        out = classification_metrics(np.concatenate(y_true), np.concatenate(y_pred), len(shared))
        out["n"] = int(sum(len(y) for y in y_true))
        return out

    was_training = model.training
    model.eval()
    candidates: dict[str, float] = {}
    best: str | None = None
    for domain, labels in sources.items():
        if len(_shared(target_labels, labels)) < 2:
            continue
        val = run(domain, labels, loaders["val"])
        candidates[domain] = float(val["ua"])
        if best is None or (np.isfinite(val["ua"]) and val["ua"] > candidates.get(best, -np.inf)):
            best = domain
    result: dict[str, Any] = {}
    if best is not None:
        labels = sources[best]
        result = {
            "source": best,
            "labels": _shared(target_labels, labels),
            "val": run(best, labels, loaders["val"]),
            "test": run(best, labels, loaders["test"]),
            "candidates": candidates,
        }
    model.train(was_training)
    return result
