"""Use a trained run: ``load_model(run_dir)`` -> ``model.predict(files)`` / ``model.embed(files)``.

A run folder (written by ``serkit run``) holds ``checkpoints/model.json`` (the resolved
recipe, the streams, each domain's head labels) and one safetensors checkpoint per
(repeat, fold) run. :func:`load_model` rebuilds the extractors and the network from the
stored recipe, loads one checkpoint strictly and returns a :class:`LoadedModel` that
turns audio files or waveforms into emotion probabilities:

    >>> model = load_model("runs/quickstart-20240101-120000")  # doctest: +SKIP
    >>> model.predict("clip.wav", domain="xa").label  # one input: one Prediction  # doctest: +SKIP
    'angry'
    >>> [p.label for p in model.predict(["a.wav", "b.wav"], domain="xa")]  # a list: a list  # doctest: +SKIP
    ['angry', 'sad']

Features are computed exactly as for training (same extractor, same storage precision),
so the model reproduces the run's test predictions. Checkpoints are read with
safetensors only (never unpickled).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Union, overload

import numpy as np

from serkit.engine.run_folder import (
    SPEAKER_NORM_FILES,
    choose_checkpoint,
    read_model_description,
    run_checkpoint,
    verify_export,
)
from serkit.engine.speaker_norm import Norms, SpeakerNorm, StatsAccumulator, load_speaker_norm
from serkit.errors import AudioError, ModelError, SerkitError

if TYPE_CHECKING:
    import torch

    from serkit.engine.model import SerModel

__all__ = [
    "AUDIO_SUFFIXES",
    "MIN_SPEAKER_FILES",
    "SPEAKER_NORM_FILES",
    "LoadedModel",
    "Prediction",
    "SpeakerNorm",
    "WindowPrediction",
    "find_audio_files",
    "load_model",
    "load_speaker_norm",
]

#: File name endings (lower case) that :func:`find_audio_files` collects from folders.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")

#: Windows shorter than this (seconds) at the end of a file are dropped (unless the file
#: has no other window); matches the minimum duration of :func:`serkit.data.audio.load_audio`.
MIN_WINDOW_SECONDS = 0.1

Input = Union[str, os.PathLike, np.ndarray]  # noqa: UP007

#: Where per-speaker statistics come from for a model trained with ``data.speaker_norm``:
#: ``auto`` (stored for the checkpoint's training speakers, else from the call's inputs),
#: ``call`` (always from the call's inputs) or ``global`` (the domain's overall statistics).
SpeakerStats = Literal["auto", "call", "global"]

#: A speaker whose statistics come from fewer inputs than this in one call gets a warning.
MIN_SPEAKER_FILES = 5


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
        speaker: the speaker id given for the input (``speakers=``), else None.
    """

    source: str
    domain: str
    label: str
    probabilities: dict[str, float]
    windows: list[WindowPrediction] | None = None
    speaker: str | None = None


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


_COMPONENT_FIELDS = (
    ("extractor", "features.{}.extractor"),
    ("encoder", "features.{}.encoder"),
)


