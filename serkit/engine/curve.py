"""Adapting a trained run to a new domain, and the learning curve of few-shot methods.

``adaptation_recipe`` turns a trained run plus a new dataset into a recipe (what
``serkit adapt`` runs). ``learning_curve`` runs, for every K labelled training utterances
per class, the methods

- ``adapt``: the trained run's encoders and fusion, frozen; the new domain's gate and NAS
  connections (fresh, or started from ``fusion_from``'s) and its head trained on the K shots;
- ``scratch``: the same architecture trained from random weights on the K shots only;
- ``probe``: a linear classifier on the frozen fused representation of the existing domain
  ``fusion_from`` — the linear-probe baseline;
- ``zero_shot``: no training on the new domain; the existing domain's head whose labels
  overlap (best validation UA) is applied to the new domain, on the labels both share;

and writes ``curve.json``, ``curve.md``, ``curve.csv`` and ``curve.png`` (UA vs K with
error bars, one line per method). All methods of a K see the same speaker-independent
test split; every repeat draws new shots.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from serkit.errors import SerkitError
from serkit.io import atomic_write_json, atomic_write_text

__all__ = ["METHODS", "adaptation_recipe", "learning_curve", "parse_shots"]

METHODS = ("adapt", "scratch", "probe", "zero_shot")
DEFAULT_FREEZE = ("encoders", "fusion", "heads")


def parse_shots(text: str) -> list[int | None]:
    """``"5,10,all"`` -> ``[5, 10, None]`` (None: every training utterance)."""
    out: list[int | None] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if part == "all":
            out.append(None)
            continue
        try:
            k = int(part)
        except ValueError:
            k = 0
        if k < 1:
            raise SerkitError(f"--shots: expected positive integers or 'all' separated by commas, got {part!r}")
        out.append(k)
    if not out:
        raise SerkitError("--shots: no value given")
    return out


def adaptation_recipe(
    run: str | Path,
    domain: str,
    dataset: dict[str, Any],
    *,
    shots: int | None = None,
    freeze: Sequence[str] = DEFAULT_FREEZE,
    checkpoint: str = "best",
    fusion_from: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """Recipe data that starts from ``run`` and adds ``domain`` (its dataset spec).

    The run's features, fusion, heads, losses, optimizer, training loop, protocol, seed
    and repeats are kept; its domains are replaced by the new one.

    Raises:
        ModelError: ``run`` is not a readable run folder.
        SerkitError: ``domain`` is already a domain of the run.
    """
    from serkit.engine.init_from import load_init_source

    source = load_init_source(run, checkpoint)
    if domain in source.labels:
        raise SerkitError(
            f"--domain {domain!r} is already a domain of {source.run_dir} ({', '.join(source.domains)}); "
            "pick a new domain id"
        )
    data = json.loads(json.dumps(source.recipe))
    for key in ("init_from", "freeze"):
        data.pop(key, None)
    spec: dict[str, Any] = {"dataset": dict(dataset)}
    if shots is not None:
        spec["shots"] = int(shots)
    if fusion_from is not None:
        spec["fusion_from"] = fusion_from
    data["domains"] = {domain: spec}
    data["name"] = name or f"{data.get('name', 'run')}-adapt-{domain}"
    data["description"] = f"New domain {domain} ({dataset.get('type')}) added to {source.run_dir}."
    data["init_from"] = {"run": str(source.run_dir), "checkpoint": source.checkpoint}
    data["freeze"] = list(freeze)
    proto = data.get("protocol") or {}
    if proto.get("type") in ("cross_corpus", "cross_lingual"):  # the new domain is trained and tested on itself
        data["protocol"] = {"type": "speaker", "k": 4}
    return data


def _method_recipe(base: dict[str, Any], method: str, domain: str, shots: int | None, fusion_from: str | None) -> Any:
    data = json.loads(json.dumps(base))
    spec = data["domains"][domain]
    spec.pop("shots", None)
    if shots is not None:
        spec["shots"] = shots
    if method == "scratch":
        data.pop("init_from", None)
        data.pop("freeze", None)
        spec.pop("fusion_from", None)
        keep = {"default", spec.get("head") or domain}
        data["heads"] = {h: v for h, v in (data.get("heads") or {}).items() if h in keep}
    elif method == "probe":
        data["freeze"] = [*DEFAULT_FREEZE, f"fusion.{domain}"]
        spec["fusion_from"] = fusion_from
        heads = dict(data.get("heads") or {})
        heads[domain] = {"type": "mlp", "hidden": [], "activations": [], "dropout": 0.0}
        data["heads"] = heads
    elif fusion_from is not None:  # adapt: the new gate/NAS start from fusion_from's and train
        spec["fusion_from"] = fusion_from
    data["name"] = f"{data['name']}-{method}-k{shots if shots is not None else 'all'}"
    return data


def _runs_of(run_dir: Path) -> list[dict[str, Any]]:
    from serkit.engine.run_folder import run_records

    return [json.loads(p.read_text(encoding="utf-8")) for p in run_records(run_dir)]


def _stats(values: list[float]) -> dict[str, Any]:
    """Mean and sample std (as in the run reports) of the finite values, and their count."""
    from serkit.metrics.aggregate import mean_std

    vals = [v for v in values if math.isfinite(v)]
    if not vals:
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    out = mean_std(vals)
    return {"mean": out["mean"], "std": out["std"], "n": len(vals), "values": out["values"]}


def _k_name(k: int | None) -> str:
    return "all" if k is None else str(k)


def learning_curve(
    base: dict[str, Any],
    domain: str,
    shots: Sequence[int | None],
    out: Path,
    *,
    methods: Sequence[str] = METHODS,
    fusion_from: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run every (K, method) into ``out/k<K>/<method>/`` (finished ones are kept) and
    write the curve files. ``base`` is an adaptation recipe (see :func:`adaptation_recipe`).

    Returns:
        the curve: ``{"domain", "shots", "methods", "protocol", "repeats", "ua": {method:
        {K: {"mean", "std", "n"}}}, "wa": ..., "zero_shot_source": {K: [...]}}``.
    """
    from serkit.config.recipe import validate_recipe_data
    from serkit.engine.run import run_recipe

    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SerkitError(f"--methods: unknown {unknown}; available: {', '.join(METHODS)}")
    if "init_from" not in base or domain not in base.get("domains", {}):
        raise SerkitError(f"learning_curve: the base recipe must have init_from and the domain {domain!r}")
    if "probe" in methods and fusion_from is None:
        raise SerkitError(
            "the probe method needs --fusion-from DOMAIN (an existing domain whose representation it reads)"
        )
    trained = [m for m in methods if m != "zero_shot"]
    if "zero_shot" in methods and "adapt" not in trained:
        trained.insert(0, "adapt")  # zero-shot numbers come from the adapt runs (measured before training)
    curve: dict[str, Any] = {
        "domain": domain,
        "shots": [_k_name(k) for k in shots],
        "methods": list(methods),
        "protocol": base.get("protocol"),
        "repeats": base.get("repeats", 1),
        "init_from": base["init_from"],
        "fusion_from": fusion_from,
        "ua": {m: {} for m in methods},
        "wa": {m: {} for m in methods},
        "zero_shot_source": {},
        "runs": {},
    }
    out.mkdir(parents=True, exist_ok=True)
    for k in shots:
        kn = _k_name(k)
        for method in trained:
            data = _method_recipe(base, method, domain, k, fusion_from)
            recipe = validate_recipe_data(data, source=f"learning-curve {method} K={kn}")
            run_dir = out / f"k{kn}" / method
            if not (run_dir / "results.json").is_file():
                resume = run_dir.is_dir() and any(run_dir.iterdir())
                source = f"learning-curve {method} K={kn}"
                run_recipe(recipe, out=run_dir, source=source, progress=progress, resume=resume)
            runs = _runs_of(run_dir)
            curve["runs"][f"k{kn}/{method}"] = str(run_dir)
            if "chance" not in curve:
                labels = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))["domains"][domain]["labels"]
                curve["chance"] = 1.0 / len(labels)
            if method in methods:
                for metric in ("ua", "wa"):
                    curve[metric][method][kn] = _stats([float(r["test"][domain][metric]) for r in runs])
            if method == "adapt" and "zero_shot" in methods:
                zs = [r.get("init", {}).get("zero_shot", {}).get(domain) for r in runs]
                zs = [z for z in zs if z]
                for metric in ("ua", "wa"):
                    curve[metric]["zero_shot"][kn] = _stats([float(z["test"][metric]) for z in zs])
                curve["zero_shot_source"][kn] = sorted({z["source"] for z in zs})
        atomic_write_json(out / "curve.json", curve)  # partial curves survive an interruption
    write_curve(out, curve)
    return curve


