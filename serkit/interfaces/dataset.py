"""Datasets: list a corpus's utterances with canonical labels, speakers and language."""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, ClassVar

from serkit.interfaces.base import Component

if TYPE_CHECKING:
    from serkit.data.utterance import Utterance

__all__ = ["Dataset"]


class Dataset(Component):
    """A corpus on disk (or generated), as a list of :class:`~serkit.data.Utterance`.

    Subclasses describe where the data comes from (``homepage``, ``licence``,
    ``citation``, ``how_to_get``) so that a missing corpus gives a useful error, and
    implement :meth:`utterances`. Labels must be canonical emotion names
    (:func:`serkit.data.labels.canonical_label`).
    """

    kind: ClassVar[str] = "dataset"
    homepage: ClassVar[str] = ""
    licence: ClassVar[str] = ""
    citation: ClassVar[str] = ""
    how_to_get: ClassVar[str] = ""

    @abstractmethod
    def utterances(self) -> list[Utterance]:
        """Every utterance of the corpus, in a deterministic order.

        Raises:
            DatasetError: the corpus is missing (the message says how to get it) or a file
                does not follow the corpus's naming scheme.
        """

    def labels(self) -> list[str]:
        """The label set, sorted; by default the labels present in :meth:`utterances`."""
        return sorted({u.label for u in self.utterances()})
