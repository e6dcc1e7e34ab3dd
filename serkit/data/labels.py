"""Canonical emotion names, and the mapping from the names corpora use.

Corpora spell the same emotion many ways (``anger``, ``ang``, ``W`` for *Wut*); serkit
compares emotions across languages, so every dataset maps its labels onto one
vocabulary. Plugins add aliases through the ``serkit_label_aliases`` hook.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

__all__ = ["CANONICAL_LABELS", "canonical_label", "label_aliases"]

#: The canonical emotion vocabulary (a superset of every built-in corpus's label set).
CANONICAL_LABELS: tuple[str, ...] = (
    "angry",
    "boredom",
    "calm",
    "contempt",
    "disgust",
    "fear",
    "happy",
    "neutral",
    "sad",
    "surprise",
)

_ALIASES: dict[str, str] = {
    "anger": "angry",
    "ang": "angry",
    "mad": "angry",
    "bored": "boredom",
    "boring": "boredom",
    "disgusted": "disgust",
    "dis": "disgust",
    "fearful": "fear",
    "afraid": "fear",
    "fea": "fear",
    "scared": "fear",
    "happiness": "happy",
    "hap": "happy",
    "joy": "happy",
    "joyful": "happy",
    "neu": "neutral",
    "sadness": "sad",
    "surprised": "surprise",
    "sur": "surprise",
    "pleasant_surprise": "surprise",
    "ps": "surprise",
}


@functools.lru_cache(maxsize=1)
def label_aliases() -> dict[str, str]:
    """The built-in aliases plus those contributed by plugins (``serkit_label_aliases``)."""
    aliases = dict(_ALIASES)
    try:
        from serkit.plugins import get_plugin_manager

        for extra in get_plugin_manager().hook.serkit_label_aliases():
            aliases.update({k.lower(): v for k, v in (extra or {}).items()})
    except Exception:  # label mapping must work even before/without plugins
        pass
    return aliases


def canonical_label(raw: str, extra: Mapping[str, str] | None = None) -> str:
    """Map a corpus label to its canonical name.

    ``extra`` (a dataset's own ``label_map``) wins over the aliases. Labels that are
    neither canonical nor aliased are returned lower-cased and stripped, so custom
    label sets still work.
    """
    key = raw.strip()
    if extra and key in extra:
        return extra[key]
    low = key.lower()
    if extra and low in extra:
        return extra[low]
    if low in CANONICAL_LABELS:
        return low
    return label_aliases().get(low, low)
