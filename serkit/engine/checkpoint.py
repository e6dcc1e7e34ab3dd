"""Checkpoints without pickle: safetensors weights + a JSON config.

Besides the final weights of a run (:func:`save_checkpoint`), a run in progress keeps a
resumable **training state** after every finished epoch (:func:`save_train_state`): any
nested structure of dicts, lists, tuples, numbers, strings, tensors and numpy arrays
(model and optimizer state, RNG states, history...). Tensors and arrays go to one
safetensors file, everything else to JSON that references them:

- ``<stem>.json``: ``{"format", "tensors": file name, "sha256": of that file, "state"}``;
- ``<stem>.e<epoch>.safetensors``: the tensors, under a name per epoch.

The tensor file is written first, then the JSON (each atomically), then older tensor
files are removed; whatever moment a crash hits, the JSON names a complete tensor file.

A run's final weights (:func:`save_checkpoint`) get a ``<file>.sha256`` next to them (the
``sha256sum`` format, so ``sha256sum -c`` checks it too), written after the weights;
:func:`load_weights` and :func:`verify_checkpoint` refuse a file that no longer matches it.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from serkit.errors import ModelError
from serkit.io import atomic_write_bytes, atomic_write_json, atomic_write_text

__all__ = [
    "CHECKPOINT_FORMAT",
    "TRAIN_STATE_FORMAT",
    "checksum_file",
    "delete_train_state",
    "load_train_state",
    "load_weights",
    "rng_state",
    "save_checkpoint",
    "save_train_state",
    "set_rng_state",
    "verify_checkpoint",
]

CHECKPOINT_FORMAT = "serkit-checkpoint-1"
TRAIN_STATE_FORMAT = "serkit-train-state-1"


def checksum_file(path: Path) -> Path:
    """The SHA-256 file written next to a checkpoint: ``<name>.safetensors.sha256``."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def save_checkpoint(
    path: Path, state_dict: dict[str, torch.Tensor], config: dict[str, Any] | None = None
) -> None:
    """Write ``path`` (.safetensors) atomically, then its SHA-256 (:func:`checksum_file`),
    and ``config`` next to it as JSON if given."""
    from safetensors.torch import save

    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    blob = save(tensors, metadata={"format": CHECKPOINT_FORMAT})
    atomic_write_bytes(path, blob)
    atomic_write_text(checksum_file(path), f"{hashlib.sha256(blob).hexdigest()}  {path.name}\n")
    if config is not None:
        atomic_write_json(path.with_suffix(".json"), {"format": CHECKPOINT_FORMAT, **config})


def verify_checkpoint(path: Path, data: bytes | None = None) -> bool:
    """Check a checkpoint against the SHA-256 written when it was saved.

    Args:
        path: the ``.safetensors`` file.
        data: its bytes, if already read.

    Returns:
        True when it matches; False when it has no checksum file (written by serkit before
        checksums were kept).

    Raises:
        ModelError: the file or its checksum file cannot be read, or they do not match
            (the message names the file).
    """
    path = Path(path)
    sidecar = checksum_file(path)
    try:
        text = sidecar.read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    except (OSError, UnicodeDecodeError) as err:
        raise ModelError(f"{sidecar}: cannot read the checkpoint's checksum ({err})") from None
    expected = text.split()[0].lower() if text.split() else ""
    if len(expected) != 64:
        raise ModelError(f"{sidecar}: not a SHA-256 checksum file (expected '<64 hex digits>  {path.name}')")
    if data is None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ModelError(f"{path}: checkpoint not found") from None
        except OSError as err:
            raise ModelError(f"{path}: cannot read checkpoint ({err.strerror or err})") from None
    got = hashlib.sha256(data).hexdigest()
    if got != expected:
        raise ModelError(
            f"{path}: the checkpoint does not match the SHA-256 written when it was saved ({sidecar.name}: "
            f"{expected[:12]}..., file: {got[:12]}...); it was modified or corrupted. Refusing to load it: "
            "rerun the training (serkit run --resume retrains only the runs whose checkpoints are gone "
            "once you delete this file and its runs/<id>.json)"
        )
    return True


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors checkpoint written by :func:`save_checkpoint` (never unpickles).

    The file is checked against its SHA-256 (:func:`verify_checkpoint`) first.

    Raises:
        ModelError: missing, unreadable, modified since it was saved, or not safetensors.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ModelError(f"{path}: checkpoint not found") from None
    except OSError as err:
        raise ModelError(f"{path}: cannot read checkpoint ({err.strerror or err})") from None
    verify_checkpoint(Path(path), data)
    try:
        return load(data)
    except (SafetensorError, ValueError, json.JSONDecodeError) as err:
        if data[:4] == b"PK\x03\x04" or (data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")):
            raise ModelError(  # a torch.save zip or a pickle (protocol >= 2)
                f"{path}: this is a pickle (torch.save) file, not safetensors; serkit never unpickles "
                "checkpoints (convert it with safetensors.torch.save_file in a trusted environment)"
            ) from None
        raise ModelError(f"{path}: not a valid safetensors checkpoint ({err})") from err


# -- resumable training state -------------------------------------------------------------
class _Packer:
    """Turns a nested state into JSON-able data; tensors and arrays are collected apart."""

    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}
        self._storages: set[int] = set()

    def _add(self, t: torch.Tensor) -> str:
        # safetensors refuses tensors that share memory (tied weights, views): copy those
        if t.numel():
            ptr = t.untyped_storage().data_ptr()
            if ptr in self._storages:
                t = t.clone()
            self._storages.add(t.untyped_storage().data_ptr())
        name = f"t{len(self.tensors)}"
        self.tensors[name] = t
        return name

    def encode(self, obj: Any) -> Any:
        if isinstance(obj, torch.Tensor):
            return {"__tensor__": self._add(obj.detach().cpu().contiguous())}
        if isinstance(obj, np.ndarray):
            arr = np.ascontiguousarray(obj)
            name = self._add(torch.frombuffer(bytearray(arr.tobytes()), dtype=torch.uint8))
            return {"__ndarray__": name, "dtype": arr.dtype.str, "shape": list(arr.shape)}
        if isinstance(obj, (bool, str)) or obj is None:
            return obj
        if isinstance(obj, (int, np.integer)):
            return int(obj)
        if isinstance(obj, (float, np.floating)):
            value = float(obj)
            return value if math.isfinite(value) else {"__float__": repr(value)}
        if isinstance(obj, tuple):
            return {"__tuple__": [self.encode(v) for v in obj]}
        if isinstance(obj, list):
            return [self.encode(v) for v in obj]
        if isinstance(obj, dict):
            if all(isinstance(k, str) and not k.startswith("__") for k in obj):
                return {k: self.encode(v) for k, v in obj.items()}
            return {"__items__": [[self.encode(k), self.encode(v)] for k, v in obj.items()]}
        raise TypeError(f"cannot store a {type(obj).__name__} in a training state")


