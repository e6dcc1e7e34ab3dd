"""The extractor contract suite: built-ins pass it, each broken rule is caught with its exact text;
and the plugin-test helpers (hook, entry point, light import, isolation fixture)."""

from __future__ import annotations

import os
import pickle
import threading
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from pydantic import Field

from serkit.builtin.extractors.mfcc import Mfcc
from serkit.interfaces.base import ComponentParams
from serkit.interfaces.extractor import Extractor
from serkit.testing.extractor_contract import (
    ExtractorContract,
    assert_extractor_contract,
    check_batch,
    check_deterministic,
    check_extractor,
    check_fingerprint,
    check_frames,
    check_parallel_safe,
    make_test_tones,
)
from serkit.testing.plugins import assert_entry_point, assert_hook_registers, assert_light_import

#: How :func:`make_test_tones` names the default waveforms at 16 kHz in problems.
W0 = "test waveform #0 (0.5 s at 16000 Hz)"
W1 = "test waveform #1 (1.7 s at 16000 Hz)"


class Frames(Extractor):
    """Mean and peak magnitude of each ``hop``-sample block, times ``scale`` (tests only)."""

    name: ClassVar[str] = "frames_test"
    parallel_safe: ClassVar[bool] = True

    class Params(ComponentParams):
        hop: int = Field(160, gt=0, description="Block length in samples.")
        scale: float = Field(1.0, description="Multiplies every feature.")

    params: Params

    @property
    def output(self) -> Any:
        return "sequence"

    @property
    def sample_rate(self) -> Any:
        return 16000

    @property
    def dim(self) -> Any:
        return 2

    def extract(self, wav: np.ndarray) -> np.ndarray:
        hop = self.params.hop
        blocks = np.abs(np.pad(wav, (0, -len(wav) % hop)).reshape(-1, hop))
        return (self.params.scale * np.stack([blocks.mean(axis=1), blocks.max(axis=1)], axis=1)).astype(np.float32)


class Vector(Frames):
    """Mean of the frames: a vector extractor (tests only)."""

    name: ClassVar[str] = "vector_test"
    parallel_safe: ClassVar[bool] = False

    @property
    def output(self) -> Any:
        return "vector"

    def extract(self, wav: np.ndarray) -> np.ndarray:
        return super().extract(wav).mean(axis=0)


class WrongDim(Frames):
    @property
    def dim(self) -> Any:
        return 3


class ComplexOutput(Frames):
    def extract(self, wav: np.ndarray) -> np.ndarray:
        return super().extract(wav).astype(np.complex64)


class NaNOutput(Frames):
    def extract(self, wav: np.ndarray) -> np.ndarray:
        out = super().extract(wav)
        out[-1, 0] = np.nan
        return out


class Raises(Frames):
    def extract(self, wav: np.ndarray) -> np.ndarray:
        raise ValueError("no model here")


