"""The ``synthetic`` dataset: a generated emotional-speech corpus, no download needed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import ClassVar

from pydantic import Field, field_validator

from serkit.data.labels import canonical_label
from serkit.data.synthetic import (
    DEFAULT_EMOTIONS,
    EMOTION_PROFILES,
    GENERATOR_VERSION,
    PSEUDO_LANGUAGES,
    generate_corpus,
)
from serkit.data.utterance import Utterance
from serkit.interfaces.base import ComponentParams
from serkit.interfaces.dataset import Dataset

__all__ = ["SyntheticDataset"]


def _unique(values: list[str], field: str) -> list[str]:
    dups = sorted({v for v in values if values.count(v) > 1})
    if dups:
        raise ValueError(f"{field} lists {', '.join(dups)} more than once")
    return values


class SyntheticDataset(Dataset):
    """Synthetic emotional speech in pseudo-languages, generated from a seed.

    Utterances (1.0-2.5 s, 16 kHz mono) come from a source-filter synthesiser whose
    emotions differ in pitch level and range, tempo, loudness, jitter, spectral tilt and
    voice quality, spoken by speakers with their own voices and expressiveness. The
    corpus is generated on first use under ``root`` (by default in the serkit cache) and
    reused afterwards. See :mod:`serkit.data.synthetic`.
    """

    name: ClassVar[str] = "synthetic"
    homepage: ClassVar[str] = ""  # generated locally: nothing to visit
    licence: ClassVar[str] = "generated; public domain"
    citation: ClassVar[str] = ""
    how_to_get: ClassVar[str] = "generated on first use; no download"

    class Params(ComponentParams):
        languages: list[str] = Field(
            default_factory=lambda: ["xa"],
            description=(
                "pseudo-languages to generate, each with its own vowels, consonants and "
                f"rhythm; available: {', '.join(PSEUDO_LANGUAGES)}"
            ),
        )
        speakers: int = Field(
            default=6,
            ge=2,
            le=99,
            description="speakers per language (half female, half male); ids like xa_s03",
        )
        per_class: int = Field(
            default=8,
            ge=1,
            le=999,
            description="utterances per speaker and emotion",
        )
        emotions: list[str] = Field(
            default_factory=lambda: list(DEFAULT_EMOTIONS),
            description=(
                "emotion classes (canonical names; aliases such as 'anger' are mapped); "
                f"available: {', '.join(sorted(EMOTION_PROFILES))}"
            ),
        )
        seed: int = Field(
            default=0,
            description="corpus seed; each utterance depends only on the seed, its "
            "language, speaker, emotion and number",
        )
        root: str | None = Field(
            default=None,
            description="folder for the generated WAVs; default: <serkit cache>/synthetic/<hash of these parameters>",
        )

        @field_validator("languages")
        @classmethod
        def _known_languages(cls, value: list[str]) -> list[str]:
            if not value:
                raise ValueError(f"languages is empty; available: {', '.join(PSEUDO_LANGUAGES)}")
            bad = [v for v in value if v not in PSEUDO_LANGUAGES]
            if bad:
                raise ValueError(
                    f"unknown pseudo-language(s) {', '.join(map(repr, bad))}; available: {', '.join(PSEUDO_LANGUAGES)}"
                )
            return _unique(value, "languages")

        @field_validator("emotions")
        @classmethod
        def _known_emotions(cls, value: list[str]) -> list[str]:
            available = ", ".join(sorted(EMOTION_PROFILES))
            if not value:
                raise ValueError(f"emotions is empty; available: {available}")
            canonical = [canonical_label(v) for v in value]
            bad = [raw for raw, v in zip(value, canonical, strict=True) if v not in EMOTION_PROFILES]
            if bad:
                raise ValueError(
                    f"no synthetic emotion profile for {', '.join(map(repr, bad))}; available: {available}"
                )
            return _unique(canonical, "emotions")

    params: Params

    def __init__(self, params: ComponentParams | None = None, **kwargs: object) -> None:
        super().__init__(params, **kwargs)
        self._utterances: list[Utterance] | None = None

    @property
    def root(self) -> Path:
        """Where the corpus lives: ``params.root``, or a per-parameters cache folder."""
        if self.params.root is not None:
            return Path(self.params.root).expanduser()
        from serkit.paths import cache_dir

        payload = json.dumps(
            {
                "generator_version": GENERATOR_VERSION,
                **self.params.model_dump(mode="json", exclude={"root", "type"}),
            },
            sort_keys=True,
        )
        return cache_dir() / "synthetic" / hashlib.sha256(payload.encode()).hexdigest()[:12]

    def utterances(self) -> list[Utterance]:
        """Generate the corpus if needed (a few ms per utterance) and list it.

        Ordered by language, speaker, emotion (as given) and number.

        Raises:
            DatasetError: the root folder cannot be written.
        """
        if self._utterances is None:
            p = self.params
            self._utterances = generate_corpus(
                self.root,
                languages=p.languages,
                speakers=p.speakers,
                per_class=p.per_class,
                emotions=p.emotions,
                seed=p.seed,
            )
        return list(self._utterances)

    def labels(self) -> list[str]:
        """The configured emotions, sorted (no generation needed)."""
        return sorted(self.params.emotions)
