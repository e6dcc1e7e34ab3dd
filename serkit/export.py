"""``serkit export``: a self-contained model folder that :func:`serkit.load_model` reads anywhere.

The folder holds one checkpoint (safetensors), the model description (resolved recipe,
streams, label maps, extractor specs), the speaker-normalisation statistics of runs
trained with ``data.speaker_norm``, the run's results for provenance, and
``export.json`` with the SHA-256 of every file, checked on load: a changed or truncated
file is refused.

``serkit export RUN_DIR --format onnx`` (:func:`export_onnx`) writes instead the classifier
that sits on top of the cached features -- encoders, fusion and one domain's head -- as one
ONNX file per domain, plus ``serkit_onnx.json`` describing the inputs, labels and feature
extractors. It uses PyTorch's TorchScript-based exporter (``torch.onnx.export(...,
dynamo=False)``): the ``torch.export``-based (dynamo) exporter, PyTorch's default since 2.9,
cannot export the sequence encoders, whose padding masks and within-length reversal
depend on the values of the ``lengths`` input (it stops with
``GuardOnDataDependentSymNode``). Every file is checked with onnxruntime after export
(another batch size and sequence length than the export used) when onnxruntime is
installed.

The ONNX models start from features, not audio: :func:`onnx_feeds` computes their inputs
for audio files exactly as in training (each stream's extractor from the sidecar, at its
sample rate, rounded to float16 when the run stored float16 features, sequences padded
into one batch with their lengths).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from serkit.data.audio import file_sha256
from serkit.engine.run_folder import EXPORT_MANIFEST, SPEAKER_NORM_FILES, run_checkpoint, verify_export
from serkit.errors import ModelError
from serkit.io import atomic_write_json
from serkit.version import __version__

if TYPE_CHECKING:
    import torch

    from serkit.inference import LoadedModel

__all__ = [
    "EXPORT_MANIFEST",
    "ONNX_OPSET",
    "ONNX_SIDECAR",
    "export_model",
    "export_onnx",
    "onnx_feeds",
    "verify_export",
]

#: The JSON file that describes an ONNX export (inputs, labels, extractors).
ONNX_SIDECAR = "serkit_onnx.json"

#: ONNX opset of :func:`export_onnx`.
ONNX_OPSET = 17

#: Largest absolute difference between onnxruntime's and torch's logits accepted after export.
ONNX_TOLERANCE = 1e-4


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
        f"checkpoints/{model.checkpoint}.safetensors": run_checkpoint(run_dir, model.checkpoint),
        # its SHA-256 written at training time (load_model checks it like the run folder's)
        f"checkpoints/{model.checkpoint}.safetensors.sha256": (
            run_dir / "checkpoints" / f"{model.checkpoint}.safetensors.sha256"
        ),
        "checkpoints/model.json": run_dir / "checkpoints" / "model.json",
        # data.speaker_norm runs: the per-speaker and global statistics predict needs
        **{f"checkpoints/{n}": run_dir / "checkpoints" / n for n in SPEAKER_NORM_FILES},
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
        "files": {rel: file_sha256(tmp / rel) for rel in files if (tmp / rel).is_file()},
    }
    atomic_write_json(tmp / EXPORT_MANIFEST, manifest)
    if out.exists():
        out.rmdir()
    tmp.rename(out)
    return out


def _require_onnx() -> None:
    if importlib.util.find_spec("onnx") is None:
        raise ModelError("ONNX export needs the onnx package: pip install 'serkit[onnx]'")


def _onnx_inputs(model: LoadedModel) -> list[dict[str, Any]]:
    """One entry per ONNX input: name, symbolic shape, dtype, and the stream it belongs to."""
    out: list[dict[str, Any]] = []
    for info in model.network.stream_infos:
        if info.output == "sequence":  # padded frames + lengths (also a fine-tuned extractor's input)
            out.append({"name": info.name, "shape": ["batch", f"{info.name}_time", info.dim], "dtype": "float32"})
            out.append({"name": f"{info.name}_lengths", "shape": ["batch"], "dtype": "int64"})
        else:
            out.append({"name": info.name, "shape": ["batch", info.dim], "dtype": "float32"})
    names = [i["name"] for i in out]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise ModelError(f"ONNX export: input name(s) {clash} are used twice; rename the stream(s)")
    return out


def _example_inputs(inputs: list[dict[str, Any]], batch: int, time: int, seed: int) -> list[torch.Tensor]:
    """Random inputs of ``batch`` rows; sequences padded to ``time`` frames, the first row full length."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    out: list[torch.Tensor] = []
    for spec in inputs:
        if spec["dtype"] == "int64":
            lengths = torch.randint(1, time + 1, (batch,), generator=gen)
            lengths[0] = time
            out.append(lengths)
        elif len(spec["shape"]) == 3:
            out.append(torch.randn(batch, time, spec["shape"][2], generator=gen))
        else:
            out.append(torch.randn(batch, spec["shape"][1], generator=gen))
    return out


