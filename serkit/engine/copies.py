"""Augmented copies of a run's audio (``data.augment``): extracted once, cached, used in training only."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from serkit.data.utterance import Utterance

__all__ = ["Copies", "extract_copies"]


@dataclass
class Copies:
    """Every augmentation's stores and keys.

    Attributes:
        tags: one readable name per augmentation (``speed0.9``...).
        stores: per augmentation, stream id -> the store of its copies.
        keys: domain -> per augmentation, stream id -> utterance id -> store key.
        extraction: ``<stream>+<tag>`` -> extraction counts, as ``results.json`` reports them.
    """

    tags: list[str] = field(default_factory=list)
    stores: list[dict[str, Any]] = field(default_factory=list)
    keys: dict[str, list[dict[str, dict[str, str]]]] = field(default_factory=dict)
    extraction: dict[str, dict[str, Any]] = field(default_factory=dict)

    def complete(self, domain: str, utt_id: str) -> bool:
        """True when every augmentation of every stream has the utterance."""
        return all(utt_id in per_stream for c in self.keys.get(domain, []) for per_stream in c.values())

    def for_dataset(self, domain: str, ids: list[str]) -> list[tuple[dict[str, Any], dict[str, list[str]]]]:
        """``FeatureDataset``'s ``copies`` for a domain's utterances ``ids`` (in order)."""
        return [
            (self.stores[c], {s: [ks[i] for i in ids] for s, ks in per_stream.items()})
            for c, per_stream in enumerate(self.keys.get(domain, []))
        ]

    def close(self) -> None:
        for stores in self.stores:
            for store in stores.values():
                store.close()


def extract_copies(
    specs: list[Any],
    raw: Mapping[str, list[Utterance]],
    extractors: Mapping[str, Any],
    open_store: Callable[[Any], Any],
    extract: Callable[..., Any],
    console: Any,
) -> Copies:
    """Extract every stream of every augmented copy of every domain's audio.

    Args:
        specs: the recipe's ``data.augment`` entries.
        raw: domain -> utterances.
        extractors: stream id -> extractor.
        open_store: extractor -> its :class:`~serkit.features.store.FeatureStore`.
        extract: ``extract(utterances, extractor, store, description=...)`` ->
            :class:`~serkit.features.driver.ExtractionResult` (bad copies are skipped).
    """
    from serkit.data.wave_augment import augment_tag
    from serkit.features.augmented import AugmentedExtractor
    from serkit.features.driver import empty_counts

    copies = Copies(keys={d: [{} for _ in specs] for d in raw})
    for c, spec in enumerate(specs):
        copies.tags.append(augment_tag(spec))
        copies.stores.append({})
        for sid, base in extractors.items():
            ext = AugmentedExtractor(base, spec)
            store = copies.stores[c][sid] = open_store(ext)
            stats = empty_counts()
            for d, utts in raw.items():
                res = extract(utts, ext, store, description=f"{ext.name} [{d}]")
                copies.keys[d][c][sid] = res.keys
                res.add_counts(stats)
            copies.extraction[ext.name] = stats
            console.print(
                f"  features {ext.name} (training copies): {stats['computed']} computed, {stats['cached']} cached, "
                f"{stats['failed']} failed ({stats['seconds']:.1f} s)"
            )
    return copies
