"""A run's features are read from the store once, within a memory budget."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from serkit.engine.data import FeatureDataset, FeatureMemory, collate


class CountingStore:
    """Stands in for a FeatureStore: counts reads, returns a fresh read-only array each time."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays
        self.reads = 0

    def get(self, key: str) -> np.ndarray:
        self.reads += 1
        out = np.frombuffer(self.arrays[key].tobytes(), dtype=np.float32).reshape(self.arrays[key].shape)
        return out


def _store(n: int = 6) -> CountingStore:
    rng = np.random.default_rng(0)
    return CountingStore({f"k{i}": rng.standard_normal((i + 2, 3)).astype(np.float32) for i in range(n)})


def test_items_are_read_once_and_come_back_equal() -> None:
    store = _store()
    memory = FeatureMemory(1 << 20)
    ds = FeatureDataset({"s": [f"k{i}" for i in range(6)]}, {"s": store}, [0] * 6, range(6), memory=memory)  # type: ignore[dict-item]
    first = [ds[i][0]["s"] for i in range(6)]
    again = [ds[i][0]["s"] for i in range(6)]
    assert store.reads == 6
    for a, b, i in zip(first, again, range(6), strict=True):
        np.testing.assert_array_equal(a, store.arrays[f"k{i}"])
        assert b is a
    assert memory.bytes == sum(a.nbytes for a in store.arrays.values())


def test_items_past_the_budget_are_read_every_time() -> None:
    store = _store()
    sizes = [store.arrays[f"k{i}"].nbytes for i in range(6)]
    memory = FeatureMemory(sizes[0] + sizes[1])  # room for the first two items only
    for _ in range(3):
        for i in range(6):
            memory.get("s", f"k{i}", store)  # type: ignore[arg-type]
    assert store.reads == 2 + 3 * 4
    assert memory.bytes == sizes[0] + sizes[1]


@pytest.mark.parametrize("budget", [0, 1 << 20])
def test_kept_items_are_read_only_and_batches_copy_them(budget: int) -> None:
    store = _store()
    ds = FeatureDataset({"s": list(store.arrays)}, {"s": store}, [1] * 6, range(6), memory=FeatureMemory(budget))  # type: ignore[dict-item]
    items: list[Any] = [ds[i] for i in range(3)]
    batch = collate(items, "d")
    x, lengths = batch.streams["s"]  # type: ignore[misc]
    x[:] = 0  # a batch is the model's to change; the kept features are not
    np.testing.assert_array_equal(ds[0][0]["s"], store.arrays["k0"])
    assert lengths.tolist() == [2, 3, 4]


def test_copies_follow_the_originals_and_come_from_their_own_stores() -> None:
    original, copy = _store(3), _store(3)
    for key in copy.arrays:
        copy.arrays[key] = copy.arrays[key] + 100.0
    keys = {"s": ["k0", "k1", "k2"]}
    ds = FeatureDataset(
        keys, {"s": original}, [0, 1, 2], [2, 0], memory=FeatureMemory(1 << 20), copies=[({"s": copy}, keys)]
    )  # type: ignore[dict-item,list-item]
    assert len(ds) == 4
    assert ds.item_targets() == [2, 0, 2, 0]
    items = [ds[i] for i in range(4)]
    assert [it[2] for it in items] == [2, 0, 2, 0]  # positions: the originals, then their copies
    np.testing.assert_array_equal(items[0][0]["s"], original.arrays["k2"])
    np.testing.assert_array_equal(items[2][0]["s"], copy.arrays["k2"])  # same key, other store: no mix-up in memory
