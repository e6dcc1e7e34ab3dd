"""Audio loading: any soundfile-readable file -> float32 mono at the requested rate.

Every failure is an :class:`~serkit.errors.AudioError` naming the file; nothing from
inside soundfile, soxr or numpy reaches the user.

Files are decoded in blocks of :data:`BLOCK_FRAMES` frames. Each block is averaged to
mono and fed to a streaming soxr resampler (its output is bit-identical to a one-shot
``soxr.resample`` of the whole file), so loading needs memory for the result only,
whatever the channel count and source rate (a 6-channel 48 kHz file is never held as
such).

Documented limits:

* :data:`MIN_DURATION` (0.1 s): shorter audio is rejected (a 0.1 s file is accepted).
* :data:`MAX_DURATION` (3600 s): :func:`load_audio` refuses longer files from their
  header, before decoding. Whole-utterance processing (feature extraction, ``predict``
  without windows) holds the waveform and the extractor's intermediate arrays at once:
  loading one hour at 16 kHz raises the peak RSS by 224 MiB (the 220 MiB result), and
  extracting the built-in ``mfcc`` from it by 0.6 to 1.5 GiB in all, depending on its
  parameters (tests/robustness/test_long_audio_*.py measure and bound this). Longer
  recordings must be cut into utterances; ``predict`` with ``window_seconds`` streams
  files of any length (:func:`scan_audio` + :func:`read_spans`), holding a batch of
  windows (24 MiB for 30 s windows at 8 kHz, batch 8).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from serkit.errors import AudioError

if TYPE_CHECKING:
    import soundfile

__all__ = [
    "BLOCK_FRAMES",
    "MAX_DURATION",
    "MIN_DURATION",
    "AudioInfo",
    "audio_info",
    "check_waveform",
    "file_sha256",
    "load_audio",
    "read_spans",
    "resample",
    "resampled_length",
    "scan_audio",
]

#: Shortest accepted audio, in seconds, after loading (shorter files are rejected).
MIN_DURATION = 0.1
#: Longest file :func:`load_audio` accepts, in seconds (see the module docstring).
MAX_DURATION = 3600.0
#: Frames decoded (and resampled) per step.
BLOCK_FRAMES = 1 << 16
#: Formats whose header only estimates the length (decoded frames may differ).
_ESTIMATED_LENGTH = frozenset({"MP3"})


class AudioInfo:
    """Header facts of an audio file (read without decoding the samples)."""

    def __init__(self, path: str, sample_rate: int, channels: int, frames: int, subtype: str):
        self.path = path
        self.sample_rate = sample_rate
        self.channels = channels
        self.frames = frames
        self.subtype = subtype

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def audio_info(path: str | os.PathLike[str]) -> AudioInfo:
    """Read the header of ``path``; :class:`AudioError` if it is not audio (an empty file is not)."""
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise AudioError(f"{p}: no such audio file")
    with _open(p) as f:
        return AudioInfo(p, int(f.samplerate), int(f.channels), int(f.frames), str(f.subtype))


def resampled_length(n_samples: int, orig_sr: int, target_sr: int) -> int:
    """Samples that :func:`resample` (soxr) gives for ``n_samples`` at ``orig_sr``: round-half-up of the ratio."""
    if orig_sr == target_sr:
        return n_samples
    return (2 * n_samples * target_sr + orig_sr) // (2 * orig_sr)


def resample(wav: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample a mono float32 signal with soxr (high quality)."""
    if orig_sr == target_sr:
        return wav
    import soxr

    return soxr.resample(wav, orig_sr, target_sr, quality="HQ").astype(np.float32, copy=False)


@dataclass
class _Stats:
    """What the decoder saw: frames at the native rate and whether any sample was non-zero."""

    frames: int = 0
    nonzero: bool = False
    channels_nonzero: bool = False  # some channel is non-zero (the mono mix may still be silent)
    channels: int = 1


