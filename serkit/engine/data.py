"""Training data: cached features of one domain, padded batches, the domain schedule.

In a distributed run (``rank``/``world_size`` of :func:`make_loader`) every rank builds the
same loaders from the same seeds and keeps its share of them:

- plain training batches are **split**: every rank draws the same global batch of
  ``batch_size`` items and loads items ``rank, rank + world_size, ...`` of it, with a loss
  weight (:attr:`Batch.weight`) such that DistributedDataParallel's gradient average
  equals the gradient of the whole batch's mean loss, as in a single process;
- class-balanced batches are dealt out **whole** (a contrastive batch must stay
  together; see :class:`serkit.data.sampler.DistributedBatchSampler`);
- evaluation sets are split by position (rank ``r`` evaluates items ``r, r + world_size,
  ...``); the caller combines the ranks' predictions.

Both training variants give every rank the same number of batches per domain, so the
domain schedule (:func:`domain_schedule`) is identical across ranks, as DDP requires.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

from serkit.features.store import FeatureStore

__all__ = [
    "Batch",
    "FeatureDataset",
    "FeatureMemory",
    "StreamInfo",
    "collate",
    "domain_schedule",
    "make_loader",
]


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
        weight: factor for this rank's per-sample-mean loss in a distributed run:
            ``B * world_size / B_global`` (``0`` for a rank whose share of a tiny global
            batch is empty and that trains on a stand-in item); ``1`` otherwise.
    """

    streams: dict[str, torch.Tensor | tuple[torch.Tensor, torch.Tensor]]
    targets: torch.Tensor
    domain: str
    indices: torch.Tensor
    weight: float = 1.0

    def to(self, device: torch.device, non_blocking: bool = False) -> Batch:
        nb = non_blocking
        moved: dict[str, torch.Tensor | tuple[torch.Tensor, torch.Tensor]] = {}
        for k, v in self.streams.items():
            moved[k] = (v[0].to(device, non_blocking=nb), v[1].to(device, non_blocking=nb)) if isinstance(
                v, tuple
            ) else v.to(device, non_blocking=nb)
        return Batch(moved, self.targets.to(device, non_blocking=nb), self.domain, self.indices, self.weight)


class FeatureMemory:
    """Features kept in memory after their first read, up to a byte budget (shared by a run's loaders).

    A run reads every utterance's features once per epoch and fold; with this, the store
    is read once per run. Items past the budget are read from the store every time.

    Args:
        max_bytes: the budget; 0 keeps nothing.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = int(max_bytes)
        self.bytes = 0
        self.items: dict[tuple[str, str], np.ndarray] = {}

    def get(self, stream: str, key: str, store: FeatureStore) -> np.ndarray:
        """``store.get(key)``, from memory when it was read before."""
        found = self.items.get((stream, key))
        if found is not None:
            return found
        array = store.get(key)
        if self.bytes + array.nbytes <= self.max_bytes:
            array.setflags(write=False)  # shared by every later read
            self.items[(stream, key)] = array
            self.bytes += array.nbytes
        return array


class FeatureDataset(Dataset):
    """Reads one domain's cached features from the stores, item by item (bounded memory).

    Args:
        keys: stream id -> list of store keys, aligned with ``targets``.
        stores: stream id -> open :class:`FeatureStore`.
        targets: label index per utterance.
        indices: which utterances (positions) this dataset serves.
        speakers: speaker per utterance (aligned with ``targets``); needed with ``norms``.
        norms: stream id -> speaker -> ``(mean (d,), std (d,))``; features are standardised
            per speaker when given (see :func:`speaker_stats`).
        memory: keeps items read once in memory (see :class:`FeatureMemory`); ``None``
            reads the store every time (bounded memory).
        copies: augmented copies of every utterance (training only), each as ``(stores,
            keys)`` like ``stores`` and ``keys``; the dataset then serves every index once
            per copy after the originals: ``len = len(indices) * (1 + len(copies))``.
    """

    def __init__(
        self,
        keys: Mapping[str, Sequence[str]],
        stores: Mapping[str, FeatureStore],
        targets: Sequence[int],
        indices: Sequence[int],
        speakers: Sequence[str] | None = None,
        norms: Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]] | None = None,
        memory: FeatureMemory | None = None,
        copies: Sequence[tuple[Mapping[str, FeatureStore], Mapping[str, Sequence[str]]]] = (),
    ) -> None:
        self.memory = memory
        self.copies = [(dict(st), {k: list(v) for k, v in ks.items()}) for st, ks in copies]
        self.keys = {k: list(v) for k, v in keys.items()}
        self.stores = dict(stores)
        self.targets = list(targets)
        self.indices = list(indices)
        self.speakers = list(speakers) if speakers is not None else None
        self.norms = {k: dict(v) for k, v in norms.items()} if norms else {}
        if self.norms and self.speakers is None:
            raise ValueError("FeatureDataset: norms need speakers")

    def __len__(self) -> int:
        return len(self.indices) * (1 + len(self.copies))

    def item_targets(self) -> list[int]:
        """The label index of every item, copies included (``len(self)`` of them)."""
        return [self.targets[p] for p in self.indices] * (1 + len(self.copies))

    def __getitem__(self, i: int) -> tuple[dict[str, np.ndarray], int, int]:
        copy, j = divmod(i, len(self.indices))
        pos = self.indices[j]
        stores, keys = (self.stores, self.keys) if copy == 0 else self.copies[copy - 1]
        if self.memory is not None:
            feats = {s: self.memory.get(f"{s}#{copy}", keys[s][pos], stores[s]) for s in keys}
        else:
            feats = {s: stores[s].get(keys[s][pos]) for s in keys}
        for s, per_speaker in self.norms.items():
            mean, std = per_speaker[self.speakers[pos]]  # type: ignore[index]
            feats[s] = ((feats[s] - mean) / std).astype(np.float32, copy=False)
        return feats, self.targets[pos], pos


def collate(items: Sequence[tuple[dict[str, np.ndarray], int, int]], domain: str) -> Batch:
    """Pad sequence streams to the longest item; stack vector streams."""
    streams: dict[str, torch.Tensor | tuple[torch.Tensor, torch.Tensor]] = {}
    for s in items[0][0]:
        arrays = [it[0][s] for it in items]
        if arrays[0].ndim == 2:
            lengths = torch.tensor([a.shape[0] for a in arrays], dtype=torch.long)
            x = np.zeros((len(arrays), int(lengths.max()), arrays[0].shape[1]), dtype=np.float32)
            for j, a in enumerate(arrays):
                x[j, : a.shape[0]] = a
            streams[s] = (torch.from_numpy(x), lengths)
        else:
            streams[s] = torch.from_numpy(np.stack(arrays))
    targets = torch.tensor([it[1] for it in items], dtype=torch.long)
    indices = torch.tensor([it[2] for it in items], dtype=torch.long)
    return Batch(streams, targets, domain, indices)


class _Collate:
    def __init__(self, domain: str) -> None:
        self.domain = domain

    def __call__(self, items: Sequence[tuple[dict[str, np.ndarray], int, int]]) -> Batch:
        batch = collate(items, self.domain)
        if isinstance(items, _RankItems):
            batch.weight = items.weight
        return batch


class _RankItems(list):  # type: ignore[type-arg]
    """A rank's items of one global batch, with the loss weight of :attr:`Batch.weight`."""

    def __init__(self, items: Iterable[tuple[dict[str, np.ndarray], int, int]], weight: float) -> None:
        super().__init__(items)
        self.weight = weight