def _check_components(config: dict[str, Any], registry: Any, model_json: Path) -> dict[str, Any]:
    """Raise a ModelError naming every component the current registry lacks.

    Datasets and training callbacks are not needed to predict: a domain whose dataset type
    is not registered gets the built-in ``synthetic`` spec in the returned copy, only so
    that the stored recipe validates (it is never instantiated), and callbacks that are not
    registered are left out.
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
    train = recipe.get("train")
    if isinstance(train, dict) and isinstance(train.get("callbacks"), list):  # training callbacks: not needed here
        train["callbacks"] = [
            c for c in train["callbacks"] if isinstance(c, dict) and ("callback", str(c.get("type"))) in registry
        ]
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
    verify_export(root)  # exported folders carry checksums of every file
    ckpt_dir = root / "checkpoints"
    model_json = ckpt_dir / "model.json"
    info = read_model_description(ckpt_dir)
    checkpoint = choose_checkpoint(root, checkpoint)

    registry = get_plugin_manager().registry
    data = _check_components(info["recipe"], registry, model_json)
    try:
        recipe = validate_recipe_data(data, source=str(model_json), registry=registry)
    except RecipeError as err:
        raise ModelError(f"the stored recipe no longer validates with the installed components:\n{err}") from None
    speaker_norm = None
    if recipe.data.speaker_norm is True or (
        recipe.data.speaker_norm == "auto" and (ckpt_dir / SPEAKER_NORM_FILES[0]).is_file()
    ):
        speaker_norm = load_speaker_norm(ckpt_dir)
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
    path = run_checkpoint(root, checkpoint)
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
        speaker_norm=speaker_norm,
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
        speaker_norm: the run's per-speaker statistics when it was trained with
            ``data.speaker_norm`` (inputs then need ``speakers=``), else None.
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
        speaker_norm: SpeakerNorm | None = None,
    ) -> None:
        self.network = network
        self.extractors = extractors
        self.recipe = recipe
        self.run_dir = run_dir
        self.checkpoint = checkpoint
        self.device = device
        self.store_dtype = store_dtype
        self.speaker_norm = speaker_norm

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
        if sample_rate is None:  # a waveform's rate cannot be guessed; a wrong one silently changes the result
            shown = " and ".join(f"{r} Hz" for r in rates)
            raise AudioError(
                f"{name}: pass sample_rate= with waveforms (the rate they were recorded or loaded at; the model's "
                f"extractors use {shown}, and other rates are resampled)"
            )
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
        """Each input (loaded one at a time), cut into windows.

        Windows of a file are streamed from it (:func:`~serkit.data.audio.read_spans`), so a
        file of any length needs memory for one window per sample rate; whole files obey
        :data:`~serkit.data.audio.MAX_DURATION`.
        """
        for i, src in enumerate(sources):
            if isinstance(src, str) and window is not None:
                try:
                    spans, readers = self._file_windows(src, window, hop)
                except AudioError as err:
                    if bad is None:
                        raise
                    bad.append((src, str(err)))
                    continue
                for start, end in spans:
                    yield _Item(i, start, end, {sr: next(reader) for sr, reader in readers.items()})
                continue
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

    def _file_windows(
        self, path: str, window: float, hop: float | None
    ) -> tuple[list[tuple[float, float]], dict[int, Iterator[np.ndarray]]]:
        """The windows of a file and, per sample rate, a reader yielding their samples in order.

        The whole file is checked first (:func:`~serkit.data.audio.scan_audio`), so a bad file
        fails before any window is used; the windows are those of the loaded file, sample for
        sample.
        """
        from serkit.data.audio import read_spans, resampled_length, scan_audio

        info = scan_audio(path)
        first = min(self.sample_rates)
        duration = resampled_length(info.frames, info.sample_rate, first) / first
        spans = self._windows(duration, window, hop)
        readers = {
            sr: read_spans(path, sr, [(round(s * sr), round(e * sr)) for s, e in spans]) for sr in self.sample_rates
        }
        return spans, readers

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

    def _forward(
        self, items: list[_Item], names: list[str], domain: str, norms: Norms | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Logits ``(B, C)`` and fused representations ``(B, D)`` of a batch of items.

        With ``norms`` (input index -> stream -> ``(mean, std)``), every stream is
        standardised as :class:`serkit.engine.data.FeatureDataset` does in training.
        """
        import torch

        from serkit.engine.data import collate

        feats = self._features(items, names)
        if norms is not None:
            for j, it in enumerate(items):
                for sid, (mean, std) in norms[it.source].items():
                    feats[sid][j] = ((feats[sid][j] - mean) / std).astype(np.float32, copy=False)
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
        speakers: str | Sequence[str] | None = None,
        speaker_stats: SpeakerStats = "auto",
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
        norms = self._speaker_norms(sources, domain, speakers, speaker_stats, sample_rate, batch_size, bad)
        pending: list[_Item] = []

        def flush() -> Iterator[tuple[_Item, np.ndarray, np.ndarray]]:
            names = [self._name(sources[it.source], it.source) for it in pending]
            logits, reps = self._forward(pending, names, domain, norms)
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
        speakers: str | Sequence[str] | None = None,
        speaker_stats: SpeakerStats = "auto",
    ) -> np.ndarray:
        """Stack element ``which`` (1: logits, 2: representation) of :meth:`_run`'s rows: ``(N, width)``."""
        run = self._run(inputs, domain, None, None, batch_size, sample_rate, None, speakers, speaker_stats)
        rows = [row[which] for row in run]
        return np.stack(rows) if rows else np.zeros((0, width), dtype=np.float32)

    # -- public API -------------------------------------------------------------------
    def logits(
        self,
        inputs: Input | Sequence[Input],
        domain: str | None = None,
        *,
        sample_rate: int | None = None,
        batch_size: int = 16,
        speakers: str | Sequence[str] | None = None,
        speaker_stats: SpeakerStats = "auto",
    ) -> np.ndarray:
        """Raw head outputs ``(N, C)`` of ``domain`` for N inputs (whole files).

        ``speakers`` and ``speaker_stats`` as for :meth:`predict`.
        """
        d = self._domain(domain)
        return self._whole_files(inputs, d, 1, len(self.labels(d)), sample_rate, batch_size, speakers, speaker_stats)

    def embed(
        self,
        inputs: Input | Sequence[Input],
        domain: str | None = None,
        *,
        sample_rate: int | None = None,
        batch_size: int = 16,
        speakers: str | Sequence[str] | None = None,
        speaker_stats: SpeakerStats = "auto",
    ) -> np.ndarray:
        """The fused representation (fusion output) ``(N, D)`` of N inputs for ``domain``.

        ``speakers`` and ``speaker_stats`` as for :meth:`predict`.
        """
        d = self._domain(domain)
        width = int(self.network.fusion.out_dim)
        return self._whole_files(inputs, d, 2, width, sample_rate, batch_size, speakers, speaker_stats)

    @overload
    def predict(
        self,
        inputs: Input,
        domain: str | None = None,
        *,
        window_seconds: float | None = None,
        hop_seconds: float | None = None,
        batch_size: int = 16,
        sample_rate: int | None = None,
        bad: list[tuple[str, str]] | None = None,
        speakers: str | Sequence[str] | None = None,
        speaker_stats: SpeakerStats = "auto",
    ) -> Prediction: ...

    @overload
    def predict(
        self,
        inputs: Sequence[Input],
        domain: str | None = None,
        *,
        window_seconds: float | None = None,
        hop_seconds: float | None = None,
        batch_size: int = 16,
        sample_rate: int | None = None,
        bad: list[tuple[str, str]] | None = None,
        speakers: str | Sequence[str] | None = None,
        speaker_stats: SpeakerStats = "auto",
    ) -> list[Prediction]: ...

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
        speakers: str | Sequence[str] | None = None,
        speaker_stats: SpeakerStats = "auto",
    ) -> Prediction | list[Prediction] | None:
        """Emotion probabilities of audio files or waveforms.

        Args:
            inputs: a path or a float32 waveform ``(n_samples,)`` (one :class:`Prediction`
                is returned), or a list of them (a list is returned).
            domain: whose head to use; required when the model has several domains.
            window_seconds: cut every input into windows of this length (the last one may
                be shorter) and average the windows' probabilities; memory then depends on
                ``batch_size`` windows, not on the file length.
            hop_seconds: start-to-start distance of windows (default: ``window_seconds``).
            batch_size: utterances (or windows) per extractor call and forward pass.
            sample_rate: rate of the given waveforms, required with waveforms (their rate
                cannot be guessed); they and files are resampled to the extractors' rate.
            bad: if a list, unreadable inputs are skipped and appended to it as
                ``(source, message)``; otherwise they raise :class:`AudioError`.
            speakers: the speaker of each input (a list), or one id for all of them. Needed
                by models trained with ``data.speaker_norm`` (``model.speaker_norm`` is set),
                whose features are standardised per speaker; recorded in the predictions.
            speaker_stats: for such models, where each speaker's statistics come from:
                ``"auto"``: the stored ones for a speaker that had training or validation
                data in the loaded checkpoint's run, else computed over that speaker's
                inputs in this call (transductive, as in training: pass several files per
                speaker, ideally covering several emotions; fewer than
                :data:`MIN_SPEAKER_FILES` gives a warning; the files are read twice);
                ``"call"``: always from this call's inputs; ``"global"``: no speakers
                needed, every input is standardised with the domain's overall statistics
                (an approximation; accuracy may drop).

        Returns:
            For one input, its :class:`Prediction` (None if it was bad and ``bad`` is a
            list); for a list, one :class:`Prediction` per (good) input, in input order.

        Raises:
            AudioError: a waveform without ``sample_rate``, or a bad input (``bad`` None).
            ModelError: a speaker-normalised model got no ``speakers`` (and not
                ``speaker_stats="global"``), or not one per input.
        """
        single = isinstance(inputs, (str, os.PathLike, np.ndarray))
        d = self._domain(domain)
        labels = self.labels(d)
        sources = self._sources(inputs)
        speaker_of = _speaker_list(speakers, len(sources))
        per_source: dict[int, list[tuple[_Item, np.ndarray]]] = {}
        run = self._run(
            sources, d, window_seconds, hop_seconds, batch_size, sample_rate, bad, speakers, speaker_stats
        )
        for item, lg, _ in run:
            z = lg.astype(np.float64)
            p = np.exp(z - z.max())
            item.wavs = {}  # keep the window's times, not its audio: long files are streamed
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
                    self._name(sources[i], i),
                    d,
                    labels[int(np.argmax(probs))],
                    _as_dict(labels, probs),
                    windows,
                    speaker_of[i] if speaker_of is not None else None,
                )
            )
        if single:
            return out[0] if out else None
        return out

    # -- speaker normalisation ----------------------------------------------------------
    def _speaker_norms(
        self,
        sources: list[str | np.ndarray],
        domain: str,
        speakers: str | Sequence[str] | None,
        mode: SpeakerStats,
        sample_rate: int | None,
        batch_size: int,
        bad: list[tuple[str, str]] | None,
    ) -> Norms | None:
        """Input index -> stream -> ``(mean, std)`` for a speaker-normalised model, else None.

        Statistics computed from the call read every input of those speakers once (whole
        files, ``batch_size`` at a time) before the prediction pass; unreadable inputs are
        left out of them when ``bad`` is a list (the prediction pass reports them).
        """
        norm = self.speaker_norm
        if norm is None:
            return None
        if mode not in ("auto", "call", "global"):
            raise ModelError(f"speaker_stats must be 'auto', 'call' or 'global'; got {mode!r}")
        if domain not in norm.speakers and self.recipe.data.speaker_norm == "auto":
            return None  # speaker_norm: auto left this domain's features as they are
        if domain not in norm.speakers:
            raise ModelError(
                f"the run stores no speaker statistics of domain {domain!r} (it has: {', '.join(norm.speakers)})"
            )
        if mode == "global":
            overall = norm.global_stats(domain)
            return {i: overall for i in range(len(sources))}
        speaker_of = _speaker_list(speakers, len(sources))
        if speaker_of is None:
            raise ModelError(
                "the model was trained with data.speaker_norm (features standardised per speaker): pass "
                "speakers= (one id per input, or one for all; an unknown speaker's statistics come from its "
                "inputs in the call, so give several files per speaker), or speaker_stats='global' (the "
                "domain's overall statistics; less accurate)"
            )
        out: Norms = {}
        needed: dict[str, list[int]] = {}
        for i, spk in enumerate(speaker_of):
            stored = norm.stored(domain, spk, self.checkpoint) if mode == "auto" else None
            if stored is not None:
                out[i] = stored
            else:
                needed.setdefault(spk, []).append(i)
        few = {s: len(ix) for s, ix in needed.items() if len(ix) < MIN_SPEAKER_FILES}
        if few:
            shown = ", ".join(f"{s} ({n})" for s, n in list(few.items())[:8]) + (", ..." if len(few) > 8 else "")
            warnings.warn(
                f"speaker normalisation: {len(few)} speaker(s) with fewer than {MIN_SPEAKER_FILES} inputs in this "
                f"call: {shown}; their statistics come from these inputs alone and are unreliable",
                UserWarning,
                stacklevel=4,
            )
        if not needed:
            return out
        accumulators = {sid: StatsAccumulator() for sid in self.extractors}
        order = sorted(i for ix in needed.values() for i in ix)  # input order, as training's utterance order
        for start in range(0, len(order), batch_size):
            items: list[_Item] = []
            for i in order[start : start + batch_size]:
                try:
                    items.append(_Item(i, 0.0, 0.0, self._waveforms(sources[i], i, sample_rate)))
                except AudioError:
                    if bad is None:
                        raise
            if not items:
                continue
            feats = self._features(items, [self._name(sources[it.source], it.source) for it in items])
            for sid, arrays in feats.items():
                for it, x in zip(items, arrays, strict=True):
                    accumulators[sid].add(speaker_of[it.source], x)
        computed = {sid: acc.result(norm.eps) for sid, acc in accumulators.items()}
        for spk, ix in needed.items():
            if all(spk in per_speaker for per_speaker in computed.values()):
                for i in ix:
                    out[i] = {sid: computed[sid][spk] for sid in computed}
        return out


def _as_dict(labels: list[str], probs: np.ndarray) -> dict[str, float]:
    return {lab: float(p) for lab, p in zip(labels, probs, strict=True)}


def _speaker_list(speakers: str | Sequence[str] | None, n: int) -> list[str] | None:
    """One speaker id per input (a single id applies to all), or None."""
    if speakers is None:
        return None
    if isinstance(speakers, str):
        return [speakers] * n
    out = [str(s) for s in speakers]
    if len(out) != n:
        raise ModelError(f"speakers: {len(out)} given for {n} input(s); give one per input, or one id for all")
    return out
