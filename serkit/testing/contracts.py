"""Contract tests for dataset components, for serkit itself and for plugin authors.

A dataset component promises more than "``utterances()`` returns a list": ids are unique,
labels are canonical emotion names (or belong to the label set the dataset declares),
every utterance has a speaker and a language code, every path is an absolute path to a
readable audio file, there are at least two emotions, and the class says where the data
comes from (``homepage``, ``licence``, ``how_to_get``). This module checks all of it.

Three ways to use it::

    problems = check_dataset(ds)                 # list of problem strings, [] when clean
    assert_dataset_contract(ds)                  # AssertionError listing the errors

    from serkit.testing.contracts import DatasetContract

    class TestMyCorpus(DatasetContract):         # pytest collects one test per rule
        @pytest.fixture
        def dataset(self, tmp_path):
            write_fake_corpus(tmp_path, ["angry/spk1_001.wav", "sad/spk2_001.wav"])
            return MyCorpus(root=str(tmp_path))

A problem is a string. Problems that start with ``"warning: "`` do not break the contract
(placeholder metadata still starting with ``TODO``, language ``und``, fewer than two
speakers, a declared label no utterance has); :func:`assert_dataset_contract` turns them
into :class:`ContractWarning` warnings. Every other problem is an error.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from serkit.data.labels import CANONICAL_LABELS, canonical_label
from serkit.data.utterance import Utterance
from serkit.errors import AudioError
from serkit.interfaces.dataset import Dataset

if TYPE_CHECKING:
    import numpy as np

try:  # pytest is a test dependency; check_dataset works without it
    import pytest
except ImportError:  # pragma: no cover - exercised only without the test extra
    pytest = None  # type: ignore[assignment]

__all__ = [
    "LANGUAGE_CODE_RE",
    "WARNING_PREFIX",
    "ContractWarning",
    "DatasetContract",
    "assert_dataset_contract",
    "check_dataset",
    "check_declaration_of",
    "check_deterministic",
    "check_files",
    "check_ids",
    "check_labels",
    "check_languages",
    "check_metadata",
    "check_params",
    "check_speakers",
    "contract_fixture",
    "errors_of",
    "write_fake_corpus",
    "write_test_tone",
]

#: Problems starting with this prefix are warnings, not contract violations.
WARNING_PREFIX = "warning: "

#: An ISO 639-1/639-3 code with optional subtags: ``ur``, ``urd``, ``pt-BR``, ``zh-Hant``.
LANGUAGE_CODE_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")

#: At most this many offending utterances are named in one problem.
SHOW = 5

#: Metadata class attributes a dataset must fill.
REQUIRED_METADATA: tuple[str, ...] = ("homepage", "licence", "how_to_get")

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_MISSING_SPEAKERS = ("", "unknown")


class ContractWarning(UserWarning):
    """A warning-level contract problem (the dataset still satisfies the contract)."""


def _warning(text: str) -> str:
    return WARNING_PREFIX + text


def errors_of(problems: Iterable[str]) -> list[str]:
    """The problems that are contract violations (not ``warning: ...``)."""
    return [p for p in problems if not p.startswith(WARNING_PREFIX)]


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(items[:SHOW])
    if len(items) > SHOW:
        shown += f", ... ({len(items) - SHOW} more)"
    return shown


def _grouped(what: str, items: Sequence[str]) -> list[str]:
    """One problem ``"<n> utterance(s) <what>: a, b, ..."`` or nothing."""
    if not items:
        return []
    return [f"{len(items)} utterance(s) {what}: {_listing(items)}"]


# ------------------------------------------------------------------------------- rules
def check_ids(utterances: Sequence[Utterance]) -> list[str]:
    """Ids are non-empty strings, unique within the dataset."""
    problems = _grouped(
        "have an empty or non-str id",
        [f"#{i} ({u.path})" for i, u in enumerate(utterances) if not (isinstance(u.id, str) and u.id)],
    )
    seen: set[str] = set()
    dups: list[str] = []
    for u in utterances:
        if u.id in seen and u.id not in dups:
            dups.append(u.id)
        seen.add(u.id)
    if dups:
        problems.append(f"duplicate utterance ids ({len(dups)}): {_listing(dups)}")
    return problems


def _declares_labels(dataset: Dataset) -> bool:
    return type(dataset).labels is not Dataset.labels


def check_labels(dataset: Dataset, utterances: Sequence[Utterance]) -> list[str]:
    """Labels are plain ``str``, canonical or declared, and there are at least two.

    A dataset *declares* its label set by overriding :meth:`Dataset.labels`; without
    that, every label must be one of :data:`serkit.data.labels.CANONICAL_LABELS`.
    """
    problems: list[str] = []
    not_str = [f"{u.id} ({type(u.label).__name__})" for u in utterances if type(u.label) is not str]
    problems += _grouped("have a label that is not a plain str", not_str)
    declared: list[str] | None = None
    if _declares_labels(dataset):
        try:
            declared = dataset.labels()
        except Exception as err:
            problems.append(f"labels() raised {type(err).__name__}: {err}")
        else:
            if not isinstance(declared, list) or not all(type(x) is str for x in declared):
                problems.append(f"labels() must return a list of str; got {declared!r}")
                declared = None
            elif declared != sorted(set(declared)):
                problems.append(f"labels() must be sorted and without repeats; got {declared}")
    allowed = set(CANONICAL_LABELS) | set(declared or [])
    bad = []
    for u in utterances:
        if type(u.label) is str and u.label not in allowed:
            mapped = canonical_label(u.label)
            hint = f" -> {mapped!r}" if mapped in CANONICAL_LABELS and mapped != u.label else ""
            bad.append(f"{u.id} ({u.label!r}{hint})")
    if bad:
        where = "declared by labels()" if declared is not None else "declared (labels() is not overridden)"
        problems.append(
            f"{len(bad)} utterance(s) have a label that is neither canonical nor {where}: "
            f"{_listing(bad)}; map corpus labels with serkit.data.labels.canonical_label"
        )
    present = sorted({u.label for u in utterances if type(u.label) is str})
    if len(present) < 2:
        problems.append(
            f"only {len(present)} label(s) ({', '.join(present) or 'none'}); emotion recognition needs at least 2"
        )
    if declared is not None:
        unused = [x for x in declared if x not in present]
        if unused:
            problems.append(_warning(f"labels() declares {', '.join(unused)} but no utterance has it"))
    return problems


def check_speakers(utterances: Sequence[Utterance]) -> list[str]:
    """Every utterance has a speaker (a non-empty str other than ``unknown``)."""
    missing = [u.id for u in utterances if not isinstance(u.speaker, str) or u.speaker.strip() in _MISSING_SPEAKERS]
    problems = _grouped("have no speaker (empty or 'unknown')", missing)
    speakers = {u.speaker for u in utterances if isinstance(u.speaker, str)} - set(_MISSING_SPEAKERS)
    if not missing and len(speakers) < 2:
        problems.append(_warning(f"only {len(speakers)} speaker(s); speaker-independent protocols need at least 2"))
    return problems


def check_languages(utterances: Sequence[Utterance]) -> list[str]:
    """Every utterance has a language code like ``ur``, ``urd`` or ``pt-BR``."""
    bad = [
        f"{u.id} ({u.language!r})"
        for u in utterances
        if not (isinstance(u.language, str) and LANGUAGE_CODE_RE.match(u.language))
    ]
    problems = _grouped("have a language that is not a code like 'ur', 'urd' or 'pt-BR'", bad)
    if any(u.language == "und" for u in utterances):
        problems.append(_warning("language is 'und' (undetermined); set the corpus's ISO 639 code, e.g. 'ur'"))
    return problems


def _sample(n: int, max_files: int | None) -> list[int]:
    """Indices of at most ``max_files`` items spread evenly over ``range(n)``."""
    if max_files is None or max_files >= n:
        return list(range(n))
    if max_files <= 0:
        return []
    return sorted({(i * n) // max_files for i in range(max_files)})


def check_files(
    utterances: Sequence[Utterance], *, decode_audio: bool = True, max_files: int | None = None
) -> list[str]:
    """Paths are absolute and point to readable audio.

    With ``decode_audio`` each file is decoded by :func:`serkit.data.audio.load_audio`
    (which also rejects empty, silent, too short and non-finite audio); otherwise only
    the header is read. ``max_files`` checks that many files, spread evenly over the list.
    """
    from serkit.data.audio import audio_info, load_audio

    relative: list[str] = []
    missing: list[str] = []
    unreadable: list[str] = []
    for i in _sample(len(utterances), max_files):
        u = utterances[i]
        if not isinstance(u.path, str) or not Path(u.path).is_absolute():
            relative.append(f"{u.id} ({u.path!r})")
            continue
        if not Path(u.path).is_file():
            missing.append(f"{u.id} ({u.path})")
            continue
        try:
            if decode_audio:
                load_audio(u.path)
            else:
                audio_info(u.path)
        except AudioError as err:
            unreadable.append(f"{u.id} ({err})")
    return (
        _grouped("have a relative path (paths must be absolute)", relative)
        + _grouped("point to a missing file", missing)
        + _grouped("are not readable audio", unreadable)
    )


def check_metadata(dataset: Dataset | type[Dataset]) -> list[str]:
    """``homepage``, ``licence`` and ``how_to_get`` are filled in (``TODO...`` warns)."""
    cls = dataset if isinstance(dataset, type) else type(dataset)
    problems: list[str] = []
    for attr in REQUIRED_METADATA:
        value = getattr(cls, attr, "")
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{cls.__name__}.{attr} is empty; say {_METADATA_HINTS[attr]}")
        elif value.strip().upper().startswith("TODO"):
            problems.append(_warning(f"{cls.__name__}.{attr} is still a placeholder: {value.strip()!r}"))
    return problems


_METADATA_HINTS = {
    "homepage": "where the corpus is described (a URL or a paper)",
    "licence": "under which terms the audio may be used (e.g. 'research use only')",
    "how_to_get": "how a user obtains the audio and which folder 'root' points to",
}


def check_declaration_of(component: Any, kind: str, example: str) -> list[str]:
    """A component's ``kind`` is ``kind``, its ``name`` snake_case (like ``example``) and its
    ``Params`` a :class:`~serkit.interfaces.base.ComponentParams` with a description on every field.

    ``component`` is the class or an instance; every contract of :mod:`serkit.testing` starts here.
    """
    from serkit.interfaces.base import ComponentParams

    cls = component if isinstance(component, type) else type(component)
    problems: list[str] = []
    if cls.kind != kind:
        problems.append(f"{cls.__name__}.kind is {cls.kind!r}; expected {kind!r}")
    if not isinstance(cls.name, str) or not _NAME_RE.match(cls.name):
        problems.append(f"{cls.__name__}.name is {cls.name!r}; expected snake_case like {example!r}")
    params = cls.Params
    if not (isinstance(params, type) and issubclass(params, ComponentParams)):
        problems.append(f"{cls.__name__}.Params must subclass serkit.ComponentParams")
        return problems
    undocumented = [n for n, f in params.model_fields.items() if not (f.description or "").strip()]
    if undocumented:
        problems.append(
            f"{cls.__name__}.Params field(s) without a description: {', '.join(undocumented)} "
            "(use Field(..., description=...))"
        )
    return problems


def check_params(dataset: Dataset | type[Dataset]) -> list[str]:
    """The component's ``kind``, ``name`` and ``Params`` follow the component rules."""
    return check_declaration_of(dataset, "dataset", "my_corpus")


