"""Traceable numbers: which serkit, which recipe and which data produced a results.json.

:func:`provenance` gives the ``provenance`` entry of ``results.json``:

* ``serkit_version`` and, when serkit is imported from a git checkout, ``git`` (commit,
  and whether tracked files differ from it); ``None`` when installed from a wheel, when
  ``git`` is not installed or the checkout cannot be read;
* ``recipe_sha256``: the SHA-256 of the resolved recipe as canonical JSON (sorted keys),
  without its machine-local fields (:data:`LOCAL_FIELDS`: where the corpora and the
  feature store live), so two machines running the same recipe get the same hash;
* ``data``: per domain, the number of utterances used and two fingerprints: ``audio``, the
  SHA-256 of their sorted audio content hashes (one per utterance, so duplicates count),
  and ``labelled``, the same over ``content hash, label, speaker`` lines (a relabelled
  corpus changes it, not ``audio``).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from serkit.data.utterance import Utterance
from serkit.version import __version__

__all__ = ["LOCAL_FIELDS", "data_fingerprint", "git_info", "provenance", "recipe_sha256"]

#: Resolved-recipe fields left out of :func:`recipe_sha256` (``*`` = any domain): where
#: files are on this machine, not what is computed (the data fingerprint covers the data).
LOCAL_FIELDS: tuple[tuple[str, ...], ...] = (
    ("domains", "*", "dataset", "root"),
    ("domains", "*", "dataset", "path"),
    ("store", "root"),
)

#: Seconds a ``git`` call may take before the commit is reported unknown.
GIT_TIMEOUT_S = 5.0


def _drop(tree: Any, path: tuple[str, ...]) -> None:
    if not path or not isinstance(tree, dict):
        return
    head, rest = path[0], path[1:]
    keys = list(tree) if head == "*" else [head]
    for k in keys:
        if k not in tree:
            continue
        if rest:
            _drop(tree[k], rest)
        else:
            del tree[k]


def recipe_sha256(resolved: Mapping[str, Any]) -> str:
    """SHA-256 of a resolved recipe (``recipe.model_dump(mode="json")``) without :data:`LOCAL_FIELDS`."""
    tree = json.loads(json.dumps(resolved))  # a deep copy of plain JSON values
    for path in LOCAL_FIELDS:
        _drop(tree, path)
    text = json.dumps(tree, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def data_fingerprint(utterances: Sequence[Utterance], content: Mapping[str, str | None]) -> dict[str, Any]:
    """Fingerprints of the utterances used (see the module docstring).

    Args:
        utterances: the domain's utterances.
        content: utterance id -> SHA-256 of its audio file (``None``: unreadable).

    Returns:
        ``{"n": int, "audio": hex, "labelled": hex, "unhashed": int}``; an utterance
        without a content hash enters both fingerprints as the hash of its path's text
        and is counted in ``unhashed``.
    """
    audio: list[str] = []
    labelled: list[str] = []
    unhashed = 0
    for u in utterances:
        h = content.get(u.id)
        if h is None:
            unhashed += 1
            h = "path:" + hashlib.sha256(u.path.encode("utf-8")).hexdigest()
        audio.append(h)
        labelled.append(f"{h}\t{u.label}\t{u.speaker}")
    return {
        "n": len(utterances),
        "audio": hashlib.sha256("\n".join(sorted(audio)).encode("utf-8")).hexdigest(),
        "labelled": hashlib.sha256("\n".join(sorted(labelled)).encode("utf-8")).hexdigest(),
        "unhashed": unhashed,
    }


def _git(args: Sequence[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=GIT_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_info(package_dir: str | Path | None = None) -> dict[str, Any] | None:
    """``{"commit": hex, "dirty": bool}`` of the git checkout serkit is imported from, else None.

    Args:
        package_dir: the ``serkit`` package folder (default: this installation's). Only a
            checkout whose top level holds this package counts: a wheel installed into a
            virtual environment inside some other repository is not that repository's
            commit.

    ``dirty`` is true when tracked files differ from the commit (untracked files are not
    looked at). Any failure (no ``git``, not a checkout, a timeout) gives ``None``.
    """
    pkg = Path(package_dir) if package_dir is not None else Path(__file__).resolve().parents[1]
    top = _git(["rev-parse", "--show-toplevel"], pkg)
    if top is None:
        return None
    try:
        if Path(top).resolve() != pkg.resolve().parent:
            return None
    except OSError:
        return None
    commit = _git(["rev-parse", "HEAD"], pkg)
    if commit is None:
        return None
    status = _git(["status", "--porcelain", "--untracked-files=no"], pkg)
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def provenance(
    resolved: Mapping[str, Any],
    utterances: Mapping[str, Sequence[Utterance]],
    content: Mapping[str, Mapping[str, str | None]],
) -> dict[str, Any]:
    """The ``provenance`` entry of ``results.json`` (see the module docstring).

    Args:
        resolved: the resolved recipe (``recipe.model_dump(mode="json")``).
        utterances: domain -> the utterances used.
        content: domain -> utterance id -> audio SHA-256.
    """
    return {
        "serkit_version": __version__,
        "git": git_info(),
        "recipe_sha256": recipe_sha256(resolved),
        "recipe_excludes": [".".join(p) for p in LOCAL_FIELDS],
        "data": {d: data_fingerprint(utts, content.get(d, {})) for d, utts in utterances.items()},
    }
