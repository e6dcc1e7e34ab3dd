"""The ``urdu`` dataset: the URDU corpus of emotional speech from Urdu talk shows.

Layout (as distributed upstream, names unchanged)::

    root/
      Angry/SM1_F10_A010.wav
      Happy/SF1_F10_H010.wav
      Neutral/SF9_F1_N01.wav
      Sad/SF10_F1_S01.wav

A file name is ``S<G><id>_F<nn>_<E><nnn>``: ``G`` is the speaker's gender (M/F), ``id``
the speaker number, ``F<nn>`` the file number of that speaker, and ``E`` the emotion
letter (A/H/N/S for angry/happy/neutral/sad) followed by the file's number within that
emotion. The speaker is ``S<G><id>`` (e.g. ``SM1``; ``SM1`` and ``SF1`` are different
people). The emotion is given twice, by the folder and by the letter; a file whose two
disagree is reported rather than guessed.

This module is the worked example of a dataset plugin: copy its shape for your own
corpus (``serkit plugin new <language>`` generates the same structure).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from pydantic import Field
from serkit.data.utterance import Utterance, check_unique_ids
from serkit.errors import DatasetError
from serkit.interfaces.base import ComponentParams
from serkit.interfaces.dataset import Dataset

__all__ = ["EMOTION_FOLDERS", "EMOTION_LETTERS", "UrduDataset", "UrduName", "parse_name"]

#: Emotion folder (as named upstream) -> canonical label.
EMOTION_FOLDERS: dict[str, str] = {
    "Angry": "angry",
    "Happy": "happy",
    "Neutral": "neutral",
    "Sad": "sad",
}

#: Emotion letter of the file name -> canonical label.
EMOTION_LETTERS: dict[str, str] = {"A": "angry", "H": "happy", "N": "neutral", "S": "sad"}

_NAME_RE = re.compile(r"^S(?P<gender>[MF])(?P<speaker_no>\d+)_F(?P<file_no>\d+)_(?P<letter>[A-Z])(?P<number>\d+)$")
_PATTERN = "S<M|F><id>_F<nn>_<A|H|N|S><nnn>.wav"


@dataclass(frozen=True)
class UrduName:
    """The fields of one URDU file name, e.g. ``SM1_F10_A010``."""

    speaker: str
    gender: str
    file_no: int
    letter: str
    number: int

    @property
    def label(self) -> str:
        """The canonical emotion given by the letter."""
        return EMOTION_LETTERS[self.letter]


def parse_name(stem: str) -> UrduName:
    """Parse a file name without extension (``SM1_F10_A010`` -> speaker ``SM1``, angry).

    Raises:
        ValueError: the name does not follow ``S<G><id>_F<nn>_<E><nnn>``; the message
            says which part is wrong.
    """
    m = _NAME_RE.match(stem)
    if m is None:
        raise ValueError(f"name does not match {_PATTERN}")
    letter = m["letter"]
    if letter not in EMOTION_LETTERS:
        raise ValueError(f"unknown emotion letter {letter!r} (expected one of {', '.join(EMOTION_LETTERS)})")
    return UrduName(
        speaker=f"S{m['gender']}{m['speaker_no']}",
        gender=m["gender"],
        file_no=int(m["file_no"]),
        letter=letter,
        number=int(m["number"]),
    )


class UrduDataset(Dataset):
    """URDU (Latif et al. 2018): 400 Urdu talk-show utterances, 4 emotions, 29 speaker ids.

    100 utterances per emotion (angry, happy, neutral, sad). The upstream README speaks of
    38 speakers; the file names carry 29 distinct speaker ids, which is what the
    speaker-independent protocol uses.
    """

    name: ClassVar[str] = "urdu"
    homepage: ClassVar[str] = "https://github.com/siddiquelatif/URDU-Dataset"
    licence: ClassVar[str] = (
        "research use only (upstream README: 'Anyone can use this data only for research purposes')"
    )
    citation: ClassVar[str] = (
        "Siddique Latif, Adnan Qayyum, Muhammad Usman, Junaid Qadir. Cross Lingual Speech Emotion "
        "Recognition: Urdu vs. Western Languages. International Conference on Frontiers of "
        "Information Technology (FIT), 2018. arXiv:1812.10411"
    )
    how_to_get: ClassVar[str] = (
        "git clone https://github.com/siddiquelatif/URDU-Dataset and set root to the clone, the "
        "folder that holds Angry/, Happy/, Neutral/ and Sad/ (research use only)"
    )
    #: ISO 639-1 code of Urdu.
    language: ClassVar[str] = "ur"

    class Params(ComponentParams):
        root: str = Field(description="Folder that holds Angry/, Happy/, Neutral/ and Sad/.")
        strict: bool = Field(
            True,
            description="Stop with an error listing every file that breaks the naming scheme (or whose "
            "folder and emotion letter disagree) and every missing emotion folder; false: skip them "
            "with a warning.",
        )

    def labels(self) -> list[str]:
        """The four URDU emotions, whatever is on disk."""
        return sorted(EMOTION_FOLDERS.values())

    def utterances(self) -> list[Utterance]:
        """Every ``.wav`` in the four emotion folders, sorted by folder then file name.

        Files that are not ``.wav`` (and hidden files) are ignored; other folders below
        ``root`` are ignored.

        Raises:
            DatasetError: ``root`` is missing or holds none of the emotion folders; with
                ``strict``, any file breaking the naming scheme or any missing folder.
        """
        root = Path(self.params.root).expanduser()
        if not root.is_dir():
            raise DatasetError(f"urdu dataset: root {root} does not exist or is not a folder; {self.how_to_get}")
        on_disk = {d.name.lower(): d for d in root.iterdir() if d.is_dir()}
        folders = {name: on_disk.get(name.lower()) for name in EMOTION_FOLDERS}
        if not any(folders.values()):
            raise DatasetError(
                f"urdu dataset: {root} has none of the folders {', '.join(n + '/' for n in EMOTION_FOLDERS)}; "
                f"{self.how_to_get}"
            )
        problems = [f"{name}/: missing" for name, d in folders.items() if d is None]
        out: list[Utterance] = []
        for name, folder in folders.items():
            if folder is None:
                continue
            label = EMOTION_FOLDERS[name]
            for f in sorted(folder.iterdir()):
                if not f.is_file() or f.name.startswith(".") or f.suffix.lower() != ".wav":
                    continue
                rel = f"{folder.name}/{f.name}"
                try:
                    parsed = parse_name(f.stem)
                except ValueError as err:
                    problems.append(f"{rel}: {err}")
                    continue
                if parsed.label != label:
                    problems.append(
                        f"{rel}: the folder says {label} but the letter {parsed.letter!r} says {parsed.label}"
                    )
                    continue
                out.append(
                    Utterance(
                        id=f.stem,
                        path=str(f.resolve()),
                        label=label,
                        speaker=parsed.speaker,
                        language=self.language,
                        meta={"gender": parsed.gender, "file_no": parsed.file_no, "number": parsed.number},
                    )
                )
        if problems:
            head = f"urdu dataset {root}: {len(problems)} problem(s)"
            body = "\n".join(f"  {p}" for p in problems)
            if self.params.strict:
                raise DatasetError(f"{head} (set strict: false to skip them):\n{body}")
            warnings.warn(f"{head}; skipped:\n{body}", UserWarning, stacklevel=2)
        if not out:
            raise DatasetError(f"urdu dataset {root}: no usable .wav files in the emotion folders")
        check_unique_ids(out, f"urdu dataset {root}")
        return out
