"""``serkit export``: a self-contained model folder that :func:`serkit.load_model` reads anywhere.

The folder holds one checkpoint (safetensors), the model description (resolved recipe,
streams, label maps, extractor specs), the run's results for provenance, and
``export.json`` with the SHA-256 of every file, checked on load: a changed or truncated
file is refused.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from serkit import __version__
from serkit.errors import ModelError
from serkit.io import atomic_write_json

__all__ = ["EXPORT_MANIFEST", "export_model", "verify_export"]

EXPORT_MANIFEST = "export.json"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def export_model(run_dir: str | Path, out: str | Path, checkpoint: str | None = None) -> Path:
    """Write ``out`` with the chosen checkpoint (default: best validation UA) of ``run_dir``.

    The model is loaded once first, so a folder that would not load is never exported.

    Raises:
        ModelError: the run cannot be loaded, or ``out`` exists and is not empty.
    """
    from serkit.inference import load_model

    run_dir, out = Path(run_dir), Path(out)
    model = load_model(run_dir, checkpoint=checkpoint, device="cpu")
    if out.exists() and any(out.iterdir()):
        raise ModelError(f"export: {out} exists and is not empty; choose a new folder")
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "checkpoints").mkdir(parents=True)
    files = {
        f"checkpoints/{model.checkpoint}.safetensors": run_dir / "checkpoints" / f"{model.checkpoint}.safetensors",
        "checkpoints/model.json": run_dir / "checkpoints" / "model.json",
        "results.json": run_dir / "results.json",
        "recipe.yaml": run_dir / "recipe.yaml",
    }
    for rel, src in files.items():
        if src.is_file():
            shutil.copyfile(src, tmp / rel)
    manifest: dict[str, Any] = {
        "format": "serkit-export-1",
        "serkit_version": __version__,
        "source_run": str(run_dir.resolve()),
        "checkpoint": model.checkpoint,
        "domains": {d: model.labels(d) for d in model.domains},
        "files": {rel: _sha256(tmp / rel) for rel in files if (tmp / rel).is_file()},
    }
    atomic_write_json(tmp / EXPORT_MANIFEST, manifest)
    if out.exists():
        out.rmdir()
    tmp.rename(out)
    return out


def verify_export(folder: str | Path) -> None:
    """Check every file listed in ``export.json`` against its SHA-256 (no-op without one).

    Raises:
        ModelError: a listed file is missing or its content changed.
    """
    folder = Path(folder)
    manifest_path = folder / EXPORT_MANIFEST
    if not manifest_path.is_file():
        return
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files = dict(manifest["files"])
    except (ValueError, KeyError, TypeError) as err:
        raise ModelError(f"{manifest_path}: not a serkit export manifest ({err})") from None
    for rel, digest in files.items():
        path = folder / rel
        if not path.is_file():
            raise ModelError(f"{folder}: exported file {rel} is missing")
        if _sha256(path) != digest:
            raise ModelError(
                f"{folder}: {rel} does not match its SHA-256 in {EXPORT_MANIFEST}; refusing a modified model"
            )