class _SplitBatches(Dataset):
    """Serves a rank's share of every global batch (DataLoader's batched ``__getitems__``).

    The sampler yields the same global batch on every rank; rank ``r`` of ``W`` loads items
    ``r, r + W, ...`` of it. A rank whose share is empty (a last batch smaller than ``W``)
    loads the batch's first item with weight 0, so that it still takes part in the step.
    """

    def __init__(self, dataset: Dataset, rank: int, world_size: int) -> None:
        self.dataset = dataset
        self.rank = rank
        self.world_size = world_size

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[dict[str, np.ndarray], int, int]:
        return self.dataset[i]

    def __getitems__(self, indices: Sequence[int]) -> _RankItems:
        mine = list(indices[self.rank :: self.world_size])
        if mine:
            return _RankItems((self.dataset[i] for i in mine), len(mine) * self.world_size / len(indices))
        return _RankItems((self.dataset[i] for i in list(indices)[:1]), 0.0)


def make_loader(
    dataset: FeatureDataset,
    domain: str,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    num_workers: int = 0,
    balanced_per_class: int | None = None,
    rank: int = 0,
    world_size: int = 1,
) -> DataLoader:
    """A DataLoader of :class:`Batch` for one domain (seeded shuffling).

    With ``balanced_per_class = M``, batches come from a
    :class:`~serkit.data.sampler.BalancedBatchSampler`: ``batch_size // M`` classes
    (at least 2) with ``M`` utterances each; call ``loader.batch_sampler.set_epoch(e)``
    before each epoch.

    With ``world_size > 1`` the loader serves rank ``rank``'s share (see the module
    docstring): shuffled loaders split every global batch of ``batch_size`` items between
    the ranks, balanced loaders deal whole batches out, and unshuffled (evaluation) loaders
    serve the items at positions ``rank, rank + world_size, ...``.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"make_loader: rank {rank} of world_size {world_size} is out of range")
    if balanced_per_class is not None:
        from serkit.data.sampler import BalancedBatchSampler, DistributedBatchSampler

        labels = dataset.item_targets()
        sampler: Sampler[list[int]] = BalancedBatchSampler(
            labels,
            classes_per_batch=max(2, batch_size // balanced_per_class),
            samples_per_class=balanced_per_class,
            seed=seed,
        )
        if world_size > 1:
            sampler = DistributedBatchSampler(sampler, rank, world_size)
        return DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers, collate_fn=_Collate(domain))
    served: Dataset = dataset
    if world_size > 1:
        served = (
            _SplitBatches(dataset, rank, world_size)
            if shuffle
            else Subset(dataset, range(rank, len(dataset), world_size))
        )
    gen = torch.Generator()
    gen.manual_seed(seed)
    return DataLoader(
        served,
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
