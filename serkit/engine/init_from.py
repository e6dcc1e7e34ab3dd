"""``init_from``: starting a recipe's model from a trained run, and freezing what it brings (``freeze``).

The new model holds the initial run's domains ("inherited", kept with their gates and
heads, so ``serkit predict --domain <old>`` still works on the adapted run) followed by the
recipe's new domains. Every parameter of the new model is then one of:

- inherited whole (same name and shape in the initial checkpoint);
- inherited in part: fusion tensors stacked over domains, ``(K, ...)``, whose first
  ``K_old`` rows come from the checkpoint and whose new rows are fresh;
- fresh (a new domain's head, gate or NAS connections), or copied from an inherited domain's
  gate and NAS rows (``fusion_from``).

``freeze`` fixes the inherited parameters (and rows) under the named parts; fresh and
copied ones train, unless the part ``fusion.<new domain>`` freezes the copied rows (a
linear probe of an existing domain's fused representation). Frozen whole tensors get
``requires_grad=False``; frozen rows of a stacked tensor get their gradient masked and are
restored after every optimizer step, which also undoes decoupled weight decay, so they
stay bit-identical.

The mechanism (:func:`load_init_source`, :func:`apply_init`, :class:`FreezeGuard`) comes
first; then the run-level glue that :mod:`serkit.engine.run` calls: resolving the initial
run for a recipe (:func:`init_source_for`), loading and freezing it in each (repeat, fold)
model (:func:`start_from`), the zero-shot baseline (:func:`zero_shot_baseline`) and the
summary that goes into ``results.json`` (:func:`init_summary`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from serkit.errors import ModelError, SerkitError

__all__ = [
    "FreezeGuard",
    "InitReport",
    "InitSource",
    "apply_init",
    "check_compatible",
    "freeze_inherited",
    "init_source_for",
    "init_summary",
    "load_init_source",
    "merge_heads",
    "start_from",
    "zero_shot",
    "zero_shot_baseline",
]


@dataclass
class InitSource:
    """A trained run's model, as read by :func:`load_init_source`."""

    run_dir: Path
    checkpoint: str
    recipe: dict[str, Any]
    streams: list[dict[str, Any]]
    labels: dict[str, list[str]]  # domain -> head label list
    head_of: dict[str, str]
    weights: dict[str, torch.Tensor] = field(repr=False)

    @property
    def domains(self) -> list[str]:
        """The initial run's domains, in the order its fusion indexes them."""
        return list(self.labels)


def load_init_source(run: str | Path, checkpoint: str = "best") -> InitSource:
    """Read ``checkpoints/model.json`` and one checkpoint of a run (or exported) folder.

    Raises:
        ModelError: not a run folder, unknown checkpoint, corrupt or tampered files.
    """
    from serkit.engine.checkpoint import load_weights
    from serkit.engine.run_folder import choose_checkpoint, read_model_description, run_checkpoint, verify_export

    root = Path(run).expanduser().resolve()
    if not root.is_dir():
        raise ModelError(f"init_from: {root} is not a folder; expected a run folder written by 'serkit run'")
    verify_export(root)
    info = read_model_description(root / "checkpoints")
    try:
        checkpoint = choose_checkpoint(root, None if checkpoint == "best" else checkpoint)
    except ModelError as err:
        raise ModelError(f"init_from: {err}") from None
    return InitSource(
        run_dir=root,
        checkpoint=checkpoint,
        recipe=info["recipe"],
        streams=list(info["streams"]),
        labels={d: list(v) for d, v in info["labels"].items()},
        head_of=dict(info["head_of"]),
        weights=load_weights(run_checkpoint(root, checkpoint)),
    )