def curve_table(curve: dict[str, Any], fmt: str = "markdown", metric: str = "ua") -> str:
    """Rows = methods, columns = K; cells ``mean ± std`` of ``metric``."""
    ks = curve["shots"]
    rows = []
    for m in curve["methods"]:
        cells = []
        for k in ks:
            s = curve[metric][m].get(k)
            cells.append("" if not s or not s["n"] else f"{s['mean']:.4f} ± {s['std']:.4f}")
        rows.append([m, *cells])
    header = ["method", *[f"K={k}" for k in ks]]
    if fmt == "csv":
        import csv
        import io

        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(header)
        w.writerows(rows)
        return buf.getvalue()
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_curve(out: Path, curve: dict[str, Any]) -> None:
    """``curve.json``, ``curve.md`` (UA and WA tables), ``curve.csv`` (UA) and ``curve.png``."""
    from serkit.io import atomic_write_bytes

    atomic_write_json(out / "curve.json", curve)
    proto = curve.get("protocol") or {}
    note = ""
    if curve["zero_shot_source"]:
        srcs = sorted({s for v in curve["zero_shot_source"].values() for s in v})
        note = f"\nzero_shot: the head of {', '.join(srcs)} (chosen by validation UA), on the shared labels only.\n"
    text = (
        f"# Learning curve: domain {curve['domain']}\n\n"
        f"Start: {curve['init_from']}. Protocol: {proto.get('type', '?')} "
        f"({json.dumps(proto)}), repeats {curve['repeats']}; mean ± sample std over repeats x folds; "
        "K = labelled training utterances per class.\n"
        f"{note}\n## UA\n\n{curve_table(curve, 'markdown', 'ua')}\n## WA\n\n{curve_table(curve, 'markdown', 'wa')}"
    )
    atomic_write_text(out / "curve.md", text)
    atomic_write_text(out / "curve.csv", curve_table(curve, "csv", "ua"))
    atomic_write_bytes(out / "curve.png", plot_curve(curve))


def plot_curve(curve: dict[str, Any]) -> bytes:
    """PNG bytes: UA vs K (categorical axis), one line with error bars (std) per method."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = curve["shots"]
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for i, m in enumerate(curve["methods"]):
        xs, ys, es = [], [], []
        for j, k in enumerate(ks):
            s = curve["ua"][m].get(k)
            if s and s["n"]:
                xs.append(j + (i - (len(curve["methods"]) - 1) / 2) * 0.04)
                ys.append(s["mean"])
                es.append(s["std"])
        if xs:
            ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=m.replace("_", "-"))
    if curve.get("chance"):
        ax.axhline(curve["chance"], color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set_xticks(range(len(ks)), [str(k) for k in ks])
    ax.set_xlabel("labelled training utterances per class (K)")
    ax.set_ylabel("test UA (mean ± std)")
    ax.set_title(f"Few-shot adaptation to domain {curve['domain']}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
