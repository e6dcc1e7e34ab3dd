"""Class-balanced batches (N classes x M samples) for the GE2E-style contrastive loss.

The contrastive loss needs several samples of each class in a batch; a plain shuffled
batch of a small, unbalanced corpus rarely has them. :class:`BalancedBatchSampler`
builds every batch from ``N`` classes with ``M`` samples each and is passed to a
``torch.utils.data.DataLoader`` as ``batch_sampler=``.

:class:`DistributedBatchSampler` deals the batches of any batch sampler out to the ranks
of a distributed run (whole batches: a contrastive batch must stay together).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

from serkit.errors import DatasetError

__all__ = ["BalancedBatchSampler", "DistributedBatchSampler"]

_NAME = "BalancedBatchSampler"


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


class _ClassPool:
    """Cycles through one class's indices in random order, reshuffling after each pass.

    Every index is used once per pass, so over an epoch the items of a class are seen about
    equally often. A draw of ``m <= len(items)`` indices never repeats an index: when a pass
    runs out in the middle of a draw, the indices already drawn are moved to the end of the
    next pass.
    """

    def __init__(self, items: np.ndarray, rng: np.random.Generator) -> None:
        self.items = items
        self.rng = rng
        self.order = items[rng.permutation(len(items))]
        self.pos = 0

    def draw(self, m: int) -> list[int]:
        n = len(self.items)
        if n < m:  # too few items: with replacement
            return [int(i) for i in self.rng.choice(self.items, size=m, replace=True)]
        if self.pos + m <= n:
            out = self.order[self.pos : self.pos + m]
            self.pos += m
            return [int(i) for i in out]
        head = self.order[self.pos :]
        rest = np.setdiff1d(self.items, head, assume_unique=True)
        rest = rest[self.rng.permutation(len(rest))]
        head_shuffled = head[self.rng.permutation(len(head))]
        self.order = np.concatenate([rest, head_shuffled])
        need = m - len(head)
        self.pos = need
        return [int(i) for i in head] + [int(i) for i in self.order[:need]]


class BalancedBatchSampler(Sampler[list[int]]):
    """Yields batches of dataset indices, each ``N`` classes x ``M`` samples.

    - ``N = min(classes_per_batch, number of classes in labels)``; the ``N`` classes of a
      batch are distinct and drawn **uniformly** at random (not by frequency), so rare
      emotions get as many contrastive anchors as frequent ones. The main loss therefore
      sees a class-balanced stream; weight the main loss yourself if the prior matters.
    - Within a batch the ``M`` samples of a class are distinct when the class has at least
      ``M`` items, and drawn with replacement otherwise. Across batches each class is
      walked through in a random order, reshuffled after every pass, so its items are used
      about equally often.
    - A batch is a list of ``N * M`` ints, grouped by class (the order within a batch does
      not matter to the losses).
    - ``len(sampler) = num_batches``, by default ``ceil(len(labels) / (N * M))``, so one
      epoch draws about as many samples as a plain epoch over ``labels``.
    - The random stream depends only on ``(seed, epoch)``: call :meth:`set_epoch` before
      each epoch (as with ``DistributedSampler``), otherwise every epoch repeats epoch 0.

    Args:
        labels: the integer class of every item of the dataset (index ``i`` -> ``labels[i]``).
        classes_per_batch: ``N`` (>= 2).
        samples_per_class: ``M`` (>= 1).
        seed: a non-negative int.
        num_batches: batches per epoch (>= 1), or ``None`` for the default above.
    """

    def __init__(
        self,
        labels: Sequence[int],
        classes_per_batch: int,
        samples_per_class: int,
        *,
        seed: int,
        num_batches: int | None = None,
    ) -> None:
        super().__init__()
        if not _is_int(classes_per_batch) or classes_per_batch < 2:
            raise DatasetError(f"{_NAME}: classes_per_batch must be an int >= 2; got {classes_per_batch!r}")
        if not _is_int(samples_per_class) or samples_per_class < 1:
            raise DatasetError(f"{_NAME}: samples_per_class must be an int >= 1; got {samples_per_class!r}")
        if not _is_int(seed) or seed < 0:
            raise DatasetError(f"{_NAME}: seed must be a non-negative int; got {seed!r}")
        if num_batches is not None and (not _is_int(num_batches) or num_batches < 1):
            raise DatasetError(f"{_NAME}: num_batches must be an int >= 1 or None; got {num_batches!r}")
        if len(labels) == 0:
            raise DatasetError(f"{_NAME}: labels is empty; a balanced batch needs at least one labelled item")
        bad = next((i for i, y in enumerate(labels) if not _is_int(y)), None)
        if bad is not None:
            raise DatasetError(f"{_NAME}: labels must be ints; labels[{bad}] is {labels[bad]!r}")

        array = np.asarray([int(y) for y in labels], dtype=np.int64)
        self.classes: tuple[int, ...] = tuple(int(c) for c in np.unique(array))
        self._items = [np.flatnonzero(array == c) for c in self.classes]
        self.n_items = len(array)
        self.classes_per_batch = min(int(classes_per_batch), len(self.classes))
        self.samples_per_class = int(samples_per_class)
        self.batch_size = self.classes_per_batch * self.samples_per_class
        self.num_batches = int(num_batches) if num_batches is not None else math.ceil(self.n_items / self.batch_size)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the random stream of ``epoch`` (a non-negative int) for the next iteration."""
        if not _is_int(epoch) or epoch < 0:
            raise DatasetError(f"{_NAME}: epoch must be a non-negative int; got {epoch!r}")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch]))
        pools = [_ClassPool(items, rng) for items in self._items]
        n_classes = len(self.classes)
        for _ in range(self.num_batches):
            chosen = rng.choice(n_classes, size=self.classes_per_batch, replace=False)
            batch: list[int] = []
            for c in chosen:
                batch.extend(pools[c].draw(self.samples_per_class))
            yield batch

    def __repr__(self) -> str:
        return (
            f"{_NAME}(n_items={self.n_items}, n_classes={len(self.classes)}, "
            f"classes_per_batch={self.classes_per_batch}, samples_per_class={self.samples_per_class}, "
            f"num_batches={self.num_batches}, seed={self.seed}, epoch={self.epoch})"
        )


