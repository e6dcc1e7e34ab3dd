"""Learned layer weights (``weighted_layers`` encoders) in ``results.json`` and ``report.md``.

Each run records its encoders' ``summary()`` under ``runs[i]["encoders"][stream]``; a
``weighted_layers`` network reports ``{"layer_weights": {domain or "*": [w_0, ...]}}`` (the
softmax weights of the selected checkpoint; ``"*"``: one set shared by all domains).
:func:`layer_weight_stats` turns them into ``domains.<d>.layer_weights.<stream>`` =
``{"mean": [...], "std": [...], "shared": bool}`` over the runs: which depth each domain
(language) uses, the paper's Fig. 4 question asked of layers. Their figure is
:func:`serkit.report.plots.plot_layer_weights`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["layer_weight_lines", "layer_weight_stats"]


def layer_weight_stats(domain: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """``{"layer_weights": {stream: {"mean", "std", "shared"}}}`` of ``domain`` over ``runs`` ({} when none).

    A stream is included when every run reports weights for the domain (its own set, or
    the shared ``"*"`` set); std is the sample std over runs (0 for one run).
    """
    if not runs:
        return {}
    out: dict[str, Any] = {}
    for stream in (runs[0].get("encoders") or {}):
        values: list[list[float]] = []
        shared = False
        for r in runs:
            weights = ((r.get("encoders") or {}).get(stream) or {}).get("layer_weights") or {}
            w = weights.get(domain, weights.get("*"))
            if w is None:
                break
            shared = domain not in weights
            values.append([float(x) for x in w])
        else:
            if values and len({len(v) for v in values}) == 1:
                a = np.asarray(values, dtype=float)
                std = a.std(axis=0, ddof=1) if len(a) > 1 else np.zeros(a.shape[1])
                out[stream] = {
                    "mean": [round(float(x), 6) for x in a.mean(axis=0)],
                    "std": [round(float(x), 6) for x in std],
                    "shared": shared,
                }
    return {"layer_weights": out} if out else {}


def layer_weight_lines(results: dict[str, Any]) -> list[str]:
    """The report's 'Layer weights' section: one table per stream, a row per domain ([] when none)."""
    per_stream: dict[str, dict[str, dict[str, Any]]] = {}
    for d, m in results.get("domains", {}).items():
        for stream, lw in (m.get("layer_weights") or {}).items():
            per_stream.setdefault(stream, {})[d] = lw
    if not per_stream:
        return []
    lines = ["## Layer weights (weighted_layers, softmax, mean over runs)", ""]
    for stream, by_domain in per_stream.items():
        n = max(len(lw["mean"]) for lw in by_domain.values())
        shared = all(lw.get("shared") for lw in by_domain.values())
        lines += [
            f"### {stream}" + (" (one set shared by all domains)" if shared else ""),
            "",
            "| domain | " + " | ".join(str(j) for j in range(n)) + " | top layer |",
            "| --- | " + " | ".join("---" for _ in range(n)) + " | --- |",
        ]
        for d, lw in by_domain.items():
            top = int(np.argmax(lw["mean"]))
            lines.append(f"| {d} | " + " | ".join(f"{x:.3f}" for x in lw["mean"]) + f" | {top} |")
        lines.append("")
    lines += ["Layer 0 is the input of the first transformer layer, layer j the output of layer j.", ""]
    return lines
