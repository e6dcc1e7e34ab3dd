"""The ``savee`` dataset: Surrey Audio-Visual Expressed Emotion (British English)."""

from __future__ import annotations

import re
from typing import ClassVar

from serkit.data.corpus import BadName, CorpusDataset, CorpusParams, ParsedName

__all__ = ["SaveeDataset"]

_SPEAKERS = ("DC", "JE", "JK", "KL")
# DC/a01.wav (the release's speaker folders) or [...]/DC_a01.wav (flattened copies).
_IN_FOLDER = re.compile(r"(?:^|/)([A-Z]{2})/([a-z]{1,2})(\d{2})\.[^./]+$")
_FLAT = re.compile(r"(?:^|/)([A-Z]{2})_([a-z]{1,2})(\d{2})\.[^./]+$")

_EMOTIONS = {
    "a": "angry",
    "d": "disgust",
    "f": "fear",
    "h": "happy",
    "n": "neutral",
    "sa": "sad",
    "su": "surprise",
}


class SaveeDataset(CorpusDataset):
    """SAVEE: 480 utterances of 4 male British English speakers (DC, JE, JK, KL), 7 emotions.

    Files are ``<speaker>/<code><nn>.wav`` with code a anger, d disgust, f fear,
    h happiness, n neutral, sa sadness, su surprise (15 sentences each, 30 neutral), e.g.
    ``JK/sa07.wav``; flattened copies named ``JK_sa07.wav`` are read too. Other files at
    the root (Info.txt, CSVs) are ignored. With 4 speakers, speaker-independent
    evaluation is leave-one-speaker-out. Ids are ``<speaker>_<code><nn>``
    (``JK_sa07``); ``meta``: ``sentence``, ``emotion_code``, ``gender``.
    """

    name: ClassVar[str] = "savee"
    language: ClassVar[str] = "en"
    homepage: ClassVar[str] = "http://kahlan.eps.surrey.ac.uk/savee/"
    licence: ClassVar[str] = "free for research use after registration on the homepage"
    citation: ClassVar[str] = (
        "S. Haq, P. J. B. Jackson. Speaker-dependent audio-visual emotion recognition. "
        "Proc. Int. Conf. on Auditory-Visual Speech Processing (AVSP), 2009, pp. 53-58."
    )
    how_to_get: ClassVar[str] = (
        "register at http://kahlan.eps.surrey.ac.uk/savee/ and download AudioData.zip; pass the "
        "unpacked folder holding DC/, JE/, JK/ and KL/ as root."
    )
    expected_labels: ClassVar[tuple[str, ...]] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
    naming: ClassVar[str] = "<speaker:DC|JE|JK|KL>/<emotion:a|d|f|h|n|sa|su><nn>.wav (e.g. JK/sa07.wav)"

    class Params(CorpusParams):
        """SAVEE parameters: only ``root`` and ``strict``."""

    def parse(self, rel_path: str) -> ParsedName | None:
        m = _IN_FOLDER.search(rel_path) or _FLAT.search(rel_path)
        if m is None:
            return None
        speaker, code, number = m.groups()
        if speaker not in _SPEAKERS:
            raise BadName(f"unknown speaker {speaker!r} (expected one of {', '.join(_SPEAKERS)})")
        if code not in _EMOTIONS:
            raise BadName(f"unknown emotion code {code!r} (expected one of {', '.join(_EMOTIONS)})")
        return ParsedName(
            speaker=speaker,
            label=_EMOTIONS[code],
            id=f"{speaker}_{code}{number}",
            meta={"sentence": int(number), "emotion_code": code, "gender": "male"},
        )
