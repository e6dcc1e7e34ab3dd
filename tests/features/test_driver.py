"""extract_features: batching, resume, bad audio, validation, duplicates, threads."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from serkit.data.audio import load_audio
from serkit.data.utterance import Utterance
from serkit.errors import AudioError, CacheError, SerkitError
from serkit.features import ExtractionResult, FeatureStore, extract_features


def _utts(paths: list[Path]) -> list[Utterance]:
    return [
        Utterance(id=f"u{i}", path=str(p), label="neutral", speaker="s")
        for i, p in enumerate(paths)
    ]


@pytest.fixture
def counting_cls(frame_stats_cls):
    """FrameStats that records the batch sizes it sees and can fail on a given batch."""

    class Counting(frame_stats_cls):
        def __init__(self, *args, fail_on_batch: int | None = None, **kwargs):
            super().__init__(*args, **kwargs)
            self.batches: list[int] = []
            self.fail_on_batch = fail_on_batch

        def extract_batch(self, wavs):
            if self.fail_on_batch is not None and len(self.batches) + 1 == self.fail_on_batch:
                raise RuntimeError("simulated crash")
            self.batches.append(len(wavs))
            return super().extract_batch(wavs)

    return Counting


def test_extracts_all_then_everything_is_cached(tmp_path, make_wav, counting_cls):
    paths = [
        make_wav(f"w{i}.wav", seconds=0.5 + 0.1 * i, f0=100 + 20 * i, seed=i) for i in range(7)
    ]
    utts = _utts(paths)
    ext = counting_cls()
    store = FeatureStore(tmp_path / "store", ext)
    res = extract_features(utts, ext, store, batch_size=3, num_workers=2, progress=False)
    assert isinstance(res, ExtractionResult)
    assert (res.computed, res.cached, res.failed) == (7, 0, [])
    assert sorted(ext.batches) == [1, 3, 3]
    assert list(res.keys) == [u.id for u in utts]
    assert len(set(res.keys.values())) == 7 and len(store) == 7
    assert res.audio_seconds == pytest.approx(sum(0.5 + 0.1 * i for i in range(7)), abs=1e-6)
    assert res.seconds > 0 and res.real_time_factor > 0
    for u in utts:
        expected = ext.extract(load_audio(u.path, 16000))
        np.testing.assert_array_equal(store.get(res.keys[u.id]), expected)

    again = counting_cls()
    res2 = extract_features(utts, again, store, batch_size=3, num_workers=0, progress=False)
    assert (res2.computed, res2.cached, again.batches) == (0, 7, [])
    assert res2.keys == res.keys and res2.audio_seconds == 0.0


def test_resume_after_a_crash_recomputes_only_the_rest(tmp_path, make_wav, counting_cls):
    paths = [make_wav(f"w{i}.wav", seconds=0.3, f0=120 + 10 * i, seed=i) for i in range(10)]
    utts = _utts(paths)
    crashing = counting_cls(fail_on_batch=3)
    store = FeatureStore(tmp_path / "store", crashing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        extract_features(utts, crashing, store, batch_size=4, num_workers=2, progress=False)
    assert len(store) == 8  # the two committed batches survive

    fresh = counting_cls()
    res = extract_features(utts, fresh, store, batch_size=4, num_workers=2, progress=False)
    assert (res.computed, res.cached) == (2, 8)
    assert fresh.batches == [2]
    assert len(store) == 10 and len(res.keys) == 10


def test_changed_audio_is_recomputed(tmp_path, make_wav, counting_cls):
    path = make_wav("a.wav", f0=150)
    ext = counting_cls()
    store = FeatureStore(tmp_path / "store", ext)
    first = extract_features(_utts([path]), ext, store, progress=False)
    make_wav("a.wav", f0=175)
    second = extract_features(_utts([path]), ext, store, progress=False)
    assert second.computed == 1 and second.keys["u0"] != first.keys["u0"]
    assert not np.array_equal(store.get(first.keys["u0"]), store.get(second.keys["u0"]))


def test_identical_files_share_one_item(tmp_path, make_wav, counting_cls):
    a = make_wav("a.wav")
    b = tmp_path / "copy" / "b.wav"
    b.parent.mkdir()
    shutil.copy(a, b)
    utts = [*_utts([a, b]), Utterance(id="again", path=str(a), label="sad", speaker="t")]
    ext = counting_cls()
    store = FeatureStore(tmp_path / "store", ext)
    res = extract_features(utts, ext, store, progress=False)
    assert res.computed == 1 and ext.batches == [1]
    assert len(set(res.keys.values())) == 1 and len(res.keys) == 3


def test_bad_audio_skip_lists_the_files(tmp_path, make_wav, counting_cls):
    good = [make_wav(f"g{i}.wav", seed=i) for i in range(3)]
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF not really a wave file" * 10)
    missing = tmp_path / "missing.wav"
    tiny = make_wav("tiny.wav", seconds=0.05)
    utts = _utts([good[0], garbage, good[1], missing, tiny, good[2]])
    ext = counting_cls()
    store = FeatureStore(tmp_path / "store", ext)
    res = extract_features(utts, ext, store, batch_size=2, on_bad_audio="skip", progress=False)
    assert sorted(res.keys) == ["u0", "u2", "u5"]
    assert res.computed == 3
    failed = {uid: (path, msg) for uid, path, msg in res.failed}
    assert set(failed) == {"u1", "u3", "u4"}
    assert failed["u1"][0] == str(garbage) and "not a readable audio file" in failed["u1"][1]
    assert failed["u3"][1].startswith(f"{missing}: cannot read")
    assert "minimum is 0.1 s" in failed["u4"][1] and str(tiny) in failed["u4"][1]


def test_bad_audio_error_names_the_file(tmp_path, make_wav, counting_cls):
    good = make_wav("good.wav")
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"\x00" * 64)
    ext = counting_cls()
    store = FeatureStore(tmp_path / "store", ext)
    with pytest.raises(AudioError, match=rf"^{garbage}: not a readable audio file"):
        extract_features(_utts([good, garbage]), ext, store, batch_size=1, progress=False)
    assert len(store) == 1  # the batch before the bad file was committed


def test_extractor_audio_error_is_attributed_to_its_file(tmp_path, make_wav, frame_stats_cls):
    class Picky(frame_stats_cls):
        def extract(self, wav):
            if len(wav) > 20000:
                raise AudioError("too long for this extractor")
            return super().extract(wav)

    short = [make_wav(f"s{i}.wav", seconds=1.0, seed=i) for i in range(2)]
    long = make_wav("long.wav", seconds=2.0)
    ext = Picky()
    store = FeatureStore(tmp_path / "store", ext)
    utts = _utts([short[0], long, short[1]])
    res = extract_features(utts, ext, store, batch_size=3, on_bad_audio="skip", progress=False)
    assert sorted(res.keys) == ["u0", "u2"]
    assert res.failed == [("u1", str(long), f"{long}: too long for this extractor")]
    with pytest.raises(AudioError, match=rf"^{long}: too long"):
        extract_features(utts, ext, store, batch_size=3, progress=False)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            lambda y: y[:, :2],
            r"returned shape \(\d+, 2\) for .*w0.wav; expected \(L, 3\) with L >= 1",
        ),
        (lambda y: y[:0], r"returned shape \(0, 3\) for .*; expected \(L, 3\)"),
        (lambda y: y.mean(axis=0), r"returned shape \(3,\) for .*; expected \(L, 3\)"),
        (lambda y: y * np.nan, r"returned NaN or infinite values for .*w0.wav"),
        (lambda y: y.tolist(), r"returned list for .*w0.wav; expected a numpy array"),
    ],
)
def test_invalid_outputs_are_refused(tmp_path, make_wav, frame_stats_cls, bad, message):
    class Broken(frame_stats_cls):
        def extract(self, wav):
            return bad(super().extract(wav))

    ext = Broken()
    store = FeatureStore(tmp_path / "store", ext)
    with pytest.raises(CacheError, match=r"extractor 'frame_stats' " + message):
        extract_features(_utts([make_wav("w0.wav")]), ext, store, progress=False)
    assert len(store) == 0


def test_vector_outputs(tmp_path, make_wav, frame_stats_cls):
    ext = frame_stats_cls(kind="vector")
    store = FeatureStore(tmp_path / "store", ext)
    res = extract_features(_utts([make_wav("a.wav")]), ext, store, progress=True)
    assert store.get(res.keys["u0"]).shape == (3,)


def test_arguments_are_checked(tmp_path, make_wav, frame_stats_cls):
    ext = frame_stats_cls()
    store = FeatureStore(tmp_path / "store", ext)
    utts = _utts([make_wav("a.wav")])
    with pytest.raises(SerkitError, match="batch_size must be >= 1, got 0"):
        extract_features(utts, ext, store, batch_size=0)
    with pytest.raises(SerkitError, match="on_bad_audio must be 'error' or 'skip', got 'ignore'"):
        extract_features(utts, ext, store, on_bad_audio="ignore")  # type: ignore[arg-type]
    with pytest.raises(SerkitError, match=r"holds extractor fingerprint .* open the store"):
        extract_features(utts, frame_stats_cls(frame=100), store)
    with pytest.raises(SerkitError, match="duplicate utterance ids"):
        extract_features(utts + utts, ext, store)


def test_a_failed_commit_stops_the_extraction_and_keeps_the_committed_batches(tmp_path, make_wav, frame_stats_cls):
    """Commits run in a writer thread; its error reaches the caller, not a silent thread death."""

    class DiskFull(FeatureStore):
        calls = 0

        def put_many(self, items):
            DiskFull.calls += 1
            if DiskFull.calls == 2:
                raise CacheError(f"{self.path}: writing {len(items)} item(s) failed (database or disk is full)")
            super().put_many(items)

    paths = [make_wav(f"w{i}.wav", seconds=0.3, f0=120 + 10 * i, seed=i) for i in range(10)]
    ext = frame_stats_cls()
    store = DiskFull(tmp_path / "store", ext)
    with pytest.raises(CacheError, match=r"writing 4 item\(s\) failed \(database or disk is full\)"):
        extract_features(_utts(paths), ext, store, batch_size=4, num_workers=2, progress=False, executor="thread")
    assert len(store) == 4  # the first batch; nothing after the failed one was written
    res = extract_features(_utts(paths), ext, store, batch_size=4, num_workers=2, progress=False, executor="thread")
    assert (res.computed, res.cached) == (6, 4) and len(store) == 10
