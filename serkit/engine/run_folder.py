"""One run per run folder: never mix two runs, resume only the same recipe, leave no stub.

``serkit run R.yaml --out DIR`` writes into ``DIR`` only when it is missing or empty. A
folder that holds files is refused, unless

* ``resume``: the run in it continues. The recipe must be the one that started it (every
  field but those of :data:`RESUME_FREE_FIELDS`, which say where and how fast it runs, not
  what it computes); otherwise a :class:`~serkit.errors.SerkitError` lists every changed
  field. The checkpoints of its finished runs are checked against their SHA-256 first, and
  the splits it plans must be those it started with (``splits/``; the corpus or serkit's
  split rules may have changed).
* ``overwrite``: the previous run's outputs (:data:`RUN_OUTPUTS`: its runs, checkpoints,
  results, report...) are deleted first. A folder that is not a serkit run folder is
  never cleared.

``serkit-run.json`` (:data:`STATE_FILE`) keeps the recipe that started the run and one
entry per session (start, wall seconds, extraction counts, outcome), so that a resumed
run's results give the wall time and extraction counts of the whole run, not of its last
part. A session killed outright (SIGKILL) has no end: its wall time is taken, when the
next session starts, from the last file it wrote (``"estimated": true``).

A run that fails before it wrote anything worth keeping (no finished run, no epoch state)
removes what it wrote and the folder it created; otherwise the folder stays for
``--resume`` and its state file records the failed session.

This module also owns reading a finished run folder (or a folder written by ``serkit
export``), for :func:`serkit.load_model`, ``init_from``, ``serkit export`` and ``serkit
adapt``: the model description (:func:`read_model_description`), the finished runs'
checkpoints (:func:`finished_checkpoints`, :func:`best_checkpoint`) and the SHA-256 of an
exported folder's files (:func:`verify_export`). The weights themselves and their own
SHA-256 files are :mod:`serkit.engine.checkpoint`'s.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

from serkit.errors import ModelError, SerkitError
from serkit.io import atomic_write_json

__all__ = [
    "EXPORT_MANIFEST",
    "MODEL_FIELDS",
    "RESUME_FREE_FIELDS",
    "RUN_OUTPUTS",
    "SPEAKER_NORM_FILES",
    "STATE_FILE",
    "RunFolder",
    "best_checkpoint",
    "finished_checkpoints",
    "read_json",
    "read_model_description",
    "recipe_changes",
    "verify_export",
]

#: The run folder's own record: the recipe that started it and its sessions.
STATE_FILE = "serkit-run.json"
STATE_FORMAT = "serkit-run-1"

#: Recipe fields that may change between the sessions of one run: where and how fast it
#: runs, not what it computes.
RESUME_FREE_FIELDS = (
    "description",
    "device",
    "threads",
    "logging",
    "store.root",
    "data.extract_workers",
    "data.extract_batch_size",
    "data.extract_executor",
    "data.feature_memory_gib",
    "train.num_workers",
)

#: What ``serkit run`` writes into a run folder (and ``--overwrite`` deletes).
RUN_OUTPUTS = (
    "runs",
    "checkpoints",
    "splits",
    "plots",
    "embeddings",
    "tensorboard",
    "results.json",
    "report.md",
    "report.html",
    "bad_files.json",
    "environment.json",
    "recipe.yaml",
    STATE_FILE,
)

#: An exported model folder's list of its files with their SHA-256 (``serkit export``).
EXPORT_MANIFEST = "export.json"

#: Files under ``checkpoints/`` with a run's ``data.speaker_norm`` statistics
#: (:mod:`serkit.engine.speaker_norm`); not checkpoints.
SPEAKER_NORM_FILES = ("speaker_norm.safetensors", "speaker_norm.json")

#: The fields every ``checkpoints/model.json`` has.
MODEL_FIELDS = ("recipe", "streams", "labels", "head_of")

#: Shown changes of a refused ``--resume``; the rest are counted.
MAX_CHANGES_SHOWN = 40


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _short(value: Any, width: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True) if not isinstance(value, str) else repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def recipe_changes(old: Any, new: Any, prefix: str = "", free: tuple[str, ...] = RESUME_FREE_FIELDS) -> list[str]:
    """Every field that differs between two resolved recipes, as ``path: old -> new`` lines.

    Mappings are compared key by key (a key on one side only is ``(absent)`` on the other);
    lists and scalars as wholes. Paths in ``free`` (and below them) are ignored.
    """
    if prefix and any(prefix == f or prefix.startswith(f + ".") for f in free):
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in [*old, *(k for k in new if k not in old)]:
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in new:
                if not any(path == f or path.startswith(f + ".") for f in free):
                    out.append(f"{path}: {_short(old[key])} -> (absent)")
            elif key not in old:
                if not any(path == f or path.startswith(f + ".") for f in free):
                    out.append(f"{path}: (absent) -> {_short(new[key])}")
            else:
                out += recipe_changes(old[key], new[key], path, free)
        return out
    if old != new:
        return [f"{prefix or '(recipe)'}: {_short(old)} -> {_short(new)}"]
    return []


def _entries(folder: Path) -> list[str]:
    try:
        return sorted(p.name for p in folder.iterdir())
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        raise SerkitError(f"{folder}: not a folder; --out must name a run folder") from None
    except OSError as err:
        raise SerkitError(f"{folder}: cannot read the run folder ({err.strerror or err})") from None


def _read_state(folder: Path) -> dict[str, Any] | None:
    path = folder / STATE_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SerkitError(f"{path}: unreadable run state ({err}); the run cannot be resumed safely") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT or not isinstance(state.get("recipe"), dict):
        raise SerkitError(f"{path}: not a serkit run state (format {STATE_FORMAT!r} with the run's recipe)")
    state.setdefault("sessions", [])
    return state


def _read_recipe_yaml(folder: Path) -> dict[str, Any] | None:
    import yaml

    path = folder / "recipe.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise SerkitError(f"{path}: unreadable recipe ({err})") from None
    return data if isinstance(data, dict) else None


def run_record(folder: Path, run_id: str) -> Path:
    """``runs/<run id>.json``: the record of one finished run (repeat x fold) of a run folder."""
    return folder / "runs" / f"{run_id}.json"


def run_checkpoint(folder: Path, run_id: str) -> Path:
    """``checkpoints/<run id>.safetensors``: the weights one finished run selected."""
    return folder / "checkpoints" / f"{run_id}.safetensors"


def run_records(folder: Path) -> list[Path]:
    """The records of the folder's finished runs, ``runs/*.json``, sorted by name."""
    return sorted((folder / "runs").glob("*.json"))


