"""The ``cafe`` dataset: the Canadian French Emotional speech dataset (CaFE)."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import ClassVar, Literal

from pydantic import Field

from serkit.data.corpus import BadName, CorpusDataset, CorpusParams, ParsedName

__all__ = ["CafeDataset"]

# AA-E-I-S for the six emotions, AA-N-S for neutral (no intensity level).
_NAME = re.compile(r"^(\d{2})-([A-Za-z])-(\d)(?:-(\d))?$")

#: Emotion letter (French word) -> canonical label.
_EMOTIONS = {
    "C": "angry",  # Colère
    "D": "disgust",  # Dégoût
    "J": "happy",  # Joie
    "N": "neutral",  # Neutre
    "P": "fear",  # Peur
    "S": "surprise",  # Surprise
    "T": "sad",  # Tristesse
}
_INTENSITY = {"1": "weak", "2": "strong"}  # Faible, Fort


class CafeDataset(CorpusDataset):
    """CaFE: Canadian French, 12 actors (odd numbers male, even female), 6 sentences.

    Files are named ``AA-E-I-S`` (actor 01-12, emotion letter C colère/anger,
    D dégoût/disgust, J joie/happiness, P peur/fear, S surprise, T tristesse/sadness,
    intensity 1 = weak "Faible" / 2 = strong "Fort", sentence 1-6), e.g.
    ``Colère/Fort/01-C-2-3.wav``; neutral has no intensity: ``Neutre/01-N-3.wav``. The
    release has 936 files (6 emotions x 2 intensities x 72 + 72 neutral); one intensity
    plus neutral gives the 504 utterances of most papers. The 48 kHz release is WAV, the
    192 kHz one AIFF; both are read. ``meta``: ``intensity`` (weak/strong, absent for
    neutral), ``sentence``, ``emotion_code``, ``gender``.
    """

    name: ClassVar[str] = "cafe"
    language: ClassVar[str] = "fr"
    homepage: ClassVar[str] = "https://zenodo.org/record/1478765"
    licence: ClassVar[str] = "CC BY-NC-SA 4.0"
    citation: ClassVar[str] = (
        "P. Gournay, O. Lahaie, R. Lefebvre. A Canadian French emotional speech dataset. "
        "Proc. 9th ACM Multimedia Systems Conference (MMSys'18), 2018, pp. 399-402."
    )
    how_to_get: ClassVar[str] = (
        "download CaFE_48k.zip (or CaFE_192k_*.zip) from https://zenodo.org/record/1478765 and "
        "unpack it; pass the folder holding Colère/, Dégoût/, ..., Neutre/ as root."
    )
    expected_labels: ClassVar[tuple[str, ...]] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
    naming: ClassVar[str] = (
        "<actor:01-12>-<emotion:C|D|J|P|S|T>-<intensity:1|2>-<sentence:1-6>.wav, "
        "neutral <actor>-N-<sentence>.wav (e.g. 01-C-2-3.wav, 01-N-3.wav)"
    )
    audio_extensions: ClassVar[tuple[str, ...]] = (".wav", ".flac", ".aiff", ".aif")

    class Params(CorpusParams):
        """CaFE parameters."""

        intensity: Literal["all", "weak", "strong"] = Field(
            "all",
            description="Which intensity of the six emotions to keep (weak = Faible, strong = Fort); "
            "neutral, recorded at one level, is always kept.",
        )

    def parse(self, rel_path: str) -> ParsedName | None:
        stem = PurePosixPath(rel_path).stem
        m = _NAME.match(stem)
        if m is None:
            return None
        actor, code, third, fourth = m.groups()
        code = code.upper()
        if code not in _EMOTIONS:
            raise BadName(f"unknown emotion letter {code!r} (expected one of {''.join(_EMOTIONS)})")
        meta: dict[str, object] = {"emotion_code": code}
        if fourth is None:  # AA-N-S
            if code != "N":
                raise BadName(f"emotion {code!r} needs an intensity field (AA-E-I-S)")
            sentence = third
        else:
            if third not in _INTENSITY:
                raise BadName(f"unknown intensity {third!r} (expected 1 = weak or 2 = strong)")
            if code != "N":
                meta["intensity"] = _INTENSITY[third]
            sentence = fourth
        meta["sentence"] = int(sentence)
        meta["gender"] = "male" if int(actor) % 2 == 1 else "female"
        return ParsedName(speaker=actor, label=_EMOTIONS[code], meta=meta)

    def keep(self, parsed: ParsedName) -> bool:
        wanted = self.params.intensity
        intensity = parsed.meta.get("intensity")
        return wanted == "all" or intensity is None or intensity == wanted
