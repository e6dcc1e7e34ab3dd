"""The ``aesdd`` dataset: the Acted Emotional Speech Dynamic Database (Greek)."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import ClassVar

from serkit.data.corpus import BadName, CorpusDataset, CorpusParams, ParsedName

__all__ = ["AesddDataset"]

# "a01 (1)", "d03 (01)", "a06 (5)b", "s01 (5)a"
_NAME = re.compile(r"^([a-z])(\d{2}) ?\((\d{1,2})\)([a-z]?)$")

_EMOTIONS = {
    "a": "angry",
    "d": "disgust",
    "f": "fear",
    "h": "happy",
    "s": "sad",
}


class AesddDataset(CorpusDataset):
    """AESDD: acted Greek speech, 5 emotions, about 600 utterances of 5-6 actors (v1.0 + update).

    Files sit in emotion folders (``anger/ disgust/ fear/ happiness/ sadness/``) and are
    named ``<emotion letter><utterance> (<actor>)[take].wav``, e.g. ``anger/a01 (1).wav``:
    emotion a, d, f, h, s; utterance 01-20; actor number; an optional lower-case letter
    marks a second take (``a06 (5)b.wav``), kept in ``meta['take']``. Some releases
    zero-pad the actor (``d03 (01).wav``); the speaker id is the actor number without
    padding (``"1"``). Ids are the file stems; ``meta``: ``utterance``, ``take``,
    ``emotion_code``.
    """

    name: ClassVar[str] = "aesdd"
    language: ClassVar[str] = "el"
    homepage: ClassVar[str] = "http://m3c.web.auth.gr/research/aesdd-speech-emotion-recognition/"
    licence: ClassVar[str] = "free for research use on request (see the homepage)"
    citation: ClassVar[str] = (
        "N. Vryzas, R. Kotsakis, A. Liatsou, C. Dimoulas, G. Kalliris. Speech emotion recognition "
        "for performance interaction. Journal of the Audio Engineering Society 66(6), 2018, pp. 457-467."
    )
    how_to_get: ClassVar[str] = (
        "request AESDD at http://m3c.web.auth.gr/research/aesdd-speech-emotion-recognition/ and unpack "
        "it; pass the folder holding anger/ disgust/ fear/ happiness/ sadness/ as root."
    )
    expected_labels: ClassVar[tuple[str, ...]] = ("angry", "disgust", "fear", "happy", "sad")
    naming: ClassVar[str] = "<emotion:a|d|f|h|s><utterance:01-20> (<actor>)[take letter].wav (e.g. anger/a01 (1).wav)"

    class Params(CorpusParams):
        """AESDD parameters: only ``root`` and ``strict``."""

    def parse(self, rel_path: str) -> ParsedName | None:
        m = _NAME.match(PurePosixPath(rel_path).stem)
        if m is None:
            return None
        code, utterance, actor, take = m.groups()
        if code not in _EMOTIONS:
            raise BadName(f"unknown emotion letter {code!r} (expected one of {''.join(_EMOTIONS)})")
        return ParsedName(
            speaker=str(int(actor)),
            label=_EMOTIONS[code],
            meta={"utterance": int(utterance), "take": take or None, "emotion_code": code},
        )