def _resumable(folder: Path) -> bool:
    """Whether the folder holds a finished run or an epoch state worth resuming from."""
    return bool(run_records(folder)) or any((folder / "checkpoints").glob("*.last.json"))


def _last_write(folder: Path) -> float:
    latest = 0.0
    for p in folder.rglob("*"):
        try:
            if p.is_file():
                latest = max(latest, p.stat().st_mtime)
        except OSError:
            continue
    return latest


def _describe(folder: Path, entries: list[str]) -> str:
    done = len(run_records(folder))
    if (folder / "results.json").is_file():
        return f"a finished run with {done} run(s)"
    if STATE_FILE in entries or "recipe.yaml" in entries:
        return f"an unfinished run, {done} run(s) finished"
    shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
    return f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}: {shown}"


class RunFolder:
    """The run folder of one ``serkit run`` session (see the module docstring).

    Use as a context manager around the run; :meth:`claim` once the folder and the
    resolved recipe are known. On an exception, a folder holding nothing resumable is
    removed (what this session wrote), otherwise the failed session is recorded.
    """

    def __init__(self) -> None:
        self.path: Path | None = None
        self.existed = False
        self.resumed = False
        self.state: dict[str, Any] | None = None
        self.t0 = time.perf_counter()

    # -- start ------------------------------------------------------------------------
    def claim(self, dist: Any, run_dir: Path, resolved: dict[str, Any], *, resume: bool, overwrite: bool) -> None:
        """Check (and with ``overwrite`` clear) ``run_dir`` for this run; rank 0 decides.

        Raises:
            SerkitError: the folder is not empty (without ``resume``/``overwrite``), the
                recipe differs from the one that started the run (``resume``; every changed
                field is listed), or ``overwrite`` on a folder that is not a run folder.
            ModelError: a finished run's checkpoint does not match its SHA-256 (``resume``).
        """
        problem: SerkitError | None = None
        if dist.is_main:
            try:
                self._claim(Path(run_dir), resolved, resume=resume, overwrite=overwrite)
            except SerkitError as err:
                problem = err
        problem = dist.broadcast_object(problem)
        if problem is not None:
            raise problem

    def _claim(self, run_dir: Path, resolved: dict[str, Any], *, resume: bool, overwrite: bool) -> None:
        from serkit.engine.checkpoint import verify_checkpoint

        if resume and overwrite:
            raise SerkitError("give --resume or --overwrite, not both")
        entries = _entries(run_dir)
        state = None
        if resume:
            if not entries:
                raise SerkitError(f"--resume {run_dir}: no run to resume there (the folder is missing or empty)")
            state = _read_state(run_dir)
            reference = state["recipe"] if state is not None else _read_recipe_yaml(run_dir)
            if reference is None:
                raise SerkitError(f"--resume {run_dir}: not a serkit run folder (no {STATE_FILE} or recipe.yaml)")
            changes = recipe_changes(reference, resolved)
            if changes:
                shown = "\n".join(f"  {c}" for c in changes[:MAX_CHANGES_SHOWN])
                hidden = len(changes) - MAX_CHANGES_SHOWN
                more = f"\n  ... and {hidden} more" if hidden > 0 else ""
                raise SerkitError(
                    f"--resume {run_dir}: the recipe differs from the one that started this run in "
                    f"{len(changes)} field(s):\n{shown}{more}\n"
                    "a resumed run must compute the same thing; run the changed recipe into another --out "
                    "(or start over here with --overwrite)"
                )
            for done in run_records(run_dir):
                ckpt = run_checkpoint(run_dir, done.stem)
                if ckpt.is_file():
                    verify_checkpoint(ckpt)
            if state is not None:
                for s in state["sessions"]:  # a session killed outright: up to its last write
                    if s.get("status") == "running":
                        started = datetime.fromisoformat(s["started"]).timestamp()
                        s["seconds"] = round(max(0.0, _last_write(run_dir) - started), 2)
                        s["status"], s["estimated"] = "interrupted", True
        elif entries:
            if not overwrite:
                raise SerkitError(
                    f"{run_dir}: the run folder is not empty ({_describe(run_dir, entries)}); pass --resume "
                    f"(serkit run --resume {run_dir}) to continue the run in it with the same recipe, --overwrite "
                    "to delete its runs, checkpoints and results first, or choose another --out"
                )
            if STATE_FILE not in entries and "recipe.yaml" not in entries:
                raise SerkitError(
                    f"{run_dir}: --overwrite only clears serkit run folders, and this one has no {STATE_FILE} "
                    "or recipe.yaml; choose another --out"
                )
            for name in RUN_OUTPUTS:
                target = run_dir / name
                try:
                    if target.is_dir() and not target.is_symlink():
                        shutil.rmtree(target)
                    elif target.exists() or target.is_symlink():
                        target.unlink()
                except OSError as err:
                    raise SerkitError(f"{target}: cannot delete it for --overwrite ({err.strerror or err})") from None
        self.existed = run_dir.is_dir()
        self.resumed = resume
        if state is None:
            state = {
                "format": STATE_FORMAT,
                "recipe": resolved,
                "recipe_sha256": hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest(),
                "created": _now(),
                "sessions": [],
            }
        state["sessions"].append(
            {"started": _now(), "resumed": resume, "argv": list(sys.argv), "status": "running", "seconds": None}
        )
        self.state = state
        self.path = run_dir
        self._write()

    # -- during the run ---------------------------------------------------------------
    def _session(self) -> dict[str, Any] | None:
        return self.state["sessions"][-1] if self.state is not None else None

    def _write(self) -> None:
        if self.path is not None and self.state is not None:
            atomic_write_json(self.path / STATE_FILE, self.state)

    def record_extraction(self, extraction: dict[str, dict[str, Any]]) -> None:
        """Keep this session's extraction counts (a stream -> counts mapping)."""
        session = self._session()
        if session is not None:
            session["extraction"] = extraction
            self._write()

    def total_extraction(self, extraction: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """This session's extraction counts combined with those of the run's earlier sessions.

        Per stream: ``computed``, ``seconds`` and ``audio_seconds`` add up over the sessions;
        ``failed`` is this session's; ``cached`` is what the run did not compute itself
        (the utterances minus ``computed`` and ``failed``); ``sessions`` counts sessions.
        """
        sessions = self.state["sessions"][:-1] if self.state is not None else []
        earlier = [s["extraction"] for s in sessions if isinstance(s.get("extraction"), dict)]
        if not earlier:
            return extraction
        out: dict[str, dict[str, Any]] = {}
        for sid, now in extraction.items():
            past = [e[sid] for e in earlier if isinstance(e.get(sid), dict) and "computed" in e[sid]]
            if not all(k in now for k in ("computed", "cached", "failed")):
                out[sid] = now  # not counts of an extraction: as it is
                continue
            total = int(now["computed"]) + int(now["cached"]) + int(now["failed"])
            computed = min(total - int(now["failed"]), int(now["computed"]) + sum(int(p["computed"]) for p in past))
            out[sid] = {
                **now,
                "computed": computed,
                "cached": total - computed - int(now["failed"]),
                "seconds": float(now["seconds"]) + sum(float(p.get("seconds", 0.0)) for p in past),
                "audio_seconds": float(now.get("audio_seconds", 0.0))
                + sum(float(p.get("audio_seconds", 0.0)) for p in past),
                "sessions": 1 + len(past),
            }
        return out

    def total_seconds(self, seconds: float) -> float:
        """The wall time of the whole run: this session's ``seconds`` plus the earlier sessions'."""
        session = self._session()
        if session is None:
            return seconds
        session["seconds"] = round(seconds, 2)
        earlier = self.state["sessions"][:-1] if self.state is not None else []
        return seconds + sum(float(s.get("seconds") or 0.0) for s in earlier)

    # -- end --------------------------------------------------------------------------
    def __enter__(self) -> RunFolder:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        session = self._session()
        if self.path is None or session is None:
            return
        if session.get("seconds") is None or exc_type is not None:
            session["seconds"] = round(time.perf_counter() - self.t0, 2)
        if exc_type is None:
            session["status"] = "finished"
            self._write()
            return
        if not self.resumed and not _resumable(self.path):
            self._remove_stub()
            return
        session["status"] = "interrupted" if issubclass(exc_type, KeyboardInterrupt) else "failed"
        session["error"] = f"{exc_type.__name__}: {exc}"
        try:
            self._write()
        except OSError:  # e.g. the disk is full: the error itself is reported
            pass

    def _remove_stub(self) -> None:
        """Delete what this session wrote (nothing of it can be resumed), and the folder if it made it."""
        assert self.path is not None
        for name in RUN_OUTPUTS:
            target = self.path / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target, ignore_errors=True)
            else:
                try:
                    target.unlink()
                except OSError:
                    pass
        if not self.existed:
            try:
                self.path.rmdir()  # only if empty: nothing of anyone else's is removed
            except OSError:
                pass


