"""``results.json`` (the contract of ARCHITECTURE.md) and the human-readable ``report.md``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from serkit.io import atomic_write_text
from serkit.metrics.aggregate import mean_std
from serkit.report.layer_weights import layer_weight_lines, layer_weight_stats
from serkit.report.trust import audit_banner, provenance_lines

__all__ = ["build_results", "render_report", "write_report"]

_PROTOCOL_TEXT = {
    "random": "random stratified split (the paper's; test speakers also appear in training)",
    "speaker": "speaker-independent folds (no speaker in two of train/val/test)",
    "predefined": "splits given by the data (a manifest's split or fold column)",
}


def build_results(
    *,
    recipe: Any,
    source: str,
    domains: dict[str, dict[str, Any]],
    runs: list[dict[str, Any]],
    extraction: dict[str, dict[str, Any]],
    n_bad_files: int,
    started: str,
    wall_seconds: float,
    device: str,
) -> dict[str, Any]:
    """Aggregate per-run test metrics into mean/std per domain."""
    proto = recipe.protocol.model_dump(mode="json")
    out_domains: dict[str, Any] = {}
    for d, info in domains.items():
        per_run = [r["test"][d] for r in runs]
        n_classes = len(info["labels"])
        confusion = np.zeros((n_classes, n_classes), dtype=int)
        for m in per_run:
            confusion += np.asarray(m["confusion"], dtype=int)
        repeats0 = [r for r in runs if r["repeat"] == runs[0]["repeat"]]
        out_domains[d] = {
            "ua": mean_std([m["ua"] for m in per_run]),
            "wa": mean_std([m["wa"] for m in per_run]),
            "macro_f1": mean_std([m["macro_f1"] for m in per_run]),
            "n_test": int(sum(r["test"][d]["n"] for r in repeats0)),
            "labels": list(info["labels"]),
            "confusion": confusion.tolist(),
            "n_utterances": info["n_utterances"],
            "n_speakers": info["n_speakers"],
            "head": info.get("head", d),
            "own_labels": info.get("own_labels", list(info["labels"])),
        }
        out_domains[d].update(_fusion_stats(d, runs))
        out_domains[d].update(layer_weight_stats(d, runs))
    return {
        "recipe": recipe.name,
        "source": source,
        "protocol": proto["type"],
        "protocol_params": proto,
        "repeats": recipe.repeats,
        "folds": len({r["fold"] for r in runs}),
        "n_runs": len(runs),
        "seed": recipe.seed,
        "device": device,
        "started": started,
        "wall_seconds": round(wall_seconds, 2),
        "domains": out_domains,
        "extraction": extraction,
        "n_bad_files": n_bad_files,
        "runs": runs,
    }


def _fusion_stats(domain: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean test-set gate weight per stream and mean NAS connectivity over runs, if any."""
    out: dict[str, Any] = {}
    gates = [r["test"][domain].get("gates") for r in runs]
    summaries = [r.get("fusion") or {} for r in runs]
    experts = summaries[0].get("experts") if summaries else None
    if gates and all(g is not None for g in gates):
        g = np.asarray(gates, dtype=float)
        out["gates"] = {
            "streams": experts,
            "mean": [round(float(x), 6) for x in g.mean(axis=0)],
            "std": [round(float(x), 6) for x in (g.std(axis=0, ddof=1) if len(g) > 1 else np.zeros(g.shape[1]))],
        }
    xis = [s.get("xi", {}).get(domain) for s in summaries]
    if xis and all(x is not None for x in xis):
        out["nas_connectivity"] = {
            "streams": experts,
            "rows": "output u_i",
            "columns": "input stream f_j",
            "mean": np.asarray(xis, dtype=float).mean(axis=0).round(6).tolist(),
        }
    return out


def _pm(stat: dict[str, Any]) -> str:
    return f"{stat['mean']:.4f} ± {stat['std']:.4f}"