class DistributedBatchSampler(Sampler[list[int]]):
    """Deals the batches of ``batch_sampler`` out to ``world_size`` ranks, whole.

    Every rank iterates the same wrapped sampler (same seed, same epoch, hence the same
    batches) and keeps batches ``rank, rank + world_size, ...``. The sequence is first
    padded by repeating its first batches up to a multiple of ``world_size``, so every rank
    gets exactly ``ceil(len(batch_sampler) / world_size)`` batches: ranks of a
    DistributedDataParallel run must take the same number of steps, or they deadlock.

    Unlike splitting each batch between the ranks, a whole batch keeps its ``N x M`` class
    groups together, which the contrastive loss needs; the price is a global batch of
    ``world_size`` batches per optimizer step (and ``world_size`` times fewer steps per epoch).

    Args:
        batch_sampler: yields lists of dataset indices; its :meth:`set_epoch` (if any) is
            forwarded.
        rank: this process's rank, ``0 <= rank < world_size``.
        world_size: number of ranks (>= 1).
    """

    def __init__(self, batch_sampler: Sampler[list[int]], rank: int, world_size: int) -> None:
        super().__init__()
        name = "DistributedBatchSampler"
        if not _is_int(world_size) or world_size < 1:
            raise DatasetError(f"{name}: world_size must be an int >= 1; got {world_size!r}")
        if not _is_int(rank) or not 0 <= rank < world_size:
            raise DatasetError(f"{name}: rank must be an int in 0..{world_size - 1}; got {rank!r}")
        self.batch_sampler = batch_sampler
        self.rank = int(rank)
        self.world_size = int(world_size)

    def set_epoch(self, epoch: int) -> None:
        """Forward to the wrapped sampler (as ``DistributedSampler.set_epoch``)."""
        set_epoch = getattr(self.batch_sampler, "set_epoch", None)
        if set_epoch is not None:
            set_epoch(epoch)

    def __len__(self) -> int:
        return math.ceil(len(self.batch_sampler) / self.world_size)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[list[int]]:
        batches = [list(b) for b in self.batch_sampler]
        if not batches:
            return
        total = len(self) * self.world_size
        padded = [batches[i % len(batches)] for i in range(total)]
        yield from padded[self.rank :: self.world_size]

    def __repr__(self) -> str:
        return f"DistributedBatchSampler({self.batch_sampler!r}, rank={self.rank}, world_size={self.world_size})"
