"""The ``emodb`` dataset: the Berlin Database of Emotional Speech (German)."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import ClassVar

from serkit.data.corpus import BadName, CorpusDataset, CorpusParams, ParsedName

__all__ = ["EmoDbDataset"]

_NAME = re.compile(r"^(\d{2})([a-z]\d{2})([A-Za-z])([a-z])$")

#: Emotion letter (German word) -> canonical label.
_EMOTIONS = {
    "W": "angry",  # Wut / Ärger
    "L": "boredom",  # Langeweile
    "E": "disgust",  # Ekel
    "A": "fear",  # Angst
    "F": "happy",  # Freude
    "T": "sad",  # Trauer
    "N": "neutral",
}

#: Speaker -> gender, from the corpus documentation.
_GENDER = {
    "03": "male",
    "08": "female",
    "09": "female",
    "10": "male",
    "11": "male",
    "12": "male",
    "13": "female",
    "14": "female",
    "15": "male",
    "16": "female",
}


class EmoDbDataset(CorpusDataset):
    """EmoDB: 535 acted German utterances, 10 speakers (03, 08-16), 7 emotions.

    Files are named like ``wav/03a01Fa.wav``: speaker (2 digits), text code (``a01`` ...
    ``b10``), emotion letter (W anger, L boredom, E disgust, A fear, F happiness,
    T sadness, N neutral) and a version letter. Ids are the file stems; ``meta`` holds
    ``text``, ``version``, ``emotion_code`` and ``gender``.
    """

    name: ClassVar[str] = "emodb"
    language: ClassVar[str] = "de"
    homepage: ClassVar[str] = "http://emodb.bilderbar.info/"
    licence: ClassVar[str] = "free for research use (a copy on Zenodo is released under CC BY 4.0)"
    citation: ClassVar[str] = (
        "F. Burkhardt, A. Paeschke, M. Rolfes, W. Sendlmeier, B. Weiss. A database of German "
        "emotional speech. Proc. Interspeech 2005, pp. 1517-1520."
    )
    how_to_get: ClassVar[str] = (
        "download download.zip from http://emodb.bilderbar.info/ (or the Zenodo copy) and unpack it; "
        "pass the unpacked folder (the one holding wav/) as root."
    )
    expected_labels: ClassVar[tuple[str, ...]] = ("angry", "boredom", "disgust", "fear", "happy", "neutral", "sad")
    naming: ClassVar[str] = (
        "<speaker:2 digits><text:a01..b10><emotion:W|L|E|A|F|T|N><version:a-z>.wav (e.g. 03a01Fa.wav)"
    )

    class Params(CorpusParams):
        """EmoDB parameters: only ``root`` and ``strict``."""

    def parse(self, rel_path: str) -> ParsedName | None:
        stem = PurePosixPath(rel_path).stem
        m = _NAME.match(stem)
        if m is None:
            return None
        speaker, text, code, version = m.groups()
        if code not in _EMOTIONS:
            raise BadName(f"unknown emotion letter {code!r} (expected one of {''.join(_EMOTIONS)})")
        meta = {"text": text, "version": version, "emotion_code": code}
        if speaker in _GENDER:
            meta["gender"] = _GENDER[speaker]
        return ParsedName(speaker=speaker, label=_EMOTIONS[code], meta=meta)
