"""Property-based: any file or array gives float32 mono audio or an AudioError, never another exception."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from serkit.data.audio import (
    MIN_DURATION,
    audio_info,
    check_waveform,
    load_audio,
    read_spans,
    resampled_length,
    scan_audio,
)
from serkit.errors import AudioError

PROPERTY = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _load(path: Path, sample_rate: int | None) -> None:
    """load_audio's result, when there is one, is valid audio; scan_audio agrees with it."""
    try:
        wav = load_audio(path, sample_rate)
    except AudioError as err:
        assert str(err).startswith(f"{path}: ")
        try:
            scan_audio(path)
        except AudioError:
            return
        # scan has no maximum duration: only a too-long file may load with scan but not load_audio
        assert "the maximum is" in str(err)
        return
    assert wav.dtype == np.float32 and wav.ndim == 1 and wav.flags.c_contiguous
    assert np.all(np.isfinite(wav)) and np.any(wav)
    info = scan_audio(path)
    assert info.frames / info.sample_rate >= MIN_DURATION
    assert wav.shape[0] == resampled_length(info.frames, info.sample_rate, sample_rate or info.sample_rate)
    assert audio_info(path).channels == info.channels


@PROPERTY
@given(raw=st.binary(max_size=3000), ext=st.sampled_from([".wav", ".flac", ".ogg", ".mp3", ".aiff"]))
def test_random_bytes(raw: bytes, ext: str, tmp_path_factory: Any) -> None:
    path = Path(tmp_path_factory.mktemp("bytes")) / f"x{ext}"
    path.write_bytes(raw)
    _load(path, 16000)


#: WAVE format tags: PCM, ADPCM, IEEE float, A-law, mu-law, GSM, extensible, and nonsense.
FORMAT_TAGS = st.sampled_from([1, 2, 3, 6, 7, 0x31, 0xFFFE, 0, 0x1234])


@PROPERTY
@given(
    tag=FORMAT_TAGS,
    channels=st.one_of(st.integers(0, 8), st.just(65535)),
    rate=st.one_of(st.sampled_from([1, 8000, 16000, 44100, 48000, 192000]), st.integers(0, 2**32 - 1)),
    bits=st.sampled_from([0, 4, 8, 12, 16, 24, 32, 64, 65535]),
    declared=st.one_of(st.none(), st.integers(0, 2**32 - 1)),
    payload=st.binary(min_size=0, max_size=4000),
)
def test_random_wav_headers_and_payloads(
    tag: int, channels: int, rate: int, bits: int, declared: int | None, payload: bytes, tmp_path_factory: Any
) -> None:
    align = max(channels * bits // 8, 0) & 0xFFFF
    fmt = struct.pack("<HHIIHH", tag, channels, rate, (rate * align) & 0xFFFFFFFF, align, bits)
    size = len(payload) if declared is None else declared
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", size) + payload
    path = Path(tmp_path_factory.mktemp("hdr")) / "x.wav"
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    _load(path, 16000)


@PROPERTY
@given(
    samples=hnp.arrays(
        np.float32,
        st.integers(0, 6000),
        elements=st.one_of(st.floats(-1e3, 1e3, width=32), st.sampled_from([np.nan, np.inf, -np.inf])),
    ),
    rate=st.sampled_from([8000, 16000, 22050]),
    target=st.sampled_from([None, 8000, 16000]),
    subtype=st.sampled_from(["FLOAT", "PCM_16", "PCM_24"]),
)
def test_valid_files_with_random_samples(
    samples: np.ndarray, rate: int, target: int | None, subtype: str, tmp_path_factory: Any
) -> None:
    path = Path(tmp_path_factory.mktemp("samples")) / "x.wav"
    sf.write(path, samples, rate, subtype=subtype)
    _load(path, target)


arrays = hnp.arrays(
    dtype=st.one_of(hnp.floating_dtypes(), hnp.integer_dtypes(), hnp.complex_number_dtypes(), st.just(np.dtype("O"))),
    shape=st.one_of(
        hnp.array_shapes(min_dims=1, max_dims=1, min_side=0, max_side=5000),
        hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=8),
    ),
)


@PROPERTY
@given(wav=arrays, rate=st.one_of(st.integers(-5, 96000), st.floats(allow_nan=True), st.none(), st.text(max_size=3)))
def test_check_waveform_on_random_arrays(wav: np.ndarray, rate: Any) -> None:
    try:
        check_waveform(wav, rate, "x")
    except AudioError as err:
        assert str(err).startswith("x: ")
        return
    assert wav.ndim == 1 and wav.dtype.kind == "f" and np.all(np.isfinite(wav)) and np.any(wav)
    assert wav.shape[0] / rate >= MIN_DURATION


@settings(max_examples=25, deadline=None)
@given(
    seconds=st.floats(0.2, 12.0),
    native=st.sampled_from([8000, 22050, 44100, 48000]),
    target=st.sampled_from([8000, 16000]),
    cuts=st.lists(st.tuples(st.floats(0, 13), st.floats(0, 3)), max_size=6),
)
def test_read_spans_are_slices_of_load_audio(
    seconds: float, native: int, target: int, cuts: list[tuple[float, float]], tmp_path_factory: Any
) -> None:
    path = Path(tmp_path_factory.mktemp("spans")) / "x.wav"
    rng = np.random.default_rng(0)
    sf.write(path, (0.1 * rng.standard_normal(round(seconds * native))).astype(np.float32), native, subtype="FLOAT")
    whole = load_audio(path, target)
    starts = sorted(round(a * target) for a, _ in cuts)
    ends = sorted(round((a + w) * target) for a, w in cuts)
    spans = [(a, max(a, b)) for a, b in zip(starts, ends, strict=True)]
    spans = [(a, max(b, spans[i - 1][1] if i else 0)) for i, (a, b) in enumerate(spans)]
    for (a, b), piece in zip(spans, read_spans(path, target, spans), strict=True):
        np.testing.assert_array_equal(piece, whole[a:b])
