"""The ``emovo`` dataset: EMOVO, an Italian emotional speech corpus."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import ClassVar

from serkit.data.corpus import BadName, CorpusDataset, CorpusParams, ParsedName

__all__ = ["EmovoDataset"]

_NAME = re.compile(r"^([a-z]{3})-([fm]\d)-([a-z]\d)$", re.IGNORECASE)

_EMOTIONS = {
    "dis": "disgust",  # disgusto
    "gio": "happy",  # gioia
    "neu": "neutral",  # neutro
    "pau": "fear",  # paura
    "rab": "angry",  # rabbia
    "sor": "surprise",  # sorpresa
    "tri": "sad",  # tristezza
}


class EmovoDataset(CorpusDataset):
    """EMOVO: 588 Italian utterances, 6 actors (f1 f2 f3 m1 m2 m3), 14 sentences, 7 emotions.

    Files are ``<actor>/<emotion>-<actor>-<sentence>.wav``, e.g. ``f1/dis-f1-b1.wav``:
    emotion dis disgusto, gio gioia (happy), neu neutro, pau paura (fear), rab rabbia
    (anger), sor sorpresa (surprise), tri tristezza (sad); sentence codes b1-b3, d1-d2,
    l1-l4, n1-n5. Ids are the file stems (lower-cased); ``meta``: ``sentence``,
    ``emotion_code``, ``gender``.
    """

    name: ClassVar[str] = "emovo"
    language: ClassVar[str] = "it"
    homepage: ClassVar[str] = "http://voice.fub.it/activities/corpora/emovo/index.html"
    licence: ClassVar[str] = "free for research use (see the homepage)"
    citation: ClassVar[str] = (
        "G. Costantini, I. Iaderola, A. Paoloni, M. Todisco. EMOVO Corpus: an Italian Emotional "
        "Speech Database. Proc. LREC 2014, pp. 3501-3504."
    )
    how_to_get: ClassVar[str] = (
        "download EMOVO from http://voice.fub.it/activities/corpora/emovo/index.html (mirrors exist); "
        "pass the unpacked folder holding f1/ f2/ f3/ m1/ m2/ m3/ as root."
    )
    expected_labels: ClassVar[tuple[str, ...]] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
    naming: ClassVar[str] = (
        "<emotion:dis|gio|neu|pau|rab|sor|tri>-<actor:f1|f2|f3|m1|m2|m3>-<sentence:b1..n5>.wav (e.g. f1/dis-f1-b1.wav)"
    )

    class Params(CorpusParams):
        """EMOVO parameters: only ``root`` and ``strict``."""

    def parse(self, rel_path: str) -> ParsedName | None:
        stem = PurePosixPath(rel_path).stem.lower()
        m = _NAME.match(stem)
        if m is None:
            return None
        code, actor, sentence = m.groups()
        if code not in _EMOTIONS:
            raise BadName(f"unknown emotion code {code!r} (expected one of {', '.join(_EMOTIONS)})")
        return ParsedName(
            speaker=actor,
            label=_EMOTIONS[code],
            id=stem,
            meta={
                "sentence": sentence,
                "emotion_code": code,
                "gender": "female" if actor[0] == "f" else "male",
            },
        )