def check_deterministic(dataset: Dataset, utterances: Sequence[Utterance]) -> list[str]:
    """A second call to ``utterances()`` returns the same ids in the same order."""
    try:
        again = dataset.utterances()
    except Exception as err:
        return [f"second call to utterances() raised {type(err).__name__}: {err}"]
    if [u.id for u in again] != [u.id for u in utterances]:
        return ["utterances() is not deterministic: a second call returned other ids or another order"]
    return []


def _load(dataset: Dataset) -> tuple[list[Utterance] | None, list[str]]:
    try:
        utts = dataset.utterances()
    except Exception as err:
        return None, [f"utterances() raised {type(err).__name__}: {err}"]
    if not isinstance(utts, list):
        return None, [f"utterances() must return a list; got {type(utts).__name__}"]
    wrong = [f"#{i} ({type(u).__name__})" for i, u in enumerate(utts) if not isinstance(u, Utterance)]
    if wrong:
        return None, [f"utterances() must return serkit.data.Utterance records; got {_listing(wrong)}"]
    if not utts:
        return None, ["utterances() returned no utterances"]
    return utts, []


# ------------------------------------------------------------------------------ entry
def check_dataset(dataset: Dataset, *, decode_audio: bool = True, max_files: int | None = None) -> list[str]:
    """Every contract problem of ``dataset``; ``[]`` when it is clean.

    Args:
        dataset: a dataset component instance.
        decode_audio: decode every checked file (slow on big corpora); False reads
            only the headers.
        max_files: check at most this many audio files (spread over the corpus).

    Returns:
        Problem strings; those starting with ``"warning: "`` are warnings.
    """
    problems = check_params(dataset) + check_metadata(dataset)
    utts, load_problems = _load(dataset)
    if utts is None:
        return problems + load_problems
    problems += check_ids(utts)
    problems += check_labels(dataset, utts)
    problems += check_speakers(utts)
    problems += check_languages(utts)
    problems += check_files(utts, decode_audio=decode_audio, max_files=max_files)
    problems += check_deterministic(dataset, utts)
    return problems


