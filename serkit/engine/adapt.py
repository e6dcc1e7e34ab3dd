"""Starting a model from a trained run (``init_from``) and freezing what it brings (``freeze``).

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
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from serkit.errors import ModelError

__all__ = [
    "FreezeGuard",
    "InitReport",
    "InitSource",
    "apply_init",
    "check_compatible",
    "freeze_inherited",
    "load_init_source",
    "merge_heads",
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
    from serkit.export import verify_export
    from serkit.inference import _available_checkpoints, _best_run, _read_json

    root = Path(run).expanduser().resolve()
    if not root.is_dir():
        raise ModelError(f"init_from: {root} is not a folder; expected a run folder written by 'serkit run'")
    verify_export(root)
    ckpt_dir = root / "checkpoints"
    info = _read_json(ckpt_dir / "model.json", "model description")
    for key in ("recipe", "streams", "labels", "head_of"):
        if key not in info:
            raise ModelError(f"{ckpt_dir / 'model.json'}: missing field {key!r}")
    available = _available_checkpoints(ckpt_dir)
    available = [a for a in available if not a.endswith(".last")]
    if not available:
        raise ModelError(f"init_from: {ckpt_dir} has no checkpoints (*.safetensors)")
    if checkpoint == "best":
        checkpoint = _best_run(root, available)
    elif checkpoint not in available:
        raise ModelError(
            f"init_from: unknown checkpoint {checkpoint!r} in {ckpt_dir}; available: best, {', '.join(available)}"
        )
    return InitSource(
        run_dir=root,
        checkpoint=checkpoint,
        recipe=info["recipe"],
        streams=list(info["streams"]),
        labels={d: list(v) for d, v in info["labels"].items()},
        head_of=dict(info["head_of"]),
        weights=load_weights(ckpt_dir / f"{checkpoint}.safetensors"),
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
