from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from serkit.data.sampler import BalancedBatchSampler
from serkit.errors import DatasetError

# class sizes 20, 7, 3, 12, 1 (shuffled positions)
COUNTS = [20, 7, 3, 12, 1]
LABELS = np.random.default_rng(0).permutation([c for c, n in enumerate(COUNTS) for _ in range(n)]).tolist()


def test_every_batch_is_n_classes_times_m_samples() -> None:
    sampler = BalancedBatchSampler(LABELS, classes_per_batch=3, samples_per_class=4, seed=1, num_batches=200)
    batches = list(sampler)
    assert len(batches) == 200
    for batch in batches:
        assert len(batch) == 12
        assert all(isinstance(i, int) and 0 <= i < len(LABELS) for i in batch)
        per_class = Counter(LABELS[i] for i in batch)
        assert len(per_class) == 3
        assert set(per_class.values()) == {4}
        for c in per_class:
            items = [i for i in batch if LABELS[i] == c]
            if COUNTS[c] >= 4:  # enough items: no repeat within the batch
                assert len(set(items)) == 4
    # small classes are drawn with replacement (class 4 has a single item)
    lone = next(b for b in batches if 4 in {LABELS[i] for i in b})
    assert [i for i in lone if LABELS[i] == 4] == [LABELS.index(4)] * 4


def test_fewer_classes_than_classes_per_batch() -> None:
    labels = [0, 1, 0, 1, 1]
    sampler = BalancedBatchSampler(labels, classes_per_batch=6, samples_per_class=2, seed=0)
    assert sampler.classes_per_batch == 2
    assert len(sampler) == math.ceil(5 / 4) == 2
    for batch in sampler:
        assert sorted(Counter(labels[i] for i in batch).values()) == [2, 2]


def test_len_and_default_num_batches() -> None:
    sampler = BalancedBatchSampler(LABELS, classes_per_batch=2, samples_per_class=3, seed=0)
    assert len(sampler) == math.ceil(43 / 6) == 8
    assert len(list(sampler)) == 8
    assert len(BalancedBatchSampler(LABELS, 5, 5, seed=0)) == math.ceil(43 / 25)
    assert len(list(BalancedBatchSampler(LABELS, 2, 3, seed=0, num_batches=17))) == 17


def test_deterministic_per_seed_and_epoch() -> None:
    a = BalancedBatchSampler(LABELS, 3, 4, seed=7)
    b = BalancedBatchSampler(np.array(LABELS), 3, 4, seed=7)
    epoch0 = list(a)
    assert list(a) == epoch0  # iterating again without set_epoch repeats the epoch
    assert list(b) == epoch0
    a.set_epoch(1)
    epoch1 = list(a)
    assert epoch1 != epoch0
    b.set_epoch(1)
    assert list(b) == epoch1
    a.set_epoch(0)
    assert list(a) == epoch0
    assert list(BalancedBatchSampler(LABELS, 3, 4, seed=8)) != epoch0


def test_classes_are_chosen_uniformly() -> None:
    sampler = BalancedBatchSampler(LABELS, classes_per_batch=2, samples_per_class=2, seed=3, num_batches=1000)
    seen = Counter(c for batch in sampler for c in {LABELS[i] for i in batch})
    assert set(seen) == set(range(5))
    expected = 1000 * 2 / 5  # 400 each, whatever the class size
    for c in range(5):
        # binomial sd ~ 15.5: 4 sd either side
        assert abs(seen[c] - expected) < 62, (c, seen)


def test_items_of_a_class_are_used_evenly() -> None:
    sampler = BalancedBatchSampler(LABELS, classes_per_batch=5, samples_per_class=4, seed=11, num_batches=6)
    stream: dict[int, list[int]] = {c: [] for c in range(5)}
    for batch in sampler:
        for i in batch:
            stream[LABELS[i]].append(i)
    members = {c: sorted(i for i, y in enumerate(LABELS) if y == c) for c in range(5)}
    # class 0 (20 items, M = 4): the first 5 draws are one full pass
    assert sorted(stream[0][:20]) == members[0]
    # class 1 (7 items): every run of 7 consecutive draws (a pass) uses each item once
    assert len(stream[1]) == 24
    assert sorted(stream[1][:7]) == members[1]
    assert sorted(stream[1][7:14]) == members[1]
    assert sorted(stream[1][14:21]) == members[1]


def test_as_a_dataloader_batch_sampler() -> None:
    data = TensorDataset(torch.arange(len(LABELS)), torch.tensor(LABELS))
    sampler = BalancedBatchSampler(LABELS, 3, 2, seed=0)
    loader = DataLoader(data, batch_sampler=sampler)
    assert len(loader) == len(sampler)
    for index, target in loader:
        assert index.shape == (6,)
        assert torch.equal(target, torch.tensor(LABELS)[index])
        assert sorted(Counter(target.tolist()).values()) == [2, 2, 2]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"classes_per_batch": 1},
            "BalancedBatchSampler: classes_per_batch must be an int >= 2; got 1",
        ),
        (
            {"samples_per_class": 0},
            "BalancedBatchSampler: samples_per_class must be an int >= 1; got 0",
        ),
        (
            {"labels": []},
            "BalancedBatchSampler: labels is empty; a balanced batch needs at least one labelled item",
        ),
        ({"seed": -1}, "BalancedBatchSampler: seed must be a non-negative int; got -1"),
        ({"num_batches": 0}, "BalancedBatchSampler: num_batches must be an int >= 1 or None; got 0"),
        ({"labels": [0, 1, "2"]}, "BalancedBatchSampler: labels must be ints; labels[2] is '2'"),
    ],
)
def test_validation_errors(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"labels": [0, 1, 1], "classes_per_batch": 2, "samples_per_class": 2, "seed": 0}
    args.update(kwargs)
    with pytest.raises(DatasetError) as info:
        BalancedBatchSampler(**args)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_set_epoch_validation() -> None:
    sampler = BalancedBatchSampler([0, 1], 2, 1, seed=0)
    with pytest.raises(DatasetError, match=r"^BalancedBatchSampler: epoch must be a non-negative int; got -1$"):
        sampler.set_epoch(-1)
