"""The shared base of the standard emotional-speech corpora (EmoDB, CaFE, RAVDESS, ...).

A published corpus encodes speaker and emotion in its file names (``03a01Fa.wav``,
``03-01-06-01-02-01-12.wav``). A :class:`CorpusDataset` subclass only says how to read one
name (:meth:`CorpusDataset.parse`) and, optionally, which parsed files its parameters keep
(:meth:`CorpusDataset.keep`); the base class walks the folder, builds the
:class:`~serkit.data.utterance.Utterance` list, reports files that break the naming scheme
and explains how to get the corpus when ``root`` is missing.

Nothing here decodes audio: listing a corpus of thousands of files takes milliseconds.
"""

from __future__ import annotations

import os
from abc import abstractmethod
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

from pydantic import Field

from serkit.data.utterance import Utterance, check_unique_ids
from serkit.errors import DatasetError
from serkit.interfaces.base import ComponentParams
from serkit.interfaces.dataset import Dataset

__all__ = ["BadName", "CorpusDataset", "CorpusParams", "ParsedName"]

#: How many offending files a strict error lists.
MAX_LISTED = 20


@dataclass(frozen=True)
class ParsedName:
    """What a corpus's naming scheme says about one file.

    Attributes:
        speaker: speaker id, unique within the corpus (e.g. ``"03"``, ``"F_01"``).
        label: canonical emotion name (one of the corpus's ``expected_labels``, or, for
            files that :meth:`CorpusDataset.keep` drops, the raw code).
        id: utterance id; ``None`` means the file stem.
        duration: seconds, when the corpus documents it (IEMOCAP's turn times).
        meta: corpus fields kept in ``Utterance.meta`` (raw emotion code, gender, ...).
    """

    speaker: str
    label: str
    id: str | None = None
    duration: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)


class BadName(Exception):
    """Raised by :meth:`CorpusDataset.parse` for a name that is close to the scheme but wrong.

    The message says what is wrong (``"unknown emotion code 'X'"``); it ends up in
    ``problems`` and, when ``strict``, in the :class:`DatasetError`.
    """


class CorpusParams(ComponentParams):
    """Parameters shared by every corpus dataset."""

    root: str = Field(description="Folder of the corpus as downloaded/unpacked (see the dataset's how_to_get).")
    strict: bool = Field(
        True,
        description=(
            "Fail when an audio file under root does not follow the corpus's naming scheme; "
            "false: skip such files and list them in the dataset's 'problems'."
        ),
    )


