"""Broken and unusual audio files: every one loads correctly or fails with an AudioError naming the file.

The plain cases (empty, text, all-zero, NaN, too short, zero samples, missing) are in
tests/data/test_audio.py; this file adds formats, bit depths, rates, channel layouts,
truncation and the documented duration limits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from serkit.data.audio import (
    MAX_DURATION,
    MIN_DURATION,
    audio_info,
    check_waveform,
    load_audio,
    read_spans,
    resampled_length,
    scan_audio,
)
from serkit.errors import AudioError

SR = 16000


def tone(seconds: float, sr: int, freq: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(wav: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(wav * np.hanning(len(wav))))
    return float(np.argmax(spectrum) * sr / len(wav))


def raises(path: Path, **kwargs: object) -> str:
    with pytest.raises(AudioError) as info:
        load_audio(path, **kwargs)  # type: ignore[arg-type]
    return str(info.value)


# ----------------------------------------------------------------------------- sample formats
@pytest.mark.parametrize(
    "subtype,tolerance",
    [
        ("PCM_U8", 1 / 128),
        ("PCM_16", 1 / 2**15),
        ("PCM_24", 1 / 2**23),
        ("PCM_32", 1e-7),  # float32 resolution near 0.5, not 2**-31
        ("FLOAT", 0.0),
        ("DOUBLE", 0.0),
    ],
)
def test_every_wav_sample_format_gives_the_same_samples_within_quantisation(
    tmp_path: Path, subtype: str, tolerance: float
) -> None:
    x = tone(0.5, SR, 440.0)
    p = tmp_path / f"{subtype}.wav"
    sf.write(p, x, SR, subtype=subtype)
    wav = load_audio(p)
    assert wav.dtype == np.float32 and wav.shape == x.shape
    assert float(np.max(np.abs(wav - x))) <= tolerance
    assert audio_info(p).subtype == subtype


def test_flac_is_lossless_and_ogg_and_mp3_keep_the_tone(tmp_path: Path) -> None:
    x = tone(1.0, SR, 440.0)
    ints = np.round(x * 32767).astype(np.int16)  # libsndfile's WAV and FLAC writers round floats differently
    sf.write(tmp_path / "a.flac", ints, SR, subtype="PCM_16")
    np.testing.assert_array_equal(load_audio(tmp_path / "a.flac"), ints.astype(np.float32) / 32768)
    sf.write(tmp_path / "a.ogg", x, SR, format="OGG", subtype="VORBIS")
    ogg = load_audio(tmp_path / "a.ogg")
    assert ogg.shape == x.shape
    assert peak_hz(ogg, SR) == pytest.approx(440.0, abs=1.0)
    assert float(np.sqrt(np.mean(ogg**2))) == pytest.approx(0.5 / np.sqrt(2), rel=0.05)


def test_mp3_where_libsndfile_supports_it(tmp_path: Path) -> None:
    if "MP3" not in sf.available_formats():
        pytest.skip(f"libsndfile {sf.__libsndfile_version__} was built without MP3 support")
    x = tone(1.0, SR, 440.0)
    p = tmp_path / "a.mp3"
    try:
        sf.write(p, x, SR, format="MP3", subtype="MPEG_LAYER_III")
    except sf.LibsndfileError as err:  # decoding without an encoder (no LAME)
        pytest.skip(f"libsndfile {sf.__libsndfile_version__} cannot write MP3 here: {err}")
    wav = load_audio(p, SR)
    assert abs(len(wav) - len(x)) <= 2 * 1152  # at most the encoder's padding frames
    assert peak_hz(wav, SR) == pytest.approx(440.0, abs=1.0)


# ----------------------------------------------------------------------------- rates and channels
@pytest.mark.parametrize("native", [8000, 22050, 44100, 48000])
def test_resampling_keeps_the_tone_frequency_and_level(tmp_path: Path, native: int) -> None:
    p = tmp_path / f"{native}.wav"
    sf.write(p, tone(1.0, native, 440.0), native, subtype="FLOAT")
    wav = load_audio(p, SR)
    assert wav.shape == (SR,) and wav.dtype == np.float32
    assert peak_hz(wav, SR) == pytest.approx(440.0, abs=1.0)
    inner = wav[800:-800]  # away from the resampler's edges
    assert float(np.max(np.abs(inner))) == pytest.approx(0.5, abs=0.005)
    np.testing.assert_allclose(inner, tone(1.0, SR, 440.0)[800:-800], atol=2e-3)


def test_downsampling_removes_what_the_new_rate_cannot_hold(tmp_path: Path) -> None:
    """48 kHz -> 16 kHz: a 7 kHz tone stays, a 10 kHz tone is filtered out, not folded to 6 kHz."""
    p = tmp_path / "hi.wav"
    sf.write(p, tone(1.0, 48000, 7000.0) + tone(1.0, 48000, 10000.0), 48000, subtype="FLOAT")
    wav = load_audio(p, SR)
    spectrum = np.abs(np.fft.rfft(wav[800:-800] * np.hanning(len(wav) - 1600)))
    hz = np.fft.rfftfreq(len(wav) - 1600, 1 / SR)
    keep = spectrum[np.abs(hz - 7000) < 20].max()
    alias = spectrum[np.abs(hz - 6000) < 20].max()
    assert alias < keep * 1e-3  # more than 60 dB below the kept tone


@pytest.mark.parametrize("channels", [2, 6])
def test_multichannel_files_are_averaged_to_mono(tmp_path: Path, channels: int) -> None:
    data = np.stack([tone(0.5, SR, 200.0 * (c + 1), amp=0.1 * (c + 1)) for c in range(channels)], axis=1)
    p = tmp_path / f"{channels}ch.wav"
    sf.write(p, data, SR, subtype="FLOAT")
    assert audio_info(p).channels == channels
    np.testing.assert_array_equal(load_audio(p), data.mean(axis=1))
    resampled = load_audio(p, 8000)
    assert resampled.shape == (resampled_length(len(data), SR, 8000),)


def test_anti_phase_stereo_is_named_as_such(tmp_path: Path) -> None:
    x = tone(0.5, SR, 300.0)
    p = tmp_path / "anti.wav"
    sf.write(p, np.stack([x, -x], axis=1), SR, subtype="FLOAT")
    assert raises(p) == (
        f"{p}: the 2 channels cancel out when averaged to mono (anti-phase); keep one channel of the file"
    )


# ----------------------------------------------------------------------------- broken files
def test_truncated_header_is_not_readable(tmp_path: Path) -> None:
    sf.write(tmp_path / "good.wav", tone(1.0, SR, 440.0), SR, subtype="PCM_16")
    data = (tmp_path / "good.wav").read_bytes()
    for cut in (4, 12, 20, 36):
        p = tmp_path / f"cut{cut}.wav"
        p.write_bytes(data[:cut])
        msg = raises(p)
        assert msg.startswith(f"{p}: not a readable audio file (") and msg.endswith(")")
        assert f"Error opening {str(p)!r}" not in msg  # the path is said once


def test_truncated_wav_data_is_refused(tmp_path: Path) -> None:
    sf.write(tmp_path / "good.wav", tone(1.0, SR, 440.0), SR, subtype="PCM_16")
    data = (tmp_path / "good.wav").read_bytes()
    assert len(data) == 44 + 32000
    p = tmp_path / "half.wav"
    p.write_bytes(data[: 44 + 16000])
    expected = f"{p}: truncated WAV file: its header announces 32000 bytes of audio data but only 16000 are present"
    assert raises(p) == expected
    with pytest.raises(AudioError, match="truncated WAV file"):
        scan_audio(p)
    # streaming writers that do not know the length write 0xFFFFFFFF: accepted
    unknown = bytearray(data)
    unknown[40:44] = b"\xff\xff\xff\xff"
    (tmp_path / "stream.wav").write_bytes(bytes(unknown))
    assert load_audio(tmp_path / "stream.wav").shape == (SR,)


def test_truncated_flac_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "a.flac"
    sf.write(p, tone(2.0, SR, 440.0) + 0.01 * np.random.default_rng(0).standard_normal(2 * SR).astype("f4"), SR)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    msg = raises(p)
    assert msg.startswith(f"{p}: ")
    assert "damaged or truncated" in msg or "truncated file: the header announces 32000 frames" in msg


def test_text_file_named_wav(tmp_path: Path) -> None:
    p = tmp_path / "notes.wav"
    p.write_text("RIFF? no: just some words\n" * 10)
    assert raises(p).startswith(f"{p}: not a readable audio file (")


@pytest.mark.parametrize(
    "samples,expected",
    [
        (lambda x: np.where(np.arange(len(x)) == 100_000, np.inf, x), "audio contains NaN or infinite samples"),
        (lambda x: np.where(np.arange(len(x)) == 100_000, np.nan, x), "audio contains NaN or infinite samples"),
        (lambda x: np.zeros_like(x), "audio is all zeros (digital silence)"),
    ],
)
def test_bad_samples_anywhere_in_a_long_file(tmp_path: Path, samples, expected: str) -> None:  # type: ignore[no-untyped-def]
    """One bad sample past the first decoded block is still found."""
    p = tmp_path / "long.wav"
    sf.write(p, samples(tone(10.0, SR, 440.0)), SR, subtype="FLOAT")
    assert raises(p) == f"{p}: {expected}"
    with pytest.raises(AudioError) as info:
        scan_audio(p)
    assert str(info.value) == f"{p}: {expected}"


def test_a_whisper_is_not_silence(tmp_path: Path) -> None:
    x = np.zeros(SR, dtype=np.float32)
    x[5000] = 1e-30  # one denormal-size sample: still audio
    sf.write(tmp_path / "w.wav", x, SR, subtype="FLOAT")
    assert load_audio(tmp_path / "w.wav")[5000] == np.float32(1e-30)


# ----------------------------------------------------------------------------- documented limits
@pytest.mark.parametrize("sr", [8000, 16000, 44100])
def test_minimum_duration_on_both_sides(tmp_path: Path, sr: int) -> None:
    assert MIN_DURATION == 0.1
    n = round(MIN_DURATION * sr)
    ok, short = tmp_path / "ok.wav", tmp_path / "short.wav"
    sf.write(ok, tone(1.0, sr, 440.0)[:n], sr, subtype="FLOAT")
    sf.write(short, tone(1.0, sr, 440.0)[: n - 1], sr, subtype="FLOAT")
    assert load_audio(ok).shape == (n,)
    assert load_audio(ok, SR).shape == (resampled_length(n, sr, SR),)
    # never rounded up to the minimum it misses
    assert raises(short) == f"{short}: audio is 0.099 s long; the minimum is 0.1 s"
    assert load_audio(short, min_duration=0.05).shape == (n - 1,)


def test_maximum_duration_is_checked_on_the_header_before_decoding(tmp_path: Path) -> None:
    """A 1000 Hz file of MAX_DURATION + 60 s is refused from its header; scan/stream have no maximum."""
    assert MAX_DURATION == 3600.0
    sr = 1000
    p = tmp_path / "long.wav"
    with sf.SoundFile(p, "w", samplerate=sr, channels=1, subtype="PCM_16") as f:
        for _ in range(61):
            f.write(tone(60.0, sr, 50.0, amp=0.01))
    assert raises(p) == (
        f"{p}: audio is 3660.0 s long; the maximum is 3600 s (cut long recordings into utterances; "
        "predict with window_seconds streams files of any length)"
    )
    assert load_audio(p, max_duration=None).shape == (3660 * sr,)
    assert scan_audio(p).frames == 3660 * sr
    with pytest.raises(AudioError, match=r"audio is 0\.5 s long; the maximum is 0\.25 s"):
        check_waveform(tone(0.5, SR, 440.0), SR, "x", max_duration=0.25)


def test_read_spans_equal_slices_of_the_loaded_file(tmp_path: Path) -> None:
    p = tmp_path / "s.wav"
    x = np.stack([tone(9.0, 44100, 300.0), tone(9.0, 44100, 500.0, amp=0.2)], axis=1)
    sf.write(p, x, 44100, subtype="PCM_24")
    whole = load_audio(p, SR)
    spans = [(0, 8000), (4000, 12000), (12000, 12000), (100_000, 140_000), (139_000, 200_000), (150_000, 210_000)]
    got = list(read_spans(p, SR, spans))
    for (a, b), piece in zip(spans, got, strict=True):
        np.testing.assert_array_equal(piece, whole[a:b])
    with pytest.raises(AudioError, match="needs non-decreasing spans"):
        list(read_spans(p, SR, [(10, 20), (5, 30)]))


# ----------------------------------------------------------------------------- arguments
@pytest.mark.parametrize(
    "wav,sr,expected",
    [
        ([0.1, 0.2], SR, "x: expected a numpy array of samples, got list"),
        (np.ones((2, 1600), np.float32), SR, "x: expected a 1-D (mono) waveform, got shape (2, 1600)"),
        (np.ones(1600, np.int16), SR, "x: expected float samples in [-1, 1], got dtype int16"),
        (np.ones(1600, np.complex64), SR, "x: expected float samples in [-1, 1], got dtype complex64"),
        (np.ones(1600, np.float32), 0, "x: sample rate must be a positive number of Hz, got 0"),
        (np.ones(1600, np.float32), float("nan"), "x: sample rate must be a positive number of Hz, got nan"),
        (np.ones(1600, np.float32), True, "x: sample rate must be a positive number of Hz, got True"),
        (np.zeros(0, np.float32), SR, "x: audio has zero samples"),
    ],
)
def test_check_waveform_rejects_what_is_not_mono_float_audio(wav: object, sr: object, expected: str) -> None:
    with pytest.raises(AudioError) as info:
        check_waveform(wav, sr, "x")  # type: ignore[arg-type]
    assert str(info.value) == expected


def test_bad_target_rate_is_an_audio_error(tmp_path: Path) -> None:
    p = tmp_path / "a.wav"
    sf.write(p, tone(0.5, SR, 440.0), SR)
    for bad in (0, -16000, 16000.5, float("inf"), "16000"):
        with pytest.raises(AudioError) as info:
            load_audio(p, bad)  # type: ignore[arg-type]
        assert str(info.value) == f"sample_rate must be a positive whole number of Hz, got {bad!r}"
    np.testing.assert_array_equal(load_audio(p, 8000.0), load_audio(p, 8000))  # type: ignore[arg-type]
