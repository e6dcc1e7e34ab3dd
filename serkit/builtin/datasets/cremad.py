"""The ``cremad`` dataset: CREMA-D, crowd-sourced emotional multimodal actors (English)."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import ClassVar

from serkit.data.corpus import BadName, CorpusDataset, CorpusParams, ParsedName

__all__ = ["CremaDDataset"]

_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")

_EMOTIONS = {
    "ANG": "angry",
    "DIS": "disgust",
    "FEA": "fear",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
}
_LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}


class CremaDDataset(CorpusDataset):
    """CREMA-D: 7442 clips of 91 actors (1001-1091) reading 12 sentences in 6 emotions.

    Files are named ``AudioWAV/1001_DFA_ANG_XX.wav`` = actor _ sentence (3 letters, e.g.
    DFA "Don't forget a jacket") _ emotion (ANG, DIS, FEA, HAP, NEU, SAD) _ level (LO, MD,
    HI, XX = unspecified). Labels are the acted emotions, not the crowd ratings. Ids are
    the file stems; ``meta``: ``sentence``, ``level``, ``emotion_code``. Actor genders are
    in the corpus's VideoDemographics.csv, not in the names.
    """

    name: ClassVar[str] = "cremad"
    language: ClassVar[str] = "en"
    homepage: ClassVar[str] = "https://github.com/CheyneyComputerScience/CREMA-D"
    licence: ClassVar[str] = "Open Database License (ODbL) v1.0, contents under the Database Contents License"
    citation: ClassVar[str] = (
        "H. Cao, D. G. Cooper, M. K. Keutmann, R. C. Gur, A. Nenkova, R. Verma. CREMA-D: "
        "Crowd-sourced Emotional Multimodal Actors Dataset. IEEE Transactions on Affective "
        "Computing 5(4), 2014, pp. 377-390."
    )
    how_to_get: ClassVar[str] = (
        "clone https://github.com/CheyneyComputerScience/CREMA-D with git-lfs (or download AudioWAV "
        "from its mirrors); pass the folder holding AudioWAV/ (or AudioWAV itself) as root."
    )
    expected_labels: ClassVar[tuple[str, ...]] = ("angry", "disgust", "fear", "happy", "neutral", "sad")
    naming: ClassVar[str] = (
        "<actor:1001-1091>_<sentence:3 letters>_<emotion:ANG|DIS|FEA|HAP|NEU|SAD>_<level:LO|MD|HI|XX>.wav "
        "(e.g. 1001_DFA_ANG_XX.wav)"
    )

    class Params(CorpusParams):
        """CREMA-D parameters: only ``root`` and ``strict``."""

    def parse(self, rel_path: str) -> ParsedName | None:
        m = _NAME.match(PurePosixPath(rel_path).stem)
        if m is None:
            return None
        actor, sentence, emotion, level = m.groups()
        if emotion not in _EMOTIONS:
            raise BadName(f"unknown emotion code {emotion!r} (expected one of {', '.join(_EMOTIONS)})")
        if level not in _LEVELS:
            raise BadName(f"unknown level {level!r} (expected one of {', '.join(_LEVELS)})")
        return ParsedName(
            speaker=actor,
            label=_EMOTIONS[emotion],
            meta={"sentence": sentence, "level": _LEVELS[level], "emotion_code": emotion},
        )