def _onnx_head(model: LoadedModel, domain: str) -> torch.nn.Module:
    """``forward(*inputs) -> logits (B, C)``: encoders, fusion and ``domain``'s head of the model."""
    from torch import nn

    network = model.network

    class _DomainClassifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network = network

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            values: dict[str, Any] = {}
            k = 0
            for info in self.network.stream_infos:
                if info.output == "sequence":
                    values[info.name] = (inputs[k], inputs[k + 1])
                    k += 2
                else:
                    values[info.name] = inputs[k]
                    k += 1
            fused = self.network.fusion(self.network.encode(values, domain), domain)
            return self.network.heads[self.network.head_of[domain]](fused.representation)

    return _DomainClassifier().eval()


def _verify_onnx(path: Path, module: torch.nn.Module, inputs: list[dict[str, Any]]) -> float | None:
    """Max |onnxruntime - torch| of the logits on fresh inputs (batch 3, 23 frames), or None without onnxruntime."""
    if importlib.util.find_spec("onnxruntime") is None:
        return None
    import numpy as np
    import onnxruntime
    import torch

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    example = _example_inputs(inputs, batch=3, time=23, seed=1)
    with torch.inference_mode():
        expected = module(*example).numpy()
    (got,) = session.run(["logits"], {spec["name"]: x.numpy() for spec, x in zip(inputs, example, strict=True)})
    return float(np.abs(got - expected).max())


def export_onnx(run_dir: str | Path, out: str | Path, checkpoint: str | None = None) -> Path:
    """Write ``out/<domain>.onnx`` per domain and ``out/serkit_onnx.json`` for a run's checkpoint.

    Each ONNX model maps the run's cached features to the domain head's logits: inputs
    ``<stream>`` ``(batch, <stream>_time, d)`` float32 plus ``<stream>_lengths`` ``(batch,)``
    int64 for each sequence stream, ``<stream>`` ``(batch, d)`` float32 for each vector
    stream; output ``logits`` ``(batch, C)`` in the label order of the sidecar. Batch and
    time axes are dynamic. Features must be computed as in training (the sidecar lists each
    extractor's spec; ``store_dtype: float16`` means the run's features were rounded to
    float16; runs with ``data.speaker_norm`` expect features standardised per speaker with
    the statistics copied next to the models, see ``speaker_norm`` in the sidecar).

    Args:
        run_dir: a run folder (or an exported model folder).
        out: a new (or empty) folder.
        checkpoint: run id such as ``r0-f1``; default: the best validation UA.

    Raises:
        ModelError: onnx is not installed, the run cannot be loaded, ``out`` is not empty,
            or the exported model's logits differ from torch's by more than 1e-4.
    """
    _require_onnx()
    from serkit.inference import load_model

    run_dir, out = Path(run_dir), Path(out)
    model = load_model(run_dir, checkpoint=checkpoint, device="cpu")
    if out.exists() and any(out.iterdir()):
        raise ModelError(f"export: {out} exists and is not empty; choose a new folder")
    inputs = _onnx_inputs(model)
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    domains: dict[str, Any] = {}
    for domain in model.domains:
        try:
            domains[domain] = _export_domain(model, domain, inputs, tmp)
        except ModelError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    norm_files = []
    if model.speaker_norm is not None:
        for name in SPEAKER_NORM_FILES:
            shutil.copyfile(run_dir / "checkpoints" / name, tmp / name)
            norm_files.append(name)
    sidecar = {
        "format": "serkit-onnx-1",
        "serkit_version": __version__,
        "source_run": str(run_dir.resolve()),
        "checkpoint": model.checkpoint,
        "exporter": "torch.onnx.export (TorchScript-based, dynamo=False)",
        "opset": ONNX_OPSET,
        "inputs": inputs,
        "streams": _stream_specs(model),
        "store_dtype": model.store_dtype,
        "speaker_norm": (
            {
                "files": norm_files,
                "how": "x = (features - mean) / std per speaker and stream, before the model; see "
                "serkit.inference.load_speaker_norm",
            }
            if norm_files
            else None
        ),
        "domains": domains,
    }
    atomic_write_json(tmp / ONNX_SIDECAR, sidecar)
    if out.exists():
        out.rmdir()
    tmp.rename(out)
    return out