def contract_broken(kind: str, component: Any, problems: Sequence[str]) -> AssertionError:
    """The error every ``assert_*_contract`` raises: the component's kind, name and class,
    then one line per problem."""
    cls = type(component)
    name = getattr(cls, "name", "") or cls.__name__
    body = "\n".join(f"  - {p}" for p in problems)
    return AssertionError(
        f"{kind} {name!r} ({cls.__module__}.{cls.__qualname__}) breaks the {kind} contract "
        f"({len(problems)} problem{'s' if len(problems) != 1 else ''}):\n{body}"
    )


def _raise_or_warn(problems: list[str], dataset: Dataset, strict: bool) -> None:
    errors = problems if strict else errors_of(problems)
    if errors:
        raise contract_broken("dataset", dataset, errors)
    for p in problems:
        warnings.warn(p[len(WARNING_PREFIX) :], ContractWarning, stacklevel=3)


def assert_dataset_contract(
    dataset: Dataset,
    *,
    decode_audio: bool = True,
    max_files: int | None = None,
    strict: bool = False,
) -> None:
    """Raise AssertionError listing every contract error of ``dataset``.

    Warning-level problems are emitted as :class:`ContractWarning` (``strict=True``
    makes them errors too).
    """
    _raise_or_warn(check_dataset(dataset, decode_audio=decode_audio, max_files=max_files), dataset, strict)


