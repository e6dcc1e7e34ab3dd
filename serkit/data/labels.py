"""Canonical emotion names, and the mapping from the names corpora use.

Corpora spell the same emotion many ways (``anger``, ``ang``, ``W`` for *Wut*); serkit
compares emotions across languages, so every dataset maps its labels onto one
vocabulary. Plugins add aliases through the ``serkit_label_aliases`` hook.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["CANONICAL_LABELS", "canonical_label", "label_aliases", "unknown_labels_message"]

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


def _with_plugin_aliases(manager: Any) -> dict[str, str]:
    """The built-in aliases plus the plugins'; a failing hook keeps those read before it
    (the result is cached either way, so a broken plugin is not asked again per label)."""
    aliases = dict(_ALIASES)
    try:
        for extra in manager.hook.serkit_label_aliases():
            aliases.update({k.lower(): v for k, v in (extra or {}).items()})
    except Exception:  # label mapping must work even with a broken plugin
        pass
    return aliases


def label_aliases() -> dict[str, str]:
    """The built-in aliases plus those contributed by plugins (``serkit_label_aliases``).

    Computed once per plugin manager (:meth:`serkit.plugins.PluginManager.cached`).
    """
    try:
        from serkit.plugins import get_plugin_manager

        return get_plugin_manager().cached("label_aliases", _with_plugin_aliases)
    except Exception:  # label mapping must work even before/without a plugin manager
        return dict(_ALIASES)


def canonical_label(raw: str, extra: Mapping[str, str] | None = None) -> str:
    """Map a corpus label to its canonical name.

    ``extra`` (a dataset's own ``label_map``) wins over the aliases; its keys match
    whatever the case and surrounding spaces (``Gioia`` and ``gioia`` are one label), and
    its targets are canonicalised too (``Happy`` -> ``happy``, ``joy`` -> ``happy``).
    Labels that are neither canonical nor aliased are returned lower-cased and stripped
    (datasets then refuse them unless declared, see :func:`unknown_labels_message`).
    """
    key = raw.strip()
    if extra:
        if key in extra:
            return canonical_label(extra[key])
        folded = key.casefold()
        for k, target in extra.items():
            if k.strip().casefold() == folded:
                return canonical_label(target)
    low = key.lower()
    if low in CANONICAL_LABELS:
        return low
    return label_aliases().get(low, low)


def unknown_labels_message(where: str, unknown: Mapping[str, Sequence[str]], label_map: str = "label_map") -> str:
    """The error for corpus labels that are not serkit emotions (and that no ``labels`` declare).

    Args:
        where: the domain or dataset (``domains.it``).
        unknown: each unknown label -> where it occurs (``3 utterance(s), e.g. /data/a.wav``).
        label_map: the recipe field that maps labels (``domains.it.dataset.label_map``).
    """
    parts = []
    for raw, places in unknown.items():
        shown = ", ".join(places[:5]) + (f" and {len(places) - 5} more" if len(places) > 5 else "")
        parts.append(f"{raw!r} ({shown})")
    example = next(iter(unknown)).strip().replace(":", "").replace(" ", "_") or "x"
    return (
        f"{where}: label(s) {', '.join(parts)} are not among serkit's emotions ({', '.join(CANONICAL_LABELS)}, "
        f"or an alias such as anger, joy, neu), so they would silently become classes of their own; map them "
        f"with {label_map} (e.g. {{{example}: happy}}; keys match whatever the case), or declare the domain's "
        "label set with the dataset's labels: [...]"
    )