def _export_domain(model: LoadedModel, domain: str, inputs: list[dict[str, Any]], folder: Path) -> dict[str, Any]:
    """Write ``folder/<domain>.onnx``, check it (onnx checker, onnxruntime against torch); its sidecar entry.

    Raises:
        ModelError: the exporter failed, or onnxruntime's logits differ from torch's by more
            than :data:`ONNX_TOLERANCE`.
    """
    import onnx
    import torch

    names = [i["name"] for i in inputs]
    dynamic_axes: dict[str, dict[int, str]] = {"logits": {0: "batch"}}
    for spec in inputs:
        dynamic_axes[spec["name"]] = {k: v for k, v in enumerate(spec["shape"]) if isinstance(v, str)}
    module = _onnx_head(model, domain)
    path = folder / f"{domain}.onnx"
    example = tuple(_example_inputs(inputs, batch=2, time=16, seed=0))
    try:
        with warnings.catch_warnings():  # tracer notes about the (constant) shape checks
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                example,
                str(path),
                dynamo=False,
                opset_version=ONNX_OPSET,
                input_names=names,
                output_names=["logits"],
                dynamic_axes=dynamic_axes,
            )
    except Exception as err:  # the exporter's own exception types vary between torch versions
        raise ModelError(f"ONNX export of domain {domain!r} failed: {type(err).__name__}: {err}") from err
    labels = model.labels(domain)
    proto = onnx.load(str(path))
    onnx.helper.set_model_props(
        proto,
        {"serkit.domain": domain, "serkit.labels": json.dumps(labels), "serkit.version": __version__},
    )
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    error = _verify_onnx(path, module, inputs)
    if error is not None and error > ONNX_TOLERANCE:
        raise ModelError(
            f"ONNX export of domain {domain!r}: onnxruntime's logits differ from torch's by {error:.2e} "
            f"(> {ONNX_TOLERANCE}); not exported"
        )
    return {
        "file": path.name,
        "head": model.network.head_of[domain],
        "labels": labels,
        "outputs": [{"name": "logits", "shape": ["batch", len(labels)], "dtype": "float32"}],
        "verified_max_abs_error": error,
        "sha256": file_sha256(path),
    }


def _stream_specs(model: LoadedModel) -> list[dict[str, Any]]:
    """The sidecar's ``streams``: each stream's kind, width, sample rate, extractor and encoder spec."""
    recipe = model.recipe
    streams = []
    for info in model.network.stream_infos:
        spec = recipe.features[info.name]
        streams.append(
            {
                "name": info.name,
                "output": info.output,
                "dim": info.dim,
                "sample_rate": int(model.extractors[info.name].sample_rate),
                "extractor": spec.extractor.model_dump(mode="json"),
                "encoder": spec.encoder.model_dump(mode="json") if spec.encoder is not None else None,
            }
        )
    return streams


def onnx_feeds(folder: str | Path, audio: list[str] | str) -> dict[str, Any]:
    """The inputs of an ONNX export (:func:`export_onnx`) for audio files, as numpy arrays.

    For each stream of ``serkit_onnx.json``: the files are loaded at the stream's sample
    rate, its extractor (the sidecar's spec; its plugin must be installed) computes the
    features as in training, rounded to float16 and back when ``store_dtype`` is float16;
    sequences ``(L_i, d)`` are zero-padded into ``(B, max L, d)`` float32 plus
    ``<stream>_lengths`` ``(B,)`` int64, vectors stacked into ``(B, d)``. Pass the result to
    ``onnxruntime.InferenceSession(folder / "<domain>.onnx").run(["logits"], feeds)``.

    Args:
        folder: the folder written by ``serkit export --format onnx``.
        audio: an audio file or a list of them (one batch).

    Raises:
        ModelError: no sidecar, or the run standardised features per speaker
            (``speaker_norm``: standardise them with its statistics yourself).
        AudioError: a file cannot be used.
    """
    import numpy as np

    from serkit.data.audio import load_audio
    from serkit.plugins import get_registry

    folder = Path(folder)
    sidecar_path = folder / ONNX_SIDECAR
    try:
        sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{sidecar_path}: not found; is {folder} written by 'serkit export --format onnx'?") from None
    except (OSError, ValueError) as err:
        raise ModelError(f"{sidecar_path}: unreadable ({err})") from None
    if sidecar.get("speaker_norm"):
        raise ModelError(
            f"{sidecar_path}: the model expects features standardised per speaker (speaker_norm); standardise "
            "them with the statistics next to it (serkit.inference.load_speaker_norm) after onnx_feeds"
        )
    files = [audio] if isinstance(audio, str) else list(audio)
    registry = get_registry()
    kinds = {spec["name"]: spec for spec in sidecar["inputs"]}
    feeds: dict[str, Any] = {}
    for stream in sidecar["streams"]:
        extractor = registry.create("extractor", stream["extractor"])
        wavs = [load_audio(f, int(stream["sample_rate"])) for f in files]
        feats = [np.asarray(x, dtype=np.float32) for x in extractor.extract_batch(wavs)]
        if sidecar.get("store_dtype") == "float16":
            with np.errstate(over="ignore"):
                feats = [x.astype(np.float16).astype(np.float32) for x in feats]
        name = stream["name"]
        if len(kinds[name]["shape"]) == 3:
            lengths = np.array([x.shape[0] for x in feats], dtype=np.int64)
            batch = np.zeros((len(feats), int(lengths.max()), feats[0].shape[1]), dtype=np.float32)
            for i, x in enumerate(feats):
                batch[i, : x.shape[0]] = x
            feeds[name], feeds[f"{name}_lengths"] = batch, lengths
        else:
            feeds[name] = np.stack(feats).astype(np.float32)
    return feeds