def render_report(results: dict[str, Any]) -> str:
    """Markdown summary of a results.json mapping."""
    proto = results["protocol"]
    audited = results.get("audit") or {}
    dependent = " — **speaker-dependent** (split audit)" if audited.get("speaker_dependent") else ""
    lines = [
        f"# {results['recipe']}",
        "",
        f"- protocol: **{proto}** — {_PROTOCOL_TEXT.get(proto, proto)}{dependent}",
        f"- runs: {results['n_runs']} ({results['repeats']} repeat(s) x {results['folds']} fold(s)); "
        "mean ± sample std over runs",
        f"- device: {results['device']}; wall time {results['wall_seconds']:.1f} s; started {results['started']}",
        "",
        *audit_banner(results.get("audit")),
        "## Test results",
        "",
        "| domain | UA | WA | macro-F1 | test utts / repeat | utterances | speakers | labels |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for d, m in results["domains"].items():
        lines.append(
            f"| {d} | {_pm(m['ua'])} | {_pm(m['wa'])} | {_pm(m['macro_f1'])} | {m['n_test']} | "
            f"{m['n_utterances']} | {m['n_speakers']} | {', '.join(m['labels'])} |"
        )
    lines += ["", "UA = mean per-class recall; WA = overall accuracy.", ""]
    lines += _reference_lines(results)
    lines += ["## Runs", ""]
    domains = list(results["domains"])
    lines.append(
        "| run | seed | best epoch | " + " | ".join(f"{d} UA / WA" for d in domains) + " |"
    )
    lines.append("| --- | --- | --- | " + " | ".join("---" for _ in domains) + " |")
    for r in results["runs"]:
        cells = " | ".join(f"{r['test'][d]['ua']:.4f} / {r['test'][d]['wa']:.4f}" for d in domains)
        lines.append(f"| {r['id']} | {r['seed']} | {r['best_epoch']} | {cells} |")
    lines += ["", "## Confusion (summed over runs; rows = true, columns = predicted)", ""]
    for d, m in results["domains"].items():
        labs = m["labels"]
        lines += [
            f"### {d}",
            "",
            "| true \\ pred | " + " | ".join(labs) + " |",
            "| --- | " + " | ".join("---" for _ in labs) + " |",
        ]
        for lab, row in zip(labs, m["confusion"], strict=True):
            lines.append(f"| {lab} | " + " | ".join(str(x) for x in row) + " |")
        lines.append("")
    gated = {d: m for d, m in results["domains"].items() if "gates" in m}
    if gated:
        lines += ["## Gate weights (test set, mean over runs)", ""]
        streams = next(iter(gated.values()))["gates"]["streams"] or []
        lines += ["| domain | " + " | ".join(streams) + " |", "| --- | " + " | ".join("---" for _ in streams) + " |"]
        for d, m in gated.items():
            lines.append(f"| {d} | " + " | ".join(f"{x:.3f}" for x in m["gates"]["mean"]) + " |")
        lines.append("")
    lines += layer_weight_lines(results)
    lines += [
        "## Features",
        "",
        "| stream | computed | cached | failed | seconds |",
        "| --- | --- | --- | --- | --- |",
    ]
    for s, st in results["extraction"].items():
        lines.append(
            f"| {s} | {st['computed']} | {st['cached']} | {st['failed']} | {st['seconds']:.1f} |"
        )
    if results.get("n_bad_files"):
        lines += ["", f"{results['n_bad_files']} bad audio file(s) skipped: see bad_files.json."]
    if results.get("init_from"):
        lines += ["", *_init_lines(results["init_from"])]
    if results.get("provenance"):
        lines += ["", *provenance_lines(results["provenance"])]
    return "\n".join(lines) + "\n"


def _reference_lines(results: dict[str, Any]) -> list[str]:
    """The linear reference beside the model, and a warning where the model is below it."""
    reference = results.get("reference") or {}
    if not reference:
        return []
    kind = next(iter(reference.values()))["kind"]
    lines = [
        f"### Linear reference ({kind} on the same streams and splits)",
        "",
        "Sequence streams pooled to mean and std per utterance, standardised on the training split, "
        "class-balanced, C chosen on the validation split.",
        "",
        "| domain | model UA | reference UA | model − reference | reference WA | reference macro-F1 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    below = []
    for d, ref in reference.items():
        model = results["domains"].get(d)
        if model is None:
            continue
        diff = model["ua"]["mean"] - ref["ua"]["mean"]
        lines.append(
            f"| {d} | {_pm(model['ua'])} | {_pm(ref['ua'])} | {diff:+.4f} | {_pm(ref['wa'])} | {_pm(ref['macro_f1'])} |"
        )
        if diff < 0:
            below.append(d)
    lines.append("")
    if below:
        lines += [f"> **Warning:** the model is below the linear reference on {', '.join(below)}.", ""]
    return lines


def _init_lines(init: dict[str, Any]) -> list[str]:
    """The 'started from a trained run' section (init_from)."""
    frozen = init.get("frozen") or {}
    lines = [
        "## Started from a trained run",
        "",
        f"- run: {init['run']}, checkpoint {init['checkpoint']}; "
        f"frozen: {', '.join(init.get('freeze') or []) or 'nothing'}",
    ]
    if frozen:
        lines.append(
            f"- frozen weights bit-identical after training in {frozen['identical']} of {frozen['runs']} run(s)"
        )
    for d, z in (init.get("zero_shot") or {}).items():
        lines.append(
            f"- zero-shot on {d} (before training; head of {', '.join(z['sources'])} chosen by validation UA, "
            f"labels {', '.join(z['labels'])}): UA {_pm(z['ua'])}, WA {_pm(z['wa'])}"
        )
    old = init.get("old_domains") or {}
    if old:
        lines += [
            "",
            f"Old domains, as tested in the initial run (checkpoint {init['checkpoint']}); their weights are "
            + ("frozen, so these results still hold:" if init.get("old_unchanged") else "NOT all frozen:"),
            "",
            "| domain | UA | WA |",
            "| --- | --- | --- |",
        ]
        lines += [f"| {d} | {m['ua']:.4f} | {m['wa']:.4f} |" for d, m in old.items()]
    return lines


def write_report(run_dir: Path, results: dict[str, Any]) -> Path:
    """Write ``report.md`` into the run folder."""
    path = Path(run_dir) / "report.md"
    atomic_write_text(path, render_report(results))
    return path
