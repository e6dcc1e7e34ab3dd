"""The ``ravdess`` dataset: the Ryerson Audio-Visual Database of Emotional Speech and Song."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import ClassVar, Literal

from pydantic import Field

from serkit.data.corpus import BadName, CorpusDataset, CorpusParams, ParsedName

__all__ = ["RavdessDataset"]

_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")

_EMOTIONS = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fear",
    "07": "disgust",
    "08": "surprise",
}
_MODALITY = {"01": "audio-video", "02": "video", "03": "audio"}
_CHANNEL = {"01": "speech", "02": "song"}
_INTENSITY = {"01": "normal", "02": "strong"}


class RavdessDataset(CorpusDataset):
    """RAVDESS: North American English, 24 actors (odd numbers male, even female).

    Files are named ``Actor_01/03-01-06-01-02-01-12.wav`` = modality (01 audio-video,
    02 video, 03 audio-only) - vocal channel (01 speech, 02 song) - emotion (01 neutral,
    02 calm, 03 happy, 04 sad, 05 angry, 06 fearful, 07 disgust, 08 surprised) -
    intensity (01 normal, 02 strong) - statement (01/02) - repetition (01/02) - actor
    (01-24). Speech has 1440 files, song 1012 (no disgust or surprise). Neutral is only
    recorded at normal intensity and is kept by every ``intensity`` filter. Ids are the
    file stems; speakers the actor numbers (``"12"``); ``meta``: ``channel``,
    ``intensity``, ``statement``, ``repetition``, ``modality``, ``emotion_code``,
    ``gender``.
    """

    name: ClassVar[str] = "ravdess"
    language: ClassVar[str] = "en"
    homepage: ClassVar[str] = "https://zenodo.org/record/1188976"
    licence: ClassVar[str] = "CC BY-NC-SA 4.0"
    citation: ClassVar[str] = (
        "S. R. Livingstone, F. A. Russo. The Ryerson Audio-Visual Database of Emotional Speech and "
        "Song (RAVDESS). PLoS ONE 13(5): e0196391, 2018."
    )
    how_to_get: ClassVar[str] = (
        "download Audio_Speech_Actors_01-24.zip (and Audio_Song_Actors_01-24.zip for song) from "
        "https://zenodo.org/record/1188976 and unpack them into one folder; pass that folder as root."
    )
    expected_labels: ClassVar[tuple[str, ...]] = (
        "angry",
        "calm",
        "disgust",
        "fear",
        "happy",
        "neutral",
        "sad",
        "surprise",
    )
    naming: ClassVar[str] = (
        "<modality>-<channel:01|02>-<emotion:01-08>-<intensity:01|02>-<statement>-<repetition>-"
        "<actor:01-24>.wav (e.g. Actor_12/03-01-06-01-02-01-12.wav)"
    )

    class Params(CorpusParams):
        """RAVDESS parameters."""

        channel: Literal["speech", "song", "all"] = Field(
            "speech", description="Vocal channel: spoken statements, sung ones, or both."
        )
        intensity: Literal["all", "normal", "strong"] = Field(
            "all",
            description="Emotional intensity to keep; neutral (recorded at normal intensity only) is always kept.",
        )
        include_calm: bool = Field(True, description="Keep 'calm' (false: the 7 classes without calm).")

    def parse(self, rel_path: str) -> ParsedName | None:
        m = _NAME.match(PurePosixPath(rel_path).stem)
        if m is None:
            return None
        modality, channel, emotion, intensity, statement, repetition, actor = m.groups()
        for value, table, what in (
            (modality, _MODALITY, "modality"),
            (channel, _CHANNEL, "vocal channel"),
            (emotion, _EMOTIONS, "emotion"),
            (intensity, _INTENSITY, "intensity"),
        ):
            if value not in table:
                raise BadName(f"unknown {what} code {value!r} (expected one of {', '.join(table)})")
        return ParsedName(
            speaker=actor,
            label=_EMOTIONS[emotion],
            meta={
                "modality": _MODALITY[modality],
                "channel": _CHANNEL[channel],
                "intensity": _INTENSITY[intensity],
                "statement": int(statement),
                "repetition": int(repetition),
                "emotion_code": emotion,
                "gender": "male" if int(actor) % 2 == 1 else "female",
            },
        )

    def keep(self, parsed: ParsedName) -> bool:
        p = self.params
        if p.channel != "all" and parsed.meta["channel"] != p.channel:
            return False
        if not p.include_calm and parsed.label == "calm":
            return False
        if p.intensity != "all" and parsed.label != "neutral":
            return parsed.meta["intensity"] == p.intensity
        return True