# -- reading a finished run folder ------------------------------------------------------


def read_json(path: Path, what: str) -> Any:
    """The JSON content of a run folder's file ``path`` (``what`` names it in errors).

    Raises:
        ModelError: the file is missing (is this a run folder?) or unreadable.
    """
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{path}: {what} not found; is this a run folder written by 'serkit run'?") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(f"{path}: cannot read {what} ({err})") from err


def read_model_description(ckpt_dir: Path) -> dict[str, Any]:
    """``checkpoints/model.json``: the resolved recipe, the streams, each domain's head labels and head.

    Raises:
        ModelError: the file is missing, unreadable, or lacks one of :data:`MODEL_FIELDS`.
    """
    model_json = ckpt_dir / "model.json"
    info = read_json(model_json, "model description")
    for key in MODEL_FIELDS:
        if key not in info:
            raise ModelError(f"{model_json}: missing field {key!r}")
    return info  # type: ignore[no-any-return]


def finished_checkpoints(ckpt_dir: Path) -> list[str]:
    """The run ids of the finished runs' checkpoints (``r0-f1.safetensors`` -> ``r0-f1``).

    Training states (``r0-f1.last.e0003.safetensors``) and the speaker statistics are not
    checkpoints. When the run folder has a ``results.json``, only the runs it lists count:
    a checkpoint of another run (left by an older run in the same folder) is not offered.
    """
    names = {p.name.removesuffix(".safetensors") for p in ckpt_dir.glob("*.safetensors")}
    names = {n for n in names if "." not in n and f"{n}.safetensors" not in SPEAKER_NORM_FILES}
    results_path = ckpt_dir.parent / "results.json"
    if results_path.is_file():
        results = read_json(results_path, "results")
        listed = {str(r.get("id")) for r in results.get("runs", []) if isinstance(r, dict)}
        if listed:
            names &= listed
    return sorted(names)


