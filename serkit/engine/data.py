"""Training data: cached features of one domain, padded batches, the domain schedule."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from serkit.features.store import FeatureStore

__all__ = ["Batch", "FeatureDataset", "StreamInfo", "collate", "domain_schedule", "make_loader"]


@dataclass(frozen=True)
class StreamInfo:
    """What the model needs to know about a stream: its output kind and dimension."""

    name: str
    output: str  # "sequence" | "vector"
    dim: int


@dataclass
class Batch:
    """One domain's batch.

    Attributes:
        streams: stream id -> ``(x (B, L, d), lengths (B,))`` for sequences or ``(B, d)``
            for vectors.
        targets: ``(B,)`` label indices in the domain's label list.
        domain: the domain id.
        indices: ``(B,)`` positions in the domain's utterance list.
    """

    streams: dict[str, torch.Tensor | tuple[torch.Tensor, torch.Tensor]]
    targets: torch.Tensor
    domain: str
    indices: torch.Tensor

    def to(self, device: torch.device) -> Batch:
        moved: dict[str, torch.Tensor | tuple[torch.Tensor, torch.Tensor]] = {}
        for k, v in self.streams.items():
            moved[k] = (v[0].to(device), v[1].to(device)) if isinstance(v, tuple) else v.to(device)
        return Batch(moved, self.targets.to(device), self.domain, self.indices)


class FeatureDataset(Dataset):
    """Reads one domain's cached features from the stores, item by item (bounded memory).

    Args:
        keys: stream id -> list of store keys, aligned with ``targets``.
        stores: stream id -> open :class:`FeatureStore`.
        targets: label index per utterance.
        indices: which utterances (positions) this dataset serves.
    """

    def __init__(
        self,
        keys: Mapping[str, Sequence[str]],
        stores: Mapping[str, FeatureStore],
        targets: Sequence[int],
        indices: Sequence[int],
    ) -> None:
        self.keys = {k: list(v) for k, v in keys.items()}
        self.stores = dict(stores)
        self.targets = list(targets)
        self.indices = list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[dict[str, np.ndarray], int, int]:
        pos = self.indices[i]
        feats = {s: self.stores[s].get(self.keys[s][pos]) for s in self.keys}
        return feats, self.targets[pos], pos


def collate(items: Sequence[tuple[dict[str, np.ndarray], int, int]], domain: str) -> Batch:
    """Pad sequence streams to the longest item; stack vector streams."""
    streams: dict[str, torch.Tensor | tuple[torch.Tensor, torch.Tensor]] = {}
    for s in items[0][0]:
        arrays = [it[0][s] for it in items]
        if arrays[0].ndim == 2:
            lengths = torch.tensor([a.shape[0] for a in arrays], dtype=torch.long)
            x = torch.zeros(len(arrays), int(lengths.max()), arrays[0].shape[1])
            for j, a in enumerate(arrays):
                x[j, : a.shape[0]] = torch.from_numpy(a)
            streams[s] = (x, lengths)
        else:
            streams[s] = torch.from_numpy(np.stack(arrays))
    targets = torch.tensor([it[1] for it in items], dtype=torch.long)
    indices = torch.tensor([it[2] for it in items], dtype=torch.long)
    return Batch(streams, targets, domain, indices)


class _Collate:
    def __init__(self, domain: str) -> None:
        self.domain = domain

    def __call__(self, items: Sequence[tuple[dict[str, np.ndarray], int, int]]) -> Batch:
        return collate(items, self.domain)


def make_loader(
    dataset: FeatureDataset,
    domain: str,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    num_workers: int = 0,
) -> DataLoader:
    """A DataLoader of :class:`Batch` for one domain (seeded shuffling)."""
    gen = torch.Generator()
    gen.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=gen,
        num_workers=num_workers,
        collate_fn=_Collate(domain),
        persistent_workers=False,
    )


def domain_schedule(batches_per_domain: Mapping[str, int], seed: int) -> list[str]:
    """The order in which an epoch visits the domains' batches.

    Every batch of every domain is visited once per epoch, in a seeded random
    interleaving: each domain is seen in proportion to its size throughout the epoch
    (no domain is trained last, which would bias the shared layers towards it), and a
    small domain is not over-sampled (no extra epochs of its few utterances).
    """
    order = [d for d, n in batches_per_domain.items() for _ in range(n)]
    rng = np.random.default_rng(seed)
    return [order[i] for i in rng.permutation(len(order))]


def iterate_epoch(loaders: Mapping[str, DataLoader], seed: int) -> Iterator[Batch]:
    """Yield every batch of every domain in :func:`domain_schedule` order."""
    iters = {d: iter(dl) for d, dl in loaders.items()}
    for d in domain_schedule({d: len(dl) for d, dl in loaders.items()}, seed):
        yield next(iters[d])