# ------------------------------------------------------------------------------ pytest
def contract_fixture(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``pytest.fixture(fn)``, or ``fn`` as it is when pytest is not installed (the checks work without it)."""
    return pytest.fixture(fn) if pytest is not None else fn


class DatasetContract:
    """Base class of a plugin's dataset contract tests (one test per rule).

    Subclass it in a ``test_*.py`` file under a ``Test*`` name and override the
    ``dataset`` fixture; class attributes tune the audio check::

        class TestUrdu(DatasetContract):
            max_files = 50            # decode at most 50 files

            @pytest.fixture
            def dataset(self, tmp_path):
                ...
                return UrduDataset(root=str(tmp_path))
    """

    #: Decode each audio file (False: read only headers).
    decode_audio: ClassVar[bool] = True
    #: Check at most this many audio files (None: all).
    max_files: ClassVar[int | None] = None
    #: Treat warning-level problems as failures.
    strict: ClassVar[bool] = False

    @contract_fixture
    def dataset(self) -> Dataset:
        """Override in the subclass: return the dataset instance to check."""
        raise NotImplementedError(
            f"{type(self).__name__} must override the 'dataset' fixture "
            "(@pytest.fixture def dataset(self, tmp_path): ... return MyDataset(...))"
        )

    @contract_fixture
    def contract_utterances(self, dataset: Dataset) -> list[Utterance]:
        """The dataset's utterances (the test fails if they cannot be listed)."""
        utts, problems = _load(dataset)
        if utts is None:
            raise AssertionError(f"dataset {type(dataset).name!r}: {problems[0]}")
        return utts

    def _check(self, dataset: Dataset, problems: list[str]) -> None:
        _raise_or_warn(problems, dataset, self.strict)

    def test_component_declaration(self, dataset: Dataset) -> None:
        self._check(dataset, check_params(dataset))

    def test_metadata(self, dataset: Dataset) -> None:
        self._check(dataset, check_metadata(dataset))

    def test_ids_are_unique(self, dataset: Dataset, contract_utterances: list[Utterance]) -> None:
        self._check(dataset, check_ids(contract_utterances))

    def test_labels(self, dataset: Dataset, contract_utterances: list[Utterance]) -> None:
        self._check(dataset, check_labels(dataset, contract_utterances))

    def test_speakers(self, dataset: Dataset, contract_utterances: list[Utterance]) -> None:
        self._check(dataset, check_speakers(contract_utterances))

    def test_languages(self, dataset: Dataset, contract_utterances: list[Utterance]) -> None:
        self._check(dataset, check_languages(contract_utterances))

    def test_audio_files(self, dataset: Dataset, contract_utterances: list[Utterance]) -> None:
        self._check(
            dataset,
            check_files(contract_utterances, decode_audio=self.decode_audio, max_files=self.max_files),
        )

    def test_deterministic_order(self, dataset: Dataset, contract_utterances: list[Utterance]) -> None:
        self._check(dataset, check_deterministic(dataset, contract_utterances))


# ------------------------------------------------------------------------------ fakes
def write_test_tone(
    path: str | Path,
    *,
    seconds: float = 0.5,
    frequency: float = 220.0,
    sample_rate: int = 16000,
    noise: float = 0.01,
    seed: int = 0,
) -> Path:
    """Write a short mono 16-bit WAV (a sine plus a little noise); creates parent folders."""
    import numpy as np
    import soundfile as sf

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    wav: np.ndarray = 0.3 * np.sin(2 * np.pi * frequency * t)
    wav = wav + noise * np.random.default_rng(seed).standard_normal(t.size)
    sf.write(p, wav.astype("float32"), sample_rate, subtype="PCM_16")
    return p


def write_fake_corpus(
    root: str | Path,
    relpaths: Iterable[str],
    *,
    seconds: float = 0.5,
    sample_rate: int = 16000,
) -> list[Path]:
    """Write a test tone at each ``root/relpath`` (a corpus tree with real file names).

    Files whose first folder differs get different pitches, so a tiny model can tell the
    "emotions" apart; every file is different (seeded noise).
    """
    root = Path(root)
    pitch: dict[str, float] = {}
    out = []
    for i, rel in enumerate(relpaths):
        top = Path(rel).parts[0] if len(Path(rel).parts) > 1 else ""
        f0 = pitch.setdefault(top, 140.0 * (1.5 ** len(pitch)))
        out.append(write_test_tone(root / rel, seconds=seconds, frequency=f0, sample_rate=sample_rate, seed=i))
    return out
