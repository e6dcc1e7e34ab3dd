"""Use a trained run: ``load_model(run_dir)`` -> ``model.predict(files)`` / ``model.embed(files)``.

A run folder (written by ``serkit run``) holds ``checkpoints/model.json`` (the resolved
recipe, the streams, each domain's head labels) and one safetensors checkpoint per
(repeat, fold) run. :func:`load_model` rebuilds the extractors and the network from the
stored recipe, loads one checkpoint strictly and returns a :class:`LoadedModel` that
turns audio files or waveforms into emotion probabilities:

    >>> model = load_model("runs/quickstart-20240101-120000")  # doctest: +SKIP
    >>> model.predict("clip.wav")[0].label  # doctest: +SKIP
    'angry'

Features are computed exactly as for training (same extractor, same storage precision),
so the model reproduces the run's test predictions. Checkpoints are read with
safetensors only (never unpickled).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from serkit.errors import AudioError, ModelError, SerkitError

if TYPE_CHECKING:
    import torch

    from serkit.engine.model import SerModel

__all__ = [
    "AUDIO_SUFFIXES",
    "LoadedModel",
    "Prediction",
    "WindowPrediction",
    "find_audio_files",
    "load_model",
]

#: File name endings (lower case) that :func:`find_audio_files` collects from folders.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")

#: Windows shorter than this (seconds) at the end of a file are dropped (unless the file
#: has no other window); matches the minimum duration of :func:`serkit.data.audio.load_audio`.
MIN_WINDOW_SECONDS = 0.1

Input = Union[str, os.PathLike, np.ndarray]  # noqa: UP007


@dataclass(frozen=True)
class WindowPrediction:
    """The prediction for one window ``[start, end)`` (seconds) of an input."""

    start: float
    end: float
    label: str
    probabilities: dict[str, float]


@dataclass(frozen=True)
class Prediction:
    """The prediction for one input.

    Attributes:
        source: the file path, or ``"<array i>"`` for the ``i``-th waveform given.
        domain: the domain whose head produced the probabilities.
        label: the most probable label.
        probabilities: label -> softmax probability over the domain head's labels. With
            windows, the mean of the windows' probabilities.
        windows: per-window predictions when ``window_seconds`` was given, else None.
    """

    source: str
    domain: str
    label: str
    probabilities: dict[str, float]
    windows: list[WindowPrediction] | None = None


def find_audio_files(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Files as given, and folders searched recursively for :data:`AUDIO_SUFFIXES`.

    Folder contents are sorted; a folder without audio files raises :class:`SerkitError`.
    Paths that do not exist are returned as given (loading them reports the problem).
    """
    out: list[str] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            found = sorted(str(f) for f in path.rglob("*") if f.is_file() and f.name.lower().endswith(AUDIO_SUFFIXES))
            if not found:
                raise SerkitError(f"{path}: no audio files ({', '.join(AUDIO_SUFFIXES)}) in this folder")
            out.extend(found)
        else:
            out.append(str(path))
    return out


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{path}: {what} not found; is this a run folder written by 'serkit run'?") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(f"{path}: cannot read {what} ({err})") from err


def _available_checkpoints(ckpt_dir: Path) -> list[str]:
    return sorted(p.name.removesuffix(".safetensors") for p in ckpt_dir.glob("*.safetensors"))


def _best_run(run_dir: Path, available: list[str]) -> str:
    """The run id with the highest mean validation UA over domains (first on ties)."""
    results_path = run_dir / "results.json"
    if not results_path.is_file():
        if len(available) == 1:
            return available[0]
        raise ModelError(
            f"{results_path}: not found, so the best checkpoint is unknown; pass checkpoint= "
            f"(available: {', '.join(available)})"
        )
    results = _read_json(results_path, "results")
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
            f"({', '.join(available)}); pass checkpoint="
        )
    return best_id


_COMPONENT_FIELDS = (
    ("extractor", "features.{}.extractor"),
    ("encoder", "features.{}.encoder"),
)


