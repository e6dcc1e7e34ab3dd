"""Checks of a recipe against its datasets that need no features: made before extraction.

``serkit run`` loads the datasets first; a protocol that cannot split them (more speaker
folds than speakers, one speaker for all utterances because a ``folder`` dataset has no
``speaker_regex``, a ``predefined`` protocol without its column) is reported then, not
after minutes of feature extraction.
"""

from __future__ import annotations

from typing import Any

from serkit.data.splits import predefined_splits, speaker_folds
from serkit.data.utterance import Utterance
from serkit.errors import DatasetError

__all__ = ["check_protocol"]


def check_protocol(recipe: Any, domains: dict[str, list[Utterance]]) -> None:
    """Raise what :func:`serkit.engine.run.plan_splits` would, as far as it is known now.

    Args:
        recipe: the validated recipe.
        domains: domain -> its dataset's utterances.

    Raises:
        DatasetError: one line per domain the protocol cannot split
            (``domains.<d>: <why>``).
    """
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
