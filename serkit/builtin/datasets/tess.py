"""The ``tess`` dataset: the Toronto emotional speech set (English)."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import ClassVar

from serkit.data.corpus import BadName, CorpusDataset, CorpusParams, ParsedName

__all__ = ["TessDataset"]

# OAF_back_angry, YAF_bath_ps; one release file is named OA_bite_neutral (speaker OAF).
_NAME = re.compile(r"^(OAF|YAF|OA)_([A-Za-z]+)_([A-Za-z_]+)$", re.IGNORECASE)

_EMOTIONS = {
    "angry": "angry",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happy",
    "neutral": "neutral",
    "ps": "surprise",
    "pleasant_surprise": "surprise",
    "pleasant_surprised": "surprise",
    "sad": "sad",
}


class TessDataset(CorpusDataset):
    """TESS: 2800 English words in the carrier phrase "Say the word _", 2 female speakers.

    Files are named ``<speaker>_<word>_<emotion>.wav`` (speaker OAF, older, or YAF,
    younger; emotion angry, disgust, fear, happy, neutral, ps = pleasant surprise, sad),
    e.g. ``OAF_angry/OAF_back_angry.wav``. Folder spellings vary between releases
    (``YAF_pleasant_surprised``), so only the file name is read; the one release file
    named ``OA_bite_neutral.wav`` belongs to OAF. Only 2 speakers: speaker-independent
    evaluation is leave-one-speaker-out at best. Some mirrors nest a second copy of the
    whole set, which gives duplicate ids: point root at one copy. Ids are the stems;
    ``meta``: ``word``, ``emotion_code``, ``gender``.
    """

    name: ClassVar[str] = "tess"
    language: ClassVar[str] = "en"
    homepage: ClassVar[str] = "https://doi.org/10.5683/SP2/E8H2MF"
    licence: ClassVar[str] = "CC BY-NC-ND 4.0"
    citation: ClassVar[str] = (
        "M. K. Pichora-Fuller, K. Dupuis. Toronto emotional speech set (TESS). Borealis "
        "(University of Toronto Dataverse), 2020, https://doi.org/10.5683/SP2/E8H2MF."
    )
    how_to_get: ClassVar[str] = (
        "download the files from https://doi.org/10.5683/SP2/E8H2MF (University of Toronto Dataverse) "
        "into one folder; pass that folder (holding OAF_*/ and YAF_*/ or the wavs) as root."
    )
    expected_labels: ClassVar[tuple[str, ...]] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
    naming: ClassVar[str] = (
        "<speaker:OAF|YAF>_<word>_<emotion:angry|disgust|fear|happy|neutral|ps|sad>.wav (e.g. OAF_back_angry.wav)"
    )

    class Params(CorpusParams):
        """TESS parameters: only ``root`` and ``strict``."""

    def parse(self, rel_path: str) -> ParsedName | None:
        stem = PurePosixPath(rel_path).stem
        m = _NAME.match(stem)
        if m is None:
            return None
        speaker, word, emotion = m.groups()
        speaker = speaker.upper()
        speaker = "OAF" if speaker == "OA" else speaker
        code = emotion.lower()
        if code not in _EMOTIONS:
            raise BadName(
                f"unknown emotion {emotion!r} (expected one of angry, disgust, fear, happy, neutral, ps, sad)"
            )
        return ParsedName(
            speaker=speaker,
            label=_EMOTIONS[code],
            meta={"word": word.lower(), "emotion_code": code, "gender": "female"},
        )
