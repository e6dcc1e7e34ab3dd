"""Contract tests for extractor components, for serkit itself and for plugin authors.

An extractor promises more than "``extract()`` returns an array": it declares its
``output`` (``"sequence"`` or ``"vector"``), a positive ``dim`` and ``sample_rate``, and
every output fits that declaration (what :func:`serkit.features.driver.validate_output`
accepts before anything is stored); ``extract_batch`` gives what ``extract`` gives, one
output per waveform; the same audio gives the same numbers twice; the ``fingerprint()``
(the feature store's key) is stable, survives a rebuild from class and params as the
extraction driver's worker processes do it, and changes with any param that changes the
numbers; longer audio never gives fewer frames; and a ``parallel_safe`` extractor pickles,
with its outputs. This module checks all of it on a few generated tones.

Three ways to use it::

    problems = check_extractor(ext)                  # list of problem strings, [] when clean
    assert_extractor_contract(ext)                   # AssertionError listing the problems

    from serkit.testing.extractor_contract import ExtractorContract

    class TestMyFeatures(ExtractorContract):         # pytest collects one test per rule
        changed_params = {"n_bands": 20}             # a params change that changes the numbers

        @pytest.fixture
        def extractor(self):
            return MyFeatures(n_bands=40)
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import TYPE_CHECKING, Any, ClassVar

from serkit.errors import CacheError
from serkit.interfaces.extractor import Extractor
from serkit.testing.contracts import check_declaration_of, contract_broken, contract_fixture

if TYPE_CHECKING:
    import numpy as np

try:  # pytest is a test dependency; check_extractor works without it
    import pytest
except ImportError:  # pragma: no cover - exercised only without the test extra
    pytest = None  # type: ignore[assignment]

__all__ = [
    "ATOL",
    "RTOL",
    "TEST_TONES",
    "ExtractorContract",
    "assert_extractor_contract",
    "check_batch",
    "check_declaration",
    "check_deterministic",
    "check_extractor",
    "check_fingerprint",
    "check_frames",
    "check_outputs",
    "check_parallel_safe",
    "make_test_tones",
    "rebuild",
]

#: Default tolerances when outputs of two calls are compared (``np.allclose``).
RTOL = 1e-4
ATOL = 1e-5
#: ``(seconds, frequency in Hz)`` of the default test waveforms.
TEST_TONES: tuple[tuple[float, float], ...] = ((0.5, 220.0), (1.7, 330.0))

_OUTPUT_KINDS = ("sequence", "vector")


def make_test_tones(sample_rate: int, tones: Sequence[tuple[float, float]] = TEST_TONES) -> list[np.ndarray]:
    """Float32 waveforms at ``sample_rate``: a sine (amplitude 0.3) plus a little seeded noise each.

    Args:
        sample_rate: Hz, usually the extractor's ``sample_rate``.
        tones: ``(seconds, frequency)`` of each waveform; default 0.5 s at 220 Hz and 1.7 s at 330 Hz.
    """
    import numpy as np

    out = []
    for seed, (seconds, frequency) in enumerate(tones):
        t = np.arange(int(seconds * sample_rate)) / sample_rate
        wav = 0.3 * np.sin(2 * np.pi * frequency * t) + 0.01 * np.random.default_rng(seed).standard_normal(t.size)
        out.append(wav.astype(np.float32))
    return out


def rebuild(ext: Extractor) -> Extractor:
    """A new extractor from ``ext``'s class and params, as the extraction driver's worker processes build it."""
    from serkit.features.workers import worker_spec

    cls, params = worker_spec(ext)
    built: Extractor = cls(cls.Params(**params))
    return built


def _describe(wav: Any, i: int, sample_rate: int) -> str:
    n = len(wav) if hasattr(wav, "__len__") else 0
    return f"test waveform #{i} ({n / sample_rate:g} s at {sample_rate} Hz)"


def _raised(what: str, err: BaseException) -> str:
    return f"{what} raised {type(err).__name__}: {err}"


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    import numpy as np

    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0


def _close(a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> bool:
    import numpy as np

    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol))


# ------------------------------------------------------------------------------- rules
def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _declared_shape(ext: Extractor) -> list[str]:
    """``output``, ``dim`` and ``sample_rate``: without them no output can be checked."""
    problems: list[str] = []
    expected = {
        "output": ("'sequence' or 'vector'", lambda v: v in _OUTPUT_KINDS),
        "dim": ("a positive int", _positive_int),
        "sample_rate": ("a positive int (Hz)", _positive_int),
    }
    for attr, (what, ok) in expected.items():
        try:
            value = getattr(ext, attr)
        except Exception as err:
            problems.append(_raised(attr, err))
            continue
        if not ok(value):
            problems.append(f"{attr} is {value!r}; expected {what}")
    return problems


def check_declaration(ext: Extractor) -> list[str]:
    """``kind``, ``name`` and ``Params`` follow the component rules; ``output``, ``dim`` and
    ``sample_rate`` are ``"sequence"``/``"vector"`` and positive ints."""
    if not isinstance(ext, Extractor):
        return [f"expected a serkit.Extractor instance; got {type(ext).__name__}"]
    problems = check_declaration_of(ext, "extractor", "my_features")
    return problems + _declared_shape(ext)


def _extract_all(ext: Extractor, waveforms: Sequence[np.ndarray]) -> tuple[list[np.ndarray] | None, list[str]]:
    """``extract`` on every waveform, validated; ``(None, problems)`` when any of them fails."""
    from serkit.features.driver import validate_output

    sr = ext.sample_rate
    outputs: list[np.ndarray] = []
    problems: list[str] = []
    for i, wav in enumerate(waveforms):
        where = _describe(wav, i, sr)
        try:
            out = ext.extract(wav)
        except Exception as err:
            problems.append(_raised(f"extract on {where}", err))
            continue
        try:
            outputs.append(validate_output(ext, out, where))
        except CacheError as err:
            problems.append(str(err))
    return (None if problems else outputs), problems


def _outputs_or_problems(
    ext: Extractor, waveforms: Sequence[np.ndarray], outputs: Sequence[np.ndarray] | None
) -> tuple[list[np.ndarray] | None, list[str]]:
    if outputs is not None:
        return list(outputs), []
    return _extract_all(ext, waveforms)


def check_outputs(ext: Extractor, waveforms: Sequence[np.ndarray]) -> list[str]:
    """``extract`` returns, for each waveform, what the feature store accepts: a numpy array of
    shape ``(L, dim)`` with ``L >= 1`` (sequence) or ``(dim,)`` (vector), a real dtype, finite values."""
    return _extract_all(ext, waveforms)[1]


def check_batch(
    ext: Extractor,
    waveforms: Sequence[np.ndarray],
    outputs: Sequence[np.ndarray] | None = None,
    *,
    rtol: float = RTOL,
    atol: float = ATOL,
) -> list[str]:
    """``extract_batch(waveforms)`` returns one output per waveform, each close to ``extract``'s.

    ``outputs`` are ``extract``'s (validated) outputs when the caller has them already.
    """
    from serkit.features.driver import validate_output

    single, problems = _outputs_or_problems(ext, waveforms, outputs)
    if single is None:
        return problems
    try:
        batch = ext.extract_batch(list(waveforms))
    except Exception as err:
        return [_raised("extract_batch", err)]
    if not isinstance(batch, (list, tuple)):
        return [f"extract_batch returned {type(batch).__name__}; expected a list with one array per waveform"]
    if len(batch) != len(waveforms):
        return [f"extract_batch returned {len(batch)} output(s) for {len(waveforms)} waveforms; expected one each"]
    sr = ext.sample_rate
    for i, (got, alone) in enumerate(zip(batch, single, strict=True)):
        where = _describe(waveforms[i], i, sr)
        try:
            arr = validate_output(ext, got, f"{where} (extract_batch)")
        except CacheError as err:
            problems.append(str(err))
            continue
        if arr.shape != alone.shape:
            problems.append(f"extract_batch gives shape {arr.shape} for {where}; extract gives {alone.shape}")
        elif not _close(arr, alone, rtol, atol):
            problems.append(
                f"extract_batch differs from extract on {where}: max abs difference "
                f"{_max_diff(arr, alone):.3g} (rtol {rtol:g}, atol {atol:g})"
            )
    return problems


def check_deterministic(
    ext: Extractor,
    waveforms: Sequence[np.ndarray],
    outputs: Sequence[np.ndarray] | None = None,
    *,
    rtol: float = RTOL,
    atol: float = ATOL,
) -> list[str]:
    """A second ``extract`` on the same waveform gives the same output (within the tolerances)."""
    first, problems = _outputs_or_problems(ext, waveforms, outputs)
    if first is None:
        return problems
    again, again_problems = _extract_all(ext, waveforms)
    if again is None:
        return [f"second call: {p}" for p in again_problems]
    sr = ext.sample_rate
    for i, (a, b) in enumerate(zip(first, again, strict=True)):
        where = _describe(waveforms[i], i, sr)
        if a.shape != b.shape:
            problems.append(
                f"extract is not deterministic: a second call on {where} gave shape {b.shape} (first: {a.shape})"
            )
        elif not _close(b, a, rtol, atol):
            problems.append(
                f"extract is not deterministic: a second call on {where} gave other values "
                f"(max abs difference {_max_diff(a, b):.3g})"
            )
    return problems


def check_frames(
    ext: Extractor, waveforms: Sequence[np.ndarray], outputs: Sequence[np.ndarray] | None = None
) -> list[str]:
    """For a sequence extractor, a longer waveform never gives fewer frames (a vector one passes)."""
    if ext.output != "sequence":
        return []
    out, problems = _outputs_or_problems(ext, waveforms, outputs)
    if out is None:
        return problems
    sr = ext.sample_rate
    order = sorted(range(len(waveforms)), key=lambda i: len(waveforms[i]))
    for short, long in pairwise(order):
        if len(waveforms[long]) > len(waveforms[short]) and out[long].shape[0] < out[short].shape[0]:
            problems.append(
                f"longer audio gives fewer frames: {_describe(waveforms[long], long, sr)} gives "
                f"{out[long].shape[0]} frame(s), {_describe(waveforms[short], short, sr)} gives {out[short].shape[0]}"
            )
    return problems


def _fingerprint_of(ext: Extractor) -> tuple[str | None, list[str]]:
    try:
        fp = ext.fingerprint()
    except Exception as err:
        return None, [_raised("fingerprint()", err)]
    if not isinstance(fp, str) or not fp:
        return None, [f"fingerprint() returned {fp!r}; expected a non-empty str"]
    return fp, []


def _fingerprint_is_stable(ext: Extractor) -> list[str]:
    first, problems = _fingerprint_of(ext)
    if first is None:
        return problems
    second, problems = _fingerprint_of(ext)
    if second is None:
        return problems
    if second != first:
        problems.append(f"fingerprint() is not stable: two calls gave {first!r} and {second!r}")
    try:
        rebuilt = rebuild(ext).fingerprint()
    except Exception as err:
        problems.append(
            f"cannot rebuild the extractor from its class and params as worker processes do "
            f"({type(err).__name__}: {err})"
        )
    else:
        if rebuilt != first:
            problems.append(
                f"fingerprint() changes when the extractor is rebuilt from its class and params "
                f"(as worker processes do): {first!r}, then {rebuilt!r}"
            )
    return problems


def _fingerprint_follows(ext: Extractor, changed_params: Mapping[str, Any]) -> list[str]:
    from serkit.features.workers import worker_spec

    first, problems = _fingerprint_of(ext)
    if first is None:
        return problems
    changed = dict(changed_params)
    cls, params = worker_spec(ext)
    try:
        other = cls(cls.Params(**{**params, **changed})).fingerprint()
    except Exception as err:
        return [f"cannot build the extractor with changed_params {changed!r} ({type(err).__name__}: {err})"]
    if other == first:
        return [
            f"fingerprint() ignores a change of params that changes the numbers ({changed!r}): both give "
            f"{first!r}; such params must enter the fingerprint (and not be in runtime_params)"
        ]
    return []


def check_fingerprint(ext: Extractor, changed_params: Mapping[str, Any] | None = None) -> list[str]:
    """``fingerprint()`` is a non-empty str, stable across calls and across a rebuild from class and
    params (as worker processes do it), and different after ``changed_params`` (params that change
    the numbers; that rule is skipped when None)."""
    problems = _fingerprint_is_stable(ext)
    if changed_params and not any(p.startswith(("fingerprint() raised", "fingerprint() returned")) for p in problems):
        problems += _fingerprint_follows(ext, changed_params)
    return problems


def check_parallel_safe(
    ext: Extractor,
    waveforms: Sequence[np.ndarray],
    outputs: Sequence[np.ndarray] | None = None,
    *,
    rtol: float = RTOL,
    atol: float = ATOL,
) -> list[str]:
    """When the class sets ``parallel_safe = True``: the extractor and its outputs pickle, and an
    unpickled copy gives the same output (other extractors pass)."""
    if getattr(type(ext), "parallel_safe", False) is not True:
        return []
    out, problems = _outputs_or_problems(ext, waveforms, outputs)
    if out is None:
        return problems
    try:
        clone = pickle.loads(pickle.dumps(ext))
    except Exception as err:
        return [f"parallel_safe is True but the extractor does not pickle ({type(err).__name__}: {err})"]
    try:
        pickle.loads(pickle.dumps(out))
    except Exception as err:
        problems.append(f"parallel_safe is True but its outputs do not pickle ({type(err).__name__}: {err})")
    if waveforms:
        where = _describe(waveforms[0], 0, ext.sample_rate)
        try:
            copy_out = clone.extract(waveforms[0])
        except Exception as err:
            problems.append(_raised(f"parallel_safe is True but the unpickled extractor's extract on {where}", err))
        else:
            import numpy as np

            arr = np.asarray(copy_out)
            if not _close(arr, out[0], rtol, atol):
                problems.append(f"parallel_safe is True but the unpickled extractor gives other values on {where}")
    return problems


# ------------------------------------------------------------------------------ entry
def check_extractor(
    ext: Extractor,
    waveforms: Sequence[np.ndarray] | None = None,
    *,
    changed_params: Mapping[str, Any] | None = None,
    rtol: float = RTOL,
    atol: float = ATOL,
) -> list[str]:
    """Every contract problem of ``ext``; ``[]`` when it is clean.

    Args:
        ext: an extractor instance (its model must be loadable here).
        waveforms: float32 1-D arrays at ``ext.sample_rate``; default :func:`make_test_tones`
            (0.5 s and 1.7 s).
        changed_params: params that change the numbers (e.g. ``{"n_mfcc": 20}``): the
            fingerprint must change with them; None skips that rule.
        rtol, atol: tolerances of the ``extract_batch`` and determinism comparisons.

    Returns:
        Problem strings.
    """
    problems = check_declaration(ext)
    if not isinstance(ext, Extractor) or _declared_shape(ext):
        return problems
    wavs = list(waveforms) if waveforms is not None else make_test_tones(ext.sample_rate)
    outputs, extract_problems = _extract_all(ext, wavs)
    problems += extract_problems
    if outputs is not None:
        problems += check_batch(ext, wavs, outputs, rtol=rtol, atol=atol)
        problems += check_deterministic(ext, wavs, outputs, rtol=rtol, atol=atol)
        problems += check_frames(ext, wavs, outputs)
        problems += check_parallel_safe(ext, wavs, outputs, rtol=rtol, atol=atol)
    problems += check_fingerprint(ext, changed_params)
    return problems


def _raise(problems: list[str], ext: Extractor) -> None:
    if problems:
        raise contract_broken("extractor", ext, problems)


def assert_extractor_contract(
    ext: Extractor,
    waveforms: Sequence[np.ndarray] | None = None,
    *,
    changed_params: Mapping[str, Any] | None = None,
    rtol: float = RTOL,
    atol: float = ATOL,
) -> None:
    """Raise AssertionError listing every contract problem of ``ext`` (see :func:`check_extractor`)."""
    _raise(check_extractor(ext, waveforms, changed_params=changed_params, rtol=rtol, atol=atol), ext)


# ------------------------------------------------------------------------------ pytest
def _skip(reason: str) -> None:
    if pytest is not None:
        pytest.skip(reason)


class ExtractorContract:
    """Base class of a plugin's extractor contract tests (one test per rule).

    Subclass it in a ``test_*.py`` file under a ``Test*`` name and override the
    ``extractor`` fixture; class attributes tune the checks::

        class TestMyFeatures(ExtractorContract):
            changed_params = {"n_bands": 20}   # the fingerprint must follow this change
            atol = 1e-4                        # batched float32 models round differently

            @pytest.fixture
            def extractor(self):
                return MyFeatures(n_bands=40)

    Override the ``contract_waveforms`` fixture (or set ``waveforms``) for other test audio.
    """

    #: Params that change the numbers; the fingerprint must change with them (None: rule skipped).
    changed_params: ClassVar[Mapping[str, Any] | None] = None
    #: Tolerances of the extract_batch and determinism comparisons.
    rtol: ClassVar[float] = RTOL
    atol: ClassVar[float] = ATOL
    #: Test waveforms (float32, at the extractor's sample rate); None: :func:`make_test_tones`.
    waveforms: ClassVar[Sequence[np.ndarray] | None] = None

    @contract_fixture
    def extractor(self) -> Extractor:
        """Override in the subclass: return the extractor instance to check."""
        raise NotImplementedError(
            f"{type(self).__name__} must override the 'extractor' fixture "
            "(@pytest.fixture def extractor(self): ... return MyExtractor(...))"
        )

    @contract_fixture
    def contract_waveforms(self, extractor: Extractor) -> list[np.ndarray]:
        """The test audio: ``waveforms``, or two tones at the extractor's sample rate."""
        problems = _declared_shape(extractor)
        if problems:
            raise AssertionError(f"extractor {type(extractor).name!r}: {problems[0]}")
        return list(self.waveforms) if self.waveforms is not None else make_test_tones(extractor.sample_rate)

    @contract_fixture
    def contract_outputs(self, extractor: Extractor, contract_waveforms: list[np.ndarray]) -> list[np.ndarray]:
        """``extract`` on each test waveform (the test fails if any output is invalid)."""
        outputs, problems = _extract_all(extractor, contract_waveforms)
        if outputs is None:
            raise AssertionError(f"extractor {type(extractor).name!r}: {problems[0]}")
        return outputs

    def _check(self, extractor: Extractor, problems: list[str]) -> None:
        _raise(problems, extractor)

    def test_declaration(self, extractor: Extractor) -> None:
        self._check(extractor, check_declaration(extractor))

    def test_outputs(self, extractor: Extractor, contract_waveforms: list[np.ndarray]) -> None:
        self._check(extractor, check_outputs(extractor, contract_waveforms))

    def test_batch_equals_one_by_one(
        self, extractor: Extractor, contract_waveforms: list[np.ndarray], contract_outputs: list[np.ndarray]
    ) -> None:
        self._check(
            extractor,
            check_batch(extractor, contract_waveforms, contract_outputs, rtol=self.rtol, atol=self.atol),
        )

    def test_deterministic(
        self, extractor: Extractor, contract_waveforms: list[np.ndarray], contract_outputs: list[np.ndarray]
    ) -> None:
        self._check(
            extractor,
            check_deterministic(extractor, contract_waveforms, contract_outputs, rtol=self.rtol, atol=self.atol),
        )

    def test_longer_audio_gives_no_fewer_frames(
        self, extractor: Extractor, contract_waveforms: list[np.ndarray], contract_outputs: list[np.ndarray]
    ) -> None:
        if extractor.output != "sequence":
            _skip(f"extractor {type(extractor).name!r} gives vectors, not frames")
        self._check(extractor, check_frames(extractor, contract_waveforms, contract_outputs))

    def test_fingerprint_is_stable(self, extractor: Extractor) -> None:
        self._check(extractor, _fingerprint_is_stable(extractor))

    def test_fingerprint_follows_params(self, extractor: Extractor) -> None:
        if not self.changed_params:
            _skip(f"{type(self).__name__}.changed_params is not set (params that change the numbers)")
        self._check(extractor, _fingerprint_follows(extractor, self.changed_params or {}))

    def test_parallel_safe_pickles(
        self, extractor: Extractor, contract_waveforms: list[np.ndarray], contract_outputs: list[np.ndarray]
    ) -> None:
        if getattr(type(extractor), "parallel_safe", False) is not True:
            _skip(f"extractor {type(extractor).name!r} is not parallel_safe")
        self._check(
            extractor,
            check_parallel_safe(extractor, contract_waveforms, contract_outputs, rtol=self.rtol, atol=self.atol),
        )
