"""``ge2e`` with ``output: partials``, and ge2e's preprocessing in worker processes."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from pydantic import ValidationError

from serkit.builtin.extractors.ge2e import Ge2e
from serkit.data.audio import load_audio
from serkit.data.utterance import Utterance
from serkit.features import FeatureStore, driver, extract_features


@pytest.fixture(scope="module")
def encoder():
    """resemblyzer's pretrained encoder, loaded once; torch single-threaded meanwhile (see
    test_extractors.py: the LSTM is very slow with 2 threads on shared cores)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield Ge2e().load_encoder()
    torch.set_num_threads(threads)
    driver.shutdown_workers()


def _with(encoder, **params) -> Ge2e:
    ext = Ge2e(**params)
    ext._encoder = encoder
    return ext


def test_partials_are_resemblyzers_partial_embeddings(encoder, make_tone):
    ext = _with(encoder, output="partials")
    assert (ext.output, ext.dim, ext.trainable) == ("sequence", 256, False)
    wavs = [make_tone(1.0, 120.0, 1), make_tone(3.1, 210.0, 2), make_tone(0.6, 300.0, 3)]
    out = ext.extract_batch(wavs)  # all windows of the 3 utterances in one forward pass
    for wav, seq in zip(wavs, out, strict=True):
        embed, partials, wav_slices = encoder.embed_utterance(
            ext.preprocess(wav), return_partials=True, rate=1.3, min_coverage=0.75
        )
        assert seq.dtype == np.float32 and seq.shape == (len(wav_slices), 256) == partials.shape
        np.testing.assert_allclose(seq, partials, atol=1e-5)
        np.testing.assert_allclose(np.linalg.norm(seq, axis=1), 1.0, atol=1e-5)
        # the utterance d-vector is their normalised mean, as with output: embedding
        mean = seq.mean(axis=0)
        np.testing.assert_allclose(mean / np.linalg.norm(mean), embed, atol=1e-5)
    assert out[1].shape[0] > out[0].shape[0] >= 1  # longer audio, more windows
    vectors = _with(encoder).extract_batch(wavs)
    for seq, vec in zip(out, vectors, strict=True):
        np.testing.assert_allclose(seq.mean(axis=0) / np.linalg.norm(seq.mean(axis=0)), vec, atol=1e-5)
    # other rate -> other windows, as resemblyzer
    fast = _with(encoder, output="partials", rate=2.5, min_coverage=0.5)
    _, ref, _ = encoder.embed_utterance(fast.preprocess(wavs[1]), return_partials=True, rate=2.5, min_coverage=0.5)
    np.testing.assert_allclose(fast.extract(wavs[1]), ref, atol=1e-5)


def test_output_param_is_checked_and_keeps_old_fingerprints():
    with pytest.raises(ValidationError, match=r"output 'partials' caches the encoder's outputs, but finetune"):
        Ge2e(output="partials", finetune=True)
    with pytest.raises(ValidationError, match=r"output\n  Input should be 'embedding' or 'partials'"):
        Ge2e(output="frames")
    # stores written before the option existed stay valid: the default is not in the key
    old_params = {"rate": 1.3, "min_coverage": 0.75, "trim_silence": True, "finetune": False, "lr_scale": 0.01}
    payload = json.dumps({"name": "ge2e", "version": "1", "params": old_params}, sort_keys=True)
    assert Ge2e().fingerprint() == hashlib.sha256(payload.encode()).hexdigest()[:16]
    assert Ge2e(output="embedding").fingerprint() == Ge2e().fingerprint() != Ge2e(output="partials").fingerprint()
    assert Ge2e(output="partials").params.output == "partials"


def test_prepare_needs_no_model(make_tone):
    ext = Ge2e()
    windows = ext.prepare(make_tone(2.0, 150.0))
    assert windows.dtype == np.float32 and windows.ndim == 3 and windows.shape[1:] == (160, 40)
    assert ext._encoder is None  # what the extraction driver runs in worker processes


def test_worker_processes_prepare_and_the_model_stays_here(tmp_path, make_wav, encoder):
    paths = [make_wav(f"v{i}.wav", seconds=0.9 + 0.5 * i, f0=110 + 35 * i, seed=i) for i in range(4)]
    utts = [Utterance(f"u{i}", str(p), "happy", "s") for i, p in enumerate(paths)]
    ext = _with(encoder, output="partials")
    by = {}
    for executor in ("thread", "process"):
        store = FeatureStore(tmp_path / executor, ext)
        # one worker: each imports torch (with resemblyzer), seconds of CPU
        res = extract_features(utts, ext, store, batch_size=2, num_workers=1, executor=executor, progress=False)
        assert (res.executor, res.computed) == (executor, 4)
        by[executor] = {uid: store.get(k) for uid, k in res.keys.items()}
    for i, u in enumerate(utts):
        wav = ext.preprocess(load_audio(u.path, 16000))
        n_windows = len(encoder.compute_partial_slices(len(wav), 1.3, 0.75)[0])
        assert by["process"][u.id].shape == (n_windows, 256), i
        np.testing.assert_allclose(by["process"][u.id], by["thread"][u.id], atol=1e-6)
