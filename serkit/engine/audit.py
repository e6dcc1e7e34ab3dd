"""The split audit of a run, of a recipe before training, and of a manifest's fold file.

* :func:`run_checks`: what ``serkit run`` adds to ``results.json`` after planning its
  splits: the ``audit`` (:func:`serkit.data.audit.audit_splits`) and the ``provenance``
  (:func:`serkit.report.provenance.provenance`), from one look-up of the audio content
  hashes (the feature store's stat index: no audio is read after an extraction).
* :func:`audit_recipe` and :func:`audit_manifest`: ``serkit data audit``; the same audit
  before anything is extracted or trained.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from serkit.data.audit import audit_splits
from serkit.data.splits import Split, predefined_splits
from serkit.data.utterance import Utterance
from serkit.engine.prepare import store_root
from serkit.errors import DatasetError
from serkit.features.content import content_hashes

__all__ = ["audit_manifest", "audit_recipe", "domain_content", "run_checks"]


def domain_content(
    utterances: Mapping[str, Sequence[Utterance]], index_folder: Path | None, *, workers: int = 2
) -> dict[str, dict[str, str | None]]:
    """domain -> utterance id -> SHA-256 of its audio file (``None``: unreadable)."""
    paths = [u.path for utts in utterances.values() for u in utts]
    by_path = content_hashes(paths, index_folder, workers=workers)
    return {d: {u.id: by_path.get(u.path) for u in utts} for d, utts in utterances.items()}


def run_checks(
    recipe: Any,
    utterances: Mapping[str, Sequence[Utterance]],
    splits: Mapping[str, Mapping[str, Split]],
    head_of: Mapping[str, str],
    resolved: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(audit, provenance)`` of a run: its domains' utterances as used and its planned splits."""
    from serkit.report.provenance import provenance

    content = domain_content(utterances, store_root(recipe), workers=max(1, int(recipe.data.extract_workers)))
    audit = audit_splits(utterances, splits, content=content, head_of=head_of, protocol=recipe.protocol.type)
    return audit, provenance(resolved, utterances, content)


def audit_recipe(recipe: Any, *, content: bool = True) -> dict[str, Any]:
    """Audit a validated recipe's splits without extracting features or training.

    The datasets are listed and the splits planned as ``serkit run`` does (same seeds, same
    protocol); files that a run would skip as bad audio are still included (no audio is
    decoded). Audio content hashes come from the feature store's index, else the files
    are read (and the hashes recorded for the next extraction).

    Raises:
        DatasetError: a dataset cannot be listed, or the protocol cannot split it (as
            ``serkit run`` would).
    """
    from serkit.engine.model import head_plan
    from serkit.engine.prepare import DomainData, load_domains, plan_splits

    raw = load_domains(recipe)
    own_labels = {d: sorted({u.label for u in utts}) for d, utts in raw.items()}
    proto = recipe.protocol
    if proto.type in ("cross_corpus", "cross_lingual") and proto.labels == "intersection":
        shared = set.intersection(*(set(v) for v in own_labels.values()))
        raw = {d: [u for u in utts if u.label in shared] for d, utts in raw.items()}
        own_labels = {d: sorted(shared) for d in raw}
    head_of, head_labels = head_plan(recipe, own_labels)
    domains = {d: DomainData(utts, head_labels[head_of[d]], {}) for d, utts in raw.items()}
    with warnings.catch_warnings():  # the audit reports validation sets without some labels itself
        warnings.simplefilter("ignore", UserWarning)
        _, splits = plan_splits(recipe, domains, own_labels)
    hashes = domain_content(raw, store_root(recipe)) if content else None
    return audit_splits(raw, splits, content=hashes, head_of=head_of, protocol=proto.type)


def audit_manifest(
    path: str | Path,
    *,
    root: str | None = None,
    column: str = "auto",
    val: float = 0.2,
    seed: int = 0,
    content: bool = True,
    index_folder: Path | None = None,
) -> dict[str, Any]:
    """Audit a manifest's own splits (its ``split`` or ``fold`` column), as ``protocol: predefined`` uses them.

    Args:
        path: a CSV / TSV / JSONL manifest (see the ``manifest`` dataset).
        root: folder that relative audio paths resolve against (default: the manifest's).
        column: ``auto``, ``split`` or ``fold`` (see :func:`serkit.data.splits.predefined_splits`).
        val: validation fraction drawn from the training rows when there is no ``val`` split.
        seed: seed of that draw (a run's seed for repeat 0).
        content: check identical audio (reads the files the hash index does not know);
            ``False``: the audio files need not exist.
        index_folder: the stores folder whose audio hash index is used (default: serkit's
            feature cache).

    Returns:
        The audit mapping, with the manifest's file stem as the domain name.

    Raises:
        DatasetError: the manifest cannot be read, or has neither a ``split`` nor a
            ``fold`` column on every row.
    """
    from serkit.builtin.datasets.manifest import ManifestDataset
    from serkit.paths import cache_dir

    path = Path(path)
    params = ManifestDataset.Params(path=str(path), root=root, check_files=content)
    utts = ManifestDataset(params).utterances()
    if column == "auto" and not any("fold" in u.meta or "split" in u.meta for u in utts):
        raise DatasetError(
            f"manifest {path}: no 'split' or 'fold' column, so there are no splits to audit; "
            "audit a recipe instead (serkit data audit RECIPE.yaml)"
        )
    labels = [u.label for u in utts]
    runs = {name: s for name, s in predefined_splits(labels, [u.meta for u in utts], column=column, val=val, seed=seed)}
    domain = path.stem
    hashes = None
    if content:
        folder = index_folder if index_folder is not None else cache_dir() / "features"
        hashes = domain_content({domain: utts}, folder)
    return audit_splits({domain: utts}, {domain: runs}, content=hashes, protocol="predefined")