def _check_components(config: dict[str, Any], registry: Any, model_json: Path) -> dict[str, Any]:
    """Raise a ModelError naming every component the current registry lacks.

    Datasets are not needed to predict: a domain whose dataset type is not registered
    gets the built-in ``synthetic`` spec in the returned copy, only so that the stored
    recipe validates (it is never instantiated).
    """
    recipe = json.loads(json.dumps(config))
    needed: list[tuple[str, str, str]] = []  # (kind, name, recipe path)
    for sid, stream in (recipe.get("features") or {}).items():
        for kind, path in _COMPONENT_FIELDS:
            spec = stream.get(kind)
            if isinstance(spec, dict) and "type" in spec:
                needed.append((kind, str(spec["type"]), path.format(sid)))
    if isinstance(recipe.get("fusion"), dict):
        needed.append(("fusion", str(recipe["fusion"].get("type")), "fusion"))
    for hid, spec in (recipe.get("heads") or {}).items():
        if isinstance(spec, dict):
            needed.append(("head", str(spec.get("type")), f"heads.{hid}"))
    for which in ("main", "aux"):
        spec = (recipe.get("loss") or {}).get(which)
        if isinstance(spec, dict):
            needed.append(("loss", str(spec.get("type")), f"loss.{which}"))
    if isinstance(recipe.get("optimizer"), dict):
        needed.append(("optimizer", str(recipe["optimizer"].get("type")), "optimizer"))
    missing = [(k, n, p) for k, n, p in needed if (k, n) not in registry]
    if missing:
        lines = "\n".join(f"  {p}: {k} '{n}'" for k, n, p in missing)
        raise ModelError(
            f"{model_json}: the model needs components that are not registered here:\n{lines}\n"
            "install the plugin(s) that provide them ('serkit plugins' lists what is installed)"
        )
    for spec in (recipe.get("domains") or {}).values():
        ds = spec.get("dataset") if isinstance(spec, dict) else None
        if isinstance(ds, dict) and ("dataset", str(ds.get("type"))) not in registry:
            spec["dataset"] = {"type": "synthetic"}
    return recipe


def load_model(
    run_dir: str | os.PathLike[str],
    checkpoint: str | None = None,
    device: str = "auto",
) -> LoadedModel:
    """Load a trained model from a ``serkit run`` folder.

    Args:
        run_dir: the run folder (holding ``checkpoints/model.json``).
        checkpoint: run id such as ``"r0-f1"``; default: the run with the highest mean
            validation UA over domains in ``results.json``.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...

    Raises:
        ModelError: not a run folder, unknown checkpoint, a component of the stored
            recipe is not registered, or the checkpoint is corrupt or does not fit the
            model (missing/unexpected/misshapen weights).
    """
    from serkit.config.recipe import validate_recipe_data
    from serkit.engine.checkpoint import load_weights
    from serkit.engine.data import StreamInfo
    from serkit.engine.device import resolve_device
    from serkit.engine.model import build_model
    from serkit.errors import RecipeError
    from serkit.plugins import get_plugin_manager

    root = Path(run_dir)
    from serkit.export import verify_export

    verify_export(root)  # exported folders carry checksums of every file
    ckpt_dir = root / "checkpoints"
    model_json = ckpt_dir / "model.json"
    info = _read_json(model_json, "model description")
    for key in ("recipe", "streams", "labels", "head_of"):
        if key not in info:
            raise ModelError(f"{model_json}: missing field {key!r}")
    available = _available_checkpoints(ckpt_dir)
    if not available:
        raise ModelError(f"{ckpt_dir}: no checkpoints (*.safetensors)")
    if checkpoint is None:
        checkpoint = _best_run(root, available)
    elif checkpoint not in available:
        raise ModelError(f"unknown checkpoint {checkpoint!r} in {ckpt_dir}; available: {', '.join(available)}")

    registry = get_plugin_manager().registry
    data = _check_components(info["recipe"], registry, model_json)
    try:
        recipe = validate_recipe_data(data, source=str(model_json), registry=registry)
    except RecipeError as err:
        raise ModelError(f"the stored recipe no longer validates with the installed components:\n{err}") from None
    if recipe.data.speaker_norm:
        raise ModelError(
            f"{model_json}: the run was trained with data.speaker_norm (per-speaker feature "
            "standardisation); predicting needs each speaker's statistics, which the run does not store"
        )
    streams = [StreamInfo(s["name"], s["output"], int(s["dim"])) for s in info["streams"]]
    extractors: dict[str, Any] = {}
    for s in streams:
        ext = registry.create("extractor", recipe.features[s.name].extractor)
        if ext.output != s.output or int(ext.dim) != s.dim:
            raise ModelError(
                f"{model_json}: stream {s.name!r} was trained on {s.output} features of dim {s.dim}; "
                f"extractor '{ext.name}' now gives {ext.output} of dim {ext.dim}"
            )
        extractors[s.name] = ext
    labels = {d: list(v) for d, v in info["labels"].items()}
    head_of = dict(info["head_of"])
    try:
        network = build_model(recipe, registry, streams, labels, head_of, extractors)
    except SerkitError:
        raise
    except Exception as err:  # a component's build() rejected the stored configuration
        raise ModelError(f"{model_json}: cannot build the model ({type(err).__name__}: {err})") from err
    path = ckpt_dir / f"{checkpoint}.safetensors"
    weights = load_weights(path)
    try:
        result = network.load_state_dict(weights, strict=False)
    except RuntimeError as err:  # shape mismatches
        raise ModelError(f"{path}: weights do not fit the model ({err})") from None
    if result.missing_keys or result.unexpected_keys:
        parts = []
        if result.missing_keys:
            parts.append(f"missing {', '.join(result.missing_keys)}")
        if result.unexpected_keys:
            parts.append(f"unexpected {', '.join(result.unexpected_keys)}")
        raise ModelError(f"{path}: weights do not fit the model ({'; '.join(parts)})")
    dev = resolve_device(device)
    network.to(dev)
    network.eval()
    return LoadedModel(
        network=network,
        extractors=extractors,
        recipe=recipe,
        run_dir=root,
        checkpoint=checkpoint,
        device=dev,
        store_dtype=str(recipe.store.dtype),
    )


