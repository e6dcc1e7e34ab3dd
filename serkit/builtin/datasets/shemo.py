"""The ``shemo`` dataset: ShEMO, the Sharif Emotional Speech Database (Persian)."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import ClassVar

from serkit.data.corpus import BadName, CorpusDataset, CorpusParams, ParsedName

__all__ = ["ShemoDataset"]

_NAME = re.compile(r"^([FM])(\d{2})([A-Z])(\d{2,3})$")

_EMOTIONS = {
    "A": "angry",
    "H": "happy",
    "N": "neutral",
    "S": "sad",
    "W": "surprise",
    "F": "fear",
}


class ShemoDataset(CorpusDataset):
    """ShEMO: 3000 semi-natural Persian utterances from radio plays, 87 speakers, 6 classes.

    Files are ``female/F01A01.wav`` or ``male/M12N03.wav`` = gender (F/M), speaker number
    (2 digits), emotion letter (A anger, H happiness, N neutral, S sadness, W surprise,
    F fear), utterance number. The speaker id is gender + number (``F01``). Fear is
    rare (38 utterances), so most papers drop it. Ids are the file stems; ``meta``:
    ``emotion_code``, ``gender``.
    """

    name: ClassVar[str] = "shemo"
    language: ClassVar[str] = "fa"
    homepage: ClassVar[str] = "https://github.com/pariajm/sharif-emotional-speech-dataset"
    licence: ClassVar[str] = "free for academic use (see the homepage)"
    citation: ClassVar[str] = (
        "O. Mohamad Nezami, P. Jamshid Lou, M. Karami. ShEMO: a large-scale validated database "
        "for Persian speech emotion detection. Language Resources and Evaluation 53(1), 2019, pp. 1-16."
    )
    how_to_get: ClassVar[str] = (
        "download female.zip and male.zip (links in https://github.com/pariajm/sharif-emotional-speech-dataset) "
        "and unpack both into one folder; pass that folder (holding female/ and male/) as root."
    )
    expected_labels: ClassVar[tuple[str, ...]] = ("angry", "fear", "happy", "neutral", "sad", "surprise")
    naming: ClassVar[str] = (
        "<gender:F|M><speaker:2 digits><emotion:A|H|N|S|W|F><utterance:2 digits>.wav (e.g. female/F01A01.wav)"
    )

    class Params(CorpusParams):
        """ShEMO parameters: only ``root`` and ``strict``."""

    def parse(self, rel_path: str) -> ParsedName | None:
        m = _NAME.match(PurePosixPath(rel_path).stem)
        if m is None:
            return None
        gender, number, code, _ = m.groups()
        if code not in _EMOTIONS:
            raise BadName(f"unknown emotion letter {code!r} (expected one of {''.join(_EMOTIONS)})")
        return ParsedName(
            speaker=f"{gender}{number}",
            label=_EMOTIONS[code],
            meta={"emotion_code": code, "gender": "female" if gender == "F" else "male"},
        )