class BatchOffset(Frames):
    """extract_batch adds 0.5 to what extract gives."""

    def extract_batch(self, wavs: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [self.extract(w) + np.float32(0.5) for w in wavs]


class BatchDropsOne(Frames):
    def extract_batch(self, wavs: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [self.extract(w) for w in wavs[:-1]]


class Drifts(Frames):
    """Each extract call adds 0.25 more than the previous one: not deterministic. extract_batch
    adds what the last calls of extract added, so that it agrees with them."""

    def __init__(self, params: ComponentParams | None = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self.calls = 0

    def extract(self, wav: np.ndarray) -> np.ndarray:
        self.calls += 1
        return super().extract(wav) + np.float32(0.25 * self.calls)

    def extract_batch(self, wavs: Sequence[np.ndarray]) -> list[np.ndarray]:
        first = self.calls - len(wavs) + 1
        return [Frames.extract(self, w) + np.float32(0.25 * (first + i)) for i, w in enumerate(wavs)]


class ShrinkingFrames(Frames):
    """Fewer frames for longer audio."""

    def extract(self, wav: np.ndarray) -> np.ndarray:
        return super().extract(wav)[: max(1, 120 - len(wav) // 160)]


class ScaleIgnored(Frames):
    """``scale`` changes the numbers but is left out of the fingerprint."""

    runtime_params: ClassVar[frozenset[str]] = frozenset({"scale"})


class Unstable(Frames):
    counter: ClassVar[int] = 0

    def fingerprint(self) -> str:
        Unstable.counter += 1
        return f"fp{Unstable.counter}"


class PerInstance(Frames):
    def fingerprint(self) -> str:
        return f"fp{id(self)}"


class Locked(Frames):
    """parallel_safe, but holds a lock: it cannot be sent to a worker process."""

    def __init__(self, params: ComponentParams | None = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self.lock = threading.Lock()


class BadDeclaration(Frames):
    name: ClassVar[str] = "Bad-Name"

    class Params(ComponentParams):
        hop: int = Field(160, gt=0)
        scale: float = Field(1.0, description="Multiplies every feature.")

    @property
    def output(self) -> Any:
        return "frames"

    @property
    def sample_rate(self) -> Any:
        return "16k"

    @property
    def dim(self) -> Any:
        raise RuntimeError("no model folder")


def frames(n_samples: int, hop: int = 160) -> int:
    return -(-n_samples // hop)


# ------------------------------------------------------------------------------- passing
def test_test_tones_are_seeded_float32_tones_at_the_rate() -> None:
    a, b = make_test_tones(8000)
    assert (a.shape, b.shape, a.dtype, b.dtype) == ((4000,), (13600,), np.float32, np.float32)
    spectrum = np.abs(np.fft.rfft(b))
    assert np.argmax(spectrum) * 8000 / b.size == pytest.approx(330.0, abs=1.0)
    assert 0.29 < np.abs(a).max() < 0.35
    np.testing.assert_array_equal(make_test_tones(8000)[0], a)
    assert [w.size for w in make_test_tones(1000, [(0.25, 100.0)])] == [250]


def test_the_test_extractors_are_clean() -> None:
    assert check_extractor(Frames(), changed_params={"scale": 2.0}) == []
    assert check_extractor(Vector(), changed_params={"hop": 80}) == []
    assert_extractor_contract(Frames(hop=80))


def test_builtin_mfcc_passes() -> None:
    assert check_extractor(Mfcc(), changed_params={"n_mfcc": 20}) == []
    assert check_extractor(Mfcc(n_mfcc=13, deltas=2, cmvn=True), changed_params={"cmvn": False}) == []


def test_builtin_ge2e_passes() -> None:
    pytest.importorskip("resemblyzer", reason="resemblyzer is not installed")
    from serkit.builtin.extractors.ge2e import Ge2e

    assert check_extractor(Ge2e(), changed_params={"rate": 2.0}) == []


class TestMfccContract(ExtractorContract):
    """The contract as a plugin uses it: one test per rule."""

    changed_params: ClassVar[dict[str, int]] = {"n_mfcc": 13}

    @pytest.fixture
    def extractor(self) -> Mfcc:
        return Mfcc(n_mfcc=20, n_mels=40)


# ------------------------------------------------------------------------------- broken
def test_declaration_problems_stop_the_checks() -> None:
    assert check_extractor(BadDeclaration()) == [
        "BadDeclaration.name is 'Bad-Name'; expected snake_case like 'my_features'",
        "BadDeclaration.Params field(s) without a description: hop (use Field(..., description=...))",
        "output is 'frames'; expected 'sequence' or 'vector'",
        "dim raised RuntimeError: no model folder",
        "sample_rate is '16k'; expected a positive int (Hz)",
    ]
    assert check_extractor(object()) == ["expected a serkit.Extractor instance; got object"]  # type: ignore[arg-type]


def test_wrong_dim() -> None:
    assert check_extractor(WrongDim()) == [
        f"extractor 'frames_test' returned shape (50, 2) for {W0}; expected (L, 3) with L >= 1",
        f"extractor 'frames_test' returned shape ({frames(27200)}, 2) for {W1}; expected (L, 3) with L >= 1",
    ]


def test_wrong_dtype_nan_and_errors() -> None:
    assert check_extractor(ComplexOutput()) == [
        f"extractor 'frames_test' returned dtype complex64 for {W0}; expected float32",
        f"extractor 'frames_test' returned dtype complex64 for {W1}; expected float32",
    ]
    assert check_extractor(NaNOutput()) == [
        f"extractor 'frames_test' returned NaN or infinite values for {W0}",
        f"extractor 'frames_test' returned NaN or infinite values for {W1}",
    ]
    assert check_extractor(Raises()) == [
        f"extract on {W0} raised ValueError: no model here",
        f"extract on {W1} raised ValueError: no model here",
    ]


def test_extract_batch_differing_from_extract() -> None:
    assert check_extractor(BatchOffset()) == [
        f"extract_batch differs from extract on {W0}: max abs difference 0.5 (rtol 0.0001, atol 1e-05)",
        f"extract_batch differs from extract on {W1}: max abs difference 0.5 (rtol 0.0001, atol 1e-05)",
    ]
    assert check_extractor(BatchDropsOne()) == ["extract_batch returned 1 output(s) for 2 waveforms; expected one each"]
    # within the caller's tolerance it is fine
    assert check_batch(BatchOffset(), make_test_tones(16000), atol=0.6) == []


def test_nondeterministic_extract() -> None:
    # extract: calls 1 and 2 (+0.25, +0.5); extract_batch agrees; the second extract: calls 3 and 4
    assert check_extractor(Drifts()) == [
        f"extract is not deterministic: a second call on {W0} gave other values (max abs difference 0.5)",
        f"extract is not deterministic: a second call on {W1} gave other values (max abs difference 0.5)",
        # and a pickled copy (starting at call 4) drifts further
        f"parallel_safe is True but the unpickled extractor gives other values on {W0}",
    ]
    assert check_deterministic(Drifts(), make_test_tones(16000), atol=0.6) == []


def test_longer_audio_with_fewer_frames() -> None:
    assert check_extractor(ShrinkingFrames()) == [
        f"longer audio gives fewer frames: {W1} gives 1 frame(s), {W0} gives 50"
    ]
    assert check_frames(Vector(), make_test_tones(16000)) == []


def test_fingerprint_ignoring_a_params_change() -> None:
    ext = ScaleIgnored()
    fp = ext.fingerprint()
    assert check_extractor(ext) == []  # the rule needs changed_params
    assert check_extractor(ext, changed_params={"scale": 2.0}) == [
        f"fingerprint() ignores a change of params that changes the numbers ({{'scale': 2.0}}): both give "
        f"{fp!r}; such params must enter the fingerprint (and not be in runtime_params)"
    ]
    [problem] = check_fingerprint(ext, {"hop": 0})
    assert problem.startswith(
        "cannot build the extractor with changed_params {'hop': 0} (ValidationError: 1 validation error for "
        "Params\nhop\n  Input should be greater than 0"
    )


def test_unstable_fingerprints() -> None:
    Unstable.counter = 0
    assert check_fingerprint(Unstable()) == [
        "fingerprint() is not stable: two calls gave 'fp1' and 'fp2'",
        "fingerprint() changes when the extractor is rebuilt from its class and params (as worker processes do): "
        "'fp1', then 'fp3'",
    ]
    ext = PerInstance()
    [problem] = check_fingerprint(ext)
    assert problem.startswith(
        f"fingerprint() changes when the extractor is rebuilt from its class and params (as worker processes do): "
        f"'fp{id(ext)}', then 'fp"
    )


def test_unpicklable_parallel_safe_extractor() -> None:
    assert check_extractor(Locked()) == [
        "parallel_safe is True but the extractor does not pickle (TypeError: cannot pickle '_thread.lock' object)"
    ]
    # the same class without parallel_safe never goes to a worker process: nothing to check
    not_parallel = type("LockedSerial", (Locked,), {"parallel_safe": False})
    assert check_parallel_safe(not_parallel(), make_test_tones(16000)) == []
    assert pickle.loads(pickle.dumps(Frames(hop=80))).params.hop == 80


def test_assert_extractor_contract_lists_every_problem() -> None:
    with pytest.raises(AssertionError) as info:
        assert_extractor_contract(WrongDim())
    cls = f"{WrongDim.__module__}.WrongDim"
    assert str(info.value) == (
        f"extractor 'frames_test' ({cls}) breaks the extractor contract (2 problems):\n"
        f"  - extractor 'frames_test' returned shape (50, 2) for {W0}; expected (L, 3) with L >= 1\n"
        f"  - extractor 'frames_test' returned shape ({frames(27200)}, 2) for {W1}; expected (L, 3) with L >= 1"
    )


def test_contract_class_methods_fail_on_the_broken_rule_only() -> None:
    class Checks(ExtractorContract):
        changed_params: ClassVar[dict[str, float]] = {"scale": 2.0}

    suite = Checks()
    ext = BatchOffset()
    wavs = make_test_tones(16000)
    outs = [ext.extract(w) for w in wavs]
    suite.test_declaration(ext)
    suite.test_outputs(ext, wavs)
    suite.test_deterministic(ext, wavs, outs)
    suite.test_longer_audio_gives_no_fewer_frames(ext, wavs, outs)
    suite.test_fingerprint_is_stable(ext)
    suite.test_fingerprint_follows_params(ext)
    suite.test_parallel_safe_pickles(ext, wavs, outs)
    with pytest.raises(
        AssertionError, match=r"breaks the extractor contract \(2 problems\):\n  - extract_batch differs"
    ):
        suite.test_batch_equals_one_by_one(ext, wavs, outs)
    with pytest.raises(AssertionError, match=r"  - fingerprint\(\) ignores a change of params"):
        suite.test_fingerprint_follows_params(ScaleIgnored())
    with pytest.raises(pytest.skip.Exception, match=r"^ExtractorContract\.changed_params is not set"):
        ExtractorContract().test_fingerprint_follows_params(ext)


# ------------------------------------------------------------------------------- plugin helpers
def _plugin_module(cls: type) -> types.ModuleType:
    from serkit import hookimpl

    module = types.ModuleType("fake_serkit_plugin")

    @hookimpl
    def serkit_register_components(registry: Any) -> None:
        registry.register(cls)

    module.serkit_register_components = serkit_register_components  # type: ignore[attr-defined]
    return module


def test_assert_hook_registers() -> None:
    manager = assert_hook_registers(_plugin_module(Frames), "extractor", "frames_test", Frames)
    assert manager.registry.entry("extractor", "frames_test").plugin == "plugin_under_test"
    with pytest.raises(AssertionError) as info:
        assert_hook_registers(_plugin_module(WrongDim), "extractor", "frames_test", Frames)
    assert str(info.value) == (
        f"extractor 'frames_test' is registered as {WrongDim.__module__}.WrongDim; expected {Frames.__module__}.Frames"
    )
    with pytest.raises(AssertionError, match=r"^the plugin's hook does not register extractor 'vector_test': "):
        assert_hook_registers(_plugin_module(Frames), "extractor", "vector_test", Vector)
    taken = type("NotMfcc", (Frames,), {"name": "mfcc"})
    with pytest.raises(AssertionError) as info:
        assert_hook_registers(_plugin_module(taken), "extractor", "mfcc", taken)
    assert str(info.value).startswith("loading the plugin gave errors: [")
    assert "extractor 'mfcc' is already registered by plugin 'builtin' (distribution serkit)" in str(info.value)


def test_assert_entry_point() -> None:
    entry = assert_entry_point("serkit", "extractor", "mfcc", entry_point="builtin")
    assert entry.cls is Mfcc
    assert os.environ["SERKIT_DISABLE_PLUGIN_AUTOLOAD"] == "1"  # restored after loading with autoload
    with pytest.raises(AssertionError) as info:
        assert_entry_point("serkit", "extractor", "mfcc")
    assert (
        str(info.value)
        == "extractor 'mfcc' comes from plugin 'builtin' of serkit; expected entry point 'mfcc' of serkit"
    )
    with pytest.raises(pytest.skip.Exception) as skipped:
        assert_entry_point("serkit-plugin-nowhere", "extractor", "nowhere")
    assert str(skipped.value) == (
        "serkit-plugin-nowhere is not pip-installed (pip install -e <its folder>); its entry point is untested"
    )


def test_assert_light_import(tmp_path: Path) -> None:
    (tmp_path / "light_pkg").mkdir()
    (tmp_path / "light_pkg" / "__init__.py").write_text("import json\n")
    (tmp_path / "heavy_pkg").mkdir()
    (tmp_path / "heavy_pkg" / "__init__.py").write_text("import json\n\nimport numpy\n")
    assert_light_import("light_pkg", forbidden=("numpy",), src=tmp_path)
    with pytest.raises(AssertionError) as info:
        assert_light_import("heavy_pkg", forbidden=("torch", "numpy"), src=tmp_path)
    assert str(info.value) == (
        "importing heavy_pkg imports numpy; import heavy libraries inside the methods that need them "
        "(serkit imports every plugin at start-up)"
    )
    with pytest.raises(
        AssertionError, match=r"importing no_such_pkg failed in a fresh process:\n(.|\n)*ModuleNotFound"
    ):
        assert_light_import("no_such_pkg", src=tmp_path)
    assert_light_import("serkit.testing.plugins")  # found where this process imports serkit from


def test_serkit_isolated_fixture(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import serkit.plugins as sp

    monkeypatch.delenv("SERKIT_DISABLE_PLUGIN_AUTOLOAD")
    monkeypatch.setenv("SERKIT_CACHE", str(tmp_path / "elsewhere"))
    sp.reset_plugins(sp.load_plugins(autoload=False))
    cache = request.getfixturevalue("serkit_isolated")
    assert cache == tmp_path / "serkit-cache" and os.environ["SERKIT_CACHE"] == str(cache)
    assert os.environ["SERKIT_DISABLE_PLUGIN_AUTOLOAD"] == "1"
    assert sp._MANAGER is None