@dataclass
class _Item:
    """One unit the network sees: a whole input or one window of it."""

    source: int  # index into the inputs
    start: float
    end: float
    wavs: dict[int, np.ndarray]  # sample rate -> waveform


class LoadedModel:
    """A trained model ready to predict; made by :func:`load_model`.

    Attributes:
        network: the :class:`~serkit.engine.model.SerModel` in eval mode.
        extractors: stream id -> extractor instance (in recipe order).
        recipe: the validated recipe of the run.
        run_dir: the run folder.
        checkpoint: the loaded run id (e.g. ``"r0-f0"``).
        device: the torch device the network is on.
    """

    def __init__(
        self,
        *,
        network: SerModel,
        extractors: dict[str, Any],
        recipe: Any,
        run_dir: Path,
        checkpoint: str,
        device: torch.device,
        store_dtype: str = "float32",
    ) -> None:
        self.network = network
        self.extractors = extractors
        self.recipe = recipe
        self.run_dir = run_dir
        self.checkpoint = checkpoint
        self.device = device
        self.store_dtype = store_dtype

    def __repr__(self) -> str:
        return f"LoadedModel({str(self.run_dir)!r}, checkpoint={self.checkpoint!r}, domains={self.domains})"

    # -- description ------------------------------------------------------------------
    @property
    def domains(self) -> list[str]:
        """The domains the model has heads for, in recipe order."""
        return list(self.network.labels)

    def labels(self, domain: str | None = None) -> list[str]:
        """The label list (output order) of ``domain``'s head."""
        return list(self.network.labels[self._domain(domain)])

    @property
    def sample_rates(self) -> list[int]:
        """Distinct sample rates of the extractors."""
        return sorted({int(e.sample_rate) for e in self.extractors.values()})

    def _domain(self, domain: str | None) -> str:
        domains = self.domains
        if domain is None:
            if len(domains) == 1:
                return domains[0]
            raise ModelError(f"the model has several domains; pass domain= one of: {', '.join(domains)}")
        if domain not in domains:
            raise ModelError(f"unknown domain {domain!r}; the model's domains: {', '.join(domains)}")
        return domain

    # -- inputs -----------------------------------------------------------------------
    def _sources(self, inputs: Input | Sequence[Input]) -> list[str | np.ndarray]:
        if isinstance(inputs, (str, os.PathLike)):
            return [os.fspath(inputs)]
        if isinstance(inputs, np.ndarray):
            if inputs.ndim == 2:
                raise AudioError("a 2-D array is ambiguous; pass a list of 1-D waveforms (one per utterance)")
            return [inputs]
        out: list[str | np.ndarray] = []
        for x in inputs:
            if isinstance(x, (str, os.PathLike)):
                out.append(os.fspath(x))
            elif isinstance(x, np.ndarray):
                out.append(x)
            else:
                raise AudioError(f"expected a path or a float32 waveform, got {type(x).__name__}")
        return out

    def _waveforms(self, src: str | np.ndarray, index: int, sample_rate: int | None) -> dict[int, np.ndarray]:
        """Sample rate -> waveform of one input, for every rate an extractor needs."""
        from serkit.data.audio import check_waveform, load_audio, resample

        rates = self.sample_rates
        if isinstance(src, str):
            return {sr: load_audio(src, sr) for sr in rates}
        name = f"<array {index}>"
        if sample_rate is None:
            if len(rates) > 1:
                raise ModelError(f"{name}: the extractors use sample rates {rates}; pass sample_rate= for waveforms")
            sample_rate = rates[0]
        wav = np.asarray(src)
        if wav.ndim != 1:
            raise AudioError(f"{name}: expected a 1-D waveform, got shape {tuple(wav.shape)}")
        if wav.dtype.kind != "f":
            raise AudioError(f"{name}: expected float samples in [-1, 1], got dtype {wav.dtype}")
        wav = np.ascontiguousarray(wav, dtype=np.float32)
        check_waveform(wav, sample_rate, name)
        return {sr: resample(wav, sample_rate, sr) for sr in rates}

    @staticmethod
    def _windows(duration: float, window: float | None, hop: float | None) -> list[tuple[float, float]]:
        """``[(start, end)]`` seconds covering ``[0, duration]``."""
        if window is None:
            return [(0.0, duration)]
        hop = window if hop is None else hop
        out: list[tuple[float, float]] = []
        start = 0.0
        k = 0
        while True:
            end = min(start + window, duration)
            if not out or end - start >= MIN_WINDOW_SECONDS:
                out.append((start, end))
            if start + window >= duration:
                break
            k += 1
            start = k * hop
        return out

    def _items(
        self,
        sources: list[str | np.ndarray],
        window: float | None,
        hop: float | None,
        sample_rate: int | None,
        bad: list[tuple[str, str]] | None,
    ) -> Iterator[_Item]:
        """Each input (loaded one at a time), cut into windows."""
        for i, src in enumerate(sources):
            try:
                wavs = self._waveforms(src, i, sample_rate)
            except AudioError as err:
                if bad is None:
                    raise
                bad.append((self._name(src, i), str(err)))
                continue
            first = min(wavs)
            duration = wavs[first].shape[0] / first
            for start, end in self._windows(duration, window, hop):
                piece = {
                    sr: w[round(start * sr) : round(end * sr)] if window is not None else w for sr, w in wavs.items()
                }
                yield _Item(i, start, end, piece)

    @staticmethod
    def _name(src: str | np.ndarray, index: int) -> str:
        return src if isinstance(src, str) else f"<array {index}>"

    # -- features and forward ---------------------------------------------------------
    def _features(self, items: list[_Item], names: list[str]) -> dict[str, list[np.ndarray]]:
        """Stream id -> features per item, exactly as the feature store would return them."""
        from serkit.features.driver import validate_output

        out: dict[str, list[np.ndarray]] = {}
        for sid, ext in self.extractors.items():
            sr = int(ext.sample_rate)
            wavs = [it.wavs[sr] for it in items]
            try:
                raw = list(ext.extract_batch(wavs))
            except AudioError:
                raw = []
                for w, name in zip(wavs, names, strict=True):
                    try:
                        raw.append(ext.extract(w))
                    except AudioError as err:
                        raise AudioError(f"{name}: {err}") from err
            if len(raw) != len(items):
                raise ModelError(
                    f"extractor '{ext.name}' returned {len(raw)} outputs for a batch of {len(items)} waveforms"
                )
            feats = [validate_output(ext, a, name) for a, name in zip(raw, names, strict=True)]
            if self.store_dtype == "float16":  # the run trained on float16-stored features
                with np.errstate(over="ignore"):
                    feats = [f.astype(np.float16).astype(np.float32) for f in feats]
            out[sid] = feats
        return out

    def _forward(self, items: list[_Item], names: list[str], domain: str) -> tuple[np.ndarray, np.ndarray]:
        """Logits ``(B, C)`` and fused representations ``(B, D)`` of a batch of items."""
        import torch

        from serkit.engine.data import collate

        feats = self._features(items, names)
        rows = [({sid: feats[sid][j] for sid in feats}, 0, j) for j in range(len(items))]
        batch = collate(rows, domain).to(self.device)
        with torch.inference_mode():
            logits, fused = self.network(batch)
        return logits.float().cpu().numpy(), fused.representation.float().cpu().numpy()

    def _run(
        self,
        inputs: Input | Sequence[Input],
        domain: str,
        window: float | None,
        hop: float | None,
        batch_size: int,
        sample_rate: int | None,
        bad: list[tuple[str, str]] | None,
    ) -> Iterator[tuple[_Item, np.ndarray, np.ndarray]]:
        if batch_size < 1:
            raise ModelError(f"batch_size must be >= 1, got {batch_size}")
        if window is not None and not window > 0:
            raise ModelError(f"window_seconds must be > 0, got {window}")
        if hop is not None and (window is None or not hop > 0):
            raise ModelError(
                "hop_seconds needs window_seconds" if window is None else f"hop_seconds must be > 0, got {hop}"
            )
        sources = self._sources(inputs)
        pending: list[_Item] = []

        def flush() -> Iterator[tuple[_Item, np.ndarray, np.ndarray]]:
            names = [self._name(sources[it.source], it.source) for it in pending]
            logits, reps = self._forward(pending, names, domain)
            for j, it in enumerate(pending):
                yield it, logits[j], reps[j]
            pending.clear()

        for item in self._items(sources, window, hop, sample_rate, bad):
            pending.append(item)
            if len(pending) >= batch_size:
                yield from flush()
        if pending:
            yield from flush()

    def _whole_files(
        self,
        inputs: Input | Sequence[Input],
        domain: str,
        which: int,
        width: int,
        sample_rate: int | None,
        batch_size: int,
    ) -> np.ndarray:
        """Stack element ``which`` (1: logits, 2: representation) of :meth:`_run`'s rows: ``(N, width)``."""
        rows = [row[which] for row in self._run(inputs, domain, None, None, batch_size, sample_rate, None)]
        return np.stack(rows) if rows else np.zeros((0, width), dtype=np.float32)

    # -- public API -------------------------------------------------------------------
    def logits(
        self,
        inputs: Input | Sequence[Input],
        domain: str | None = None,
        *,
        sample_rate: int | None = None,
        batch_size: int = 16,
    ) -> np.ndarray:
        """Raw head outputs ``(N, C)`` of ``domain`` for N inputs (whole files)."""
        d = self._domain(domain)
        return self._whole_files(inputs, d, 1, len(self.labels(d)), sample_rate, batch_size)

    def embed(
        self,
        inputs: Input | Sequence[Input],
        domain: str | None = None,
        *,
        sample_rate: int | None = None,
        batch_size: int = 16,
    ) -> np.ndarray:
        """The fused representation (fusion output) ``(N, D)`` of N inputs for ``domain``."""
        d = self._domain(domain)
        return self._whole_files(inputs, d, 2, int(self.network.fusion.out_dim), sample_rate, batch_size)

    def predict(
        self,
        inputs: Input | Sequence[Input],
        domain: str | None = None,
        *,
        window_seconds: float | None = None,
        hop_seconds: float | None = None,
        batch_size: int = 16,
        sample_rate: int | None = None,
        bad: list[tuple[str, str]] | None = None,
    ) -> list[Prediction]:
        """Emotion probabilities of audio files or waveforms.

        Args:
            inputs: a path, a float32 waveform ``(n_samples,)``, or a list of them.
            domain: whose head to use; required when the model has several domains.
            window_seconds: cut every input into windows of this length (the last one may
                be shorter) and average the windows' probabilities; memory then depends on
                ``batch_size`` windows, not on the file length.
            hop_seconds: start-to-start distance of windows (default: ``window_seconds``).
            batch_size: utterances (or windows) per extractor call and forward pass.
            sample_rate: rate of the given waveforms (default: the extractors' rate);
                files are resampled as needed.
            bad: if a list, unreadable inputs are skipped and appended to it as
                ``(source, message)``; otherwise they raise :class:`AudioError`.

        Returns:
            One :class:`Prediction` per (good) input, in input order.
        """
        d = self._domain(domain)
        labels = self.labels(d)
        sources = self._sources(inputs)
        per_source: dict[int, list[tuple[_Item, np.ndarray]]] = {}
        for item, lg, _ in self._run(sources, d, window_seconds, hop_seconds, batch_size, sample_rate, bad):
            z = lg.astype(np.float64)
            p = np.exp(z - z.max())
            per_source.setdefault(item.source, []).append((item, p / p.sum()))
        out: list[Prediction] = []
        for i, rows in per_source.items():
            probs = np.mean([p for _, p in rows], axis=0)
            windows = None
            if window_seconds is not None:
                windows = [
                    WindowPrediction(
                        round(it.start, 6), round(it.end, 6), labels[int(np.argmax(p))], _as_dict(labels, p)
                    )
                    for it, p in rows
                ]
            out.append(
                Prediction(
                    self._name(sources[i], i), d, labels[int(np.argmax(probs))], _as_dict(labels, probs), windows
                )
            )
        return out


def _as_dict(labels: list[str], probs: np.ndarray) -> dict[str, float]:
    return {lab: float(p) for lab, p in zip(labels, probs, strict=True)}