def _decode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        return tensors[obj["__tensor__"]]
    if "__ndarray__" in obj:
        raw = tensors[obj["__ndarray__"]].numpy().tobytes()
        return np.frombuffer(raw, dtype=np.dtype(obj["dtype"])).reshape(obj["shape"]).copy()
    if "__float__" in obj:
        return float(obj["__float__"])
    if "__tuple__" in obj:
        return tuple(_decode(v, tensors) for v in obj["__tuple__"])
    if "__items__" in obj:
        return {_decode(k, tensors): _decode(v, tensors) for k, v in obj["__items__"]}
    return {k: _decode(v, tensors) for k, v in obj.items()}


def save_train_state(path: Path, state: Any, *, tag: str) -> None:
    """Write ``state`` as ``path`` (JSON) + ``<path stem>.<tag>.safetensors``, crash-safely.

    Args:
        path: the JSON file, e.g. ``checkpoints/r0-f0.last.json``.
        state: nested dicts/lists/tuples of JSON scalars, tensors and numpy arrays (dict
            keys may be ints, as in optimizer states).
        tag: names this version's tensor file (e.g. ``e0003`` for epoch 3); the tensor
            files of other tags are removed once the JSON points at the new one.
    """
    from safetensors.torch import save

    path = Path(path)
    packer = _Packer()
    encoded = packer.encode(state)
    blob = save(packer.tensors, metadata={"format": TRAIN_STATE_FORMAT})
    tensor_file = path.with_name(f"{path.stem}.{tag}.safetensors")
    atomic_write_bytes(tensor_file, blob)
    atomic_write_json(
        path,
        {
            "format": TRAIN_STATE_FORMAT,
            "tensors": tensor_file.name,
            "sha256": hashlib.sha256(blob).hexdigest(),
            "state": encoded,
        },
    )
    for old in path.parent.glob(f"{path.stem}.*.safetensors"):
        if old.name != tensor_file.name:
            old.unlink(missing_ok=True)


def load_train_state(path: Path) -> Any:
    """Read a state written by :func:`save_train_state` (never unpickles).

    Raises:
        ModelError: the JSON or its tensor file is missing, unreadable, of another format,
            or the tensor file does not match its recorded SHA-256 (names the file).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load

    path = Path(path)
    try:
        head = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{path}: training state not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(f"{path}: unreadable training state ({err})") from err
    if not isinstance(head, dict) or head.get("format") != TRAIN_STATE_FORMAT:
        got = head.get("format") if isinstance(head, dict) else type(head).__name__
        raise ModelError(f"{path}: not a serkit training state (format {got!r}, expected {TRAIN_STATE_FORMAT!r})")
    tensor_file = path.with_name(str(head.get("tensors", "")))
    try:
        blob = tensor_file.read_bytes()
    except OSError as err:
        raise ModelError(f"{path}: its tensor file {tensor_file.name} cannot be read ({err})") from err
    if hashlib.sha256(blob).hexdigest() != head.get("sha256"):
        raise ModelError(f"{tensor_file}: checksum mismatch; the training state is corrupt")
    try:
        tensors = load(blob)
        return _decode(head["state"], tensors)
    except (SafetensorError, KeyError, TypeError, ValueError) as err:
        raise ModelError(f"{path}: malformed training state ({err})") from err


def delete_train_state(path: Path) -> None:
    """Remove ``path`` (JSON) and its tensor files (a finished run needs no resume state)."""
    path = Path(path)
    for old in path.parent.glob(f"{path.stem}.*.safetensors"):
        old.unlink(missing_ok=True)
    path.unlink(missing_ok=True)


def rng_state() -> dict[str, Any]:
    """The process's random states: Python, NumPy (global), torch CPU and CUDA."""
    import random

    out: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned (after a round trip through a training state)."""
    import random

    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(tuple(state["numpy"]))  # type: ignore[arg-type]
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))