def load_audio(
    path: str | os.PathLike[str],
    sample_rate: int | None = None,
    *,
    min_duration: float = MIN_DURATION,
    max_duration: float | None = MAX_DURATION,
) -> np.ndarray:
    """Load ``path`` as float32 mono, resampled to ``sample_rate`` (native rate if None).

    Multi-channel audio is averaged to mono. Raises :class:`AudioError` naming the file
    when it is missing, empty, not audio, truncated or undecodable, longer than
    ``max_duration`` seconds (checked on the header before decoding; None: no limit),
    shorter than ``min_duration`` seconds, contains NaN/inf, or is digital silence.

    Returns:
        float32 array ``(n_samples,)``.
    """
    rate = _check_rate_arg(sample_rate)
    p = _existing(path)
    with _open(p) as f:
        sr = int(f.samplerate)
        out_sr = rate if rate is not None else sr
        max_frames = _check_header(f, p, max_duration)
        stats = _Stats()
        cap = resampled_length(int(f.frames), sr, out_sr)
        if max_frames is not None:
            cap = min(cap, resampled_length(max_frames, sr, out_sr) + 1)
        buf = np.empty(max(cap, 0), dtype=np.float32)
        n = 0
        for y in _resampled(_mono_blocks(f, p, stats, max_frames, max_duration), sr, out_sr, p):
            if n + y.shape[0] > buf.shape[0]:  # the header under-announced the length
                grown = np.empty(max(n + y.shape[0], buf.shape[0] + buf.shape[0] // 2), dtype=np.float32)
                grown[:n] = buf[:n]
                buf = grown
            buf[n : n + y.shape[0]] = y
            n += y.shape[0]
        _check_complete(f, p, stats)
    _check_content(p, stats, sr, min_duration)
    return buf[:n]


def scan_audio(path: str | os.PathLike[str], *, min_duration: float = MIN_DURATION) -> AudioInfo:
    """Decode ``path`` block by block and apply :func:`load_audio`'s checks, without keeping the samples.

    There is no maximum duration: memory is one block. Used before streaming a file with
    :func:`read_spans`, so that a bad file fails before any of it is used.

    Returns:
        the file's :class:`AudioInfo`, ``frames`` being the decoded count (native rate).
    """
    p = _existing(path)
    with _open(p) as f:
        max_frames = _check_header(f, p, None)
        stats = _Stats()
        for _ in _mono_blocks(f, p, stats, max_frames, None):
            pass
        _check_complete(f, p, stats)
        info = AudioInfo(p, int(f.samplerate), int(f.channels), stats.frames, str(f.subtype))
    _check_content(p, stats, info.sample_rate, min_duration)
    return info


def read_spans(
    path: str | os.PathLike[str], sample_rate: int, spans: Iterable[tuple[int, int]]
) -> Iterator[np.ndarray]:
    """Yield ``wav[a:b]`` for each ``(a, b)`` of ``spans``, decoding the file once.

    ``wav`` is what ``load_audio(path, sample_rate, max_duration=None)`` returns (the same
    float32 samples), but only one block plus the current span is held in memory. Spans
    must have non-decreasing starts and ends (overlapping windows are fine); a span past
    the end is cut at the end. Content checks are :func:`scan_audio`'s job.

    Raises:
        AudioError: the file cannot be read or decoded, or a span goes backwards.
    """
    rate = _check_rate_arg(sample_rate)
    p = _existing(path)
    with _open(p) as f:
        sr = int(f.samplerate)
        _check_header(f, p, None)
        blocks = _resampled(_mono_blocks(f, p, _Stats(), None, None), sr, rate or sr, p)
        buf = np.zeros(0, dtype=np.float32)
        offset = 0  # absolute index of buf[0]
        last = (0, 0)
        done = False
        for a, b in spans:
            if a < last[0] or b < last[1] or b < a:
                raise AudioError(f"{p}: read_spans needs non-decreasing spans, got {(a, b)} after {last}")
            last = (a, b)
            while not done and offset + buf.shape[0] < b:
                nxt = next(blocks, None)
                if nxt is None:
                    done = True
                else:
                    buf = np.concatenate([buf, nxt])
            if a > offset:  # drop what no later span can need
                buf = buf[min(a - offset, buf.shape[0]) :].copy()
                offset = a
            yield buf[a - offset : max(b - offset, 0)].copy()


def check_waveform(
    wav: Any,
    sample_rate: float,
    name: str,
    min_duration: float = MIN_DURATION,
    max_duration: float | None = None,
) -> None:
    """Reject anything but finite, non-silent float mono audio of an accepted length.

    Raises an :class:`AudioError` naming ``name`` when ``wav`` is not a 1-D float numpy
    array, ``sample_rate`` is not a positive number, or the samples are empty, non-finite,
    shorter than ``min_duration`` or longer than ``max_duration`` seconds (None: no
    limit), or all zero.

    Args:
        wav: float mono samples ``(n_samples,)`` at ``sample_rate``.
    """
    if not isinstance(wav, np.ndarray):
        raise AudioError(f"{name}: expected a numpy array of samples, got {type(wav).__name__}")
    if wav.ndim != 1:
        raise AudioError(f"{name}: expected a 1-D (mono) waveform, got shape {tuple(wav.shape)}")
    if wav.dtype.kind != "f":
        raise AudioError(f"{name}: expected float samples in [-1, 1], got dtype {wav.dtype}")
    if (
        isinstance(sample_rate, bool)
        or not isinstance(sample_rate, (int, float, np.integer, np.floating))
        or not math.isfinite(sample_rate)
        or sample_rate <= 0
    ):
        raise AudioError(f"{name}: sample rate must be a positive number of Hz, got {sample_rate!r}")
    if wav.shape[0] == 0:
        raise AudioError(f"{name}: audio has zero samples")
    if not np.all(np.isfinite(wav)):
        raise AudioError(f"{name}: audio contains NaN or infinite samples")
    _check_duration(name, wav.shape[0], sample_rate, min_duration, max_duration)
    if not np.any(wav):
        raise AudioError(f"{name}: audio is all zeros (digital silence)")


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes (the audio part of feature cache keys)."""
    import hashlib

    h = hashlib.sha256()
    try:
        with open(Path(path), "rb") as f:
            while block := f.read(chunk):
                h.update(block)
    except OSError as err:
        raise AudioError(f"{path}: cannot read ({err.strerror})") from err
    return h.hexdigest()


# ----------------------------------------------------------------------------- internals
def _check_rate_arg(sample_rate: Any) -> int | None:
    """``sample_rate`` as an int (whole floats such as 16000.0 are accepted), or None."""
    if sample_rate is None:
        return None
    ok = (
        not isinstance(sample_rate, bool)
        and isinstance(sample_rate, (int, float, np.integer, np.floating))
        and math.isfinite(sample_rate)
        and sample_rate >= 1
        and float(sample_rate).is_integer()
    )
    if not ok:
        raise AudioError(f"sample_rate must be a positive whole number of Hz, got {sample_rate!r}")
    return int(sample_rate)


def _existing(path: str | os.PathLike[str]) -> str:
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise AudioError(f"{p}: no such audio file")
    if os.path.getsize(p) == 0:
        raise AudioError(f"{p}: empty file (0 bytes)")
    return p


def _open(p: str) -> soundfile.SoundFile:
    import soundfile as sf

    try:
        f = sf.SoundFile(p)
    except Exception as err:  # soundfile raises LibsndfileError/RuntimeError/TypeError
        raise AudioError(f"{p}: not a readable audio file ({_short(err, p)})") from err
    if f.samplerate < 1 or f.channels < 1:
        f.close()
        raise AudioError(f"{p}: invalid header ({f.samplerate} Hz, {f.channels} channels)")
    return f


def _check_header(f: soundfile.SoundFile, p: str, max_duration: float | None) -> int | None:
    """Refuse truncated WAV files and (from the header) files over ``max_duration``; returns the frame limit."""
    if f.format in ("WAV", "WAVEX"):
        _check_riff(p)
    if max_duration is None:
        return None
    sr = int(f.samplerate)
    max_frames = math.floor(max_duration * sr)
    if f.format not in _ESTIMATED_LENGTH and f.frames > max_frames:
        _check_duration(p, int(f.frames), sr, 0.0, max_duration)
    return max_frames


def _check_riff(p: str) -> None:
    """A WAV whose ``data`` chunk announces more bytes than the file holds was cut short.

    libsndfile silently reads what is there; serkit refuses it. Sizes 0 and from 0x7FFFF000
    up (placeholders written by streaming tools such as sox or ffmpeg that do not know the
    length) are accepted.
    """
    size = os.path.getsize(p)
    with open(p, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return
        pos = 12
        for _ in range(256):
            hdr = fh.read(8)
            if len(hdr) < 8:
                return
            chunk_id, chunk_size = hdr[:4], int.from_bytes(hdr[4:], "little")
            pos += 8
            if chunk_id == b"data":
                present = size - pos
                if 0 < chunk_size < 0x7FFFF000 and chunk_size > present:
                    raise AudioError(
                        f"{p}: truncated WAV file: its header announces {chunk_size} bytes of audio data "
                        f"but only {present} are present"
                    )
                return
            pos += chunk_size + (chunk_size & 1)
            fh.seek(pos)


def _mono_blocks(
    f: soundfile.SoundFile, p: str, stats: _Stats, max_frames: int | None, max_duration: float | None
) -> Iterator[np.ndarray]:
    """Decoded blocks averaged to mono ``(n,)`` float32 at the native rate; counts into ``stats``."""
    while True:
        try:
            block = f.read(BLOCK_FRAMES, dtype="float32", always_2d=True)
        except Exception as err:
            raise AudioError(
                f"{p}: cannot decode the audio after {stats.frames} frames ({_short(err, p)}); "
                "the file is damaged or truncated"
            ) from err
        if block.shape[0] == 0:
            return
        mono = np.ascontiguousarray(block[:, 0] if block.shape[1] == 1 else block.mean(axis=1))
        if not np.all(np.isfinite(mono)):
            raise AudioError(f"{p}: audio contains NaN or infinite samples")
        stats.frames += mono.shape[0]
        if max_frames is not None and stats.frames > max_frames:
            _check_duration(p, stats.frames, int(f.samplerate), 0.0, max_duration)
        if not stats.nonzero:
            stats.nonzero = bool(np.any(mono))
            stats.channels = block.shape[1]
            stats.channels_nonzero = stats.channels_nonzero or bool(np.any(block))
        yield mono
        if block.shape[0] < BLOCK_FRAMES:  # libsndfile reads short only at the end of the file
            return


def _resampled(blocks: Iterator[np.ndarray], sr: int, out_sr: int, p: str) -> Iterator[np.ndarray]:
    """``blocks`` resampled from ``sr`` to ``out_sr`` by one streaming soxr resampler."""
    if sr == out_sr:
        yield from blocks
        return
    import soxr

    try:
        stream = soxr.ResampleStream(sr, out_sr, 1, dtype="float32", quality="HQ")
    except Exception as err:
        raise AudioError(f"{p}: cannot resample from {sr} Hz to {out_sr} Hz ({_short(err, p)})") from err
    for block in blocks:
        y = stream.resample_chunk(block)
        if y.shape[0]:
            yield y
    y = stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
    if y.shape[0]:
        yield y


def _check_complete(f: soundfile.SoundFile, p: str, stats: _Stats) -> None:
    if f.format not in _ESTIMATED_LENGTH and stats.frames < f.frames:
        raise AudioError(
            f"{p}: truncated file: the header announces {f.frames} frames but only {stats.frames} could be decoded"
        )


def _check_content(p: str, stats: _Stats, sr: int, min_duration: float) -> None:
    if stats.frames == 0:
        raise AudioError(f"{p}: audio has zero samples")
    _check_duration(p, stats.frames, sr, min_duration, None)
    if not stats.nonzero:
        if stats.channels_nonzero:
            raise AudioError(
                f"{p}: the {stats.channels} channels cancel out when averaged to mono (anti-phase); "
                "keep one channel of the file"
            )
        raise AudioError(f"{p}: audio is all zeros (digital silence)")


def _check_duration(
    name: str, n: int, sample_rate: float, min_duration: float, max_duration: float | None
) -> None:
    duration = n / sample_rate
    if duration < min_duration:
        shown = math.floor(duration * 1000 + 1e-9) / 1000  # never round up to the minimum
        raise AudioError(f"{name}: audio is {shown:.3f} s long; the minimum is {min_duration:g} s")
    if max_duration is not None and duration > max_duration:
        raise AudioError(
            f"{name}: audio is {duration:.1f} s long; the maximum is {max_duration:g} s "
            "(cut long recordings into utterances; predict with window_seconds streams files of any length)"
        )


def _short(err: Exception, path: str | None = None) -> str:
    text = str(err).strip().splitlines()
    msg = text[-1] if text else type(err).__name__
    if path is not None:
        msg = msg.replace(f"Error opening {path!r}: ", "")
    return msg if len(msg) < 200 else msg[:197] + "..."
