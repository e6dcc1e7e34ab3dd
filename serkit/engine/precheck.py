"""Checks of a recipe against its datasets that need no features: made before extraction.

``serkit run`` loads the datasets first; a protocol that cannot split them (more speaker
folds than speakers, one speaker for all utterances because a ``folder`` dataset has no
``speaker_regex``, a ``predefined`` protocol without its column) is reported then, not
after minutes of feature extraction. So are labels that are not serkit emotions (a typo,
a corpus's own word such as ``gioia``) in a domain that declares no label set: they would
silently train a class of their own.
"""

from __future__ import annotations

from typing import Any

from serkit.data.labels import CANONICAL_LABELS, unknown_labels_message
from serkit.data.splits import predefined_splits, speaker_folds
from serkit.data.utterance import Utterance
from serkit.errors import DatasetError

__all__ = ["check_labels", "check_protocol"]


def check_protocol(recipe: Any, domains: dict[str, list[Utterance]]) -> None:
    """Raise what :func:`serkit.engine.prepare.plan_splits` would, as far as it is known now.

    Args:
        recipe: the validated recipe.
        domains: domain -> its dataset's utterances.

    Labels are checked first (:func:`check_labels`).

    Raises:
        DatasetError: one line per domain the protocol cannot split
            (``domains.<d>: <why>``), or labels that are not serkit emotions.
    """
    check_labels(recipe, domains)
    proto = recipe.protocol
    problems: list[str] = []
    for d, utts in domains.items():
        try:
            if proto.type == "speaker":
                speaker_folds([u.speaker for u in utts], proto.k, seed=recipe.seed)
            elif proto.type == "predefined":
                labels, meta = [u.label for u in utts], [u.meta for u in utts]
                predefined_splits(labels, meta, column=proto.column, val=proto.val, seed=recipe.seed)
        except DatasetError as err:
            problems.append(f"domains.{d}: {err}")
    if problems:
        raise DatasetError("\n".join(problems))


def check_labels(recipe: Any, domains: dict[str, list[Utterance]]) -> None:
    """Refuse labels outside :data:`~serkit.data.labels.CANONICAL_LABELS` in domains whose
    dataset declares no ``labels`` (a declared set is checked by the dataset itself).

    Raises:
        DatasetError: one paragraph per such domain, naming each label, how many
            utterances have it and one of their files, and the ``label_map`` to fix it.
    """
    problems = []
    for d, utts in domains.items():
        if getattr(recipe.domains[d].dataset, "labels", None):
            continue
        unknown: dict[str, list[str]] = {}
        for u in utts:
            if u.label not in CANONICAL_LABELS:
                unknown.setdefault(u.label, []).append(u.path)
        if unknown:
            where = {lab: [f"{len(paths)} utterance(s), e.g. {paths[0]}"] for lab, paths in unknown.items()}
            problems.append(unknown_labels_message(f"domains.{d}", where, f"domains.{d}.dataset.label_map"))
    if problems:
        raise DatasetError("\n".join(problems))