class CorpusDataset(Dataset):
    """Base class of the datasets that read a published corpus from its file names.

    Subclasses set ``name``, ``language`` (ISO 639-1), ``homepage``, ``licence``,
    ``citation``, ``how_to_get``, ``expected_labels`` and ``naming`` (the expected file
    pattern, shown in errors), declare ``class Params(CorpusParams)`` with their extra
    parameters, and implement :meth:`parse`. Override :meth:`keep` to filter on parameters
    and :meth:`files` to look at other files than every ``.wav``/``.flac`` under ``root``.

    After :meth:`utterances`, ``problems`` lists the files that were skipped because they
    break the naming scheme (``"<relative path>: <reason>"``) and ``excluded`` the relative
    paths that follow it but were dropped by the parameters.
    """

    language: ClassVar[str] = "und"
    expected_labels: ClassVar[tuple[str, ...]] = ()
    naming: ClassVar[str] = ""
    audio_extensions: ClassVar[tuple[str, ...]] = (".wav", ".flac")
    #: How a strict error introduces the problems (``{n}``, ``{root}``, ``{naming}``) and what it advises.
    problems_intro: ClassVar[str] = "{n} file(s) under {root} do not follow the corpus's naming scheme {naming}"
    problems_advice: ClassVar[str] = "rename or remove them, or set strict: false to skip them"
    Params: ClassVar[type[ComponentParams]] = CorpusParams

    def __init__(self, params: ComponentParams | None = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self.problems: list[str] = []
        self.excluded: list[str] = []

    # -- what subclasses implement ------------------------------------------------------
    @abstractmethod
    def parse(self, rel_path: str) -> ParsedName | None:
        """Read speaker, label and extras from a file path relative to ``root`` (POSIX).

        Returns:
            the parsed name, or ``None`` when the name does not follow the scheme at all.

        Raises:
            BadName: the name is recognisably the corpus's but invalid (unknown code).
        """

    def keep(self, parsed: ParsedName) -> bool:
        """Whether the parameters keep a well-named file (default: every file)."""
        return True

    def files(self) -> list[Path]:
        """The files to parse: every audio file under ``root``, sorted by relative path.

        Hidden files and folders (``.x``, macOS ``._x`` resource forks) and ``__MACOSX``
        folders are ignored; so is every file whose extension is not in
        ``audio_extensions`` (case-insensitive).
        """
        root = self.root()
        exts = {e.lower() for e in self.audio_extensions}
        found: list[tuple[str, Path]] = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "__MACOSX"]
            for fname in filenames:
                if fname.startswith("."):
                    continue
                if os.path.splitext(fname)[1].lower() not in exts:
                    continue
                path = Path(dirpath, fname)
                found.append((path.relative_to(root).as_posix(), path))
        found.sort(key=lambda item: item[0])
        return [path for _, path in found]

    # -- shared machinery ----------------------------------------------------------------
    def root(self) -> Path:
        """The corpus folder (absolute).

        Raises:
            DatasetError: it does not exist or is not a folder; the message says how to
                get the corpus.
        """
        root = Path(self.params.root).expanduser()
        if not root.exists():
            raise DatasetError(f"{self.name}: root {root} does not exist; how to get it: {self.how_to_get}")
        if not root.is_dir():
            raise DatasetError(f"{self.name}: root {root} is not a folder; how to get it: {self.how_to_get}")
        return root.resolve()

    def utterances(self) -> list[Utterance]:
        """Every kept utterance, sorted by relative path.

        Raises:
            DatasetError: ``root`` is missing; a file breaks the naming scheme (when
                ``strict``); no utterance was found; two files share an id.
        """
        root = self.root()
        self.problems = []
        self.excluded = []
        out: list[Utterance] = []
        examined = 0
        for path in self.files():
            examined += 1
            rel = path.relative_to(root).as_posix()
            parsed = self._parse_or_record(rel)
            if parsed is None:
                continue
            if not self.keep(parsed):
                self.excluded.append(rel)
                continue
            out.append(self.make_utterance(root, rel, parsed))
        self.finish(root, out, examined)
        return out

    def make_utterance(self, root: Path, rel: str, parsed: ParsedName) -> Utterance:
        """The :class:`Utterance` of a kept file (path absolute, language of the corpus)."""
        return Utterance(
            id=parsed.id or PurePosixPath(rel).stem,
            path=str(root / rel),
            label=parsed.label,
            speaker=parsed.speaker,
            language=self.language,
            duration=parsed.duration,
            meta=dict(parsed.meta),
        )

    def finish(self, root: Path, out: list[Utterance], examined: int) -> None:
        """Raise on problems (when strict), on an empty result and on duplicate ids."""
        if self.problems and self.params.strict:
            shown = "\n  ".join(self.problems[:MAX_LISTED])
            more = f"\n  ... and {len(self.problems) - MAX_LISTED} more" if len(self.problems) > MAX_LISTED else ""
            raise DatasetError(
                f"{self.name}: {self.problems_intro.format(n=len(self.problems), root=root, naming=self.naming)}:"
                f"\n  {shown}{more}\n{self.problems_advice}"
            )
        if not out:
            raise DatasetError(
                f"{self.name}: no utterances under {root} ({examined} file(s) examined, "
                f"{len(self.excluded)} excluded by the parameters, {len(self.problems)} misnamed); "
                f"expected files named {self.naming}; how to get it: {self.how_to_get}"
            )
        check_unique_ids(out, f"{self.name} dataset {root}")

    def _parse_or_record(self, rel: str) -> ParsedName | None:
        try:
            parsed = self.parse(rel)
        except BadName as err:
            self.problems.append(f"{rel}: {err}")
            return None
        if parsed is None:
            self.problems.append(f"{rel}: name does not follow the scheme")
        return parsed