def choose_checkpoint(run_dir: Path, checkpoint: str | None) -> str:
    """The run id of ``run_dir``'s checkpoint to load: ``checkpoint``, or the best one when
    it is None (see :func:`best_checkpoint`).

    Raises:
        ModelError: the folder has no finished checkpoint, or ``checkpoint`` is not one (the
            message lists them).
    """
    ckpt_dir = run_dir / "checkpoints"
    available = finished_checkpoints(ckpt_dir)
    if not available:
        raise ModelError(f"{ckpt_dir}: no checkpoints (*.safetensors)")
    if checkpoint is None:
        return best_checkpoint(run_dir, available)
    if checkpoint not in available:
        raise ModelError(f"unknown checkpoint {checkpoint!r} in {ckpt_dir}; available: {', '.join(available)}")
    return checkpoint


def best_checkpoint(run_dir: Path, available: list[str]) -> str:
    """The run id with the highest mean validation UA over domains (first on ties).

    Raises:
        ModelError: without ``results.json`` and with several checkpoints, or when it lists
            none of ``available``.
    """
    import numpy as np

    results_path = run_dir / "results.json"
    if not results_path.is_file():
        if len(available) == 1:
            return available[0]
        raise ModelError(
            f"{results_path}: not found, so the best checkpoint is unknown; pass checkpoint= (--checkpoint on "
            f"the command line; available: {', '.join(available)})"
        )
    results = read_json(results_path, "results")
    best_id, best_score = None, -math.inf
    for run in results.get("runs", []):
        rid = run.get("id")
        if rid not in available:
            continue
        values = [float(m["ua"]) for m in (run.get("val") or {}).values() if m.get("n")]
        values = [v for v in values if math.isfinite(v)]
        score = float(np.mean(values)) if values else -math.inf
        if best_id is None or score > best_score:
            best_id, best_score = rid, score
    if best_id is None:
        raise ModelError(
            f"{results_path}: lists none of the checkpoints in {run_dir / 'checkpoints'} "
            f"({', '.join(available)}); pass checkpoint= (--checkpoint on the command line)"
        )
    return str(best_id)


def verify_export(folder: str | Path) -> None:
    """Check every file listed in ``export.json`` against its SHA-256 (no-op without one).

    Raises:
        ModelError: a listed file is missing or its content changed.
    """
    from serkit.data.audio import file_sha256

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
        if file_sha256(path) != digest:
            raise ModelError(
                f"{folder}: {rel} does not match its SHA-256 in {EXPORT_MANIFEST}; refusing a modified model"
            )
