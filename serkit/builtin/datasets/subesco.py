"""The ``subesco`` dataset: SUBESCO, the SUST Bangla Emotional Speech Corpus."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import ClassVar

from serkit.data.corpus import BadName, CorpusDataset, CorpusParams, ParsedName

__all__ = ["SubescoDataset"]

# F_01_OISHI_S_1_ANGRY_1; one release file carries a stray "]": F_02_MONIKA_S_2_SURPRISE_3]
_NAME = re.compile(r"^([FM])_(\d{2})_([A-Za-z]+)_S_(\d{1,2})_([A-Za-z]+)_(\d+)(\]?)$")

_EMOTIONS = {
    "ANGRY": "angry",
    "DISGUST": "disgust",
    "FEAR": "fear",
    "HAPPY": "happy",
    "NEUTRAL": "neutral",
    "SAD": "sad",
    "SURPRISE": "surprise",
}


class SubescoDataset(CorpusDataset):
    """SUBESCO: 7000 Bangla utterances, 20 actors (10 female, 10 male), 10 sentences, 7 emotions.

    Files are named ``F_01_OISHI_S_1_ANGRY_1.wav`` = gender _ speaker number _ speaker
    name _ ``S`` _ sentence number _ emotion (ANGRY, DISGUST, FEAR, HAPPY, NEUTRAL, SAD,
    SURPRISE) _ take (1-5). The speaker id is gender_number (``F_01``). One release file
    ends in a stray ``]`` (``F_02_MONIKA_S_2_SURPRISE_3].wav``): it is accepted and its id
    drops the bracket. Ids are the stems; ``meta``: ``speaker_name``, ``sentence``,
    ``take``, ``emotion_code``, ``gender``.
    """

    name: ClassVar[str] = "subesco"
    language: ClassVar[str] = "bn"
    homepage: ClassVar[str] = "https://doi.org/10.5281/zenodo.4526477"
    licence: ClassVar[str] = "CC BY 4.0"
    citation: ClassVar[str] = (
        "S. Sultana, M. S. Rahman, M. R. Selim, M. Z. Iqbal. SUST Bangla Emotional Speech Corpus "
        "(SUBESCO): An audio-only emotional speech corpus for Bangla. PLoS ONE 16(4): e0250173, 2021."
    )
    how_to_get: ClassVar[str] = (
        "download SUBESCO from Zenodo (https://doi.org/10.5281/zenodo.4526477) and unpack it; pass "
        "the folder holding the .wav files as root."
    )
    expected_labels: ClassVar[tuple[str, ...]] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
    naming: ClassVar[str] = (
        "<gender:F|M>_<speaker:2 digits>_<NAME>_S_<sentence:1-10>_"
        "<emotion:ANGRY|DISGUST|FEAR|HAPPY|NEUTRAL|SAD|SURPRISE>_<take:1-5>.wav (e.g. F_01_OISHI_S_1_ANGRY_1.wav)"
    )

    class Params(CorpusParams):
        """SUBESCO parameters: only ``root`` and ``strict``."""

    def parse(self, rel_path: str) -> ParsedName | None:
        m = _NAME.match(PurePosixPath(rel_path).stem)
        if m is None:
            return None
        gender, number, speaker_name, sentence, emotion, take, bracket = m.groups()
        code = emotion.upper()
        if code not in _EMOTIONS:
            raise BadName(f"unknown emotion {emotion!r} (expected one of {', '.join(_EMOTIONS)})")
        stem = PurePosixPath(rel_path).stem
        return ParsedName(
            speaker=f"{gender}_{number}",
            label=_EMOTIONS[code],
            id=stem[:-1] if bracket else stem,
            meta={
                "speaker_name": speaker_name,
                "sentence": int(sentence),
                "take": int(take),
                "emotion_code": code,
                "gender": "female" if gender == "F" else "male",
            },
        )