def _diff(a: Any, b: Any, path: str) -> list[str]:
    """Human-readable differences between two JSON-like values."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b), key=str):
            out += _diff(a.get(k), b.get(k), f"{path}.{k}")
        return out
    return [] if a == b else [f"{path}: {a!r} in the run, {b!r} in the recipe"]


def check_compatible(recipe: Any, source: InitSource) -> None:
    """The recipe must have the run's feature streams (same extractors and encoders, same
    order) and the same fusion, since their parameters are loaded.

    Raises:
        ModelError: listing every difference.
    """
    data = recipe.model_dump(mode="json")
    old = source.recipe
    problems: list[str] = []
    old_streams = list(old.get("features") or {})
    new_streams = list(data["features"])
    if old_streams != new_streams:
        problems.append(f"features: the run has streams {old_streams}, the recipe {new_streams}")
    else:
        for sid in old_streams:
            for part in ("extractor", "encoder"):
                was, now = old["features"][sid].get(part), data["features"][sid].get(part)
                problems += _diff(was, now, f"features.{sid}.{part}")
    problems += _diff(old.get("fusion"), data["fusion"], "fusion")
    was = (old.get("data") or {}).get("standardize", "none")
    problems += _diff(was, data["data"]["standardize"], "data.standardize")
    if problems:
        raise ModelError(
            f"init_from {source.run_dir}: the recipe's model does not match the run's:\n"
            + "\n".join(f"  {p}" for p in problems)
            + "\nkeep the run's features and fusion (serkit adapt copies them for you)"
        )


def merge_heads(recipe_data: dict[str, Any], source: InitSource) -> dict[str, Any]:
    """Recipe data whose ``heads`` also describe the inherited heads (as the run built them)."""
    old_heads = source.recipe.get("heads") or {}
    heads = dict(recipe_data.get("heads") or {})
    for h in sorted(set(source.head_of.values())):
        if h not in heads:
            spec = old_heads.get(h) or old_heads.get("default")
            if spec is None:
                raise ModelError(f"init_from {source.run_dir}: the run's recipe has no spec for head {h!r}")
            heads[h] = spec
    return {**recipe_data, "heads": heads}


@dataclass
class InitReport:
    """What :func:`apply_init` loaded.

    Attributes:
        whole: names of parameters/buffers loaded whole.
        rows: names of fusion tensors stacked over domains -> the loaded row indices.
        fresh: names left at their fresh initialisation.
        copied: new domain -> {name: copied rows, or None for a whole tensor} of the
            fusion parameters it took from an inherited domain (``fusion_from``).
    """

    whole: list[str]
    rows: dict[str, list[int]]
    fresh: list[str]
    copied: dict[str, dict[str, list[int] | None]] = field(default_factory=dict)


def _gate_index(name: str) -> tuple[str, int] | None:
    """``fusion.gates.3.weight`` -> (``fusion.gates.{}.weight``, 3)."""
    m = re.match(r"^(fusion\.gates\.)(\d+)(\..+)$", name)
    return (m.group(1) + "{}" + m.group(3), int(m.group(2))) if m else None


def apply_init(
    model: nn.Module,
    source: InitSource,
    domains: Sequence[str],
    fusion_from: Mapping[str, str] | None = None,
) -> InitReport:
    """Load the run's weights into ``model`` (built with ``domains``: the run's domains
    first, in its order, then the new ones).

    Args:
        fusion_from: new domain -> inherited domain whose per-domain fusion parameters
            (gate row, NAS rows) it starts from.

    Raises:
        ModelError: a tensor's shape does not fit, or the run has weights the model lacks.
    """
    old = source.domains
    if list(domains[: len(old)]) != old:
        raise ModelError(f"init_from: the model's domains must start with the run's {old}; got {list(domains)}")
    index = {d: i for i, d in enumerate(domains)}
    copy_from = {index[d]: old.index(o) for d, o in (fusion_from or {}).items()}
    domain_at = {i: d for i, d in enumerate(domains)}
    state = model.state_dict()
    new_state: dict[str, torch.Tensor] = {}
    report = InitReport([], {}, [])
    for name, tensor in state.items():
        src = source.weights.get(name)
        gate = _gate_index(name)
        if src is None and gate is not None and gate[1] in copy_from:
            src_name = gate[0].format(copy_from[gate[1]])
            if src_name in source.weights and source.weights[src_name].shape == tensor.shape:
                new_state[name] = source.weights[src_name].clone()
                report.copied.setdefault(domain_at[gate[1]], {})[name] = None
                continue
        if src is None:
            report.fresh.append(name)
            new_state[name] = tensor
            continue
        if src.shape == tensor.shape:
            new_state[name] = src.clone().to(tensor.dtype)
            report.whole.append(name)
            continue
        stacked = (
            name.startswith("fusion.")
            and src.dim() == tensor.dim() >= 1
            and src.shape[1:] == tensor.shape[1:]
            and src.shape[0] == len(old)
            and tensor.shape[0] == len(domains)
        )
        if not stacked:
            raise ModelError(
                f"init_from {source.run_dir}: weight {name} has shape {tuple(src.shape)} in checkpoint "
                f"{source.checkpoint} but {tuple(tensor.shape)} in this model"
            )
        merged = tensor.clone()
        merged[: len(old)] = src.to(tensor.dtype)
        for new_i, old_i in copy_from.items():
            merged[new_i] = src[old_i].to(tensor.dtype)
            report.copied.setdefault(domain_at[new_i], {})[name] = [new_i]
        new_state[name] = merged
        report.rows[name] = list(range(len(old)))
    unused = sorted(set(source.weights) - set(state))
    if unused:
        raise ModelError(
            f"init_from {source.run_dir}: checkpoint {source.checkpoint} has weights this model lacks: "
            + ", ".join(unused[:8])
            + (" ..." if len(unused) > 8 else "")
        )
    model.load_state_dict(new_state)
    return report


def _part_matches(name: str, part: str) -> bool:
    return name == part or name.startswith(part + ".")


class FreezeGuard:
    """Keeps the frozen inherited parameters, rows and buffers of a model fixed.

    Attach with :meth:`attach` (an optimizer step post-hook), check with :meth:`verify`.
    """

    def __init__(self, model: nn.Module, report: InitReport, parts: Sequence[str]) -> None:
        self.model = model
        self.parts = list(parts)
        params = dict(model.named_parameters())
        buffers = dict(model.named_buffers())
        inherited = set(report.whole) | set(report.rows)
        # a part names a module of the model (encoders without weights, e.g. mean pooling, are fine)
        modules = {n for n, _ in model.named_modules() if n.count(".") <= 1 and n}
        copied = {f"fusion.{d}": names for d, names in report.copied.items()}
        for part in self.parts:
            if part not in modules and part not in copied and not any(_part_matches(n, part) for n in inherited):
                prefixes = sorted(n for n in modules if not n.startswith(("encoders.", "heads.")) or n.count(".") == 1)
                prefixes = [n for n in prefixes if n.split(".")[0] in ("encoders", "fusion", "heads")] + list(copied)
                raise ModelError(
                    f"freeze: {part!r} matches no part of the model loaded by init_from; parts: {', '.join(prefixes)}"
                )
        self.whole: dict[str, torch.Tensor] = {}
        self.rows: dict[str, tuple[list[int], torch.Tensor]] = {}
        self._hooks: dict[str, Any] = {}
        self.buffers: dict[str, torch.Tensor] = {}
        for name in report.whole:
            if not any(_part_matches(name, p) for p in self.parts):
                continue
            if name in params:
                params[name].requires_grad_(False)
                self.whole[name] = params[name].detach().clone()
            elif name in buffers:
                self.buffers[name] = buffers[name].detach().clone()
        for name, rows in report.rows.items():
            if not any(_part_matches(name, p) for p in self.parts) or name not in params:
                continue
            self._freeze_rows(params[name], name, rows)
        for part in self.parts:  # fusion.<new domain>: the rows it copied (fusion_from)
            for name, rows in copied.get(part, {}).items():
                if rows is None:
                    params[name].requires_grad_(False)
                    self.whole[name] = params[name].detach().clone()
                else:
                    self._freeze_rows(params[name], name, sorted(set(rows) | set(self.rows.get(name, ([], None))[0])))

    def _freeze_rows(self, p: nn.Parameter, name: str, rows: list[int]) -> None:
        if name in self.rows:  # one mask per tensor: drop the earlier hook's rows into the new set
            self._hooks.pop(name).remove()
        mask = torch.ones_like(p)
        mask[rows] = 0
        self._hooks[name] = p.register_hook(lambda g, _m=mask: g * _m.to(g.device))
        self.rows[name] = (rows, p.detach()[rows].clone())

    @property
    def n_frozen(self) -> int:
        """Number of frozen scalars (whole tensors and rows)."""
        return sum(t.numel() for t in self.whole.values()) + sum(t.numel() for _, t in self.rows.values())

    @torch.no_grad()
    def restore(self) -> None:
        """Put frozen rows and buffers back (after an optimizer step or a train-mode forward)."""
        params = dict(self.model.named_parameters())
        buffers = dict(self.model.named_buffers())
        for name, (rows, saved) in self.rows.items():
            p = params[name]
            p[rows] = saved.to(p.device, p.dtype)
        for name, saved in self.buffers.items():
            buffers[name].copy_(saved.to(buffers[name].device))

    def attach(self, optimizer: torch.optim.Optimizer) -> None:
        """Restore after every ``optimizer.step()``."""
        optimizer.register_step_post_hook(lambda *_: self.restore())

    @torch.no_grad()
    def verify(self, state: Mapping[str, torch.Tensor] | None = None) -> dict[str, Any]:
        """Compare the frozen values with the snapshot taken when freezing.

        Returns:
            ``{"tensors": n, "scalars": n, "identical": bool, "changed": [names]}``.
        """
        state = dict(state) if state is not None else self.model.state_dict()
        changed = [n for n, v in self.whole.items() if not torch.equal(state[n].cpu(), v.cpu())]
        changed += [n for n, v in self.buffers.items() if not torch.equal(state[n].cpu(), v.cpu())]
        changed += [n for n, (rows, v) in self.rows.items() if not torch.equal(state[n][rows].cpu(), v.cpu())]
        return {
            "tensors": len(self.whole) + len(self.rows) + len(self.buffers),
            "scalars": self.n_frozen,
            "identical": not changed,
            "changed": changed,
        }


def freeze_inherited(model: nn.Module, report: InitReport, parts: Sequence[str]) -> FreezeGuard:
    """Freeze the inherited parameters under ``parts`` (see :class:`FreezeGuard`)."""
    return FreezeGuard(model, report, parts)


# -- the run-level glue --------------------------------------------------------------


def init_source_for(recipe: Any, registry: Any, source: str) -> tuple[Any, Any] | None:
    """``(InitSource, recipe with the run's heads merged in)`` when the recipe has ``init_from``."""
    from serkit.config.recipe import validate_recipe_data

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
